"""Train a recurrent controller to reach with the two-link arm, from scratch.

Usage::

    python experiments/arm_reach.py --out DIR [--delay 3] [--obs-noise 0.01] [--updates N]
        [--seed S] [--hidden N] [--quick]

The arm has Li & Todorov's parameters (dt 10 ms); each movement lasts 0.5 s. Targets are
drawn anew every update, uniformly from the disc of radius 12 cm around the start hand
position (any direction). Hessian-free optimisation with exact Gauss-Newton curvature
through the closed loop (``hfcontrol.recipes.arm_reach``). The weights kept are the best
on a fixed validation batch drawn from the task; the results are measured on 32 held-out
targets built by hand (8 directions x 4 distances) that training never sees.

Writes to ``DIR``: ``controller.npz`` (``hfcontrol.Controller.load``), ``metrics.json``
(``heldout_final_error_m``, ``heldout_final_speed_mps``, ``train_wall_s`` -- compilation
included -- and the learning curve), ``history.json``, and the figures
``hand_paths.png`` (8 centre-out reaches of 10 cm, untrained and trained),
``kinematics.png`` (joint angles, velocities and torques of one reach),
``speed_profiles.png`` and ``learning_curve.png`` (held-out error against updates and
wall time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--delay", type=int, default=0, help="sensory delay in steps (10 ms)")
    parser.add_argument("--obs-noise", type=float, default=0.0,
                        help="standard deviation of the observation noise (rad, rad/s)")
    parser.add_argument("--updates", type=int, default=None, help="updates (default 120)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=32, help="recurrent units")
    parser.add_argument("--quick", action="store_true", help="a few updates (for the tests)")
    args = parser.parse_args(argv)
    if args.delay < 0 or args.obs_noise < 0 or args.hidden < 1 or args.seed < 0:
        parser.error("--delay, --obs-noise and --seed must be >= 0, --hidden >= 1")
    if args.updates is not None and args.updates < 1:
        parser.error("--updates must be >= 1")
    return args


def main(argv=None) -> int:
    args = _arguments(argv)
    start_clock = time.perf_counter()
    # imported here, so that the clock includes loading the compiled kernels
    import hfcontrol as hf
    from hfcontrol import figures, recipes
    from hfcontrol.persistence import atomic_write_text
    from hfcontrol.training import train
    from plants.tasks import TaskBatch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    updates = args.updates or (3 if args.quick else 120)
    recipe = recipes.arm_reach(args.seed, hidden=args.hidden, delay=args.delay,
                               obs_noise=args.obs_noise, updates=updates,
                               batch=16 if args.quick else 64)
    loop, task = recipe.loop, recipe.loop.task
    validation = task.sample(64, seed=10_000 + args.seed)
    centre_out = TaskBatch(*_centre_out(task))

    def heldout_errors(noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Final hand error (m) and speed (m/s) of each held-out reach."""
        final = loop.rollout(recipe.heldout, noise=noise, cost=False).states[:, -1]
        return (np.linalg.norm(task.outputs(final) - recipe.info["goals"], axis=1),
                np.linalg.norm(task.velocity(final), axis=1))

    def heldout_metrics(noise: bool = False) -> tuple[float, float]:
        err, speed = heldout_errors(noise)
        return float(err.mean()), float(speed.mean())

    def validation_error() -> float:
        return float(np.mean(loop.rollout(validation, noise=False).cost))

    before = loop.rollout(centre_out, noise=False)
    curve = {"update": [], "time": [], "heldout": [], "heldout_speed": []}

    def record(state):
        err, speed = heldout_metrics()
        curve["update"].append(state.update + 1)
        curve["time"].append(time.perf_counter() - start_clock)
        curve["heldout"].append(err)
        curve["heldout_speed"].append(speed)

    result = train(loop, recipe.make_optimizer(), recipe.train_batches, updates=updates,
                   evaluate=validation_error, callbacks=[record], restore_best=True,
                   progress=not args.quick and sys.stderr.isatty())
    train_wall = time.perf_counter() - start_clock
    controller = hf.Controller(loop)
    controller.save(out / "controller.npz")
    errors, speeds = heldout_errors()
    err, speed = float(errors.mean()), float(speeds.mean())
    metrics = {
        "heldout_final_error_m": err, "heldout_final_speed_mps": speed,
        "heldout_final_error_max_m": float(errors.max()),
        "train_wall_s": train_wall, "updates": len(result.history["epoch"]),
        "settings": {"delay": args.delay, "obs_noise": args.obs_noise, "seed": args.seed,
                     "hidden": args.hidden, "batch": recipe.info["batch"]},
        "learning_curve": curve,
    }
    if args.obs_noise:
        rng_state = loop.rng.bit_generator.state
        metrics["heldout_final_error_noisy_m"], metrics["heldout_final_speed_noisy_mps"] = \
            heldout_metrics(noise=True)
        loop.rng.bit_generator.state = rng_state
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "history.json", json.dumps(result.history, default=float))

    after = loop.rollout(centre_out, noise=False)
    goals = centre_out.targets[:, -1]
    figures.plot_hand_paths({"untrained": task.observe(before.states),
                             f"trained ({metrics['updates']} updates)":
                                 task.observe(after.states)},
                            goals, task.start, out / "hand_paths.png",
                            title="Two-link arm, centre-out reaches of 10 cm")
    t = np.arange(task.horizon + 1) * task.plant.dt
    figures.plot_reach_kinematics(t, after.states[0], after.controls[0],
                                  out / "kinematics.png", title="One reach (target 1)")
    speeds = np.linalg.norm(task.velocity(after.states.reshape(-1, loop.n)).reshape(
        after.states.shape[0], -1, 2), axis=2)
    figures.plot_speed_profiles(t, speeds, out / "speed_profiles.png",
                                title="Hand speed, centre-out reaches")
    figures.plot_learning_curves({"Hessian-free, exact closed-loop curvature": curve},
                                 out / "learning_curve.png",
                                 ylabel="held-out final hand error (m)", hline=0.002)
    print(f"arm reach: held-out final error {1000 * err:.2f} mm, speed {100 * speed:.2f} cm/s "
          f"after {metrics['updates']} updates, {train_wall:.1f} s (compilation included); "
          f"wrote {out}/")
    return 0


def _centre_out(task):
    """8 centre-out targets 10 cm from the start: ``(x0, targets)``."""
    angles = np.arange(8) * np.pi / 4
    goals = task.start + 0.10 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    start = task.sample(8, seed=0)
    targets = np.full_like(start.targets, np.nan)
    targets[:, -1] = goals
    return start.x0, targets


if __name__ == "__main__":
    raise SystemExit(main())
