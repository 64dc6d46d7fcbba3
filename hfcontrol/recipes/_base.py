"""What a training recipe is: the loop, its phases, its held-out episodes, its evaluation
and its figures."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import optimizers as opt
from ..closed_loop import ClosedLoop

if TYPE_CHECKING:  # pragma: no cover
    from ..controller import Controller

__all__ = ["Phase", "Recipe", "Screening", "check_seed"]


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or a ValueError naming it."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


@dataclass
class Phase:
    """A stretch of training on one loop (e.g. one horizon of a curriculum).

    ``loop`` shares its network with the recipe's loop; ``batches(k)`` returns the training
    episodes of update ``k`` of this phase, as ``loop.cache_minibatch`` takes them.
    """

    loop: ClosedLoop
    batches: Callable[[int], tuple]
    updates: int
    label: str = ""


@dataclass
class Screening:
    """The first phase of training run from several initialisations; the best goes on.

    Descent from a small random network may settle in a poor basin (the pendulum's
    do-nothing policy); screening a few initialisations on the first, cheap phase and
    continuing with the best is a cheap restart strategy. :func:`hfcontrol.runs.train_run`
    runs the first phase of the schedule once per candidate, each with a new optimiser
    and its own checkpoint, and keeps each candidate's best weights by ``score``; the
    candidate with the lowest best score goes on to the next phases (with a new optimiser
    at the damping of its kept update, when the optimiser has one).
    """

    #: how many initialisations
    count: int
    #: ``init(j)``: put candidate ``j``'s initial weights into the recipe's network and
    #: reseed the recipe's generator for it (``init(0)`` gives the recipe's own start)
    init: Callable[[int], None]
    #: ``score() -> float``, lower is better, at the current weights: the criterion that
    #: ranks the candidates (default: the recipe's :meth:`Recipe.validation_score`)
    score: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int | np.integer) \
                or self.count < 1:
            raise ValueError(f"screening count must be a positive integer, got {self.count!r}")
        if not callable(self.init):
            raise TypeError(f"screening init must be a callable init(j), got {self.init!r}")


#: First-order optimisers any recipe can be trained with (``hfcontrol train --optimizer``);
#: a recipe may give its own settings in :attr:`Recipe.optimizers`.
def _adam() -> opt.Optimizer:
    return opt.Adam(l_rate=1e-3, clip_norm=1.0)


def _sgd() -> opt.Optimizer:
    return opt.SGD(l_rate=0.1)


@dataclass
class Recipe:
    """Everything needed to train and evaluate a controller on one task.

    The first fields describe a single phase of training (``batches``, ``updates``,
    ``curvature``); a recipe with a curriculum lists its :class:`Phase` objects in
    ``phases`` instead (see :meth:`schedule`).
    """

    name: str
    #: the loop that is evaluated and saved; its net is the controller
    loop: ClosedLoop
    #: ``make_optimizer() -> Optimizer``: the Hessian-free settings (a new one per run)
    make_optimizer: Callable[[], opt.Optimizer]
    #: ``batches(k) -> (TaskBatch,)``: the training episodes of update ``k`` (fresh ones
    #: each update, drawn from ``rng``)
    batches: Callable[[int], tuple]
    #: held-out episodes, never used in training
    heldout: Any
    updates: int
    rng: np.random.Generator
    #: the curvature minibatch (see :meth:`ClosedLoop.cache_minibatch`), or None
    curvature: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: a curriculum; None: one phase of ``updates`` updates of ``batches`` on ``loop``
    phases: list[Phase] | None = None
    #: ``score() -> float``: the model-selection criterion, lower is better, measured on
    #: episodes that are neither trained on nor held out (default: the loop's mean cost on
    #: ``validation``); the weights kept are those with the best score
    score: Callable[[], float] | None = None
    validation: Any = None
    #: ``curve() -> float``: the held-out figure of the learning curve (default: mean cost)
    curve: Callable[[], float] | None = None
    curve_label: str = "held-out cost"
    #: the metric that sums a run up (sweeps plot it), lower is better
    headline: str = "heldout_cost"
    #: ``evaluate(controller) -> dict``: the held-out metrics of a trained controller
    evaluate: Callable[[Controller], dict[str, Any]] | None = None
    #: ``summary(metrics) -> str``: a one-line summary of those metrics
    summary: Callable[[Mapping[str, Any]], str] | None = None
    #: ``plot(controller, out) -> [paths]``: the task's figures (the recipe's ``loop`` still
    #: holds the untrained weights, for before/after figures)
    plot: Callable[[Controller, Path], list[Path]] | None = None
    #: optimiser name -> (factory, default updates); "hf" is ``make_optimizer``
    optimizers: dict[str, tuple[Callable[[], opt.Optimizer], int]] = field(default_factory=dict)
    #: the options the recipe was built with (recorded in a run's configuration)
    options: dict[str, Any] = field(default_factory=dict)
    #: the first phase run from several initialisations (None: from the loop's weights)
    screening: Screening | None = None

    def __repr__(self) -> str:
        return (f"Recipe({self.name!r}, {self.loop!r}, updates={self.updates}, "
                f"phases={len(self.schedule())}, options={self.options!r})")

    def train_batches(self, k: int) -> tuple:
        """``batches(k)`` with the curvature minibatch, as ``cache_minibatch`` takes them."""
        return (*self.batches(k), self.curvature)

    def schedule(self, updates: int | None = None) -> list[Phase]:
        """The phases of training; with ``updates``, cut to that many updates in all (the
        first phases first)."""
        phases = self.phases or [Phase(self.loop, self.train_batches, self.updates)]
        if updates is None:
            return list(phases)
        if isinstance(updates, bool) or not isinstance(updates, int | np.integer) or updates < 1:
            raise ValueError(f"updates must be a positive integer, got {updates!r}")
        cut, left = [], int(updates)
        for phase in phases:
            if left == 0:
                break
            n = min(phase.updates, left)
            cut.append(Phase(phase.loop, phase.batches, n, phase.label))
            left -= n
        if left:  # more updates than the schedule has: the last phase runs longer
            last = cut[-1]
            cut[-1] = Phase(last.loop, last.batches, last.updates + left, last.label)
        return cut

    def optimizer(self, name: str = "hf") -> tuple[opt.Optimizer, int]:
        """A new optimiser called ``name`` ("hf", "adam" or "sgd") and its default number
        of updates for this recipe."""
        choices = {"hf": (self.make_optimizer, self.updates),
                   "adam": (_adam, 20 * self.updates), "sgd": (_sgd, 20 * self.updates)}
        choices.update(self.optimizers)
        if name not in choices:
            raise ValueError(f"optimizer must be one of {', '.join(sorted(choices))}, "
                             f"got {name!r}")
        factory, updates = choices[name]
        return factory(), int(updates)

    def screening_score(self) -> float:
        """The criterion that ranks screened initialisations (:attr:`screening`)."""
        if self.screening is not None and self.screening.score is not None:
            return float(self.screening.score())
        return self.validation_score()

    def validation_score(self) -> float:
        """The model-selection criterion (:attr:`score`)."""
        if self.score is not None:
            return float(self.score())
        if self.validation is None:
            raise ValueError(f"recipe {self.name!r} has neither score nor validation")
        return float(np.mean(self.loop.rollout(self.validation, noise=False).cost))

    def heldout_curve(self) -> float:
        """The learning-curve figure (:attr:`curve`) at the current weights."""
        if self.curve is not None:
            return float(self.curve())
        return float(np.mean(self.loop.rollout(self.heldout, noise=False).cost))

    def metrics(self, controller: Controller) -> dict[str, Any]:
        """The held-out metrics of ``controller`` (:attr:`evaluate`; default: mean cost)."""
        if self.evaluate is not None:
            return dict(self.evaluate(controller))
        return {"heldout_cost": float(np.mean(controller.rollout(self.heldout).cost))}

    def describe(self, metrics: Mapping[str, Any]) -> str:
        """A one-line summary of ``metrics``."""
        if self.summary is not None:
            return self.summary(metrics)
        return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                         if isinstance(v, float | int) and not isinstance(v, bool))

    def figures(self, controller: Controller, out: str | os.PathLike) -> list[Path]:
        """Draw the task's figures of ``controller`` into ``out``."""
        return list(self.plot(controller, Path(out))) if self.plot is not None else []
