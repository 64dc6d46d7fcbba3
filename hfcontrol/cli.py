"""The ``hfcontrol`` console script.

Subcommands::

    hfcontrol train [TASK] [--hidden N] [--updates N] [--seed S] [--optimizer hf|adam|sgd]
                    [--set KEY=VALUE ...] [--out DIR] [--resume]
    hfcontrol evaluate RUN_DIR
    hfcontrol plot RUN_DIR
    hfcontrol demo NAME [--out DIR] [--seed S] [--epochs N]
    hfcontrol bench [--repeats N]
    hfcontrol tasks
    hfcontrol sweep CONFIG.toml [--address ADDR] [--out DIR] [--num-cpus N]

``hfcontrol train`` with no options is the main job: it trains a controller to reach with
the two-link arm, evaluates it on held-out targets and writes its figures and metrics to
``runs/arm-reach``. A bad argument gets a message and exit code 2; Ctrl-C during training
leaves a checkpoint that ``--resume`` continues from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, true/false, lists),
    else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. delay=3), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    from . import recipes
    from .demos import DEMOS

    parser = argparse.ArgumentParser(
        prog="hfcontrol", description="Train neural controllers on simulated plants with "
        "Hessian-free optimisation.", epilog="Run `hfcontrol train` for the main job.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser("train", help="train a controller on a task and write a run folder")
    train.add_argument("task", nargs="?", default=None, choices=sorted(recipes.RECIPES),
                       metavar="TASK", help="the task (default arm-reach; see `hfcontrol "
                       "tasks`)")
    train.add_argument("--hidden", type=_positive, help="recurrent units")
    train.add_argument("--updates", type=_positive, help="updates (default: the recipe's)")
    train.add_argument("--seed", type=_non_negative, help="seed (default 0)")
    train.add_argument("--optimizer", choices=("hf", "adam", "sgd"),
                       help="Hessian-free (default) or a first-order baseline")
    train.add_argument("--set", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="a recipe option, e.g. --set delay=3 --set obs_noise=0.01")
    train.add_argument("--out", help="run folder (default runs/TASK)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out from its checkpoints")
    train.add_argument("--no-plots", action="store_true", help="skip the figures")

    for name, text in (("evaluate", "evaluate a run's controller on its held-out episodes"),
                       ("plot", "draw a run's figures again")):
        p = sub.add_parser(name, help=text)
        p.add_argument("run_dir", metavar="RUN_DIR")

    demo = sub.add_parser("demo", help="run a demo of the reference package")
    demo.add_argument("name", choices=sorted(DEMOS), metavar="NAME",
                      help=f"one of {', '.join(sorted(DEMOS))}")
    demo.add_argument("--out", default="results", help="output folder (default results)")
    demo.add_argument("--seed", type=_non_negative, default=0)
    demo.add_argument("--epochs", type=_positive, help="updates (default: the demo's)")

    bench = sub.add_parser("bench", help="time the closed loop, compiled against NumPy")
    bench.add_argument("--repeats", type=_positive, default=7, help="timed samples (median)")

    sub.add_parser("tasks", help="list the tasks")

    sweep = sub.add_parser("sweep", help="run a grid of trials as Ray tasks (needs ray)")
    sweep.add_argument("config", metavar="CONFIG.toml", help="the sweep (see hfcontrol.sweep)")
    sweep.add_argument("--address", help="a Ray cluster's address (default: a local Ray)")
    sweep.add_argument("--out", help="sweep folder (default: the config's, or runs/sweep)")
    sweep.add_argument("--num-cpus", type=_positive, help="CPUs of the local Ray")
    return parser


def _train(args, progress: bool) -> str:
    from . import IMPORT_STARTED, runs

    options = dict(args.set)
    if args.hidden is not None:
        options["hidden"] = args.hidden
    out = args.out
    if out is None:
        if args.resume:
            raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
        out = f"runs/{args.task or 'arm-reach'}"
    metrics = runs.train_run(args.task, out, seed=args.seed, optimizer=args.optimizer,
                             updates=args.updates, options=options or None,
                             resume=args.resume, progress=progress, plots=not args.no_plots,
                             started=IMPORT_STARTED)
    return f"{metrics['summary']}; wrote {out}/"


def _run(args, progress: bool) -> str:
    if args.command == "train":
        return _train(args, progress)
    if args.command in ("evaluate", "plot"):
        from . import runs

        if args.command == "evaluate":
            metrics = runs.evaluate_run(args.run_dir)
            return f"{metrics['summary']}; updated {Path(args.run_dir) / 'metrics.json'}"
        paths = runs.plot_run(args.run_dir)
        return f"drew {len(paths)} figures in {args.run_dir}/: " + ", ".join(p.name for p in paths)
    if args.command == "demo":
        from .demos import run

        metrics = run(args.name, args.out, args.seed, args.epochs,
                      print_period=None if not progress else 10)
        figures = {k: v for k, v in metrics.items() if isinstance(v, float)}
        return (f"demo {args.name}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
                + f"; wrote {Path(args.out) / args.name}/")
    if args.command == "bench":
        from . import bench

        results = bench.run(args.repeats, progress)
        print(bench.report(results))
        c, n = results["numba"], results["numpy"]
        return (f"bench: G v {c['Gv'] * 1e3:.3f} ms compiled, {n['Gv'] / c['Gv']:.1f}x NumPy; "
                f"rollouts {c['steps_per_s'] / 1e6:.2f} M plant steps/s")
    if args.command == "tasks":
        from . import recipes

        for name in sorted(recipes.RECIPES):
            print(f"  {name:18s} {recipes.describe(name)}")
        return f"{len(recipes.RECIPES)} tasks; train one with `hfcontrol train TASK`"
    if args.command == "sweep":
        from . import sweep

        summary = sweep.run_sweep(args.config, out=args.out, address=args.address,
                                  num_cpus=args.num_cpus, progress=progress)
        return summary["line"]
    raise AssertionError(args.command)  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    progress = sys.stderr.isatty()
    try:
        line = _run(args, progress)
    except KeyboardInterrupt:
        hint = ""
        if args.command == "train":
            out = args.out or f"runs/{args.task or 'arm-reach'}"
            hint = f"; continue with `hfcontrol train --resume --out {out}`"
        print(f"hfcontrol {args.command}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        if os.environ.get("HFCONTROL_DEBUG"):
            raise
        parser.exit(EXIT_USAGE, f"hfcontrol {args.command}: error: {exc}\n")
    print(line)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
