"""Delayed, noisy senses for the plants' Gymnasium environments.

:class:`DelayedSenses` (one env) and :class:`DelayedSensesVector` (a native vector env,
:class:`~plants.envs.PlantVectorEnv`) wrap an environment so that named blocks of its
observation entries, *channels*, reach the agent late and noisy: a channel covers some of
the entries of ``obs_names`` (the layout's names, e.g. ``"cos_q1"``, ``"hand_x"``), and at
step ``t`` the agent reads those entries as they were at step ``t - delay`` (the episode's
first observation before its start) plus Gaussian noise of the channel's standard
deviation, drawn afresh at every step. Entries in no channel (the goal, the time) pass
current and exact.

``channels="default"`` gives an arm environment (``plants/ArmReach-v0``,
``plants/Arm3Reach-v0``, ``plants/ArmHold-v0``, ``plants/MuscleArmReach-v0``) the two senses
of the closed loop's ``hfcontrol.observation.arm_senses``, with the same numbers and
sources (docs/plants.md, "Senses in a closed loop"):

* ``proprioception``, 20 ms, noise 1e-3: the joint angles' cosines and sines and the joint
  velocities (rad/s); the short-latency stretch response of arm muscles starts 20-50 ms
  after a perturbation (Pruszynski & Scott 2012, Exp Brain Res 218:341-359). For the
  muscle arm it also covers the six activations: they are the muscles' state, which the
  nervous system learns of through the same afferents (the Golgi tendon organs signal
  muscle force), not a copy of the command; the command itself is the agent's own action,
  known without delay.
* ``vision``, 70 ms, noise 1e-3 m: the hand position; the low end of issue 13's 70-100 ms
  (responses to a jump of the seen hand during a reach start at about 90 ms, J Neurosci
  2019, PMC6703887).

The noise of 1e-3 is what MotorNet's users commonly pass to its ``Environment``
(``proprioception_noise``, ``vision_noise``; github.com/OlivierCodol/MotorNet,
``motornet/environment.py``); here it is in the entries' own units (cosines and sines,
rad/s, activations, m).

Observation space: the wrapped env's, with the bounds of each noisy entry widened by
:data:`NOISE_BOUND_STDS` of its channel's standard deviations (a cosine with noise 1e-3 may
read 1.0005). Gaussian noise has no bound, so a noisy entry can in principle leave even the
widened box; at 8 standard deviations the chance is below 1e-15 per entry and step.
Nothing is clipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from ..senses import ARM_SENSES, delay_steps
from ._core import PlantEnv, PlantVectorEnv, _f32

__all__ = ["ARM_SENSES", "NOISE_BOUND_STDS", "DelayedSenses", "DelayedSensesVector",
           "SenseChannel", "arm_channels"]

#: How many noise standard deviations the observation bounds of a noisy entry are widened by.
NOISE_BOUND_STDS = 8.0
# the wrapper's noise generator: seeded with [seed, _SALT], so that it never replays the
# environment's own stream (gymnasium seeds that from the seed alone)
_SALT = 0x5E15E5


@dataclass(frozen=True)
class SenseChannel:
    """One sense of an environment: some of its observation entries, late and noisy.

    Parameters
    ----------
    name : str
        The channel's name, e.g. ``"vision"`` (unique among a wrapper's channels).
    entries : sequence of str
        Observation entry names (the env's ``obs_names``), at least one.
    delay : float
        Seconds, a whole multiple of the plant's time step (within 1e-6 of a step), at most
        the episode's length.
    noise : float
        Standard deviation of the Gaussian noise added to each entry at every step (the
        entries' units), >= 0.
    """

    name: str
    entries: tuple[str, ...]
    delay: float = 0.0
    noise: float = 0.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"channels: a channel's name must be a non-empty string, got "
                             f"{self.name!r}")
        entries = self.entries
        if isinstance(entries, str) or not isinstance(entries, Sequence) or not entries \
                or not all(isinstance(e, str) for e in entries):
            raise ValueError(f"channels: channel {self.name!r}: entries must be a non-empty "
                             f"list of observation entry names, got {entries!r}")
        if len(set(entries)) != len(entries):
            raise ValueError(f"channels: channel {self.name!r}: entries repeat: {list(entries)}")
        object.__setattr__(self, "entries", tuple(entries))
        for key in ("delay", "noise"):
            value = getattr(self, key)
            ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer
                                                            | np.floating)
            if not ok or not (np.isfinite(value) and value >= 0):
                what = "seconds" if key == "delay" else "a standard deviation"
                raise ValueError(f"channels: channel {self.name!r}: {key} must be finite and "
                                 f">= 0 ({what}), got {value!r}")
            object.__setattr__(self, key, float(value))


def arm_channels(obs_names: Sequence[str]) -> list[SenseChannel]:
    """The default channels (:data:`ARM_SENSES`) for an arm env's observation entries.

    Proprioception: ``cos_q*``, ``sin_q*``, ``q*_dot`` and any ``activation_*``; vision:
    ``hand_x``, ``hand_y``. A ``ValueError`` naming ``channels`` if the env is not an arm's.
    """
    names = list(obs_names)
    proprio = [e for e in names if e.startswith(("cos_q", "sin_q", "activation_"))
               or (e.startswith("q") and e.endswith("_dot"))]
    if not any(e.startswith("cos_q") for e in proprio) or not {"hand_x", "hand_y"} <= set(names):
        raise ValueError(f'channels="default" is for the arm environments (joint angles and a '
                         f"hand position); this one observes {names}: give the channels")
    (pd, pn), (vd, vn) = ARM_SENSES["proprioception"], ARM_SENSES["vision"]
    return [SenseChannel("proprioception", tuple(proprio), pd, pn),
            SenseChannel("vision", ("hand_x", "hand_y"), vd, vn)]


def _channel(item: Any) -> SenseChannel:
    if isinstance(item, SenseChannel):
        return item
    if isinstance(item, Mapping):
        if set(item) - {"name", "entries", "delay", "noise"} or not {"name", "entries"} <= set(item):
            raise ValueError(f"channels: a channel mapping needs 'name' and 'entries' (and "
                             f"optionally 'delay', 'noise'), got keys {sorted(item)}")
        return SenseChannel(item["name"], item["entries"], item.get("delay", 0.0),
                            item.get("noise", 0.0))
    raise TypeError(f"channels: expected SenseChannel objects or mappings, got "
                    f"{type(item).__name__}")


class _Plan:
    """The resolved channels: which columns, how many steps late, how noisy; and the ring
    buffers of ``B`` copies' recent observations."""

    def __init__(self, channels: Any, obs_names: Sequence[str], dt: float, horizon: int,
                 space: spaces.Box, B: int) -> None:
        names = tuple(obs_names)
        if space.shape != (len(names),):
            raise ValueError(f"env: its observations have shape {space.shape}, the plant env's "
                             f"{len(names)} entries {list(names)}; wrap the plant env itself, "
                             f"not a wrapper that changes its observations")
        if isinstance(channels, str):
            if channels != "default":
                raise ValueError(f'channels must be "default" or a list of channels, got '
                                 f"{channels!r}")
            channels = arm_channels(names)
        if isinstance(channels, Mapping) or not isinstance(channels, Sequence) or not channels:
            raise ValueError(f'channels must be "default" or a non-empty list of channels, got '
                             f"{channels!r}")
        chans = [_channel(c) for c in channels]
        seen_names = [c.name for c in chans]
        dup = sorted({n for n in seen_names if seen_names.count(n) > 1})
        if dup:
            raise ValueError(f"channels: names must be unique, {dup} repeat")
        owner: dict[str, str] = {}
        self.channels = tuple(chans)
        self.columns, self.delays = [], []
        for c in chans:
            unknown = [e for e in c.entries if e not in names]
            if unknown:
                raise ValueError(f"channels: channel {c.name!r}: unknown observation entries "
                                 f"{unknown}; the env's are {list(names)}")
            for e in c.entries:
                if e in owner:
                    raise ValueError(f"channels: entry {e!r} is in both {owner[e]!r} and "
                                     f"{c.name!r}; channels must not overlap")
                owner[e] = c.name
            steps = delay_steps(c.delay, dt, f"channels: channel {c.name!r}: delay")
            if steps > horizon:
                raise ValueError(f"channels: channel {c.name!r}: delay {c.delay} s is {steps} "
                                 f"steps, longer than the episode ({horizon} steps)")
            self.columns.append(np.array([names.index(e) for e in c.entries], dtype=np.int64))
            self.delays.append(steps)
        self.noisy = np.concatenate([cols for cols, c in zip(self.columns, chans, strict=True)
                                     if c.noise > 0] or [np.zeros(0, dtype=np.int64)])
        self.std = np.concatenate([np.full(cols.size, c.noise) for cols, c
                                   in zip(self.columns, chans, strict=True) if c.noise > 0]
                                  or [np.zeros(0)])
        low = np.asarray(space.low, dtype=np.float64).copy()
        high = np.asarray(space.high, dtype=np.float64).copy()
        low[self.noisy] -= NOISE_BOUND_STDS * self.std
        high[self.noisy] += NOISE_BOUND_STDS * self.std
        self.space = spaces.Box(_f32(low, -np.inf).astype(np.float32),
                                _f32(high, np.inf).astype(np.float32), dtype=np.float32)
        # a channel whose entries are adjacent and in order is read through a slice
        self.reads = [_as_slice(cols) for cols in self.columns]
        self.noisy = _as_slice(self.noisy)
        self.B, self.L = B, max(self.delays) + 1
        # time-major ring buffer: slot s holds every copy's observation of one step
        self.buf = np.zeros((self.L, B, len(names)), dtype=np.float32)
        self.head = 0  # the slot of the newest observation (the same for every copy)
        self.rng = np.random.default_rng()

    def seed(self, seed: int | None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng([int(seed), _SALT])

    def start(self, rows: np.ndarray, obs: np.ndarray) -> None:
        """Copies ``rows`` begin episodes with observations ``obs[len(rows), p]``: their lines
        are filled with them (before its start an episode reads its first observation)."""
        self.buf[:, rows] = obs

    def push(self, obs: np.ndarray) -> None:
        """Every copy's newest observation ``obs[B, p]``."""
        self.head = (self.head + 1) % self.L
        self.buf[self.head] = obs

    def read(self, obs: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """What copies ``rows`` sense, given their current observations ``obs`` (a new
        float32 array): the channels' entries from their delay lines, plus noise."""
        out = np.array(obs, dtype=np.float32, copy=True)
        for cols, d in zip(self.reads, self.delays, strict=True):
            if d:
                out[:, cols] = self.buf[(self.head - d) % self.L, rows][:, cols]
        if self.std.size:
            noise = self.rng.standard_normal((out.shape[0], self.std.size))
            noise *= self.std
            noise += out[:, self.noisy]
            out[:, self.noisy] = noise
        return out


def _as_slice(cols: np.ndarray) -> np.ndarray | slice:
    """``cols`` as a slice if they are consecutive and increasing (a view, not a copy)."""
    if cols.size and (np.diff(cols) == 1).all():
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


def _plant_env(env: Any, cls: type, what: str):
    base = env.unwrapped
    if not isinstance(base, cls):
        raise TypeError(f"env: {what} wraps a plants.envs.{cls.__name__} (e.g. "
                        f"gymnasium.make('plants/ArmReach-v0')), got {type(base).__name__}")
    return base


class DelayedSenses(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """An environment of :mod:`plants.envs` whose observation reaches the agent through
    delayed, noisy sensory channels (see :mod:`plants.envs.senses`).

    Parameters
    ----------
    env : gymnasium.Env
        A :class:`~plants.envs.PlantEnv`, possibly wrapped (``gymnasium.make(...)``).
    channels : "default" or sequence of SenseChannel or mapping
        The channels; ``"default"`` (arm envs only): proprioception 20 ms and vision 70 ms,
        both with noise 1e-3 (:func:`arm_channels`). A mapping is ``{"name", "entries",
        "delay", "noise"}``. Channels must not share entries.

    Notes
    -----
    The noise comes from the wrapper's own generator, seeded by ``reset(seed=...)`` (so the
    same seed gives the same observations; before any seed, from fresh OS entropy); the
    env's own stream, which draws the episodes, is not touched. The observation space is the env's, widened by
    :data:`NOISE_BOUND_STDS` standard deviations on the noisy entries.
    """

    def __init__(self, env: gym.Env, channels: Any = "default") -> None:
        gym.utils.RecordConstructorArgs.__init__(self, channels=channels)
        gym.Wrapper.__init__(self, env)
        base = _plant_env(env, PlantEnv, "DelayedSenses")
        horizon = base.task.horizon
        spec_steps = getattr(env.spec, "max_episode_steps", None) if env.spec else None
        if spec_steps:
            horizon = min(horizon, int(spec_steps))
        self._plan = _Plan(channels, base.obs_names, float(base.plant.dt), horizon,
                           env.observation_space, 1)
        self.observation_space = self._plan.space

    @property
    def channels(self) -> tuple[SenseChannel, ...]:
        return self._plan.channels

    @property
    def delay_steps(self) -> dict[str, int]:
        """Each channel's delay in steps of the plant."""
        return {c.name: d for c, d in zip(self._plan.channels, self._plan.delays, strict=True)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._plan.seed(seed)
        obs = np.asarray(obs, dtype=np.float32)[None]
        self._plan.start(np.zeros(1, dtype=np.int64), obs)
        return self._plan.read(obs)[0], info

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs = np.asarray(obs, dtype=np.float32)[None]
        self._plan.push(obs)
        return self._plan.read(obs)[0], reward, terminated, truncated, info


class DelayedSensesVector(VectorWrapper, gym.utils.RecordConstructorArgs):
    """A native vector env of :mod:`plants.envs` whose copies' observations reach the agent
    through delayed, noisy sensory channels; copy by copy what :class:`DelayedSenses` gives
    the single env.

    Each copy has its own delay lines; when a copy starts an episode (``reset``, a
    ``reset_mask``, or an autoreset in any mode), its lines restart filled with its first
    observation. In ``"SameStep"`` mode ``info["final_obs"]`` holds the sensed (delayed,
    noisy) last observations. Copies not reset by a masked ``reset`` get their last sensed
    observation again.

    Parameters
    ----------
    env : PlantVectorEnv
        ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``.
    channels : "default" or sequence of SenseChannel or mapping
        As for :class:`DelayedSenses`; a delay may be as long as the episode
        (``env.max_episode_steps``).
    """

    def __init__(self, env: VectorEnv, channels: Any = "default") -> None:
        gym.utils.RecordConstructorArgs.__init__(self, channels=channels)
        VectorWrapper.__init__(self, env)
        base = _plant_env(env, PlantVectorEnv, "DelayedSensesVector")
        self._plan = _Plan(channels, base.obs_names, float(base.plant.dt),
                           base.max_episode_steps, env.single_observation_space, env.num_envs)
        self.single_observation_space = self._plan.space
        self.observation_space = batch_space(self._plan.space, env.num_envs)
        self._mode = AutoresetMode(base.autoreset_mode)
        self._done = np.zeros(env.num_envs, dtype=bool)
        self._last = np.zeros((env.num_envs, self._plan.space.shape[0]), dtype=np.float32)

    @property
    def channels(self) -> tuple[SenseChannel, ...]:
        return self._plan.channels

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._plan.seed(seed)
        obs = np.asarray(obs, dtype=np.float32)
        mask = None if not options else options.get("reset_mask")
        rows = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        self._plan.start(rows, obs[rows])
        self._last[rows] = self._plan.read(obs[rows], rows)
        self._done[rows] = False
        return self._last.copy(), info

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        obs = np.asarray(obs, dtype=np.float32)
        plan = self._plan
        ended = terminated | truncated
        if self._mode == AutoresetMode.SAME_STEP and ended.any():
            rows = np.flatnonzero(ended)
            final = obs.copy()
            for i in rows:
                final[i] = info["final_obs"][i]
            plan.push(final)
            sensed = plan.read(final)
            final_obs = np.array(info["final_obs"], dtype=object, copy=True)
            for i in rows:
                final_obs[i] = sensed[i].copy()
            info = {**info, "final_obs": final_obs}
            plan.start(rows, obs[rows])
            sensed[rows] = plan.read(obs[rows], rows)
        else:
            plan.push(obs)
            if self._mode == AutoresetMode.NEXT_STEP and self._done.any():
                # these copies were reset by this step: obs holds their first observations
                plan.start(np.flatnonzero(self._done), obs[self._done])
            sensed = plan.read(obs)
            if self._mode == AutoresetMode.NEXT_STEP:
                self._done = ended.copy()
        self._last = sensed
        return sensed.copy(), rewards, terminated, truncated, info
