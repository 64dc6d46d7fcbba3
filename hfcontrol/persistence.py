"""Saving and loading: ``.npz`` files of arrays plus a JSON configuration, never pickle.

One module for every saved thing, with a registry of the classes that can be saved:
a class registers itself with :func:`register` and provides

* ``_config() -> dict``: its constructor arguments, JSON-serialisable;
* ``_arrays() -> dict[str, ndarray]``: its arrays (weights, mask, ...);
* ``_from_saved(config, arrays, **overrides)`` (a classmethod): the inverse.

:func:`save` writes ``{"config": json, **arrays}`` with the class name in the
configuration, and :func:`load` rebuilds an instance of the registered class of that
name. Writes are atomic (a temporary file renamed over the target), so an interrupted
save never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = ["register", "save", "load", "atomic_savez", "atomic_write_text"]

T = TypeVar("T", bound=type)

_REGISTRY: dict[str, type] = {}


def register(cls: T) -> T:
    """Class decorator: make ``cls`` loadable by :func:`load` under its class name."""
    for method in ("_config", "_arrays", "_from_saved"):
        if not hasattr(cls, method):
            raise TypeError(f"register: {cls.__name__} must define {method}() to be saved")
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"register: another class named {name!r} is already registered "
                         f"({_REGISTRY[name].__module__}.{name})")
    _REGISTRY[name] = cls
    return cls


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` (an instance of a registered class) to ``path`` atomically."""
    cls = type(obj)
    if _REGISTRY.get(cls.__name__) is not cls:
        raise TypeError(f"cannot save a {cls.__name__}: the class is not registered with "
                        f"hfcontrol.persistence.register")
    config = dict(obj._config())
    config["class"] = cls.__name__
    arrays = {k: v for k, v in obj._arrays().items() if v is not None}
    if "config" in arrays:
        raise ValueError("an array may not be called 'config'")
    atomic_savez(path, config=np.array(json.dumps(config)), **arrays)


def load(path: str | os.PathLike, expected: type | None = None, **overrides: Any) -> Any:
    """Rebuild the object saved in ``path`` by :func:`save`.

    Parameters
    ----------
    path : path
        A file written by :func:`save`.
    expected : type, optional
        Raise TypeError unless the saved class is this class or a subclass of it.
    **overrides
        Constructor arguments that replace the saved ones.
    """
    with np.load(path, allow_pickle=False) as data:
        if "config" not in data:
            raise ValueError(f"{path} was not written by hfcontrol (no 'config' entry)")
        config = json.loads(str(data["config"]))
        arrays = {k: data[k].copy() for k in data.files if k != "config"}
    name = config.pop("class", None)
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"{path} holds a {name!r}, which is not a registered class (known: "
                         f"{sorted(_REGISTRY)}); import the module that defines it first")
    if expected is not None and not issubclass(cls, expected):
        raise TypeError(f"{path} holds a {name}, not a {expected.__name__}")
    return cls._from_saved(config, arrays, **overrides)


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
