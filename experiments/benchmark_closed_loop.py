"""Time the closed loop: rollouts, the gradient and G v, compiled against the NumPy
reference path (and JAX, when it is installed).

Usage::

    python experiments/benchmark_closed_loop.py [--repeats 9] [--json out.json]

Problems (all float32, the two-link arm with Li & Todorov's parameters, dt 10 ms):

* ``arm-reach``: the arm-reach problem of ``experiments/arm_reach.py``, a 32-unit RNN,
  batch 64, 50 steps: ``G v``, the gradient, and a trial rollout (``error(W)``) with the
  cost, as Hessian-free optimisation calls them;
* ``rollout-1024``: ``ClosedLoop.rollout`` (network step plus plant step, on both cores,
  the states and controls returned sample-major; then also with the cost of every
  episode) of 1024 episodes of 50 steps, in plant steps per second.

Every figure is the median of ``--repeats`` timed samples after a warm-up call; a sample
averages enough calls to last 20 ms. The JAX column (``jax.jit`` of ``jvp`` then ``vjp``
of the same loop, written in ``jax.numpy``: network, RK4 arm, observation, cost) is timed
only when JAX is installed (``pip install -e ".[jax]"``). Benchmarks print ratios
measured in one run; they are not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from hfcontrol.bench import build, median_time, time_arm_reach, time_rollouts


def time_jax(repeats: int) -> dict[str, float] | None:  # pragma: no cover - optional
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return None
    from jax_closed_loop import arm_reach_gv  # beside this script

    loop, episodes, v = build("numba", 64)
    gv, _ = arm_reach_gv(loop, episodes)
    ours = loop.calc_G(v)
    agreement = float(np.max(np.abs(np.asarray(gv(v)) - ours)) / np.max(np.abs(ours)))
    big = loop.task.sample(1024, seed=3)
    _, rollout = arm_reach_gv(loop, big)
    W = loop.W
    seconds = median_time(lambda: rollout(W)[0].block_until_ready(), max(5, repeats // 3))
    return {"Gv": median_time(lambda: gv(v).block_until_ready(), repeats),
            "Gv_relative_difference": agreement, "rollout": seconds,
            "steps_per_s": 1024 * loop.task.horizon / seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed samples per figure (>= 5)")
    parser.add_argument("--json", default="results/benchmark_closed_loop.json")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    results: dict = {"python": platform.python_version(), "numpy_version": np.__version__,
                     "cpus": os.cpu_count(), "repeats": args.repeats}
    for backend in ("numba", "numpy"):
        results[backend] = {**time_arm_reach(backend, args.repeats),
                            **time_rollouts(backend, max(5, args.repeats // 3))}
    jax_times = time_jax(args.repeats)
    if jax_times is not None:
        results["jax"] = jax_times
    print(f"# hfcontrol closed-loop benchmark  python {results['python']}  numpy "
          f"{results['numpy_version']}  cpus {results['cpus']}  medians of {args.repeats}")
    print("arm-reach (RNN 32, batch 64, 50 steps, float32):")
    print(f"  {'path':8s} {'G v ms':>9s} {'grad ms':>9s} {'error(W) ms':>12s}")
    for path in ("numba", "numpy", "jax"):
        if path in results:
            r = results[path]
            grad = f"{r['grad'] * 1e3:9.3f}" if "grad" in r else f"{'-':>9s}"
            err = f"{r['error'] * 1e3:12.3f}" if "error" in r else f"{'-':>12s}"
            print(f"  {path:8s} {r['Gv'] * 1e3:9.3f} {grad} {err}")
    c, n = results["numba"], results["numpy"]
    print(f"  compiled G v speed-up over NumPy: {n['Gv'] / c['Gv']:.1f}x; gradient "
          f"{n['grad'] / c['grad']:.1f}x; trial rollout {n['error'] / c['error']:.1f}x"
          + (f"; over JAX {results['jax']['Gv'] / c['Gv']:.1f}x" if "jax" in results else
             " (JAX not installed)"))
    if "jax" in results:
        print(f"  (JAX's G v differs from ours by {results['jax']['Gv_relative_difference']:.1e}"
              f" relative: float32 rounding)")
    print("rollouts (batch 1024, 50 steps: ClosedLoop.rollout, states and controls returned "
          "[B, T, .]; then with the task cost of every episode):")
    for path in ("numba", "numpy", "jax"):
        if path not in results:
            continue
        r = results[path]
        line = (f"  {path:8s} {r['rollout'] * 1e3:9.2f} ms  {r['steps_per_s'] / 1e6:6.2f} M "
                f"plant steps/s")
        if "rollout_with_cost" in r:
            line += (f";  with the cost {r['rollout_with_cost'] * 1e3:9.2f} ms  "
                     f"{r['steps_per_s_with_cost'] / 1e6:6.2f} M steps/s")
        print(line)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(f"# wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
