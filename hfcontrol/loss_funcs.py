"""Loss functions.

A loss maps the activations of every layer (a list, input layer first) and the
targets of the output layer to an error. Its three methods return one entry per
layer, ``None`` where the loss does not touch that layer:

* :meth:`LossFunction.loss` -- the element-wise error;
* :meth:`LossFunction.d_loss` -- its first derivative with respect to the activations;
* :meth:`LossFunction.d2_loss` -- the diagonal of its second derivative, which
  must be non-negative; it is the curvature used in the Gauss-Newton product.

:meth:`LossFunction.batch_loss` sums everything and divides by the batch size,
which is the convention the networks use for the error, gradient and ``G v``.

:attr:`LossFunction.curvature` tells the compiled path how ``d2_loss`` behaves, so that
what stays fixed during the conjugate-gradient iterations on one minibatch is prepared
once (see ``docs/performance.md``):

* ``"static"`` -- it depends only on the activations and targets (and the loss's own
  settings): evaluated once per minibatch, and again when a setting changes;
* ``"layer"`` -- one scalar per layer that may change between calls (structural damping
  follows the optimiser's damping): :meth:`LossFunction.layer_curvature` is read at every
  ``G v``;
* ``"dynamic"`` (the default, and what a subclass that overrides ``d2_loss`` without
  declaring ``curvature`` gets) -- ``d2_loss`` is evaluated at every ``G v``.

A :class:`LossSet` is the sum of its members.

A target of ``np.nan`` means "no error here": it adds no error, gradient or curvature.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "LossFunction",
    "output_loss",
    "SquaredError",
    "CrossEntropy",
    "ClassificationError",
    "StructuralDamping",
    "SparseL1",
    "SparseL2",
    "LossSet",
    "from_spec",
    "without_structural_damping",
]

LayerList = list[np.ndarray | None]


class LossFunction:
    """Base class: maps nonlinearity activations to error."""

    #: How ``d2_loss`` behaves (see the module docstring): ``"static"``, ``"layer"`` or
    #: ``"dynamic"``. A subclass that defines ``d2_loss`` but not ``curvature`` is
    #: ``"dynamic"``, whatever its parent declares.
    curvature: str = "dynamic"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "d2_loss" in cls.__dict__ and "curvature" not in cls.__dict__:
            cls.curvature = "dynamic"

    def layer_curvature(self, n_layers: int) -> tuple[list[int], float]:
        """For ``curvature == "layer"``: the layers with curvature and the scalar
        curvature on each of their units, now (``d2_loss`` is that scalar on those layers).

        Parameters
        ----------
        n_layers : int
            Number of layers of the network, input layer included.
        """
        raise NotImplementedError(f"{type(self).__name__} has no per-layer scalar curvature")

    def loss(self, activities: Sequence[np.ndarray], targets: np.ndarray | None) -> LayerList:
        """Element-wise error for each layer (``None`` for layers without error)."""
        raise NotImplementedError(f"{type(self).__name__} does not define loss()")

    def d_loss(self, activities: Sequence[np.ndarray], targets: np.ndarray | None) -> LayerList:
        """First derivative of the error with respect to each layer's activations."""
        raise NotImplementedError(f"{type(self).__name__} does not define d_loss()")

    def d2_loss(self, activities: Sequence[np.ndarray], targets: np.ndarray | None) -> LayerList:
        """Diagonal second derivative of the error with respect to each layer's activations."""
        raise NotImplementedError(f"{type(self).__name__} does not define d2_loss()")

    def batch_loss(self, activities: Sequence[np.ndarray], targets: np.ndarray | None) -> float:
        """Total error divided by the batch size (the first axis of the activations)."""
        batch_size = activities[-1].shape[0]
        total = 0.0
        for layer_loss in self.loss(activities, targets):
            if layer_loss is not None:
                total += float(np.sum(layer_loss, dtype=np.float64))
        return total / batch_size

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving a network."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def output_loss(func: Callable) -> Callable:
    """Decorator: turn ``func(self, output, targets)`` into a function of all layers' activities.

    The wrapped method returns ``[None, ..., None, func(output, targets)]``. Target
    entries that are NaN have their result set to zero.
    """

    @functools.wraps(func)
    def wrapped(self, activities, targets):
        result: LayerList = [None] * len(activities)
        output = activities[-1]
        missing = np.isnan(targets)
        if missing.any():
            safe_targets = np.where(missing, 0, targets).astype(targets.dtype, copy=False)
            value = func(self, output, safe_targets)
            value = np.where(missing, 0, value).astype(value.dtype, copy=False)
        else:
            value = func(self, output, targets)
        result[-1] = value
        return result

    return wrapped


class SquaredError(LossFunction):
    r"""Squared error, :math:`\frac{1}{2} \sum (output - target)^2`."""

    curvature = "static"

    @output_loss
    def loss(self, output, targets):
        return 0.5 * (output - targets) ** 2

    @output_loss
    def d_loss(self, output, targets):
        return output - targets

    @output_loss
    def d2_loss(self, output, targets):
        return np.ones_like(output)


class CrossEntropy(LossFunction):
    r"""Cross-entropy, :math:`-\sum target \log(output)`.

    Outputs must be positive (for example a :class:`~hfcontrol.nonlinearities.Softmax`
    or :class:`~hfcontrol.nonlinearities.Logistic` layer); outputs are floored at the
    smallest normal number of their dtype so that ``0 * log(0)`` counts as zero.
    """

    curvature = "static"

    @staticmethod
    def _floor(output):
        return np.maximum(output, np.finfo(output.dtype).tiny)

    @staticmethod
    def _check_targets(targets):
        if np.any(targets < 0):
            raise ValueError("targets for CrossEntropy must be >= 0 (probabilities or "
                             "one-hot labels)")

    @output_loss
    def loss(self, output, targets):
        self._check_targets(targets)
        return -targets * np.log(self._floor(output))

    @output_loss
    def d_loss(self, output, targets):
        self._check_targets(targets)
        return -targets / self._floor(output)

    @output_loss
    def d2_loss(self, output, targets):
        self._check_targets(targets)
        out = self._floor(output)
        return targets / (out * out)


class ClassificationError(LossFunction):
    r"""Classification error, :math:`argmax(output) \neq argmax(target)`, for validation only.

    :meth:`batch_loss` is the fraction of samples (and, for sequences, of time
    steps) classified wrongly; steps whose targets are all NaN are not counted.
    ``d_loss`` and ``d2_loss`` raise: classification error is not differentiable.
    """

    def batch_loss(self, activities, targets):
        counted = np.count_nonzero(~np.all(np.isnan(targets), axis=-1))
        if counted == 0:
            return 0.0
        return float(np.sum(self.loss(activities, targets)[-1], dtype=np.float64)) / counted

    def loss(self, activities, targets):
        output = activities[-1]
        missing = np.all(np.isnan(targets), axis=-1)
        filled = np.where(np.isnan(targets), -np.inf, targets)
        wrong = (np.argmax(output, axis=-1) != np.argmax(filled, axis=-1)) & ~missing
        result: LayerList = [None] * len(activities)
        result[-1] = wrong.astype(output.dtype)
        return result

    def d_loss(self, activities, targets):
        raise TypeError("ClassificationError is not differentiable: use it only as a test "
                        "error (run_epochs(..., test_err=ClassificationError())), not for training")

    d2_loss = d_loss


def _layers_or_hidden(layers, n_layers: int) -> list[int]:
    if layers is None:
        return list(range(1, n_layers - 1))
    out = []
    for layer in layers:
        if not -n_layers <= int(layer) < n_layers:
            raise ValueError(f"layers: index {layer} is out of range for a net with "
                             f"{n_layers} layers")
        out.append(int(layer) % n_layers)
    return out


class _LayerPenalty(LossFunction):
    """Shared machinery of losses that act on chosen layers' activations."""

    def __init__(self, weight: float, layers: Sequence[int] | None = None):
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be a finite number >= 0, "
                             f"got {weight!r}")
        self.weight = float(weight)
        self.layers = None if layers is None else [int(layer) for layer in layers]

    def _per_layer(self, activities, func) -> LayerList:
        result: LayerList = [None] * len(activities)
        for layer in _layers_or_hidden(self.layers, len(activities)):
            result[layer] = func(activities[layer])
        return result


class StructuralDamping(_LayerPenalty):
    """Structural damping (Martens & Sutskever 2011): curvature penalising changes of activity.

    The penalty ``weight * damping * D(a(W + d), a(W))`` on the hidden
    activations has zero value and zero gradient at the current weights, so it
    contributes only curvature, ``weight * damping`` on each damped unit, to ``G``.
    Unlike Martens' formulation it acts on the output side of the nonlinearity.

    Parameters
    ----------
    weight : float
        Scale of the structural damping relative to the other losses.
    layers : list of int, optional
        Layers to damp (default: all but the first and last).
    optimizer : Optimizer, optional
        If given, the curvature is also scaled by ``optimizer.damping``, so that
        Levenberg-Marquardt adjustments of the damping move it too.
    """

    curvature = "layer"

    def __init__(self, weight: float, layers: Sequence[int] | None = None, optimizer=None):
        super().__init__(weight, layers)
        self.optimizer = optimizer
        self.enabled = True
        #: re-link to the next optimiser attached to the network (set when loading a saved net)
        self.follow_optimizer = False

    @property
    def scale(self) -> float:
        """Current curvature coefficient: ``weight`` times the optimiser's damping (if any).

        Zero inside :func:`without_structural_damping`.
        """
        if not self.enabled:
            return 0.0
        damping = 1.0 if self.optimizer is None else float(getattr(self.optimizer, "damping", 1.0))
        return self.weight * damping

    def loss(self, activities, targets):
        return [None] * len(activities)

    def d_loss(self, activities, targets):
        return [None] * len(activities)

    def d2_loss(self, activities, targets):
        scale = self.scale
        return self._per_layer(activities, lambda a: np.full_like(a, scale))

    def layer_curvature(self, n_layers):
        return _layers_or_hidden(self.layers, n_layers), self.scale

    def get_config(self):
        return {"weight": self.weight, "layers": self.layers}


def _structural_dampings(loss: LossFunction) -> list[StructuralDamping]:
    if isinstance(loss, LossSet):
        return [sd for item in loss.set for sd in _structural_dampings(item)]
    return [loss] if isinstance(loss, StructuralDamping) else []


@contextlib.contextmanager
def without_structural_damping(loss: LossFunction) -> Iterator[None]:
    """Switch off every :class:`StructuralDamping` in ``loss`` for the duration of a block.

    The optimiser uses it to evaluate the undamped quadratic model.
    """
    dampings = _structural_dampings(loss)
    previous = [sd.enabled for sd in dampings]
    for sd in dampings:
        sd.enabled = False
    try:
        yield
    finally:
        for sd, was in zip(dampings, previous, strict=True):
            sd.enabled = was


class SparseL1(_LayerPenalty):
    r"""L1 sparsity penalty on activations, :math:`weight \sum |a - target|`.

    Parameters
    ----------
    weight : float
        Relative weight of the penalty.
    layers : list of int, optional
        Layers penalised (default: all but the first and last).
    target : float
        Target activation level.
    """

    curvature = "static"

    def __init__(self, weight: float, layers: Sequence[int] | None = None, target: float = 0.0):
        super().__init__(weight, layers)
        self.target = float(target)

    def loss(self, activities, targets):
        return self._per_layer(activities, lambda a: self.weight * np.abs(a - self.target))

    def d_loss(self, activities, targets):
        return self._per_layer(activities, lambda a: self.weight * np.sign(a - self.target))

    def d2_loss(self, activities, targets):
        return self._per_layer(activities, np.zeros_like)

    def get_config(self):
        return {"weight": self.weight, "layers": self.layers, "target": self.target}


class SparseL2(_LayerPenalty):
    r"""L2 sparsity penalty on activations, :math:`\frac{weight}{2} \sum (a - target)^2`.

    Parameters are those of :class:`SparseL1`.
    """

    curvature = "static"

    def __init__(self, weight: float, layers: Sequence[int] | None = None, target: float = 0.0):
        super().__init__(weight, layers)
        self.target = float(target)

    def loss(self, activities, targets):
        return self._per_layer(activities, lambda a: 0.5 * self.weight * (a - self.target) ** 2)

    def d_loss(self, activities, targets):
        return self._per_layer(activities, lambda a: self.weight * (a - self.target))

    def d2_loss(self, activities, targets):
        return self._per_layer(activities, lambda a: np.full_like(a, self.weight))

    def get_config(self):
        return {"weight": self.weight, "layers": self.layers, "target": self.target}


class LossSet(LossFunction):
    """Sum of several losses (e.g. ``SquaredError`` plus ``SparseL2``).

    A list of losses given to a network becomes a ``LossSet``.

    Parameters
    ----------
    set : list of LossFunction
        The losses to add.
    """

    def __init__(self, set: Sequence[LossFunction]):  # noqa: A002 - name fixed by the reference API
        losses = list(set)
        if not losses:
            raise ValueError("LossSet: set must contain at least one LossFunction")
        for loss in losses:
            if not isinstance(loss, LossFunction):
                raise TypeError(f"LossSet: every element of set must be a LossFunction, "
                                f"got {loss!r}")
        self.set = losses

    def group_func(self, func_name: str, activities, targets) -> LayerList:
        """Call ``func_name`` on every loss in the set and sum the results layer by layer."""
        total: LayerList = [None] * len(activities)
        for loss in self.set:
            for i, value in enumerate(getattr(loss, func_name)(activities, targets)):
                if value is not None:
                    total[i] = value if total[i] is None else total[i] + value
        return total

    def loss(self, activities, targets):
        return self.group_func("loss", activities, targets)

    def d_loss(self, activities, targets):
        return self.group_func("d_loss", activities, targets)

    def d2_loss(self, activities, targets):
        return self.group_func("d2_loss", activities, targets)

    def __repr__(self) -> str:
        return f"LossSet({self.set!r})"


_BUILTINS: dict[str, type[LossFunction]] = {
    cls.__name__: cls
    for cls in (SquaredError, CrossEntropy, ClassificationError, StructuralDamping, SparseL1,
                SparseL2)
}


def from_spec(spec) -> LossFunction:
    """Turn a loss, a list of losses, a class name or a saved spec into a :class:`LossFunction`."""
    if isinstance(spec, LossFunction):
        return spec
    if isinstance(spec, str):
        if spec not in _BUILTINS:
            raise ValueError(f"unknown loss {spec!r}; expected one of {sorted(_BUILTINS)}")
        if spec in ("StructuralDamping", "SparseL1", "SparseL2"):
            raise ValueError(f"loss {spec!r} needs a weight: pass an instance, e.g. {spec}(0.1)")
        return _BUILTINS[spec]()
    if isinstance(spec, dict) and "type" in spec:
        if spec["type"] == "LossSet":
            return LossSet([from_spec(s) for s in spec["set"]])
        if spec["type"] not in _BUILTINS:
            raise ValueError(f"unknown loss {spec['type']!r}; expected one of {sorted(_BUILTINS)}")
        config = dict(spec.get("config", {}))
        follow = config.pop("follow_optimizer", False)
        loss = _BUILTINS[spec["type"]](**config)
        if follow:
            loss.follow_optimizer = True
        return loss
    if isinstance(spec, list | tuple):
        return LossSet([from_spec(s) for s in spec])
    raise TypeError(f"loss_type must be a LossFunction, a list of them, or a name such as "
                    f"'SquaredError', got {spec!r}")


def spec_of(loss: LossFunction) -> dict[str, Any]:
    """JSON-serialisable description of a built-in loss (inverse of :func:`from_spec`)."""
    if isinstance(loss, LossSet):
        return {"type": "LossSet", "set": [spec_of(s) for s in loss.set]}
    name = type(loss).__name__
    if _BUILTINS.get(name) is not type(loss):
        raise TypeError(f"cannot save custom loss {loss!r}: only built-in losses "
                        f"({sorted(_BUILTINS)}) can be saved")
    config = loss.get_config()
    if isinstance(loss, StructuralDamping) and (loss.optimizer is not None or loss.follow_optimizer):
        # the optimiser itself is not saved; the loaded loss links to the next one attached
        config["follow_optimizer"] = True
    return {"type": name, "config": config}
