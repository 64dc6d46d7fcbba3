"""The pendulum as a Gymnasium environment: ``plants/PendulumSwingUp-v0``."""

from __future__ import annotations

import numpy as np
from gymnasium.vector import AutoresetMode

from ..pendulum import Pendulum
from ..tasks import PendulumV1
from . import _step
from ._core import Layout, PlantEnv, PlantVectorEnv

__all__ = ["PendulumSwingUpEnv", "PendulumSwingUpVectorEnv"]


class _PendulumLayout(Layout):
    obs_names = ("cos_theta", "sin_theta", "theta_dot",
                 "goal_cos_theta", "goal_sin_theta", "goal_theta_dot")

    def __init__(self, horizon: int) -> None:
        super().__init__(PendulumV1(Pendulum(), horizon=horizon))
        vmax = float(self.plant.velocity_limit[0])
        self.obs_low = [-1.0, -1.0, -vmax, -1.0, -1.0, -vmax]
        self.obs_high = [1.0, 1.0, vmax, 1.0, 1.0, vmax]
        self.target_low, self.target_high = self.obs_low[3:], self.obs_high[3:]
        self.kernels = (_step.features_pendulum, _step.step_pendulum)
        self.finish()

    def _state_names(self) -> str:
        return "[theta, theta_dot]"

    goal_columns = slice(3, 6)
    kernel_outputs = (("cos_theta", "sin_theta", "theta_dot"), ("theta_dot",))

    def decode(self, obs):
        x = np.stack([np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]], axis=1)
        return x, obs[:, 3:6].copy()

    def drawing(self, ax):
        l = float(self.plant.l)
        ax.set_xlim(-1.25 * l, 1.25 * l)
        ax.set_ylim(-1.25 * l, 1.25 * l)
        (ghost,) = ax.plot([], [], color="tab:green", lw=6, alpha=0.3, solid_capstyle="round")
        (rod,) = ax.plot([], [], color="tab:red", lw=8, solid_capstyle="round")
        ax.plot([0.0], [0.0], "o", color="0.2", ms=8)

        def update(x, goal):
            th = x[0]
            rod.set_data([0.0, -l * np.sin(th)], [0.0, l * np.cos(th)])
            g = np.arctan2(goal[1], goal[0])
            ghost.set_data([0.0, -l * np.sin(g)], [0.0, l * np.cos(g)])

        return update


class PendulumSwingUpEnv(PlantEnv):
    """Swing a pendulum up and balance it (``plants/PendulumSwingUp-v0``).

    Description
    -----------
    A uniform rod on a frictionless pivot, torque at the pivot (:class:`plants.Pendulum`
    with its defaults: Gymnasium ``Pendulum-v1``'s constants and update, dt = 0.05 s,
    angular velocity clipped to ±8 rad/s), with the task :class:`plants.tasks.PendulumV1`:
    swing up from anywhere and stay upright, ``Pendulum-v1``'s objective in squares of smooth
    outputs. theta = 0 is upright, counter-clockwise positive.

    Action space
    ------------
    ``Box(-1, 1, (1,), float32)``: the torque as a fraction of the plant's limit, 2 N m
    (``u = 2 a``). Actions outside [-1, 1] are clipped.

    Observation space
    -----------------
    ``Box(float32, (6,))``: ``[cos theta, sin theta, theta_dot, goal_cos, goal_sin,
    goal_theta_dot]``, theta_dot in ±8 rad/s; the goal is the task's target for
    ``(cos theta, sin theta, theta_dot)``, ``(1, 0, 0)`` unless set through ``options``.

    Rewards
    -------
    Minus the task's cost of each step: step ``t`` (torque ``u_t``, new state
    ``x_{t+1}``) gives ``-(1/T) [(2 - 2 cos theta_{t+1}) + 0.1 theta_dot_{t+1}^2 + 0.001
    u_t^2]`` (``T`` the horizon) - the task's effort term ``effort dt u_t^2`` plus its
    tracking term ``c_t sum_i w_i (y_i - target_i)^2`` with ``c_t = task.step_weights`` =
    1/T (its final-error and final-velocity weights are 0). An episode's rewards add up to
    ``-task.cost`` of the episode, which is ``Pendulum-v1``'s return divided by ``T`` up to
    the first and last states (``Pendulum-v1`` charges the state before each step, the task
    the state after it) and ``2 - 2 cos theta`` in place of ``theta^2``.

    Starting state
    --------------
    ``theta ~ U(-pi, pi)``, ``theta_dot ~ U(-1, 1)``, drawn by ``PendulumV1.sample`` with the
    environment's generator (the draws of ``Pendulum-v1``'s reset for the same seed).
    ``options["x0"]`` (shape ``(2,)``, ``[theta, theta_dot]``) sets it;
    ``options["target"]`` (shape ``(3,)``, within the goal bounds above) sets the goal.

    Episode end
    -----------
    Truncation after the horizon (200 steps, 10 s); no termination.

    Arguments
    ---------
    ``horizon`` (default 200), ``render_mode`` (``None``, ``"rgb_array"``, ``"human"``).
    """

    def __init__(self, horizon: int = 200, render_mode: str | None = None) -> None:
        super().__init__(_PendulumLayout(horizon), render_mode=render_mode)


class PendulumSwingUpVectorEnv(PlantVectorEnv):
    """``num_envs`` copies of :class:`PendulumSwingUpEnv` stepped in one compiled call.

    The same arguments, plus ``num_envs``, ``max_episode_steps`` and ``autoreset_mode``
    (see :class:`plants.envs.PlantVectorEnv` for autoreset, seeding and options).
    """

    def __init__(self, num_envs: int = 1, horizon: int = 200, *,
                 max_episode_steps: int | None = None, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        super().__init__(_PendulumLayout(horizon), num_envs, max_episode_steps=max_episode_steps,
                         render_mode=render_mode, autoreset_mode=autoreset_mode)
