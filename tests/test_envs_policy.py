"""Controllers as Gymnasium policies (Controller.as_policy / evaluate) and videos of
episodes (plants.envs.record)."""

import sys

import gymnasium as gym
import numpy as np
import pytest

import hfcontrol as hf
import plants
from plants.tasks import PendulumV1


@pytest.fixture
def controller():
    loop = hf.ClosedLoop(plants.Pendulum(), PendulumV1(plants.Pendulum()), hidden=4,
                         observation={"linear": [1], "angles": [0]}, control_scale=2.0, rng=0)
    return hf.Controller(loop)


def test_evaluate_on_pendulum_v1_is_finite_and_deterministic(controller):
    returns = controller.evaluate("Pendulum-v1", 2, seed=0)
    assert returns.shape == (2,) and np.isfinite(returns).all()
    np.testing.assert_array_equal(returns, controller.evaluate("Pendulum-v1", 2, seed=0))
    assert not np.array_equal(returns, controller.evaluate("Pendulum-v1", 2, seed=1))


def test_first_action_is_the_controllers_act(controller):
    env = gym.make("Pendulum-v1")
    policy = controller.as_policy("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    policy.reset()
    action = policy(obs)
    # by hand: Pendulum-v1's [cos, sin, theta_dot] -> state [atan2(sin, cos), theta_dot]
    x = np.array([np.arctan2(obs[1], obs[0]), obs[2]], dtype=np.float64)
    controller.reset(goal=(1.0, 0.0, 0.0))  # PendulumV1's goal (the task inputs)
    u = controller.act(controller.observe(x))
    assert action.shape == (1,) and action.dtype == np.float32
    np.testing.assert_array_equal(action, np.clip(u, -2, 2).astype(np.float32))
    # the recurrent state carries on: the second action is act's second step
    obs, *_ = env.step(action)
    x = np.array([np.arctan2(obs[1], obs[0]), obs[2]], dtype=np.float64)
    np.testing.assert_array_equal(policy(obs), np.clip(controller.act(controller.observe(x)),
                                                         -2, 2).astype(np.float32))
    # reset() starts over: the same observation gives the first action again
    env.reset(seed=0)
    policy.reset()
    np.testing.assert_array_equal(policy(env.reset(seed=0)[0]), action)


def test_policy_on_our_pendulum_env_normalises_the_action(controller):
    env = gym.make("plants/PendulumSwingUp-v0")
    policy = controller.as_policy(env)
    obs, _ = env.reset(seed=0)
    policy.reset()
    a = policy(obs)
    x, goal = env.unwrapped.decode(obs)
    controller.reset(goal=goal)
    u = controller.act(controller.observe(x))
    np.testing.assert_allclose(a, np.clip(u / 2.0, -1, 1).astype(np.float32))
    returns = controller.evaluate("plants/PendulumSwingUp-v0", 2, seed=0)
    assert np.isfinite(returns).all() and (returns < 0).all()


def test_policy_reads_the_goal_from_a_reach_observation():
    task = plants.tasks.Reach(plants.TwoLinkArm(max_torque=4.0), targets="disc")
    loop = hf.ClosedLoop(task.plant, task, hidden=5, rng=1, control_scale=1.0)
    ctrl = hf.Controller(loop)
    env = gym.make("plants/ArmReach-v0")
    policy = ctrl.as_policy(env)
    obs, _ = env.reset(seed=3)
    policy.reset()
    a = policy(obs)
    ctrl.reset(goal=env.unwrapped.goal)
    u = ctrl.act(ctrl.observe(env.unwrapped.state))
    np.testing.assert_allclose(a, np.clip(u / 4.0, -1, 1), rtol=1e-5, atol=1e-6)
    assert np.isfinite(ctrl.evaluate(env, 1, seed=0)).all()


def test_policy_for_a_gym_dynamics_controller_names_its_env():
    pend = plants.GymDynamics(gym.make("Pendulum-v1"))
    loop = hf.ClosedLoop(pend, PendulumV1(pend), hidden=3, rng=0, inputs="none",
                         observation={"linear": [1], "angles": [0]}, control_scale=2.0)
    policy = hf.Controller(loop).as_policy()
    assert policy.env_id == "Pendulum-v1"


def test_policy_errors(controller):
    with pytest.raises(ValueError, match="state size 4"):
        controller.as_policy("plants/ArmReach-v0")
    with pytest.raises(ValueError, match="no mapping"):
        controller.as_policy("CartPole-v1")
    with pytest.raises(ValueError, match="env_or_id is required"):
        controller.as_policy()
    policy = controller.as_policy("Pendulum-v1")
    with pytest.raises(ValueError, match=r"obs must have the shape .* \(3,\)"):
        policy(np.zeros(4))
    with pytest.raises(ValueError, match="n_episodes"):
        controller.evaluate("Pendulum-v1", 0)


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_record_writes_a_video(tmp_path, suffix):
    iio = pytest.importorskip("imageio.v3")
    if suffix == ".mp4":
        pytest.importorskip("imageio_ffmpeg")
    env = gym.make("plants/ArmReach-v0", render_mode="rgb_array", horizon=10)
    path = tmp_path / f"reach{suffix}"
    total = plants.envs.record(env, lambda obs: np.zeros(2, np.float32), path, seed=0)
    assert np.isfinite(total) and path.stat().st_size > 1000
    frames = iio.imread(path, index=None)
    assert frames.shape[0] >= 5 and frames.shape[-1] in (3, 4)


def test_record_needs_imageio(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio.v3", None)
    monkeypatch.setitem(sys.modules, "imageio", None)
    env = gym.make("plants/ArmReach-v0", render_mode="rgb_array")
    with pytest.raises(ImportError, match=r"hfcontrol\[video\]"):
        plants.envs.record(env, lambda obs: np.zeros(2, np.float32), tmp_path / "x.gif")


def test_record_checks_its_arguments(tmp_path):
    env = gym.make("plants/ArmReach-v0")
    with pytest.raises(ValueError, match="mp4 or .gif"):
        plants.envs.record(env, lambda obs: obs, tmp_path / "x.avi")
    pytest.importorskip("imageio.v3")
    with pytest.raises(ValueError, match='render_mode="rgb_array"'):
        plants.envs.record(env, lambda obs: obs, tmp_path / "x.gif")


def test_policy_on_the_muscle_env_inverts_its_affine_action_map():
    # MuscleArmReach-v0 maps a in [-1, 1] to excitations a * 0.5 + 0.5 in [0, 1]: the
    # policy's action must land back on the controller's excitations
    arm = plants.MuscleArm()
    task = plants.tasks.Reach(arm, targets="disc")
    ctrl = hf.Controller(hf.ClosedLoop(arm, task, hidden=5, rng=2))
    env = gym.make("plants/MuscleArmReach-v0")
    policy = ctrl.as_policy(env)
    obs, _ = env.reset(seed=4)
    policy.reset()
    a = policy(obs)
    ctrl.reset(goal=env.unwrapped.goal)
    u = ctrl.act(ctrl.observe(env.unwrapped.state))
    assert not np.allclose(u, 0.0)
    np.testing.assert_allclose(a * 0.5 + 0.5, np.clip(u, 0, 1), rtol=1e-5, atol=1e-6)
