"""Train a recurrent controller of the six-muscle arm to reach after an instructed delay.

Usage::

    python experiments/muscle_arm_reach.py --out DIR [--delay 2] [--obs-noise 0.001]
        [--updates N] [--seed S] [--hidden N] [--quick]

The arm is ``plants.MuscleArm()`` (MotorNet's ``RigidTendonArm26``: six Hill muscles with
rigid tendons on the two-link skeleton, dt 10 ms); the task is
``plants.tasks.DelayedReach``: the target appears, a go cue follows 100-300 ms later, and
the hand must be at the target 450 ms after the cue; one episode in five is a catch trial
without a go cue, where the arm must hold. The network reads the cues and the joint angles
and velocities ``--delay`` steps late with Gaussian noise, and outputs the six
excitations. Hessian-free with exact curvature through muscles, delay and loop
(``hfcontrol.recipes.muscle_reach``; this script is ``hfcontrol train muscle-reach``).

Writes to ``DIR`` (a run folder, see :mod:`hfcontrol.runs`): ``controller.npz``,
``config.json``, ``metrics.json`` (``heldout_final_error_m``, ``heldout_final_speed_mps``,
``catch_drift_m`` -- the largest distance of the hand from the start in held-out catch
trials -- ``train_wall_s``, compilation included, and the learning curve),
``history.json``, ``curve.json``, and the figures ``hand_paths.png``, ``muscles.png``
(excitations and activations of one reach), ``speed_profiles.png`` and
``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import sys
import time


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--delay", type=int, default=2, help="sensory delay in steps (10 ms)")
    parser.add_argument("--obs-noise", type=float, default=1e-3,
                        help="standard deviation of the observation noise (rad, rad/s)")
    parser.add_argument("--updates", type=int, default=None, help="updates (default 80)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=64, help="recurrent units")
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
    from hfcontrol import runs

    options = {"hidden": args.hidden, "delay": args.delay, "obs_noise": args.obs_noise}
    if args.quick:
        options["batch"] = 8
    metrics = runs.train_run("muscle-reach", args.out, seed=args.seed,
                             updates=args.updates or (2 if args.quick else None),
                             options=options, progress=not args.quick and sys.stderr.isatty(),
                             started=started)
    print(f"{metrics['summary']} (compilation included); wrote {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
