"""Sweeps: a grid of tasks x optimisers x recipe options x seeds, run as Ray tasks.

A sweep is described by a TOML file::

    task = "arm-reach"          # or a list of tasks
    optimizer = ["hf", "adam"]  # optional, default "hf"; a name or a list
    seeds = [0, 1, 2]           # optional, default [0]
    updates = 60                # optional: updates of every trial (default: the recipe's)
    out = "runs/sweep"          # optional: the sweep folder

    [options]                   # optional: recipe options common to every trial
    batch = 32

    [grid]                      # optional: recipe options to vary, one list each
    hidden = [16, 32]
    delay = [0, 3]

Every combination is one trial, run as a Ray task (:func:`ray.remote`, one CPU each) that
trains a run folder ``OUT/trials/NAME`` with :func:`hfcontrol.runs.train_run`. Ray runs
them on this machine by default (``ray.init()``) or on a cluster with ``address``. A trial
that fails is recorded with its error; the others go on. The sweep writes
``OUT/summary.csv`` and ``OUT/summary.json`` (one row per trial: its settings, status,
error and metrics) and ``OUT/summary.png`` (each trial's headline metric, seeds as dots).
Ray is an optional extra: ``pip install -e ".[sweep]"``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import recipes
from .persistence import atomic_write_text

__all__ = ["load_sweep", "trials", "run_trial", "run_sweep"]

_KEYS = {"task", "optimizer", "seeds", "updates", "out", "options", "grid"}


def load_sweep(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a sweep file; returns its settings with defaults filled in."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} does not exist")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; expected "
                         f"{', '.join(sorted(_KEYS))}")
    if "task" not in spec:
        raise ValueError(f"{path}: 'task' is required (a task name or a list of them)")
    tasks = _names(spec["task"], "task", path)
    for task in tasks:
        if task not in recipes.RECIPES:
            raise ValueError(f"{path}: unknown task {task!r}; known: "
                             f"{', '.join(sorted(recipes.RECIPES))}")
    optimizers = _names(spec.get("optimizer", "hf"), "optimizer", path)
    for name in optimizers:
        if name not in ("hf", "adam", "sgd"):
            raise ValueError(f"{path}: optimizer must be hf, adam or sgd, got {name!r}")
    seeds = spec.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"{path}: seeds must be a non-empty list of non-negative integers, "
                         f"got {seeds!r}")
    updates = spec.get("updates")
    if updates is not None and (not isinstance(updates, int) or isinstance(updates, bool)
                                or updates < 1):
        raise ValueError(f"{path}: updates must be a positive integer, got {updates!r}")
    options, grid = spec.get("options", {}), spec.get("grid", {})
    for name, table in (("options", options), ("grid", grid)):
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [{name}] must be a table of recipe options")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: grid.{key} must be a non-empty list of values, "
                             f"got {values!r}")
    for task in tasks:
        known = set(recipes.options_of(task))
        bad = sorted((set(options) | set(grid)) - known)
        if bad:
            raise ValueError(f"{path}: task {task!r} has no option(s) {', '.join(bad)}; its "
                             f"options: {', '.join(sorted(known))}")
    return {"task": tasks, "optimizer": optimizers, "seeds": seeds, "updates": updates,
            "out": spec.get("out", "runs/sweep"), "options": options, "grid": grid}


def _names(value, key: str, path: Path) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{path}: {key} must be a name or a non-empty list of names, "
                         f"got {value!r}")
    return values


def trials(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The trials of a sweep (:func:`load_sweep`): one dict per combination."""
    keys = list(spec["grid"])
    out = []
    for task, optimizer, values, seed in itertools.product(
            spec["task"], spec["optimizer"],
            itertools.product(*(spec["grid"][k] for k in keys)), spec["seeds"]):
        varied = dict(zip(keys, values, strict=True))
        name = "-".join([task, optimizer, *(f"{k}{_short(v)}" for k, v in varied.items()),
                         f"seed{seed}"])
        out.append({"name": name, "task": task, "optimizer": optimizer, "seed": seed,
                    "updates": spec["updates"], "options": {**spec["options"], **varied},
                    "varied": varied})
    return out


def _short(value) -> str:
    return str(value).replace("/", "_").replace(" ", "")


def run_trial(trial: Mapping[str, Any], folder: str) -> dict[str, Any]:
    """Train one trial into ``folder``; never raises: a failure is returned as a row with
    ``status`` "failed" and the error."""
    from . import runs

    start = time.perf_counter()
    row = {"trial": trial["name"], "task": trial["task"], "optimizer": trial["optimizer"],
           "seed": trial["seed"], **trial["varied"], "folder": folder}
    try:
        metrics = runs.train_run(trial["task"], folder, seed=trial["seed"],
                                 optimizer=trial["optimizer"], updates=trial["updates"],
                                 options=trial["options"] or None, progress=False)
    except Exception as exc:  # recorded, so that one failure does not stop the sweep
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(), wall_s=time.perf_counter() - start)
        return row
    row.update(status="ok", error="", wall_s=time.perf_counter() - start,
               headline=metrics.get("headline"))
    row.update({k: v for k, v in metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)})
    return row


def run_sweep(config: str | os.PathLike, *, out: str | os.PathLike | None = None,
              address: str | None = None, num_cpus: int | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run the sweep described by ``config`` on Ray; returns the summary (``rows`` and a
    one-line ``line``)."""
    spec = load_sweep(config)
    try:
        import ray
    except ImportError:
        raise ImportError("hfcontrol sweep needs Ray: pip install -e \".[sweep]\"") from None
    from tqdm.auto import tqdm

    out = Path(out or spec["out"]).resolve()
    (out / "trials").mkdir(parents=True, exist_ok=True)
    todo = trials(spec)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=None if address else num_cpus,
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_trial)
        pending = {remote.remote(t, str(out / "trials" / t["name"])): t for t in todo}
        rows = []
        with tqdm(total=len(todo), disable=not progress, desc="sweep", unit="trial") as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                trial = pending.pop(done[0])
                try:
                    rows.append(ray.get(done[0]))
                except Exception as exc:  # the worker itself died
                    rows.append({"trial": trial["name"], "task": trial["task"],
                                 "optimizer": trial["optimizer"], "seed": trial["seed"],
                                 **trial["varied"], "status": "failed",
                                 "error": f"{type(exc).__name__}: {exc}"})
                bar.update(1)
    finally:
        if started_here:
            ray.shutdown()
    order = {t["name"]: i for i, t in enumerate(todo)}
    rows.sort(key=lambda r: order[r["trial"]])
    _write_summary(out, rows)
    failed = sum(r["status"] != "ok" for r in rows)
    line = (f"sweep: {len(rows) - failed} of {len(rows)} trials done"
            + (f", {failed} failed (see summary.csv)" if failed else "") + f"; wrote {out}/")
    return {"rows": rows, "line": line, "out": str(out)}


def _write_summary(out: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k != "traceback"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "summary.csv", text.getvalue())
    atomic_write_text(out / "summary.json", json.dumps(rows, indent=2, default=str))
    _plot_summary(out / "summary.png", rows)


def _plot_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    """Each trial setting's headline metric (log scale), one dot per seed; failed trials
    as crosses at the bottom."""
    from .figures import _figure, _save

    groups: dict[str, list[tuple[float, bool]]] = {}
    metric = next((r["headline"] for r in rows if r.get("headline")), None)
    for r in rows:
        label = r["trial"].rsplit("-seed", 1)[0]
        value = r.get(metric, np.nan) if r["status"] == "ok" and metric else np.nan
        groups.setdefault(label, []).append((float(value), r["status"] == "ok"))
    fig = _figure(max(4.0, 0.9 * len(groups) + 2), 4.0)
    ax = fig.subplots()
    finite = [v for g in groups.values() for v, ok in g if ok and np.isfinite(v) and v > 0]
    floor = min(finite) / 2 if finite else 1.0
    for i, (_label, values) in enumerate(groups.items()):
        for v, ok in values:
            if ok and np.isfinite(v) and v > 0:
                ax.plot(i, v, "o", color="C0", alpha=0.8)
            else:
                ax.plot(i, floor, "x", color="C3")
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(list(groups), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric or "metric")
    _save(fig, path, "Sweep: one dot per seed (x: failed)")
