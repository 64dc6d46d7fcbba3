"""Tasks: initial states, per-step targets, horizons and cost weights for the plants.

A task describes *what* to do with a plant; it never steps the plant itself. Every task has

* ``plant`` - the (possibly modified, e.g. perturbed) plant to control;
* ``horizon`` - number of control steps ``T``;
* ``weights`` - :class:`CostWeights` (final error, effort, final velocity, tracking, and
  optional per-output weights);
* ``outputs(x)`` -> ``y[B, k]`` and ``outputs_jacobian(x)`` -> ``dy/dx [B, k, n]`` for a batch
  of states ``x[B, n]``: the space the targets live in (hand position for arms,
  ``(cos theta, sin theta, theta_dot)`` for the pendulum (``PendulumV1(angle="wrapped")``:
  the wrapped angle and theta_dot), the state for the cart-pole and
  :class:`StateTarget`); ``output_names`` names the ``k`` outputs;
* ``velocity(x)`` -> ``v[B, q]`` and ``velocity_jacobian(x)`` -> ``dv/dx [B, q, n]``: what the
  final-velocity term penalises (hand velocity ``J(q) qdot`` for arms, ``theta_dot`` for the
  pendulum, ``(x_dot, theta_dot)`` for the cart-pole); ``velocity_names`` names them;
* ``observe(X)`` - ``outputs`` applied to states ``X[B, T + 1, n]``: ``[B, T + 1, k]``;
* ``sample(batch, rng=None, seed=None)`` -> :class:`TaskBatch` with ``x0[B, n]`` and
  ``targets[B, T, k]``, where ``targets[:, t]`` is the goal for ``observe(X)[:, t + 1]`` (the
  state *after* step ``t``) and NaN means "no target at this step";
* ``cost(X, U, targets)`` - per-sample cost ``[B]`` of states ``X[B, T + 1, n]`` and controls
  ``U[B, T, m]``::

      J = final_error    * E_last                           (E at the last targeted state)
        + tracking       * (1 / n_targeted) * sum_{targeted t} E_t
        + final_velocity * |v(x_T)|^2
        + effort         * dt * sum_{t=0}^{T-1} |u_t|^2

      E_t = sum_i w_i (y_i(x_t) - target_i(t))^2             (t = 1 .. T; x_t = X[:, t])

  with ``w = weights.output_weights`` (default all ones) and ``target(t) = targets[:, t - 1]``.
  A step is targeted when none of its target entries is NaN; a sample without any targeted
  step has no error terms. ``step_weights(targets)`` gives the coefficient ``c[B, T]`` of
  each ``E_t`` in ``J`` (``final_error`` at the last targeted step plus
  ``tracking / n_targeted`` at every targeted one), so that

      J = sum_t c[:, t - 1] E_t + final_velocity |v(x_T)|^2 + effort dt sum_t |u_t|^2.

Every term is a weighted square of a differentiable function of one state (``y``, ``v``) or
of the controls, so the Gauss-Newton matrix built from ``outputs_jacobian`` and
``velocity_jacobian`` is the exact curvature of the squares: for a state ``x_t`` the
gradient is ``2 c_t dy^T W (y - target)`` (plus ``2 final_velocity dv^T v`` at ``t = T``)
and the Gauss-Newton block ``2 c_t dy^T W dy`` (plus ``2 final_velocity dv^T dv``), with
``W = diag(w)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _validation as V
from .arms import PlanarArm
from .cartpole import CartPole
from .force_channel import ForceChannel
from .linear import LinearPlant
from .muscle_arm import MuscleArm
from .pendulum import Pendulum
from .protocol import Dynamics

#: The plants the arm tasks accept: torque-driven chains and the muscle arm (both give the
#: hand's kinematics, ``n_links`` and ``lengths``).
_ARMS = (PlanarArm, MuscleArm)

__all__ = ["Balance", "CostWeights", "DelayedReach", "ForceChannel", "Hold", "PendulumV1",
           "Reach", "StateTarget", "SwingUp", "Task", "TaskBatch", "Track", "reach_radii",
           "wrap_angle"]


@dataclass(frozen=True)
class CostWeights:
    """Weights of the cost terms (see the module docstring).

    Parameters
    ----------
    final_error, effort, final_velocity, tracking : float
        Non-negative weights of the four terms.
    output_weights : sequence of float, optional
        One non-negative weight per output dimension of the task (``w_i`` in the module
        docstring), scaling that dimension's squared error in the final-error and tracking
        terms. Default ``None``: all ones. Stored as a tuple of floats; its length is checked
        against the task's number of outputs when the task is made.
    """

    final_error: float = 1.0
    effort: float = 0.0
    final_velocity: float = 0.0
    tracking: float = 0.0
    output_weights: tuple[float, ...] | None = None

    def __post_init__(self):
        for name in ("final_error", "effort", "final_velocity", "tracking"):
            V.nonnegative(getattr(self, name), f"weights.{name}")
        if self.output_weights is not None:
            w = V.as_finite_array(self.output_weights, "weights.output_weights", (None,))
            if w.size == 0 or np.any(w < 0):
                raise ValueError("weights.output_weights must be a non-empty sequence of "
                                 f"non-negative numbers, got {w}")
            object.__setattr__(self, "output_weights", tuple(float(v) for v in w))


@dataclass(frozen=True)
class TaskBatch:
    """A batch of episodes: ``x0[B, n]`` and ``targets[B, T, k]`` (NaN = no target), and
    for tasks with cues, the network inputs the task gives, ``inputs[B, T, c]``
    (``task.input_names``; None for the other tasks)."""

    x0: np.ndarray
    targets: np.ndarray
    inputs: np.ndarray | None = None

    @property
    def horizon(self) -> int:
        return self.targets.shape[1]


def _selection(B: int, rows: Sequence[int], n: int) -> np.ndarray:
    """``[B, len(rows), n]`` matrices picking the coordinates ``rows`` of a state."""
    S = np.zeros((len(rows), n))
    S[np.arange(len(rows)), list(rows)] = 1.0
    return np.broadcast_to(S, (B, len(rows), n)).copy()


def _remember(task, loc: dict) -> None:
    """Record the outermost constructor's arguments (for :func:`plants.to_spec`)."""
    if not hasattr(task, "_init_kwargs"):
        task._init_kwargs = {k: v for k, v in loc.items() if k not in ("self", "__class__")}


class Task:
    """Base class of the tasks (see the module docstring for the interface and the cost).

    Subclasses set ``output_names`` and ``velocity_names``, call :meth:`_common` and
    implement ``_sample``, ``_outputs``, ``_outputs_jacobian``, ``_velocity`` and
    ``_velocity_jacobian`` on checked state batches ``x[B, n]``.
    """

    plant = None
    horizon: int
    weights: CostWeights
    output_names: tuple[str, ...] = ()
    velocity_names: tuple[str, ...] = ()
    #: the network inputs the task gives in ``TaskBatch.inputs`` (none for most tasks)
    input_names: tuple[str, ...] = ()

    def _common(self, plant, cls, horizon, weights) -> None:
        if not isinstance(plant, cls):
            name = (cls.__name__ if isinstance(cls, type)
                    else " or ".join(c.__name__ for c in cls))
            raise TypeError(f"plant must be a {name}, got {type(plant).__name__}")
        self.plant = plant
        self.horizon = V.integer(horizon, "horizon")
        if not isinstance(weights, CostWeights):
            raise TypeError(f"weights must be a CostWeights, got {type(weights).__name__}")
        ow = weights.output_weights
        if ow is not None and len(ow) != self.output_dim:
            raise ValueError(
                f"weights.output_weights must have {self.output_dim} entries, one per output of "
                f"{type(self).__name__} ({', '.join(self.output_names)}), got {len(ow)}")
        self.weights = weights

    @property
    def output_dim(self) -> int:
        """Number of outputs ``k`` (the last axis of ``targets``)."""
        return len(self.output_names)

    @property
    def input_dim(self) -> int:
        """Number of task inputs ``c`` (the last axis of ``TaskBatch.inputs``)."""
        return len(self.input_names)

    @property
    def velocity_dim(self) -> int:
        """Number of velocity components ``q`` penalised by the final-velocity term."""
        return len(self.velocity_names)

    @property
    def output_weights(self) -> np.ndarray:
        """The per-output weights ``w`` as an array ``(k,)`` (all ones by default)."""
        ow = self.weights.output_weights
        return np.ones(self.output_dim) if ow is None else np.array(ow)

    def sample(self, batch: int, *, rng: np.random.Generator | None = None,
               seed: int | None = None) -> TaskBatch:
        """Draw ``batch`` episodes from a seeded generator (``rng`` or ``seed``, not both)."""
        batch = V.integer(batch, "batch")
        gen = V.make_rng(rng, seed)
        x0, targets, *cues = self._sample(batch, gen)
        return TaskBatch(np.ascontiguousarray(x0, dtype=float),
                         np.ascontiguousarray(targets, dtype=float),
                         np.ascontiguousarray(cues[0], dtype=float) if cues else None)

    # -- outputs, velocities and their exact Jacobians -----------------------------------
    def _states(self, x) -> np.ndarray:
        return V.as_float_array(x, "x", (None, self.plant.state_dim))

    def outputs(self, x: ArrayLike) -> np.ndarray:
        """Outputs ``y[B, k]`` (the space of the targets) of states ``x[B, n]``."""
        return self._outputs(self._states(x))

    def outputs_jacobian(self, x: ArrayLike) -> np.ndarray:
        """Exact ``dy/dx`` of :meth:`outputs` at states ``x[B, n]``, shape ``[B, k, n]``."""
        return self._outputs_jacobian(self._states(x))

    def velocity(self, x: ArrayLike) -> np.ndarray:
        """Velocity ``v[B, q]`` penalised by the final-velocity term, for states ``x[B, n]``."""
        return self._velocity(self._states(x))

    def velocity_jacobian(self, x: ArrayLike) -> np.ndarray:
        """Exact ``dv/dx`` of :meth:`velocity` at states ``x[B, n]``, shape ``[B, q, n]``."""
        return self._velocity_jacobian(self._states(x))

    def observe(self, X: ArrayLike) -> np.ndarray:
        """:meth:`outputs` of every state of ``X[B, T + 1, n]``: ``[B, T + 1, k]``."""
        X = V.as_float_array(X, "X", (None, None, self.plant.state_dim))
        B, T1, n = X.shape
        return self._outputs(X.reshape(B * T1, n)).reshape(B, T1, self.output_dim)

    def _outputs(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _outputs_jacobian(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _velocity(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _velocity_jacobian(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- cost ------------------------------------------------------------------------------
    def step_weights(self, targets: ArrayLike) -> np.ndarray:
        """Coefficient ``c[B, T]`` of each step's weighted squared error ``E_t`` in the cost.

        ``c[b, t - 1]`` multiplies ``E_t = sum_i w_i (y_i(x_t) - targets[b, t - 1, i])^2``:
        ``tracking / n_targeted`` at every targeted step of sample ``b`` plus
        ``final_error`` at its last targeted step; 0 where the target is NaN.
        """
        targets = V.as_float_array(targets, "targets", (None, None, self.output_dim),
                                   allow_nan=True)
        has = ~np.isnan(targets).any(axis=2)
        B, T = has.shape
        c = np.zeros((B, T))
        if self.weights.tracking:
            cnt = np.maximum(has.sum(axis=1), 1)
            c += self.weights.tracking * has / cnt[:, None]
        if self.weights.final_error:
            rows = np.flatnonzero(has.any(axis=1))
            last = T - 1 - np.argmax(has[rows, ::-1], axis=1)
            c[rows, last] += self.weights.final_error
        return c

    def cost(self, X: ArrayLike, U: ArrayLike, targets: ArrayLike) -> np.ndarray:
        """Per-sample cost ``[B]`` of states ``X[B, T+1, n]``, controls ``U[B, T, m]``.

        ``targets[B, T, k]`` as from :meth:`sample` (NaN = no target); the formula is in the
        module docstring.
        """
        n, m = self.plant.state_dim, self.plant.control_dim
        X = V.as_finite_array(X, "X", (None, None, n))
        B, T1 = X.shape[0], X.shape[1]
        U = V.as_finite_array(U, "U", (B, T1 - 1, m))
        targets = V.as_float_array(targets, "targets", (B, T1 - 1, self.output_dim),
                                   allow_nan=True)
        Y = self.observe(X)[:, 1:]
        c = self.step_weights(targets)
        has = ~np.isnan(targets).any(axis=2)
        err = (self.output_weights * (Y - np.where(has[:, :, None], targets, 0.0)) ** 2).sum(axis=2)
        J = self.weights.effort * self.plant.dt * (U**2).sum(axis=(1, 2))
        J = J + (c * np.where(has, err, 0.0)).sum(axis=1)
        if self.weights.final_velocity:
            J = J + self.weights.final_velocity * (self._velocity(X[:, -1]) ** 2).sum(axis=1)
        return J


# -- arms -----------------------------------------------------------------------------------
def reach_radii(arm: PlanarArm | MuscleArm) -> tuple[float, float]:
    """Distances from the shoulder that the hand of ``arm`` can reach, ``(r_min, r_max)``.

    For a planar chain of links ``l_a`` whose joints turn freely, every distance between
    ``max(0, 2 max(l) - sum(l))`` (the longest link folded back by all the others) and
    ``sum(l)`` (fully stretched) is reachable. Joint stops are not taken into account.
    """
    lengths = np.asarray(arm.lengths, dtype=float)
    total = float(lengths.sum())
    return max(0.0, 2.0 * float(lengths.max()) - total), total


def _default_posture(arm: PlanarArm | MuscleArm) -> np.ndarray:
    """Shoulder 45 deg, elbow 90 deg (and wrist 0) - a central workspace posture."""
    q = np.zeros(arm.n_links)
    q[0] = np.pi / 4
    q[1] = np.pi / 2
    return q


class _ArmTask(Task):
    """Arm tasks: outputs are the hand position, the velocity is the hand velocity."""

    output_names = ("hand_x", "hand_y")
    velocity_names = ("hand_vx", "hand_vy")

    def _outputs(self, x) -> np.ndarray:
        return self.plant.hand_position(x)

    def _outputs_jacobian(self, x) -> np.ndarray:
        N = self.plant.n_links
        J = np.zeros((x.shape[0], 2, self.plant.state_dim))
        J[:, :, :N] = self.plant.hand_jacobian(x)
        return J

    def _velocity(self, x) -> np.ndarray:
        return self.plant.hand_velocity(x)

    def _velocity_jacobian(self, x) -> np.ndarray:
        return self.plant.hand_velocity_jacobian(x)

    def _posture(self, posture) -> np.ndarray:
        if posture is None:
            return _default_posture(self.plant)
        return V.as_finite_array(posture, "posture", (self.plant.n_links,))

    def _rest(self, q, B) -> np.ndarray:
        x0 = np.zeros((B, self.plant.state_dim))
        x0[:, : self.plant.n_links] = q
        if isinstance(self.plant, MuscleArm):  # muscles at rest: activations at their floor
            x0[:, 2 * self.plant.n_links:] = self.plant.min_activation
        return x0


class Reach(_ArmTask):
    """Point-to-point reaching with an arm.

    Parameters
    ----------
    plant : TwoLinkArm, ThreeLinkArm or MuscleArm
    targets : {"centre_out", "disc", "random"}
        "centre_out": ``n_targets`` (default 8) targets evenly spaced on a circle of radius
        ``distance`` (default 0.10 m) around the start hand position; sample ``i`` of a
        batch goes to target ``i mod n_targets``. "disc": targets drawn uniformly (by area)
        from the disc of radius ``distance`` around the start hand position, in any
        direction. "random": hand positions of uniformly drawn joint angles (shoulder in
        [-pi/4, 3pi/4], elbow in [pi/6, 5pi/6], wrist in [-pi/4, pi/4]), so every target
        is reachable.
    n_targets : int
        Number of centre-out targets; default 8.
    distance : float
        Centre-out target distance (the disc's radius for "disc") from the start hand
        position (m); default 0.10. A ``ValueError`` naming ``distance`` is raised if a
        target can fall outside the arm's workspace (:func:`reach_radii`).
    posture : array_like (N,), optional
        Start joint angles; default shoulder 45 deg, elbow 90 deg.
    horizon : int
        Steps; default 0.5 s worth.
    hold_steps : int
        The target is defined on the last ``hold_steps`` steps (NaN before); default 1.
    weights : CostWeights
        Default final error 1, effort 1e-4, final velocity 0.1.
    """

    def __init__(self, plant: PlanarArm | MuscleArm, *, targets: str = "centre_out",
                 n_targets: int = 8,
                 distance: float = 0.10, posture=None, horizon: int | None = None,
                 hold_steps: int = 1,
                 weights: CostWeights = CostWeights(1.0, 1e-4, 0.1, 0.0)) -> None:
        _remember(self, locals())
        if horizon is None:
            horizon = max(1, int(round(0.5 / plant.dt))) if isinstance(plant, _ARMS) else 1
        self._common(plant, _ARMS, horizon, weights)
        if targets not in ("centre_out", "disc", "random"):
            raise ValueError(f"targets must be 'centre_out', 'disc' or 'random', got "
                             f"{targets!r}")
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
        elif self.mode == "disc":
            # the disc's rim holds its targets farthest from and nearest to the shoulder
            rim = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)
            self._check_reachable(self.start + self.distance * np.stack(
                [np.cos(rim), np.sin(rim)], axis=1))

    def _check_reachable(self, goals: np.ndarray) -> None:
        """Raise if a target lies outside the arm's workspace (joint stops aside)."""
        r_min, r_max = reach_radii(self.plant)
        r = np.linalg.norm(goals, axis=1)
        bad = np.flatnonzero((r < r_min) | (r > r_max))
        if bad.size:
            i = int(bad[0])
            which = f"centre-out target {i}" if self.mode == "centre_out" else "a disc target"
            raise ValueError(
                f"distance={self.distance!r} m puts {which} at "
                f"({goals[i, 0]:.4g}, {goals[i, 1]:.4g}) m, {r[i]:.4g} m from the shoulder, "
                f"outside the arm's workspace (distances {r_min:.4g} to {r_max:.4g} m); "
                f"use a smaller distance or another posture")

    def goals(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """Target hand positions ``[B, 2]``."""
        if self.mode == "centre_out":
            k = np.arange(batch) % self.n_targets
            ang = 2 * np.pi * k / self.n_targets
            return self.start + self.distance * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        if self.mode == "disc":
            r = self.distance * np.sqrt(rng.uniform(size=batch))
            ang = rng.uniform(0.0, 2 * np.pi, size=batch)
            return self.start + r[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
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


class DelayedReach(Reach):
    """Reaching with an instructed delay and a go cue, with catch trials.

    An episode: the target appears at ``target_on`` (s); the go cue comes at a time drawn
    uniformly from ``go`` (s); the hand must stay at the start until the go cue and be at
    the target from ``movement`` (s) after it to the end of the episode. On a catch trial
    (drawn with probability ``catch``) the target appears but no go cue comes, and the hand
    must hold at the start throughout.

    The network reads the task's inputs (``ClosedLoop(..., inputs="task")``), given in
    ``TaskBatch.inputs``: ``target_dx``, ``target_dy``, the target relative to the start
    hand position (m; zero before it appears), and ``go``, 0 before the go cue and 1 from
    it on. The targets hold the start position before the go cue, nothing (NaN) during
    the movement, and the target after it; the cost's ``tracking`` term averages the
    squared hand error over those steps.

    Parameters
    ----------
    plant : PlanarArm or MuscleArm
    targets, n_targets, distance, posture
        As for :class:`Reach` ("centre_out", "disc" or "random" targets).
    target_on : float
        Time of the target's appearance (s); default 0.05.
    go : (float, float)
        Range of the go cue's time (s); default (0.15, 0.35).
    movement : float
        Time from the go cue to the target (s); default 0.45.
    catch : float
        Probability of a catch trial, in [0, 1); default 0.
    horizon : int, optional
        Steps; default: the latest go cue plus ``movement`` plus 0.1 s of holding.
    weights : CostWeights
        Default tracking 1, final error 1, final velocity 0.1, effort 1e-4.
    """

    input_names = ("target_dx", "target_dy", "go")

    def __init__(self, plant: PlanarArm | MuscleArm, *, targets: str = "centre_out",
                 n_targets: int = 8, distance: float = 0.10, posture=None,
                 target_on: float = 0.05,
                 go: tuple[float, float] = (0.15, 0.35), movement: float = 0.45,
                 catch: float = 0.0, horizon: int | None = None,
                 weights: CostWeights = CostWeights(1.0, 1e-4, 0.1, 1.0)) -> None:
        _remember(self, locals())
        if not isinstance(plant, _ARMS):
            raise TypeError(f"plant must be a PlanarArm or MuscleArm, got "
                            f"{type(plant).__name__}")
        dt = plant.dt
        self.target_on = V.nonnegative(target_on, "target_on")
        go = V.as_finite_array(go, "go", (2,))
        if not 0 <= go[0] <= go[1]:
            raise ValueError(f"go must be a range (earliest, latest) of times >= 0 (s), got "
                             f"{tuple(go)}")
        self.go = (float(go[0]), float(go[1]))
        self.movement = V.positive(movement, "movement")
        self.catch = V.nonnegative(catch, "catch")
        if self.catch >= 1:
            raise ValueError(f"catch must be a probability in [0, 1), got {catch!r}")
        self._on = int(round(self.target_on / dt))
        self._go = (int(round(self.go[0] / dt)), int(round(self.go[1] / dt)))
        self._move = max(1, int(round(self.movement / dt)))
        if horizon is None:
            horizon = self._go[1] + self._move + max(1, int(round(0.1 / dt)))
        super().__init__(plant, targets=targets, n_targets=n_targets, distance=distance,
                         posture=posture, horizon=horizon, weights=weights)
        if self._on > self._go[0]:
            raise ValueError(f"target_on ({self.target_on} s) must not come after the "
                             f"earliest go cue ({self.go[0]} s)")
        if self._go[1] + self._move >= self.horizon:
            raise ValueError(f"the latest go cue ({self.go[1]} s) plus movement "
                             f"({self.movement} s) must end before the horizon "
                             f"({self.horizon} steps of {dt} s)")

    def _sample(self, B, rng):
        goals = self.goals(B, rng)
        go = rng.integers(self._go[0], self._go[1] + 1, size=B)
        caught = rng.uniform(size=B) < self.catch if self.catch else np.zeros(B, bool)
        return self._rest(self.posture, B), *self.episodes(goals, go, caught)

    def episodes(self, goals: ArrayLike, go: ArrayLike, catch: ArrayLike | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(targets [B, T, 2], inputs [B, T, 3])`` of episodes with these goals
        ``[B, 2]``, go-cue steps ``[B]`` and catch flags ``[B]`` (default none): for
        held-out batches built by hand, ``TaskBatch(x0, *task.episodes(goals, go))``."""
        goals = V.as_finite_array(goals, "goals", (None, 2))
        B, T = goals.shape[0], self.horizon
        go = np.asarray(go)
        if go.shape != (B,) or go.dtype.kind not in "iu" or (go < self._on).any() \
                or (go + self._move >= T).any():
            raise ValueError(f"go must be {B} integer steps in {self._on}..{T - self._move - 1}"
                             f" (after the target appears, leaving the movement time), got "
                             f"{go!r}")
        catch = np.zeros(B, bool) if catch is None else np.asarray(catch, dtype=bool)
        if catch.shape != (B,):
            raise ValueError(f"catch must be {B} flags, got shape {catch.shape}")
        t = np.arange(T)
        # targets[:, t] is the goal of the state after step t
        before = t[None, :] + 1 <= go[:, None]
        after = t[None, :] + 1 >= go[:, None] + self._move
        hold = before | catch[:, None]
        reach = after & ~catch[:, None]
        targets = np.full((B, T, 2), np.nan)
        targets[hold] = np.broadcast_to(self.start, (B, T, 2))[hold]
        targets[reach] = np.broadcast_to(goals[:, None, :], (B, T, 2))[reach]
        inputs = np.zeros((B, T, 3))
        inputs[:, self._on:, :2] = (goals - self.start)[:, None, :]
        inputs[:, :, 2] = (t[None, :] >= go[:, None]) & ~catch[:, None]
        return targets, inputs


class Hold(_ArmTask):
    """Hold the hand still at a posture while a constant force pushes it.

    ``plant`` is replaced by ``plant.replace(constant_force=force)``; targets are the start
    hand position at every step. Default force (0, 5) N, horizon 1 s.
    """

    def __init__(self, plant: PlanarArm | MuscleArm, *, force=(0.0, 5.0), posture=None,
                 horizon: int | None = None,
                 weights: CostWeights = CostWeights(1.0, 1e-4, 0.1, 1.0)) -> None:
        _remember(self, locals())
        if not isinstance(plant, _ARMS):
            raise TypeError(f"plant must be a PlanarArm or MuscleArm, got {type(plant).__name__}")
        if horizon is None:
            horizon = max(1, int(round(1.0 / plant.dt)))
        force = V.as_finite_array(force, "force", (2,))
        self._common(plant.replace(constant_force=force), _ARMS, horizon, weights)
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

    def __init__(self, plant: PlanarArm | MuscleArm, trajectory=None, *,
                 weights: CostWeights = CostWeights(0.0, 1e-4, 0.0, 1.0)) -> None:
        _remember(self, locals())
        if not isinstance(plant, _ARMS):
            raise TypeError(f"plant must be a PlanarArm or MuscleArm, got {type(plant).__name__}")
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
        self._common(plant, _ARMS, traj.shape[1] - 1, weights)
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
class _PendulumTask(Task):
    """Pendulum tasks: outputs ``(cos theta, sin theta, theta_dot)``, velocity ``theta_dot``."""

    output_names = ("cos_theta", "sin_theta", "theta_dot")
    velocity_names = ("theta_dot",)

    def _outputs(self, x) -> np.ndarray:
        return np.stack([np.cos(x[:, 0]), np.sin(x[:, 0]), x[:, 1]], axis=1)

    def _outputs_jacobian(self, x) -> np.ndarray:
        J = np.zeros((x.shape[0], 3, 2))
        J[:, 0, 0] = -np.sin(x[:, 0])
        J[:, 1, 0] = np.cos(x[:, 0])
        J[:, 2, 1] = 1.0
        return J

    def _velocity(self, x) -> np.ndarray:
        return x[:, 1:2].copy()

    def _velocity_jacobian(self, x) -> np.ndarray:
        return _selection(x.shape[0], [1], 2)


class SwingUp(_PendulumTask):
    """Swing the pendulum up from hanging (theta = pi) and balance it upright.

    Outputs ``(cos theta, sin theta, theta_dot)``; target ``(1, 0, 0)`` over the last
    ``balance_steps`` steps (default half the horizon), NaN before. Initial angle
    ``pi + noise * N(0, 1)`` (default noise 0.1 rad), velocity 0. Default horizon 200 steps.
    For Gymnasium's ``Pendulum-v1`` objective see :class:`PendulumV1`.
    """

    def __init__(self, plant: Pendulum, *, horizon: int = 200, balance_steps: int | None = None,
                 noise: float = 0.1,
                 weights: CostWeights = CostWeights(1.0, 1e-3, 0.1, 1.0)) -> None:
        _remember(self, locals())
        self._common(plant, Pendulum, horizon, weights)
        bs = self.horizon // 2 if balance_steps is None else balance_steps
        self.balance_steps = V.integer(bs, "balance_steps")
        if self.balance_steps > self.horizon:
            raise ValueError(f"balance_steps must be <= horizon, got {bs}")
        self.noise = V.nonnegative(noise, "noise")

    def _sample(self, B, rng):
        x0 = np.zeros((B, 2))
        x0[:, 0] = np.pi + self.noise * rng.standard_normal(B)
        targets = np.full((B, self.horizon, 3), np.nan)
        targets[:, self.horizon - self.balance_steps:] = (1.0, 0.0, 0.0)
        return x0, targets


def wrap_angle(theta: ArrayLike) -> np.ndarray:
    """``theta`` wrapped to ``[-pi, pi)`` as Gymnasium's ``Pendulum-v1`` wraps it:
    ``((theta + pi) mod 2 pi) - pi``."""
    return np.mod(np.asarray(theta, dtype=float) + np.pi, 2 * np.pi) - np.pi


#: the choices of PendulumV1's angle term
PENDULUM_V1_ANGLES = ("cosine", "wrapped")


class PendulumV1(_PendulumTask):
    r"""Gymnasium's ``Pendulum-v1`` objective in weighted squares of outputs of the state.

    ``Pendulum-v1`` charges ``theta_n^2 + 0.1 theta_dot^2 + 0.001 u^2`` at each of its 200
    steps (``theta_n``: theta wrapped to ``[-pi, pi)``, :func:`wrap_angle`; ``u`` the torque
    clipped to ±2) and starts from ``theta ~ U(-pi, pi)``, ``theta_dot ~ U(-1, 1)``. This task
    keeps the cost a sum of squares, with one of two angle terms (``angle``):

    * ``"wrapped"``: Gymnasium's term itself. Outputs ``(theta_n, theta_dot)``, targets
      ``(0, 0)``, ``output_weights = (1, 0.1)``. The output ``theta_n`` jumps from ``pi`` to
      ``-pi`` where theta crosses ``pi`` (mod ``2 pi``, the pendulum hanging down), but its
      square does not: ``theta_n^2 = min_k (theta - 2 pi k)^2`` is continuous, smooth
      everywhere else with derivative ``2 theta_n`` and second derivative 2, and has a
      concave kink (a ridge, the cost's maximum) at the wrap point. Its Gauss-Newton term,
      ``dtheta_n/dtheta = 1``, is then exact wherever the cost is differentiable, that is
      for every state not exactly at the wrap point (a set of measure zero, which a rollout
      meets with probability zero). Across the kink the cost lies *below* the quadratic
      model of the piece it started on (the minimum of the pieces), so a step that crosses
      it does better than the model predicts, never worse: the curvature errs on the safe
      side. Unlike ``2 - 2 cos theta`` the cost is steep (slope ``2 pi``) rather than flat at
      the bottom, which pushes away from the do-nothing policy.
    * ``"cosine"`` (default): a smooth periodic twin. Outputs ``(cos theta, sin theta,
      theta_dot)``, targets ``(1, 0, 0)``, ``output_weights = (1, 1, 0.1)``: the squares of
      the residuals ``(1 - cos theta, sin theta)`` add up to ``2 - 2 cos theta`` (smooth,
      ``= theta_n^2 - theta_n^4 / 12 + ...``: equal to ``theta_n^2`` to fourth order, but 4
      rather than ``pi^2`` when hanging, so slow swing-ups cost it less than Gymnasium).
      The ``plants/PendulumSwingUp-v0`` environment observes these outputs.

    Both use ``tracking = 1``, ``final_error = final_velocity = 0`` and ``effort = 0.001 /
    (T dt)``, so that (``T = horizon``, ``dt = plant.dt``, ``a(theta)`` the angle term)::

        cost(X, U, targets) = (1 / T) sum_{t=0}^{T-1} [ a(theta_{t+1}) + 0.1 theta_dot_{t+1}^2
                                                       + 0.001 u_t^2 ]

    i.e. Gymnasium's per-step cost averaged over the episode (the return of an episode is
    about ``-T`` times this). Which state each term uses: Gymnasium's reward at step ``t``
    charges the state *before* the step, ``(theta_t, theta_dot_t)``, with ``u_t``; here, as in
    every task, the targets apply to the state *after* each step, ``x_{t+1} = X[:, t + 1]``,
    with ``u_t``. So, with ``angle="wrapped"``, ``T cost = -return - c(x_0) + c(x_T)``
    exactly, ``c(x) = theta_n^2 + 0.1 theta_dot^2`` (the initial state does not depend on the
    controls; the last state's term is a terminal cost). ``cost`` charges ``U`` as given,
    before the plant's clipping to ±``max_torque``; keep the controls in range (e.g. a
    bounded output layer) for the effort term to equal Gymnasium's.

    With ``energy_weight > 0`` one more output shapes the cost (energy shaping, a standard
    aid for swing-up): the pendulum's energy relative to its energy at rest upright, ``e =
    E(x) / E_top`` with ``E = m l^2 theta_dot^2 / 6 + m g l cos(theta) / 2`` and ``E_top = m g
    l / 2``, against the target 1 with weight ``energy_weight``. Its residual ``e - 1`` is
    zero upright at rest, so the shaping does not move the optimum of balancing, while it
    rewards pumping energy when far from it.

    Parameters
    ----------
    plant : Pendulum or Dynamics
        Use the default ``Pendulum()`` (Gymnasium's constants and update) for
        ``Pendulum-v1``'s dynamics. Any other plant with the pendulum's layout - state
        ``[theta, theta_dot]``, one control, a ``dt`` - works too, e.g.
        ``plants.GymDynamics(gymnasium.make("Pendulum-v1"))``.
    horizon : int
        Steps per episode; default 200 (``Pendulum-v1``'s time limit).
    energy_weight : float
        Weight of the energy-shaping output (default 0: exactly the objective above). Needs
        the pendulum's mass, gravity and length: a ``Pendulum``'s, or ``m``, ``g`` and ``l``
        in the plant's ``parameters`` (``GymDynamics`` of ``Pendulum-v1``).
    angle : {"cosine", "wrapped"}
        The angle term: ``2 - 2 cos theta`` (default) or Gymnasium's ``theta_n^2``.
    """

    def __init__(self, plant: Pendulum | Dynamics, *, horizon: int = 200,
                 energy_weight: float = 0.0, angle: str = "cosine") -> None:
        _remember(self, locals())
        if not isinstance(plant, Pendulum):
            if not isinstance(plant, Dynamics):
                raise TypeError("plant must be a Pendulum or follow the plants.Dynamics "
                                f"protocol, got {type(plant).__name__}")
            if (plant.state_dim, plant.control_dim) != (2, 1):
                raise ValueError("plant must have the pendulum's layout: state [theta, "
                                 "theta_dot] and one control (state_dim 2, control_dim 1), got "
                                 f"state_dim {plant.state_dim}, control_dim {plant.control_dim}")
        if angle not in PENDULUM_V1_ANGLES:
            raise ValueError(f"angle must be one of {PENDULUM_V1_ANGLES}, got {angle!r}")
        self.angle = angle
        T = V.integer(horizon, "horizon")
        dt = V.positive(plant.dt, "plant.dt")
        self.energy_weight = V.nonnegative(energy_weight, "energy_weight")
        if angle == "wrapped":
            self.output_names = ("theta_wrapped", "theta_dot")
            weights, self._goal = (1.0, 0.1), (0.0, 0.0)
        else:
            weights, self._goal = (1.0, 1.0, 0.1), (1.0, 0.0, 0.0)
        if self.energy_weight:
            self._mgl = self._mass_gravity_length(plant)
            self.output_names = (*self.output_names, "energy")
            weights, self._goal = (*weights, self.energy_weight), (*self._goal, 1.0)
        weights = CostWeights(final_error=0.0, effort=0.001 / (T * dt), final_velocity=0.0,
                              tracking=1.0, output_weights=weights)
        self._common(plant, Pendulum if isinstance(plant, Pendulum) else object, T, weights)

    @staticmethod
    def _mass_gravity_length(plant) -> tuple[float, float, float]:
        """``(m, g, l)`` of a ``Pendulum``, or from the ``parameters`` of another plant
        (``plants.GymDynamics(gymnasium.make("Pendulum-v1"))`` has them)."""
        if isinstance(plant, Pendulum):
            return plant.m, plant.g, plant.l
        params = getattr(plant, "parameters", None) or {}
        try:
            return tuple(V.positive(params[k], f"plant.parameters[{k!r}]")
                         for k in ("m", "g", "l"))
        except KeyError:
            raise TypeError(f"energy_weight needs the pendulum's mass, gravity and length: a "
                            f"plants.Pendulum, or a plant whose parameters hold 'm', 'g' and "
                            f"'l'; {type(plant).__name__} has none") from None

    def _angle_outputs(self, x) -> tuple[np.ndarray, np.ndarray]:
        """The outputs without the energy, and their Jacobian."""
        if self.angle == "cosine":
            return super()._outputs(x), super()._outputs_jacobian(x)
        y = np.stack([wrap_angle(x[:, 0]), x[:, 1]], axis=1)
        return y, _selection(x.shape[0], [0, 1], 2)

    def _outputs(self, x) -> np.ndarray:
        y = self._angle_outputs(x)[0]
        if not self.energy_weight:
            return y
        m, g, l = self._mgl
        e = (m * l**2 * x[:, 1] ** 2 / 6.0 + m * g * l / 2.0 * np.cos(x[:, 0])) / (m * g * l / 2.0)
        return np.concatenate([y, e[:, None]], axis=1)

    def _outputs_jacobian(self, x) -> np.ndarray:
        J = self._angle_outputs(x)[1]
        if not self.energy_weight:
            return J
        m, g, l = self._mgl
        top = m * g * l / 2.0
        de = np.stack([-top * np.sin(x[:, 0]), m * l**2 * x[:, 1] / 3.0], axis=1) / top
        return np.concatenate([J, de[:, None, :]], axis=1)

    def _sample(self, B, rng):
        # the draw of Pendulum-v1's reset: uniform(low=-high, high=high), high = (pi, 1)
        high = np.array([np.pi, 1.0])
        x0 = rng.uniform(low=-high, high=high, size=(B, 2))
        return x0, np.broadcast_to(self._goal, (B, self.horizon, self.output_dim)).copy()


class Balance(Task):
    """Keep the cart-pole upright and centred: target state 0 at every step.

    Outputs: the state ``(x, x_dot, theta, theta_dot)``; velocity ``(x_dot, theta_dot)``.
    Initial states uniform in ``[-spread, spread]^4`` (default 0.05, Gymnasium's reset).
    Default horizon 500 steps.
    """

    output_names = ("x", "x_dot", "theta", "theta_dot")
    velocity_names = ("x_dot", "theta_dot")

    def __init__(self, plant: CartPole, *, horizon: int = 500, spread: float = 0.05,
                 weights: CostWeights = CostWeights(1.0, 1e-4, 0.0, 1.0)) -> None:
        _remember(self, locals())
        self._common(plant, CartPole, horizon, weights)
        self.spread = V.nonnegative(spread, "spread")

    def _outputs(self, x) -> np.ndarray:
        return x.copy()

    def _outputs_jacobian(self, x) -> np.ndarray:
        return _selection(x.shape[0], range(4), 4)

    def _velocity(self, x) -> np.ndarray:
        return x[:, [1, 3]]

    def _velocity_jacobian(self, x) -> np.ndarray:
        return _selection(x.shape[0], [1, 3], 4)

    def _sample(self, B, rng):
        x0 = rng.uniform(-self.spread, self.spread, size=(B, 4))
        return x0, np.zeros((B, self.horizon, 4))


# -- any plant -------------------------------------------------------------------------------
def _default_velocity_index(plant) -> list[int]:
    """Velocity coordinates of the built-in mechanical plants; none for other plants."""
    if isinstance(plant, Pendulum):
        return [1]
    if isinstance(plant, CartPole):
        return [1, 3]
    if isinstance(plant, _ARMS):
        return list(range(plant.n_links, 2 * plant.n_links))
    return []


class StateTarget(Task):
    """Bring any plant to a target state at chosen steps.

    Outputs are the state itself (``output_names = ("x[0]", ..., "x[n-1]")``); the target
    state applies at the states ``X[:, s]`` for ``s`` in ``steps`` (NaN elsewhere). Initial
    states are drawn uniformly from the box ``centre ± spread`` or given.

    Parameters
    ----------
    plant : Dynamics
        Any object satisfying :class:`plants.Dynamics`.
    target : array_like, shape (n,)
        The target state (finite; use ``output_weights`` of 0 to ignore coordinates).
    horizon : int
        Number of control steps ``T``.
    steps : sequence of int, optional
        State indices ``s`` in ``1 .. horizon`` (the state after ``s`` steps) at which the
        target applies; default ``(horizon,)``, the last state only.
    spread : float or array_like (n,)
        Half-widths of the box of initial states; default 0.5.
    centre : array_like (n,), optional
        Centre of the box; default the origin.
    x0 : array_like (n,) or (B, n), optional
        Given initial states (then ``spread`` and ``centre`` are not used): one state for
        every sample, or one per sample, in which case ``sample`` must ask for ``B``.
    velocity_index : sequence of int, optional
        State coordinates penalised by the final-velocity term; default the velocity
        coordinates of the built-in mechanical plants (``Pendulum``, ``CartPole``, the arms)
        and none otherwise (a ``final_velocity`` weight then raises).
    weights : CostWeights
        Default final error 1, nothing else.
    """

    def __init__(self, plant: Dynamics, target: ArrayLike, *, horizon: int,
                 steps: Sequence[int] | None = None, spread: float | ArrayLike = 0.5,
                 centre: ArrayLike | None = None, x0: ArrayLike | None = None,
                 velocity_index: Sequence[int] | None = None,
                 weights: CostWeights = CostWeights(1.0, 0.0, 0.0, 0.0)) -> None:
        _remember(self, locals())
        if not isinstance(plant, Dynamics):
            raise TypeError("plant must satisfy the plants.Dynamics protocol, got "
                            f"{type(plant).__name__}")
        n = int(plant.state_dim)
        self.output_names = tuple(f"x[{i}]" for i in range(n))
        vi = _default_velocity_index(plant) if velocity_index is None else velocity_index
        self.velocity_index = self._indices(vi, "velocity_index", 0, n - 1)
        self.velocity_names = tuple(f"x[{i}]" for i in self.velocity_index)
        self._common(plant, object, horizon, weights)
        if self.weights.final_velocity and not self.velocity_index:
            raise ValueError("weights.final_velocity needs velocity coordinates: pass "
                             f"velocity_index (this {type(plant).__name__} has none by default)")
        self.target = V.as_finite_array(target, "target", (n,))
        st = (self.horizon,) if steps is None else steps
        self.steps = tuple(sorted(set(self._indices(st, "steps", 1, self.horizon))))
        if not self.steps:
            raise ValueError("steps must name at least one step in 1 .. horizon, got none")
        if x0 is None:
            self.spread = V.noise_std(spread, "spread", n)
            self.centre = (np.zeros(n) if centre is None
                           else V.as_finite_array(centre, "centre", (n,)))
            self.x0 = None
        else:
            try:
                ndim = np.ndim(x0)
            except (TypeError, ValueError):  # ragged: let the check below name the argument
                ndim = 2
            if ndim == 1:
                self.x0 = V.as_finite_array(x0, "x0", (n,))[None]
            else:
                self.x0 = V.as_finite_array(x0, "x0", (None, n))

    @staticmethod
    def _indices(values, name: str, low: int, high: int) -> tuple[int, ...]:
        try:
            items = list(values)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of integers, got {values!r}") from None
        out = []
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be a sequence of integers, got {values!r}")
            if not low <= int(v) <= high:
                raise ValueError(f"{name} entries must be in {low} .. {high}, got {int(v)}")
            out.append(int(v))
        return tuple(out)

    @classmethod
    def demo(cls, **kwargs: Any) -> StateTarget:
        """The project's demo task on :meth:`plants.LinearPlant.demo`.

        Initial states uniform in ``(-0.5, 0.5)^2`` (the draws of the reference package's
        ``default_rng(seed).uniform(-0.5, 0.5, (batch, 2))``), target position 1 and velocity
        0 at step 15 only (final error), horizon 15. Keyword arguments override these.
        """
        kwargs.setdefault("horizon", 15)
        kwargs.setdefault("spread", 0.5)
        return cls(LinearPlant.demo(), (1.0, 0.0), **kwargs)

    def _outputs(self, x) -> np.ndarray:
        return x.copy()

    def _outputs_jacobian(self, x) -> np.ndarray:
        n = self.plant.state_dim
        return _selection(x.shape[0], range(n), n)

    def _velocity(self, x) -> np.ndarray:
        return x[:, list(self.velocity_index)]

    def _velocity_jacobian(self, x) -> np.ndarray:
        return _selection(x.shape[0], self.velocity_index, self.plant.state_dim)

    def _sample(self, B, rng):
        n = self.plant.state_dim
        if self.x0 is None:
            x0 = rng.uniform(self.centre - self.spread, self.centre + self.spread, size=(B, n))
        elif self.x0.shape[0] in (1, B):
            x0 = np.broadcast_to(self.x0, (B, n)).copy()
        else:
            raise ValueError(f"batch must be {self.x0.shape[0]} for the given x0, got {B}")
        targets = np.full((B, self.horizon, n), np.nan)
        targets[:, [s - 1 for s in self.steps]] = self.target
        return x0, targets
