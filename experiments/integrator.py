"""The integrator demo: a recurrent net learns to output the running sum of its input.

Usage::

    python experiments/integrator.py --out DIR [--seed S] [--epochs N] [--quick]

``hfcontrol.demos.integrator`` (the reference package's demo: a 1-10-1 RNN, Logistic
hidden layer, trained with Hessian-free on 200 sequences of 20 steps of N(0, 0.2^2)
noise; target: the cumulative sum). The demo reports its error on its training
sequences; this script also measures it on 200 held-out sequences drawn with a seed of
their own, of the training length and of twice that length (the sum keeps growing past
what training saw), each against the error of always answering 0 for scale.

Writes to ``DIR``: ``metrics.json``, ``history.png`` (training history) and
``signals.png`` (held-out inputs, targets and outputs over 40 steps), ``net.npz``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

N_SEQUENCES, SIG_LEN = 200, 20


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="updates (default 50)")
    parser.add_argument("--quick", action="store_true", help="a few updates (for the tests)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return args


def main(argv=None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()
    from hfcontrol import demos
    from hfcontrol.persistence import atomic_write_text
    from hfcontrol.plotting import plot_history, plot_signals

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net, history, metrics = demos.integrator(
        n_inputs=N_SEQUENCES, sig_len=SIG_LEN, plots=False, rng=args.seed,
        epochs=args.epochs or (3 if args.quick else None), print_period=None)
    wall = time.perf_counter() - started
    # held out: the demo's distribution, a generator training never uses
    rng = np.random.default_rng(10_000 + args.seed)
    for length in (SIG_LEN, 2 * SIG_LEN):
        inputs = (0.2 * rng.standard_normal((N_SEQUENCES, length, 1))).astype(np.float32)
        targets = np.cumsum(inputs, axis=1)
        err = float(net.error(inputs=inputs, targets=targets))
        zero = float(0.5 * np.sum(targets ** 2) / N_SEQUENCES)
        metrics[f"heldout_error_len{length}"] = err
        metrics[f"heldout_error_of_zero_output_len{length}"] = zero
        metrics[f"heldout_relative_error_len{length}"] = err / zero
    metrics.update({"seed": args.seed, "updates": len(history["epoch"]), "wall_s": wall,
                    "train_sequences": N_SEQUENCES, "sig_len": SIG_LEN})
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    net.save(out / "net.npz")
    plot_history(history, out / "history.png", title="integrator demo")
    plot_signals({"inputs": inputs[:10], "outputs": net.forward(inputs[:10])[-1]},
                 out / "signals.png", targets={"outputs": targets[:10]},
                 title=f"integrator: 10 held-out sequences of {2 * SIG_LEN} steps "
                       f"(trained on {SIG_LEN})")
    print(f"integrator: held-out error {metrics[f'heldout_error_len{SIG_LEN}']:.3g} "
          f"({100 * metrics[f'heldout_relative_error_len{SIG_LEN}']:.2g} % of answering 0), "
          f"{100 * metrics[f'heldout_relative_error_len{2 * SIG_LEN}']:.2g} % at twice the "
          f"length; {metrics['updates']} updates, {wall:.1f} s; wrote {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
