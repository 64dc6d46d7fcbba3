"""Argument checks shared by the networks and optimisers."""

from __future__ import annotations

import numpy as np


def as_rng(rng: np.random.Generator | np.random.RandomState | int | None
           ) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, a legacy RandomState, a seed or None.

    Parameters
    ----------
    rng : numpy.random.Generator, numpy.random.RandomState, int or None
        A Generator is used as it is. A ``RandomState`` (what the ``hessianfree``
        reference package takes, e.g. ``np.random.RandomState(0)``) is wrapped in a
        Generator on the same bit generator: the two share one stream, so the
        RandomState advances as the network draws from it and the same seed gives
        the same network. An int (or NumPy integer) seeds a new Generator; None
        seeds one from fresh OS entropy.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        For anything else (a bool, a float, a string, ...).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        # RandomState keeps its bit generator as `_bit_generator` (numpy >= 1.17); a
        # Generator built on it draws from, and advances, the same state
        return np.random.Generator(rng._bit_generator)
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, a numpy.random.RandomState, an int "
                    f"seed or None, got {rng!r}")


def as_dtype(dtype) -> np.dtype:
    """Accept only float32 and float64."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_array(value, name: str, ndim: int, units: int | None, dtype: np.dtype,
                allow_nan: bool = False, batch: int | None = None,
                time: int | None = None) -> np.ndarray:
    """Return ``value`` as a C-contiguous array of ``dtype`` after checking its shape and values.

    Parameters
    ----------
    value : array_like
        The array to check.
    name : str
        Argument name used in error messages.
    ndim : int
        Required number of dimensions (2 for ``[batch, units]``, 3 for ``[batch, time, units]``).
    units, batch, time : int, optional
        Required sizes of the last, first and (for ``ndim == 3``) second axes.
    dtype : numpy.dtype
        The dtype to convert to.
    allow_nan : bool
        Whether NaN entries are allowed (targets: "no error here"). Infinities never are.
    """
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy's own message is kept
            raise TypeError(f"{name} must be an array, got {type(value).__name__}") from exc
    if value.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    layout = "[batch, units]" if ndim == 2 else "[batch, time, units]"
    if value.ndim != ndim:
        raise ValueError(f"{name} must have shape {layout} ({ndim} dimensions), "
                         f"got shape {value.shape}")
    if units is not None and value.shape[-1] != units:
        raise ValueError(f"{name} must have {units} units on its last axis to match the layer, "
                         f"got shape {value.shape}")
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"{name} must have batch size {batch} to match the inputs, "
                         f"got shape {value.shape}")
    if time is not None and value.shape[1] != time:
        raise ValueError(f"{name} must have {time} time steps to match the inputs, "
                         f"got shape {value.shape}")
    if value.shape[0] == 0 or (ndim == 3 and value.shape[1] == 0):
        raise ValueError(f"{name} must not be empty, got shape {value.shape}")
    value = np.ascontiguousarray(value, dtype=dtype)
    if allow_nan:
        if np.isinf(value).any():
            raise ValueError(f"{name} contains infinite values (NaN marks 'no target', inf is "
                             f"not allowed)")
    elif not np.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def check_vector(value, name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """A finite 1-D parameter vector of exactly ``size`` entries and dtype ``dtype``."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of dtype {dtype}, got "
                        f"{type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the network's dtype), got {value.dtype}")
    if value.shape != (size,):
        raise ValueError(f"{name} must be a vector of length {size} (the number of parameters), "
                         f"got shape {value.shape}")
    return np.ascontiguousarray(value)


BACKENDS = ("auto", "numba", "numpy")


def check_choice(value, name: str, choices: tuple) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got "
                         f"{value!r}")
    return value
