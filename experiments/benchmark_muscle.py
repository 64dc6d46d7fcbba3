"""Throughput of the compiled muscle arm against its batched NumPy step, and the cost of
its step Jacobians.

At batch 1024 with random excitations in [0, 1] (default MuscleArm: Euler, dt = 10 ms):

* ``compiled``: ``arm.rollout(x0, U)`` over T steps, one compiled call (sample-steps/s);
* ``numpy``: ``arm.numpy_step`` (the plant's plain NumPy step, batched over samples)
  looped over the T steps in Python;
* ``jac/step``: one ``arm.jacobians(x, u)`` call over the batch against one
  ``arm.step(x, u)`` call (both compiled, validation included);
* ``per-sample``: the compiled per-sample pass (:func:`plants._dyn_muscle.muscle_rollout`,
  the rollout kernel's only path before the batch-major one) on the same rollout, through
  an uncached wrapper compiled here: the before/after of that change in one run.

The two sides of each ratio are timed in alternating rounds; medians are reported. The
floors it checks: compiled >= 3x NumPy, >= 20x MotorNet's 0.22 M steps/s (measured for
RigidTendonArm26 on this machine, issue 13), and jac/step <= 3. Usage::

    .venv/bin/python experiments/benchmark_muscle.py [--batch 1024] [--steps 100]
        [--repeats 7] [--out results/benchmark_muscle.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import plants

MOTORNET_STEPS_PER_S = 0.22e6


def _time(fn) -> tuple[float, float]:
    """Wall-clock and this process's CPU seconds of one call (on a shared machine the CPU
    time is the cost of the work itself; the wall time includes waiting for a core)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def _per_sample_kernel():
    """The per-sample rollout kernel of the muscle arm (compiled here, not cached: a cached
    copy would not see later edits of the modules it inlines)."""
    from numba import njit

    from plants import _dyn_muscle as muscle

    @njit(cache=False, _nrt=False)
    def rows(p, X0, U, W, noisy, X, o0, ws):
        return muscle.muscle_rollout(0, p, X0, U, W, noisy, X, o0, ws, 10, 6, 6,
                                     muscle.arm_floor(p),
                                     not muscle.arm_plain(muscle.arm_consts(p)))

    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--numpy-steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--integrator", default="euler", choices=["euler", "rk4"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    arm = plants.MuscleArm(integrator=args.integrator)
    B, T, Tn = args.batch, args.steps, args.numpy_steps
    q = np.column_stack([rng.uniform(0.3, 2.0, B), rng.uniform(0.3, 2.4, B)])
    x0 = arm.rest_state(q)
    U = rng.uniform(0.0, 1.0, (B, T, 6))
    arm.rollout(x0[:2], U[:2, :2])          # compile / load from cache
    arm.jacobians(x0[:2], U[:2, 0])
    x = arm.rollout(x0, U[:, :10])[:, -1]    # a moving state for the Jacobian timings
    u = U[:, 10]

    def numpy_rollout():
        z = x0
        for t in range(Tn):
            z = arm.numpy_step(z, U[:, t])

    rows = _per_sample_kernel()
    Xr = np.empty((B, T + 1, arm.state_dim))
    ws = np.zeros(arm.workspace_size)
    p = arm.kernel_params

    def per_sample():
        if rows(p, x0, U, U, False, Xr, 1, ws) != -1:
            raise RuntimeError("the per-sample rollout failed")

    per_sample()  # compile
    np.testing.assert_allclose(Xr, arm.rollout(x0, U), rtol=1e-9, atol=1e-9)
    comp, nump, jac, step, per = [], [], [], [], []
    for _ in range(args.repeats):
        comp.append(np.array(_time(lambda: arm.rollout(x0, U))) / (B * T))
        per.append(np.array(_time(per_sample)) / (B * T))
        nump.append(np.array(_time(numpy_rollout)) / (B * Tn))
        jac.append(_time(lambda: arm.jacobians(x, u)))
        step.append(_time(lambda: arm.step(x, u)))
    comp, nump, jac, step, per = map(np.array, (comp, nump, jac, step, per))
    res = {"batch": B, "steps": T, "integrator": args.integrator, "repeats": args.repeats,
           "load_average": os.getloadavg()[0],
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    print(f"MuscleArm ({args.integrator}), batch {B}, random excitations (medians of "
          f"{args.repeats} alternating rounds; load average {res['load_average']:.1f})")
    for k, name in enumerate(("wall", "cpu")):
        comp_s, nump_s = float(np.median(comp[:, k])), float(np.median(nump[:, k]))
        r = {"compiled_steps_per_s": 1.0 / comp_s, "numpy_steps_per_s": 1.0 / nump_s,
             "compiled_over_numpy": float(np.median(nump[:, k] / comp[:, k])),
             "compiled_over_motornet": (1.0 / comp_s) / MOTORNET_STEPS_PER_S,
             "jacobian_over_step": float(np.median(jac[:, k] / np.maximum(step[:, k], 1e-9))),
             "jacobian_s": float(np.median(jac[:, k])), "step_s": float(np.median(step[:, k])),
             "per_sample_steps_per_s": 1.0 / float(np.median(per[:, k])),
             "compiled_over_per_sample": float(np.median(per[:, k] / comp[:, k]))}
        res[name] = r
        print(f"  [{name} time]")
        print(f"  compiled rollout : {r['compiled_steps_per_s'] / 1e6:8.2f} M steps/s")
        print(f"  per-sample pass  : {r['per_sample_steps_per_s'] / 1e6:8.2f} M steps/s "
              f"(compiled is {r['compiled_over_per_sample']:.2f} x faster)")
        print(f"  NumPy step loop  : {r['numpy_steps_per_s'] / 1e6:8.3f} M steps/s")
        print(f"  compiled / NumPy : {r['compiled_over_numpy']:8.1f} x   (floor 3)")
        print(f"  compiled / MotorNet 0.22 M : {r['compiled_over_motornet']:6.1f} x   (floor 20)")
        print(f"  jacobians / step : {r['jacobian_over_step']:8.2f}     (ceiling 3)")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=2)
        os.replace(tmp, args.out)
    return res


if __name__ == "__main__":
    main()
