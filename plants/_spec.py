"""Plants and tasks as JSON: :func:`to_spec` and :func:`from_spec`.

A spec is ``{"class": name, "kwargs": {...}}`` with the constructor arguments the object
was built with (arrays as lists, a task's plant as a nested spec, ``CostWeights`` as a
dict). Random generators are not saved: a rebuilt plant gets a fresh one. Only the
built-in plants and tasks have specs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import tasks
from ._base import PlantBase
from .arms import ThreeLinkArm, TwoLinkArm
from .cartpole import CartPole
from .linear import LinearPlant
from .muscle_arm import MuscleArm
from .pendulum import Pendulum
from .point_mass import PointMass

__all__ = ["to_spec", "from_spec"]

_CLASSES = {cls.__name__: cls for cls in (
    Pendulum, CartPole, TwoLinkArm, ThreeLinkArm, LinearPlant, MuscleArm, PointMass,
    tasks.Reach, tasks.DelayedReach, tasks.Hold, tasks.Track, tasks.SwingUp, tasks.PendulumV1,
    tasks.Balance, tasks.StateTarget)}
_NOT_SAVED = ("rng", "seed")


def _encode(value: Any, name: str) -> Any:
    if isinstance(value, PlantBase | tasks.Task):
        return to_spec(value)
    if isinstance(value, tasks.CostWeights):
        return {"CostWeights": {k: _encode(v, name) for k, v in
                                dataclasses.asdict(value).items()}}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_encode(v, name) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot describe argument {name!r} ({type(value).__name__}) as JSON")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"class", "kwargs"}:
            return from_spec(value)
        if set(value) == {"CostWeights"}:
            return tasks.CostWeights(**value["CostWeights"])
    return value


def to_spec(obj: Any) -> dict[str, Any]:
    """The JSON-serialisable spec of a built-in plant or task (see the module docstring)."""
    name = type(obj).__name__
    if _CLASSES.get(name) is not type(obj) or not hasattr(obj, "_init_kwargs"):
        raise TypeError(f"only built-in plants and tasks have specs ({sorted(_CLASSES)}), "
                        f"got {name}")
    kwargs = {k: _encode(v, k) for k, v in obj._init_kwargs.items()
              if k not in _NOT_SAVED and k != "kwargs"}
    return {"class": name, "kwargs": kwargs}


def from_spec(spec: dict[str, Any]) -> Any:
    """Rebuild a plant or task from :func:`to_spec`'s output."""
    if not isinstance(spec, dict) or set(spec) != {"class", "kwargs"}:
        raise TypeError(f"spec must be a dict with 'class' and 'kwargs', got {spec!r}")
    cls = _CLASSES.get(spec["class"])
    if cls is None:
        raise ValueError(f"unknown class {spec['class']!r} in spec; known: {sorted(_CLASSES)}")
    return cls(**{k: _decode(v) for k, v in spec["kwargs"].items()})
