"""experiments/pendulum_trajectory_optimisation.py: the adjoint gradient against central
finite differences, the objective against Gymnasium's own Pendulum-v1, the optimiser and
the script's arguments."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from experiment_scripts import load_script

import hfcontrol as hf
import plants
from plants.tasks import PendulumV1, wrap_angle

ROOT = Path(__file__).resolve().parents[1]


def _script():
    return load_script("pendulum_trajectory_optimisation")


trajopt = _script()


def _central_differences(objective, torques, starts, h=1e-6):
    grads = np.empty_like(torques)
    for index in np.ndindex(torques.shape):
        up, down = torques.copy(), torques.copy()
        up[index] += h
        down[index] -= h
        grads[index] = (objective.costs(up, starts).sum()
                        - objective.costs(down, starts).sum()) / (2 * h)
    return grads


def _gym_run(start, torques):
    """Pendulum-v1 itself from ``start`` with ``torques``: (return, final state)."""
    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    env.unwrapped.state = np.array(start, dtype=float)
    total = 0.0
    for u in torques:
        _, reward, *_ = env.step(np.array([u]))
        total += float(reward)
    state = np.array(env.unwrapped.state, dtype=float)
    env.close()
    return total, state


def test_adjoint_gradient_matches_central_differences():
    objective = trajopt.PendulumV1Objective(25)
    rng = np.random.default_rng(0)
    starts = np.array([[2.8, -0.5], [0.3, 0.9], [-1.7, 0.2]])
    torques = rng.uniform(-1.8, 1.8, (3, 25))
    costs, grads = objective.costs_and_gradients(torques, starts)
    np.testing.assert_allclose(costs, objective.costs(torques, starts))
    fd = _central_differences(objective, torques, starts)
    np.testing.assert_allclose(grads, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())


def test_adjoint_gradient_with_the_speed_clip_active():
    objective = trajopt.PendulumV1Objective(12)
    # spinning at 7.5 rad/s with full torque along: the speed clip (8) binds at every step
    # but where the pendulum climbs, and the clipped steps pass no derivative back
    starts = np.array([[0.4, 7.5], [-2.0, -7.8]])
    torques = np.stack([np.full(12, 1.9), np.full(12, -1.9)])
    states = objective.plant.rollout(starts, torques[:, :, None])
    speeds = np.abs(states[:, 1:, 1])
    assert (speeds == 8.0).sum() >= 6 and (speeds < 8.0).any()  # clip active, not always
    # (no pre-clip speed lies within the difference step of 8, where the kink would show)
    _, grads = objective.costs_and_gradients(torques, starts)
    fd = _central_differences(objective, torques, starts)
    np.testing.assert_allclose(grads, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())
    # a control of a clipped step only acts through the effort term there
    clipped = speeds == 8.0
    np.testing.assert_allclose(grads[clipped], 2 * objective.torque_weight * torques[clipped])


def test_objective_reproduces_gymnasium_pendulum_v1():
    objective = trajopt.PendulumV1Objective(60)
    rng = np.random.default_rng(1)
    env = gym.make("Pendulum-v1")
    starts = []
    for seed in (3, 4):  # Pendulum-v1's own start distribution
        env.reset(seed=seed)
        starts.append(np.array(env.unwrapped.state, dtype=float))
    starts.append(np.array([1.0, 6.5]))  # fast, with full torque along: the speed clip binds
    starts = np.array(starts)
    env.close()
    torques = np.stack([rng.uniform(-2, 2, 60),
                        np.where((np.arange(60) // 10) % 2 == 0, 2.0, -2.0),
                        np.full(60, 2.0)])
    costs = objective.costs(torques, starts)
    reached_clip = False
    for k in range(3):
        gym_return, final = _gym_run(starts[k], torques[k])
        z = np.array([wrap_angle(final[0]), final[1]])
        terminal = z @ objective.terminal @ z
        np.testing.assert_allclose(costs[k], -gym_return + terminal, rtol=1e-10)
        states = objective.plant.rollout(starts[k:k + 1], torques[k:k + 1, :, None])[0]
        np.testing.assert_allclose(states[-1], final, rtol=1e-12, atol=1e-12)
        reached_clip |= bool(np.any(np.abs(states[:, 1]) == 8.0))
    assert reached_clip


def test_plant_and_weights_are_pendulum_v1s():
    objective = trajopt.PendulumV1Objective(10)
    env = gym.make("Pendulum-v1").unwrapped
    assert objective.max_torque == env.max_torque
    np.testing.assert_allclose(objective.state_weights, [1.0, 0.1])
    np.testing.assert_allclose(objective.torque_weight, 0.001)
    # the linearisation upright against central differences of Gymnasium's own step
    h = 1e-6

    def gym_step(x, u):
        env.state = np.array(x, dtype=float)
        env.step(np.array([u]))
        return np.array(env.state, dtype=float)

    a = np.stack([(gym_step(h * e, 0.0) - gym_step(-h * e, 0.0)) / (2 * h)
                  for e in np.eye(2)], axis=1)
    b = (gym_step([0.0, 0.0], h) - gym_step([0.0, 0.0], -h)) / (2 * h)
    np.testing.assert_allclose(objective.linear_a, a, rtol=1e-7)
    np.testing.assert_allclose(objective.linear_b[:, 0], b, rtol=1e-7)
    # P is the LQR cost-to-go: P = Q + A'PA - A'PB (R + B'PB)^-1 B'PA
    p, q, r = objective.terminal, np.diag([1.0, 0.1]), np.array([[0.001]])
    a, b = objective.linear_a, objective.linear_b
    riccati = q + a.T @ p @ a - a.T @ p @ b @ np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
    np.testing.assert_allclose(p, riccati, rtol=1e-9)


def test_optimiser_never_makes_a_trajectory_worse():
    objective = trajopt.PendulumV1Objective(40)
    rng = np.random.default_rng(2)
    starts = np.column_stack([rng.uniform(-np.pi, np.pi, 4), rng.uniform(-1, 1, 4)])
    starts[0] = [0.05, 0.1]  # near the top: the LQR torques are already close to optimal
    given = np.concatenate([objective.lqr_torques(starts[:1]),
                            rng.uniform(-2, 2, (3, 40))])
    before = objective.costs(given, starts)
    after, torques, info = trajopt.optimise(objective, given, starts, max_iterations=30)
    assert np.all(after <= before) and after.sum() < before.sum()
    assert np.all(np.abs(torques) <= objective.max_torque)
    np.testing.assert_allclose(after, objective.costs(torques, starts))
    assert info["iterations"] >= 1
    # torques beyond the limit are clipped first, never scored above the clipped ones
    again, *_ = trajopt.optimise(objective, 3 * given, starts, max_iterations=1)
    assert np.all(again <= objective.costs(np.clip(3 * given, -2, 2), starts))


def test_bad_input_to_the_objective_and_optimiser():
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        trajopt.PendulumV1Objective(0)
    objective = trajopt.PendulumV1Objective(5)
    starts = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"torques must be .*\[episodes, steps\]"):
        objective.costs(np.zeros((2, 4)), starts)
    with pytest.raises(ValueError, match="torques must be a finite"):
        objective.costs(np.full((2, 5), np.nan), starts)
    with pytest.raises(ValueError, match=r"starts must be a finite array \[episodes, 2\]"):
        objective.costs(np.zeros((2, 5)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="max_iterations must be a positive integer"):
        trajopt.optimise(objective, np.zeros((2, 5)), starts, max_iterations=0)


@pytest.mark.parametrize("flags, message", [
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--steps", "0"], "--steps must be between 1 and"),
    (["--steps", "201"], "--steps must be between 1 and"),
    (["--controller", "no/such/controller.npz"], "--controller must be a saved controller"),
])
def test_bad_arguments_exit_2_naming_the_flag(flags, message, tmp_path, capsys):
    controller = tmp_path / "controller.npz"
    controller.write_bytes(b"")
    argv = ["--controller", str(controller), "--out", str(tmp_path), *flags]
    with pytest.raises(SystemExit) as exit_info:
        trajopt._arguments(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_quick_run_records_the_controllers_episodes(tmp_path):
    plant = plants.Pendulum()
    loop = hf.ClosedLoop(plant, PendulumV1(plant), hidden=4,
                         observation={"linear": [1], "angles": [0]}, control_scale=2.0, rng=0)
    controller = hf.Controller(loop)
    starts, torques, returns = trajopt.record_episodes(controller, 2, seed=5)
    np.testing.assert_array_equal(returns, controller.evaluate("Pendulum-v1", 2, seed=5))
    assert starts.shape == (2, 2) and torques.shape == (2, 200)
    for k in range(2):  # the recorded torques replayed open loop give the same return
        np.testing.assert_allclose(_gym_run(starts[k], torques[k])[0], returns[k], rtol=1e-9)
    controller.save(tmp_path / "controller.npz")
    out = tmp_path / "run"
    assert trajopt.main(["--controller", str(tmp_path / "controller.npz"), "--out", str(out),
                         "--steps", "30", "--seed", "5", "--quick"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    np.testing.assert_allclose(metrics["controller_mean_return"],
                               controller.evaluate("Pendulum-v1", 5, seed=5).mean())
    assert metrics["settings"]["episodes"] == trajopt.QUICK_EPISODES
    assert sum(b["episodes"] for b in metrics["per_bin"]) == trajopt.QUICK_EPISODES
    assert metrics["optimised_mean"] >= metrics["optimised_mean_by_start"]["controller"] \
        >= metrics["controller_torques_objective_mean"]
