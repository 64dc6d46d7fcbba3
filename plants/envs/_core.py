"""Machinery shared by the plants' Gymnasium environments (single and vector).

An environment family (``arm.py``, ``pendulum.py``, ``cartpole.py``) describes itself with a
:class:`Layout`: its task, the scale from normalised actions to the plant's controls, the
observation (features of the state and the goal, and their bounds), its compiled kernels
(:mod:`plants.envs._step`), the checks on reset options and the drawing. :class:`Episodes`
runs a batch of ``B`` copies of the task's episodes with that layout: one call of the
family's step kernel steps them all (the plant's dynamics, the rewards, the observations
and the step counts), into preallocated buffers. :class:`PlantEnv` is an ``Episodes`` of
one copy behind Gymnasium's ``Env`` API, :class:`PlantVectorEnv` one of ``num_envs`` copies
behind ``VectorEnv``; both therefore compute the same numbers.

Reward: the task's cost (``plants.tasks``) split over the steps. Step ``t`` (control
``u_t``, new state ``x_{t+1}``, ``t = 0 .. T - 1``) is charged::

    cost_t = effort * dt * |u_t|^2                                  (every step)
           + c[t] * sum_i w_i (y_i(x_{t+1}) - target_i(t + 1))^2     (c = task.step_weights)
           + final_velocity * |v(x_T)|^2                            (t = T - 1 only)

and ``reward_t = -cost_t``, so that the rewards of an episode run to the horizon add up to
``-task.cost(X, U, targets)`` of that episode, ``U`` being the controls the plant received
(the actions scaled and clipped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..tasks import Task
from . import _step

__all__ = ["Episodes", "Layout", "PlantEnv", "PlantVectorEnv"]


def _f32(a, direction: float) -> np.ndarray:
    """Bounds as float64 values that float32 represents exactly, rounded outwards
    (``direction`` -inf for lower bounds, +inf for upper ones): a value inside the float64
    bound stays inside the float32 box when cast."""
    a = np.asarray(a, dtype=np.float64)
    b = a.astype(np.float32)
    off = (b < a) if direction > 0 else (b > a)
    b[off] = np.nextafter(b[off], np.float32(direction))
    return b.astype(np.float64)


class Layout:
    """What an environment family defines; :class:`Episodes` and the env classes do the rest.

    Subclasses set ``task`` (through :meth:`__init__`), ``obs_low``/``obs_high`` (float32
    values, one pair per observation entry), ``target_low``/``target_high`` (bounds of a
    goal given through ``options["target"]``), ``goal_columns`` and ``kernels`` (the family's
    compiled features and step kernels, :mod:`plants.envs._step`, which compute the features
    of the layout), and implement :meth:`decode` and :meth:`drawing` (and optionally
    :meth:`check_x0` and :meth:`constants`).
    """

    #: Observation entries' names.
    obs_names: tuple[str, ...] = ()
    #: Rendered frame size in pixels (width, height).
    frame_size: tuple[int, int] = (400, 400)

    def __init__(self, task: Task) -> None:
        self.task = task
        self.plant = task.plant
        self.n = int(self.plant.state_dim)
        self.m = int(self.plant.control_dim)
        self.k = int(task.output_dim)
        self.horizon = int(task.horizon)
        high = np.asarray(self.plant.control_high, dtype=float)
        low = np.asarray(self.plant.control_low, dtype=float)
        if not (np.isfinite(high).all() and np.isfinite(low).all() and (high > low).all()):
            raise ValueError("the environment's plant needs finite control limits with low < "
                             f"high (got low {low}, high {high})")
        # action a in [-1, 1] -> control u = a * action_scale + action_offset (the centre of
        # the range, 0 for symmetric limits: then u = a * high exactly)
        self.action_scale = (high - low) / 2.0
        self.action_offset = (high + low) / 2.0

    # -- to be defined by the families ---------------------------------------------------
    obs_low: np.ndarray
    obs_high: np.ndarray
    target_low: np.ndarray
    target_high: np.ndarray

    #: The observation columns that hold the goal.
    goal_columns: slice
    #: ``(features, step)``: the family's kernels of :mod:`plants.envs._step`.
    kernels: tuple[Callable, Callable]
    #: The task's outputs and velocities that the step kernel computes (checked).
    kernel_outputs: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    def constants(self) -> np.ndarray:
        """The family's constants that its kernels read (after the common ones)."""
        return np.zeros(0)

    def check_x0(self, x0: np.ndarray) -> None:
        """Raise a ``ValueError`` naming ``options["x0"]`` if a given state is not allowed."""

    def decode(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The plant states ``[B, n]`` and goals ``[B, k]`` behind observations ``[B, p]``."""
        raise NotImplementedError

    def drawing(self, ax) -> Callable[[np.ndarray, np.ndarray, float], None]:
        """Set up a matplotlib ``Axes`` and return ``update(x[n], goal[k], time)``."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def finish(self) -> None:
        """Convert the bounds and check that the step kernel computes the task's outputs and
        velocities (call at the end of a subclass's ``__init__``)."""
        names = (tuple(self.task.output_names), tuple(self.task.velocity_names))
        if names != self.kernel_outputs:
            raise ValueError(f"the environment's step kernel computes the outputs and "
                             f"velocities {self.kernel_outputs}, the task has {names}")
        self.obs_low = _f32(self.obs_low, -np.inf)
        self.obs_high = _f32(self.obs_high, np.inf)
        self.target_low = np.asarray(self.target_low, dtype=float)
        self.target_high = np.asarray(self.target_high, dtype=float)
        self.observation_space = spaces.Box(self.obs_low.astype(np.float32),
                                            self.obs_high.astype(np.float32), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.m,), dtype=np.float32)

    def draw(self, rng: np.random.Generator, count: int,
             options: Mapping[str, Any] | None, copies: int | None = None,
             rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``count`` episodes ``(x0[count, n], targets[count, T, k])`` from the task's own
        :meth:`~plants.tasks.Task.sample` with ``rng``, then ``options["x0"]`` and
        ``options["target"]`` applied. The task always draws, so that options do not shift
        the random stream. A vector env passes its number of ``copies`` and the resetting
        ``rows``: an option may then also give one value per copy, ``(copies, ...)``."""
        batch = self.task.sample(count, rng=rng)
        x0, targets = batch.x0, batch.targets
        if options:
            unknown = set(options) - {"x0", "target", "reset_mask"}
            if unknown:
                raise ValueError(f"unknown reset options {sorted(unknown)}; expected 'x0' "
                                 f"(initial state, shape ({self.n},)) and 'target' (goal, "
                                 f"shape ({self.k},))")
            if options.get("x0") is not None:
                x0 = self._option(options["x0"], "x0", self.n, count, copies, rows,
                                  "the initial plant state " + self._state_names())
                self.check_x0(x0)
            if options.get("target") is not None:
                goal = self._option(options["target"], "target", self.k, count, copies, rows,
                                    "the goal in the task's outputs "
                                    f"({', '.join(self.task.output_names)})")
                bad = (goal < self.target_low) | (goal > self.target_high)
                if bad.any():
                    raise ValueError(f'options["target"] must lie within [{self.target_low}, '
                                     f"{self.target_high}] ({', '.join(self.task.output_names)})"
                                     f", got {goal[bad.any(axis=1)][0]}")
                targeted = ~np.isnan(targets).any(axis=2)
                targets = np.where(targeted[:, :, None], goal[:, None, :], np.nan)
        return x0, targets

    def _state_names(self) -> str:
        return f"(plant state, {self.n} entries)"

    @staticmethod
    def _option(value, name: str, size: int, count: int, copies: int | None = None,
                rows: np.ndarray | None = None, what: str = "") -> np.ndarray:
        """An option as ``[count, size]`` float64: one value ``(size,)`` for every episode, or
        (vector envs) one per copy ``(copies, size)``, of which ``rows`` are taken."""
        shapes = f"({size},)" if copies is None else f"({size},) or ({copies}, {size})"
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f'options["{name}"] must be a real array of shape {shapes} '
                             f"({what}), got {value!r}") from None
        if arr.shape == (size,):
            arr = np.broadcast_to(arr, (count, size))
        elif copies is not None and arr.shape == (copies, size):
            arr = arr[rows]
        else:
            raise ValueError(f'options["{name}"] must have shape {shapes} ({what}), got '
                             f"shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f'options["{name}"] must be finite, got {value!r}')
        return np.ascontiguousarray(arr, dtype=np.float64)


class Episodes:
    """``B`` copies of a task's episodes, stepped together.

    Holds the states ``x[B, n]``, the targets ``[B, T, k]`` (NaN replaced by 0, their step
    weights 0), the step weights ``c[B, T]``, the goals ``[B, k]``, the step counts ``t[B]``
    and the observation features ``[B, p]`` of the current states. :meth:`advance` steps every
    copy in one call of the family's compiled step kernel (:mod:`plants.envs._step`), which
    also computes the rewards, observations and truncations; :meth:`observe` gives the
    observations after a reset. Nothing but the returned arrays is allocated per step.
    ``max_steps``: episodes are truncated after ``min(max_steps, T)`` steps.
    """

    def __init__(self, layout: Layout, B: int, max_steps: int | None = None) -> None:
        self.layout = layout
        task, plant = layout.task, layout.plant
        self.B, n, m, k, T = B, layout.n, layout.m, layout.k, layout.horizon
        self.T = T
        self.p = layout.obs_low.size
        self.x = np.zeros((B, n))
        self._xn = np.zeros((B, 1, n))
        self._a = np.zeros((B, m))
        self._u = np.zeros((B, 1, m))
        self.targets = np.zeros((B, T, k))
        self.c = np.zeros((B, T))
        self.goal = np.zeros((B, k))
        self.t = np.zeros(B, dtype=np.int64)
        self.f = np.zeros((B, self.p))
        self._sc = np.zeros(_step.SCRATCH)
        # (arguments of the features kernels that they do not use)
        self._obs1 = np.zeros((1, self.p), dtype=np.float32)
        self._rew1 = np.zeros(1)
        self._trunc1 = np.zeros(1, dtype=np.bool_)
        self._count = np.zeros(1, dtype=np.int64)
        self._all = np.arange(B, dtype=np.int64)
        self._features, self._step = layout.kernels
        self._params = plant.kernel_params
        self._ws = np.empty(plant.workspace_size)
        self._cfg = np.concatenate([[task.weights.effort * plant.dt,
                                     task.weights.final_velocity, T, 1.0 / T,
                                     T if max_steps is None else min(T, max_steps)],
                                    layout.constants()])
        self._w = np.ascontiguousarray(task.output_weights, dtype=np.float64)
        self._scale = np.ascontiguousarray(np.stack([layout.action_scale, layout.action_offset]),
                                           dtype=np.float64)
        self._lo = layout.obs_low
        self._hi = layout.obs_high
        self._tracking = float(task.weights.tracking)
        self._final_error = float(task.weights.final_error)
        # the step kernel's arguments before the returned arrays (fixed buffers)
        self._args = (self._params, self._ws, self._a, self.x, self._xn, self._u, self.t, self.c,
                      self.targets, self.goal, self._cfg, self._w, self._scale, self._lo,
                      self._hi, self.f, self._sc, self._all)

    def start(self, rows: np.ndarray, x0: np.ndarray, targets: np.ndarray) -> None:
        """Begin new episodes in copies ``rows`` (int64 indices) from ``x0[len(rows), n]``
        and ``targets[len(rows), T, k]`` (NaN: no target at that step)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        _step.begin(rows, np.ascontiguousarray(x0, dtype=np.float64),
                    np.ascontiguousarray(targets, dtype=np.float64), self._tracking,
                    self._final_error, self.x, self.t, self.c, self.targets, self.goal)
        self._observe(rows)

    def set_state(self, x: np.ndarray) -> None:
        """Place the plant (all copies) at states ``x[B, n]``."""
        self.x[:] = x
        self._observe(self._all)

    def _observe(self, rows: np.ndarray) -> None:
        """The features of copies ``rows``, into ``f``."""
        self._features(rows, self.x, self._u, self.t, self.c, self.targets, self.goal,
                       self._cfg, self._w, self._lo, self._hi, self.f, self._sc, self._obs1,
                       self._rew1, self._trunc1)

    def check(self, a: np.ndarray) -> None:
        """Raise a ``ValueError`` if an action of ``a[B, m]`` is not finite."""
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite (no NaN or inf), got {a}")

    def advance(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Step every copy with normalised actions ``a[B, m]`` (clipped to [-1, 1] here):
        ``(observations [B, p] float32, rewards [B] float64, truncated [B] bool, number
        truncated)``, new arrays. A ``ValueError`` if an action is not finite or the plant's
        step fails (then nothing has changed)."""
        B = self.B
        np.copyto(self._a, a)
        obs = np.empty((B, self.p), dtype=np.float32)
        rew = np.empty(B)
        trunc = np.empty(B, dtype=np.bool_)
        code = self._step(*self._args, obs, rew, trunc, self._count)
        if code != -1:
            if code == _step.BAD_ACTION:
                self.check(a)
            raise self.layout.plant._bad(code, "state", self.x, "the control")
        return obs, rew, trunc, int(self._count[0])

    def observe(self) -> np.ndarray:
        """The observations ``[B, p]`` of every copy, float32, inside the observation space (a
        new array)."""
        self._observe(self._all)
        return self.f.astype(np.float32)


def _check_render_mode(render_mode, modes) -> str | None:
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be None or one of {list(modes)}, got {render_mode!r}")
    return render_mode


def _check_action(action, shape: tuple[int, ...]) -> np.ndarray:
    """The action as a float array of exactly ``shape``; a clear ``ValueError`` otherwise.
    (Finiteness is checked by :meth:`Episodes.advance`.)"""
    if type(action) is np.ndarray and action.shape == shape and action.dtype.kind == "f":
        return action
    try:
        a = np.asarray(action)
    except (TypeError, ValueError):
        raise ValueError(f"action must be a real array of shape {shape} (normalised to "
                         f"[-1, 1]), got {action!r}") from None
    if a.dtype.kind not in "fiu":
        raise ValueError(f"action must be a real array of shape {shape} (normalised to "
                         f"[-1, 1]), got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"action must have shape {shape} (normalised to [-1, 1]), got "
                         f"shape {a.shape}")
    return np.ascontiguousarray(a, dtype=a.dtype if a.dtype.kind == "f" else np.float64)


class PlantEnv(gym.Env):
    """A task of :mod:`plants.tasks` as a Gymnasium environment (one copy).

    Subclasses (one per family) build their :class:`Layout` and pass it here; see their
    docstrings for the spaces, rewards and options.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "human"], "render_fps": 50}

    def __init__(self, layout: Layout, render_mode: str | None = None) -> None:
        self._layout = layout
        self.task = layout.task
        self.plant = layout.plant
        self.render_mode = _check_render_mode(render_mode, self.metadata["render_modes"])
        self.metadata = {**type(self).metadata, "render_fps": 1.0 / float(self.plant.dt)}
        self.action_space = layout.action_space
        self.observation_space = layout.observation_space
        self._ep = Episodes(layout, 1)
        self._targets = np.zeros((layout.horizon, layout.k))
        self._started = False
        self._renderer = None
        if self.render_mode == "human":
            from ._render import Renderer

            self._renderer = Renderer(layout, "human", self.metadata["render_fps"])

    # -- state access (for plants.GymDynamics and for users) -------------------------------
    @property
    def state(self) -> np.ndarray:
        """The plant state ``(n,)`` (a copy); settable, to place the plant anywhere."""
        return self._ep.x[0].copy()

    @state.setter
    def state(self, value) -> None:
        x = np.asarray(value, dtype=np.float64)
        if x.shape != (self._layout.n,) or not np.isfinite(x).all():
            raise ValueError(f"state must be a finite array of shape ({self._layout.n},), got "
                             f"{value!r}")
        self._ep.set_state(x[None])

    @property
    def obs_names(self) -> tuple[str, ...]:
        """The name of each observation entry (``cos_q1``, ``hand_x``, ``goal_x``, ...)."""
        return tuple(self._layout.obs_names)

    @property
    def goal(self) -> np.ndarray:
        """The episode's goal ``(k,)`` in the task's outputs (a copy)."""
        return self._ep.goal[0].copy()

    @property
    def targets(self) -> np.ndarray:
        """The episode's targets ``[T, k]`` as the task gives them (NaN: no target), a copy:
        with the states and controls of a full episode, ``task.cost(X[None], U[None],
        targets[None])`` is minus the episode's return."""
        return self._targets.copy()

    @property
    def elapsed_steps(self) -> int:
        """Steps taken in the current episode."""
        return int(self._ep.t[0])

    def decode(self, obs) -> tuple[np.ndarray, np.ndarray]:
        """The plant state ``(n,)`` and goal ``(k,)`` behind an observation (velocities beyond
        the observation bounds come back clipped)."""
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != self.observation_space.shape:
            raise ValueError(f"obs must have shape {self.observation_space.shape}, got "
                             f"{obs.shape}")
        x, goal = self._layout.decode(obs[None])
        return x[0], goal[0]

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "reset_mask" in options:
            raise ValueError('options["reset_mask"] is for vector environments only')
        x0, targets = self._layout.draw(self.np_random, 1, options)
        self._ep.start(self._ep._all, x0, targets)
        self._targets = targets[0]
        self._started = True
        if self.render_mode == "human":
            self.render()
        return self._ep.observe()[0], {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._ep.t[0] >= self._ep.T:
            raise RuntimeError(f"the episode is over (the task's horizon is {self._ep.T} "
                               "steps): call reset()")
        a = _check_action(action, self.action_space.shape)
        obs, reward, truncated, _ = self._ep.advance(a.reshape(1, -1))
        if self.render_mode == "human":
            self.render()
        return obs[0], float(reward[0]), False, bool(truncated[0]), {}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the environment with "
                            'render_mode="rgb_array" or "human"')
            return None
        if not self._started:
            raise RuntimeError("call reset() before render()")
        if self._renderer is None:
            from ._render import Renderer

            self._renderer = Renderer(self._layout, self.render_mode, self.metadata["render_fps"])
        return self._renderer.frame(self._ep.x[0], self._ep.goal[0],
                                    float(self._ep.t[0]) * float(self.plant.dt))

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class PlantVectorEnv(VectorEnv):
    """``num_envs`` copies of a task's episodes stepped in one compiled call.

    Parameters (beyond the family's): ``num_envs``; ``max_episode_steps`` (episodes are
    truncated after ``min(max_episode_steps, horizon)`` steps; ``make_vec`` passes the
    registered horizon); ``autoreset_mode`` (an ``AutoresetMode`` or its value:
    ``"NextStep"`` (default), ``"SameStep"`` or ``"Disabled"``); ``render_mode``
    (``"rgb_array"``: ``render()`` returns a tuple of frames, one per copy).

    Randomness: one generator, ``self.np_random``; ``reset(seed=s)`` seeds it, and every
    (auto)reset draws the new episodes of the resetting copies, in index order, with one call
    of the task's ``sample``. A vector env of one copy therefore produces the same episodes
    as the single env with the same seed; with more copies, copy ``i`` runs the single env's
    dynamics, rewards and observations from its own initial state and goal.

    ``options`` of ``reset``: ``"x0"`` and ``"target"`` as for the single env, one value for
    every reset copy (shape ``(n,)``/``(k,)``) or one per copy (``(num_envs, n)``/
    ``(num_envs, k)``); ``"reset_mask"``, a boolean array ``(num_envs,)``, resets only those
    copies (the others keep their episodes; their observations are returned unchanged).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50,
                                "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, layout: Layout, num_envs: int = 1, *, max_episode_steps: int | None = None,
                 render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError("autoreset_mode must be an AutoresetMode or one of "
                             f"{[m.value for m in AutoresetMode]}, got {autoreset_mode!r}") from None
        self._layout = layout
        self.task = layout.task
        self.plant = layout.plant
        self.num_envs = int(num_envs)
        T = layout.horizon
        if max_episode_steps is not None:
            if isinstance(max_episode_steps, bool) or not isinstance(
                    max_episode_steps, int | np.integer) or max_episode_steps < 1:
                raise ValueError("max_episode_steps must be a positive integer or None, got "
                                 f"{max_episode_steps!r}")
            T = min(T, int(max_episode_steps))
        self.max_episode_steps = T
        self.render_mode = _check_render_mode(render_mode, self.metadata["render_modes"])
        self.metadata = {**type(self).metadata, "render_fps": 1.0 / float(self.plant.dt),
                         "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.single_action_space = layout.action_space
        self.single_observation_space = layout.observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._ep = Episodes(layout, self.num_envs, T)
        self._shape = (self.num_envs, layout.m)
        self._started = False
        self._done = np.zeros(self.num_envs, dtype=bool)  # episodes that ended
        self._any_done = False
        self._renderer = None

    @property
    def state(self) -> np.ndarray:
        """The plant states ``[num_envs, n]`` (a copy)."""
        return self._ep.x.copy()

    @property
    def obs_names(self) -> tuple[str, ...]:
        """The name of each observation entry (as :attr:`PlantEnv.obs_names`)."""
        return tuple(self._layout.obs_names)

    @property
    def goal(self) -> np.ndarray:
        """The goals ``[num_envs, k]`` (a copy)."""
        return self._ep.goal.copy()

    @property
    def elapsed_steps(self) -> np.ndarray:
        """Steps taken in each copy's current episode."""
        return self._ep.t.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(f"seed must be an integer or None (one generator drives every "
                             f"copy), got {seed!r}")
        super().reset(seed=seed)
        mask = None if not options else options.get("reset_mask")
        if mask is None:
            rows = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f'options["reset_mask"] must be a boolean array of shape '
                                 f"({self.num_envs},), got {mask.dtype} {mask.shape}")
            rows = np.flatnonzero(mask)
            if not self._started and rows.size != self.num_envs:
                raise ValueError('the first reset must reset every copy (options["reset_mask"]'
                                 " all True, or none)")
        self._reset_rows(rows, options)
        self._started = True
        return self._ep.observe(), {}

    def _reset_rows(self, rows: np.ndarray, options=None) -> None:
        x0, targets = self._layout.draw(self.np_random, rows.size, options,
                                        copies=self.num_envs, rows=rows)
        self._ep.start(rows, x0, targets)
        self._done[rows] = False
        self._any_done = bool(self._done.any())

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = _check_action(actions, self._shape)
        ep = self._ep
        mode = self.autoreset_mode
        N = self.num_envs
        restart = None  # next-step mode: the copies that start their next episode now
        if self._any_done:
            if mode == AutoresetMode.DISABLED:
                raise RuntimeError(f"copies {np.flatnonzero(self._done).tolist()} finished their "
                                   "episodes (autoreset disabled): reset them with "
                                   'reset(options={"reset_mask": mask})')
            if mode == AutoresetMode.NEXT_STEP:
                if self._done.all():  # every copy starts its next episode: nothing steps
                    ep.check(a)
                    self._reset_rows(ep._all)
                    return (ep.observe(), np.zeros(N), np.zeros(N, dtype=bool),
                            np.zeros(N, dtype=bool), {})
                restart = np.flatnonzero(self._done)
                ep.t[restart] = 0  # stepped below, then replaced by their new episodes
        obs, rewards, truncated, ntrunc = ep.advance(a)
        infos: dict[str, Any] = {}
        if restart is not None:
            self._reset_rows(restart)
            obs[restart] = ep.f[restart]
            rewards[restart] = 0.0
            truncated[restart] = False
            ntrunc = int(np.count_nonzero(truncated))
        if ntrunc:
            if mode == AutoresetMode.SAME_STEP:
                rows = np.flatnonzero(truncated)
                final = np.full(N, None, dtype=object)
                for i in rows:
                    final[i] = obs[i].copy()
                self._reset_rows(rows)
                obs[rows] = ep.f[rows]
                infos = {"final_obs": final, "_final_obs": truncated.copy(),
                         "final_info": {}, "_final_info": truncated.copy()}
            else:
                self._done |= truncated
                self._any_done = True
        return obs, rewards, np.zeros(N, dtype=bool), truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the vector environment "
                            'with render_mode="rgb_array"')
            return None
        if not self._started:
            raise RuntimeError("call reset() before render()")
        if self._renderer is None:
            from ._render import Renderer

            self._renderer = Renderer(self._layout, "rgb_array", self.metadata["render_fps"])
        ep, dt = self._ep, float(self.plant.dt)
        return tuple(self._renderer.frame(ep.x[i], ep.goal[i], float(ep.t[i]) * dt)
                     for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
