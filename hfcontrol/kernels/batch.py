"""A minibatch cached on the compiled path, and what ``G v`` needs prepared once for it.

Hessian-free optimisation runs tens to hundreds of ``G v`` products on one cached
minibatch. :class:`CompiledBatch` is built by ``cache_minibatch`` and prepares everything
that stays fixed while they run: the activations and derivatives (one forward pass), the
transposed weights (:func:`transposed_weights`), the truncation windows, the
buffer of R-activations, and the curvature of the losses that declare it ``"static"``
(:attr:`hfcontrol.loss_funcs.LossFunction.curvature`), packed into the kernels' layout.
A product then reads only what may change between calls -- the per-layer scalar
curvature of structural damping -- and calls the kernel.
"""

from __future__ import annotations

import numpy as np

from .. import loss_funcs as lf
from .curvature import HAS_ARRAY, HAS_SCALAR
from .plan import M_N, M_REC, M_RSTART, Plan, windows_array
from .runner import Runner


def _members(loss) -> list:
    """The losses a loss adds up (a LossSet's members, recursively), itself otherwise."""
    if type(loss) is lf.LossSet:
        return [m for item in loss.set for m in _members(item)]
    return [loss]


def _nodes(loss) -> list:
    """Every LossSet in ``loss`` and every static member: the objects whose settings the
    prepared curvature depends on."""
    if type(loss) is lf.LossSet:
        return [loss] + [n for item in loss.set for n in _nodes(item)]
    return [loss] if loss.curvature == "static" else []


def transposed_weights(W: np.ndarray, plan: Plan) -> np.ndarray:
    """The transpose of every weight matrix of ``W`` at its place (a ``[post, pre]`` block
    where ``W`` has ``[pre, post]``; biases copied as they are), for the backward kernel.

    One NumPy gather through an index built once per :class:`~.plan.Plan`, once per
    minibatch: a compiled kernel for it would cost compile time only.
    """
    index = plan.__dict__.get("_transpose_index")
    if index is None:
        index = np.arange(plan.n_params, dtype=np.intp)
        blocks = [(int(plan.meta[pre, M_N]), int(plan.meta[post, M_N]), int(start))
                  for pre, post, start, _, _ in plan.conns]
        blocks += [(int(row[M_N]), int(row[M_N]), int(row[M_RSTART]))
                   for row in plan.meta if row[M_REC] != 0]
        for npre, npost, start in blocks:
            size = npre * npost
            index[start:start + size] = index[start:start + size].reshape(npre, npost).T.ravel()
        plan.__dict__["_transpose_index"] = index
    return W.take(index)


def _settings(obj) -> dict:
    """A copy of an object's attributes (lists copied too: a LossSet's members, a
    penalty's layers), to compare with later."""
    return {k: list(v) if isinstance(v, list) else v for k, v in vars(obj).items()}


class CompiledBatch:
    """The compiled path's state for one cached minibatch.

    Parameters
    ----------
    runner : Runner
        The kernels for the batch's shape.
    W : ndarray
        The cached weights (kept by reference: the network does not change them while
        the minibatch is cached).
    inputs : ndarray
        ``[B, T, n0]`` (recurrent) or ``[B, n0]`` inputs.
    init_act, init_state : ndarray
        Initial activations and filter states, flat (:func:`~.plan.init_block`).
    windows : sequence of (int, int, int)
        Truncation windows ``(low, first_injected, end)``.
    recurrent : bool
        Whether the network is recurrent (the layout of :attr:`activations`).
    """

    def __init__(self, runner: Runner, W: np.ndarray, inputs: np.ndarray,
                 init_act: np.ndarray, init_state: np.ndarray, windows, recurrent: bool):
        plan = runner.plan
        self.runner, self.W, self.init_act = runner, W, init_act
        #: ``1 / batch size`` in the network's dtype: the loss is a mean over the batch
        self.scale = runner.dtype.type(1.0 / runner.B)
        self.acts, self.ds = runner.forward(W, inputs, init_act, init_state)
        self.activations = runner.unpack(self.acts, recurrent)
        self.windows = windows_array(windows)
        self.truncation = None
        self.WT = transposed_weights(W, plan)
        self.n_layers = len(plan.sizes)
        self._no_scalars = np.zeros(self.n_layers)
        self._scalars = np.zeros(self.n_layers)
        self.ra: np.ndarray | None = None
        self._loss = None

    def set_windows(self, windows) -> None:
        """Replace the truncation windows (the network's truncation changed)."""
        self.windows = windows_array(windows)

    def grad(self, d_loss, scale) -> np.ndarray:
        """The gradient of ``sum(d_loss * a) * scale`` with respect to the weights.

        Parameters
        ----------
        d_loss : list of ndarray or None
            ``dE/da`` per layer (``[B, T, n]`` or ``[B, n]``), None where the loss has none.
        scale : float
            ``1 / batch size``, in the network's dtype.
        """
        runner = self.runner
        buf, present = runner.pack([None if d is None else d * scale for d in d_loss])
        return runner.backward(self.W, self.WT, self.W, self.acts, self.ds, buf,
                               self._no_scalars, scale, False, present, self.init_act,
                               self.windows, buf)

    def gv(self, v: np.ndarray, loss, targets) -> np.ndarray:
        """``G v`` (no damping, no mask) with ``loss``'s curvature on this minibatch.

        Parameters
        ----------
        v : ndarray
            A C-contiguous vector of the network's dtype and size (not checked here).
        loss : LossFunction
            The network's loss; its curvature is prepared on first use, and again when the
            loss or a setting of a static member changed.
        targets : ndarray
            The cached targets.
        """
        if loss is not self._loss or not self._unchanged():
            self._prepare(loss, targets)
        if self._dynamic:
            d2, present = self.runner.pack(loss.d2_loss(self.activations, targets))
            scalars = self._no_scalars
        else:
            d2, present = self._d2, self._present
            scalars = self._no_scalars
            if self._layer_losses:
                scalars = self._scalars
                scalars[:] = 0.0
                for member, layers in self._layer_losses:
                    now, value = member.layer_curvature(self.n_layers)
                    if now != layers:  # its layers changed: prepare again
                        self._prepare(loss, targets)
                        return self.gv(v, loss, targets)
                    for l in layers:
                        scalars[l] += value
        if self.ra is None:
            self.ra = np.empty_like(self.acts)
        return self.runner.backward(self.W, self.WT, v, self.acts, self.ds, d2, scalars,
                                    self.scale, True, present, self.init_act, self.windows,
                                    self.ra)

    def _prepare(self, loss, targets) -> None:
        """Evaluate and pack the static part of ``loss``'s curvature."""
        members = _members(loss)
        self._loss = loss
        self._dynamic = any(m.curvature not in ("static", "layer") for m in members)
        self._nodes = [(node, _settings(node)) for node in _nodes(loss)]
        self._layer_losses = []
        if self._dynamic:
            return  # evaluated every call, as the NumPy path does
        static = [m for m in members if m.curvature == "static"]
        arrays: list = [None] * self.n_layers
        for m in static:
            for l, d2 in enumerate(m.d2_loss(self.activations, targets)):
                if d2 is not None:
                    arrays[l] = d2 if arrays[l] is None else arrays[l] + d2
        self._d2, present = self.runner.pack(arrays)
        present = present * HAS_ARRAY
        for m in members:
            if m.curvature == "layer":
                layers, _ = m.layer_curvature(self.n_layers)
                self._layer_losses.append((m, layers))
                for l in layers:
                    present[l] |= HAS_SCALAR
        self._present = present

    def _unchanged(self) -> bool:
        """Whether the settings the prepared curvature was computed with are unchanged."""
        try:
            for node, state in self._nodes:
                if vars(node) != state:
                    return False
        except Exception:  # noqa: BLE001 - e.g. an array setting: compare fails, prepare again
            return False
        return True
