"""The six-muscle arm as a Gymnasium environment: ``plants/MuscleArmReach-v0``."""

from __future__ import annotations

import numpy as np
from gymnasium.vector import AutoresetMode

from ..muscle_arm import MuscleArm
from ..tasks import Reach
from . import _step
from ._core import PlantEnv, PlantVectorEnv
from .arm import _ArmLayout

__all__ = ["MuscleArmReachEnv", "MuscleArmReachVectorEnv"]

#: Schematic muscle paths for drawing only (the model's geometry is the moment-arm
#: polynomials of :data:`plants.muscles.ARM26`, which have no path in the plane). A path is
#: a list of points ``(body, along, side)``: body 0 the trunk (a stub along -x from the
#: shoulder; its flexor side is +y, where the arm's flexion sweeps), 1 the upper arm, 2 the
#: forearm; ``along`` the distance from the body's proximal end (m); ``side`` the offset to
#: the flexor (+, counter-clockwise) or extensor (-) side (m).
#: Body "j1"/"j2" points sit at the shoulder/elbow, pushed out along the bisector of the
#: angle on the extensor side, so that extensors wrap around the joint.
MUSCLE_PATHS = (
    ((0, 0.10, 0.03), (1, 0.10, 0.03)),                           # pectoralis (shoulder flexor)
    ((0, 0.10, -0.03), ("j1", 0.04), (1, 0.10, -0.03)),           # deltoid (shoulder extensor)
    ((1, 0.20, 0.03), (2, 0.09, 0.03)),                           # brachioradialis (elbow flexor)
    ((1, 0.16, -0.03), ("j2", 0.04), (2, 0.06, -0.03)),           # triceps lateral (extensor)
    ((0, 0.05, 0.06), (1, 0.16, 0.065), (2, 0.05, 0.06)),         # biceps (biarticular flexor)
    ((0, 0.05, -0.06), ("j1", 0.08), (1, 0.16, -0.065), ("j2", 0.075),
     (2, 0.05, -0.06)),                                           # triceps long (biart. extensor)
)


class _MuscleArmLayout(_ArmLayout):
    """The two-link arm's observation (from the joint angles and velocities) followed by the
    six activations; actions are excitations."""

    def __init__(self, task: Reach) -> None:
        super().__init__(task)  # the arm's part; extended below, then finished again
        plant = self.plant
        names = tuple(f"activation_{n}" for n in plant.muscle_names)
        self.obs_names = self.obs_names + names
        self.obs_low = np.concatenate([self.obs_low, np.zeros(len(names))])
        self.obs_high = np.concatenate([self.obs_high, np.ones(len(names))])
        self.kernels = (_step.features_muscle_arm, _step.step_muscle_arm)
        self.finish()

    def _state_names(self) -> str:
        return "[q1, q2, q1_dot, q2_dot, a1..a6]"

    def check_x0(self, x0: np.ndarray) -> None:
        p = self.plant
        q, a = x0[:, :2], x0[:, 4:]
        if ((q < p.joint_low) | (q > p.joint_high)).any():
            raise ValueError(f'options["x0"] must have joint angles within the joint stops '
                             f"[{p.joint_low}, {p.joint_high}] rad, got {q}")
        if ((a < 0.0) | (a > 1.0)).any():
            raise ValueError(f'options["x0"] must have activations (entries 4..9) in [0, 1], '
                             f"got {a}")

    def decode(self, obs):
        x, goal = super().decode(obs)  # [q, q_dot] from the arm's part
        return np.concatenate([x, obs[:, -6:]], axis=1), goal

    def drawing(self, ax):
        import matplotlib

        update_arm = super().drawing(ax)
        cmap = matplotlib.colormaps["Reds"]
        lines = [ax.plot([], [], "-", lw=2, solid_capstyle="round", zorder=1.5)[0]
                 for _ in MUSCLE_PATHS]
        (trunk,) = ax.plot([0.0, -0.12], [0.0, 0.0], "-", color="0.55", lw=9,
                           solid_capstyle="round", zorder=1)

        def update(x, goal):
            update_arm(x, goal)
            for line, path, act in zip(lines, MUSCLE_PATHS, x[4:], strict=True):
                pts = np.array([_point(p, x[:2], self.plant.lengths) for p in path])
                line.set_data(pts[:, 0], pts[:, 1])
                a = float(np.clip(act, 0.0, 1.0))
                line.set_color(cmap(0.25 + 0.75 * a))
                line.set_linewidth(1.5 + 3.5 * a)

        return update


def _point(spec, q, lengths) -> np.ndarray:
    """A schematic muscle path point (see :data:`MUSCLE_PATHS`) at joint angles ``q``."""
    phi1, phi2 = q[0], q[0] + q[1]
    elbow = lengths[0] * np.array([np.cos(phi1), np.sin(phi1)])
    if spec[0] in ("j1", "j2"):
        # outside the joint, on the extensor side: opposite the bisector of the flexor angle
        if spec[0] == "j1":
            centre, a_in, a_out = np.zeros(2), np.pi, phi1   # trunk (angle pi) and upper arm
        else:
            centre, a_in, a_out = elbow, phi1 + np.pi, phi2  # upper arm (back) and forearm
        mid = 0.5 * (a_in + a_out) + np.pi
        return centre + spec[1] * np.array([np.cos(mid), np.sin(mid)])
    body, along, side = spec
    if body == 0:
        return np.array([-along, side])
    if body == 1:
        ang, origin = phi1, np.zeros(2)
    else:
        ang, origin = phi2, elbow
    d = np.array([np.cos(ang), np.sin(ang)])
    n = np.array([-d[1], d[0]])
    return origin + along * d + side * n


def _reach(distance, horizon) -> _MuscleArmLayout:
    return _MuscleArmLayout(Reach(MuscleArm(), targets="disc", distance=distance,
                                  horizon=horizon))


class MuscleArmReachEnv(PlantEnv):
    """Reach a target with the six-muscle arm (``plants/MuscleArmReach-v0``).

    Description
    -----------
    :class:`plants.MuscleArm` (MotorNet's ``RigidTendonArm26``: the two-link skeleton driven
    by six rigid-tendon Hill muscles, explicit Euler, dt = 10 ms, horizontal plane, joint
    stops at shoulder [0, 135] deg and elbow [0, 155] deg) with the task
    :class:`plants.tasks.Reach` with ``targets="disc"``: from rest at shoulder 45 deg, elbow
    90 deg (activations at their floor, 0.001), bring the hand to a target drawn uniformly
    from the 10 cm disc around it, and stop there, at the end of the horizon (0.5 s).

    Action space
    ------------
    ``Box(-1, 1, (6,), float32)``: the excitations of the six muscles (pectoralis, deltoid,
    brachioradialis, triceps lateral, biceps, triceps long), mapped affinely from [-1, 1]
    to the plant's excitation range [0, 1] (``u = (a + 1) / 2``: -1 is no excitation, 1 is
    full). Actions outside [-1, 1] are clipped.

    Observation space
    -----------------
    ``Box(float32, (17,))``: ``[cos q1, cos q2, sin q1, sin q2, q1_dot, q2_dot, hand_x,
    hand_y, goal_x, goal_y, time, a_1 .. a_6]`` - the joint angles as cosines and sines, the
    joint velocities (in ±50 rad/s: the observation saturates beyond), the hand and goal
    positions (m, in ± the arm's length), the fraction of the horizon elapsed ``t / T``, and
    the muscle activations (in [0, 1]). The first eleven entries are ``plants/ArmReach-v0``'s.

    Rewards
    -------
    Minus the task's cost of each step (weights ``CostWeights(final_error=1, effort=1e-4,
    final_velocity=0.1)``): step ``t`` (excitations ``u_t`` in [0, 1], new state ``x_{t+1}``)
    gives ``-1e-4 dt |u_t|^2`` and the last step also ``-(|hand(x_T) - goal|^2 + 0.1
    |hand_velocity(x_T)|^2)``. An episode's rewards add up to ``-task.cost`` of the episode.

    Starting state
    --------------
    At rest at the posture; the target by ``Reach.sample`` with the environment's generator.
    ``options["x0"]`` (shape ``(10,)``: ``[q1, q2, q1_dot, q2_dot, a_1 .. a_6]``, the angles
    within the joint stops, the activations in [0, 1]) sets the state, ``options["target"]``
    (shape ``(2,)``, within ± the arm's length) the target.

    Episode end
    -----------
    Truncation after the horizon (50 steps); no termination.

    Arguments
    ---------
    ``distance`` (the disc's radius, m; default 0.10), ``horizon`` (steps; default 0.5 s),
    ``render_mode`` (``None``, ``"rgb_array"``, ``"human"``; the frame draws the muscles
    schematically, coloured and thickened by activation).
    """

    def __init__(self, distance: float = 0.10, horizon: int | None = None,
                 render_mode: str | None = None) -> None:
        super().__init__(_reach(distance, horizon), render_mode=render_mode)


class MuscleArmReachVectorEnv(PlantVectorEnv):
    """``num_envs`` copies of :class:`MuscleArmReachEnv` stepped in one compiled call.

    The same arguments, plus ``num_envs``, ``max_episode_steps`` and ``autoreset_mode``
    (see :class:`plants.envs.PlantVectorEnv` for autoreset, seeding and options).
    """

    def __init__(self, num_envs: int = 1, distance: float = 0.10, horizon: int | None = None,
                 *, max_episode_steps: int | None = None, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        super().__init__(_reach(distance, horizon), num_envs,
                         max_episode_steps=max_episode_steps, render_mode=render_mode,
                         autoreset_mode=autoreset_mode)

