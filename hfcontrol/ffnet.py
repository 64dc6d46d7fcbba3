"""Feedforward networks: forward pass, gradient, Gauss-Newton product and training loop."""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import fd_checks, kernels, parameters, persistence
from . import loss_funcs as lf
from . import nonlinearities as nl
from ._validation import BACKENDS, as_dtype, as_rng, check_array, check_choice, check_vector
from .persistence import atomic_write_text

Conn = parameters.Conn

RUNNERS_KEPT = 3  # compiled-kernel runners kept per network, one per recent batch shape


@persistence.register
class FFNet:
    """Feedforward network trained by Hessian-free optimisation or SGD.

    Parameters
    ----------
    shape : sequence of int
        Number of units in each layer, input layer first.
    layers : Nonlinearity, str, or sequence of them
        The nonlinearity of every layer (one per layer, input layer included), or
        a single one used for every layer but the input layer, which is then
        :class:`~hfcontrol.nonlinearities.Linear`. Names such as ``"Tanh"`` are accepted.
    conns : dict of int to list of int, optional
        Connections ``{pre: [post, ...]}``, each from a lower layer to a higher
        one (skip connections allowed). Default: each layer to the next.
    loss_type : LossFunction or list of LossFunction
        The loss; a list becomes a :class:`~hfcontrol.loss_funcs.LossSet`.
        Default :class:`~hfcontrol.loss_funcs.SquaredError`.
    W_init_params : dict, optional
        Weight initialisation: ``init_type`` (``"sparse"``, Martens' sparse init:
        each unit gets 15 non-zero N(0, coeff^2) incoming weights, chosen among all its
        incoming connections together, or all of its inputs if it has fewer than 15;
        ``"uniform"``, U(-coeff, coeff) / sqrt(fan-in); ``"gaussian"``, N(0, coeff^2) /
        sqrt(fan-in), with the fan-in of each connection), ``coeff`` (scale, default 1)
        and ``biases`` (initial bias, default 0).
    load_weights : ndarray or path, optional
        Initial parameters: a vector of the right length and dtype, or a file
        written by :meth:`save`.
    debug : bool
        If True, check the gradient and ``G v`` against finite differences at
        every training update and warn when they disagree.
    rng : numpy.random.Generator, numpy.random.RandomState or int, optional
        Random generator or seed for initialisation and minibatches. A RandomState
        (as in ``hessianfree``) is used through a Generator sharing its stream.
    dtype : float32 or float64
        Dtype of parameters and activations (float32 by default).
    use_GPU : bool
        Accepted for ``hessianfree`` compatibility: only False (the default) is
        supported, as there is no GPU path; True raises a ValueError.

    Attributes
    ----------
    W : ndarray
        All parameters in one flat vector; :meth:`get_weights` gives per-connection views.
    loss : LossFunction
        The training loss.
    mask : ndarray of bool or None
        Parameters where the mask is False are frozen (zero gradient and update).
    """

    def __init__(self, shape: Sequence[int], layers: Any = None,
                 conns: Mapping[int, Sequence[int]] | None = None,
                 loss_type: Any = None, W_init_params: Mapping[str, Any] | None = None,
                 load_weights: Any = None, debug: bool = False, rng: Any = None,
                 dtype: Any = np.float32, use_GPU: bool = False):
        if use_GPU:
            raise ValueError(f"use_GPU={use_GPU!r}: hfcontrol has no GPU path; use "
                             f"use_GPU=False (the CPU path is compiled with numba)")
        self.dtype = as_dtype(dtype)
        self.rng = as_rng(rng)
        self.debug = bool(debug)
        if self.debug and self.dtype != np.float64:
            warnings.warn("debug=True checks the gradient and G v by finite differences, which "
                          "needs dtype=np.float64; on this float32 network they are skipped",
                          stacklevel=2)
        self.shape = parameters.check_shape(shape)
        self.n_layers = len(self.shape)
        self.layers = self._check_layers(layers)
        self.conns = parameters.check_conns(conns, self.n_layers)
        self.back_conns: dict[int, list[int]] = {post: [] for post in range(self.n_layers)}
        for pre, posts in self.conns.items():
            for post in posts:
                self.back_conns[post].append(pre)
        self.loss = lf.from_spec(lf.SquaredError() if loss_type is None else loss_type)
        self._layout_params()
        self.W = self._init_weights(W_init_params)
        if load_weights is not None:
            self.W = self._load_weight_vector(load_weights)
        self.mask: np.ndarray | None = None
        self._optimizer = None
        self.inputs: np.ndarray | None = None
        self.targets: np.ndarray | None = None
        self.activations: list[np.ndarray] | None = None
        self.d_activations: list[np.ndarray] | None = None
        self._cc: kernels.CompiledBatch | None = None
        self.best_W: np.ndarray | None = None
        self.best_error = np.inf

    # ------------------------------------------------------------------ construction
    def _check_layers(self, layers) -> list[nl.Nonlinearity]:
        if layers is None:
            layers = nl.Logistic()
        if isinstance(layers, nl.Nonlinearity | str):
            # one independent copy per layer: a stateful nonlinearity must not share its state
            single = nl.from_spec(layers)
            out = [nl.Linear()] + [copy.deepcopy(single) for _ in range(self.n_layers - 1)]
        else:
            layers = list(layers)
            if len(layers) != self.n_layers:
                raise ValueError(f"layers must give one nonlinearity per layer ({self.n_layers} "
                                 f"for shape {self.shape}), got {len(layers)}")
            out = [nl.from_spec(layer) for layer in layers]
        for i, layer in enumerate(out):
            self._check_layer(i, layer)
            if layer.stateful and any(other is layer for other in out[:i]):
                raise ValueError(f"layers[{i}] is the same stateful {type(layer).__name__} object "
                                 f"as an earlier layer; give each layer its own instance")
        return out

    @staticmethod
    def _check_layer(i: int, layer: nl.Nonlinearity) -> None:
        """Refuse a nonlinearity this kind of network cannot run (here: a stateful one)."""
        if layer.stateful:
            raise ValueError(f"layers[{i}] is stateful ({layer!r}); stateful nonlinearities "
                             f"need a recurrent network (RNNet)")

    def _all_conns(self) -> list[Conn]:
        """Every parameterised connection, in parameter-vector order."""
        return [(pre, post) for pre, posts in self.conns.items() for post in posts]

    def _layout_params(self) -> None:
        self.offsets, self.n_params = parameters.layout(self.shape, self._all_conns())

    def get_weights(self, params: np.ndarray, conn: Conn) -> tuple[np.ndarray, np.ndarray]:
        """Views ``(w [pre_units, post_units], b [post_units])`` of one connection in ``params``."""
        start, mid, end = self.offsets[conn]
        pre, post = conn
        return params[start:mid].reshape(self.shape[pre], self.shape[post]), params[mid:end]

    def _init_weights(self, W_init_params) -> np.ndarray:
        W = np.zeros(self.n_params, self.dtype)
        parameters.init_weights(W, self._all_conns(), self.get_weights, W_init_params, self.rng,
                                "W_init_params")
        return W

    def _load_weight_vector(self, source) -> np.ndarray:
        if isinstance(source, str | os.PathLike):
            with np.load(source, allow_pickle=False) as data:
                source = data["W"]
        weights = check_vector(source, "load_weights", self.n_params, self.dtype)
        if not np.all(np.isfinite(weights)):
            raise ValueError("load_weights contains NaN or infinite values")
        return weights.copy()

    # ------------------------------------------------------------------ optimiser link
    @property
    def optimizer(self):
        """The attached optimiser; setting it also sets ``optimizer.net``."""
        return self._optimizer

    @optimizer.setter
    def optimizer(self, opt) -> None:
        from .optimizers import Optimizer

        if not isinstance(opt, Optimizer):
            raise TypeError(f"optimizer must be an hfcontrol.optimizers.Optimizer, got {opt!r}")
        opt.net = self
        self._optimizer = opt
        for sd in lf._structural_dampings(self.loss):
            if sd.follow_optimizer:
                sd.optimizer = opt

    def undamped_curvature(self):
        """Context manager: inside it :meth:`calc_G` leaves out structural damping (the
        optimiser's undamped quadratic model; see :class:`hfcontrol.model.Model`)."""
        return lf.without_structural_damping(self.loss)

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Freeze the parameters where ``mask`` is False (``None`` unfreezes all)."""
        if mask is None:
            self.mask = None
            return
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (self.n_params,):
            raise ValueError(f"mask must be a boolean vector of length {self.n_params}, got "
                             f"dtype {mask.dtype} and shape {mask.shape}")
        self.mask = mask.copy()

    # ------------------------------------------------------------------ data checks
    def _check_params(self, params) -> np.ndarray:
        if params is None:
            return check_vector(self.W, "W", self.n_params, self.dtype)
        return check_vector(params, "params", self.n_params, self.dtype)

    def _check_inputs(self, inputs, name: str = "inputs") -> np.ndarray:
        return check_array(inputs, name, 2, self.shape[0], self.dtype)

    def _check_targets(self, targets, inputs, name: str = "targets") -> np.ndarray:
        return check_array(targets, name, 2, self.shape[-1], self.dtype, allow_nan=True,
                           batch=inputs.shape[0])

    def _check_test(self, test) -> tuple:
        """The held-out ``(inputs, targets)`` given as ``run_epochs(test=...)``, checked."""
        if not isinstance(test, tuple | list):
            raise TypeError(f"test must be a pair (inputs, targets), got {type(test).__name__}")
        if len(test) != 2:
            raise ValueError(f"test must be a pair (inputs, targets), got {len(test)} items")
        inputs = self._check_inputs(test[0], "test[0] (the test inputs)")
        return inputs, self._check_targets(test[1], inputs, "test[1] (the test targets)")

    # ------------------------------------------------------------------ backend selection
    _backend_choice = "auto"
    #: the data layout: ``[batch, units]`` here; a subclass with a time axis sets True
    _recurrent = False

    def _windows(self, n_steps: int) -> list[tuple[int, int, int]]:
        """Back-propagation windows ``(lowest step, first injected step, end step)``: one
        window over the whole batch (a feedforward net has one step)."""
        return [(0, 0, n_steps)]

    def _truncation_setting(self):
        """What the back-propagation windows depend on besides the number of steps
        (nothing here); the compiled cache rebuilds its windows when it changes."""
        return None

    @property
    def backend(self) -> str:
        """The implementation in use: ``"numba"`` (compiled) or ``"numpy"`` (reference).

        Chosen automatically: ``"numba"`` when every layer is a built-in nonlinearity
        (``Continuous`` of a built-in included), otherwise ``"numpy"``. Set it to
        ``"numpy"`` to force the reference path, ``"numba"`` to insist on the compiled
        one (an error if a layer has no kernel), or ``"auto"``. Losses are always
        evaluated by vectorised NumPy (they have no time loop).
        """
        if self._backend_choice == "numpy":
            return "numpy"
        if kernels.plan_for(self) is None:
            if self._backend_choice == "numba":
                raise ValueError("backend='numba' was requested, but a layer of this network has "
                                 f"no compiled kernel now (layers: {self.layers})")
            return "numpy"
        return "numba"

    @backend.setter
    def backend(self, value: str) -> None:
        check_choice(value, "backend", BACKENDS)
        if value == "numba" and not kernels.compilable(self):
            raise ValueError("backend='numba': a layer of this network has no compiled kernel "
                             f"(layers: {self.layers}); only built-in nonlinearities do")
        self._backend_choice = value
        if self.activations is not None:
            self._fill_cache()

    @property
    def d_activations(self) -> list[np.ndarray] | None:
        """``d_activation`` of every layer on the cached minibatch (NumPy layout).

        On the compiled path they are computed by the reference forward pass on first use.
        """
        if self._d_acts is None and self._cc is not None:
            _, self._d_acts = self._reference_forward(self.inputs, self._cached_W)
        return self._d_acts

    @d_activations.setter
    def d_activations(self, value) -> None:
        self._d_acts = value

    def _reference_forward(self, inputs, W):
        return self.forward(inputs, params=W, deriv=True)

    def _batch_shape(self, inputs: np.ndarray) -> tuple[int, int]:
        """``(T, B)`` of a batch of inputs (``T = 1`` for a feedforward net)."""
        return 1, inputs.shape[0]

    def _fill_cache(self, init_activations=None, init_state=None) -> None:
        """Activations (and the compiled path's buffers) of the cached inputs under ``_cached_W``."""
        if self.backend == "numpy":
            self._cc = None
            self.activations, self.d_activations = self._reference_forward(self.inputs,
                                                                            self._cached_W)
            return
        plan = kernels.plan_for(self)
        T, B = self._batch_shape(self.inputs)
        runner = self._runner(plan, T, B)
        # the previous minibatch's buffers can be reused unless the caller still holds them
        self._cc = self.activations = self.d_activations = None
        windows = self._windows(T)
        self._cc = kernels.CompiledBatch(
            runner, self._cached_W, self.inputs,
            kernels.init_block(plan, init_activations, B, self.dtype),
            kernels.init_block(plan, init_state, B, self.dtype), windows, self._recurrent)
        self._cc.truncation = self._truncation_setting()
        self.activations = self._cc.activations
        self.d_activations = None

    def _runner(self, plan, T: int, B: int):
        """The compiled kernels' :class:`~hfcontrol.kernels.Runner` for this batch shape.

        Runners, with their work buffers, are kept for the few most recent shapes (a
        training minibatch and a test set alternate), so that every call on a shape seen
        before reuses them.
        """
        key = (plan, T, B, self.dtype, kernels.get_num_threads())
        runners = self.__dict__.setdefault("_runners", {})
        runner = runners.pop(key, None)
        if runner is None:
            runner = kernels.Runner(plan, T, B, self.dtype)
        runners[key] = runner  # most recent last
        while len(runners) > RUNNERS_KEPT:
            del runners[next(iter(runners))]
        return runner

    def _compiled_forward(self, inputs, params, init_activations=None, init_state=None):
        """Activations only (no derivatives), e.g. for :meth:`error` in a line search."""
        plan = kernels.plan_for(self)
        T, B = self._batch_shape(inputs)
        init_act = kernels.init_block(plan, init_activations, B, self.dtype)
        init_st = kernels.init_block(plan, init_state, B, self.dtype)
        runner = self._runner(plan, T, B)
        acts, _ = runner.forward(params, inputs, init_act, init_st, deriv=False)
        return runner.unpack(acts, self._recurrent)

    def _compiled_cache(self) -> kernels.CompiledBatch:
        """The compiled path's minibatch, its truncation windows brought up to date
        (``truncation`` may be changed after :meth:`cache_minibatch`)."""
        cc = self._cc
        trunc = self._truncation_setting()
        if cc.truncation != trunc:
            cc.set_windows(self._windows(cc.runner.T))
            cc.truncation = trunc
        return cc

    def _compiled_backward(self, d_act, scale) -> np.ndarray:
        return self._compiled_cache().grad(d_act, scale)

    def _compiled_G(self, v) -> np.ndarray:
        return self._compiled_cache().gv(v, self.loss, self.targets)

    # ------------------------------------------------------------------ reference kernels
    @staticmethod
    def _apply_jacobian_T(layer: nl.Nonlinearity, delta: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Back-propagate ``dE/da`` through a stateless nonlinearity to ``dE/dx``.

        ``d`` is the diagonal (element-wise) or the full Jacobian ``d[..., i, j] = da_i/dx_j``
        (see :func:`_full_jacobian`); this is ``dE/dx_j = sum_i dE/da_i d[..., i, j]``.
        """
        if _full_jacobian(layer, delta, d):
            return np.einsum("...i,...ij->...j", delta, d)
        return delta * d

    @staticmethod
    def _apply_jacobian(layer: nl.Nonlinearity, rx: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Push a directional derivative ``R{x}`` through a stateless nonlinearity to ``R{a}``:
        ``R{a}_i = sum_j d[..., i, j] R{x}_j`` for a full Jacobian."""
        if _full_jacobian(layer, rx, d):
            return np.einsum("...ij,...j->...i", d, rx)
        return d * rx

    def forward(self, inputs, params: np.ndarray | None = None, deriv: bool = False):
        """Run the network.

        Parameters
        ----------
        inputs : ndarray ``[batch, units]``
            Input to the first layer.
        params : ndarray, optional
            Parameter vector to use instead of ``self.W``.
        deriv : bool
            If True, also return the nonlinearity derivatives of every layer.

        Returns
        -------
        activations : list of ndarray
            Output of every layer, input layer first.
        d_activations : list of ndarray
            Only if ``deriv``: ``d_activation`` of every layer.
        """
        params = self._check_params(params)
        inputs = self._check_inputs(inputs)
        if not deriv and self.backend == "numba":
            return self._compiled_forward(inputs, params)
        acts: list[np.ndarray] = []
        derivs: list[np.ndarray] = []
        for layer in range(self.n_layers):
            x = inputs if layer == 0 else self._net_input(params, layer, acts)
            a = self.layers[layer].activation(x)
            acts.append(a)
            if deriv:
                derivs.append(self.layers[layer].d_activation(x, a))
        return (acts, derivs) if deriv else acts

    def _backward(self, d_act: list[np.ndarray | None], params: np.ndarray) -> np.ndarray:
        """Back-propagate per-layer ``dE/da`` into a gradient vector (cached activations)."""
        acts, derivs = self.activations, self.d_activations
        delta_x: list[np.ndarray | None] = [None] * self.n_layers
        for layer in range(self.n_layers - 1, 0, -1):
            delta = self._back_from_posts(params, layer, delta_x, d_act[layer])
            if delta is None:
                delta = np.zeros_like(acts[layer])
            delta_x[layer] = self._apply_jacobian_T(self.layers[layer], delta, derivs[layer])
        grad = np.zeros(self.n_params, self.dtype)
        self._feedforward_gradient(grad, acts, delta_x)
        return grad

    def _r_forward(self, v: np.ndarray, params: np.ndarray) -> list[np.ndarray]:
        """Directional derivative ``R{a}`` of every layer's activation along ``v``."""
        acts, derivs = self.activations, self.d_activations
        r_acts: list[np.ndarray] = [np.zeros_like(acts[0])]
        for layer in range(1, self.n_layers):
            rx = self._r_net_input(v, params, layer, acts, r_acts)
            r_acts.append(self._apply_jacobian(self.layers[layer], rx, derivs[layer]))
        return r_acts

    # The per-layer sums over connections, shared with RNNet's reference path (which calls
    # them at each step with that step's [batch, units] slices). ``start`` is added first,
    # so that the order of the additions, and with it the rounding, is that of a loop.
    def _net_input(self, params, layer: int, acts, start=None):
        """``start + sum_pre acts[pre] @ w + b`` over ``layer``'s incoming connections."""
        x = start
        for pre in self.back_conns[layer]:
            w, b = self.get_weights(params, (pre, layer))
            term = acts[pre] @ w + b
            x = term if x is None else x + term
        return x

    def _r_net_input(self, v, params, layer: int, acts, r_acts, start=None):
        """``R{x}`` of ``layer`` along ``v`` from its incoming connections: the weights'
        direction applied to the activations, plus the weights applied to ``R{a}`` of the
        layers before (the input layer's is zero)."""
        rx = start
        for pre in self.back_conns[layer]:
            vw, vb = self.get_weights(v, (pre, layer))
            term = acts[pre] @ vw + vb
            if pre > 0:
                w, _ = self.get_weights(params, (pre, layer))
                term = term + r_acts[pre] @ w
            rx = term if rx is None else rx + term
        return rx

    def _back_from_posts(self, params, layer: int, delta_x, start=None):
        """``start + sum_post delta_x[post] @ w.T`` over ``layer``'s outgoing connections
        (None if neither exists)."""
        delta = start
        for post in self.conns.get(layer, []):
            w, _ = self.get_weights(params, (layer, post))
            term = delta_x[post] @ w.T
            delta = term if delta is None else delta + term
        return delta

    def _feedforward_gradient(self, grad: np.ndarray, acts, delta_x) -> None:
        """Write the gradient of every feedforward connection into ``grad``, from the
        activations and ``dE/dx`` given as ``[rows, units]`` per layer."""
        for pre, post in FFNet._all_conns(self):
            gw, gb = self.get_weights(grad, (pre, post))
            gw[:] = acts[pre].T @ delta_x[post]
            gb[:] = delta_x[post].sum(axis=0)

    # ------------------------------------------------------------------ public numerics
    def cache_minibatch(self, inputs, targets) -> None:
        """Store a batch and its activations; :meth:`calc_grad` and :meth:`calc_G` then use it."""
        inputs = self._check_inputs(inputs)
        # copies: the cache must not change when the caller later edits their arrays
        self.targets = self._check_targets(targets, inputs).copy()
        self.inputs = inputs.copy()
        self._cached_W = self.W.copy()
        self._fill_cache()

    def _require_cache(self) -> None:
        if self.activations is None:
            raise RuntimeError("no minibatch is cached: call cache_minibatch(inputs, targets) "
                               "first")

    def _batch_size(self) -> int:
        return self.activations[-1].shape[0]

    def calc_grad(self) -> np.ndarray:
        """Gradient of the error on the cached minibatch with respect to ``W``."""
        self._require_cache()
        scale = self.dtype.type(1.0 / self._batch_size())
        d_loss = self.loss.d_loss(self.activations, self.targets)
        if self._cc is not None:
            grad = self._compiled_backward(d_loss, scale)
        else:
            d_act = [None if d is None else d * scale for d in d_loss]
            grad = self._backward(d_act, self._cached_W)
        return grad if self.mask is None else grad * self.mask

    def calc_G(self, v: np.ndarray, damping: float = 0, out: np.ndarray | None = None) -> np.ndarray:
        """Gauss-Newton product ``(G + damping I) v`` on the cached minibatch.

        ``G = J^T H J`` where ``J`` is the Jacobian of every layer's activations
        with respect to ``W`` and ``H`` the loss curvature (``d2_loss``), divided
        by the batch size. Computed by the R-operator (Pearlmutter 1994; Schraudolph 2002).
        """
        self._require_cache()
        v = check_vector(v, "v", self.n_params, self.dtype)
        if self.mask is not None:
            v = v * self.mask
        if self._cc is not None:
            gv = self._compiled_G(v)
        else:
            gv = self._reference_G(v, self.dtype.type(1.0 / self._batch_size()))
        if damping:
            gv += self.dtype.type(damping) * v
        if self.mask is not None:
            gv *= self.mask
        if out is not None:
            out[:] = gv
            return out
        return gv

    def _reference_G(self, v: np.ndarray, scale) -> np.ndarray:
        """``G v`` (without damping) on the NumPy reference path."""
        r_acts = self._r_forward(v, self._cached_W)
        d2 = self.loss.d2_loss(self.activations, self.targets)
        d_act = [None if c is None else c * r * scale for c, r in zip(d2, r_acts, strict=True)]
        return self._backward(d_act, self._cached_W)

    def error(self, W: np.ndarray | None = None, inputs=None, targets=None) -> float:
        """Loss on the given data (default: the cached minibatch) with weights ``W`` (default ``self.W``)."""
        if inputs is None:
            self._require_cache()
            if W is None and np.array_equal(self.W, self._cached_W):
                return self.loss.batch_loss(self.activations, self.targets)
            acts, targets = self._evaluate_cached(self._check_params(W))
        else:
            acts, targets = self._evaluate(inputs, targets, W)
        return self.loss.batch_loss(acts, targets)

    def _evaluate(self, inputs, targets, W):
        """Activations and validated targets for ``inputs`` under weights ``W``."""
        inputs = self._check_inputs(inputs)
        targets = self._check_targets(targets, inputs)
        return self.forward(inputs, params=W), targets

    def _evaluate_cached(self, W):
        """Activations and targets of the cached minibatch under weights ``W``."""
        return self.forward(self.inputs, params=W), self.targets

    # ------------------------------------------------------------------ checks
    def _fd_setup(self, inputs, targets):
        if inputs is not None:
            self.cache_minibatch(inputs, targets)
        self._require_cache()
        if self.dtype != np.float64:
            raise TypeError("finite-difference checks need a float64 network (dtype=np.float64); "
                            "float32 rounding swamps the differences")

    def check_grad(self, inputs=None, targets=None, eps: float = 1e-6) -> float:
        """Max relative error between :meth:`calc_grad` and central finite differences.

        The error is ``max|g - g_fd| / max|g_fd|``. Uses the cached minibatch
        unless ``inputs``/``targets`` are given (then they are cached first). With
        truncated backprop through time the reference is the truncated gradient: each
        window's error differenced with the state entering the window held fixed.
        """
        self._fd_setup(inputs, targets)
        grad = self.calc_grad()
        batch = self._batch_size()
        fd = np.zeros(self.n_params)
        for activations_at, restrict in self._fd_pieces():
            def piece_error(w, activations_at=activations_at, restrict=restrict):
                losses = self.loss.loss(activations_at(w), self.targets)
                return sum(float(np.sum(restrict(x))) for x in losses if x is not None) / batch

            fd += fd_checks.central_gradient(piece_error, self._cached_W, eps, self.mask)
        return fd_checks.relative_error(grad, fd)

    def check_G(self, v: np.ndarray | None = None, inputs=None, targets=None,
                eps: float = 1e-6) -> float:
        """Max relative error between :meth:`calc_G` and a finite-difference ``J^T H J v``.

        ``J v`` is a central difference of every layer's activations along ``v``;
        ``J^T c`` is the central-difference gradient of ``sum(a(W) * c)`` with
        ``c = H J v / batch`` held fixed. Neither step uses the R-operator. With
        truncation, the terms of the windows are differenced separately and summed.
        """
        self._fd_setup(inputs, targets)
        if v is None:
            v = self.rng.standard_normal(self.n_params)
        v = check_vector(v, "v", self.n_params, self.dtype)
        if self.mask is not None:
            v = v * self.mask
        w0 = self._cached_W
        d2 = self.loss.d2_loss(self.activations, self.targets)
        batch = self._batch_size()
        fd = np.zeros(self.n_params)
        for activations_at, restrict in self._fd_pieces():
            plus = activations_at(w0 + eps * v)
            minus = activations_at(w0 - eps * v)
            c = [None if h is None else restrict(h * (p - m) / (2 * eps) / batch)
                 for h, p, m in zip(d2, plus, minus, strict=True)]

            def contracted(w, activations_at=activations_at, c=c):
                return sum(float(np.sum(a * ci)) for a, ci in zip(activations_at(w), c,
                                                                 strict=True) if ci is not None)

            fd += fd_checks.central_gradient(contracted, w0, eps, self.mask)
        return fd_checks.relative_error(self.calc_G(v), fd)

    def _fd_pieces(self):
        """``(activations as a function of W, restriction of the curvature)`` pairs whose
        ``J^T H J`` terms add up to ``G``; a feedforward net has one."""
        return [(self._activations_at, lambda c: c)]

    def _activations_at(self, W: np.ndarray) -> list[np.ndarray]:
        """Activations of the cached inputs under weights ``W`` (for finite differences)."""
        return self.forward(self.inputs, params=W)

    # ------------------------------------------------------------------ training
    def run_epochs(self, inputs, targets, optimizer, max_epochs: int = 100,
                   minibatch_size: int | None = None, test=None, test_err=None,
                   target_err: float = 1e-6, plotting: bool = False,
                   file_output: str | os.PathLike | None = None, print_period: int | None = 10,
                   restore_best: bool = False, *, progress: bool = False,
                   checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 10,
                   resume: bool = False, callbacks=()) -> dict[str, list]:
        """Train the network (the reference API; the loop is :func:`hfcontrol.training.train`).

        Parameters
        ----------
        inputs, targets : ndarray or Plant
            Training data (``targets`` is None when ``inputs`` is a Plant, which supplies both).
        optimizer : Optimizer
            :class:`~hfcontrol.optimizers.HessianFree` or :class:`~hfcontrol.optimizers.SGD`;
            it is attached to the network.
        max_epochs : int
            Number of updates.
        minibatch_size : int, optional
            Train on a random subset of this size each update (default: all data).
        test : tuple (inputs, targets), optional
            Held-out data for the test error; the weights with the lowest test error
            (training error when no test set is given) are kept in ``best_W`` and their
            error in ``best_error``. The starting weights are candidates too.
        test_err : LossFunction, optional
            Loss used for the test error (default the training loss), e.g.
            :class:`~hfcontrol.loss_funcs.ClassificationError`.
        target_err : float
            Stop when the test error falls below this.
        plotting : bool
            Save a figure of the training history (to ``<file_output>_history.png``,
            or ``hfcontrol_history.png`` without ``file_output``).
        file_output : path, optional
            Prefix for outputs written atomically at the end: ``<prefix>.npz`` (network)
            and ``<prefix>_history.json``.
        print_period : int or None
            Print progress every this many updates (None: silent).
        restore_best : bool
            Put the best weights back into ``W`` at the end. By default, as in the
            reference package, ``W`` keeps the final weights and the best are in
            ``best_W``.
        progress : bool
            Show a progress bar.
        checkpoint, checkpoint_every, resume, callbacks
            See :func:`hfcontrol.training.train`: a checkpoint file written every
            ``checkpoint_every`` updates, resuming from it, and per-update callbacks.

        Returns
        -------
        dict of lists
            Per update: ``epoch``; ``train_err``, the error on that update's minibatch
            before the update; ``test_err``, the test error (the error on all training
            data, or the plant's closed-loop error, when no test set is given) after it;
            ``damping``, ``cg_iters`` (CG iterations run) and ``l_rate`` from the optimiser;
            and ``time`` (wall seconds since the start).
        """
        from .training import stop_below, train

        self.optimizer = optimizer
        if int(max_epochs) < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        test_loss = self.loss if test_err is None else lf.from_spec(test_err)
        held_out = (inputs, targets) if test is None else self._check_test(test)
        data = self._training_data(inputs, targets, minibatch_size)
        if self.debug:
            # derivatives checked on each update's minibatch, at the weights it was cached with
            callbacks = [lambda state: self._debug_checks(), *callbacks]
        result = train(self, optimizer, lambda k: next(data), updates=int(max_epochs),
                       evaluate=lambda: self._plain_error(*held_out, test_loss),
                       stop=[stop_below(target_err)], callbacks=callbacks,
                       checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                       resume=resume, progress=progress, print_period=print_period,
                       restore_best=restore_best)
        self.best_W, self.best_error = result.best_W, result.best_error
        history = result.history
        if file_output is not None:
            self.save(f"{file_output}.npz")
            atomic_write_text(f"{file_output}_history.json", json.dumps(history, default=float))
        if plotting:
            from .plotting import plot_history

            prefix = "hfcontrol" if file_output is None else str(file_output)
            plot_history(history, f"{prefix}_history.png")
        return history

    def _plain_error(self, inputs, targets, loss) -> float:
        acts, targets = self._evaluate(inputs, targets, None)
        return loss.batch_loss(acts, targets)

    def _training_data(self, inputs, targets, minibatch_size):
        """Infinite iterator of ``(inputs, targets)`` minibatches."""
        inputs = self._check_inputs(inputs)
        targets = self._check_targets(targets, inputs)
        n = inputs.shape[0]
        if minibatch_size is None:
            while True:
                yield inputs, targets
        size = int(minibatch_size)
        if not 1 <= size <= n:
            raise ValueError(f"minibatch_size must be between 1 and the batch size {n}, "
                             f"got {minibatch_size}")
        while True:
            idx = self.rng.choice(n, size=size, replace=False)
            yield inputs[idx], targets[idx]

    def _debug_checks(self) -> None:
        if self.dtype != np.float64:
            return
        g_err, gv_err = self.check_grad(), self.check_G()
        if max(g_err, gv_err) > 1e-4:
            warnings.warn(f"debug: gradient error {g_err:.2e}, G v error {gv_err:.2e} against "
                          f"finite differences", stacklevel=3)

    # ------------------------------------------------------------------ persistence
    def _config(self) -> dict[str, Any]:
        """Constructor arguments (JSON), for :mod:`hfcontrol.persistence`."""
        return {
            "shape": self.shape,
            "layers": [nl.spec_of(layer) for layer in self.layers],
            "conns": {str(k): v for k, v in self.conns.items()},
            "loss_type": lf.spec_of(self.loss),
            "dtype": self.dtype.name,
        }

    def _arrays(self) -> dict[str, np.ndarray | None]:
        return {"W": self.W, "mask": self.mask}

    @classmethod
    def _from_saved(cls, config: dict[str, Any], arrays: dict[str, np.ndarray], **overrides):
        config = dict(config)
        config["conns"] = {int(k): v for k, v in config["conns"].items()}
        config["layers"] = [nl.from_spec(spec) for spec in config["layers"]]
        config["loss_type"] = lf.from_spec(config["loss_type"])
        config.update(overrides)
        net = cls(load_weights=arrays["W"], **config)
        net.set_mask(arrays.get("mask"))
        return net

    def save(self, path: str | os.PathLike) -> None:
        """Write architecture (JSON) and weights to an ``.npz`` file, atomically, without pickle."""
        persistence.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> FFNet:
        """Rebuild a network written by :meth:`save` (extra keyword arguments override).

        The file says which class it holds: ``FFNet.load`` of a saved ``RNNet`` gives an
        ``RNNet``.
        """
        return persistence.load(path, **kwargs)


def _full_jacobian(layer: nl.Nonlinearity, vec: np.ndarray, d) -> bool:
    """True if ``d`` is a full Jacobian ``[..., units, units]`` for the vector ``vec``
    ``[..., units]``, False if it is element-wise (``vec``'s shape, or broadcastable to it).

    Decided from the number of dimensions, as in ``hessianfree``: a user nonlinearity that
    returns a full Jacobian works whether or not it declares ``elementwise = False``.
    """
    ndim = np.ndim(d)
    if ndim <= vec.ndim:
        return False
    units = vec.shape[-1]
    if ndim == vec.ndim + 1 and np.shape(d)[-2:] == (units, units):
        return True
    raise ValueError(f"d_activation of {layer!r} returned shape {np.shape(d)}: expected the "
                     f"element-wise derivative {vec.shape} or the full Jacobian "
                     f"{vec.shape + (units,)} (output unit first, input unit last), per time "
                     f"step and, for a stateful nonlinearity, per entry of its last axis of 3")
