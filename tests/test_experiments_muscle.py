"""The muscle-arm reaching experiment runs as a user runs it and writes its outputs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from experiment_scripts import load_script

import hfcontrol as hf
from hfcontrol import recipes

ROOT = Path(__file__).resolve().parents[1]


def test_muscle_arm_reach_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "muscle_arm_reach.py"),
                           "--out", str(tmp_path), "--quick"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("heldout_final_error_m", "heldout_final_speed_mps", "catch_drift_m",
                "train_wall_s"):
        assert metrics[key] > 0, key
    for name in ("hand_paths", "muscles", "speed_profiles", "learning_curve"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    controller = hf.Controller.load(tmp_path / "controller.npz")
    assert controller.loop.inputs == "task"
    senses = controller.loop.senses
    assert senses.names == ("proprioception", "vision")
    assert [(ch.delay, ch.noise) for ch in senses.channels] == [(2, 1e-3), (7, 1e-3)]


def test_muscle_reach_heldout_is_measured_independently():
    recipe = recipes.muscle_reach(hidden=4, batch=4)
    loop, task = recipe.loop, recipe.loop.task
    reach, catch = recipe.info["heldout_reach"], recipe.info["heldout_catch"]
    # the catch trials have no go cue and hold the start; the reaches end at their goals
    assert not catch.inputs[:, :, 2].any() and reach.inputs[:, -1, 2].all()
    np.testing.assert_array_equal(reach.targets[:, -1], recipe.info["goals"])
    # the metrics, recomputed from a plain rollout
    run = loop.rollout(reach, noise=False)
    err = np.linalg.norm(loop.plant.hand_position(run.states[:, -1]) - recipe.info["goals"],
                         axis=1)
    held = loop.rollout(catch, noise=False)
    drift = np.linalg.norm(loop.plant.hand_position(held.states.reshape(-1, loop.n))
                           .reshape(8, -1, 2) - task.start, axis=2).max(axis=1)
    metrics = recipe.metrics(hf.Controller(loop))
    assert np.isclose(metrics["heldout_final_error_m"], err.mean())
    assert np.isclose(metrics["catch_drift_m"], drift.mean())
    # the quiet start: the untrained controller sends 5 % excitations whatever it senses
    np.testing.assert_allclose(run.controls, 1 / (1 + np.exp(3.0)), rtol=1e-5)


def _motornet_compare():
    return load_script("motornet_compare")


def test_motornet_order_of_updates_without_the_lag_is_our_step():
    """The MotorNet comparison's replica of MotorNet's order of updates (no MotorNet needed):
    given the forces at the current state instead of the carried ones, its step is the
    plant's NumPy reference step; with the carried forces it differs, by an O(dt) lag."""
    mc = _motornet_compare()
    import plants

    arm = plants.MuscleArm()
    x0, U, _ = mc.reach_excitations(arm, seconds=0.2, n_targets=3)
    X = arm.rollout(x0, U)
    for t in (0, 5, 19):
        x, u = X[:, t], U[:, t]
        np.testing.assert_allclose(mc._motornet_step(arm, x, arm.muscle_forces(x), u),
                                   arm.numpy_step(x, u), rtol=1e-12, atol=1e-12)
    lagged = mc.motornet_scheme(arm, x0, U)
    # the first step has no lag yet (the compiled rollout against NumPy: rounding only)
    np.testing.assert_allclose(lagged[:, :2], X[:, :2], rtol=1e-12, atol=1e-12)
    gap = np.abs(lagged[:, -1, 2:4] - X[:, -1, 2:4]).max()
    assert 1e-6 < gap < 0.1
