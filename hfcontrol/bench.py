"""A quick benchmark of the closed loop (``hfcontrol bench``): the arm-reach problem's
``G v``, gradient and trial rollout, and batch-1024 rollouts, compiled against the NumPy
reference path. ``experiments/benchmark_closed_loop.py`` times the same with these
functions, adds JAX and writes JSON."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

__all__ = ["median_time", "build", "time_arm_reach", "time_rollouts", "run"]


def median_time(func: Callable[[], object], repeats: int, min_sample: float = 0.02) -> float:
    """Median seconds per call over ``repeats`` samples after a warm-up call; a sample
    averages as many consecutive calls as take ``min_sample`` seconds, so that timer
    resolution and one-off interruptions do not decide the figures of short calls."""
    func()
    start = time.perf_counter()
    func()
    once = time.perf_counter() - start
    number = max(1, int(min_sample / max(once, 1e-7)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            func()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def build(backend: str, batch: int, seed: int = 0):
    """The arm-reach loop (:func:`hfcontrol.recipes.arm_reach`) on ``backend``, with a
    cached minibatch of ``batch`` episodes and a direction ``v``."""
    from . import recipes

    loop = recipes.arm_reach(seed).loop
    loop.backend = backend
    episodes = loop.task.sample(batch, seed=1)
    loop.cache_minibatch(episodes)
    v = np.random.default_rng(2).standard_normal(loop.n_params).astype(loop.dtype)
    return loop, episodes, v


def time_arm_reach(backend: str, repeats: int) -> dict[str, float]:
    """Seconds per ``G v``, gradient and trial rollout (``error(W)``) of the arm-reach
    problem: a 32-unit RNN, batch 64, 50 steps, float32."""
    loop, _, v = build(backend, 64)
    trial = loop.W + np.float32(1e-3) * v
    return {"Gv": median_time(lambda: loop.calc_G(v), repeats),
            "grad": median_time(loop.calc_grad, repeats),
            "error": median_time(lambda: loop.error(trial), repeats)}


def time_rollouts(backend: str, repeats: int, batch: int = 1024) -> dict[str, float]:
    """Closed-loop rollouts of ``batch`` arm-reach episodes: seconds, and plant steps per
    second, without and with the task cost."""
    loop, _, _ = build(backend, 8)
    episodes = loop.task.sample(batch, seed=3)
    seconds = median_time(lambda: loop.rollout(episodes, noise=False, cost=False), repeats)
    with_cost = median_time(lambda: loop.rollout(episodes, noise=False), repeats)
    steps = batch * loop.task.horizon
    return {"rollout": seconds, "steps_per_s": steps / seconds,
            "rollout_with_cost": with_cost, "steps_per_s_with_cost": steps / with_cost}


def run(repeats: int = 7, progress: bool = True) -> dict[str, dict[str, float]]:
    """Time both paths; returns ``{"numba": {...}, "numpy": {...}}`` (medians)."""
    from tqdm.auto import tqdm

    jobs = [(backend, job) for backend in ("numba", "numpy")
            for job in (time_arm_reach, time_rollouts)]
    results: dict[str, dict[str, float]] = {"numba": {}, "numpy": {}}
    for backend, job in tqdm(jobs, disable=not progress, desc="bench", unit="part"):
        results[backend].update(job(backend, repeats))
    return results


def report(results: dict[str, dict[str, float]]) -> str:
    """The table of :func:`run`'s figures, with the compiled path's speed-ups."""
    c, n = results["numba"], results["numpy"]
    lines = ["arm-reach problem (RNN 32, batch 64, 50 steps, float32), ms per call:",
             f"  {'path':8s} {'G v':>8s} {'grad':>8s} {'error(W)':>9s}  rollouts at batch 1024"]
    for name, r in (("compiled", c), ("numpy", n)):
        lines.append(f"  {name:8s} {r['Gv'] * 1e3:8.3f} {r['grad'] * 1e3:8.3f} "
                     f"{r['error'] * 1e3:9.3f}  {r['steps_per_s'] / 1e6:6.2f} M plant steps/s")
    lines.append(f"  compiled over NumPy: G v {n['Gv'] / c['Gv']:.1f}x, gradient "
                 f"{n['grad'] / c['grad']:.1f}x, rollouts "
                 f"{c['steps_per_s'] / n['steps_per_s']:.1f}x")
    return "\n".join(lines)
