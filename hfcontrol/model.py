"""The model contract: what an optimiser and the training loop need from a model.

Anything with this shape can be trained by :class:`~hfcontrol.optimizers.HessianFree`,
:class:`~hfcontrol.optimizers.SGD` and :func:`hfcontrol.training.train`:
:class:`~hfcontrol.FFNet` and :class:`~hfcontrol.RNNet` are models, and so is a
user's own class that implements the methods below (a test trains linear least
squares written against it). Nothing here is a base class: the contract is checked
structurally (``isinstance(obj, Model)`` works, as the protocol is runtime-checkable).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Model", "undamped_curvature", "check_model"]


@runtime_checkable
class Model(Protocol):
    """A trainable model: flat parameters, a cached minibatch, and derivatives on it.

    Attributes
    ----------
    W : ndarray
        All parameters in one flat float vector. The optimisers never write it: they
        return an update, which the training loop adds (``model.W = model.W + update``).
    mask : ndarray of bool or None
        Parameters where the mask is False are frozen; ``None`` for none frozen.
        :meth:`calc_grad` and :meth:`calc_G` must already return zeros there.

    Notes
    -----
    A model may also define ``undamped_curvature()``, a context manager inside which
    :meth:`calc_G` leaves out any curvature that is damping rather than model (for
    networks, :class:`~hfcontrol.loss_funcs.StructuralDamping`): Hessian-free
    optimisation uses it for the reduction ratio of its Levenberg-Marquardt rule. A
    model without one has no such term. A model with an ``rng``
    (``numpy.random.Generator``) has it saved in training checkpoints.
    """

    W: np.ndarray
    mask: np.ndarray | None

    def cache_minibatch(self, *args: Any, **kwargs: Any) -> None:
        """Store a minibatch (and whatever its derivatives need) under the current ``W``.

        :meth:`error`, :meth:`calc_grad` and :meth:`calc_G` then describe the objective
        on this minibatch, and the curvature at the weights it was cached with.
        """

    def error(self, W: np.ndarray | None = None) -> float:
        """The objective on the cached minibatch at ``W`` (default: the current weights)."""

    def calc_grad(self) -> np.ndarray:
        """The gradient of :meth:`error` at the cached weights, shaped like ``W``."""

    def calc_G(self, v: np.ndarray, damping: float = 0, out: np.ndarray | None = None
               ) -> np.ndarray:
        """``(G + damping I) v`` for the Gauss-Newton matrix ``G`` at the cached weights.

        ``G`` must be symmetric positive semi-definite. With ``out``, the result is
        written there and ``out`` returned.
        """


@contextlib.contextmanager
def undamped_curvature(model: Model) -> Iterator[None]:
    """Inside this block ``model.calc_G`` gives the undamped curvature (see :class:`Model`)."""
    hook = getattr(model, "undamped_curvature", None)
    if hook is None:
        yield
        return
    with hook():
        yield


_REQUIRED = ("W", "mask", "cache_minibatch", "error", "calc_grad", "calc_G")


def check_model(model: Any, name: str = "model") -> Model:
    """Return ``model`` if it has the attributes of :class:`Model`, else raise TypeError
    naming what is missing."""
    missing = [attr for attr in _REQUIRED if not hasattr(model, attr)]
    if missing:
        raise TypeError(f"{name} must follow the hfcontrol.model.Model contract; "
                        f"{type(model).__name__} lacks {', '.join(missing)}")
    if not isinstance(model.W, np.ndarray) or model.W.ndim != 1:
        raise TypeError(f"{name}.W must be a 1-D numpy array of parameters, got "
                        f"{type(model.W).__name__} {getattr(model.W, 'shape', '')}")
    return model
