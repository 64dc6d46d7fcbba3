"""The curl-field experiment on the six-muscle arm (``experiments/arm_forcefield.py --plant
muscle``): end to end, and its force-channel probes against the arm's dynamics."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from experiment_scripts import load_script
from plants_oracles import hand_force_from_dynamics

from hfcontrol import recipes
from plants.tasks import ForceChannel, TaskBatch

ROOT = Path(__file__).resolve().parents[1]


def _forcefield():
    return load_script("arm_forcefield")


@pytest.fixture(scope="module")
def moving_loop():
    """A small muscle-reach loop (the recipe's senses: proprioception 20 ms, vision 70 ms)
    whose output layer has random weights, so that it moves the arm by many centimetres."""
    recipe = recipes.muscle_reach(hidden=8, batch=4)
    loop = recipe.loop
    start, mid, _ = loop.net.offsets[(1, 2)]
    W = loop.W.copy()
    W[start:mid] = np.random.default_rng(5).standard_normal(mid - start)
    loop.W = W
    return recipe, loop


def test_loop_on_another_plant_keeps_the_senses_and_weights(moving_loop):
    """The loops of every phase are the trained loop on another plant: on the same plant
    they reproduce its rollout exactly (a loop that merged the two senses into one channel
    with the longer delay, or lost the cues, would not)."""
    ff = _forcefield()
    recipe, base = moving_loop
    probe, _ = ff.probe_batch(base.task, offset=ff.PROBE_OFFSET["muscle"])
    copy = ff.loop_on(base, base.plant, np.random.default_rng(0))
    assert [(ch.name, ch.delay, ch.noise) for ch in copy.senses.channels] == [
        ("proprioception", 2, 1e-3), ("vision", 7, 1e-3)]
    a = base.rollout(probe, noise=False, cost=False)
    b = copy.rollout(probe, noise=False, cost=False)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.controls, b.controls)
    assert np.linalg.norm(base.task.observe(a.states) - base.task.start, axis=2).max() > 0.1


def test_probe_targets_are_the_recipes_heldout_far_targets(moving_loop):
    ff = _forcefield()
    recipe, base = moving_loop
    probe, goals = ff.probe_batch(base.task, offset=ff.PROBE_OFFSET["muscle"])
    np.testing.assert_allclose(goals, recipe.info["goals"][1::2], atol=1e-12)
    # reaches, not catch trials: each has its go cue and ends at its goal
    assert probe.inputs[:, -1, 2].all()
    np.testing.assert_array_equal(probe.targets[:, -1], goals)


def test_channel_probe_force_is_the_walls_force_from_the_dynamics(moving_loop):
    """For each probe reach the lateral force the probe records is the force the channel's
    wall exerts, recovered from the arm's dynamics (one Euler sub-step with and without the
    channel), with the opposite sign; the wall pushes across the line only; the channel holds
    the hand within 2 mm of the line; and the predicted force is c times the hand's speed
    along the line, from finite differences of the hand positions."""
    ff = _forcefield()
    _, base = moving_loop
    probe, goals = ff.probe_batch(base.task, offset=ff.PROBE_OFFSET["muscle"])
    c = 15.0
    probes = ff.channel_probes(lambda p: ff.loop_on(base, p, np.random.default_rng(0)),
                               base.plant, probe, goals, c)
    T1 = probe.targets.shape[1] + 1
    assert probes["force"].shape == probes["predicted"].shape == (8, T1)
    assert probes["max_abs_deviation_m"] < 2e-3
    assert probes["peak_force_N"] > 1.0 and probes["peak_predicted_force_N"] > 1.0
    dt = base.plant.dt
    for i in (0, 5):
        start = base.plant.hand_position(probe.x0[i:i + 1])[0]
        channel = ForceChannel(start, goals[i])
        arm = channel.plant(base.plant)
        one = TaskBatch(probe.x0[i:i + 1], probe.targets[i:i + 1], probe.inputs[i:i + 1])
        run = ff.loop_on(base, arm, np.random.default_rng(0)).rollout(one, noise=False,
                                                                       cost=False)
        x, u = run.states[0, :-1], run.controls[0]
        F = hand_force_from_dynamics(arm, base.plant, x, u)
        np.testing.assert_allclose(F @ channel.normal, -probes["force"][i, :-1],
                                   rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(F @ channel.direction, 0.0, atol=1e-5)
        hand = base.plant.hand_position(run.states[0])
        speed = (hand[2:] - hand[:-2]) @ channel.direction / (2 * dt)
        predicted = probes["predicted"][i, 1:-1]
        assert np.abs(predicted - c * speed).max() < 0.05 * np.abs(predicted).max()


def test_adaptation_index_is_the_regression_slope():
    """A force made of 0.6 times the predicted force plus a profile orthogonal to it has
    slope 0.6, and the fit explains the predicted part's share of its sum of squares."""
    ff = _forcefield()
    t = np.linspace(0.0, 1.0, 101)
    predicted = np.sin(np.pi * t) ** 2 * np.array([[1.0], [2.0]])  # two reaches
    other = np.cos(2 * np.pi * t) * np.array([[1.0], [-0.5]])
    other -= (other * predicted).sum() / (predicted * predicted).sum() * predicted
    force = 0.6 * predicted + other
    slope, r2 = ff.adaptation_index(force, predicted)
    assert slope == pytest.approx(0.6, abs=1e-12)
    share = (0.36 * (predicted ** 2).sum()) / (force ** 2).sum()
    assert r2 == pytest.approx(share, rel=1e-9)
    with pytest.raises(ValueError, match="predicted must not be all zeros"):
        ff.adaptation_index(force, np.zeros_like(force))
    with pytest.raises(ValueError, match="one shape"):
        ff.adaptation_index(force, predicted[:1])


def test_muscle_forcefield_quick_run(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "arm_forcefield.py"),
                           "--out", str(tmp_path), "--plant", "muscle", "--quick"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (m["plant"], m["recipe"]) == ("muscle", "muscle-reach")
    assert set(m["phases"]) == {"null", "early_field", "late_field", "washout_first",
                                "washout_late"}
    goals = np.array(m["probe_targets"]["goals_m"])
    assert goals.shape == (8, 2) and m["probe_targets"]["nearest_training_target_m"] > 0
    for name in ("null", "late_field"):
        probe = m["channel_probes"][name]
        force = np.array(probe["force_N"])
        assert force.shape == np.array(probe["predicted_force_N"]).shape
        assert force.shape[0] == 8 and np.isfinite(force).all()
        assert probe["max_abs_deviation_m"] < 2e-3
        # the index is the slope of the recorded profiles (rounded to 1e-5 N in the json)
        slope = (force * np.array(probe["predicted_force_N"])).sum() / (
            np.array(probe["predicted_force_N"]) ** 2).sum()
        assert slope == pytest.approx(probe["adaptation_index"], abs=1e-3)
    for png in ("hand_paths", "lateral_deviation", "channel_force", "channel_force_targets",
                "null/hand_paths", "null/muscles"):
        assert (tmp_path / f"{png}.png").read_bytes()[:4] == b"\x89PNG", png
