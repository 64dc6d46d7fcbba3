"""Plants against independent oracles: solve_ivp, energy conservation, Gymnasium itself."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from plants_oracles import ArmOracle, cartpole_rhs, pendulum_rhs
from scipy.integrate import solve_ivp

from plants import CartPole, LinearPlant, Pendulum, ThreeLinkArm, TwoLinkArm

DT = 1e-3
T_END = 2.0


def _reference(f, z0, n_steps, dt):
    t = np.arange(n_steps + 1) * dt
    sol = solve_ivp(f, (0.0, t[-1]), z0, method="DOP853", t_eval=t, rtol=1e-10, atol=1e-12)
    assert sol.success
    return sol.y.T


def _arm_oracle(arm, **kw):
    P = arm.parameters
    return ArmOracle(P["masses"], P["lengths"], P["com"], P["inertias"], P["viscosity"],
                     g=P["gravity"], **kw)


def _check_against_ivp(plant, f, z0, u):
    steps = int(round(T_END / DT))
    U = np.broadcast_to(np.asarray(u, float), (1, steps, plant.control_dim)).copy()
    X = plant.rollout(np.asarray(z0, float)[None], U)[0]
    ref = _reference(f, np.asarray(z0, float), steps, DT)
    err = np.abs(X - ref).max()
    assert err <= 1e-6, err


def test_pendulum_rk4_matches_solve_ivp():
    p = Pendulum.continuous(dt=DT)
    _check_against_ivp(p, pendulum_rhs(10.0, 1.0, 1.0, 0.7), [2.5, -1.0], [0.7])


def test_cartpole_rk4_matches_solve_ivp():
    c = CartPole(dt=DT, integrator="rk4")
    _check_against_ivp(c, cartpole_rhs(9.8, 1.0, 0.1, 0.5, 3.0), [0.1, -0.3, 0.4, 1.0], [3.0])


@pytest.mark.parametrize("gravity", [False, True])
def test_two_link_rk4_matches_solve_ivp(gravity):
    arm = TwoLinkArm(dt=DT, gravity=gravity, curl=12.0, constant_force=(1.5, -2.0))
    ref = _arm_oracle(arm, constant_force=(1.5, -2.0), field=((0.0, 12.0), (-12.0, 0.0)))
    tau = [0.4, -0.3]
    _check_against_ivp(arm, ref.rhs(tau), [0.3, 1.2, 0.5, -1.0], tau)


def test_three_link_rk4_matches_solve_ivp():
    field = ((2.0, 8.0), (-9.0, 1.0))
    arm = ThreeLinkArm(dt=DT, gravity=True, field=field, constant_force=(0.5, 1.0))
    ref = _arm_oracle(arm, constant_force=(0.5, 1.0), field=field)
    tau = [1.0, 0.5, -0.1]
    _check_against_ivp(arm, ref.rhs(tau), [0.2, 0.9, -0.3, 0.4, -0.5, 1.0], tau)


def test_continuous_linear_rk4_matches_solve_ivp():
    A = np.array([[0.0, 1.0], [-2.0, -0.3]])
    lin = LinearPlant(A, np.array([[0.0], [1.0]]), B_tanh=np.array([[0.5], [0.0]]),
                      B_tanh_index=np.array([[1], [-1]]), dt=DT, integrator="rk4")
    u = 0.8

    def f(t, z):
        return A @ z + np.array([0.5 * np.tanh(z[1]), 1.0]) * u

    _check_against_ivp(lin, f, [1.0, 0.0], [u])


def test_demo_linear_plant_is_the_specified_map():
    lin = LinearPlant.demo()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 2))
    u = rng.normal(size=(5, 2))
    expected = np.stack([x[:, 0], 0.2 * x[:, 0] + x[:, 1] + np.tanh(x[:, 0]) * u[:, 1]], axis=1)
    np.testing.assert_allclose(lin.step(x, u), expected, rtol=1e-14, atol=1e-14)


def test_two_link_mass_matrix_is_todorovs():
    arm = TwoLinkArm()
    q = np.array([[0.3, 1.1, 0.0, 0.0], [-0.5, 2.0, 0.0, 0.0]])
    i1, i2, m2, l1, s2 = 0.025, 0.045, 1.1, 0.30, 0.16
    c = np.cos(q[:, 1])
    M = np.array([[[i1 + i2 + m2 * l1**2 + 2 * m2 * l1 * s2 * cc, i2 + m2 * l1 * s2 * cc],
                   [i2 + m2 * l1 * s2 * cc, i2]] for cc in c])
    np.testing.assert_allclose(arm.mass_matrix(q), M, rtol=1e-14)


def _drift(plant, energy, z0):
    steps = int(round(10.0 / DT))
    X = plant.rollout(np.asarray(z0, float)[None], np.zeros((1, steps, plant.control_dim)))[0]
    E = energy(X)
    return np.abs(E - E[0]).max() / abs(E[0])


def _pendulum_energy(X, g=10.0, m=1.0, l=1.0):
    # uniform rod about its end: inertia m l^2 / 3, centre of mass at l / 2
    return 0.5 * (m * l**2 / 3.0) * X[:, 1] ** 2 + m * g * (l / 2.0) * np.cos(X[:, 0])


def _cartpole_energy(X, g=9.8, mc=1.0, mp=0.1, l=0.5):
    # cart plus a uniform rod of length 2 l: CoM at (x + l sin th, l cos th)
    x_d, th, th_d = X[:, 1], X[:, 2], X[:, 3]
    vx = x_d + l * np.cos(th) * th_d
    vy = -l * np.sin(th) * th_d
    rot = 0.5 * (mp * (2 * l) ** 2 / 12.0) * th_d**2
    return 0.5 * mc * x_d**2 + 0.5 * mp * (vx**2 + vy**2) + rot + mp * g * l * np.cos(th)


def test_energy_conservation_pendulum():
    p = Pendulum.continuous(dt=DT)
    X = np.array([[2.0, 1.0], [0.3, -2.0]])
    np.testing.assert_allclose(p.energy(X), _pendulum_energy(X), rtol=1e-14)
    assert _drift(p, _pendulum_energy, [2.0, 1.0]) <= 1e-6


def test_energy_conservation_cartpole():
    c = CartPole(dt=DT, integrator="rk4")
    X = np.array([[0.0, 0.5, 0.5, 1.0], [1.0, -0.3, 2.0, -1.5]])
    np.testing.assert_allclose(c.energy(X), _cartpole_energy(X), rtol=1e-13)
    assert _drift(c, _cartpole_energy, [0.0, 0.5, 0.5, 1.0]) <= 1e-6


@pytest.mark.parametrize(("cls", "gravity"),
                         [(TwoLinkArm, False), (TwoLinkArm, True), (ThreeLinkArm, False)])
def test_energy_conservation_arms(cls, gravity):
    # (A three-link arm falling under gravity whips its light hand to > 100 rad/s; RK4 at
    # 1 ms then drifts ~5e-5 and needs dt = 0.5 ms for 1e-6. Truncation error, not physics.)
    N = 2 if cls is TwoLinkArm else 3
    arm = cls(dt=DT, gravity=gravity, viscosity=np.zeros((N, N)))
    z0 = [0.3, 1.0, 1.0, -1.5] if N == 2 else [0.3, 1.0, 0.5, 1.0, -1.5, 2.0]
    ref = _arm_oracle(arm)
    X = arm.rollout(np.asarray(z0, float)[None], np.zeros((1, 10000, arm.control_dim)))[0]
    E_oracle = np.array([ref.energy(z) for z in X[::500]])
    np.testing.assert_allclose(arm.energy(X[::500]), E_oracle, rtol=1e-12, atol=1e-12)
    E = arm.energy(X)
    assert np.abs(E - E[0]).max() / abs(E[0]) <= 1e-6


def test_pendulum_matches_gymnasium_step_for_step():
    env = gymnasium.make("Pendulum-v1")
    env.reset(seed=3)
    x0 = np.array(env.unwrapped.state, dtype=float)
    rng = np.random.default_rng(4)
    actions = rng.uniform(-3.0, 3.0, size=(200, 1)).astype(np.float32)  # some get clipped
    ours = Pendulum().rollout(x0[None], actions[None].astype(float))[0]
    theirs = [x0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a in actions:
            env.step(a)
            theirs.append(np.array(env.unwrapped.state, dtype=float))
    assert np.abs(ours - np.array(theirs)).max() <= 1e-5
    assert np.abs(ours[:, 1]).max() <= 8.0


def test_cartpole_matches_gymnasium_step_for_step():
    env = gymnasium.make("CartPole-v1").unwrapped
    env.reset(seed=5)
    x0 = np.array(env.state, dtype=float)
    rng = np.random.default_rng(6)
    actions = rng.integers(0, 2, size=60)
    force = np.where(actions == 1, 10.0, -10.0)
    force[::7] *= 1.5  # beyond force_mag: clipped back to +-10 by our model
    ours = CartPole().rollout(x0[None], force[None, :, None])[0]
    theirs = [x0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a in actions:
            env.step(int(a))
            theirs.append(np.array(env.state, dtype=float))
    assert np.abs(ours - np.array(theirs)).max() <= 1e-9
