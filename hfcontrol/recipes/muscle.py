"""Muscle recipes: reaching with the six-muscle arm (MotorNet's ``RigidTendonArm26``), an
instructed delay, a go cue and catch trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import figures
from .. import optimizers as opt
from ..closed_loop import ClosedLoop
from ..observation import ARM_SENSE_DEFAULTS, arm_senses
from ..rnnet import RNNet
from ._base import Recipe, check_seed

__all__ = ["muscle_reach", "quiet_start"]


def quiet_start(loop: ClosedLoop, bias: float = 0.0) -> None:
    """Zero the output layer's weights and set its bias, so that the untrained controller
    sends one constant command whatever it senses.

    On episodes of a second, a randomly initialised output layer drives an arm into its
    joint stops, where the cost is flat and the first updates learn little; from a quiet
    start the first Gauss-Newton steps shape the feedback around the start posture.
    """
    W = loop.W.copy()
    start, mid, end = loop.net.offsets[(1, 2)]
    W[start:mid] = 0.0
    W[mid:end] = bias
    loop.W = W


def _heldout(task, distance: float):
    """8 directions (22.5 degrees off the axes) x 2 distances up to ``distance``, go cue
    at the middle of the task's range; and the same 8 far targets as catch trials."""
    from plants.tasks import TaskBatch

    angles = np.repeat(np.pi / 8 + np.arange(8) * np.pi / 4, 2)
    dist = np.tile(distance * np.array([0.5, 1.0]), 8)
    goals = task.start + dist[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    go = np.full(goals.shape[0], (task._go[0] + task._go[1]) // 2)
    x0 = task.sample(goals.shape[0], seed=0).x0
    reach = TaskBatch(x0, *task.episodes(goals, go))
    far = goals[1::2]
    catch = TaskBatch(x0[:8], *task.episodes(far, go[:8], np.ones(8, bool)))
    return reach, catch, goals


def _metrics(loop: ClosedLoop, reach, catch, goals) -> dict[str, Any]:
    task = loop.task
    run = loop.rollout(reach, noise=False, cost=False)
    err = np.linalg.norm(task.outputs(run.states[:, -1]) - goals, axis=1)
    speed = np.linalg.norm(task.velocity(run.states[:, -1]), axis=1)
    held = loop.rollout(catch, noise=False, cost=False)
    drift = np.linalg.norm(task.observe(held.states) - task.start, axis=2).max(axis=1)
    return {"heldout_final_error_m": float(err.mean()),
            "heldout_final_error_max_m": float(err.max()),
            "heldout_final_speed_mps": float(speed.mean()),
            "catch_drift_m": float(drift.mean()), "catch_drift_max_m": float(drift.max())}


def _summary(m) -> str:
    return (f"held-out final hand error {1000 * m['heldout_final_error_m']:.2f} mm, speed "
            f"{100 * m['heldout_final_speed_mps']:.2f} cm/s, catch-trial drift "
            f"{1000 * m['catch_drift_m']:.2f} mm")


def _figures(recipe: Recipe, controller, out: Path) -> list[Path]:
    """Hand paths (untrained and trained) of the held-out reaches, the muscles'
    excitations and activations in one reach, and the hand speed profiles."""
    task = controller.task
    reach = recipe.info["heldout_reach"]
    before = recipe.loop.rollout(reach, noise=False, cost=False)
    after = controller.rollout(reach)
    paths = [out / "hand_paths.png", out / "muscles.png", out / "speed_profiles.png"]
    figures.plot_hand_paths({"untrained": task.observe(before.states),
                             "trained": task.observe(after.states)},
                            recipe.info["goals"], task.start, paths[0],
                            title="Muscle arm: delayed reaches to held-out targets")
    t = np.arange(after.states.shape[1]) * task.plant.dt
    go = int(np.argmax(reach.inputs[0, :, 2] > 0))
    figures.plot_muscle_activity(t, after.controls[0], after.states[0, :, 4:],
                                 task.plant.muscle_names, paths[1], go_time=t[go],
                                 title="One reach: excitations and activations")
    B, T1, n = after.states.shape
    speeds = np.linalg.norm(task.velocity(after.states.reshape(-1, n)).reshape(B, T1, -1),
                            axis=2)
    figures.plot_speed_profiles(t, speeds, paths[2], title="Hand speed (go cue: dotted)",
                                vline=t[go])
    return paths


def muscle_reach(seed: int = 0, *, hidden: int = 64, batch: int = 64, updates: int = 80,
                 distance: float = 0.10, catch: float = 0.2,
                 proprioception_delay: float = ARM_SENSE_DEFAULTS["proprioception_delay"],
                 vision_delay: float = ARM_SENSE_DEFAULTS["vision_delay"],
                 proprioception_noise: float = ARM_SENSE_DEFAULTS["proprioception_noise"],
                 vision_noise: float = ARM_SENSE_DEFAULTS["vision_noise"],
                 dtype: Any = np.float32) -> Recipe:
    """Reaching with the six-muscle arm after an instructed delay, with catch trials.

    ``plants.MuscleArm()`` (MotorNet's ``RigidTendonArm26``: Kistemaker et al.'s Hill
    muscles on the two-link skeleton, dt 10 ms), ``plants.tasks.DelayedReach``: the target
    appears at 50 ms, the go cue comes between 150 and 350 ms, the hand must be at the
    target 450 ms later and stay to the end (0.9 s); one episode in five is a catch trial
    (no go cue: hold). Targets are drawn anew each update from the disc of radius
    ``distance`` (10 cm). A ``hidden``-unit RNN reads the cues (undelayed) and two senses
    (:func:`hfcontrol.observation.arm_senses`): proprioception, the joint angles and
    velocities ``proprioception_delay`` late (default 20 ms) with noise
    ``proprioception_noise`` (rad, rad/s), and vision, the hand position ``vision_delay``
    late (default 70 ms) with noise ``vision_noise`` (m); it outputs the six excitations
    through a logistic. Held out: 16 targets (8 directions 22.5 degrees off the axes, at 5
    and 10 cm) and 8 catch trials.
    """
    import plants
    from plants.tasks import CostWeights, DelayedReach

    seed = check_seed(seed)
    options = {"hidden": hidden, "batch": batch, "updates": updates, "distance": distance,
               "catch": catch, "proprioception_delay": proprioception_delay,
               "vision_delay": vision_delay, "proprioception_noise": proprioception_noise,
               "vision_noise": vision_noise, "dtype": np.dtype(dtype).name}
    arm = plants.MuscleArm()
    task = DelayedReach(arm, targets="disc", distance=distance, catch=catch,
                        weights=CostWeights(final_error=1.0, effort=1e-4, final_velocity=0.1,
                                            tracking=1.0))
    rng = np.random.default_rng(seed)
    # proprioception: the joint angles and velocities (not the muscles' activations)
    sensors = arm_senses(arm, proprioception_delay=proprioception_delay,
                         vision_delay=vision_delay, proprioception_noise=proprioception_noise,
                         vision_noise=vision_noise)
    n_in = task.input_dim + sum(ch.observation.size for ch in sensors)
    net = RNNet([n_in, hidden, arm.control_dim], layers=["Linear", "Tanh", "Logistic"],
                rng=rng, dtype=dtype, W_init_params={"init_type": "gaussian", "coeff": 1.0},
                W_rec_params={"init_type": "gaussian", "coeff": 0.5})
    loop = ClosedLoop(arm, task, net, inputs="task", sensors=sensors, rng=rng)
    quiet_start(loop, bias=-3.0)  # excitations of 5 % to begin with
    reach, catch_trials, goals = _heldout(task, distance)
    recipe = Recipe("muscle-reach", loop, lambda: opt.HessianFree(CG_iter=60, init_damping=1.0),
                    lambda k: (task.sample(batch, rng=rng),), reach, updates, rng,
                    validation=task.sample(64, seed=10_000 + seed),
                    curve=lambda: _metrics(loop, reach, catch_trials, goals)[
                        "heldout_final_error_m"],
                    curve_label="held-out final hand error (m)",
                    headline="heldout_final_error_m",
                    evaluate=lambda c: _metrics(c.loop, reach, catch_trials, goals),
                    summary=_summary, options=options,
                    info={"goals": goals, "heldout_reach": reach, "heldout_catch": catch_trials},
                    optimizers={"adam": (lambda: opt.Adam(l_rate=1e-3, clip_norm=1.0), 4000)})
    recipe.plot = lambda controller, out: _figures(recipe, controller, out)
    return recipe
