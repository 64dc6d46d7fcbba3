"""Train a recurrent controller of the six-muscle arm to reach after an instructed delay.

Usage::

    python experiments/muscle_arm_reach.py --out DIR [--proprioception-delay 0.02]
        [--vision-delay 0.07] [--proprioception-noise 0.001] [--vision-noise 0.001]
        [--updates N] [--seed S] [--hidden N] [--quick]

The arm is ``plants.MuscleArm()`` (MotorNet's ``RigidTendonArm26``: six Hill muscles with
rigid tendons on the two-link skeleton, dt 10 ms); the task is
``plants.tasks.DelayedReach``: the target appears, a go cue follows 100-300 ms later, and
the hand must be at the target 450 ms after the cue; one episode in five is a catch trial
without a go cue, where the arm must hold. The network reads the cues and two senses, each
delayed and noisy (``hfcontrol.observation.arm_senses``): proprioception, the joint angles
and velocities 20 ms late, and vision, the hand position 70 ms late (noise 1e-3 rad,
rad/s and m); it outputs the six excitations. Hessian-free with exact curvature through
muscles, delays and loop (``hfcontrol.recipes.muscle_reach``; this script is ``hfcontrol
train muscle-reach``).

Writes to ``DIR`` (a run folder, see :mod:`hfcontrol.runs`): ``controller.npz``,
``config.json``, ``metrics.json`` (``heldout_final_error_m``, ``heldout_final_speed_mps``,
``catch_drift_m`` -- the largest distance of the hand from the start in held-out catch
trials -- ``train_wall_s``, compilation included, and the learning curve),
``history.json``, ``curve.json``, and the figures ``hand_paths.png``, ``muscles.png``
(excitations and activations of one reach), ``speed_profiles.png`` and
``learning_curve.png``.
"""

from __future__ import annotations

from _reach_script import main as _main  # beside this script


def main(argv=None) -> int:
    return _main("muscle-reach", __doc__.split("\n")[0], argv, hidden=64, updates=80,
                 quick_batch=8, quick_updates=2, senses=True)


if __name__ == "__main__":
    raise SystemExit(main())
