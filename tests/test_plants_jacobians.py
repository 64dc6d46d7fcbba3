"""Analytic Jacobians of the discrete step against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from plants import CartPole, LinearPlant, Pendulum, ThreeLinkArm, TwoLinkArm
from plants import _kernels as K

INTEGRATORS = ["euler", "semi_implicit", "rk4"]


def _fd(plant, x, u, eps=1e-6):
    n, m = plant.state_dim, plant.control_dim
    X = np.concatenate([x + eps * np.eye(n), x - eps * np.eye(n),
                        np.repeat(x[None], 2 * m, axis=0)])
    Uc = np.concatenate([np.repeat(u[None], 2 * n, axis=0), u + eps * np.eye(m),
                         u - eps * np.eye(m)])
    Y = plant.step(X, Uc)
    A = (Y[:n] - Y[n:2 * n]).T / (2 * eps)
    B = (Y[2 * n:2 * n + m] - Y[2 * n + m:]).T / (2 * eps)
    return A, B


def _make(name, integ, sub):
    if name == "pendulum":
        return Pendulum(integrator=integ, substeps=sub, curl=0.7, constant_force=(0.3, -0.2))
    if name == "cartpole":
        return CartPole(integrator=integ, substeps=sub, field=[[0.3, 0.5], [-0.2, 0.1]],
                        constant_force=(0.1, 0.4))
    if name == "arm2":
        return TwoLinkArm(integrator=integ, substeps=sub, gravity=True, curl=10.0,
                          constant_force=(1.0, 2.0))
    if name == "arm2_spring":  # a position-dependent hand force (a force channel's kind)
        return TwoLinkArm(integrator=integ, substeps=sub, field=((-20.0, 5.0), (3.0, -9.0)),
                          position_field=((-300.0, 80.0), (40.0, -150.0)),
                          field_origin=(0.1, 0.3))
    return ThreeLinkArm(integrator=integ, substeps=sub, gravity=True, curl=10.0,
                        constant_force=(1.0, 2.0))


def _check(plant, x, u, tol=1e-6):
    A, B = plant.jacobians(x[None], u[None])
    Af, Bf = _fd(plant, x, u)
    scale_a = max(np.abs(Af).max(), 1.0)
    scale_b = max(np.abs(Bf).max(), 1e-3)
    assert np.abs(A[0] - Af).max() / scale_a <= tol
    assert np.abs(B[0] - Bf).max() / scale_b <= tol


@pytest.mark.parametrize("sub", [1, 3])
@pytest.mark.parametrize("integ", INTEGRATORS)
@pytest.mark.parametrize("name", ["pendulum", "cartpole", "arm2", "arm2_spring", "arm3"])
def test_jacobians_match_finite_differences(name, integ, sub):
    plant = _make(name, integ, sub)
    rng = np.random.default_rng(hash((name, integ, sub)) % 2**32)
    for _ in range(3):
        x = 0.5 * rng.standard_normal(plant.state_dim)
        u = 0.5 * rng.standard_normal(plant.control_dim)
        _check(plant, x, u)


@pytest.mark.parametrize("integ", ["discrete", "euler", "rk4"])
def test_linear_jacobians(integ):
    plant = LinearPlant.demo(integrator=integ, dt=1.0 if integ == "discrete" else 0.1)
    rng = np.random.default_rng(0)
    _check(plant, rng.standard_normal(2), rng.standard_normal(2))


def test_clipping_zeroes_derivatives():
    p = Pendulum()
    A, B = p.jacobians(np.array([[0.5, 0.0]]), np.array([[5.0]]))  # torque clipped at 2
    assert B[0, 0, 0] == 0.0
    A, B = p.jacobians(np.array([[0.5, 7.99]]), np.array([[2.0]]))  # speed clipped at 8
    _check(p, np.array([0.5, 7.99]), np.array([1.9]))
    assert np.all(A[0, 1] == 0.0)


@pytest.mark.parametrize("sub", [1, 3])
@pytest.mark.parametrize("integ", INTEGRATORS)
def test_joint_stops_and_velocity_clip_in_jacobians(integ, sub):
    """Jacobians where the stops and the velocity clip are active, not merely present.

    The states are chosen clear of the kinks (no perturbation of 1e-6 moves a coordinate
    across its stop or a velocity across its clip), so central differences are exact there.
    """
    # no viscosity: it would slow a clipped joint below the clip within a substep
    arm = TwoLinkArm(joint_limits=((-1.0, 0.0), (2.0, 2.5)), max_speed=2.0, integrator=integ,
                     substeps=sub, gravity=True, curl=5.0, viscosity=np.zeros((2, 2)))
    u = np.array([0.3, -0.2])
    # (state, {state index: exact value after the step}); each of those coordinates is
    # clipped or stopped, so its row of the Jacobians must be zero
    cases = [
        # elbow past its 2.5 rad stop moving outwards; shoulder well over the 2 rad/s limit and
        # moving down, so gravity keeps it at the limit through every substep
        (np.array([1.0, 2.6, -5.0, 1.0]), {1: 2.5, 2: -2.0, 3: 0.0}),
        # elbow exactly at the stop moving outwards: the step ends past it, so it is put back
        (np.array([1.0, 2.5, -5.0, 1.5]), {1: 2.5, 2: -2.0, 3: 0.0}),
        # elbow past the stop but moving back inwards: position reset, velocity kept (with
        # substeps, the later ones carry it back inside the range: its row is not zero then)
        (np.array([1.0, 2.7, -5.0, -1.0]), {1: 2.5, 2: -2.0} if sub == 1 else {2: -2.0}),
        # shoulder below its -1 rad stop moving further down, where gravity holds it
        (np.array([-1.1, 1.0, -1.5, 0.5]), {0: -1.0, 2: 0.0}),
    ]
    for x, held in cases:
        nxt = arm.step(x[None], u[None])[0]
        for i, value in held.items():
            assert nxt[i] == value, (x, i, nxt)
        for i in set(range(4)) - set(held):
            assert nxt[i] not in (-2.0, 2.0, -1.0, 2.5, 0.0), (x, i, nxt)  # free coordinates
        A, B = arm.jacobians(x[None], u[None])
        rows = list(held)
        assert np.all(A[0, rows] == 0.0) and np.all(B[0, rows] == 0.0)
        assert np.abs(A[0]).max() > 0.5  # the free coordinates still depend on the state
        _check(arm, x, u)


@pytest.mark.parametrize("integ", ["discrete", "euler", "rk4"])
def test_linear_control_clipping_in_jacobians(integ):
    """A control past ``control_limit`` is clipped as part of the model: its column of
    ``dx'/du`` is zero, and ``dx'/dx`` uses the clipped value."""
    dt = 1.0 if integ == "discrete" else 0.1
    plant = LinearPlant.demo(integrator=integ, dt=dt, control_limit=0.5)
    x = np.array([0.4, -0.3])
    u = np.array([0.2, 1.7])  # the second (the only one that acts) is clipped to 0.5
    A, B = plant.jacobians(x[None], u[None])
    np.testing.assert_array_equal(B[0, :, 1], 0.0)
    _check(plant, x, u)
    if integ == "discrete":
        # s' = (p + 0.2 v, v + tanh(p) * clip(u_1)) differentiated by hand
        sech2 = 1.0 - np.tanh(x[0]) ** 2
        np.testing.assert_allclose(A[0], [[1.0, 0.2], [sech2 * 0.5, 1.0]], rtol=1e-14)
        np.testing.assert_array_equal(B[0], np.zeros((2, 2)))
    unclipped = LinearPlant.demo(integrator=integ, dt=dt)
    assert np.abs(unclipped.jacobians(x[None], u[None])[1][0, :, 1]).max() > 0.02  # ~dt tanh(p)


@njit(cache=True)
def _closed_loop(params, x0, T, ws):
    """A user's compiled loop calling a plant's kernels by name, one sample at a time."""
    x = x0.copy().reshape((1, 4))
    xn = np.empty((1, 1, 4))
    u = np.zeros((1, 2))
    u3 = u.reshape((1, 1, 2))  # a view: the one step's control sequence
    A = np.empty((1, 4, 4))
    B = np.empty((1, 4, 2))
    for _ in range(T + 1):
        u[0, 0] = -x[0, 0]
        u[0, 1] = -x[0, 1]
        K.jacobians_two_link(params, x, u, A, B, ws)
        K.rollout_two_link(params, x, u3, u3, False, xn, 0, ws)
        x[0] = xn[0, 0]
    return xn[0, 0], A[0], B[0]


def test_jacobian_kernels_callable_from_compiled_code():
    arm = TwoLinkArm()
    assert arm.kernels == (K.rollout_two_link, K.jacobians_two_link)
    ws = np.empty(arm.workspace_size)
    x0 = np.array([0.3, 1.0, 0.0, 0.0])
    xn, A, B = _closed_loop(arm.kernel_params, x0, 5, ws)
    x = x0[None].copy()
    for _ in range(6):
        u = -x[:, :2]
        x_prev = x
        x = arm.step(x, u)
    np.testing.assert_allclose(xn, x[0], rtol=1e-12, atol=1e-14)
    A2, B2 = arm.jacobians(x_prev, -x_prev[:, :2])
    np.testing.assert_allclose(A, A2[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(B, B2[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("arm", [
    TwoLinkArm(gravity=True, curl=8.0, constant_force=(0.5, -1.0)),
    ThreeLinkArm(gravity=True, field=((1.0, 6.0), (-7.0, 0.5)), constant_force=(0.3, 0.8)),
], ids=["two-link", "three-link"])
def test_specialised_arm_kernels_equal_the_generic_chain(arm):
    """The closed-form two-link and the N = 3 chain kernels against the any-N chain kernel
    (the same model in a different form or with N unknown at compile time)."""
    rng = np.random.default_rng(5)
    n, m = arm.state_dim, arm.control_dim
    x = 0.6 * rng.standard_normal((7, n))
    U = rng.standard_normal((7, 20, m))
    params, ws = arm.kernel_params, np.empty(arm.workspace_size)
    results = []
    for rollout, jacobians in [arm.kernels, (K.rollout_chain, K.jacobians_chain)]:
        X = np.empty((7, 21, n))
        A, B = np.empty((7, n, n)), np.empty((7, n, m))
        assert rollout(params, x, U, U, False, X, 1, ws) == -1
        assert jacobians(params, x, U[:, 0].copy(), A, B, ws) == -1
        results.append((X, A, B))
    for fast, generic in zip(*results, strict=True):
        np.testing.assert_allclose(fast, generic, rtol=1e-11, atol=1e-12)
