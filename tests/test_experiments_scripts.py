"""The experiment scripts of issue 12 run as a user runs them (``--quick``), and what their
recipes add: held-out sets, metrics and the measures of the force-field experiment."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from experiment_scripts import load_script

import hfcontrol as hf
from hfcontrol import recipes

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def _run(script, *args):
    return subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


_script = load_script


QUICK = {
    "arm3_reach.py": (["heldout_final_error_m", "heldout_final_joint_angles_deg",
                       "heldout_wrist_excursion_deg_mean_abs", "learning_curve"],
                      ["hand_paths", "kinematics", "speed_profiles", "postures",
                       "learning_curve"], []),
    "arm_forcefield.py": (["phases", "per_batch", "signatures", "curl_Ns_per_m"],
                          ["hand_paths", "lateral_deviation", "null/hand_paths"], []),
    "cartpole_balance.py": (["heldout_success_rate", "gym_plants_cartpole_mean_return",
                             "gym_cartpole_v1_returns", "train_wall_s"],
                            ["phase_portrait", "trajectories", "learning_curve"], []),
    "integrator.py": (["final_error", "heldout_error_len20", "heldout_relative_error_len40"],
                      ["history", "signals"], []),
    "adding.py": (["test_error", "extra_heldout_fraction_within_0.04", "updates"],
                  ["history", "signals", "answers"], []),
    "benchmark_gv_scaling.py": (["sizes", "seconds_per_gv"], ["gv_scaling"], ["--no-jax"]),
}


@pytest.mark.parametrize("script", sorted(QUICK))
def test_quick_run_writes_metrics_and_figures(script, tmp_path):
    keys, pngs, extra = QUICK[script]
    proc = _run(script, "--out", str(tmp_path), "--quick", *extra)
    assert proc.returncode == 0, proc.stderr
    name = "gv_scaling.json" if script.startswith("benchmark") else "metrics.json"
    metrics = json.loads((tmp_path / name).read_text())
    missing = [k for k in keys if k not in metrics]
    assert not missing, f"{script}: metrics without {missing}"
    for png in pngs:
        assert (tmp_path / f"{png}.png").read_bytes()[:8] == PNG, png
    if script == "arm_forcefield.py":
        assert set(metrics["phases"]) == {"null", "early_field", "late_field",
                                          "washout_first", "washout_late"}
        # one measurement per batch plus the state after each phase's last update
        assert metrics["per_batch"]["phase"].count("field") == 2 + 1
    if script == "benchmark_gv_scaling.py":
        assert set(metrics["seconds_per_gv"]) == {"numba", "numpy"}
        assert all(t > 0 for t in metrics["seconds_per_gv"]["numba"])


@pytest.mark.parametrize("script, flag", [("arm_forcefield.py", ["--curl", "0"]),
                                          ("cartpole_balance.py", ["--episodes", "0"]),
                                          ("integrator.py", ["--seed", "-1"]),
                                          ("benchmark_gv_scaling.py", ["--repeats", "1"])])
def test_a_bad_flag_exits_2(script, flag, tmp_path):
    proc = _run(script, "--out", str(tmp_path), *flag)
    assert proc.returncode == 2 and "must be" in proc.stderr and "Traceback" not in proc.stderr


def test_path_measures_on_a_half_circle():
    """A half circle from start to target bulges by its radius, to the left when it turns
    clockwise; its velocity at peak speed (the middle, for a path sped up there) is along
    the target direction."""
    measures = _script("arm_forcefield").path_measures
    r = 0.05
    s = np.linspace(0.0, 1.0, 201)
    phase = np.pi * (s - np.sin(2 * np.pi * s) / (2 * np.pi))  # fastest at the middle
    start, goal = np.array([0.1, 0.2]), np.array([0.1 + 2 * r, 0.2])
    centre = (start + goal) / 2
    left = centre + r * np.stack([-np.cos(phase), np.sin(phase)], axis=1)  # via +y
    right = left * [1, -1] + [0, 2 * centre[1]]
    dev, ang = measures(np.stack([left, right]), np.stack([start, start]),
                        np.stack([goal, goal]), 0.01)
    np.testing.assert_allclose(dev, [r, -r], rtol=1e-6)
    np.testing.assert_allclose(ang, [0.0, 0.0], atol=0.02)


def test_new_recipes_are_registered_with_heldout_sets_of_their_own():
    for name in ("arm3-reach", "cartpole-balance"):
        assert name in recipes.RECIPES and recipes.describe(name).endswith(".")
    arm3 = recipes.get("arm3-reach", seed=0, batch=4)
    assert arm3.loop.plant.n_links == 3
    goals = arm3.info["goals"]
    assert goals.shape == (32, 2) and len(np.unique(goals.round(9), axis=0)) == 32
    # the held-out targets lie in the training disc, and no validation draw is one of them
    dist = np.linalg.norm(goals - arm3.loop.task.start, axis=1)
    assert dist.max() <= 0.12 + 1e-12
    val = arm3.validation.targets[:, -1]
    assert np.min(np.linalg.norm(val[:, None] - goals[None], axis=2)) > 1e-6
    cart = recipes.get("cartpole-balance", seed=0, batch=4, updates=3)
    x0 = cart.heldout.x0
    assert x0.shape == (81, 4) and len(np.unique(x0, axis=0)) == 81
    assert np.abs(x0).max() == pytest.approx(0.1) and cart.heldout.horizon == 500
    assert [p.updates for p in cart.schedule()] == [1, 2]
    with pytest.raises(ValueError, match="spread"):
        recipes.get("cartpole-balance", spread=2.0)


def test_arm3_metrics_and_cartpole_success_criterion():
    arm3 = recipes.get("arm3-reach", seed=0, batch=4)
    metrics = arm3.metrics(hf.Controller(arm3.loop))
    angles = np.array(metrics["heldout_final_joint_angles_deg"])
    assert angles.shape == (32, 3)
    # the hand at those angles is where the held-out error says it is (forward kinematics
    # of the arm, not the loop's own output)
    q = np.radians(angles)
    x = np.concatenate([q, np.zeros_like(q)], axis=1)
    hand = arm3.loop.plant.hand_position(x)
    err = np.linalg.norm(hand - arm3.info["goals"], axis=1).mean()
    assert err == pytest.approx(metrics["heldout_final_error_m"], abs=1e-3)
    from hfcontrol.recipes.cartpole import balanced

    states = np.zeros((3, 11, 4))
    states[1, 5, 2] = 0.21  # just past 12 degrees (0.2094 rad)
    states[2, 7, 0] = -2.41  # off the track
    assert balanced(states).tolist() == [True, False, False]


def test_pendulum_recipe_options_selection_and_a_feedforward_policy():
    from hfcontrol.recipes.pendulum import PHASES, selection_score, upright

    recipe = recipes.get("pendulum-swingup", seed=0, batch=8, curvature=4, screen=2)
    assert recipe.heldout.x0.shape == (100, 2) and recipe.validation.x0.shape == (64, 2)
    # Pendulum-v1's start distribution: theta in [-pi, pi), theta_dot in [-1, 1)
    x0 = recipe.heldout.x0
    assert np.abs(x0[:, 0]).max() <= np.pi and np.abs(x0[:, 1]).max() <= 1
    assert np.abs(x0[:, 0]).max() > 2.5 and len(np.unique(x0[:, 0])) == 100
    assert [p.updates for p in recipe.schedule()] == [n for _, _, n in PHASES]
    assert [p.loop.task.horizon for p in recipe.schedule()] == [h for h, _, _ in PHASES]
    assert recipe.schedule()[0].batches(0)[1] == 4  # the curvature minibatch
    # near-top starts only in the phases without shaping, in the asked fraction of a batch
    near = recipes.get("pendulum-swingup", seed=0, batch=40, curvature=8, near_upright=0.25,
                       phases=[[20, 5.0, 1], [20, 0.0, 1]])
    shaped, plain = (p.batches(0)[0].x0 for p in near.schedule())
    assert (np.abs(shaped[:, 0]) >= 0.6).sum() > 10  # U(-pi, pi): about 32 of 40
    assert (np.abs(plain[:10, 0]) < 0.6).all() and (np.abs(plain[:10, 1]) <= 1).all()
    assert (np.abs(plain[10:, 0]) >= 0.6).sum() > 10
    # the screened starts differ, and the first is the recipe's own
    W0 = recipe.loop.W.copy()
    recipe.screening.init(1)
    assert not np.allclose(recipe.loop.W, W0)
    recipe.screening.init(0)
    np.testing.assert_array_equal(recipe.loop.W, W0)
    # without recurrence the action depends on the current observation only: the same
    # observation after different histories gives the same torque
    controller = hf.Controller(recipe.loop)
    obs = controller.observe(np.array([0.3, -0.2]))
    actions = []
    for history in ([0.0, 0.0], [2.5, 4.0]):
        controller.reset()
        controller.act(controller.observe(np.array(history)))
        actions.append(controller.act(obs))
    np.testing.assert_array_equal(actions[0], actions[1])
    recurrent = recipes.get("pendulum-swingup", seed=0, batch=8, curvature=4, recurrent=True)
    controller = hf.Controller(recurrent.loop)
    actions = []
    for history in ([0.0, 0.0], [2.5, 4.0]):
        controller.reset()
        controller.act(controller.observe(np.array(history)))
        actions.append(controller.act(obs))
    assert not np.allclose(actions[0], actions[1])

    # selection: fewest failures beyond the tolerated, then the best return
    T = 201
    good = np.zeros((2, T, 2))  # upright at rest throughout: return 0
    bad = np.zeros((2, T, 2))
    bad[:, :, 0] = np.pi  # hanging: not upright, return -200 pi^2
    u = np.zeros((2, T - 1, 1))
    mixed = np.concatenate([good, bad])
    u4 = np.zeros((4, T - 1, 1))
    assert upright(mixed).tolist() == [True, True, False, False]
    assert selection_score(good, u) == 0.0
    assert selection_score(mixed, u4) == pytest.approx(2 + 100 * np.pi**2 / 1e4)
    assert selection_score(mixed, u4, tolerated=2) == pytest.approx(100 * np.pi**2 / 1e4)
    for options, message in [({"curvature": 9, "batch": 8}, "curvature"),
                             ({"phases": [[60, -1.0, 10]]}, "phases"),
                             ({"phases": []}, "phases"), ({"tolerated": -1}, "tolerated"),
                             ({"recurrent": "no"}, "recurrent"),
                             ({"near_upright": 1.5}, "near_upright")]:
        with pytest.raises(ValueError, match=message):
            recipes.get("pendulum-swingup", **options)
