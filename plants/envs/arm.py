"""The planar arms as Gymnasium environments: ``plants/ArmReach-v0``, ``plants/Arm3Reach-v0``
and ``plants/ArmHold-v0``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium.vector import AutoresetMode

from ..arms import PlanarArm, ThreeLinkArm, TwoLinkArm
from ..tasks import Hold, Reach, Task
from . import _step
from ._core import Layout, PlantEnv, PlantVectorEnv

__all__ = ["ArmHoldEnv", "ArmHoldVectorEnv", "ArmReachEnv", "ArmReachVectorEnv"]

#: Torque limits (N m) of the arms in the environments, shoulder first. The arms have no
#: limits of their own; these are about 2-3 times the largest torque a joint needs to hold
#: the hand against ``Hold``'s 5 N push at the default posture (two links: 1.2 N m at the
#: elbow; three links: 1.6 N m at the elbow, 0.7 N m at the wrist), which also leaves room
#: for a 10 cm reach in 0.5 s.
TORQUE_LIMITS = {2: (4.0, 4.0), 3: (4.0, 4.0, 2.0)}
#: Observation bound of the joint velocities (rad/s); beyond it the observation saturates
#: (the state does not). A reach peaks at a few rad/s.
MAX_JOINT_SPEED = 50.0


def _arm(n_links: int, max_torque) -> PlanarArm:
    if n_links not in TORQUE_LIMITS:
        raise ValueError(f"n_links must be 2 or 3, got {n_links!r}")
    torque = TORQUE_LIMITS[n_links] if max_torque is None else max_torque
    return (TwoLinkArm if n_links == 2 else ThreeLinkArm)(max_torque=torque)


class _ArmLayout(Layout):
    kernel_outputs = (("hand_x", "hand_y"), ("hand_vx", "hand_vy"))

    def __init__(self, task: Task) -> None:
        super().__init__(task)
        N = self.N = self.plant.n_links
        self.obs_names = (tuple(f"cos_q{i + 1}" for i in range(N))
                          + tuple(f"sin_q{i + 1}" for i in range(N))
                          + tuple(f"q{i + 1}_dot" for i in range(N))
                          + ("hand_x", "hand_y", "goal_x", "goal_y", "time"))
        r = float(np.sum(self.plant.lengths))
        w = MAX_JOINT_SPEED
        self.target_low, self.target_high = [-r, -r], [r, r]
        self.obs_low = [-1.0] * (2 * N) + [-w] * N + [-r, -r, -r, -r, 0.0]
        self.obs_high = [1.0] * (2 * N) + [w] * N + [r, r, r, r, 1.0]
        self.reach = r
        self.goal_columns = slice(3 * N + 2, 3 * N + 4)
        self.kernels = (_step.features_arm, _step.step_arm)
        self.finish()

    def _state_names(self) -> str:
        N = self.N
        return f"[q1..q{N}, q1_dot..q{N}_dot]"

    def constants(self):
        return np.asarray(self.plant.lengths, dtype=float)  # the kernels' hand position

    def decode(self, obs):
        N = self.N
        q = np.arctan2(obs[:, N:2 * N], obs[:, :N])
        return np.concatenate([q, obs[:, 2 * N:3 * N]], axis=1), obs[:, 3 * N + 2:3 * N + 4].copy()

    def drawing(self, ax):
        r = 1.1 * self.reach
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.add_patch(_circle(self.reach, color="0.92", zorder=0))
        force = getattr(self.task, "force", None)
        (goal_mark,) = ax.plot([], [], "o", mfc="none", mec="tab:green", mew=2.5, ms=16)
        (links,) = ax.plot([], [], "-", color="tab:blue", lw=7, solid_capstyle="round")
        (joints,) = ax.plot([], [], "o", color="0.15", ms=7)
        (hand,) = ax.plot([], [], "o", color="tab:red", ms=9)
        arrow = None
        if force is not None:
            scale = 0.25 * self.reach / max(float(np.linalg.norm(force)), 1e-12)
            arrow = ax.quiver([0.0], [0.0], [force[0] * scale], [force[1] * scale], angles="xy",
                              scale_units="xy", scale=1.0, color="tab:purple", width=0.012)

        def update(x, goal):
            pts = self.plant.joint_positions(x[None])[0]
            links.set_data(pts[:, 0], pts[:, 1])
            joints.set_data(pts[:-1, 0], pts[:-1, 1])
            hand.set_data(pts[-1:, 0], pts[-1:, 1])
            goal_mark.set_data([goal[0]], [goal[1]])
            if arrow is not None:
                arrow.set_offsets(pts[-1:])

        return update


def _circle(radius: float, **kwargs):
    from matplotlib.patches import Circle

    return Circle((0.0, 0.0), radius, **kwargs)



class ArmReachEnv(PlantEnv):
    """Reach a target with a planar arm (``plants/ArmReach-v0``, ``plants/Arm3Reach-v0``).

    Description
    -----------
    :class:`plants.TwoLinkArm` (Li & Todorov's arm, RK4, dt = 10 ms, horizontal plane) or
    :class:`plants.ThreeLinkArm`, with the task :class:`plants.tasks.Reach` with
    ``targets="disc"``: from rest at shoulder 45 deg, elbow 90 deg (wrist 0), bring the hand
    to a target drawn uniformly from the 10 cm disc around it, and stop there, at the end of
    the horizon (0.5 s).

    Action space
    ------------
    ``Box(-1, 1, (N,), float32)``: joint torques as fractions of the arm's torque limits,
    shoulder first (``u = a * limits``; :data:`TORQUE_LIMITS`: 4, 4 N m for two links, 4, 4,
    2 N m for three; the arms have none of their own, so the environment builds them with
    these ``max_torque`` limits). Actions outside [-1, 1] are clipped.

    Observation space
    -----------------
    ``Box(float32, (3N + 5,))``: ``[cos q (N), sin q (N), q_dot (N), hand_x, hand_y,
    goal_x, goal_y, time]`` - joint angles as cosines and sines, joint velocities (in ±50
    rad/s: the observation saturates beyond), the hand and the goal position (m, in ± the
    arm's length), and the fraction of the horizon elapsed, ``t / T`` (the cost depends on
    time: it is charged at the last step).

    Rewards
    -------
    Minus the task's cost of each step (weights ``CostWeights(final_error=1, effort=1e-4,
    final_velocity=0.1)``): step ``t`` (torques ``u_t``, new state ``x_{t+1}``) gives
    ``-1e-4 dt |u_t|^2`` and the last step also ``-(|hand(x_T) - goal|^2 + 0.1
    |hand_velocity(x_T)|^2)`` - the effort term at every step, the final-error term with
    ``task.step_weights`` (1 at the last step, 0 before) on the state after the step, and
    the final-velocity term at the last step. An episode's rewards add up to
    ``-task.cost`` of the episode.

    Starting state
    --------------
    At rest at the posture; the target by ``Reach.sample`` with the environment's
    generator. ``options["x0"]`` (shape ``(2N,)``, ``[q, q_dot]``) sets the state,
    ``options["target"]`` (shape ``(2,)``, within ± the arm's length) the target.

    Episode end
    -----------
    Truncation after the horizon (50 steps); no termination.

    Arguments
    ---------
    ``n_links`` (2 or 3), ``distance`` (the disc's radius, m; default 0.10), ``horizon``
    (steps; default 0.5 s), ``max_torque`` (default :data:`TORQUE_LIMITS`), ``render_mode``
    (``None``, ``"rgb_array"``, ``"human"``).
    """

    def __init__(self, n_links: int = 2, distance: float = 0.10, horizon: int | None = None,
                 max_torque: float | Sequence[float] | None = None,
                 render_mode: str | None = None) -> None:
        super().__init__(_reach(n_links, distance, horizon, max_torque), render_mode=render_mode)


class ArmHoldEnv(PlantEnv):
    """Hold the hand still against a constant push (``plants/ArmHold-v0``).

    Description
    -----------
    :class:`plants.TwoLinkArm` (or, with ``n_links=3``, :class:`plants.ThreeLinkArm`) with
    the task :class:`plants.tasks.Hold`: a constant force (default 5 N along +y) pushes the
    hand, which must stay where it starts (shoulder 45 deg, elbow 90 deg) for 1 s.

    Action space
    ------------
    ``Box(-1, 1, (N,), float32)``: joint torques as fractions of the arm's torque limits,
    shoulder first (``u = a * limits``; :data:`TORQUE_LIMITS`: 4, 4 N m for two links, 4, 4,
    2 N m for three; the arms have none of their own, so the environment builds them with
    these ``max_torque`` limits). Actions outside [-1, 1] are clipped.

    Observation space
    -----------------
    ``Box(float32, (3N + 5,))``: ``[cos q (N), sin q (N), q_dot (N), hand_x, hand_y,
    goal_x, goal_y, time]`` - joint angles as cosines and sines, joint velocities (in ±50
    rad/s: the observation saturates beyond), the hand and the goal position (m, in ± the
    arm's length), and the fraction of the horizon elapsed, ``t / T`` (the cost depends on
    time: it is charged at the last step).

    Rewards
    -------
    Minus the task's cost of each step (weights ``CostWeights(final_error=1, effort=1e-4,
    final_velocity=0.1, tracking=1)``): step ``t`` gives ``-(1e-4 dt |u_t|^2 + c_t
    |hand(x_{t+1}) - goal|^2)`` with ``c_t = task.step_weights`` = 1/T at every step plus 1
    at the last, and the last step also ``-0.1 |hand_velocity(x_T)|^2``. An episode's
    rewards add up to ``-task.cost`` of the episode.

    Starting state
    --------------
    At rest at the posture (``Hold.sample``; nothing is random). ``options["x0"]`` (shape
    ``(2N,)``) and ``options["target"]`` (shape ``(2,)``) set the state and the hand's goal.

    Episode end
    -----------
    Truncation after the horizon (100 steps); no termination.

    Arguments
    ---------
    ``n_links`` (2 or 3), ``force`` (N, default ``(0, 5)``), ``horizon`` (steps; default
    1 s), ``max_torque`` (default :data:`TORQUE_LIMITS`), ``render_mode``.
    """

    def __init__(self, n_links: int = 2, force: Sequence[float] = (0.0, 5.0),
                 horizon: int | None = None, max_torque: float | Sequence[float] | None = None,
                 render_mode: str | None = None) -> None:
        super().__init__(_hold(n_links, force, horizon, max_torque), render_mode=render_mode)


def _reach(n_links, distance, horizon, max_torque) -> _ArmLayout:
    return _ArmLayout(Reach(_arm(n_links, max_torque), targets="disc", distance=distance,
                            horizon=horizon))


def _hold(n_links, force, horizon, max_torque) -> _ArmLayout:
    return _ArmLayout(Hold(_arm(n_links, max_torque), force=force, horizon=horizon))


class ArmReachVectorEnv(PlantVectorEnv):
    """``num_envs`` copies of :class:`ArmReachEnv` stepped in one compiled call.

    The same arguments, plus ``num_envs``, ``max_episode_steps`` and ``autoreset_mode``
    (see :class:`plants.envs.PlantVectorEnv` for autoreset, seeding and options).
    """

    def __init__(self, num_envs: int = 1, n_links: int = 2, distance: float = 0.10,
                 horizon: int | None = None, max_torque: float | Sequence[float] | None = None,
                 *, max_episode_steps: int | None = None, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        super().__init__(_reach(n_links, distance, horizon, max_torque), num_envs,
                         max_episode_steps=max_episode_steps, render_mode=render_mode,
                         autoreset_mode=autoreset_mode)


class ArmHoldVectorEnv(PlantVectorEnv):
    """``num_envs`` copies of :class:`ArmHoldEnv` stepped in one compiled call.

    The same arguments, plus ``num_envs``, ``max_episode_steps`` and ``autoreset_mode``
    (see :class:`plants.envs.PlantVectorEnv` for autoreset, seeding and options).
    """

    def __init__(self, num_envs: int = 1, n_links: int = 2, force: Sequence[float] = (0.0, 5.0),
                 horizon: int | None = None, max_torque: float | Sequence[float] | None = None,
                 *, max_episode_steps: int | None = None, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        super().__init__(_hold(n_links, force, horizon, max_torque), num_envs,
                         max_episode_steps=max_episode_steps, render_mode=render_mode,
                         autoreset_mode=autoreset_mode)
