"""Argument checking shared by every plant and task.

All helpers raise ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind,
wrong shape or value) with a message that names the argument and what was expected.
Nothing is broadcast, truncated or silently converted to NaN.
"""

from __future__ import annotations

import numbers

import numpy as np

INTEGRATORS = {"euler": 0, "semi_implicit": 1, "rk4": 2, "discrete": 3}


def as_float_array(value, name: str, shape: tuple[int | None, ...], *,
                   allow_nan: bool = False) -> np.ndarray:
    """Return ``value`` as a C-contiguous float64 array of exactly ``shape``.

    ``None`` in ``shape`` means "any length along this axis". Raises if the value is not
    numeric, has another shape, or contains NaN (unless ``allow_nan``, for arrays where NaN
    has a meaning, such as "no target here").
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a numeric array of shape {_fmt(shape)}, got {value!r}")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be a numeric array of shape {_fmt(shape)}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(
            f"{name} must be a real numeric array of shape {_fmt(shape)}, got dtype {arr.dtype}"
        )
    if arr.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)
    ):
        raise ValueError(f"{name} must have shape {_fmt(shape)}, got shape {arr.shape}")
    # a copy: plants keep parameters, and a caller editing their array later must not
    # change them behind the compiled model's back
    arr = np.array(arr, dtype=np.float64, order="C")
    if not allow_nan and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def as_finite_array(value, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Like :func:`as_float_array` but also rejects infinities."""
    arr = as_float_array(value, name, shape)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr}")
    return arr


def scalar(value, name: str, *, low: float = -np.inf, high: float = np.inf,
           low_open: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if np.isnan(v) or (np.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {v}")
    if v < low or v > high or (low_open and v == low):
        lb = "(" if low_open else "["
        raise ValueError(f"{name} must be in {lb}{low}, {high}], got {v}")
    return v


def positive(value, name: str) -> float:
    """A strictly positive finite float."""
    return scalar(value, name, low=0.0, low_open=True)


def nonnegative(value, name: str) -> float:
    """A non-negative finite float."""
    return scalar(value, name, low=0.0)


def integer(value, name: str, *, low: int = 1) -> int:
    """An ``int`` (not bool) that is at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def integrator_code(name, allowed=("euler", "semi_implicit", "rk4")) -> int:
    """Map an integrator name to its kernel code, rejecting unknown names."""
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"integrator must be one of {list(allowed)}, got {name!r}")
    return INTEGRATORS[name]


def limits(low, high, name: str, size: int, *, default: float = np.inf):
    """Symmetric or explicit ``(low, high)`` limit vectors of length ``size``.

    ``high`` may be a scalar or a length-``size`` vector; ``low`` defaults to ``-high``.
    ``None`` for ``high`` means unlimited. Requires ``low < high`` element-wise.
    """
    hi = np.full(size, default) if high is None else _vec(high, f"{name} upper limit", size)
    lo = -hi if low is None else _vec(low, f"{name} lower limit", size)
    if np.any(lo >= hi):
        raise ValueError(f"{name} limits need low < high element-wise, got low={lo}, high={hi}")
    return lo, hi


def _vec(value, name: str, size: int) -> np.ndarray:
    """A number (repeated ``size`` times) or a length-``size`` vector, as float64 without NaN."""
    expected = f"a number or a length-{size} vector of real numbers"
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nesting and the like
        raise TypeError(f"{name} must be {expected}, got {value!r}") from exc
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        # strings, booleans, objects: numpy would either fail with a message that does not
        # name the argument or silently turn True into 1.0
        raise TypeError(f"{name} must be {expected}, got {value!r} (dtype {arr.dtype})")
    arr = arr.astype(float)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise ValueError(f"{name} must be a number or shape ({size},), got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def noise_std(value, name: str, size: int) -> np.ndarray:
    """A non-negative standard deviation, scalar or per-dimension, as a length-``size`` vector."""
    arr = _vec(value, name, size)
    if np.any(arr < 0) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite and >= 0, got {arr}")
    return arr


def make_rng(rng=None, seed=None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from either ``rng`` or ``seed`` (not both)."""
    if rng is not None and seed is not None:
        raise ValueError("give either rng or seed, not both")
    if rng is None:
        return np.random.default_rng(seed)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _fmt(shape) -> str:
    inner = ", ".join("any" if s is None else str(s) for s in shape)
    return "(" + inner + ("," if len(shape) == 1 else "") + ")"
