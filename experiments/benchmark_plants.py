"""Throughput of the compiled plants against straightforward batched NumPy.

For every plant (default settings) and batch sizes 1, 64 and 1024 this measures, in the
same run:

* ``step``: one Python call of ``plant.step(x, u)`` (compiled kernel, validation included);
* ``rollout``: ``plant.rollout(x0, U)`` over T steps in one compiled call;
* ``numpy``: a plain batched NumPy implementation of the same equations and integrator
  (written below, independently of the kernels);
* ``jac/step``: cost of one ``plant.jacobians`` call relative to one ``plant.step`` call.

A second table compares the batch-major step pass (:func:`plants._chunked.rollout_chunks`)
with the per-sample pass it replaced, at the kernel level: one step of the whole batch as
the closed loop calls it (``rollout_<plant>(params, X[B, n], U[B, 1, m], W, False,
Xout[B, 1, n], 0, ws)``, arrays allocated once), through the plant's kernel and through a
reference kernel compiled below from :func:`plants._integrate.rollout_rows` with the
plant's per-sample right-hand side (what the plant's kernel ran before).

Prints the tables of medians and ratios and writes JSON (``--out``). The timings of a row
are taken in interleaved rounds. Usage::

    .venv/bin/python experiments/benchmark_plants.py [--repeats 7] [--out results/benchmark_plants.json]
    .venv/bin/python experiments/benchmark_plants.py --passes-only --repeats 31
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
from numba import njit

import plants
from plants import _dyn_cartpole, _dyn_chain, _dyn_two_link
from plants._integrate import rollout_rows
from plants.arms import chain_mass_terms

# ----------------------------------------------------------------------------------------
# NumPy baselines: x[B, n], u[B, m] -> x_next[B, n]


def numpy_pendulum(pl):
    g, m, l, dt = pl.g, pl.m, pl.l, pl.dt

    def step(x, u):
        u = np.clip(u[:, 0], -2.0, 2.0)
        thdot = x[:, 1] + (3 * g / (2 * l) * np.sin(x[:, 0]) + 3.0 / (m * l**2) * u) * dt
        thdot = np.clip(thdot, -8.0, 8.0)
        return np.stack([x[:, 0] + thdot * dt, thdot], axis=1)
    return step


def numpy_cartpole(pl):
    g, mc, mp, l, dt = pl.gravity, pl.masscart, pl.masspole, pl.length, pl.dt
    mt = mc + mp

    def step(x, u):
        f = np.clip(u[:, 0], -10.0, 10.0)
        c, s = np.cos(x[:, 2]), np.sin(x[:, 2])
        temp = (f + mp * l * x[:, 3] ** 2 * s) / mt
        thacc = (g * s - c * temp) / (l * (4.0 / 3.0 - mp * c**2 / mt))
        xacc = temp - mp * l * thacc * c / mt
        return np.stack([x[:, 0] + dt * x[:, 1], x[:, 1] + dt * xacc,
                         x[:, 2] + dt * x[:, 3], x[:, 3] + dt * thacc], axis=1)
    return step


def numpy_linear(pl):
    A = pl.A

    def step(x, u):
        out = x @ A.T
        out[:, 1] += np.tanh(x[:, 0]) * u[:, 1]
        return out
    return step


def _rk4(f, dt):
    def step(x, u):
        k1 = f(x, u)
        k2 = f(x + 0.5 * dt * k1, u)
        k3 = f(x + 0.5 * dt * k2, u)
        k4 = f(x + dt * k3, u)
        return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return step


def numpy_two_link(pl):
    m1, m2 = pl.masses
    l1, _ = pl.lengths
    _, s2 = pl.com
    i1, i2 = pl.inertias
    Bv = pl.viscosity
    a1 = i1 + i2 + m2 * l1**2
    a2 = m2 * l1 * s2

    def f(x, u):
        q2, qd1, qd2 = x[:, 1], x[:, 2], x[:, 3]
        c2, s2_ = np.cos(q2), np.sin(q2)
        M11 = a1 + 2 * a2 * c2
        M12 = i2 + a2 * c2
        h1 = -a2 * s2_ * (2 * qd1 * qd2 + qd2**2)
        h2 = a2 * s2_ * qd1**2
        r1 = u[:, 0] - h1 - Bv[0, 0] * qd1 - Bv[0, 1] * qd2
        r2 = u[:, 1] - h2 - Bv[1, 0] * qd1 - Bv[1, 1] * qd2
        det = M11 * i2 - M12**2
        return np.stack([qd1, qd2, (i2 * r1 - M12 * r2) / det, (M11 * r2 - M12 * r1) / det],
                        axis=1)
    return _rk4(f, pl.dt)


def numpy_chain(pl):
    N = pl.n_links
    M0, pairs, _ = chain_mass_terms(pl.masses, pl.lengths, pl.com, pl.inertias, 0.0)
    Bv = pl.viscosity

    def f(x, u):
        q, v = x[:, :N], x[:, N:]
        phi = np.cumsum(q, axis=1)
        M = np.broadcast_to(M0, (x.shape[0], N, N)).copy()
        r = u - v @ Bv.T
        for a, b, Mc in pairs:
            d = phi[:, a] - phi[:, b]
            M += np.cos(d)[:, None, None] * Mc
            w = v @ Mc.T
            sp = np.einsum("bi,bi->b", v, w)
            dd = v[:, b + 1:a + 1].sum(axis=1)
            sd = np.sin(d)
            r += (sd * dd)[:, None] * w
            r[:, b + 1:a + 1] -= (0.5 * sd * sp)[:, None]
        return np.concatenate([v, np.linalg.solve(M, r[:, :, None])[:, :, 0]], axis=1)
    return _rk4(f, pl.dt)


PLANTS = {
    "pendulum": (plants.Pendulum, numpy_pendulum),
    "cartpole": (plants.CartPole, numpy_cartpole),
    "linear_demo": (plants.LinearPlant.demo, numpy_linear),
    "two_link_arm": (plants.TwoLinkArm, numpy_two_link),
    "three_link_arm": (plants.ThreeLinkArm, numpy_chain),
}


# ----------------------------------------------------------------------------------------
# The per-sample pass, for the comparison with the batch-major one: what the plants'
# rollout kernels run for batches below plants._chunked.MIN_BATCH and ran for all before.


@njit(cache=True)
def per_sample_two_link(p, X0, U, W, noisy, X, o0, ws):
    return rollout_rows(_dyn_two_link.consts, _dyn_two_link.rhs_plain, p, X0, U, W, noisy, X,
                        o0, ws, 4, 2)


@njit(cache=True)
def per_sample_three_link(p, X0, U, W, noisy, X, o0, ws):
    return rollout_rows(_dyn_chain.consts, _dyn_chain.rhs3, p, X0, U, W, noisy, X, o0, ws, 6,
                        3)


@njit(cache=True)
def per_sample_cartpole(p, X0, U, W, noisy, X, o0, ws):
    return rollout_rows(_dyn_cartpole.consts, _dyn_cartpole.rhs, p, X0, U, W, noisy, X, o0, ws,
                        4, 1)


PASSES = {
    "two_link_arm": (plants.TwoLinkArm, per_sample_two_link),
    "three_link_arm": (plants.ThreeLinkArm, per_sample_three_link),
    "cartpole": (plants.CartPole, per_sample_cartpole),
}


def _calibrate(fn, min_time=0.02) -> int:
    """Calls per timing so that one timing lasts at least ``min_time`` seconds."""
    fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_time:
            return number
        number *= 4


def _median_times(fns, repeats) -> list[float]:
    """Median seconds per call of each function, timed in interleaved rounds.

    Each round times every function once, so that a burst of load on this shared machine
    hits all of them alike and the ratios between them stay fair.
    """
    numbers = [_calibrate(fn) for fn in fns]
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, number, out in zip(fns, numbers, times, strict=True):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            out.append((time.perf_counter() - t0) / number)
    return [float(np.median(t)) for t in times]


def run(repeats: int = 7, batches=(1, 64, 1024), horizon: int = 200) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for name, (make, make_np) in PLANTS.items():
        pl = make()
        np_step = make_np(pl)
        for B in batches:
            x = 0.3 * rng.standard_normal((B, pl.state_dim))
            u = 0.5 * rng.standard_normal((B, pl.control_dim))
            U = 0.5 * rng.standard_normal((B, horizon, pl.control_dim))
            err = np.abs(np_step(x, u) - pl.step(x, u)).max()
            assert err < 1e-9, (name, err)  # the baseline computes the same thing
            t_step, t_jac, t_roll, t_np = _median_times([
                lambda pl=pl, x=x, u=u: pl.step(x, u),
                lambda pl=pl, x=x, u=u: pl.jacobians(x, u),
                lambda pl=pl, x=x, U=U: pl.rollout(x, U),
                lambda f=np_step, x=x, u=u: f(x, u),
            ], repeats)
            rows.append(dict(
                plant=name, integrator=pl.integrator, batch=B,
                step_us=t_step * 1e6, jacobians_us=t_jac * 1e6, numpy_step_us=t_np * 1e6,
                step_per_s=B / t_step, rollout_per_s=B * horizon / t_roll,
                numpy_per_s=B / t_np, step_vs_numpy=t_np / t_step,
                rollout_vs_numpy=(B * horizon / t_roll) / (B / t_np),
                jac_over_step=t_jac / t_step,
            ))
    return rows


def run_passes(repeats: int = 7, batches=(256, 1024)) -> list[dict]:
    """Kernel-level step of a whole batch (the closed loop's call): the per-sample pass
    against the plant's kernel (batch-major for these batches), medians of interleaved
    rounds."""
    rng = np.random.default_rng(1)
    rows = []
    for name, (make, per_sample) in PASSES.items():
        pl = make()
        kernel = pl.kernels[0]
        p = pl.kernel_params
        ws = np.empty(pl.workspace_size)
        n, m = pl.state_dim, pl.control_dim
        for B in batches:
            x = 0.3 * rng.standard_normal((B, n))
            U = 0.5 * rng.standard_normal((B, 1, m))
            out_ref = np.empty((B, 1, n))
            out = np.empty((B, 1, n))
            t_ref, t_new = _median_times([
                lambda f=per_sample, p=p, x=x, U=U, o=out_ref, ws=ws: f(p, x, U, U, False, o, 0, ws),
                lambda f=kernel, p=p, x=x, U=U, o=out, ws=ws: f(p, x, U, U, False, o, 0, ws),
            ], repeats)
            err = np.abs(out - out_ref).max() / np.abs(out_ref).max()
            assert err < 1e-13, (name, B, err)  # the two passes agree to rounding
            rows.append(dict(plant=name, integrator=pl.integrator, batch=B,
                             per_sample_us=t_ref * 1e6, batch_major_us=t_new * 1e6,
                             per_sample_ns_per_sample=t_ref / B * 1e9,
                             batch_major_ns_per_sample=t_new / B * 1e9,
                             speedup=t_ref / t_new, max_rel_diff=float(err)))
    return rows


def print_passes(rows) -> None:
    hdr = (f"{'plant':15s} {'integ':13s} {'B':>5s} {'per-sample us':>14s} {'batch-major us':>15s} "
           f"{'ns/sample':>10s} {'->':>3s} {'ns/sample':>10s} {'speed-up':>9s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['plant']:15s} {r['integrator']:13s} {r['batch']:5d} {r['per_sample_us']:14.2f} "
              f"{r['batch_major_us']:15.2f} {r['per_sample_ns_per_sample']:10.1f} {'':>3s} "
              f"{r['batch_major_ns_per_sample']:10.1f} {r['speedup']:9.2f}")


def print_table(rows) -> None:
    hdr = (f"{'plant':15s} {'integ':13s} {'B':>5s} {'step us':>8s} {'step/s':>10s} "
           f"{'rollout/s':>10s} {'numpy/s':>10s} {'step/np':>8s} {'roll/np':>8s} {'jac/step':>8s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['plant']:15s} {r['integrator']:13s} {r['batch']:5d} {r['step_us']:8.2f} "
              f"{r['step_per_s']:10.3g} {r['rollout_per_s']:10.3g} {r['numpy_per_s']:10.3g} "
              f"{r['step_vs_numpy']:8.2f} {r['rollout_vs_numpy']:8.2f} {r['jac_over_step']:8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--horizon", type=int, default=200)
    ap.add_argument("--out", default="results/benchmark_plants.json")
    ap.add_argument("--passes-only", action="store_true",
                    help="only the per-sample against batch-major step comparison")
    args = ap.parse_args()
    rows = [] if args.passes_only else run(args.repeats, horizon=args.horizon)
    if rows:
        print_table(rows)
        print()
    passes = run_passes(args.repeats)
    print_passes(passes)
    meta = dict(python=platform.python_version(), numpy=np.__version__,
                machine=platform.machine(), cpus=os.cpu_count(), repeats=args.repeats,
                horizon=args.horizon, statistic="median", plants=plants.__file__)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)), suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(dict(meta=meta, rows=rows, passes=passes), fh, indent=2)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
