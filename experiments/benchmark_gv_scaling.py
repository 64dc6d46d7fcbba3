"""Time per ``G v`` against problem size: compiled (numba) vs NumPy vs JAX.

Usage::

    python experiments/benchmark_gv_scaling.py --out DIR [--sizes 16 32 64 128 256]
        [--batch 64] [--steps 50] [--repeats 5] [--quick]

The problem is a plain recurrent net ``RNNet([10, H, 10])`` (Linear, Tanh, Tanh; squared
error) on ``batch`` sequences of ``steps`` steps, float32, for hidden sizes ``H`` in
``--sizes``. Each figure is the median of ``--repeats`` timed samples after a warm-up
(``median_time`` of ``experiments/benchmark.py``); JAX (``jax.jit`` of a ``jvp`` then a
``vjp`` through a ``lax.scan`` of the same net, the benchmark's own JAX version) is timed
when it is installed. Benchmarks print ratios measured in one run; they are not tests.

Writes to ``DIR``: ``gv_scaling.json`` (seconds per ``G v`` for every size and path, with
the settings) and ``gv_scaling.png`` (time per ``G v`` against ``H``, log-log, and the
speed-up of the compiled path over NumPy and JAX).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256],
                        help="hidden sizes")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5, help="timed samples (>= 3)")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX even if installed")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 8 and 16, batch 8, 10 steps, 3 repeats (for the tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch, args.steps, args.repeats = [8, 16], 8, 10, 3
    if min(args.sizes) < 1 or args.batch < 1 or args.steps < 1:
        parser.error("--sizes, --batch and --steps must be >= 1")
    if args.repeats < 3:
        parser.error("--repeats must be >= 3")
    return args


def build(hidden: int, batch: int, steps: int, seed: int = 0):
    """A tanh RNN ``[10, hidden, 10]``, inputs, targets and a direction ``v`` (float32)."""
    import hfcontrol as hf
    from hfcontrol import loss_funcs as lf

    rng = np.random.default_rng(seed)
    net = hf.RNNet([10, hidden, 10], layers=["Linear", "Tanh", "Tanh"],
                   loss_type=lf.SquaredError(), rng=seed + 1, dtype=np.float32,
                   W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian", "coeff": 0.9})
    x = rng.standard_normal((batch, steps, 10)).astype(np.float32)
    y = rng.standard_normal((batch, steps, 10)).astype(np.float32)
    v = (0.01 * rng.standard_normal(net.n_params)).astype(np.float32)
    return net, x, y, v


def main(argv=None) -> int:
    args = _arguments(argv)
    from benchmark import median_time, time_jax  # experiments/benchmark.py

    from hfcontrol.persistence import atomic_write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, list] = {"numba": [], "numpy": [], "jax": []}
    for hidden in args.sizes:
        net, x, y, v = build(hidden, args.batch, args.steps)
        for backend in ("numba", "numpy"):
            net.backend = backend
            net.cache_minibatch(x, y)
            seconds[backend].append(median_time(lambda net=net, v=v: net.calc_G(v), args.repeats))
        jax = None if args.no_jax else time_jax(net, x, y, v, args.repeats)
        seconds["jax"].append(None if jax is None else jax["Gv"])
        row = "  ".join(f"{k} {1e3 * t[-1]:8.3f} ms" for k, t in seconds.items()
                        if t[-1] is not None)
        print(f"H = {hidden:4d}: {row}")
    if all(t is None for t in seconds["jax"]):
        del seconds["jax"]
        print("# JAX not installed (or --no-jax): skipped")
    result = {"sizes": args.sizes, "batch": args.batch, "steps": args.steps,
              "repeats": args.repeats, "net": "RNNet([10, H, 10]), Linear/Tanh/Tanh, float32",
              "seconds_per_gv": seconds, "python": platform.python_version(),
              "numpy": np.__version__, "cpus": os.cpu_count(), "argv": sys.argv[1:]}
    atomic_write_text(out / "gv_scaling.json", json.dumps(result, indent=2))
    _plot(result, out / "gv_scaling.png")
    print(f"# wrote {out}/gv_scaling.json and gv_scaling.png")
    return 0


def _plot(result, path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sizes = np.array(result["sizes"])
    sec = result["seconds_per_gv"]
    labels = {"numba": "compiled (numba)", "numpy": "NumPy", "jax": "JAX (jit, jvp + vjp)"}
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for name, times in sec.items():
        axes[0].loglog(sizes, 1e3 * np.array(times, dtype=float), "o-", label=labels[name])
    axes[0].set_xlabel("hidden units H")
    axes[0].set_ylabel("time per G v (ms)")
    axes[0].legend()
    for name in ("numpy", "jax"):
        if name in sec:
            ratio = np.array(sec[name], dtype=float) / np.array(sec["numba"])
            axes[1].semilogx(sizes, ratio, "o-", label=f"{labels[name]} / compiled")
    axes[1].axhline(1.0, color="k", lw=0.6)
    axes[1].set_xlabel("hidden units H")
    axes[1].set_ylabel("time ratio (> 1: compiled faster)")
    axes[1].legend()
    fig.suptitle(f"G v of a tanh RNN, batch {result['batch']}, {result['steps']} steps, "
                 f"float32 (median of {result['repeats']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
