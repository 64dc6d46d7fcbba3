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


# a general end-point field (not just a curl) and a constant force, on the pendulum's tip and
# the pole's tip: the oracles add J(q)^T F to their own Lagrangian equations
FIELD = ((-0.4, 1.5), (-1.2, -0.3))  # dissipative symmetric part: the motion stays bounded
FORCE = (0.6, -0.4)


def test_pendulum_force_field_matches_solve_ivp():
    p = Pendulum.continuous(dt=DT, field=FIELD, constant_force=FORCE)
    f = pendulum_rhs(10.0, 1.0, 1.0, 0.7, constant_force=FORCE, field=FIELD)
    _check_against_ivp(p, f, [2.5, -1.0], [0.7])


def test_cartpole_force_field_matches_solve_ivp():
    c = CartPole(dt=DT, integrator="rk4", field=FIELD, constant_force=FORCE)
    f = cartpole_rhs(9.8, 1.0, 0.1, 0.5, 3.0, constant_force=FORCE, field=FIELD)
    _check_against_ivp(c, f, [0.1, -0.3, 0.4, 1.0], [3.0])


def test_curl_field_matches_solve_ivp():
    """``curl=c`` is the field ``[[0, c], [-c, 0]]`` on both plants."""
    curl = ((0.0, 2.0), (-2.0, 0.0))
    p = Pendulum.continuous(dt=DT, curl=2.0)
    _check_against_ivp(p, pendulum_rhs(10.0, 1.0, 1.0, -0.5, field=curl), [0.5, 2.0], [-0.5])
    c = CartPole(dt=DT, integrator="rk4", curl=2.0)
    _check_against_ivp(c, cartpole_rhs(9.8, 1.0, 0.1, 0.5, -1.0, field=curl),
                       [0.0, 0.5, -0.3, 0.5], [-1.0])


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
    """The reference demo plant, written out: p' = p + 0.2 v, v' = v + tanh(p) u_1."""
    lin = LinearPlant.demo()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 2))
    u = rng.normal(size=(5, 2))
    p, v = x[:, 0], x[:, 1]
    expected = np.stack([p + 0.2 * v, v + np.tanh(p) * u[:, 1]], axis=1)
    np.testing.assert_allclose(lin.step(x, u), expected, rtol=1e-14, atol=1e-14)
    # the same map over a rollout, one step at a time, and u_0 has no effect
    U = rng.normal(size=(5, 15, 2))
    X = lin.rollout(x, U)
    for t in range(15):
        p, v = X[:, t, 0], X[:, t, 1]
        np.testing.assert_allclose(X[:, t + 1], np.stack([p + 0.2 * v, v + np.tanh(p) * U[:, t, 1]],
                                                         axis=1), rtol=1e-13, atol=1e-13)
    U0 = U.copy()
    U0[:, :, 0] = 0.0
    np.testing.assert_array_equal(lin.rollout(x, U0), X)


def test_two_link_mass_matrix_is_todorovs():
    arm = TwoLinkArm()
    q = np.array([[0.3, 1.1, 0.0, 0.0], [-0.5, 2.0, 0.0, 0.0]])
    i1, i2, m2, l1, s2 = 0.025, 0.045, 1.0, 0.30, 0.16
    c = np.cos(q[:, 1])
    M = np.array([[[i1 + i2 + m2 * l1**2 + 2 * m2 * l1 * s2 * cc, i2 + m2 * l1 * s2 * cc],
                   [i2 + m2 * l1 * s2 * cc, i2]] for cc in c])
    np.testing.assert_allclose(arm.mass_matrix(q), M, rtol=1e-14)


def _relative_drift(E, kinetic):
    """Relative energy drift: ``max_t |E(t) - E(0)| / max_t T(t)``.

    The scale is the largest kinetic energy reached, which for a conservative system is the
    largest amount of energy exchanged with the potential (or, without a potential, the
    energy itself). Unlike ``|E(0)|`` it does not depend on where the potential's zero is.
    """
    return np.abs(E - E[0]).max() / kinetic.max()


def _drift(plant, kinetic, potential, z0, dt=DT, seconds=10.0):
    steps = int(round(seconds / dt))
    X = plant.rollout(np.asarray(z0, float)[None], np.zeros((1, steps, plant.control_dim)))[0]
    T = kinetic(X)
    return _relative_drift(T + potential(X), T)


def _pendulum_kinetic(X, m=1.0, l=1.0):
    return 0.5 * (m * l**2 / 3.0) * X[:, 1] ** 2  # uniform rod about its end: m l^2 / 3


def _pendulum_potential(X, g=10.0, m=1.0, l=1.0):
    return m * g * (l / 2.0) * np.cos(X[:, 0])  # centre of mass at l / 2, pivot height 0


def _cartpole_kinetic(X, mc=1.0, mp=0.1, l=0.5):
    # cart plus a uniform rod of length 2 l: CoM at (x + l sin th, l cos th)
    x_d, th, th_d = X[:, 1], X[:, 2], X[:, 3]
    vx = x_d + l * np.cos(th) * th_d
    vy = -l * np.sin(th) * th_d
    rot = 0.5 * (mp * (2 * l) ** 2 / 12.0) * th_d**2
    return 0.5 * mc * x_d**2 + 0.5 * mp * (vx**2 + vy**2) + rot


def _cartpole_potential(X, g=9.8, mp=0.1, l=0.5):
    return mp * g * l * np.cos(X[:, 2])


def test_energy_conservation_pendulum():
    p = Pendulum.continuous(dt=DT)
    X = np.array([[2.0, 1.0], [0.3, -2.0]])
    np.testing.assert_allclose(p.energy(X), _pendulum_kinetic(X) + _pendulum_potential(X),
                               rtol=1e-14)
    assert _drift(p, _pendulum_kinetic, _pendulum_potential, [2.0, 1.0]) <= 1e-6


def test_energy_conservation_cartpole():
    c = CartPole(dt=DT, integrator="rk4")
    X = np.array([[0.0, 0.5, 0.5, 1.0], [1.0, -0.3, 2.0, -1.5]])
    np.testing.assert_allclose(c.energy(X), _cartpole_kinetic(X) + _cartpole_potential(X),
                               rtol=1e-13)
    assert _drift(c, _cartpole_kinetic, _cartpole_potential, [0.0, 0.5, 0.5, 1.0]) <= 1e-6


def _arm_drift(arm, z0, seconds=10.0):
    """Relative drift (see :func:`_relative_drift`) of an unforced, inviscid arm.

    ``arm.energy`` is checked against the oracle's along the run, and the kinetic-energy
    scale comes from the oracle (every 10th state).
    """
    ref = _arm_oracle(arm)
    steps = int(round(seconds / arm.dt))
    X = arm.rollout(np.asarray(z0, float)[None], np.zeros((1, steps, arm.control_dim)))[0]
    every = max(1, steps // 20)
    E_oracle = np.array([ref.energy(z) for z in X[::every]])
    np.testing.assert_allclose(arm.energy(X[::every]), E_oracle, rtol=1e-12, atol=1e-12)
    T = np.array([ref.kinetic(z) for z in X[::10]])
    return _relative_drift(arm.energy(X), T)


@pytest.mark.parametrize(("cls", "gravity", "z0"), [
    (TwoLinkArm, False, [0.3, 1.0, 1.0, -1.5]),
    (TwoLinkArm, True, [0.3, 1.0, 1.0, -1.5]),
    (ThreeLinkArm, False, [0.3, 1.0, 0.5, 1.0, -1.5, 2.0]),
    # vertical plane, released from rest with the upper arm 52 deg below the horizontal, the
    # elbow bent 34 deg and the wrist 17 deg: it swings as a triple pendulum, hand < 15 rad/s
    (ThreeLinkArm, True, [-0.9, 0.6, 0.3, 0.0, 0.0, 0.0]),
], ids=["two-link", "two-link-gravity", "three-link", "three-link-gravity-from-rest"])
def test_energy_conservation_arms(cls, gravity, z0):
    N = 2 if cls is TwoLinkArm else 3
    arm = cls(dt=DT, gravity=gravity, viscosity=np.zeros((N, N)))
    assert _arm_drift(arm, z0) <= 1e-6


def test_energy_conservation_violent_three_link_needs_a_smaller_step():
    """Thrown under gravity (shoulder 17 deg above the horizontal, moving), the three-link arm
    whips its light hand to over 100 rad/s: RK4's truncation error at 1 ms then drifts by
    ~1e-5 of the peak kinetic energy, while 0.5 ms (error ~ dt^4, 16x smaller) meets 1e-6."""
    z0 = [0.3, 1.0, 0.5, 1.0, -1.5, 2.0]
    arm = ThreeLinkArm(dt=5e-4, gravity=True, viscosity=np.zeros((3, 3)))
    assert _arm_drift(arm, z0) <= 1e-6
    coarse = arm.replace(dt=DT)
    assert _arm_drift(coarse, z0) > 1e-6  # the reason for the smaller step


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


def test_pendulum_fast_path_equals_the_generic_integrator():
    """Gymnasium's update runs batch-major with its own vectorised sin/cos; the generic
    per-sample integrator (taken here because of far-away joint limits, which never act)
    computes the same rollout and Jacobians, velocity and torque clipping included."""
    fast = Pendulum()
    generic = Pendulum(joint_limits=(-1e9, 1e9))
    rng = np.random.default_rng(5)
    x = np.column_stack([rng.uniform(-40, 40, 300), rng.uniform(-8, 8, 300)])
    x[:5, 1] = [8.0, -8.0, 7.99, -7.99, 0.0]  # at and near the velocity limit
    U = rng.uniform(-3, 3, (300, 50, 1))  # beyond the torque limit of 2 half of the time
    np.testing.assert_allclose(fast.rollout(x, U), generic.rollout(x, U), rtol=0, atol=1e-9)
    for a, b in zip(fast.jacobians(x, U[:, 0]), generic.jacobians(x, U[:, 0]), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    A, B = fast.jacobians(x, U[:, 0])
    clipped_u = np.abs(U[:, 0, 0]) > 2
    assert np.all(B[clipped_u] == 0) and np.any(B[~clipped_u] != 0)


@pytest.mark.parametrize("n, m", [(1, 1), (2, 3), (3, 2), (4, 4), (5, 2), (7, 3)])
def test_discrete_map_rollout_is_the_definition(n, m):
    """The batch-major map (chunks of samples; sizes up to 4 moved sample by sample, larger
    ones coordinate by coordinate) against the definition ``x' = A x + B(x) clip(u) + w``,
    over several chunks and a short last one, with zero coefficients and process noise."""
    rng = np.random.default_rng(n * 10 + m)
    A = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.7) / n
    B = rng.standard_normal((n, m)) * (rng.random((n, m)) < 0.7)
    G = rng.standard_normal((n, m))
    idx = rng.integers(-1, n, size=(n, m))
    plant = LinearPlant(A, B, B_tanh=G, B_tanh_index=idx, control_limit=0.8,
                        process_noise=0.01, seed=3)
    nb, T = 600, 4
    x0 = rng.standard_normal((nb, n))
    U = rng.standard_normal((nb, T, m))
    X = plant.rollout(x0, U)
    W = 0.01 * np.random.default_rng(3).standard_normal((nb, T, n))  # the plant's draws
    x = x0
    for t in range(T):
        Bx = B + np.where(idx >= 0, G, 0.0) * np.tanh(x[:, np.maximum(idx, 0)])
        x = x @ A.T + np.einsum("bij,bj->bi", Bx, np.clip(U[:, t], -0.8, 0.8)) + W[:, t]
        np.testing.assert_allclose(X[:, t + 1], x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n, m", [(1, 1), (2, 2), (3, 2), (5, 3)])
def test_discrete_map_jacobians_are_the_definition(n, m):
    """``A + sum_j B_tanh[i, j] (1 - tanh^2 x_k) clip(u_j)`` at ``(i, k)`` and ``B(x)`` with
    the columns of clipped controls zero, over several chunks and a short last one."""
    rng = np.random.default_rng(n * 10 + m + 1)
    A = rng.standard_normal((n, n))
    B = rng.standard_normal((n, m)) * (rng.random((n, m)) < 0.7)
    G = rng.standard_normal((n, m))
    idx = rng.integers(-1, n, size=(n, m))
    plant = LinearPlant(A, B, B_tanh=G, B_tanh_index=idx, control_limit=0.8)
    nb = 600
    x = rng.standard_normal((nb, n))
    u = rng.standard_normal((nb, m))
    Ab, Bb = plant.jacobians(x, u)
    uc = np.clip(u, -0.8, 0.8)
    free = np.abs(u) <= 0.8
    th = np.tanh(x)
    Ae = np.repeat(A[None], nb, axis=0)
    Be = np.zeros((nb, n, m))
    for i in range(n):
        for j in range(m):
            k = idx[i, j]
            if k >= 0:
                Ae[:, i, k] += G[i, j] * (1 - th[:, k] ** 2) * uc[:, j]
                Be[:, i, j] = B[i, j] + G[i, j] * th[:, k]
            else:
                Be[:, i, j] = B[i, j]
    Be *= free[:, None, :]
    np.testing.assert_allclose(Ab, Ae, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(Bb, Be, rtol=1e-12, atol=1e-13)
