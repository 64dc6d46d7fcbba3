"""Run folders: train a recipe into a folder, evaluate it and draw its figures again.

A run folder holds everything about one training run:

``config.json``
    the task, its options, the seed and the optimiser: enough to rebuild the recipe;
``controller.npz``
    the trained :class:`~hfcontrol.controller.Controller` (the best weights on the
    recipe's validation episodes);
``history.json``
    one entry per update (:data:`hfcontrol.training.HISTORY_KEYS`, and the phase);
``curve.json``
    the learning curve: the held-out figure against updates and wall time;
``metrics.json``
    the held-out metrics, the wall time and the number of updates;
``*.png``
    the task's figures and ``learning_curve.png``;
``checkpoints/``
    one checkpoint per phase of training (and per screened initialisation of the first
    phase, see :class:`~hfcontrol.recipes.Screening`), from which ``resume=True``
    continues.

:func:`train_run` is what ``hfcontrol train`` runs; :func:`evaluate_run` and
:func:`plot_run` are ``hfcontrol evaluate`` and ``hfcontrol plot``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import figures, recipes
from .controller import Controller
from .persistence import atomic_write_text
from .training import train

__all__ = ["train_run", "evaluate_run", "plot_run", "load_config", "RunError"]

CONFIG_VERSION = 1


class RunError(ValueError):
    """A run folder that cannot be used as asked (missing, incomplete, or of another run)."""


def _dump(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, default=_plain))


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def load_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The configuration of the run in ``run_dir`` (``config.json``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run folder: it has no config.json "
                       f"(make one with `hfcontrol train --out {run_dir}`)")
    config = json.loads(path.read_text())
    if config.get("version") != CONFIG_VERSION:
        raise RunError(f"{path}: configuration version {config.get('version')!r}, expected "
                       f"{CONFIG_VERSION}")
    return config


def _recipe(config: Mapping[str, Any]) -> recipes.Recipe:
    return recipes.get(config["task"], seed=config["seed"], **config["options"])


def train_run(task: str | None = None, out: str | os.PathLike = "runs/arm-reach", *,
              seed: int | None = None, optimizer: str | None = None,
              updates: int | None = None, options: Mapping[str, Any] | None = None,
              resume: bool = False,
              progress: bool = True, plots: bool = True, curve_every: int | None = None,
              checkpoint_every: int = 10, started: float | None = None) -> dict[str, Any]:
    """Train a controller with the recipe of ``task`` and write a run folder.

    Parameters
    ----------
    task : str, optional
        A name of :data:`hfcontrol.recipes.RECIPES` (default "arm-reach").
    out : path
        The run folder (created; an existing run there is overwritten unless ``resume``).
    seed : int, optional
        Seed of the recipe (default 0) (initial weights, training episodes, noise).
    optimizer : {"hf", "adam", "sgd"}, optional
        Hessian-free (the default) with the recipe's settings, or a first-order baseline.
    updates : int, optional
        Total updates (default: the recipe's for that optimiser; a curriculum is cut to
        this many, first phases first).
    options : dict, optional
        Options of the recipe function (e.g. ``{"hidden": 64, "delay": 3}``).
    resume : bool
        Continue the run in ``out`` from its checkpoints. The task, seed, optimiser,
        updates and options not given are those of that run (its ``config.json``); those
        given must agree with them.
    progress : bool
        Show progress bars.
    plots : bool
        Draw the figures.
    curve_every : int, optional
        Updates between two points of the learning curve (default: about 40 points).
    checkpoint_every : int
        Updates between checkpoints.
    started : float, optional
        When the wall clock of ``train_wall_s`` starts (a ``time.perf_counter()`` value;
        default: now). Scripts pass the time before they import hfcontrol, so that loading
        the compiled kernels counts.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    clock = time.perf_counter() if started is None else float(started)
    out = Path(out)
    given = {"task": task, "seed": seed, "optimizer": optimizer, "updates": updates,
             "options": None if options is None else dict(options)}
    config = {"version": CONFIG_VERSION, "task": "arm-reach", "seed": 0, "optimizer": "hf",
              "updates": None, "options": {}}
    if resume:
        saved = load_config(out)
        mismatched = [k for k, v in given.items() if v is not None and v != saved[k]]
        if mismatched:
            raise RunError(f"cannot resume {out}: it was started with "
                           + ", ".join(f"{k}={saved[k]!r}" for k in mismatched)
                           + ", not " + ", ".join(f"{k}={given[k]!r}" for k in mismatched))
        config.update({k: saved[k] for k in given})
    config.update({k: v for k, v in given.items() if v is not None})
    task, seed, optimizer, updates, options = (config[k] for k in given)
    recipe = recipes.get(task, seed=seed, **options)
    make_optimizer_updates = recipe.optimizer(optimizer)
    schedule = recipe.schedule(updates or make_optimizer_updates[1])
    config["recipe"] = recipe.options
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    if not resume:
        for pattern in ("phase-*.npz", "screen-*.npz"):
            for old in (out / "checkpoints").glob(pattern):
                old.unlink()
    _dump(out / "config.json", config)

    opt = make_optimizer_updates[0]
    screening = recipe.screening if recipe.screening and recipe.screening.count > 1 else None
    total = sum(p.updates for p in schedule)
    if screening is not None:
        total += (screening.count - 1) * schedule[0].updates
    every = curve_every or max(1, total // 40)
    curve_path = out / "curve.json"
    curve: dict[str, list] = {"update": [], "time": [], "heldout": []}
    if resume and curve_path.exists():
        curve = json.loads(curve_path.read_text())
    setup = time.perf_counter() - clock
    initial_W = recipe.loop.W.copy()
    history: dict[str, list] = {}
    done, elapsed = 0, 0.0

    def run(phase, path, optimizer, evaluate, labels):
        """Train one phase; returns the TrainResult and the update count (over the whole
        run) and damping of its best weights (the count before the phase, and NaN, when
        the phase's starting weights stayed the best)."""
        nonlocal done, elapsed
        base, base_time = done, elapsed

        def record(state):
            n = base + state.update + 1
            if n % every and n != total:
                return
            while curve["update"] and curve["update"][-1] >= n:  # redone after a resume
                for values in curve.values():
                    values.pop()
            curve["update"].append(n)
            curve["time"].append(setup + base_time + state.elapsed)
            curve["heldout"].append(recipe.heldout_curve())
            _dump(curve_path, curve)

        result = train(phase.loop, optimizer, phase.batches, updates=phase.updates,
                       evaluate=evaluate, callbacks=[record],
                       checkpoint=path, checkpoint_every=checkpoint_every,
                       resume=resume and path.exists(), rngs=[recipe.rng],
                       progress=progress, restore_best=False)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(
                [base + v for v in values] if key == "epoch" else values)
        for key, value in labels.items():
            history.setdefault(key, []).extend([value] * len(result.history["epoch"]))
        errs = result.history["test_err"]
        # the first update reaching the best error (the loop keeps the first of equals)
        at = next((k for k, e in enumerate(errs) if e == result.best_error), None)
        kept = (base, np.nan) if at is None else (base + at + 1, result.history["damping"][at])
        done += phase.updates
        elapsed = base_time + (result.history["time"][-1] if result.history["time"] else 0.0)
        return result, kept

    best_W, best_score, update_kept = initial_W, np.inf, 0
    extra: dict[str, Any] = {}
    phases = list(enumerate(schedule))
    if screening is not None:
        _, first = phases.pop(0)
        candidates = []
        for j in range(screening.count):
            screening.init(j)
            result, (n, damping) = run(first, out / "checkpoints" / f"screen-{j}.npz",
                                       recipe.optimizer(optimizer)[0], recipe.screening_score,
                                       {"phase": 0, "candidate": j})
            candidates.append({"candidate": j, "score": result.best_error, "update_kept": n,
                               "W": result.best_W.copy(), "damping": damping,
                               "rng": recipe.rng.bit_generator.state})
        won = min(candidates, key=lambda c: (c["score"], c["candidate"]))
        recipe.loop.W = won["W"]
        recipe.rng.bit_generator.state = won["rng"]
        # a new optimiser (nothing of the other candidates' runs carries over), at the
        # damping the winner had at its kept weights
        opt = recipe.optimizer(optimizer)[0]
        if np.isfinite(won["damping"]) and hasattr(opt, "damping"):
            opt.damping = float(won["damping"])
        best_W, update_kept = won["W"], won["update_kept"]
        extra = {"candidate_kept": won["candidate"],
                 "screening": [{k: c[k] for k in ("candidate", "score", "update_kept")}
                               for c in candidates]}
        if not phases:  # the schedule was cut to its first phase
            best_score = recipe.validation_score()
    for i, phase in phases:
        labels = {"phase": i} if screening is None else {"phase": i,
                                                          "candidate": extra["candidate_kept"]}
        result, (n, _) = run(phase, out / "checkpoints" / f"phase-{i}.npz", opt,
                             recipe.validation_score, labels)
        if result.best_error < best_score:
            best_score, best_W, update_kept = result.best_error, result.best_W.copy(), n
    train_wall = setup + elapsed
    # the controller is saved and read back (its own loop); the recipe's loop gets its
    # initial weights back, for the before/after figures
    recipe.loop.W = best_W
    Controller(recipe.loop).save(out / "controller.npz")
    recipe.loop.W = initial_W
    controller = Controller.load(out / "controller.npz")
    _dump(out / "history.json", history)
    metrics = recipe.metrics(controller)
    metrics.update({"task": task, "optimizer": optimizer, "seed": seed,
                    "updates": len(history.get("epoch", [])), "train_wall_s": train_wall,
                    "validation_score": best_score, "update_kept": update_kept,
                    "headline": recipe.headline, **extra})
    metrics["summary"] = _summary(recipe, metrics)
    metrics["learning_curve"] = curve
    _dump(out / "metrics.json", metrics)
    if plots:
        _plot(recipe, controller, out, curve, optimizer)
    return metrics


def _summary(recipe: recipes.Recipe, metrics: Mapping[str, Any]) -> str:
    line = f"{recipe.name}: {recipe.describe(metrics)}"
    if "updates" in metrics and "train_wall_s" in metrics:
        line += f" after {metrics['updates']} updates, {metrics['train_wall_s']:.1f} s"
    return line


def _plot(recipe: recipes.Recipe, controller: Controller, out: Path,
          curve: Mapping[str, list], optimizer: str) -> list[Path]:
    paths = recipe.figures(controller, out)
    if curve.get("update"):
        path = out / "learning_curve.png"
        figures.plot_learning_curves({_OPTIMIZER_LABELS.get(optimizer, optimizer): curve}, path,
                                     ylabel=recipe.curve_label)
        paths.append(path)
    return paths


_OPTIMIZER_LABELS = {"hf": "Hessian-free, exact closed-loop curvature", "adam": "Adam",
                     "sgd": "SGD"}


def _controller(run_dir: Path) -> Controller:
    path = run_dir / "controller.npz"
    if not path.is_file():
        raise RunError(f"{run_dir} has no controller.npz: its training has not finished "
                       f"(continue it with `hfcontrol train --resume --out {run_dir}`)")
    return Controller.load(path)


def evaluate_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Evaluate the controller of a run folder on its recipe's held-out episodes.

    Returns the held-out metrics; ``metrics.json`` is rewritten with them (its training
    figures kept).
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    controller = _controller(run_dir)
    recipe = _recipe(config)
    metrics = recipe.metrics(controller)
    metrics["summary"] = _summary(recipe, metrics)
    path = run_dir / "metrics.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved.update(metrics)
    _dump(path, saved)
    return metrics


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Draw the figures of a run folder again (from its controller and learning curve)."""
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    curve_path = run_dir / "curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.exists() else {}
    return _plot(_recipe(config), _controller(run_dir), run_dir, curve, config["optimizer"])
