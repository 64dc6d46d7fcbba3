"""A :class:`~hfcontrol.Controller` as a policy for a Gymnasium environment.

:class:`GymPolicy` maps the environment's observation to what the controller senses and the
controller's control to the environment's action, and keeps the controller's recurrent
state between calls. Made by :meth:`Controller.as_policy`; used by
:meth:`Controller.evaluate` and :func:`plants.envs.record`.

New episodes: call :meth:`GymPolicy.reset` after each ``env.reset()`` (``evaluate`` and
``record`` do). The next call then starts a new episode of the controller (zero recurrent
state, empty delay line), with the goal read from that first observation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GymPolicy"]


def _task_goal(task) -> np.ndarray:
    """The goal of the task's episodes when it does not vary: the last target of
    ``task.sample(1, seed=0)`` (``PendulumV1``: ``(1, 0, 0)``)."""
    targets = task.sample(1, seed=0).targets[0]
    has = ~np.isnan(targets).any(axis=1)
    return targets[np.flatnonzero(has)[-1]] if has.any() else np.zeros(targets.shape[1])


class GymPolicy:
    """``obs -> action`` for a Gymnasium environment, driven by a controller.

    Parameters
    ----------
    controller : hfcontrol.Controller
        The controller; the policy steps its own copy (its recurrent state is the
        policy's, not shared with ``controller``).
    env : gymnasium.Env
        The environment whose observations and actions to translate. Supported:

        * the ``plants/`` environments (:mod:`plants.envs`): the observation is decoded into
          the plant state and the goal (``env.unwrapped.decode``); the action is the control
          divided by the environment's action scale, clipped to [-1, 1];
        * ``Pendulum-v1``: observation ``[cos, sin, theta_dot]`` -> state
          ``[atan2(sin, cos), theta_dot]``; the action is the raw torque, clipped to the
          action space (±2 N m);
        * any environment whose observation is the plant state itself (shape ``(n,)``) and
          whose action is a ``Box`` of the controls (e.g. ``MountainCarContinuous-v0``):
          the control is clipped to the action space.

        Where the observation carries no goal, the controller's task gives it (the last
        target of ``task.sample(1, seed=0)``: ``(1, 0, 0)`` for ``PendulumV1``).
    """

    def __init__(self, controller: Any, env: Any) -> None:
        from gymnasium import spaces

        if not all(hasattr(controller, a) for a in ("loop", "reset", "act", "observe")):
            raise TypeError(f"controller must be a hfcontrol.Controller, got "
                            f"{type(controller).__name__}")
        # a controller of its own (no import of hfcontrol.controller, which imports this)
        self.controller = type(controller)(controller.loop)
        loop = controller.loop
        u = env.unwrapped
        spec = getattr(u, "spec", None)
        self.env_id = spec.id if spec is not None else type(u).__name__
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        n, m = loop.n, loop.m
        self._goal = None
        import plants.envs

        if isinstance(u, plants.envs.PlantEnv):
            self._decode = u.decode
            scale, offset = u._layout.action_scale, u._layout.action_offset
            self._encode = lambda c: np.clip((c - offset) / scale, -1.0, 1.0)
            need = (u._layout.n, u._layout.m)
        elif self.env_id.split("/")[-1].startswith("Pendulum-v"):
            self._decode = lambda o: (np.array([np.arctan2(o[1], o[0]), o[2]]), None)
            self._encode = self._clip_to_box
            need = (2, 1)
        elif (isinstance(env.action_space, spaces.Box) and env.action_space.shape == (m,)
              and isinstance(env.observation_space, spaces.Box)
              and env.observation_space.shape == (n,)):
            self._decode = lambda o: (o, None)
            self._encode = self._clip_to_box
            need = (n, m)
        else:
            raise ValueError(f"no mapping from {self.env_id}'s observations and actions to the "
                             "controller's: supported are the plants/ environments, "
                             "Pendulum-v1, and environments whose observation is the plant "
                             "state and whose action is a Box of the controls")
        if need != (n, m):
            raise ValueError(f"{self.env_id} has a plant of state size {need[0]} and {need[1]} "
                             f"controls, the controller's plant has {n} and {m}")
        if loop.k and not isinstance(u, plants.envs.PlantEnv):
            self._goal = _task_goal(loop.task)
        self._new = True

    def _clip_to_box(self, c: np.ndarray) -> np.ndarray:
        return np.clip(c, self.action_space.low, self.action_space.high)

    def reset(self) -> None:
        """Start a new episode at the next call (call it after every ``env.reset()``)."""
        self._new = True

    def __call__(self, obs: Any) -> np.ndarray:
        """The action for observation ``obs`` (in the environment's action space)."""
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != self.observation_space.shape:
            raise ValueError(f"obs must have the shape of {self.env_id}'s observations, "
                             f"{self.observation_space.shape}, got {obs.shape}")
        x, goal = self._decode(obs)
        ctrl = self.controller
        if self._new:
            k = ctrl.loop.k
            ctrl.reset(goal=(goal if goal is not None else self._goal) if k else None)
            self._new = False
        u = ctrl.act(ctrl.observe(x))
        return np.asarray(self._encode(u), dtype=self.action_space.dtype)

    def __repr__(self) -> str:
        return f"GymPolicy({self.env_id})"
