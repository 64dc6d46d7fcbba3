"""Tasks: initial states, per-step targets, horizons and cost weights for the plants.

A task describes *what* to do with a plant; it never steps the plant itself. Every task has

* ``plant`` - the (possibly modified, e.g. perturbed) plant to control;
* ``horizon`` - number of control steps ``T``;
* ``weights`` - :class:`CostWeights` (final error, effort, final velocity, tracking);
* ``observe(X)`` - maps states ``X[B, T + 1, n]`` to the space the targets live in
  (hand position for arms, ``(cos, sin, theta_dot)`` for the pendulum, the state for the
  cart-pole);
* ``sample(batch, rng=None, seed=None)`` -> :class:`TaskBatch` with ``x0[B, n]`` and
  ``targets[B, T, k]``, where ``targets[:, t]`` is the goal for ``observe(X)[:, t + 1]``
  and NaN means "no target at this step";
* ``cost(X, U, targets)`` - per-sample cost ``[B]``::

      J = final_error    * |y_T - target_T|^2          (last step with a target)
        + final_velocity * |v_T|^2                     (hand / state velocity at the end)
        + effort         * dt * sum_t |u_t|^2
        + tracking       * mean over targeted steps of |y_t - target_t|^2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validation as V
from .arms import PlanarArm
from .cartpole import CartPole
from .pendulum import Pendulum

__all__ = ["Balance", "CostWeights", "Hold", "Reach", "SwingUp", "Task", "TaskBatch", "Track",
           "reach_radii"]


@dataclass(frozen=True)
class CostWeights:
    """Weights of the cost terms (see the module docstring)."""

    final_error: float = 1.0
    effort: float = 0.0
    final_velocity: float = 0.0
    tracking: float = 0.0

    def __post_init__(self):
        for name in ("final_error", "effort", "final_velocity", "tracking"):
            V.nonnegative(getattr(self, name), f"weights.{name}")


@dataclass(frozen=True)
class TaskBatch:
    """A batch of episodes: ``x0[B, n]`` and ``targets[B, T, k]`` (NaN = no target)."""

    x0: np.ndarray
    targets: np.ndarray

    @property
    def horizon(self) -> int:
        return self.targets.shape[1]


class Task:
    """Base class; subclasses set ``plant``, ``horizon``, ``weights`` and implement
    :meth:`_initial_states`, :meth:`_targets` and :meth:`observe`."""

    plant = None
    horizon: int
    weights: CostWeights

    def _common(self, plant, cls, horizon, weights) -> None:
        if not isinstance(plant, cls):
            raise TypeError(f"plant must be a {cls.__name__}, got {type(plant).__name__}")
        self.plant = plant
        self.horizon = V.integer(horizon, "horizon")
        if not isinstance(weights, CostWeights):
            raise TypeError(f"weights must be a CostWeights, got {type(weights).__name__}")
        self.weights = weights

    def sample(self, batch: int, *, rng=None, seed=None) -> TaskBatch:
        """Draw ``batch`` episodes from a seeded generator."""
        batch = V.integer(batch, "batch")
        gen = V.make_rng(rng, seed)
        x0, targets = self._sample(batch, gen)
        return TaskBatch(np.ascontiguousarray(x0, dtype=float),
                         np.ascontiguousarray(targets, dtype=float))

    def observe(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _velocity(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def cost(self, X, U, targets) -> np.ndarray:
        """Per-sample cost ``[B]`` of states ``X[B, T+1, n]``, controls ``U[B, T, m]``."""
        n, m = self.plant.state_dim, self.plant.control_dim
        X = V.as_finite_array(X, "X", (None, None, n))
        B, T1 = X.shape[0], X.shape[1]
        U = V.as_finite_array(U, "U", (B, T1 - 1, m))
        Y = self.observe(X)[:, 1:]
        k = Y.shape[2]
        targets = V.as_float_array(targets, "targets", (B, T1 - 1, k), allow_nan=True)
        err = ((Y - targets) ** 2).sum(axis=2)  # NaN where no target
        has = ~np.isnan(targets).any(axis=2)
        J = self.weights.effort * self.plant.dt * (U**2).sum(axis=(1, 2))
        if self.weights.final_error:
            last = np.where(has.any(axis=1), T1 - 2 - np.argmax(has[:, ::-1], axis=1), -1)
            fe = np.where(last >= 0, err[np.arange(B), np.maximum(last, 0)], 0.0)
            J = J + self.weights.final_error * fe
        if self.weights.final_velocity:
            J = J + self.weights.final_velocity * (self._velocity(X[:, -1]) ** 2).sum(axis=1)
        if self.weights.tracking:
            cnt = np.maximum(has.sum(axis=1), 1)
            J = J + self.weights.tracking * np.where(has, err, 0.0).sum(axis=1) / cnt
        return J


# -- arms -----------------------------------------------------------------------------------
def reach_radii(arm: PlanarArm) -> tuple[float, float]:
    """Distances from the shoulder that the hand of ``arm`` can reach, ``(r_min, r_max)``.

    For a planar chain of links ``l_a`` whose joints turn freely, every distance between
    ``max(0, 2 max(l) - sum(l))`` (the longest link folded back by all the others) and
    ``sum(l)`` (fully stretched) is reachable. Joint stops are not taken into account.
    """
    lengths = np.asarray(arm.lengths, dtype=float)
    total = float(lengths.sum())
    return max(0.0, 2.0 * float(lengths.max()) - total), total


def _default_posture(arm: PlanarArm) -> np.ndarray:
    """Shoulder 45 deg, elbow 90 deg (and wrist 0) - a central workspace posture."""
    q = np.zeros(arm.n_links)
    q[0] = np.pi / 4
    q[1] = np.pi / 2
    return q


class _ArmTask(Task):
    def observe(self, X) -> np.ndarray:
        """Hand position ``[B, T + 1, 2]``."""
        X = V.as_float_array(X, "X", (None, None, self.plant.state_dim))
        B, T1, n = X.shape
        return self.plant.hand_position(X.reshape(B * T1, n)).reshape(B, T1, 2)

    def _velocity(self, x) -> np.ndarray:
        return self.plant.hand_velocity(x)

    def _posture(self, posture) -> np.ndarray:
        if posture is None:
            return _default_posture(self.plant)
        return V.as_finite_array(posture, "posture", (self.plant.n_links,))

    def _rest(self, q, B) -> np.ndarray:
        x0 = np.zeros((B, self.plant.state_dim))
        x0[:, : self.plant.n_links] = q
        return x0


class Reach(_ArmTask):
    """Point-to-point reaching with an arm.

    Parameters
    ----------
    plant : TwoLinkArm or ThreeLinkArm
    targets : {"centre_out", "random"}
        "centre_out": ``n_targets`` (default 8) targets evenly spaced on a circle of radius
        ``distance`` (default 0.10 m) around the start hand position; sample ``i`` of a
        batch goes to target ``i mod n_targets``. "random": hand positions of uniformly
        drawn joint angles (shoulder in [-pi/4, 3pi/4], elbow in [pi/6, 5pi/6], wrist in
        [-pi/4, pi/4]), so every target is reachable.
    n_targets : int
        Number of centre-out targets; default 8.
    distance : float
        Centre-out target distance from the start hand position (m); default 0.10. A
        ``ValueError`` naming ``distance`` is raised if a target falls outside the arm's
        workspace (:func:`reach_radii`).
    posture : array_like (N,), optional
        Start joint angles; default shoulder 45 deg, elbow 90 deg.
    horizon : int
        Steps; default 0.5 s worth.
    hold_steps : int
        The target is defined on the last ``hold_steps`` steps (NaN before); default 1.
    weights : CostWeights
        Default final error 1, effort 1e-4, final velocity 0.1.
    """

    def __init__(self, plant: PlanarArm, *, targets: str = "centre_out", n_targets: int = 8,
                 distance: float = 0.10, posture=None, horizon: int | None = None,
                 hold_steps: int = 1,
                 weights: CostWeights = CostWeights(1.0, 1e-4, 0.1, 0.0)) -> None:
        if horizon is None:
            horizon = max(1, int(round(0.5 / plant.dt))) if isinstance(plant, PlanarArm) else 1
        self._common(plant, PlanarArm, horizon, weights)
        if targets not in ("centre_out", "random"):
            raise ValueError(f"targets must be 'centre_out' or 'random', got {targets!r}")
        self.mode = targets
        self.n_targets = V.integer(n_targets, "n_targets")
        self.distance = V.positive(distance, "distance")
        self.hold_steps = V.integer(hold_steps, "hold_steps")
        if self.hold_steps > self.horizon:
            raise ValueError(f"hold_steps must be <= horizon ({self.horizon}), got {hold_steps}")
        self.posture = self._posture(posture)
        self.start = self.plant.hand_position(self._rest(self.posture, 1))[0]
        if self.mode == "centre_out":
            self._check_reachable(self.goals(self.n_targets, None))

    def _check_reachable(self, goals: np.ndarray) -> None:
        """Raise if a centre-out target lies outside the arm's workspace (joint stops aside)."""
        r_min, r_max = reach_radii(self.plant)
        r = np.linalg.norm(goals, axis=1)
        bad = np.flatnonzero((r < r_min) | (r > r_max))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"distance={self.distance!r} m puts centre-out target {i} at "
                f"({goals[i, 0]:.4g}, {goals[i, 1]:.4g}) m, {r[i]:.4g} m from the shoulder, "
                f"outside the arm's workspace (distances {r_min:.4g} to {r_max:.4g} m); "
                f"use a smaller distance or another posture")

    def goals(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """Target hand positions ``[B, 2]``."""
        if self.mode == "centre_out":
            k = np.arange(batch) % self.n_targets
            ang = 2 * np.pi * k / self.n_targets
            return self.start + self.distance * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        N = self.plant.n_links
        lo = np.array([-np.pi / 4, np.pi / 6, -np.pi / 4])[:N]
        hi = np.array([3 * np.pi / 4, 5 * np.pi / 6, np.pi / 4])[:N]
        q = rng.uniform(lo, hi, size=(batch, N))
        return self.plant.hand_position(self._rest(q, batch))

    def _sample(self, B, rng):
        g = self.goals(B, rng)
        targets = np.full((B, self.horizon, 2), np.nan)
        targets[:, self.horizon - self.hold_steps:] = g[:, None, :]
        return self._rest(self.posture, B), targets


class Hold(_ArmTask):
    """Hold the hand still at a posture while a constant force pushes it.

    ``plant`` is replaced by ``plant.replace(constant_force=force)``; targets are the start
    hand position at every step. Default force (0, 5) N, horizon 1 s.
    """

    def __init__(self, plant: PlanarArm, *, force=(0.0, 5.0), posture=None,
                 horizon: int | None = None,
                 weights: CostWeights = CostWeights(1.0, 1e-4, 0.1, 1.0)) -> None:
        if not isinstance(plant, PlanarArm):
            raise TypeError(f"plant must be a PlanarArm, got {type(plant).__name__}")
        if horizon is None:
            horizon = max(1, int(round(1.0 / plant.dt)))
        force = V.as_finite_array(force, "force", (2,))
        self._common(plant.replace(constant_force=force), PlanarArm, horizon, weights)
        self.force = force
        self.posture = self._posture(posture)
        self.start = self.plant.hand_position(self._rest(self.posture, 1))[0]

    def _sample(self, B, rng):
        targets = np.broadcast_to(self.start, (B, self.horizon, 2)).copy()
        return self._rest(self.posture, B), targets


class Track(_ArmTask):
    """Follow a hand trajectory.

    ``trajectory`` is ``[T + 1, 2]`` (the same for every sample) or ``[B, T + 1, 2]``
    (hand positions, m); the arm starts at rest at ``trajectory[0]`` (inverse kinematics)
    and ``targets = trajectory[1:]``. Default: one turn of a 5 cm circle through the hand
    position of the default posture, over 1 s.
    """

    def __init__(self, plant: PlanarArm, trajectory=None, *,
                 weights: CostWeights = CostWeights(0.0, 1e-4, 0.0, 1.0)) -> None:
        if not isinstance(plant, PlanarArm):
            raise TypeError(f"plant must be a PlanarArm, got {type(plant).__name__}")
        if trajectory is None:
            T = max(1, int(round(1.0 / plant.dt)))
            q = _default_posture(plant)
            x = np.zeros((1, plant.state_dim))
            x[0, : plant.n_links] = q
            c = plant.hand_position(x)[0] - np.array([0.05, 0.0])
            a = np.linspace(0.0, 2 * np.pi, T + 1)
            trajectory = c + 0.05 * np.stack([np.cos(a), np.sin(a)], axis=1)
        try:
            ndim = np.ndim(trajectory)
        except (TypeError, ValueError):  # ragged: let the check below name the argument
            ndim = 3
        if ndim == 2:
            traj = V.as_finite_array(trajectory, "trajectory", (None, 2))[None]
        else:
            traj = V.as_finite_array(trajectory, "trajectory", (None, None, 2))
        if traj.shape[1] < 2:
            raise ValueError(f"trajectory needs at least 2 points, got {traj.shape[1]}")
        self._common(plant, PlanarArm, traj.shape[1] - 1, weights)
        self.trajectory = traj
        self._q0 = plant.inverse_kinematics(traj[:, 0])

    def _sample(self, B, rng):
        if self.trajectory.shape[0] not in (1, B):
            raise ValueError(f"batch must be {self.trajectory.shape[0]} for this trajectory, "
                             f"got {B}")
        traj = np.broadcast_to(self.trajectory, (B, *self.trajectory.shape[1:]))
        q0 = np.broadcast_to(self._q0, (B, self.plant.n_links))
        return self._rest(q0, B), traj[:, 1:].copy()


# -- pendulum and cart-pole ----------------------------------------------------------------
class SwingUp(Task):
    """Swing the pendulum up from hanging (theta = pi) and balance it upright.

    Observations ``(cos theta, sin theta, theta_dot)``; target ``(1, 0, 0)`` over the last
    ``balance_steps`` steps (default half the horizon), NaN before. Initial angle
    ``pi + noise * N(0, 1)`` (default noise 0.1 rad), velocity 0. Default horizon 200 steps.
    """

    def __init__(self, plant: Pendulum, *, horizon: int = 200, balance_steps: int | None = None,
                 noise: float = 0.1,
                 weights: CostWeights = CostWeights(1.0, 1e-3, 0.1, 1.0)) -> None:
        self._common(plant, Pendulum, horizon, weights)
        bs = self.horizon // 2 if balance_steps is None else balance_steps
        self.balance_steps = V.integer(bs, "balance_steps")
        if self.balance_steps > self.horizon:
            raise ValueError(f"balance_steps must be <= horizon, got {bs}")
        self.noise = V.nonnegative(noise, "noise")

    def observe(self, X) -> np.ndarray:
        """``(cos theta, sin theta, theta_dot)``, shape ``[B, T + 1, 3]``."""
        X = V.as_float_array(X, "X", (None, None, 2))
        return np.stack([np.cos(X[..., 0]), np.sin(X[..., 0]), X[..., 1]], axis=-1)

    def _velocity(self, x):
        return x[:, 1:2]

    def _sample(self, B, rng):
        x0 = np.zeros((B, 2))
        x0[:, 0] = np.pi + self.noise * rng.standard_normal(B)
        targets = np.full((B, self.horizon, 3), np.nan)
        targets[:, self.horizon - self.balance_steps:] = (1.0, 0.0, 0.0)
        return x0, targets


class Balance(Task):
    """Keep the cart-pole upright and centred: target state 0 at every step.

    Initial states uniform in ``[-spread, spread]^4`` (default 0.05, Gymnasium's reset).
    Default horizon 500 steps.
    """

    def __init__(self, plant: CartPole, *, horizon: int = 500, spread: float = 0.05,
                 weights: CostWeights = CostWeights(1.0, 1e-4, 0.0, 1.0)) -> None:
        self._common(plant, CartPole, horizon, weights)
        self.spread = V.nonnegative(spread, "spread")

    def observe(self, X) -> np.ndarray:
        """The state itself, ``[B, T + 1, 4]``."""
        return V.as_float_array(X, "X", (None, None, 4))

    def _velocity(self, x):
        return x[:, [1, 3]]

    def _sample(self, B, rng):
        x0 = rng.uniform(-self.spread, self.spread, size=(B, 4))
        return x0, np.zeros((B, self.horizon, 4))
