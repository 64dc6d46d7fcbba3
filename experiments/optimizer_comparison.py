"""Hessian-free against Adam and SGD on arm reaching, for the same wall-clock budget.

Usage::

    python experiments/optimizer_comparison.py --out DIR [--seeds 3] [--budget SECONDS]
        [--quick] [--methods hf-exact,hf-data,adam,sgd] [--adam-lr 3e-3] [--sgd-lr 1]
        [--first-seed 0]

The task is ``hfcontrol.recipes.arm_reach`` (two-link arm, 0.5 s reaches to targets drawn
anew every update within 12 cm of the start, a 32-unit RNN). The methods:

* ``hf-exact``: Hessian-free with exact Gauss-Newton curvature through the closed loop
  (the recipe's optimiser and batch of 64);
* ``hf-data``: the same with ``feedback="data"`` (the reference package's semantics: the
  fed-back observation is treated as data in the gradient and the curvature);
* ``adam``: Adam with gradient-norm clipping at 1.0 and batches of 32, as MotorNet trains
  (its tutorials: ``Adam(clipnorm=1.)`` at Keras' default rate 1e-3, batches of 32); the
  rate here is ``--adam-lr``;
* ``sgd``: plain gradient descent, batches of 32, rate ``--sgd-lr``.

The two rates were tuned on seed 100 (not one of the compared seeds) with one 60 s run
each, by the validation batch's final hand error (never the held-out set), on the
shared 2-core machine (load average 8-10): Adam 1e-3 / 3e-3 / 1e-2 reached 1 cm after
9.4 / 4.6 / 3.5 s and 5 mm after 13.5 / 6.6 / 7.2 s, ending at 1.9 / 0.7 / 4.5 mm (1e-2
is noisy): 3e-3. SGD 0.01 / 0.03 / 0.1 / 0.3 / 1 / 3 / 10 ended at 52 / 40 / 18 / 11 /
7.6 mm / diverged / diverged: 1.

For each seed every method starts from the same initial weights (the recipe draws them
from the seed; the script checks that they are equal) and trains for the same
wall-clock budget, not the same number of updates. The held-out final hand error (mean
over the recipe's 32 hand-built targets that training never sees) is measured at
updates spaced by 3 % of the elapsed training time (at least ``budget / 1000``), and the
time spent measuring it is left out of the clock. Before the timed runs each method
trains one update on a throw-away copy, so that loading the compiled kernels is not
charged to whichever method runs first; the order of the methods turns with the seed. A
validation batch drawn from the task (seed ``10000 + seed``) is measured alongside: it,
not the held-out set, is what to tune on.

Writes to ``DIR``: ``metrics.json`` (settings, the machine's load, every curve, the time
and update at which each run first reaches 1 cm and 5 mm held-out error, per-method
medians) and ``optimizer_comparison.png`` (held-out error against updates and against
training wall time, one colour per method, one thin line per seed, log-log). Prints a
table of the times to 1 cm and 5 mm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

METHODS = {
    "hf-exact": "Hessian-free, exact closed-loop curvature",
    "hf-data": 'Hessian-free, feedback="data"',
    "adam": "Adam",
    "sgd": "SGD",
}
THRESHOLDS = {"1cm": 0.01, "5mm": 0.005}
#: the measurements are spaced by this fraction of the elapsed training time ...
EVAL_RELATIVE_GAP = 0.03
#: ... and by at least this fraction of the budget
EVAL_MIN_GAP = 1e-3


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed")
    parser.add_argument("--budget", type=float, default=None,
                        help="training wall time per method and seed, s (default 60; "
                             "1 with --quick)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--adam-lr", type=float, default=3e-3, help="Adam's rate")
    parser.add_argument("--adam-clip", type=float, default=1.0,
                        help="Adam's gradient-norm clipping (0: none)")
    parser.add_argument("--sgd-lr", type=float, default=1.0, help="SGD's rate")
    parser.add_argument("--quick", action="store_true", help="1 s per run (for the tests)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be >= 1 and --first-seed >= 0")
    if args.budget is not None and not (np.isfinite(args.budget) and args.budget > 0):
        parser.error(f"--budget must be a number of seconds > 0, got {args.budget}")
    for name in ("adam_lr", "sgd_lr"):
        value = getattr(args, name)
        if not (np.isfinite(value) and value > 0):
            parser.error(f"--{name.replace('_', '-')} must be a number > 0, got {value}")
    if not (np.isfinite(args.adam_clip) and args.adam_clip >= 0):
        parser.error(f"--adam-clip must be a number >= 0, got {args.adam_clip}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown or len(set(methods)) != len(methods):
        parser.error(f"--methods must be distinct names among {', '.join(METHODS)}, got "
                     f"{args.methods!r}")
    args.methods = methods
    if args.budget is None:
        args.budget = 1.0 if args.quick else 60.0
    return args


def _recipe(method: str, seed: int, args):
    """The recipe and a new optimiser for ``method``."""
    import hfcontrol as hf
    from hfcontrol import recipes

    if method in ("hf-exact", "hf-data"):
        recipe = recipes.arm_reach(seed, feedback="exact" if method == "hf-exact" else "data")
        return recipe, recipe.make_optimizer()
    recipe = recipes.arm_reach(seed, batch=32)
    if method == "adam":
        return recipe, hf.opt.Adam(l_rate=args.adam_lr, clip_norm=args.adam_clip or None)
    return recipe, hf.opt.SGD(l_rate=args.sgd_lr)


def _optimizer_settings(optimizer) -> dict:
    names = ("CG_iter", "damping", "l_rate", "beta1", "beta2", "epsilon", "clip_norm")
    return {"class": type(optimizer).__name__,
            **{n: getattr(optimizer, n) for n in names if hasattr(optimizer, n)}}


def final_errors(recipe, batch, goals) -> np.ndarray:
    """Final hand distance (m) to ``goals [B, 2]`` of each episode of ``batch``."""
    task = recipe.loop.task
    final = recipe.loop.rollout(batch, noise=False, cost=False).states[:, -1]
    return np.linalg.norm(task.outputs(final) - goals, axis=1)


def run(method: str, seed: int, args, W0: np.ndarray | None, budget: float,
        progress: bool = False) -> dict:
    """Train ``method`` from ``W0`` (the recipe's own weights if None) for ``budget``
    seconds of training time; the curve and the times to the thresholds."""
    from hfcontrol.training import train

    recipe, optimizer = _recipe(method, seed, args)
    settings = _optimizer_settings(optimizer)  # before training changes the damping
    loop = recipe.loop
    if W0 is not None:
        if not np.array_equal(loop.W, W0):
            raise RuntimeError(f"{method}, seed {seed}: the recipe's initial weights differ "
                               f"from the other methods'")
        loop.W = W0.copy()
    validation = loop.task.sample(64, seed=10_000 + seed)
    val_goals = validation.targets[:, -1]
    curve: dict[str, list] = {"update": [], "time": [], "heldout": [], "heldout_max": [],
                              "validation": []}
    excluded = 0.0
    next_eval = 0.0

    def measure(update: int, clock: float) -> None:
        nonlocal excluded, next_eval
        t = time.perf_counter()
        held = final_errors(recipe, recipe.heldout, recipe.info["goals"])
        curve["update"].append(update)
        curve["time"].append(clock)
        curve["heldout"].append(float(held.mean()))
        curve["heldout_max"].append(float(held.max()))
        curve["validation"].append(float(final_errors(recipe, validation, val_goals).mean()))
        next_eval = clock + max(EVAL_RELATIVE_GAP * clock, EVAL_MIN_GAP * budget)
        excluded += time.perf_counter() - t

    measure(0, 0.0)
    start = time.perf_counter()

    def training_time() -> float:
        return time.perf_counter() - start - excluded

    def callback(state) -> None:
        clock = training_time()
        if clock >= next_eval or clock >= budget:
            measure(state.update + 1, clock)

    def out_of_time(state) -> bool:
        return training_time() >= budget

    # train()'s own evaluation is switched off (NaN): by default it costs a rollout per
    # update, which would be charged to the optimiser; the held-out error is measured in
    # the callback instead, off the clock
    result = train(loop, optimizer, recipe.train_batches, updates=10**9,
                   evaluate=lambda: np.nan, callbacks=[callback], stop=[out_of_time],
                   progress=progress)
    if curve["update"][-1] != len(result.history["epoch"]):
        measure(len(result.history["epoch"]), training_time())
    reached = {}
    for name, level in THRESHOLDS.items():
        hit = next((i for i, e in enumerate(curve["heldout"]) if e < level), None)
        reached[name] = None if hit is None else {"time_s": curve["time"][hit],
                                                  "update": curve["update"][hit]}
    return {"seed": seed, "updates": len(result.history["epoch"]),
            "train_time_s": curve["time"][-1], "evaluation_time_s": excluded,
            "final_heldout_m": curve["heldout"][-1], "best_heldout_m": min(curve["heldout"]),
            "final_validation_m": curve["validation"][-1], "reached": reached,
            "optimizer": settings, "batch": recipe.info["batch"],
            "curve": curve}


def _median_time(runs: list[dict], name: str) -> float | None:
    """Median over seeds of the time to a threshold, a run that never reached it counting
    as infinitely long; None if that median is not finite (not reached by half or more)."""
    times = [r["reached"][name]["time_s"] if r["reached"][name] else np.inf for r in runs]
    median = float(np.median(times))
    return median if np.isfinite(median) else None


def _fmt_time(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def write_figure(runs: dict[str, list[dict]], path, n_seeds: int, budget: float) -> None:
    """Held-out error against updates and against training time, one colour per method,
    one thin line per seed (``runs`` as in ``metrics.json``)."""
    from hfcontrol import figures

    curves = {}
    for method, rs in runs.items():
        curves[f"{METHODS[method]} (batch {rs[0]['batch']})"] = {
            key: [r["curve"][key] for r in rs] for key in ("update", "time", "heldout")}
    figures.plot_learning_curves(
        curves, path, ylabel="held-out final hand error (m)",
        hline=list(THRESHOLDS.values()), log_x=True,
        title=f"Two-link arm reaching, {n_seeds} seed{'s' if n_seeds > 1 else ''}, "
              f"{budget:g} s of training per run")


def main(argv=None) -> int:
    args = _arguments(argv)
    from hfcontrol import recipes
    from hfcontrol.persistence import atomic_write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    load_before = os.getloadavg()
    wall = time.perf_counter()

    warmup = {}
    for method in args.methods:
        t = time.perf_counter()
        run(method, seeds[0], args, None, budget=1e-9)  # stops after its first update
        warmup[method] = time.perf_counter() - t

    runs: dict[str, list[dict]] = {m: [] for m in args.methods}
    orders = []
    for i, seed in enumerate(seeds):
        W0 = recipes.arm_reach(seed).loop.W.copy()
        # the order of the methods turns with the seed, so that a drift in the machine's
        # load does not always fall on the same method
        shift = i % len(args.methods)
        orders.append(args.methods[shift:] + args.methods[:shift])
        for method in orders[-1]:
            r = run(method, seed, args, W0, args.budget,
                    progress=not args.quick and sys.stderr.isatty())
            runs[method].append(r)
            print(f"seed {seed}  {method:9s} {r['updates']:6d} updates  "
                  f"1 cm: {_fmt_time(r['reached']['1cm'] and r['reached']['1cm']['time_s'])}"
                  f"  5 mm: {_fmt_time(r['reached']['5mm'] and r['reached']['5mm']['time_s'])}"
                  f"  final {1000 * r['final_heldout_m']:.2f} mm", flush=True)

    summary = {}
    for method, rs in runs.items():
        entry = {"label": METHODS[method], "optimizer": rs[0]["optimizer"],
                 "batch": rs[0]["batch"],
                 "final_heldout_m": [r["final_heldout_m"] for r in rs],
                 "median_final_heldout_m": float(np.median([r["final_heldout_m"] for r in rs])),
                 "updates": [r["updates"] for r in rs],
                 "updates_per_s": float(np.median([r["updates"] / r["train_time_s"]
                                                   for r in rs]))}
        for name in THRESHOLDS:
            entry[f"time_to_{name}_s"] = [r["reached"][name] and r["reached"][name]["time_s"]
                                          for r in rs]
            entry[f"updates_to_{name}"] = [r["reached"][name] and r["reached"][name]["update"]
                                           for r in rs]
            entry[f"reached_{name}"] = sum(r["reached"][name] is not None for r in rs)
            entry[f"median_time_to_{name}_s"] = _median_time(rs, name)
        summary[method] = entry

    metrics = {
        "task": "arm-reach (hfcontrol.recipes.arm_reach)",
        "error": "held-out final hand error, mean over 32 hand-built targets (m)",
        "settings": {"seeds": seeds, "budget_s": args.budget, "quick": args.quick,
                     "methods": args.methods, "order_per_seed": orders,
                     "thresholds_m": THRESHOLDS,
                     "evaluation_spacing": f"{EVAL_RELATIVE_GAP:g} x elapsed training time, at "
                                           f"least {EVAL_MIN_GAP:g} x budget"},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg(),
                    "total_wall_s": time.perf_counter() - wall},
        "warmup_s": warmup,
        "summary": summary,
        "runs": runs,
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))

    write_figure(runs, out / "optimizer_comparison.png", len(seeds), args.budget)

    width = max(len(METHODS[m]) for m in runs)
    print(f"\n{'method':{width}s}  {'to 1 cm (median)':>18s}  {'to 5 mm (median)':>18s}  "
          f"final error (median)")
    for method, e in summary.items():
        print(f"{METHODS[method]:{width}s}  "
              f"{_fmt_time(e['median_time_to_1cm_s']):>12s} ({e['reached_1cm']}/{len(seeds)})  "
              f"{_fmt_time(e['median_time_to_5mm_s']):>12s} ({e['reached_5mm']}/{len(seeds)})  "
              f"{1000 * e['median_final_heldout_m']:.2f} mm")
    print(f"optimizer comparison: {len(seeds)} seeds x {len(runs)} methods, {args.budget:g} s "
          f"each; wrote {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
