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

from _reach_script import main as _main  # beside this script


def main(argv=None) -> int:
    return _main("arm3-reach", __doc__.split("\n")[0], argv, hidden=48, updates=150)


if __name__ == "__main__":
    raise SystemExit(main())
