"""plants.GymDynamics: Gymnasium environments as plants (Pendulum-v1 against plants.Pendulum,
its finite-difference Jacobians against the analytic ones, CartPole-v1 through a continuous
force against plants.CartPole, MountainCarContinuous-v0), and a closed loop trained on one."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import hfcontrol as hf
import plants
from plants.tasks import PendulumV1


@pytest.fixture
def pendulum():
    return plants.GymDynamics(gym.make("Pendulum-v1"))


def test_pendulum_v1_is_a_dynamics(pendulum):
    assert isinstance(pendulum, plants.Dynamics)
    assert (pendulum.state_dim, pendulum.control_dim, pendulum.dt) == (2, 1, 0.05)
    np.testing.assert_array_equal(pendulum.control_high, [2.0])
    np.testing.assert_array_equal(pendulum.control_low, [-2.0])
    p = pendulum.parameters
    assert (p["g"], p["m"], p["l"], p["max_speed"], p["env_id"]) == (10.0, 1.0, 1.0, 8, "Pendulum-v1")
    with pytest.raises(TypeError):
        p["g"] = 3.0


def test_pendulum_v1_steps_as_plants_pendulum(pendulum):
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(-4, 4, 20), rng.uniform(-8, 8, 20)])
    u = rng.uniform(-3, 3, (20, 1))  # beyond the limits too: both clip
    ref = plants.Pendulum()
    np.testing.assert_allclose(pendulum.step(x, u), ref.step(x, u), rtol=1e-12, atol=1e-12)
    U = rng.uniform(-2, 2, (3, 30, 1))
    np.testing.assert_allclose(pendulum.rollout(x[:3], U), ref.rollout(x[:3], U), rtol=1e-9,
                               atol=1e-9)


def test_pendulum_v1_jacobians_match_the_analytic_ones(pendulum):
    rng = np.random.default_rng(1)
    # away from the speed clip (|theta_dot'| < 8) and the torque clip (|u| < 2)
    x = np.column_stack([rng.uniform(-3, 3, 10), rng.uniform(-4, 4, 10)])
    u = rng.uniform(-1.5, 1.5, (10, 1))
    A, B = pendulum.jacobians(x, u)
    A_ref, B_ref = plants.Pendulum().jacobians(x, u)
    assert A.shape == (10, 2, 2) and B.shape == (10, 2, 1)
    np.testing.assert_allclose(A, A_ref, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(B, B_ref, rtol=1e-8, atol=1e-9)


def test_cartpole_v1_through_a_continuous_force():
    env = gym.make("CartPole-v1")
    cp = plants.GymDynamics(env)
    assert (cp.state_dim, cp.control_dim, cp.dt) == (4, 1, 0.02)
    np.testing.assert_array_equal(cp.control_high, [10.0])
    rng = np.random.default_rng(2)
    x = rng.uniform(-0.5, 0.5, (8, 4))
    x[0, 2] = 1.0  # a fallen pole: CartPole-v1 would terminate; no warning on stepping on
    u = rng.uniform(-12, 12, (8, 1))
    ref = plants.CartPole()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(cp.step(x, u), ref.step(x, u), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cp.step(x, u), ref.step(x, u), rtol=1e-12, atol=1e-12)
    assert env.unwrapped.force_mag == 10.0  # restored
    A, B = cp.jacobians(x[1:], np.clip(u[1:], -9, 9))
    A_ref, B_ref = ref.jacobians(x[1:], np.clip(u[1:], -9, 9))
    np.testing.assert_allclose(A, A_ref, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(B, B_ref, rtol=1e-7, atol=1e-8)


def test_mountain_car_continuous():
    mc = plants.GymDynamics(gym.make("MountainCarContinuous-v0"))
    assert (mc.state_dim, mc.control_dim, mc.dt) == (2, 1, 1.0)
    assert mc.fd_step > 1e-3  # its state is float32
    p = mc.parameters
    x = np.array([[-0.5, 0.01], [-0.3, -0.02]])
    u = np.array([[0.5], [-2.0]])  # the second is clipped to -1
    force = np.clip(u[:, 0], -1, 1)
    v = np.clip(x[:, 1] + force * p["power"] - 0.0025 * np.cos(3 * x[:, 0]), -p["max_speed"],
                p["max_speed"])
    expected = np.column_stack([x[:, 0] + v, v])
    np.testing.assert_allclose(mc.step(x, u), expected, rtol=1e-6, atol=1e-7)
    A, B = mc.jacobians(x[:1], u[:1])
    # d v'/d p = 0.0075 sin(3 p), d v'/d v = 1, d v'/d u = power; p' = p + v'
    s = 0.0075 * np.sin(3 * x[0, 0])
    np.testing.assert_allclose(A[0], [[1 + s, 1], [s, 1]], rtol=5e-3, atol=5e-5)
    np.testing.assert_allclose(B[0], [[p["power"]], [p["power"]]], rtol=5e-3)


def test_bad_environments_and_input():
    with pytest.raises(TypeError, match="action space must be a 1-D Box"):
        plants.GymDynamics(gym.make("Acrobot-v1"))  # a state, but three discrete actions
    with pytest.raises(TypeError, match="env.unwrapped.state"):
        plants.GymDynamics(gym.make("FrozenLake-v1"))  # no state attribute
    pend = plants.GymDynamics(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match=r"x must have shape \(any, 2\)"):
        pend.step(np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="same batch size"):
        pend.step(np.zeros((2, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="u contains NaN"):
        pend.step(np.zeros((1, 2)), np.full((1, 1), np.nan))
    with pytest.raises(ValueError, match="x must be finite"):
        pend.jacobians(np.full((1, 2), np.inf), np.zeros((1, 1)))


def test_pendulum_v1_task_and_closed_loop_on_the_gymnasium_env(pendulum):
    task = PendulumV1(pendulum, horizon=8)
    assert task.plant is pendulum and task.weights.effort == pytest.approx(0.001 / (8 * 0.05))
    settings = dict(hidden=4, observation={"linear": [1], "angles": [0]}, control_scale=1.5,
                    rng=0, dtype=np.float64)
    loop = hf.ClosedLoop(pendulum, task, **settings)
    ref = hf.ClosedLoop(plants.Pendulum(), PendulumV1(plants.Pendulum(), horizon=8),
                        backend="numpy", **settings)
    np.testing.assert_array_equal(loop.W, ref.W)
    batch = task.sample(4, seed=3)
    loop.cache_minibatch(batch)
    ref.cache_minibatch(batch)
    assert loop.error() == pytest.approx(ref.error(), rel=1e-10)
    np.testing.assert_allclose(loop.calc_grad(), ref.calc_grad(), rtol=1e-5, atol=1e-9)
    # and it trains: a few Hessian-free updates lower the error
    opt = hf.opt.HessianFree(CG_iter=10)
    loop.optimizer, opt.net = opt, loop
    e0 = loop.error()
    for _ in range(3):
        loop.cache_minibatch(batch)
        loop.W += opt.compute_update()
    loop.cache_minibatch(batch)
    assert loop.error() < e0
    with pytest.raises(ValueError, match="pendulum's layout"):
        PendulumV1(plants.GymDynamics(gym.make("CartPole-v1")))
    with pytest.raises(TypeError, match="Dynamics"):
        PendulumV1(object())
