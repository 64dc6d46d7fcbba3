"""Training recipes: for each task, the plant, the task, the network, the optimiser
settings, the minibatches, the held-out episodes, the metrics and the figures that the
command line (``hfcontrol train TASK``), :mod:`hfcontrol.runs` and the experiments use.

A recipe is a function ``recipe(seed=0, **options) -> Recipe``; :data:`RECIPES` lists them
by task name. Held-out episodes are built by hand (``TaskBatch(x0, targets)``) from grids
or seeds that training, which draws its episodes from the task at random, never uses.

Adding a task: write its recipe function in a module here (one per family of plants) and
add it to :data:`RECIPES`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._base import Phase, Recipe, Screening, check_seed
from .arm import arm3_reach, arm_reach
from .cartpole import cartpole_balance
from .linear import linear_demo
from .muscle import muscle_reach
from .pendulum import pendulum_swingup

__all__ = ["Phase", "Recipe", "Screening", "RECIPES", "get", "describe", "options_of",
           "check_seed", "arm_reach", "arm3_reach", "cartpole_balance", "linear_demo",
           "muscle_reach", "pendulum_swingup"]

RECIPES: dict[str, Callable[..., Recipe]] = {
    "arm-reach": arm_reach,
    "arm3-reach": arm3_reach,
    "cartpole-balance": cartpole_balance,
    "linear-demo": linear_demo,
    "muscle-reach": muscle_reach,
    "pendulum-swingup": pendulum_swingup,
}


def get(name: str, **options: Any) -> Recipe:
    """The recipe called ``name`` (see :data:`RECIPES`), built with ``options``."""
    if name not in RECIPES:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(RECIPES))}")
    known = options_of(name)
    unknown = sorted(set(options) - set(known) - {"seed"})
    if unknown:
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))} for task {name!r}; its options: "
                         f"{', '.join(known)}")
    return RECIPES[name](**options)


def options_of(name: str) -> list[str]:
    """The options of the recipe ``name`` (its keyword arguments but the seed)."""
    signature = inspect.signature(RECIPES[name])
    return [p.name for p in signature.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY]


def describe(name: str) -> str:
    """The first sentence of the recipe's docstring."""
    if name not in RECIPES:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(RECIPES))}")
    paragraph = " ".join((RECIPES[name].__doc__ or "").strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".") + "."
