"""Train a recurrent controller to reach with the redundant three-link arm, from scratch.

Usage::

    python experiments/arm3_reach.py --out DIR [--delay 3] [--obs-noise 0.01] [--updates N]
        [--seed S] [--hidden N] [--quick]

The arm is ``plants.ThreeLinkArm()`` (shoulder, elbow, wrist; Winter's anthropometry for a
70 kg, 1.75 m adult; dt 10 ms); each movement lasts 0.5 s. Three joints place the hand in
the plane, so the posture at each target is the controller's own choice. Targets are drawn
anew every update from the disc of radius 12 cm around the start hand position.
Hessian-free optimisation with exact Gauss-Newton curvature through the closed loop
(``hfcontrol.recipes.arm3_reach``, trained into a run folder by
``hfcontrol.runs.train_run``: this script is ``hfcontrol train arm3-reach`` with its options
as flags). Results are measured on 32 held-out targets built by hand (8 directions x 4
distances) that training never sees.

Writes to ``DIR`` (a run folder, see :mod:`hfcontrol.runs`): ``controller.npz``,
``config.json``, ``metrics.json`` (``heldout_final_error_m``, ``heldout_final_speed_mps``,
``heldout_final_joint_angles_deg``, ``heldout_wrist_excursion_deg_mean_abs``,
``train_wall_s`` -- compilation included -- and the learning curve), ``history.json``,
``curve.json``, and the figures ``hand_paths.png``, ``kinematics.png`` (joint angles,
velocities and torques of one reach), ``speed_profiles.png``, ``postures.png`` (stick
figures of the arm at the end of 8 centre-out reaches) and ``learning_curve.png``.
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
    parser.add_argument("--updates", type=int, default=None, help="updates (default 150)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=48, help="recurrent units")
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
        options["batch"] = 16
    metrics = runs.train_run("arm3-reach", args.out, seed=args.seed,
                             updates=args.updates or (3 if args.quick else None),
                             options=options, progress=not args.quick and sys.stderr.isatty(),
                             started=started)
    print(f"{metrics['summary']} (compilation included); wrote {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
