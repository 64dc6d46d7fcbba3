"""Train a recurrent controller to reach with the two-link arm, from scratch.

Usage::

    python experiments/arm_reach.py --out DIR [--delay 3] [--obs-noise 0.01] [--updates N]
        [--seed S] [--hidden N] [--quick]

The arm has Li & Todorov's parameters (dt 10 ms); each movement lasts 0.5 s. Targets are
drawn anew every update, uniformly from the disc of radius 12 cm around the start hand
position (any direction). Hessian-free optimisation with exact Gauss-Newton curvature
through the closed loop (``hfcontrol.recipes.arm_reach``, trained into a run folder by
``hfcontrol.runs.train_run``: this script is ``hfcontrol train arm-reach`` with its
options as flags). The weights kept are the best on a fixed validation batch drawn from
the task; the results are measured on 32 held-out targets built by hand (8 directions x 4
distances) that training never sees.

Writes to ``DIR`` (a run folder, see :mod:`hfcontrol.runs`): ``controller.npz``
(``hfcontrol.Controller.load``), ``config.json``, ``metrics.json``
(``heldout_final_error_m``, ``heldout_final_speed_mps``, ``train_wall_s`` -- compilation
included -- and the learning curve), ``history.json``, ``curve.json``, and the figures
``hand_paths.png`` (8 centre-out reaches of 10 cm, untrained and trained),
``kinematics.png`` (joint angles, velocities and torques of one reach),
``speed_profiles.png`` and ``learning_curve.png`` (held-out error against updates and
wall time).
"""

from __future__ import annotations

import argparse
import sys
import time


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
    started = time.perf_counter()  # before the import: loading the kernels counts
    from hfcontrol import runs  # the recipe and the run folder live in the package

    options = {"hidden": args.hidden, "delay": args.delay, "obs_noise": args.obs_noise}
    if args.quick:
        options["batch"] = 16
    metrics = runs.train_run("arm-reach", args.out, seed=args.seed,
                             updates=args.updates or (3 if args.quick else None),
                             options=options, progress=not args.quick and sys.stderr.isatty(),
                             started=started)
    print(f"{metrics['summary']} (compilation included); wrote {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
