"""The cart-pole as a Gymnasium environment: ``plants/CartPoleBalance-v0``."""

from __future__ import annotations

import numpy as np
from gymnasium.vector import AutoresetMode

from ..cartpole import CartPole
from ..tasks import Balance
from . import _step
from ._core import Layout, PlantEnv, PlantVectorEnv

__all__ = ["CartPoleBalanceEnv", "CartPoleBalanceVectorEnv"]

#: Half-length of the track (m): the cart stops at ±TRACK (CartPole-v1 ends its episodes there).
TRACK = 2.4
#: Observation bounds of the cart's and the pole's velocities (m/s, rad/s); beyond them the
#: observation saturates (the state does not).
MAX_CART_SPEED = 20.0
MAX_POLE_SPEED = 40.0


class _CartPoleLayout(Layout):
    frame_size = (600, 300)
    obs_names = ("x", "x_dot", "cos_theta", "sin_theta", "theta_dot",
                 "goal_x", "goal_x_dot", "goal_theta", "goal_theta_dot")

    def __init__(self, horizon: int) -> None:
        plant = CartPole(joint_limits=((-TRACK, -np.inf), (TRACK, np.inf)))
        super().__init__(Balance(plant, horizon=horizon))
        v, w = MAX_CART_SPEED, MAX_POLE_SPEED
        self.target_low = [-TRACK, -v, -np.pi, -w]
        self.target_high = [TRACK, v, np.pi, w]
        self.obs_low = [-TRACK, -v, -1.0, -1.0, -w, *self.target_low]
        self.obs_high = [TRACK, v, 1.0, 1.0, w, *self.target_high]
        self.kernels = (_step.features_cartpole, _step.step_cartpole)
        self.finish()

    def _state_names(self) -> str:
        return "[x, x_dot, theta, theta_dot]"

    def check_x0(self, x0):
        if np.any(np.abs(x0[:, 0]) > TRACK):
            raise ValueError(f'options["x0"]: the cart position x0[0] must lie on the track, '
                             f"within ±{TRACK} m, got {x0[np.abs(x0[:, 0]) > TRACK][0]}")

    goal_columns = slice(5, 9)
    kernel_outputs = (("x", "x_dot", "theta", "theta_dot"), ("x_dot", "theta_dot"))
    def decode(self, obs):
        x = np.stack([obs[:, 0], obs[:, 1], np.arctan2(obs[:, 3], obs[:, 2]), obs[:, 4]], axis=1)
        return x, obs[:, 5:9].copy()

    def drawing(self, ax):
        from matplotlib.patches import Rectangle

        pole = 2.0 * float(self.plant.length)
        ax.set_xlim(-TRACK - 0.3, TRACK + 0.3)
        ax.set_ylim(-0.9, 1.8)  # the frame is 2:1, as the limits
        ax.plot([-TRACK, TRACK], [0.0, 0.0], color="0.2", lw=1.5)
        for s in (-TRACK, TRACK):
            ax.plot([s, s], [-0.08, 0.12], color="0.2", lw=3)
        (mark,) = ax.plot([], [], "v", color="tab:green", ms=10)
        (ghost,) = ax.plot([], [], color="tab:green", lw=5, alpha=0.3, solid_capstyle="round")
        cart = Rectangle((0.0, 0.0), 0.5, 0.25, color="0.25")
        ax.add_patch(cart)
        (rod,) = ax.plot([], [], color="tab:orange", lw=6, solid_capstyle="round")
        (axle,) = ax.plot([], [], "o", color="tab:blue", ms=6)

        def update(x, goal):
            cx, th = x[0], x[2]
            cart.set_xy((cx - 0.25, 0.0))
            top = 0.25
            rod.set_data([cx, cx + pole * np.sin(th)], [top, top + pole * np.cos(th)])
            axle.set_data([cx], [top])
            gx, gth = goal[0], goal[2]
            mark.set_data([gx], [-0.2])
            ghost.set_data([gx, gx + pole * np.sin(gth)], [top, top + pole * np.cos(gth)])

        return update


class CartPoleBalanceEnv(PlantEnv):
    """Keep a pole upright on a cart and the cart centred (``plants/CartPoleBalance-v0``).

    Description
    -----------
    :class:`plants.CartPole` (Gymnasium ``CartPole-v1``'s constants and equations, Euler
    steps of 0.02 s) with a continuous force on the cart and a track of ±2.4 m with
    inelastic end stops (``joint_limits`` on ``x``; ``CartPole-v1`` ends the episode there
    instead), and the task :class:`plants.tasks.Balance`: bring the state to 0 and keep
    it there. theta = 0 is upright.

    Action space
    ------------
    ``Box(-1, 1, (1,), float32)``: the force as a fraction of the plant's limit, 10 N
    (``F = 10 a``). Actions outside [-1, 1] are clipped.

    Observation space
    -----------------
    ``Box(float32, (9,))``: ``[x, x_dot, cos theta, sin theta, theta_dot, goal_x,
    goal_x_dot, goal_theta, goal_theta_dot]`` with ``x`` in ±2.4 m, ``x_dot`` in ±20 m/s and
    ``theta_dot`` in ±40 rad/s (the observation saturates beyond these speeds, which the
    plant reaches only after seconds of full force against the stops); the goal is the
    target state, 0 unless set through ``options``.

    Rewards
    -------
    Minus the task's cost of each step (weights ``CostWeights(final_error=1, effort=1e-4,
    tracking=1)``): step ``t`` (force ``F_t``, new state ``x_{t+1}``) gives
    ``-(1e-4 dt F_t^2 + c_t |x_{t+1} - goal|^2)`` with ``c_t = task.step_weights`` = 1/T at
    every step plus 1 at the last (the final-error term). An episode's rewards add up to
    ``-task.cost`` of the episode. theta enters as the angle itself, not wrapped.

    Starting state
    --------------
    Uniform in ±0.05 for every coordinate (``Balance.sample`` with the environment's
    generator, as ``CartPole-v1``'s reset). ``options["x0"]`` (shape ``(4,)``, ``x`` within
    the track) sets it; ``options["target"]`` (shape ``(4,)``, within the goal bounds above)
    sets the target state.

    Episode end
    -----------
    Truncation after the horizon (500 steps, 10 s). No termination: a fallen pole keeps
    costing its angle (with negative rewards an early end would be a reward).

    Arguments
    ---------
    ``horizon`` (default 500), ``render_mode`` (``None``, ``"rgb_array"``, ``"human"``).
    """

    def __init__(self, horizon: int = 500, render_mode: str | None = None) -> None:
        super().__init__(_CartPoleLayout(horizon), render_mode=render_mode)


class CartPoleBalanceVectorEnv(PlantVectorEnv):
    """``num_envs`` copies of :class:`CartPoleBalanceEnv` stepped in one compiled call.

    The same arguments, plus ``num_envs``, ``max_episode_steps`` and ``autoreset_mode``
    (see :class:`plants.envs.PlantVectorEnv` for autoreset, seeding and options).
    """

    def __init__(self, num_envs: int = 1, horizon: int = 500, *,
                 max_episode_steps: int | None = None, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        super().__init__(_CartPoleLayout(horizon), num_envs, max_episode_steps=max_episode_steps,
                         render_mode=render_mode, autoreset_mode=autoreset_mode)
