"""Finite-difference oracles for a model's derivatives (float64 models only).

The networks' ``check_grad``/``check_G``, and any later model's, are built from these:
central differences of a scalar function of the parameters, and the relative error used
to compare a derivative with its finite-difference estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["central_gradient", "relative_error"]


def central_gradient(f: Callable[[np.ndarray], float], w0: np.ndarray, eps: float = 1e-6,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """``(f(w0 + eps e_i) - f(w0 - eps e_i)) / (2 eps)`` for every parameter ``i`` (zero
    where ``mask`` is False), as a float64 vector."""
    out = np.zeros(w0.size)
    w = np.array(w0, copy=True)
    for i in range(w0.size):
        if mask is not None and not mask[i]:
            continue
        w[i] = w0[i] + eps
        plus = f(w)
        w[i] = w0[i] - eps
        minus = f(w)
        w[i] = w0[i]
        out[i] = (plus - minus) / (2 * eps)
    return out


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    """``max|value - reference| / max|reference|`` (the scale floored at 1e-30)."""
    scale = float(np.max(np.abs(reference)))
    return float(np.max(np.abs(value - reference))) / max(scale, 1e-30)
