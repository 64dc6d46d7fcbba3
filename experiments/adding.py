"""The adding problem, the reference package's long-range-dependency demo.

Usage::

    python experiments/adding.py --out DIR [--seed S] [--epochs N] [--T 50] [--quick]

``hfcontrol.demos.adding`` (Hochreiter & Schmidhuber 1997; the settings of
``hessianfree``'s demo, Martens & Sutskever 2011): sequences of ``T`` steps of U(0, 1)
numbers, two of them marked (one in the first ``T // 10`` steps, one before ``T // 2``);
the answer, their sum, is due at the last step, so the net must carry two numbers across
at least half the sequence. A 2-32-64-1 net (a continuous-time ReLU layer with tau = 20 as
its only recurrent one), structural damping, ``HessianFree(CG_iter=60, init_damping=20)``,
minibatches of 1024 from 9000 training sequences; the demo holds 1000 out. This script
adds 2000 more held-out sequences drawn with a seed of their own.

Criterion (Hochreiter & Schmidhuber): an answer within 0.04 of the sum. Writes to ``DIR``:
``metrics.json`` (the demo's ``test_error`` and ``test_fraction_within_0.04``, the same
on the extra held-out set, the error of always answering 1 for scale, wall time),
``history.png`` (training and held-out error per update), ``signals.png`` (the output
over time of 20 held-out sequences, their sums as markers) and ``answers.png`` (answer
against sum on the extra held-out set), ``net.npz``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="updates (default 40)")
    parser.add_argument("--T", type=int, default=50, help="sequence length (>= 10)")
    parser.add_argument("--quick", action="store_true",
                        help="2000 sequences of 20 steps, 2 updates (for the tests)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.T < 10:
        parser.error("--T must be >= 10")
    return args


def main(argv=None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()
    from hfcontrol import demos
    from hfcontrol.persistence import atomic_write_text
    from hfcontrol.plotting import plot_history, plot_signals

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    T = 20 if args.quick else args.T
    sizes = {"n_sequences": 2000, "minibatch_size": 256} if args.quick else {}
    net, history, metrics = demos.adding(T, plots=False, rng=args.seed, print_period=None,
                                         epochs=args.epochs or (2 if args.quick else 40),
                                         **sizes)
    wall = time.perf_counter() - started
    inputs, targets = demos.adding_problem(2000, T, rng=np.random.default_rng(10_000 + args.seed))
    outputs = net.forward(inputs)[-1]
    answers, sums = outputs[:, -1, 0], targets[:, -1, 0]
    metrics.update({
        "extra_heldout_error": float(0.5 * np.mean((answers - sums) ** 2)),
        "extra_heldout_fraction_within_0.04": float(np.mean(np.abs(answers - sums) < 0.04)),
        "extra_heldout_error_of_constant_output": float(0.5 * np.mean((1 - sums) ** 2)),
        "seed": args.seed, "updates": len(history["epoch"]), "wall_s": wall})
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    net.save(out / "net.npz")
    plot_history(history, out / "history.png", title=f"adding problem, T = {T}")
    plot_signals({"outputs": outputs[:20]}, out / "signals.png",
                 targets={"outputs": targets[:20]},
                 title=f"adding problem: 20 held-out sequences (T = {T}), sums as markers")
    _plot_answers(sums, answers, out / "answers.png", T)
    print(f"adding (T = {T}): {100 * metrics['extra_heldout_fraction_within_0.04']:.0f} % of "
          f"2000 extra held-out sums within 0.04, error "
          f"{metrics['extra_heldout_error']:.3g} (answering 1: "
          f"{metrics['extra_heldout_error_of_constant_output']:.3g}); "
          f"{metrics['updates']} updates, {wall:.0f} s; wrote {out}/")
    return 0


def _plot_answers(sums, answers, path, T) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(sums, answers, ".", ms=2, alpha=0.5)
    ax.plot([0, 2], [0, 2], "k-", lw=0.8)
    for d in (-0.04, 0.04):
        ax.plot([0, 2], [d, 2 + d], "k:", lw=0.8)
    ax.set_xlabel("sum of the marked numbers")
    ax.set_ylabel("answer at the last step")
    ax.set_title(f"adding problem, T = {T}: held-out answers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
