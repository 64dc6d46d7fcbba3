"""The plants' Gymnasium environments (single copy): Gymnasium's env checker with warnings
as errors (render modes included), rewards that add up to minus the task's cost, seeding,
reset options, bad input, rendering and registration."""

import subprocess
import sys
import types
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import plants
from plants.envs import ENV_IDS

# -- a stand-in display: an "interactive" matplotlib backend whose windows are never shown --


def _fake_display_backend():
    from matplotlib.backend_bases import FigureManagerBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    class Manager(FigureManagerBase):
        def show(self):  # a window manager that shows nothing
            pass

    class Canvas(FigureCanvasAgg):
        manager_class = Manager

    mod = types.ModuleType("fake_display_backend")
    mod.FigureCanvas = Canvas
    mod.FigureManager = Manager
    sys.modules["fake_display_backend"] = mod
    return "module://fake_display_backend"


@pytest.fixture
def display():
    import matplotlib.pyplot as plt

    old = plt.get_backend()
    plt.switch_backend(_fake_display_backend())
    yield
    plt.close("all")
    plt.switch_backend(old)


@pytest.fixture
def no_display():
    import matplotlib.pyplot as plt

    old = plt.get_backend()
    plt.switch_backend("agg")
    yield
    plt.switch_backend(old)


WRAPPED = "is different from the unwrapped version"  # check_env's note on any wrapped env


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes_without_warnings(env_id, display):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
        # gymnasium.make always wraps (TimeLimit, OrderEnforcing, the passive checker), and
        # check_env says so for every wrapped env: that note is the only thing let through
        warnings.filterwarnings("ignore", message=f".*{WRAPPED}.*")
        check_env(env)
    env.close()
    env.close()  # idempotent


def test_registered_ids_and_horizons():
    expected = {"plants/ArmReach-v0": 50, "plants/Arm3Reach-v0": 50, "plants/ArmHold-v0": 100,
                "plants/MuscleArmReach-v0": 50,
                "plants/PendulumSwingUp-v0": 200, "plants/CartPoleBalance-v0": 500}
    assert set(expected) <= set(ENV_IDS)
    for env_id, T in expected.items():
        spec = gym.spec(env_id)
        assert spec.max_episode_steps == T
        env = gym.make(env_id)
        assert env.unwrapped.task.horizon == T
        assert env.metadata["render_fps"] == pytest.approx(1.0 / env.unwrapped.plant.dt)
    u = gym.make("plants/Arm3Reach-v0").unwrapped
    assert isinstance(u.plant, plants.ThreeLinkArm) and isinstance(u.task, plants.tasks.Reach)
    u = gym.make("plants/ArmHold-v0").unwrapped
    assert isinstance(u.plant, plants.TwoLinkArm) and isinstance(u.task, plants.tasks.Hold)
    u = gym.make("plants/MuscleArmReach-v0").unwrapped
    assert isinstance(u.plant, plants.MuscleArm) and isinstance(u.task, plants.tasks.Reach)
    u = gym.make("plants/PendulumSwingUp-v0").unwrapped
    assert isinstance(u.task, plants.tasks.PendulumV1)
    u = gym.make("plants/CartPoleBalance-v0").unwrapped
    assert isinstance(u.task, plants.tasks.Balance)


def test_import_plants_does_not_import_matplotlib():
    code = ("import sys, gymnasium, plants; gymnasium.make('plants/ArmReach-v0').reset(seed=0); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _episode(env, seed, actions_rng, options=None, scale=1.2):
    """Run one full episode; return observations, rewards, states and applied controls."""
    obs, _ = env.reset(seed=seed, options=options)
    u = env.unwrapped
    O, R, X, U = [obs], [], [u.state], []
    while True:
        a = actions_rng.uniform(-scale, scale, env.action_space.shape).astype(np.float32)
        obs, r, term, trunc, _ = env.step(a)
        assert isinstance(r, float) and not term
        O.append(obs)
        R.append(r)
        X.append(u.state)
        U.append(np.clip(a.astype(np.float64), -1, 1) * u._layout.action_scale
                 + u._layout.action_offset)
        if trunc:
            break
    return np.array(O), np.array(R), np.array(X), np.array(U)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rewards_add_up_to_minus_the_task_cost(env_id):
    env = gym.make(env_id)
    u = env.unwrapped
    O, R, X, U = _episode(env, 3, np.random.default_rng(0))
    assert len(R) == u.task.horizon
    cost = u.task.cost(X[None], U[None], u.targets[None])[0]
    assert R.sum() == pytest.approx(-cost, rel=1e-10, abs=1e-14)
    # the states are the plant's: a rollout of the applied controls repeats them
    np.testing.assert_allclose(u.plant.rollout(X[:1], U[None])[0], X, rtol=0, atol=0)
    assert all(o in env.observation_space for o in O)


def test_reward_terms_are_split_as_documented():
    """Hold has every term: effort each step, tracking with the step weights after each step,
    the final error and the final velocity at the last one."""
    env = gym.make("plants/ArmHold-v0")
    u = env.unwrapped
    task = u.task
    O, R, X, U = _episode(env, 0, np.random.default_rng(1), scale=0.5)
    targets = u.targets
    c = task.step_weights(targets[None])[0]
    y = task.outputs(X[1:])
    w = task.output_weights
    per_step = (task.weights.effort * u.plant.dt * (U**2).sum(axis=1)
                + c * (w * (y - targets) ** 2).sum(axis=1))
    per_step[-1] += task.weights.final_velocity * (task.velocity(X[-1:]) ** 2).sum()
    np.testing.assert_allclose(R, -per_step, rtol=1e-12)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_episode(env_id):
    a = _episode(gym.make(env_id), 7, np.random.default_rng(2))
    b = _episode(gym.make(env_id), 7, np.random.default_rng(2))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_initial_states_are_the_tasks_draws_from_np_random():
    env = gym.make("plants/PendulumSwingUp-v0")
    env.reset(seed=11)
    u = env.unwrapped
    first = u.state
    # the env's generator after seeding, and the task's sample with it
    rng = np.random.default_rng(np.random.SeedSequence(11))
    np.testing.assert_array_equal(first, u.task.sample(1, rng=rng).x0[0])
    # Pendulum-v1 draws the same initial state for the same seed
    ref = gym.make("Pendulum-v1")
    ref.reset(seed=11)
    np.testing.assert_allclose(ref.unwrapped.state, first)
    # reach targets are random, one per episode
    env = gym.make("plants/ArmReach-v0")
    goals = {tuple(env.reset(seed=s)[0][8:10]) for s in range(5)}
    assert len(goals) == 5


def test_reset_options_set_the_initial_state_and_the_target():
    env = gym.make("plants/ArmReach-v0")
    x0 = np.array([0.5, 1.2, 0.1, -0.2])
    target = np.array([0.1, 0.4])
    obs, _ = env.reset(seed=0, options={"x0": x0, "target": target})
    u = env.unwrapped
    np.testing.assert_array_equal(u.state, x0)
    np.testing.assert_array_equal(u.goal, target)
    np.testing.assert_array_equal(u.targets[-1], target)
    assert np.isnan(u.targets[:-1]).all()
    np.testing.assert_allclose(obs[8:10], target.astype(np.float32))
    x, goal = u.decode(obs)
    np.testing.assert_allclose(x, x0, atol=1e-6)
    np.testing.assert_allclose(goal, target, atol=1e-7)
    # options do not shift the random stream: the next episode is the one without them
    env2 = gym.make("plants/ArmReach-v0")
    env2.reset(seed=0)
    np.testing.assert_array_equal(env.reset()[0], env2.reset()[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_decode_inverts_the_observation(env_id):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=4)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    u = env.unwrapped
    x, goal = u.decode(obs)
    angles = {"plants/PendulumSwingUp-v0": [0], "plants/CartPoleBalance-v0": [2],
              "plants/MuscleArmReach-v0": [0, 1]}.get(env_id,
                                                       list(range(u.plant.state_dim // 2)))
    ref = u.state
    d = x - ref
    d[angles] = np.angle(np.exp(1j * d[angles]))  # angles come back wrapped
    np.testing.assert_allclose(d, 0, atol=2e-6 * max(1, np.abs(ref).max()))
    np.testing.assert_allclose(goal, u.goal, atol=1e-6)


def test_bad_actions_raise_clear_errors():
    env = gym.make("plants/ArmReach-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(2,\)"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"action must have shape \(2,\)"):
        env.step(np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array([np.nan, 0.0], dtype=np.float32))
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array([np.inf, 0.0]))
    with pytest.raises(ValueError, match="action must be a real array"):
        env.step(np.array(["a", "b"]))
    fresh = gym.make("plants/PendulumSwingUp-v0").unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step(np.zeros(1, dtype=np.float32))


def test_stepping_past_the_horizon_raises():
    env = gym.make("plants/ArmReach-v0", horizon=3).unwrapped
    env.reset(seed=0)
    for _ in range(3):
        *_, trunc, _ = env.step(np.zeros(2, dtype=np.float32))
    assert trunc
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(np.zeros(2, dtype=np.float32))


def test_bad_reset_options_raise_clear_errors():
    env = gym.make("plants/PendulumSwingUp-v0").unwrapped
    with pytest.raises(ValueError, match=r'options\["x0"\] must have shape \(2,\)'):
        env.reset(options={"x0": np.zeros(3)})
    with pytest.raises(ValueError, match=r'options\["x0"\] must be finite'):
        env.reset(options={"x0": [np.nan, 0.0]})
    with pytest.raises(ValueError, match=r'options\["target"\] must have shape \(3,\)'):
        env.reset(options={"target": np.zeros(2)})
    with pytest.raises(ValueError, match=r'options\["target"\] must lie within'):
        env.reset(options={"target": [1.0, 0.0, 100.0]})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"x_0": [0.0, 0.0]})
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.ones(1, bool)})
    cart = gym.make("plants/CartPoleBalance-v0").unwrapped
    with pytest.raises(ValueError, match="on the track"):
        cart.reset(options={"x0": [3.0, 0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match=r'options\["x0"\] must have shape \(4,\)'):
        cart.reset(options={"x0": [[0.0, 0.0, 0.0, 0.0]]})


def test_actions_are_scaled_to_the_plants_range_and_clipped():
    env = gym.make("plants/ArmReach-v0").unwrapped
    assert env.action_space.low.tolist() == [-1, -1] and env.action_space.high.tolist() == [1, 1]
    np.testing.assert_array_equal(env.plant.control_high, plants.envs.arm.TORQUE_LIMITS[2])
    env.reset(seed=0)
    x = env.state
    env.step(np.array([0.5, 3.0], dtype=np.float32))  # 3 is clipped to 1
    u = np.array([[0.5 * 4.0, 4.0]])
    np.testing.assert_array_equal(env.state, env.plant.step(x[None], u)[0])
    pend = gym.make("plants/PendulumSwingUp-v0").unwrapped
    assert pend._layout.action_scale.tolist() == [2.0]
    cart = gym.make("plants/CartPoleBalance-v0").unwrapped
    assert cart._layout.action_scale.tolist() == [10.0]
    for env in (pend, cart):
        assert env._layout.action_offset.tolist() == [0.0]


def test_muscle_arm_actions_are_excitations():
    """[-1, 1] maps affinely onto the excitations' [0, 1]: -1 none, 0 half, 1 (and beyond,
    clipped) full; the step is the plant's own (compiled and NumPy reference)."""
    env = gym.make("plants/MuscleArmReach-v0").unwrapped
    assert env.action_space.shape == (6,)
    np.testing.assert_array_equal(env.plant.control_low, np.zeros(6))
    np.testing.assert_array_equal(env.plant.control_high, np.ones(6))
    env.reset(seed=0)
    a = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 3.0], dtype=np.float32)
    u = np.array([[0.0, 0.25, 0.5, 0.75, 1.0, 1.0]])
    for _ in range(3):
        x = env.state
        obs, *_ = env.step(a)
        np.testing.assert_array_equal(env.state, env.plant.step(x[None], u)[0])
        np.testing.assert_allclose(env.state, env.plant.numpy_step(x[None], u)[0], rtol=1e-9,
                                   atol=1e-12)
    # the last six observations are the activations, which rose from their floor
    np.testing.assert_allclose(obs[-6:], env.state[4:], rtol=1e-6)
    assert obs[-6] == pytest.approx(env.plant.min_activation, rel=1e-5)
    assert (obs[-4:] > 0.3).all()


def test_muscle_arm_reset_options_are_checked():
    env = gym.make("plants/MuscleArmReach-v0").unwrapped
    x0 = np.concatenate([[0.5, 1.0, 0.0, 0.0], np.full(6, 0.2)])
    obs, _ = env.reset(seed=0, options={"x0": x0})
    np.testing.assert_array_equal(env.state, x0)
    np.testing.assert_allclose(obs[-6:], 0.2, rtol=1e-6)
    with pytest.raises(ValueError, match=r'options\["x0"\] must have shape \(10,\)'):
        env.reset(options={"x0": x0[:4]})
    with pytest.raises(ValueError, match="within the joint stops"):
        env.reset(options={"x0": np.concatenate([[-0.1], x0[1:]])})
    with pytest.raises(ValueError, match="within the joint stops"):
        env.reset(options={"x0": np.concatenate([[0.5, 3.0], x0[2:]])})
    with pytest.raises(ValueError, match=r"activations \(entries 4..9\) in \[0, 1\]"):
        env.reset(options={"x0": np.concatenate([x0[:9], [1.5]])})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array([0, 0, 0, 0, 0, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match=r"action must have shape \(6,\)"):
        env.step(np.zeros(2, dtype=np.float32))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rgb_array_frames(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    w, h = env.unwrapped._layout.frame_size
    assert frame.shape == (h, w, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5  # something is drawn
    env.step(env.action_space.sample())
    assert env.render().shape == frame.shape
    env.close()
    env.close()


def test_human_mode_without_a_display_says_so(no_display):
    with pytest.raises(RuntimeError, match="needs a display"):
        gym.make("plants/PendulumSwingUp-v0", render_mode="human")


def test_human_mode_draws_in_a_window(display):
    import matplotlib.pyplot as plt

    env = gym.make("plants/ArmHold-v0", render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.step(env.action_space.sample())
    assert plt.get_fignums()
    env.close()
    assert not plt.get_fignums()


def test_unknown_render_mode():
    with pytest.raises(ValueError, match="render_mode must be"):
        plants.envs.PendulumSwingUpEnv(render_mode="ascii")


def test_state_setter_checks_its_value():
    env = gym.make("plants/PendulumSwingUp-v0").unwrapped
    env.reset(seed=0)
    env.state = [0.1, 0.2]
    np.testing.assert_array_equal(env.state, [0.1, 0.2])
    with pytest.raises(ValueError, match=r"state must be a finite array of shape \(2,\)"):
        env.state = [0.1, 0.2, 0.3]
