"""Closed-loop control: a recurrent network drives a plant that it senses.

At each step ``t`` of an episode the network reads the task's inputs (for a reach,
the goal) and what it senses of the plant: sensory channels
(:mod:`hfcontrol.observation`), each a map of the state with its own delay and noise,
``o_t = [obs_c(x_{t - delay_c}) + noise_{c,t} for each channel c]``; its
output layer, times a control scale, is the control ``u_t``; the plant steps,
``x_{t+1} = f(x_t, u_t)``. The cost is the task's (:mod:`hfcontrol.task_cost`):
weighted squares of smooth outputs of the states and controls.

:class:`ClosedLoop` is a model (:class:`hfcontrol.model.Model`): the optimisers and
the training loop train it like a network. Its gradient and Gauss-Newton product
follow the feedback path: a control at ``t`` moves the state at ``t + 1`` and with it
what each channel senses at ``t + 1 + delay_c``. They use the plant's step Jacobians
``A_t = df/dx``, ``B_t = df/du`` along the cached rollout (central finite differences
for a plant without ``jacobians``), the observation's Jacobian, and the cost's exact
curvature, so ``G = J^T H J`` over the whole loop is symmetric positive semi-definite.
With ``feedback="data"`` the observations are held fixed at their cached values, as
the reference package does with a plant that feeds the network: then the error, the
gradient and ``G v`` all describe that open-loop objective.

Notation of the recursions below (per sample; ``W_in``, ``W_rec``, ``W_out`` and their
biases are the network's; ``f``, ``g`` its hidden and output nonlinearities; ``c`` the
control scale; ``e = [goal, o]`` the network input)::

    z_t = e_t W_in + b_in + (s_{t-1} W_rec  if t > 0  else  b_rec)
    s_t = f(z_t),   y_t = s_t W_out + b_out,   u_t = c * g(y_t),   x_{t+1} = f(x_t, u_t)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import fd_checks
from ._validation import BACKENDS, as_dtype, as_rng, check_choice, check_vector
from .observation import Channel, Observation, Senses, arm_senses
from .rnnet import RNNet
from .task_cost import TaskCost

__all__ = ["ClosedLoop", "Rollout"]

FEEDBACK_MODES = ("exact", "data")
#: compiled loops kept per ClosedLoop, one per recent batch shape and partition
ENGINES_KEPT = 6
#: fewest episodes per thread when a rollout is split over threads
ROLLOUT_PARTITION = 128
INPUT_MODES = ("goal", "targets", "task", "none")


@dataclass
class Rollout:
    """An episode batch run through the closed loop."""

    states: np.ndarray  #: ``[B, T + 1, n]``, float64
    controls: np.ndarray  #: ``[B, T, m]``, float64 (as sent to the plant, before its limits)
    hidden: np.ndarray  #: ``[B, T, H]``, the recurrent layer's activations
    observations: np.ndarray  #: ``[B, T, p]``, what the network sensed (noise included)
    cost: np.ndarray | None  #: per-episode task cost ``[B]`` (inf where the plant blew up)
    finite: bool = True  #: False if the rollout met a non-finite state or control


class _Trajectory:
    """Everything one rollout at given weights leaves for the derivatives."""

    def __init__(self, B, T, n, m, H, n_in, dtype):
        self.X = np.zeros((B, T + 1, n))
        self.U = np.zeros((B, T, m))
        self.E = np.zeros((B, T, n_in), dtype)  # network inputs
        self.Z = np.zeros((B, T, H), dtype)
        self.S = np.zeros((B, T, H), dtype)
        self.Yo = np.zeros((B, T, m), dtype)  # output-layer inputs
        self.Ao = np.zeros((B, T, m), dtype)  # output-layer activations
        self.finite = True


class ClosedLoop:
    """A recurrent controller in a closed loop with a plant, as a trainable model.

    Parameters
    ----------
    plant : plants.Dynamics, optional
        The plant (default: ``task.plant``). Any object with ``state_dim``,
        ``control_dim``, ``step(x, u)`` works; ``jacobians(x, u)`` is used when present,
        central finite differences of ``step`` otherwise.
    task : plants.tasks.Task
        Initial states, targets and cost (``task.sample``, ``outputs``, ``velocity``
        and their Jacobians, ``weights``).
    net : RNNet, optional
        The controller: an ``RNNet([inputs, hidden, controls])`` whose hidden layer is
        recurrent and whose layers are element-wise and stateless. Default: one with
        ``hidden`` Tanh units and a Linear output.
    hidden : int
        Recurrent units of the default network.
    feedback : {"exact", "data"}
        Differentiate through the fed-back observations (``"exact"``) or treat them
        as data (``"data"``, the reference package's behaviour).
    delay : int
        Sensory delay in steps: the network at step ``t`` senses ``x_{t - delay}``
        (``x_0`` before the start). One channel; see ``sensors`` for several.
    obs_noise : float
        Standard deviation of Gaussian noise added to every observation; drawn once per
        cached minibatch, so that the error, gradient and ``G v`` describe one objective.
    observation : "state", list of int, matrix or dict
        What the network senses (see :class:`hfcontrol.observation.Observation`), e.g.
        ``{"linear": [1], "angles": [0]}`` for a pendulum's ``(theta_dot, cos, sin)``.
        ``observation``, ``delay`` and ``obs_noise`` make one channel, ``"observation"``.
    sensors : "default", or a list of channels, optional
        Several senses, each with its own delay (steps) and noise, instead of
        ``observation``, ``delay`` and ``obs_noise``: a list of
        :class:`hfcontrol.observation.Channel` objects, of their specs (mappings
        ``{"name", "observation", "delay", "noise"}``), or of the names of an arm's
        default channels (``"proprioception"``, ``"vision"``); ``"default"`` is all of an
        arm's default channels (:func:`hfcontrol.observation.arm_senses`: joint angles and
        velocities 20 ms late, the hand position 70 ms late, noise 1e-3). The network reads
        the channels' rows in order after the task inputs; every noise is drawn once per
        cached minibatch.
    inputs : {"goal", "targets", "task", "none"}
        Task inputs: ``"goal"``, each episode's last target, at every step;
        ``"targets"``, the target of the current step (the last one before it where
        there is none, zeros before the first); ``"task"``, the inputs the task gives in
        ``batch.inputs`` (cues such as the target shown from its onset and a go signal,
        :class:`plants.tasks.DelayedReach`); ``"none"``.
    control_scale : float or array of shape (m,)
        The control is this times the output layer's activation.
    rng : numpy.random.Generator or int, optional
        For the default network's initialisation and the observation noise.
    dtype : float32 or float64, optional
        The network's dtype (the plant always runs in float64): default float32 for the
        default network, the given network's own otherwise.
    W_init_params, W_rec_params : dict, optional
        Initialisation of the default network (see :class:`~hfcontrol.RNNet`); default
        Gaussian with ``coeff`` 1 for the feedforward and 0.5 for the recurrent weights.
    backend : {"auto", "numba", "numpy"}
        The compiled loop (built-in plants and nonlinearities) or the NumPy reference.
    """

    def __init__(self, plant=None, task=None, net: RNNet | None = None, *, hidden: int = 32,
                 feedback: str = "exact", delay: int = 0, obs_noise: float = 0.0,
                 observation: Any = "state", sensors: Any = None, inputs: str = "goal",
                 control_scale: Any = 1.0,
                 rng: Any = None, dtype: Any = None,
                 W_init_params: dict | None = None, W_rec_params: dict | None = None,
                 backend: str = "auto"):
        if task is None:
            raise TypeError("task is required: a plants.tasks task (initial states, targets, "
                            "cost)")
        self.task = task
        self.cost_fn = TaskCost(task)
        self.plant = task.plant if plant is None else plant
        for attr in ("state_dim", "control_dim", "step"):
            if not hasattr(self.plant, attr):
                raise TypeError(f"plant must follow the plants.Dynamics protocol; "
                                f"{type(self.plant).__name__} has no {attr}")
        task_plant = getattr(task, "plant", None)
        if task_plant is not None and (task_plant.state_dim, task_plant.control_dim) != (
                self.plant.state_dim, self.plant.control_dim):
            raise ValueError(f"plant has state and control sizes ({self.plant.state_dim}, "
                             f"{self.plant.control_dim}) but the task's plant has "
                             f"({task_plant.state_dim}, {task_plant.control_dim})")
        self.n, self.m = int(self.plant.state_dim), int(self.plant.control_dim)
        self.feedback = check_choice(feedback, "feedback", FEEDBACK_MODES)
        #: the channels the network senses (:class:`hfcontrol.observation.Senses`)
        self.senses = self._senses(sensors, observation, delay, obs_noise)
        #: all channels' rows as one map (what :meth:`Controller.observe` gives)
        self.observation = self.senses.observation
        #: the longest channel delay (steps) and the largest noise standard deviation
        self.delay = self.senses.max_delay
        self.obs_noise = float(self.senses.row_noise.max())
        self.inputs = check_choice(inputs, "inputs", INPUT_MODES)
        #: the task's outputs per state (the targets' last axis)
        self.n_outputs = int(np.asarray(self.task.outputs(np.zeros((1, self.n)))).shape[-1])
        if self.inputs == "task":
            self.k = int(getattr(self.task, "input_dim", 0))
            if self.k == 0:
                raise ValueError(f"inputs='task' needs a task that gives the network inputs "
                                 f"(cues such as a go signal); {type(self.task).__name__} has "
                                 f"none: use 'goal', 'targets' or 'none'")
        else:
            self.k = 0 if inputs == "none" else self.n_outputs
        scale = np.asarray(control_scale, dtype=np.float64)
        if scale.ndim == 0:
            scale = np.full(self.m, float(scale))
        if scale.shape != (self.m,) or not np.isfinite(scale).all():
            raise ValueError(f"control_scale must be a finite number or an array of {self.m} "
                             f"(the plant's controls), got {control_scale!r}")
        self.control_scale = scale
        self.rng = as_rng(rng)
        if dtype is None:
            dtype = np.float32 if net is None else getattr(net, "dtype", np.float32)
        self.dtype = as_dtype(dtype)
        self.n_inputs = self.k + self.observation.size
        self.net = self._check_net(net, hidden, W_init_params, W_rec_params)
        self.mask: np.ndarray | None = None
        self.optimizer = None
        self._backend = check_choice(backend, "backend", BACKENDS)
        self._engines: dict[tuple[int, int, int], Any] = {}
        self._cache: dict[str, Any] | None = None
        self._gcache: dict[str, Any] | None = None
        for attr in ("_has_cnoise", "_has_pnoise"):
            if getattr(self.plant, attr, False):
                raise ValueError("plant has its own control or process noise, which it would "
                                 "draw anew at every step and so change the objective between "
                                 "the error, the gradient and G v; use a noiseless plant (and "
                                 "obs_noise for sensory noise)")

    # ------------------------------------------------------------------ construction
    def _check_net(self, net, hidden, W_init_params, W_rec_params) -> RNNet:
        need = f"RNNet([{self.n_inputs}, hidden, {self.m}])"
        if net is None:
            if isinstance(hidden, bool) or not isinstance(hidden, int | np.integer) or hidden < 1:
                raise ValueError(f"hidden must be a positive number of units, got {hidden!r}")
            return RNNet([self.n_inputs, int(hidden), self.m],
                         layers=["Linear", "Tanh", "Linear"], rng=self.rng, dtype=self.dtype,
                         W_init_params=W_init_params or {"init_type": "gaussian", "coeff": 1.0},
                         W_rec_params=W_rec_params or {"init_type": "gaussian", "coeff": 0.5})
        if not isinstance(net, RNNet):
            raise TypeError(f"net must be an {need}, got {type(net).__name__}")
        if len(net.shape) != 3 or net.shape[0] != self.n_inputs or net.shape[2] != self.m:
            raise ValueError(f"net must have shape [{self.n_inputs}, hidden, {self.m}]: "
                             f"{self.k} task inputs + {self.observation.size} observations in, "
                             f"{self.m} controls out; got shape {net.shape}")
        if net.rec_layers != [1] or net.conns != {0: [1], 1: [2]}:
            raise ValueError(f"net must be a chain {need} with only the hidden layer "
                             f"recurrent; got rec_layers {net.rec_layers}, conns {net.conns}")
        for i in (1, 2):
            layer = net.layers[i]
            if layer.stateful or not layer.elementwise:
                raise ValueError(f"net.layers[{i}] must be element-wise and stateless in a "
                                 f"closed loop, got {layer!r}")
        if net.dtype != self.dtype:
            raise ValueError(f"net has dtype {net.dtype}, the loop was asked for {self.dtype}")
        if net.truncation is not None:
            raise ValueError("net.truncation must be None: the closed loop back-propagates "
                             "through the whole episode")
        return net

    # ------------------------------------------------------------------ backend
    @property
    def backend(self) -> str:
        """``"numba"`` (the compiled loop: a built-in plant and built-in element-wise
        nonlinearities) or ``"numpy"`` (the reference path). Set ``"numpy"`` to force the
        reference, ``"numba"`` to insist on the compiled loop, or ``"auto"``."""
        if self._backend == "numpy":
            return "numpy"
        if self._compiled_loop_class().spec(self) is None:
            if self._backend == "numba":
                raise ValueError("backend='numba': this loop has no compiled kernels (a plant "
                                 "without CompiledDynamics kernels, or a nonlinearity without "
                                 "one)")
            return "numpy"
        return "numba"

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = check_choice(value, "backend", BACKENDS)
        self._engines.clear()
        if value == "numba":
            self.backend  # noqa: B018 - raises if the loop cannot be compiled
        self._cache = self._gcache = None

    def _senses(self, sensors, observation, delay, obs_noise) -> Senses:
        """The channels from ``sensors``, or the one of ``observation``, ``delay`` and
        ``obs_noise``."""
        if sensors is None:
            if isinstance(delay, bool) or not isinstance(delay, int | np.integer) or delay < 0:
                raise ValueError(f"delay must be a non-negative integer number of steps, got "
                                 f"{delay!r}")
            if not (np.isfinite(obs_noise) and obs_noise >= 0):
                raise ValueError(f"obs_noise must be a finite standard deviation >= 0, got "
                                 f"{obs_noise!r}")
            obs = Observation.from_spec(observation, self.n)
            return Senses([Channel("observation", obs, int(delay), float(obs_noise))])
        legacy = not (isinstance(observation, str) and observation == "state") or delay != 0 \
            or obs_noise != 0
        if legacy:
            raise ValueError("sensors replaces observation, delay and obs_noise: give each "
                             "channel its own delay and noise, not both")
        if isinstance(sensors, str):
            if sensors != "default":
                raise ValueError(f"sensors must be 'default' or a list of channels, got "
                                 f"{sensors!r}")
            return Senses(self._default_channels(()))
        if isinstance(sensors, Senses):
            return Senses.from_spec(sensors, self.n)
        if not isinstance(sensors, list | tuple):
            raise TypeError(f"sensors must be 'default' or a list of channels, got "
                            f"{type(sensors).__name__}")
        names = [item for item in sensors if isinstance(item, str)]
        defaults = {ch.name: ch for ch in self._default_channels(names)} if names else {}
        return Senses.from_spec([defaults[item] if isinstance(item, str) else item
                                 for item in sensors], self.n)

    def _default_channels(self, names) -> list[Channel]:
        """The plant's default channels (all of them, or those ``names``)."""
        if not hasattr(self.plant, "n_links") or not hasattr(self.plant, "lengths"):
            raise ValueError(f"sensors: default channels exist for planar arms (proprioception, "
                             f"vision); {type(self.plant).__name__} has none: give Channel "
                             f"objects")
        all_names = ("proprioception", "vision")
        for name in names:
            if name not in all_names:
                raise ValueError(f"sensors: unknown channel {name!r}; an arm's default "
                                 f"channels are {list(all_names)}")
        return arm_senses(self.plant, channels=tuple(names) or all_names)

    @staticmethod
    def _compiled_loop_class():
        from .kernels.closed_loop import CompiledLoop

        return CompiledLoop

    def _engine(self, B: int, T: int, part: int = 0):
        """The compiled loop for batch shape ``(B, T)`` (and partition ``part`` of a rollout
        split over threads), or None on the reference path."""
        if self.backend == "numpy":
            return None
        key = (B, T, part)
        engine = self._engines.get(key)
        if engine is None:
            engine = self._compiled_loop_class().for_loop(self, B, T)
            # a training minibatch, a curvature minibatch and a test batch alternate
            if len(self._engines) >= ENGINES_KEPT:
                self._engines.pop(next(iter(self._engines)))
            self._engines[key] = engine
        return engine

    # ------------------------------------------------------------------ model contract
    @property
    def W(self) -> np.ndarray:
        """The network's parameters (the model's ``W``)."""
        return self.net.W

    @W.setter
    def W(self, value: np.ndarray) -> None:
        self.net.W = check_vector(value, "W", self.net.n_params, self.dtype)

    @property
    def n_params(self) -> int:
        return self.net.n_params

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Freeze the parameters where ``mask`` is False (``None`` unfreezes all)."""
        self.net.set_mask(mask)
        self.mask = self.net.mask

    def cache_minibatch(self, batch, curvature: Any = None) -> None:
        """Roll out ``batch`` (a :class:`plants.tasks.TaskBatch`) at the current weights and
        keep what the gradient and ``G v`` need: the trajectory, the plant's step
        Jacobians, the observation's Jacobian and the cost's derivatives. The observation
        noise is drawn here.

        Parameters
        ----------
        batch : TaskBatch
            The episodes of :meth:`error` and :meth:`calc_grad`.
        curvature : int or TaskBatch, optional
            The episodes of :meth:`calc_G`, if not all of ``batch``: the first
            ``curvature`` episodes of ``batch`` (with their noise), or another batch.
            Martens (2010) computes the curvature on a smaller minibatch than the
            gradient, since conjugate gradient calls ``G v`` many times per update.
        """
        x0, targets, goals = self._check_batch(batch)
        B, T = targets.shape[:2]
        noise = self._draw_noise(B, T)
        W = self.W.copy()
        self._cache = self._rollout_cache(W, x0, targets, goals, noise)
        self._gcache = self._cache
        if curvature is not None:
            if isinstance(curvature, int | np.integer) and not isinstance(curvature, bool):
                if not 1 <= curvature <= B:
                    raise ValueError(f"curvature must be a number of episodes in 1..{B} (the "
                                     f"batch) or a TaskBatch, got {curvature}")
                if curvature < B:
                    self._gcache = self._rollout_cache(W, x0[:curvature], targets[:curvature],
                                                       goals[:curvature], noise[:curvature])
            else:
                gx0, gtargets, ggoals = self._check_batch(curvature)
                self._gcache = self._rollout_cache(W, gx0, gtargets, ggoals,
                                                   self._draw_noise(*gtargets.shape[:2]))

    def _draw_noise(self, B: int, T: int) -> np.ndarray:
        """Every row's noise ``[B, T, p]`` (its channel's standard deviation)."""
        p = self.observation.size
        if not self.obs_noise:
            return np.zeros((B, T, p))
        return self.rng.standard_normal((B, T, p)) * self.senses.row_noise

    def _rollout_cache(self, W, x0, targets, goals, noise) -> dict[str, Any]:
        """Everything the error, gradient and ``G v`` need of one rollout at ``W``."""
        B, T = targets.shape[:2]
        cache = {"W": W, "x0": x0, "targets": targets, "goals": goals, "noise": noise,
                 "B": B, "T": T, "terms": None, "error": np.nan}
        engine = self._engine(B, T)
        if engine is None:
            traj = self._simulate(W, x0, goals, noise)
        else:
            traj = self._compiled_simulate(engine, W, x0, goals, noise, deriv=True)
        cache["traj"] = traj
        if traj.finite:
            terms = self.cost_fn.evaluate(traj.X, traj.U, targets)
            cache.update(terms=terms, error=float(np.mean(terms.value)))
            if engine is None:
                A, Bm = self._plant_jacobians(traj.X[:, :-1], traj.U)
                cache.update(A=A, Bm=Bm, Jo=self.observation.jacobian(traj.X))
            else:
                cache["tm"] = self._compiled_derivatives(engine, W, terms, B, T)
        return cache

    def error(self, W: np.ndarray | None = None) -> float:
        """Mean task cost of the cached minibatch's episodes at ``W`` (default: the current
        weights), with the cached noise; ``inf`` where the plant blows up. With
        ``feedback="data"`` the observations are the cached ones."""
        c = self._require_cache()
        if W is None:
            W = self.W
        W = check_vector(W, "W", self.n_params, self.dtype)
        if np.array_equal(W, c["W"]):
            return c["error"]
        traj = self._trial(c, W)
        if not traj.finite:
            return np.inf
        return float(np.mean(self.cost_fn.evaluate(traj.X, traj.U, c["targets"],
                                                   derivatives=False).value))

    def calc_grad(self) -> np.ndarray:
        """Gradient of :meth:`error` at the cached weights (NaN if the rollout blew up)."""
        c = self._require_cache()
        if c["terms"] is None:
            return np.full(self.n_params, np.nan, self.dtype)
        terms, B = c["terms"], c["B"]
        if "tm" in c:
            grad = self._engine(B, c["T"]).backward(c["W"], None, c["tm"], gv=False)
            grad = grad.astype(self.dtype)
        else:
            grad = self._backward(c, terms.gx / B, terms.gu / B)
        return grad if self.mask is None else grad * self.mask

    def calc_G(self, v: np.ndarray, damping: float = 0, out: np.ndarray | None = None
               ) -> np.ndarray:
        """``(G + damping I) v``, ``G = J^T H J`` through the whole loop, at the cached weights
        (on the curvature episodes, if :meth:`cache_minibatch` was given some)."""
        self._require_cache()
        c = self._gcache
        v = check_vector(v, "v", self.n_params, self.dtype)
        if self.mask is not None:
            v = v * self.mask
        if c["terms"] is None:
            gv = np.full(self.n_params, np.nan, self.dtype)
        elif "tm" in c:
            gv = self._engine(c["B"], c["T"]).backward(c["W"], v, c["tm"], gv=True)
            gv = gv.astype(self.dtype)
        else:
            RX, RU = self._r_forward(c, v)
            terms, B = c["terms"], c["B"]
            ex = np.einsum("btnm,btm->btn", terms.hx, RX) / B
            gv = self._backward(c, ex, terms.hu * RU / B)
        if damping:
            gv = gv + self.dtype.type(damping) * v
        if self.mask is not None:
            gv = gv * self.mask
        if out is not None:
            out[:] = gv
            return out
        return gv

    # ------------------------------------------------------------------ public helpers
    def rollout(self, batch, W: np.ndarray | None = None, noise: bool = True,
                cost: bool = True) -> Rollout:
        """Run ``batch`` through the closed loop at ``W`` (default: the current weights),
        with fresh observation noise unless ``noise`` is False, and the task cost of each
        episode unless ``cost`` is False (then ``Rollout.cost`` is None). The observations
        returned are what the network sensed, in its dtype."""
        x0, targets, goals = self._check_batch(batch)
        B, T = targets.shape[:2]
        W = self.W if W is None else check_vector(W, "W", self.n_params, self.dtype)
        eps = self._draw_noise(B, T) if noise and self.obs_noise else None
        if self.backend == "numpy":
            traj = self._simulate(W, x0, goals,
                                  np.zeros((B, T, self.observation.size)) if eps is None else eps)
        else:
            traj = self._parallel_rollout(W, x0, goals, eps)
        values = None
        if cost:
            values = (self.cost_fn.evaluate(traj.X, traj.U, targets, derivatives=False).value
                      if traj.finite else np.full(B, np.inf))
        # copies where the trajectory is a view of a compiled loop's reused buffers
        return Rollout(traj.X, traj.U, np.ascontiguousarray(traj.S),
                       np.ascontiguousarray(traj.E[..., self.k:]), values, traj.finite)

    def check_grad(self, batch=None, eps: float = 1e-6) -> float:
        """Max relative error of :meth:`calc_grad` against central differences of
        :meth:`error` (float64 loops only; caches ``batch`` first if given)."""
        self._fd_setup(batch)
        c = self._cache
        fd = fd_checks.central_gradient(self.error, c["W"], eps, self.mask)
        return fd_checks.relative_error(self.calc_grad(), fd)

    def check_G(self, v: np.ndarray | None = None, batch=None, eps: float = 1e-6) -> float:
        """Max relative error of :meth:`calc_G` against ``J^T H J v`` computed with central
        differences of the rollout's states and controls (float64 loops only)."""
        self._fd_setup(batch)
        c = self._gcache
        if v is None:
            v = self.rng.standard_normal(self.n_params)
        v = check_vector(np.asarray(v, self.dtype), "v", self.n_params, self.dtype)
        if self.mask is not None:
            v = v * self.mask
        W0, terms, B = c["W"], c["terms"], c["B"]

        def states_controls(W):
            traj = self._trial(c, W)
            return traj.X, traj.U

        Xp, Up = states_controls(W0 + eps * v)
        Xm, Um = states_controls(W0 - eps * v)
        hx = np.einsum("btnm,btm->btn", terms.hx, (Xp - Xm) / (2 * eps)) / B
        hu = terms.hu * (Up - Um) / (2 * eps) / B

        def contracted(W):
            X, U = states_controls(W)
            return float(np.sum(X * hx) + np.sum(U * hu))

        fd = fd_checks.central_gradient(contracted, W0, eps, self.mask)
        return fd_checks.relative_error(self.calc_G(v), fd)

    # ------------------------------------------------------------------ internals
    def _fd_setup(self, batch) -> None:
        if batch is not None:
            self.cache_minibatch(batch)
        self._require_cache()
        if self.dtype != np.float64:
            raise TypeError("finite-difference checks need a float64 loop (dtype=np.float64)")

    def _require_cache(self) -> dict[str, Any]:
        if self._cache is None:
            raise RuntimeError("no minibatch is cached: call cache_minibatch(batch) with a "
                               "plants.tasks.TaskBatch first")
        return self._cache

    def _check_batch(self, batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x0, targets, task inputs)`` of a checked batch."""
        x0 = getattr(batch, "x0", None)
        targets = getattr(batch, "targets", None)
        if x0 is None or targets is None:
            raise TypeError(f"batch must be a plants.tasks.TaskBatch (x0, targets), got "
                            f"{type(batch).__name__}")
        x0 = np.asarray(x0, dtype=np.float64)
        targets = np.asarray(targets, dtype=np.float64)
        if x0.ndim != 2 or x0.shape[1] != self.n or x0.shape[0] == 0:
            raise ValueError(f"batch.x0 must have shape [batch, {self.n}] (the plant's state), "
                             f"got {x0.shape}")
        if not np.isfinite(x0).all():
            raise ValueError("batch.x0 must be finite (no NaN or inf in the initial states)")
        k = self.n_outputs
        if targets.ndim != 3 or targets.shape[0] != x0.shape[0] or targets.shape[2] != k:
            raise ValueError(f"batch.targets must have shape [{x0.shape[0]}, horizon, {k}] "
                             f"(batch, steps, the task's {k} outputs; NaN: no target), got "
                             f"{targets.shape}")
        if targets.shape[1] < 1:
            raise ValueError("batch.targets must have at least one step")
        if np.isinf(targets).any():
            raise ValueError("batch.targets must not contain inf (NaN marks 'no target')")
        for ch in self.senses.channels:
            if ch.delay >= targets.shape[1]:
                raise ValueError(f"channel {ch.name!r}: delay ({ch.delay} steps) must be "
                                 f"shorter than the horizon ({targets.shape[1]} steps)")
        if self.inputs == "task":
            cues = getattr(batch, "inputs", None)
            B, T = targets.shape[:2]
            need = (B, T, self.k)
            if cues is None:
                raise ValueError(f"inputs='task' needs the batch's task inputs: batch.inputs "
                                 f"of shape {list(need)} ({', '.join(self.task.input_names)}), "
                                 f"as {type(self.task).__name__}.sample gives them")
            cues = np.asarray(cues, dtype=np.float64)
            if cues.shape != need or not np.isfinite(cues).all():
                raise ValueError(f"batch.inputs must be finite, of shape {list(need)} "
                                 f"({', '.join(self.task.input_names)}), got shape "
                                 f"{list(cues.shape)}")
            goals = np.ascontiguousarray(cues)
        else:
            goals = self._task_inputs(targets)
        return np.ascontiguousarray(x0), np.ascontiguousarray(targets), goals

    def _task_inputs(self, targets: np.ndarray) -> np.ndarray:
        """The task inputs ``[B, T, k]`` derived from the targets."""
        B, T, k = targets.shape
        if self.inputs == "none":
            return np.zeros((B, T, 0))
        has = ~np.isnan(targets).any(axis=2)
        if self.inputs == "goal":
            last = T - 1 - np.argmax(has[:, ::-1], axis=1)
            goal = np.where(has.any(axis=1)[:, None], targets[np.arange(B), last], 0.0)
            return np.repeat(goal[:, None, :], T, axis=1)
        # "targets": the current target, carried forward over steps without one
        idx = np.where(has, np.arange(T), -1)
        idx = np.maximum.accumulate(idx, axis=1)
        out = targets[np.arange(B)[:, None], np.maximum(idx, 0)]
        return np.where((idx >= 0)[..., None], out, 0.0)

    def _weights(self, W):
        net = self.net
        w_in, b_in = net.get_weights(W, (0, 1))
        w_out, b_out = net.get_weights(W, (1, 2))
        w_rec, b_rec = net.get_weights(W, (1, 1))
        return w_in, b_in, w_rec, b_rec, w_out, b_out

    def _trial(self, c, W) -> _Trajectory:
        """The cached minibatch rolled out at other weights (the same noise; in ``"data"``
        mode the cached network inputs)."""
        engine = self._engine(c["B"], c["T"])
        data = self.feedback == "data"
        if engine is None:
            return self._simulate(W, c["x0"], c["goals"], c["noise"],
                                  fixed_inputs=c["traj"].E if data else None)
        return self._compiled_simulate(engine, W, c["x0"], c["goals"], c["noise"],
                                       fixed=c["tm"]["E"] if data else None, deriv=False)

    def _compiled_simulate(self, engine, W, x0, goals, noise, fixed=None, deriv=False
                           ) -> _Trajectory:
        """A rollout by the compiled loop, as a (sample-major) trajectory; with ``deriv``
        the engine's buffers then hold what the derivatives need."""
        status = engine.run(W, x0, goals, noise, fixed=fixed, deriv=deriv)
        B, T, H = engine.B, engine.T, self.net.shape[1]
        traj = _Trajectory.__new__(_Trajectory)
        traj.X = np.ascontiguousarray(engine.states().transpose(1, 0, 2))
        traj.U = np.ascontiguousarray(engine.controls().transpose(1, 0, 2))
        traj.E = engine.E.reshape(T, B, self.n_inputs).transpose(1, 0, 2)
        traj.S = engine.S.reshape(T, B, H).transpose(1, 0, 2)
        traj.finite = status == -1
        return traj

    def _parallel_rollout(self, W, x0, goals, noise) -> _Trajectory:
        """A compiled rollout of a large batch split into partitions that run on the
        kernels' threads (:func:`hfcontrol.set_num_threads`) at once."""
        from .kernels.runner import _kernel_blas_threads, _run_all, get_num_threads

        B, T = goals.shape[:2]
        parts = max(1, min(get_num_threads(), B // ROLLOUT_PARTITION))
        if parts == 1:
            return self._compiled_simulate(self._engine(B, T), W, x0, goals, noise)
        bounds = [B * p // parts for p in range(parts + 1)]
        pieces = list(zip(bounds[:-1], bounds[1:], strict=True))
        engines = [self._engine(b - a, T, part=i) for i, (a, b) in enumerate(pieces)]
        status = [-1] * parts
        H = self.net.shape[1]
        traj = _Trajectory.__new__(_Trajectory)
        traj.X = np.empty((B, T + 1, self.n))
        traj.U = np.empty((B, T, self.m))
        traj.E = np.empty((B, T, self.n_inputs), self.dtype)
        traj.S = np.empty((B, T, H), self.dtype)

        def call(i, a, b):
            e = engines[i]
            status[i] = e.run(W, x0[a:b], goals[a:b], None if noise is None else noise[a:b],
                              deriv=False)
            # each thread moves its own partition to the sample-major arrays
            traj.X[a:b] = e.states().transpose(1, 0, 2)
            traj.U[a:b] = e.controls().transpose(1, 0, 2)
            traj.E[a:b] = e.E.reshape(T, e.B, self.n_inputs).transpose(1, 0, 2)
            traj.S[a:b] = e.S.reshape(T, e.B, H).transpose(1, 0, 2)

        # BLAS single-threaded around all partitions (each run's own switch would restore
        # the threads while another partition still runs)
        with _kernel_blas_threads(1):
            _run_all([functools.partial(call, i, a, b) for i, (a, b) in enumerate(pieces)])
        traj.finite = all(s == -1 for s in status)
        return traj

    def _compiled_derivatives(self, engine, W, terms, B: int, T: int) -> dict[str, Any]:
        """What the compiled gradient and ``G v`` need at the engine's last rollout at
        ``W``, in the kernel's layouts (:meth:`CompiledLoop.derivatives`)."""
        n, m = self.n, self.m
        A, Bm = self.plant.jacobians(engine.X[:T * B * n].reshape(T * B, n),
                                     engine.U.reshape(T * B, m))
        return engine.derivatives(W, A, Bm, self.observation.jacobian(engine.states()), terms)

    def _simulate(self, W, x0, goals, noise, fixed_inputs=None) -> _Trajectory:
        """Roll the loop out at ``W`` (the NumPy reference path); with ``fixed_inputs``
        the network reads those instead of fresh observations."""
        B, T = goals.shape[:2]
        H = self.net.shape[1]
        traj = _Trajectory(B, T, self.n, self.m, H, self.n_inputs, self.dtype)
        traj.X[:, 0] = x0
        w_in, b_in, w_rec, b_rec, w_out, b_out = self._weights(W)
        hidden, output = self.net.layers[1], self.net.layers[2]
        k = self.k
        for t in range(T):
            if fixed_inputs is not None:
                traj.E[:, t] = fixed_inputs[:, t]
            else:
                traj.E[:, t, :k] = goals[:, t]
                traj.E[:, t, k:] = self.senses.at(traj.X, t) + noise[:, t]
            z = traj.E[:, t] @ w_in + b_in + (traj.S[:, t - 1] @ w_rec if t else b_rec)
            traj.Z[:, t] = z
            traj.S[:, t] = hidden.activation(z)
            traj.Yo[:, t] = traj.S[:, t] @ w_out + b_out
            traj.Ao[:, t] = output.activation(traj.Yo[:, t])
            u = self.control_scale * traj.Ao[:, t].astype(np.float64)
            traj.U[:, t] = u
            if not np.isfinite(u).all():
                traj.finite = False
                break
            try:
                x_next = np.asarray(self.plant.step(traj.X[:, t], u), dtype=np.float64)
            except (ValueError, FloatingPointError):  # the plants refuse non-finite results
                traj.finite = False
                break
            if not np.isfinite(x_next).all():
                traj.finite = False
                break
            traj.X[:, t + 1] = x_next
        return traj

    def _plant_jacobians(self, X: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``A[B, T, n, n]``, ``B[B, T, n, m]`` at every step, in one call over all steps."""
        B, T = U.shape[:2]
        xs, us = X.reshape(B * T, self.n), U.reshape(B * T, self.m)
        if hasattr(self.plant, "jacobians"):
            A, Bm = self.plant.jacobians(xs, us)
        else:
            A, Bm = _fd_jacobians(self.plant.step, xs, us)
        return (np.asarray(A, np.float64).reshape(B, T, self.n, self.n),
                np.asarray(Bm, np.float64).reshape(B, T, self.n, self.m))

    def _derivs(self, traj):
        hidden, output = self.net.layers[1], self.net.layers[2]
        return (hidden.d_activation(traj.Z, traj.S), output.d_activation(traj.Yo, traj.Ao))

    def _r_forward(self, c, v) -> tuple[np.ndarray, np.ndarray]:
        """Directional derivatives ``R{x_t}``, ``R{u_t}`` of the rollout along ``v``."""
        traj, A, Bm, Jo = c["traj"], c["A"], c["Bm"], c["Jo"]
        B, T, k = c["B"], c["T"], self.k
        W = c["W"]
        w_in, _, w_rec, _, w_out, _ = self._weights(W)
        v_in, vb_in, v_rec, vb_rec, v_out, vb_out = self._weights(v)
        delays, rows = self.senses.row_delays, np.arange(self.observation.size)
        fd, gd = self._derivs(traj)
        RX = np.zeros((B, T + 1, self.n))
        RU = np.zeros((B, T, self.m))
        rs = None
        exact = self.feedback == "exact"
        for t in range(T):
            rz = traj.E[:, t] @ v_in + vb_in
            j = t - delays  # each row senses x at its channel's step
            ok = j >= 0
            if exact and ok.any():
                # R{o_i} = Jo(x_{j_i})_i R{x}_{j_i}; rows before their first step read x_0
                ro = np.zeros((B, rows.size))
                ro[:, ok] = np.einsum("bpn,bpn->bp", Jo[:, j[ok], rows[ok]], RX[:, j[ok]])
                rz = rz + ro @ w_in[k:]
            rz = rz + (traj.S[:, t - 1] @ v_rec + rs @ w_rec if t else vb_rec)
            rs = fd[:, t] * rz
            ry = traj.S[:, t] @ v_out + vb_out + rs @ w_out
            RU[:, t] = self.control_scale * (gd[:, t] * ry)
            RX[:, t + 1] = (np.einsum("bij,bj->bi", A[:, t], RX[:, t])
                            + np.einsum("bij,bj->bi", Bm[:, t], RU[:, t]))
        return RX, RU

    def _backward(self, c, ex: np.ndarray, eu: np.ndarray) -> np.ndarray:
        """``J^T e`` for an error ``ex`` on every state and ``eu`` on every control."""
        traj, A, Bm, Jo = c["traj"], c["A"], c["Bm"], c["Jo"]
        B, T, k = c["B"], c["T"], self.k
        W = c["W"]
        w_in, _, w_rec, _, w_out, _ = self._weights(W)
        delays, rows = self.senses.row_delays, np.arange(self.observation.size)
        grad = np.zeros(self.n_params, np.float64)
        g_in, gb_in, g_rec, gb_rec, g_out, gb_out = self._weights(grad)
        fd, gd = self._derivs(traj)
        lam = ex[:, T].copy()
        obs_adj = np.zeros((B, T + 1, self.n))
        dz_next = None
        exact = self.feedback == "exact"
        for t in range(T - 1, -1, -1):
            du = eu[:, t] + np.einsum("bij,bi->bj", Bm[:, t], lam)
            dy = gd[:, t] * (self.control_scale * du)
            ds = dy @ w_out.T
            if dz_next is not None:
                ds = ds + dz_next @ w_rec.T
            dz = fd[:, t] * ds
            j = t - delays
            ok = j >= 0
            if exact and ok.any():
                # row i sensed x_{j_i}: its error goes back to that state
                do = dz @ w_in[k:].T
                np.add.at(obs_adj, (slice(None), j[ok]),
                          Jo[:, j[ok], rows[ok]] * do[:, ok, None])
            g_in += traj.E[:, t].T @ dz
            gb_in += dz.sum(axis=0)
            if t:
                g_rec += traj.S[:, t - 1].T @ dz
            else:
                gb_rec += dz.sum(axis=0)
            g_out += traj.S[:, t].T @ dy
            gb_out += dy.sum(axis=0)
            lam = ex[:, t] + obs_adj[:, t] + np.einsum("bij,bi->bj", A[:, t], lam)
            dz_next = dz
        return grad.astype(self.dtype)

    # ------------------------------------------------------------------ misc
    def undamped_curvature(self):
        """No structural damping in a closed loop (see :class:`hfcontrol.model.Model`)."""
        return self.net.undamped_curvature()

    def __repr__(self) -> str:
        return (f"ClosedLoop({type(self.plant).__name__}, {type(self.task).__name__}, "
                f"net={self.net.shape}, feedback={self.feedback!r}, {self.senses!r})")


def _fd_jacobians(step, x: np.ndarray, u: np.ndarray, eps: float = 1e-6
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference Jacobians of ``step(x, u)`` for a plant without ``jacobians``."""
    N, n = x.shape
    m = u.shape[1]
    A = np.empty((N, n, n))
    Bm = np.empty((N, n, m))
    for j in range(n):
        dx = np.zeros(n)
        dx[j] = eps
        A[:, :, j] = (np.asarray(step(x + dx, u)) - np.asarray(step(x - dx, u))) / (2 * eps)
    for j in range(m):
        du = np.zeros(m)
        du[j] = eps
        Bm[:, :, j] = (np.asarray(step(x, u + du)) - np.asarray(step(x, u - du))) / (2 * eps)
    return A, Bm

