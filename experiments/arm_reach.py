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

from _reach_script import main as _main  # beside this script


def main(argv=None) -> int:
    return _main("arm-reach", __doc__.split("\n")[0], argv, hidden=32, updates=120)


if __name__ == "__main__":
    raise SystemExit(main())
