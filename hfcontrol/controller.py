"""A trained closed-loop controller, packaged for use: step it, roll it out, save it.

:class:`Controller` holds a :class:`~hfcontrol.closed_loop.ClosedLoop` (network, plant,
task and sensing settings). ``reset()`` then ``act(obs)`` run the network one step at a
time, keeping its recurrent state and the sensory delay line; ``rollout(batch)`` runs
whole episodes; ``save``/``load`` write and read it as ``.npz`` + JSON (no pickle).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import persistence
from .closed_loop import ClosedLoop, Rollout
from .rnnet import RNNet

__all__ = ["Controller"]


@persistence.register
class Controller:
    """A closed-loop controller for use.

    Parameters
    ----------
    loop : ClosedLoop
        The trained loop (its current weights are the controller's).

    Attributes
    ----------
    plant, task
        The loop's plant and task.
    net : RNNet
        The network.
    """

    def __init__(self, loop: ClosedLoop):
        if not isinstance(loop, ClosedLoop):
            raise TypeError(f"loop must be a hfcontrol.ClosedLoop, got {type(loop).__name__}")
        self.loop = loop
        self._state: dict[str, Any] | None = None

    @property
    def plant(self):
        return self.loop.plant

    @property
    def task(self):
        return self.loop.task

    @property
    def net(self) -> RNNet:
        return self.loop.net

    @property
    def observation(self):
        """What the network senses, all channels' rows as one map
        (:class:`~hfcontrol.observation.Observation`)."""
        return self.loop.observation

    @property
    def senses(self):
        """The sensory channels, each with its delay and noise
        (:class:`~hfcontrol.observation.Senses`)."""
        return self.loop.senses

    # ------------------------------------------------------------------ stepping
    def reset(self, goal: np.ndarray | None = None, batch: int = 1) -> None:
        """Start new episodes: zero the recurrent state and empty the delay line.

        Parameters
        ----------
        goal : array_like ``[k]`` or ``[batch, k]``, optional
            The task inputs held for the episode (for a reach, the target position);
            required when the loop has task inputs (``loop.k > 0``).
        batch : int
            Episodes stepped together (the rows of ``act``'s observations).
        """
        k = self.loop.k
        if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        if k:
            if goal is None:
                raise ValueError(f"goal is required: this controller reads {k} task inputs "
                                 f"(e.g. the target)")
            goal = np.asarray(goal, dtype=np.float64)
            if goal.shape == (k,):
                goal = np.broadcast_to(goal, (batch, k))
            if goal.shape != (batch, k) or not np.isfinite(goal).all():
                raise ValueError(f"goal must be finite with shape [{k}] or [{batch}, {k}], got "
                                 f"{goal.shape}")
        elif goal is not None and np.size(goal):
            raise ValueError("goal must be None: this controller reads no task inputs")
        self._state = {"goal": None if not k else goal.astype(self.loop.dtype),
                       "batch": int(batch), "t": 0, "s": None, "history": []}

    def act(self, obs: np.ndarray) -> np.ndarray:
        """One step: the network senses ``obs``, each channel's rows delayed by that
        channel's delay, and returns the control.

        Parameters
        ----------
        obs : array_like ``[p]`` or ``[batch, p]``
            What the network senses now: ``observation(x)`` of the plant state ``x``
            (see :meth:`observe`), without noise.

        Returns
        -------
        ndarray ``[m]`` or ``[batch, m]``
            The control (float64), before the plant's own limits.
        """
        if self._state is None:
            raise RuntimeError("call reset() before act()")
        st, loop = self._state, self.loop
        p = loop.observation.size
        obs = np.asarray(obs, dtype=np.float64)
        single = obs.ndim == 1
        obs2 = obs[None] if single else obs
        if obs2.shape != (st["batch"], p):
            raise ValueError(f"obs must have shape [{p}] or [{st['batch']}, {p}] (what the "
                             f"network senses), got {obs.shape}")
        if not np.isfinite(obs2).all():
            raise ValueError("obs must be finite")
        history = st["history"]
        history.append(obs2.copy())
        # the delay line: at step t row i senses the observation of step t - delay_i (of
        # the first step before it)
        last = len(history) - 1
        delays = loop.senses.row_delays
        sensed = np.column_stack([history[max(0, last - d)][:, i]
                                  for i, d in enumerate(delays)])
        if len(history) > loop.delay + 1:
            history.pop(0)
        parts = [sensed] if not loop.k else [st["goal"], sensed]
        e = np.concatenate(parts, axis=1).astype(loop.dtype)
        w_in, b_in, w_rec, b_rec, w_out, b_out = loop._weights(loop.W)
        z = e @ w_in + b_in + (st["s"] @ w_rec if st["s"] is not None else b_rec)
        st["s"] = loop.net.layers[1].activation(z)
        a = loop.net.layers[2].activation(st["s"] @ w_out + b_out)
        st["t"] += 1
        u = loop.control_scale * a.astype(np.float64)
        return u[0] if single else u

    def observe(self, x: np.ndarray) -> np.ndarray:
        """What the network senses of plant states ``x[..., n]``."""
        return self.loop.observation(np.asarray(x, dtype=np.float64))

    def rollout(self, batch, noise: bool = False) -> Rollout:
        """Run episodes of a :class:`plants.tasks.TaskBatch` (see :meth:`ClosedLoop.rollout`);
        without observation noise unless ``noise``."""
        return self.loop.rollout(batch, noise=noise)

    # ------------------------------------------------------------------ persistence
    def _config(self) -> dict[str, Any]:
        import plants

        loop = self.loop
        return {"plant": plants.to_spec(loop.plant), "task": plants.to_spec(loop.task),
                "net": loop.net._config(),
                "loop": {"feedback": loop.feedback, "sensors": loop.senses.spec(),
                         "inputs": loop.inputs, "control_scale": loop.control_scale.tolist(),
                         "dtype": loop.dtype.name}}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"W": self.loop.W}

    @classmethod
    def _from_saved(cls, config: dict[str, Any], arrays: dict[str, np.ndarray], **overrides):
        import plants

        plant = plants.from_spec(config["plant"])
        task = plants.from_spec(config["task"])
        net = RNNet._from_saved(config["net"], {"W": arrays["W"]})
        settings = dict(config["loop"], **overrides)
        return cls(ClosedLoop(plant, task, net, **settings))

    def save(self, path: str | os.PathLike) -> None:
        """Write the controller (architecture, weights, plant, task and sensing settings) to
        an ``.npz`` file, atomically. Needs a built-in plant and task (``plants.to_spec``)."""
        persistence.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> Controller:
        """Read a controller written by :meth:`save`; keyword arguments override the
        loop's settings (e.g. ``backend="numpy"``)."""
        return persistence.load(path, expected=cls, **overrides)

    def __repr__(self) -> str:
        return f"Controller({self.loop!r})"

    # ------------------------------------------------------------------ Gymnasium
    def as_policy(self, env_or_id: Any = None) -> Any:
        """This controller as a policy ``obs -> action`` for a Gymnasium environment.

        Parameters
        ----------
        env_or_id : gymnasium.Env or str, optional
            The environment or its id (made with ``gymnasium.make``). Default: the
            environment of a :class:`plants.GymDynamics` plant. Supported: the ``plants/``
            environments, ``Pendulum-v1``, and environments whose observation is the plant
            state (see :class:`hfcontrol.gym_policy.GymPolicy`).

        Returns
        -------
        GymPolicy
            A callable ``policy(obs) -> action`` with its own recurrent state. Call
            ``policy.reset()`` after every ``env.reset()``: its next call starts a new episode
            (zero state, empty delay line, the goal read from that observation).
        """
        import gymnasium as gym

        from .gym_policy import GymPolicy

        if env_or_id is None:
            env_or_id = getattr(self.plant, "env", None)
            if env_or_id is None:
                raise ValueError("env_or_id is required: give the Gymnasium environment or its "
                                 "id (only a plants.GymDynamics plant names its own)")
        env = gym.make(env_or_id) if isinstance(env_or_id, str) else env_or_id
        return GymPolicy(self, env)

    def evaluate(self, env_id: Any, n_episodes: int = 10, seed: int = 0) -> np.ndarray:
        """Run the controller in a Gymnasium environment and return each episode's return.

        Parameters
        ----------
        env_id : str or gymnasium.Env
            An id for ``gymnasium.make`` (e.g. ``"Pendulum-v1"``, ``"plants/ArmReach-v0"``)
            or an environment.
        n_episodes : int
            Episodes to run; episode ``i`` is reset with ``seed + i``.
        seed : int
            Seed of the first episode.

        Returns
        -------
        ndarray ``[n_episodes]``
            The sum of rewards of each episode (until terminated or truncated).
        """
        import gymnasium as gym

        if isinstance(n_episodes, bool) or not isinstance(n_episodes, int | np.integer) \
                or n_episodes < 1:
            raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        env = gym.make(env_id) if isinstance(env_id, str) else env_id
        policy = self.as_policy(env)
        returns = np.zeros(int(n_episodes))
        try:
            for i in range(int(n_episodes)):
                obs, _ = env.reset(seed=int(seed) + i)
                policy.reset()
                while True:
                    obs, reward, terminated, truncated, _ = env.step(policy(obs))
                    returns[i] += float(reward)
                    if terminated or truncated:
                        break
        finally:
            if isinstance(env_id, str):
                env.close()
        return returns
