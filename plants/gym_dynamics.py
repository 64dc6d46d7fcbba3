"""A Gymnasium environment as a :class:`plants.Dynamics`: :class:`GymDynamics`.

The environment must keep its state in ``env.unwrapped.state``, which this class reads and
sets: to step a state ``x`` with a control ``u`` it sets the state, calls the unwrapped
environment's ``step`` (so wrappers such as ``TimeLimit`` are bypassed, and the reward and
termination are ignored) and reads the new state. Jacobians are central finite
differences of that step. Known to work: ``Pendulum-v1``, ``MountainCarContinuous-v0`` and
``CartPole-v1`` (through a continuous force, see :class:`GymDynamics`); other environments
with a ``Box`` action space and a settable ``state`` work the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from . import _validation as V

__all__ = ["GymDynamics"]


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


class GymDynamics:
    """A Gymnasium environment whose state can be read and set, as a :class:`plants.Dynamics`.

    Parameters
    ----------
    env : gymnasium.Env
        The environment (wrapped or not); ``env.unwrapped.state`` must be a 1-D numeric
        array (or sequence) that its ``step`` reads and replaces. It is reset once, with
        ``seed=0``, if its state is not set yet.
    dt : float, optional
        Step length (s). Default: the environment's ``dt`` attribute (``Pendulum-v1``: 0.05),
        else its ``tau`` (``CartPole-v1``: 0.02), else 1 (``MountainCarContinuous-v0``, whose
        equations are written per step).
    fd_step : float, optional
        Relative step ``h`` of the central differences: coordinate ``z`` moves by
        ``h * max(1, |z|)``. Default ``eps ** (1/3)`` of the dtype of the state the
        environment's step writes (6e-6 for float64, 5e-3 for a float32 state such as
        ``MountainCarContinuous-v0``'s); states are set in that dtype.

    Notes
    -----
    Controls: ``control_dim`` is the length of a ``Box`` action; ``control_low`` and
    ``control_high`` its bounds, and controls are clipped to them before the step (as part
    of the model). Controls are passed to the environment as float64, whatever the action
    space's dtype, so that finite differences see them.

    ``CartPole-v1`` has a discrete action (push left or right with ``force_mag`` = 10 N).
    Here its control is a continuous force ``F`` in ``[-force_mag, force_mag]``: each step
    sets the environment's ``force_mag`` to ``F`` and takes action 1 (``force = force_mag``
    in its equations), then restores ``force_mag``; its termination bookkeeping
    (``steps_beyond_terminated``) is cleared before each step, so stepping a fallen pole
    raises no warning. This is :class:`plants.CartPole`'s model.

    The step is the environment's: its clipping (``Pendulum-v1``'s torque and speed,
    ``MountainCarContinuous-v0``'s position and speed) is part of it, and a central
    difference that straddles such a kink averages the two one-sided slopes.
    Every sample of a batch is one Python call of the environment's ``step``.
    """

    def __init__(self, env: Any, *, dt: float | None = None, fd_step: float | None = None) -> None:
        u = getattr(env, "unwrapped", env)
        self.env = env
        self._env = u
        spec = getattr(u, "spec", None)
        self.env_id = spec.id if spec is not None else type(u).__name__
        if getattr(u, "state", None) is None:
            env.reset(seed=0)
        state = getattr(u, "state", None)
        try:
            arr = np.asarray(state)
        except (TypeError, ValueError):
            arr = np.asarray(None)
        if state is None or arr.ndim != 1 or arr.dtype.kind not in "fiu":
            raise TypeError(f"env must keep its state as a 1-D numeric array in "
                            f"env.unwrapped.state; {self.env_id} has state {state!r}")
        self._dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)
        self.state_dim = int(arr.shape[0])
        space = u.action_space
        self._force = False
        from gymnasium import spaces

        if isinstance(space, spaces.Discrete) and space.n == 2 and hasattr(u, "force_mag"):
            self._force = True  # CartPole: a continuous force through force_mag
            fmax = float(u.force_mag)
            low, high = np.array([-fmax]), np.array([fmax])
        elif isinstance(space, spaces.Box) and len(space.shape) == 1:
            low = np.asarray(space.low, dtype=np.float64)
            high = np.asarray(space.high, dtype=np.float64)
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise ValueError(f"{self.env_id}'s action space must have finite bounds, got "
                                 f"{space}")
        else:
            raise TypeError(f"{self.env_id}'s action space must be a 1-D Box (or CartPole's "
                            f"Discrete(2)), got {space}")
        self.control_dim = int(low.shape[0])
        self.control_low = _readonly(low)
        self.control_high = _readonly(high)
        if dt is None:
            dt = getattr(u, "dt", None) or getattr(u, "tau", None) or 1.0
        self.dt = V.positive(dt, "dt")
        # the dtype of the state that the environment's step writes (MountainCarContinuous:
        # float32 after a step, float64 after a reset)
        saved = u.state
        self._step1(arr.astype(np.float64), 0.5 * (self.control_low + self.control_high))
        stepped = np.asarray(u.state)
        u.state = saved
        if stepped.dtype.kind == "f":
            self._dtype = stepped.dtype
        if fd_step is None:
            fd_step = float(np.finfo(self._dtype).eps) ** (1.0 / 3.0)
        self.fd_step = V.positive(fd_step, "fd_step")
        record = {k: v for k, v in vars(u).items()
                  if not k.startswith("_") and not isinstance(v, bool)
                  and isinstance(v, int | float | np.integer | np.floating)}
        record.update(env_id=self.env_id, dt=self.dt, control_low=self.control_low,
                      control_high=self.control_high, fd_step=self.fd_step)
        self._parameters = MappingProxyType(record)

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The environment's numeric constants (its public scalar attributes) and this
        wrapper's settings, read-only."""
        return self._parameters

    def __repr__(self) -> str:
        return (f"GymDynamics({self.env_id}, n={self.state_dim}, m={self.control_dim}, "
                f"dt={self.dt})")

    # -- one sample ----------------------------------------------------------------------
    def _step1(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        env = self._env
        env.state = np.array(x, dtype=self._dtype)
        u = np.minimum(np.maximum(u, self.control_low), self.control_high)
        if self._force:
            saved = env.force_mag
            env.force_mag = float(u[0])
            env.steps_beyond_terminated = None
            try:
                env.step(1)
            finally:
                env.force_mag = saved
        else:
            env.step(u)
        return np.asarray(env.state, dtype=np.float64)

    def _pair(self, x, u, xname: str, uname: str) -> tuple[np.ndarray, np.ndarray]:
        x = V.as_finite_array(x, xname, (None, self.state_dim))
        u = V.as_finite_array(u, uname, (None, self.control_dim))
        if x.shape[0] != u.shape[0]:
            raise ValueError(f"{xname} and {uname} need the same batch size, got {xname} "
                             f"{x.shape}, {uname} {u.shape}")
        return x, u

    # -- protocol --------------------------------------------------------------------------
    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One step for a batch: ``x[B, n]``, ``u[B, m]`` -> ``x_next[B, n]``."""
        x, u = self._pair(x, u, "x", "u")
        out = np.empty_like(x)
        for b in range(x.shape[0]):
            out[b] = self._step1(x[b], u[b])
        if not np.isfinite(out).all():
            b = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
            raise ValueError(f"{self.env_id} produced a non-finite state for sample {b} "
                             f"(x[{b}] = {x[b]}, u[{b}] = {u[b]})")
        return out

    def rollout(self, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
        """``x0[B, n]``, ``U[B, T, m]`` -> ``X[B, T + 1, n]`` (``X[:, 0] = x0``), step by step."""
        x0 = V.as_finite_array(x0, "x0", (None, self.state_dim))
        U = V.as_finite_array(U, "U", (x0.shape[0], None, self.control_dim))
        X = np.empty((U.shape[0], U.shape[1] + 1, self.state_dim))
        X[:, 0] = x0
        for t in range(U.shape[1]):
            X[:, t + 1] = self.step(X[:, t], U[:, t])
        return X

    def jacobians(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Central finite differences of :meth:`step`: ``A[B, n, n] = d x_next / d x`` and
        ``B[B, n, m] = d x_next / d u`` (steps ``fd_step * max(1, |z|)``)."""
        x, u = self._pair(x, u, "x", "u")
        B, n, m = x.shape[0], self.state_dim, self.control_dim
        z = np.concatenate([x, u], axis=1)  # [B, n + m]
        h = self.fd_step * np.maximum(1.0, np.abs(z))
        eye = np.eye(n + m)
        plus = z[:, None, :] + h[:, :, None] * eye  # [B, n + m (which), n + m]
        minus = z[:, None, :] - h[:, :, None] * eye
        # the environment holds its state in its own dtype: difference what it is given
        plus[:, :, :n] = plus[:, :, :n].astype(self._dtype)
        minus[:, :, :n] = minus[:, :, :n].astype(self._dtype)
        which = np.arange(n + m)
        den = plus[:, which, which] - minus[:, which, which]  # [B, n + m]
        both = np.concatenate([plus, minus], axis=1).reshape(-1, n + m)
        f = self.step(both[:, :n], both[:, n:]).reshape(B, 2, n + m, n)
        J = (f[:, 0] - f[:, 1]) / den[:, :, None]  # [B, n + m (which), n]
        J = J.transpose(0, 2, 1)
        return np.ascontiguousarray(J[:, :, :n]), np.ascontiguousarray(J[:, :, n:])
