"""Recurrent networks: time-unrolled forward pass, truncated backprop through time, ``G v``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import nonlinearities as nl
from . import parameters, persistence
from ._validation import check_array
from .ffnet import FFNet

__all__ = ["RNNet"]


@persistence.register
class RNNet(FFNet):
    """Recurrent network over sequences ``[batch, time, units]``.

    At every time step the layers are computed in order, each from the current
    step's lower layers; a recurrent layer also receives its own activation of
    the previous step through a recurrent weight matrix. The recurrent
    connection's bias is a learned input added only at ``t = 0`` (a learned
    initial condition); later steps use the previous activations instead.

    Parameters
    ----------
    shape : sequence of int
        Units per layer, input layer first.
    rec_layers : sequence of int or of bool, optional
        The recurrent layers: a list of layer indices (hidden or output layers), or,
        as in ``hessianfree``, one boolean per layer (``len(shape)`` of them; the input
        layer's must be False). Default: all but the first and last layers.
    W_rec_params : dict, optional
        Initialisation of the recurrent weights, with the keys of ``W_init_params``.
    truncation : tuple (n, k), optional
        Truncated backprop through time, in ``hessianfree``'s order: back-propagation
        is run every ``n`` steps and goes back ``k`` steps. The sequence is cut into
        blocks of ``n`` steps (the last may be shorter); the error of each block's
        steps is back-propagated through the ``k`` steps that end with the block
        (down to step ``end - k``), so every step's error is counted once.
        Requires ``1 <= n <= k <= T`` (``T``, the number of steps, is checked when a
        batch is cached). Default: full backprop through time.
    **ffnet_args
        The other arguments of :class:`~hfcontrol.FFNet` (``layers``, ``conns``,
        ``loss_type``, ``W_init_params``, ``load_weights``, ``debug``, ``rng``, ``dtype``,
        ``use_GPU``, which must be False).
        Stateful nonlinearities such as :class:`~hfcontrol.nonlinearities.Continuous` are allowed.

    Notes
    -----
    ``inputs`` may be a :class:`~hfcontrol.nonlinearities.Plant`: at each step the
    plant receives the output of the previous step (at the first step, zeros
    ``[batch, output units]``, or the output layer's ``init_activations`` if given)
    and returns that step's input, and after the run it supplies inputs and targets
    through ``get_vecs()``. The fed-back input is treated as data by the gradient
    and ``G v``.

    ``hessianfree`` differs in two details of truncation: it injects the error of every
    step of a ``k``-step window (so with ``n < k`` a step's error is counted about
    ``k / n`` times) and drops the steps after the last multiple of ``n``; here each
    step's error is injected once and no step is dropped.
    """

    @staticmethod
    def _check_layer(i: int, layer: nl.Nonlinearity) -> None:
        """Every nonlinearity runs in a recurrent network, stateful ones included."""
    _recurrent = True

    def __init__(self, shape: Sequence[int], rec_layers: Sequence[int] | None = None,
                 W_rec_params: Mapping[str, Any] | None = None,
                 truncation: tuple[int, int] | None = None, **ffnet_args):
        n_layers = len(shape) if hasattr(shape, "__len__") else 0
        self.rec_layers = self._check_rec_layers(rec_layers, n_layers)
        self.truncation = truncation
        self._W_rec_params = W_rec_params
        self._forward_kwargs: dict[str, Any] = {}
        self._init_acts: list[np.ndarray | None] = []
        self._init_states: list[np.ndarray | None] = []
        self._plant: nl.Plant | None = None
        super().__init__(shape, **ffnet_args)
        self._check_time_constants()

    def _check_time_constants(self) -> None:
        """Per-unit ``tau`` of every :class:`~hfcontrol.nonlinearities.Continuous` layer has
        one entry per unit of its layer."""
        for i, layer in enumerate(self.layers):
            units = getattr(layer, "units", None) if isinstance(layer, nl.Continuous) else None
            if units is not None and units != self.shape[i]:
                raise ValueError(f"layers[{i}]: Continuous tau has {units} per-unit time "
                                 f"constants but layer {i} has {self.shape[i]} units "
                                 f"(shape {self.shape})")

    @staticmethod
    def _check_rec_layers(rec_layers, n_layers: int) -> list[int]:
        """Sorted recurrent layer indices from indices or one boolean per layer."""
        if rec_layers is None:
            return list(range(1, n_layers - 1))
        if isinstance(rec_layers, str | bytes) or not hasattr(rec_layers, "__iter__"):
            raise TypeError(f"rec_layers must be a list of layer indices or a list of "
                            f"{n_layers} booleans (one per layer), got {rec_layers!r}")
        items = list(rec_layers)
        if items and all(isinstance(x, bool | np.bool_) for x in items):
            if len(items) != n_layers:
                raise ValueError(f"rec_layers: a list of booleans needs one per layer "
                                 f"({n_layers} for this shape), got {len(items)}")
            if items[0]:
                raise ValueError("rec_layers: the input layer (layer 0) cannot be recurrent")
            return [i for i, flag in enumerate(items) if flag]
        for x in items:
            if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
                raise TypeError(f"rec_layers must be a list of integer layer indices or a list "
                                f"of {n_layers} booleans (one per layer), not a mixture; "
                                f"got {rec_layers!r}")
            if not 0 < x < n_layers:
                raise ValueError(f"rec_layers: layer {x} is not a hidden or output layer "
                                 f"(expected indices 1..{n_layers - 1})")
        return sorted({int(x) for x in items})

    @property
    def truncation(self) -> tuple[int, int] | None:
        """``(n, k)``: back-propagate every ``n`` steps through ``k`` steps; None: full BPTT."""
        return self._truncation

    @truncation.setter
    def truncation(self, value) -> None:
        self._truncation = self._check_truncation(value)

    @staticmethod
    def _check_truncation(truncation) -> tuple[int, int] | None:
        if truncation is None:
            return None
        if (isinstance(truncation, str | bytes) or not hasattr(truncation, "__len__")
                or len(truncation) != 2
                or not all(isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)
                           for x in truncation)):
            raise TypeError(f"truncation must be a pair (n, k) of ints (back-propagate every n "
                            f"steps through k steps) or None, got {truncation!r}")
        n, k = (int(x) for x in truncation)
        if not 1 <= n <= k:
            raise ValueError(f"truncation (n, k) needs 1 <= n <= k (back-propagate every n steps "
                             f"through the last k steps, so that no step's error is dropped), "
                             f"got {truncation!r}")
        return n, k

    # ------------------------------------------------------------------ construction
    def _all_conns(self):
        return super()._all_conns() + [(layer, layer) for layer in self.rec_layers]

    def _init_weights(self, W_init_params) -> np.ndarray:
        W = np.zeros(self.n_params, self.dtype)
        parameters.init_weights(W, FFNet._all_conns(self), self.get_weights, W_init_params,
                                self.rng, "W_init_params")
        # the recurrent weights are initialised on their own: a sparse init gives each
        # recurrent unit its own 15 non-zero recurrent weights
        parameters.init_weights(W, [(layer, layer) for layer in self.rec_layers],
                                self.get_weights, self._W_rec_params, self.rng, "W_rec_params")
        return W

    def _config(self):
        config = super()._config()
        config.update(rec_layers=self.rec_layers,
                      truncation=None if self.truncation is None else list(self.truncation))
        return config

    # ------------------------------------------------------------------ data checks
    def _check_inputs(self, inputs, name: str = "inputs") -> np.ndarray:
        return check_array(inputs, name, 3, self.shape[0], self.dtype)

    def _check_targets(self, targets, inputs, name: str = "targets") -> np.ndarray:
        return check_array(targets, name, 3, self.shape[-1], self.dtype, allow_nan=True,
                           batch=inputs.shape[0], time=inputs.shape[1])

    def _check_test(self, test) -> tuple:
        if isinstance(test, tuple | list) and len(test) == 2 and isinstance(test[0], nl.Plant):
            if test[1] is not None:
                raise ValueError("test[1] must be None when test[0] is a Plant (the plant "
                                 "supplies the targets)")
            return tuple(test)
        return super()._check_test(test)

    def _check_init(self, values, name: str, batch: int, layers: Sequence[int]):
        """Per-layer initial values: a list indexed by layer (None entries allowed)."""
        out: list[np.ndarray | None] = [None] * self.n_layers
        if values is None:
            return out
        values = list(values)
        if len(values) != self.n_layers:
            raise ValueError(f"{name} must be a list with one entry per layer ({self.n_layers}), "
                             f"None where unused; got {len(values)} entries")
        for layer, value in enumerate(values):
            if value is None:
                continue
            if layer not in layers:
                raise ValueError(f"{name}[{layer}] is given but layer {layer} does not use it")
            out[layer] = check_array(value, f"{name}[{layer}]", 2, self.shape[layer], self.dtype,
                                     batch=batch)
        return out

    def _truncation_setting(self):
        return self.truncation

    def _windows(self, n_steps: int) -> list[tuple[int, int, int]]:
        """Back-propagation windows ``(lowest step, first injected step, end step)``.

        With ``truncation = (n, k)``: one window per block of ``n`` steps
        ``[start, end)`` (the last block may be shorter), injecting the error of the
        block's steps and carrying it back to step ``max(0, end - k)``.
        """
        if self.truncation is None:
            return [(0, 0, n_steps)]
        n, k = self.truncation
        if k > n_steps:
            raise ValueError(f"truncation: k = {k} steps (the back-propagation length) is longer "
                             f"than the sequence ({n_steps} steps); need k <= {n_steps}")
        return [(max(0, end - k), start, end)
                for start, end in ((s, min(s + n, n_steps)) for s in range(0, n_steps, n))]

    # ------------------------------------------------------------------ reference kernels
    def forward(self, inputs, params: np.ndarray | None = None, deriv: bool = False,
                init_activations: Sequence[np.ndarray | None] | None = None,
                init_state: Sequence[np.ndarray | None] | None = None,
                _params_from: tuple[int, np.ndarray] | None = None):
        """Run the network over a sequence.

        Parameters
        ----------
        inputs : ndarray ``[batch, time, units]`` or Plant
            Input sequence, or a plant that generates it step by step.
        params : ndarray, optional
            Parameters to use instead of ``self.W``.
        deriv : bool
            Also return the nonlinearity derivatives.
        init_activations : list, optional
            Per layer (None where unused), the activation ``[batch, units]`` of each
            recurrent layer before the first step (default zeros). With a Plant as
            ``inputs``, a recurrent output layer's entry is also what the plant receives
            at the first step (zeros if not given).
        init_state : list, optional
            Per layer, the initial state ``[batch, units]`` of stateful nonlinearities
            (default zeros).

        Returns
        -------
        activations : list of ndarray ``[batch, time, units]``
        d_activations : list of ndarray (only if ``deriv``)
        """
        params = self._check_params(params)
        plant = inputs if isinstance(inputs, nl.Plant) else None
        if plant is not None:
            if plant.shape is None or len(plant.shape) != 3:
                raise ValueError("inputs: a Plant must define shape = (batch, time, input_units)")
            batch, n_steps = int(plant.shape[0]), int(plant.shape[1])
        else:
            inputs = self._check_inputs(inputs)
            batch, n_steps = inputs.shape[:2]
        init_acts = self._check_init(init_activations, "init_activations", batch, self.rec_layers)
        stateful = [i for i, layer in enumerate(self.layers) if layer.stateful]
        init_states = self._check_init(init_state, "init_state", batch, stateful)
        if plant is None and not deriv and _params_from is None and self.backend == "numba":
            return self._compiled_forward(inputs, params, init_acts, init_states)
        for i in stateful:
            self.layers[i].reset(init_states[i])
        if plant is not None and not any(layer is plant for layer in self.layers):
            plant.reset()

        acts = [np.empty((batch, n_steps, size), self.dtype) for size in self.shape]
        derivs: list[np.ndarray | None] = [None] * self.n_layers
        step_params = params
        for t in range(n_steps):
            if _params_from is not None and t == _params_from[0]:
                # finite-difference oracle of truncation: other weights from this step on
                step_params = _params_from[1]
            for layer in range(self.n_layers):
                if layer == 0:
                    if plant is None:
                        x = inputs[:, t]
                    elif t > 0:
                        x = self._plant_input(plant, acts[-1][:, t - 1])
                    else:
                        # as in hessianfree: the output layer's initial activation if given,
                        # otherwise zeros (never None)
                        first = init_acts[-1]
                        x = self._plant_input(plant, np.zeros((batch, self.shape[-1]), self.dtype)
                                              if first is None else first.copy())
                else:
                    x = self._net_input(step_params, layer, [a[:, t] for a in acts])
                    if layer in self.rec_layers:
                        w, b = self.get_weights(step_params, (layer, layer))
                        if t > 0:
                            x = x + acts[layer][:, t - 1] @ w
                        elif init_acts[layer] is not None:
                            x = x + init_acts[layer] @ w + b
                        else:
                            x = x + b
                nonlin = self.layers[layer]
                a = nonlin.activation(x)
                acts[layer][:, t] = a
                if deriv:
                    d = nonlin.d_activation(x, a)
                    if derivs[layer] is None:
                        derivs[layer] = np.empty((batch, n_steps) + d.shape[1:], self.dtype)
                    derivs[layer][:, t] = d
        return (acts, derivs) if deriv else acts

    def _batch_shape(self, inputs):
        return inputs.shape[1], inputs.shape[0]

    def _fill_cache(self, init_activations=None, init_state=None) -> None:
        super()._fill_cache(self._init_acts if init_activations is None else init_activations,
                            self._init_states if init_state is None else init_state)

    def _reference_forward(self, inputs, W):
        return self.forward(inputs, params=W, deriv=True, **self._forward_kwargs)

    def _plant_input(self, plant: nl.Plant, previous_output):
        return check_array(plant(previous_output), "plant input", 2, self.shape[0], self.dtype,
                           batch=plant.shape[0])

    def _backward(self, d_act, params) -> np.ndarray:
        n_steps = self.activations[0].shape[1]
        return self._weight_gradient(self._window_deltas(d_act, params, self._windows(n_steps)))

    def _window_deltas(self, d_act, params, windows) -> list[np.ndarray | None]:
        """``dE/dx`` of every layer and step, back-propagated within each window and summed.

        A window ``(low, first_injected, end)`` injects the error of steps
        ``first_injected .. end - 1`` and carries it back through time down to step ``low``.
        """
        acts, derivs = self.activations, self.d_activations
        batch, n_steps = acts[0].shape[:2]
        delta_x = [None] + [np.zeros((batch, n_steps, size), self.dtype) for size in self.shape[1:]]
        for low, first_injected, end in windows:
            rec_carry = [np.zeros((batch, size), self.dtype) for size in self.shape]
            state_carry = [np.zeros((batch, size), self.dtype) for size in self.shape]
            step_dx: list[np.ndarray | None] = [None] * self.n_layers
            for t in range(end - 1, low - 1, -1):
                for layer in range(self.n_layers - 1, 0, -1):
                    delta = np.zeros((batch, self.shape[layer]), self.dtype)
                    if d_act[layer] is not None and t >= first_injected:
                        delta += d_act[layer][:, t]
                    delta = self._back_from_posts(params, layer, step_dx, delta)
                    if layer in self.rec_layers and t < end - 1:
                        w, _ = self.get_weights(params, (layer, layer))
                        delta += rec_carry[layer] @ w.T
                    nonlin, d = self.layers[layer], derivs[layer][:, t]
                    if nonlin.stateful:
                        ds = self._apply_jacobian_T(nonlin, delta, d[..., 2]) + state_carry[layer]
                        dx = self._apply_jacobian_T(nonlin, ds, d[..., 0])
                        state_carry[layer] = self._apply_jacobian_T(nonlin, ds, d[..., 1])
                    else:
                        dx = self._apply_jacobian_T(nonlin, delta, d)
                    step_dx[layer] = dx
                    rec_carry[layer] = dx
                    delta_x[layer][:, t] += dx
        return delta_x

    def _reference_G(self, v, scale) -> np.ndarray:
        """``G v`` with ``G = sum_w J_w^T H_w J_w`` over the truncation windows.

        ``J_w`` is the Jacobian of the window's activations with the state entering
        the window held fixed, the same truncation as the gradient's, so ``G`` is
        symmetric positive semi-definite. Without truncation there is one window.
        """
        n_steps = self.activations[0].shape[1]
        d2 = self.loss.d2_loss(self.activations, self.targets)
        total = [None] + [np.zeros_like(a) for a in self.activations[1:]]
        for window in self._windows(n_steps):
            low, first_injected, end = window
            r_acts = self._r_forward(v, self._cached_W, low, end)
            d_act = []
            for c, r in zip(d2, r_acts, strict=True):
                if c is None:
                    d_act.append(None)
                    continue
                injected = np.zeros_like(r)
                injected[:, first_injected:end] = (c * r * scale)[:, first_injected:end]
                d_act.append(injected)
            for layer, dx in enumerate(self._window_deltas(d_act, self._cached_W, [window])):
                if dx is not None:
                    total[layer] += dx
        return self._weight_gradient(total)

    def _weight_gradient(self, delta_x) -> np.ndarray:
        """Accumulate weight gradients from ``dE/dx`` of every layer and step, in large products."""
        acts = self.activations
        batch, n_steps = acts[0].shape[:2]
        grad = np.zeros(self.n_params, self.dtype)
        self._feedforward_gradient(grad, [a.reshape(batch * n_steps, -1) for a in acts],
                                   [None] + [d.reshape(batch * n_steps, -1) for d in delta_x[1:]])
        init_acts = self._init_acts
        for layer in self.rec_layers:
            gw, gb = self.get_weights(grad, (layer, layer))
            prev = acts[layer][:, :-1].reshape(-1, self.shape[layer])
            gw[:] = prev.T @ delta_x[layer][:, 1:].reshape(-1, self.shape[layer])
            if init_acts[layer] is not None:
                gw += init_acts[layer].T @ delta_x[layer][:, 0]
            gb[:] = delta_x[layer][:, 0].sum(axis=0)
        return grad

    def _r_forward(self, v, params, low: int = 0, end: int | None = None) -> list[np.ndarray]:
        """``R{a}`` along ``v`` for steps ``low .. end - 1``, the state before ``low`` held fixed."""
        acts, derivs = self.activations, self.d_activations
        batch, n_steps = acts[0].shape[:2]
        end = n_steps if end is None else end
        init_acts = self._init_acts
        r_acts = [np.zeros_like(a) for a in acts]
        r_state = [np.zeros((batch, size), self.dtype) for size in self.shape]
        for t in range(low, end):
            for layer in range(1, self.n_layers):
                rx = self._r_net_input(v, params, layer, [a[:, t] for a in acts],
                                       [r[:, t] for r in r_acts],
                                       np.zeros((batch, self.shape[layer]), self.dtype))
                if layer in self.rec_layers:
                    vw, vb = self.get_weights(v, (layer, layer))
                    w, _ = self.get_weights(params, (layer, layer))
                    if t > 0:
                        rx += acts[layer][:, t - 1] @ vw
                        if t > low:
                            rx += r_acts[layer][:, t - 1] @ w
                    else:
                        rx += vb
                        if init_acts[layer] is not None:
                            rx += init_acts[layer] @ vw
                nonlin, d = self.layers[layer], derivs[layer][:, t]
                if nonlin.stateful:
                    r_state[layer] = (self._apply_jacobian(nonlin, rx, d[..., 0])
                                      + self._apply_jacobian(nonlin, r_state[layer], d[..., 1]))
                    r_acts[layer][:, t] = self._apply_jacobian(nonlin, r_state[layer], d[..., 2])
                else:
                    r_acts[layer][:, t] = self._apply_jacobian(nonlin, rx, d)
        return r_acts

    # ------------------------------------------------------------------ caching and evaluation
    def cache_minibatch(self, inputs, targets=None, init_activations=None,
                        init_state=None) -> None:
        """Store a batch, or a Plant's run, and its activations for :meth:`calc_grad`/:meth:`calc_G`.

        With a Plant, ``targets`` must be None: the plant supplies inputs and
        targets from the run, and they are then held fixed as data.
        """
        plant = inputs if isinstance(inputs, nl.Plant) else None
        if plant is not None and targets is not None:
            raise ValueError("targets must be None when inputs is a Plant (the plant supplies "
                             "them)")
        if plant is None:
            self._windows(self._check_inputs(inputs).shape[1])  # truncation fits the sequence?
        else:
            self._windows(int(plant.shape[1]))
        forward_kwargs = {"init_activations": init_activations, "init_state": init_state}
        compiled = self.backend == "numba"
        if plant is not None or not compiled:
            acts, derivs = self.forward(inputs, deriv=True, **forward_kwargs)
        if plant is not None:
            inputs, targets = plant.get_vecs()
        # copies: the cache must not change when the caller later edits their arrays
        inputs = self._check_inputs(inputs).copy()
        self.targets = self._check_targets(targets, inputs).copy()
        self.inputs, self._plant = inputs, plant
        stateful = [i for i, layer in enumerate(self.layers) if layer.stateful]
        self._init_acts = [None if a is None else a.copy() for a in self._check_init(
            init_activations, "init_activations", inputs.shape[0], self.rec_layers)]
        self._init_states = [None if s is None else s.copy() for s in self._check_init(
            init_state, "init_state", inputs.shape[0], stateful)]
        self._forward_kwargs = {"init_activations": self._init_acts,
                                "init_state": self._init_states}
        self._cached_W = self.W.copy()
        if compiled:
            # a plant's run is cached as data: the compiled pass recomputes the same
            # activations from the inputs it generated
            self._fill_cache()
        else:
            self._cc = None
            self.activations, self.d_activations = acts, derivs

    def _evaluate(self, inputs, targets, W):
        if isinstance(inputs, nl.Plant):
            if targets is not None:
                raise ValueError("targets must be None when inputs is a Plant")
            acts = self.forward(inputs, params=W)
            _, targets = inputs.get_vecs()
            return acts, self._check_targets(targets, acts[0])
        return super()._evaluate(inputs, targets, W)

    def _evaluate_cached(self, W):
        # A plant's run is cached as data: its inputs are held fixed, as in the gradient,
        # so that the optimiser's error, gradient and G v describe one objective.
        return self.forward(self.inputs, params=W, **self._forward_kwargs), self.targets

    def _activations_at(self, W):
        return self.forward(self.inputs, params=W, **self._forward_kwargs)

    def _fd_pieces(self):
        n_steps = self.inputs.shape[1]
        if self.truncation is None:
            return super()._fd_pieces()
        pieces = []
        for low, first_injected, end in self._windows(n_steps):
            # the window's activations as functions of the weights used from step `low` on,
            # with the earlier steps (the state entering the window) at the cached weights
            def activations_at(W, low=low):
                return self.forward(self.inputs, params=self._cached_W, _params_from=(low, W),
                                    **self._forward_kwargs)

            def restrict(c, first=first_injected, end=end):
                out = np.zeros_like(c)
                out[:, first:end] = c[:, first:end]
                return out

            pieces.append((activations_at, restrict))
        return pieces

    def _training_data(self, inputs, targets, minibatch_size):
        if isinstance(inputs, nl.Plant):
            if minibatch_size is not None:
                raise ValueError("minibatch_size must be None when inputs is a Plant (the plant "
                                 "sets the batch)")
            if targets is not None:
                raise ValueError("targets must be None when inputs is a Plant")

            def plant_batches():
                while True:
                    yield inputs, None

            return plant_batches()
        return super()._training_data(inputs, targets, minibatch_size)

