"""Plant API: shapes, validation, noise, kinematics, protocol conformance."""

from __future__ import annotations

import numpy as np
import pytest

import plants
from plants import CartPole, Dynamics, LinearPlant, Pendulum, ThreeLinkArm, TwoLinkArm
from plants.protocol import CompiledDynamics

ALL = [Pendulum, CartPole, TwoLinkArm, ThreeLinkArm, LinearPlant.demo]


def test_plants_does_not_import_hfcontrol():
    import subprocess
    import sys
    code = "import sys, plants, plants.tasks; print('hfcontrol' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("make", ALL)
def test_protocol_and_shapes(make):
    p = make()
    assert isinstance(p, Dynamics) and isinstance(p, CompiledDynamics)
    n, m = p.state_dim, p.control_dim
    rng = np.random.default_rng(0)
    x = 0.3 * rng.standard_normal((5, n))
    U = 0.3 * rng.standard_normal((5, 7, m))
    X = p.rollout(x, U)
    assert X.shape == (5, 8, n)
    np.testing.assert_array_equal(X[:, 0], x)
    xs = x
    for t in range(7):  # rollout equals repeated step
        xs = p.step(xs, U[:, t])
        np.testing.assert_allclose(X[:, t + 1], xs, rtol=1e-13, atol=1e-15)
    A, B = p.jacobians(x, U[:, 0])
    assert A.shape == (5, n, n) and B.shape == (5, n, m)
    assert p.step(x.tolist(), U[:, 0].tolist()).shape == (5, n)  # lists are accepted
    assert p.parameters["dt"] == p.dt
    assert p.kernel_params.dtype == np.float64 and p.kernel_params[0] == p.kernel_code
    assert all(callable(k) for k in p.kernels) and p.workspace_size > 0


@pytest.mark.parametrize("make", ALL)
def test_bad_inputs_raise_clear_errors(make):
    p = make()
    n, m = p.state_dim, p.control_dim
    x = np.zeros((2, n))
    u = np.zeros((2, m))
    with pytest.raises(ValueError, match=rf"x must have shape \(any, {n}\)"):
        p.step(np.zeros((2, n + 1)), u)
    with pytest.raises(ValueError, match="u must have shape"):
        p.step(x, np.zeros((2, m + 1)))
    with pytest.raises(ValueError, match="x must have shape"):
        p.step(np.zeros(n), np.zeros(m))  # no silent broadcasting of 1-D input
    with pytest.raises(ValueError, match="same batch size"):
        p.step(x, np.zeros((3, m)))
    bad = x.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"x\[1\] must be finite"):
        p.step(bad, u)
    with pytest.raises(ValueError, match="finite"):
        p.jacobians(bad, u)
    with pytest.raises(ValueError, match="finite"):
        p.rollout(x, np.full((2, 3, m), np.nan))
    with pytest.raises(ValueError, match="U must have shape"):
        p.rollout(x, np.zeros((2, 3, m + 1)))
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        p.step(np.array([["a"] * n] * 2), u)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="dt must be"):
        Pendulum(dt=-0.1)
    with pytest.raises(ValueError, match="integrator must be one of"):
        Pendulum(integrator="leapfrog")
    with pytest.raises(ValueError, match="m must be"):
        Pendulum(m=0.0)
    with pytest.raises(TypeError, match="substeps must be an integer"):
        CartPole(substeps=2.5)
    with pytest.raises(ValueError, match="masspole must be"):
        CartPole(masspole=-1.0)
    with pytest.raises(ValueError, match="parallel-axis"):
        TwoLinkArm(inertias=(0.001, 0.045))
    with pytest.raises(ValueError, match="com must satisfy"):
        TwoLinkArm(com=(0.4, 0.16))
    with pytest.raises(ValueError, match="viscosity must be symmetric"):
        TwoLinkArm(viscosity=[[0.5, 0.2], [0.1, 0.5]])
    with pytest.raises(ValueError, match=r"lengths must have shape \(3,\)"):
        TwoLinkArm(masses=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="either curl or field"):
        TwoLinkArm(curl=1.0, field=np.eye(2))
    with pytest.raises(ValueError, match="joint_limits limits need low < high"):
        TwoLinkArm(joint_limits=(1.0, 0.0))
    with pytest.raises(ValueError, match="A must be square"):
        LinearPlant(np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="semi_implicit"):
        LinearPlant(np.eye(2), np.ones((2, 1)), integrator="semi_implicit")
    with pytest.raises(ValueError, match="B_tanh_index entries"):
        LinearPlant(np.eye(2), np.ones((2, 1)), B_tanh=np.ones((2, 1)),
                    B_tanh_index=np.array([[5], [0]]))
    with pytest.raises(ValueError, match="control_noise must be"):
        Pendulum(control_noise=-1.0)
    with pytest.raises(TypeError, match="rng must be"):
        Pendulum(control_noise=0.1, rng=42)


def test_control_clipping_is_part_of_the_model():
    p = Pendulum()
    x = np.array([[0.3, 0.0]])
    np.testing.assert_array_equal(p.step(x, np.array([[50.0]])), p.step(x, np.array([[2.0]])))
    free = Pendulum(max_torque=None)
    assert not np.array_equal(free.step(x, np.array([[50.0]])), free.step(x, np.array([[2.0]])))


def test_noise_is_seeded_and_reproducible():
    a = TwoLinkArm(control_noise=0.1, process_noise=1e-3, seed=7)
    b = TwoLinkArm(control_noise=0.1, process_noise=1e-3, seed=7)
    x = np.zeros((4, 4))
    U = np.zeros((4, 10, 2))
    Xa, Xb = a.rollout(x, U), b.rollout(x, U)
    np.testing.assert_array_equal(Xa, Xb)
    assert np.abs(Xa).max() > 0
    clean = TwoLinkArm().rollout(x, U)
    assert np.abs(clean).max() == 0.0
    assert not np.array_equal(a.step(x, U[:, 0]), a.step(x, U[:, 0]))


@pytest.mark.parametrize("cls", [TwoLinkArm, ThreeLinkArm])
def test_kinematics_round_trip(cls):
    arm = cls()
    rng = np.random.default_rng(3)
    N = arm.n_links
    q = np.column_stack([rng.uniform(-1, 2, 50), rng.uniform(0.2, 2.5, 50),
                         rng.uniform(-0.6, 0.6, 50)])[:, :N]
    x = np.hstack([q, np.zeros_like(q)])
    p = arm.hand_position(x)
    if N == 2:
        q_ik = arm.inverse_kinematics(p)
    else:
        q_ik = arm.inverse_kinematics(p, orientation=q.sum(axis=1))
    x_ik = np.hstack([q_ik, np.zeros_like(q_ik)])
    np.testing.assert_allclose(arm.hand_position(x_ik), p, atol=1e-12)
    wrap = (q_ik - q + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(wrap, 0.0, atol=1e-9)
    # forward kinematics: the formula from the issue for the two-link case
    if N == 2:
        l1, l2 = arm.lengths
        expect = np.column_stack([l1 * np.cos(q[:, 0]) + l2 * np.cos(q.sum(1)),
                                  l1 * np.sin(q[:, 0]) + l2 * np.sin(q.sum(1))])
        np.testing.assert_allclose(p, expect, atol=1e-15)
    # hand Jacobian against finite differences
    J = arm.hand_jacobian(x[:3])
    eps = 1e-6
    for k in range(N):
        d = np.zeros(2 * N)
        d[k] = eps
        fd = (arm.hand_position(x[:3] + d) - arm.hand_position(x[:3] - d)) / (2 * eps)
        np.testing.assert_allclose(J[:, :, k], fd, atol=1e-9)
    with pytest.raises(ValueError, match="outside the reachable"):
        arm.inverse_kinematics(np.array([[5.0, 0.0]]))


def test_replace_and_field_changes_dynamics():
    arm = TwoLinkArm()
    pushed = arm.replace(constant_force=(0.0, 5.0))
    assert pushed.parameters["masses"].tolist() == [1.4, 1.1]
    x = np.array([[0.5, 1.0, 0.0, 0.0]])
    u = np.zeros((1, 2))
    assert not np.allclose(pushed.step(x, u), arm.step(x, u))
    # the force acts through J^T: hand accelerates along +y initially
    X = pushed.rollout(x, np.zeros((1, 5, 2)))
    hv = pushed.hand_velocity(X[:, -1])
    assert hv[0, 1] > 0


def test_public_api():
    for name in ["Dynamics", "LinearPlant", "Pendulum", "CartPole", "TwoLinkArm",
                 "ThreeLinkArm", "tasks"]:
        assert hasattr(plants, name)


@pytest.mark.parametrize("make", [
    Pendulum, CartPole, TwoLinkArm, ThreeLinkArm, LinearPlant.demo,
    lambda: Pendulum(integrator="rk4", substeps=2, joint_limits=(-0.2, 0.2)),
    lambda: TwoLinkArm(integrator="euler", max_speed=1.0, joint_limits=(-0.5, 0.5), curl=5.0),
    lambda: CartPole(integrator="semi_implicit", joint_limits=(-0.05, 0.05)),
])
def test_batched_paths_equal_per_sample_kernels_bitwise(make):
    """``step``/``rollout``/``jacobians`` on a batch equal the kernels run on one sample."""
    p = make()
    n, m = p.state_dim, p.control_dim
    rng = np.random.default_rng(1)
    x = 0.5 * rng.standard_normal((9, n))
    U = 2.0 * rng.standard_normal((9, 3, m))
    X = p.rollout(x, U)
    xn = p.step(x, U[:, 0])
    A, B = p.jacobians(x, U[:, 0])
    rollout, jacobians = p.kernels
    params, ws = p.kernel_params, np.empty(p.workspace_size)
    for b in range(9):
        out = np.empty((1, 1, n))
        assert rollout(params, x[b:b + 1], U[b:b + 1, :1], U, False, out, 0, ws) == -1
        np.testing.assert_array_equal(xn[b], out[0, 0])
        np.testing.assert_array_equal(X[b, 1], out[0, 0])
        for t in range(1, 3):
            rollout(params, X[b:b + 1, t].copy(), U[b:b + 1, t:t + 1].copy(), U, False, out, 0, ws)
            np.testing.assert_array_equal(X[b, t + 1], out[0, 0])
        Ab, Bb = np.empty((1, n, n)), np.empty((1, n, m))
        assert jacobians(params, x[b:b + 1], U[b:b + 1, 0].copy(), Ab, Bb, ws) == -1
        np.testing.assert_array_equal(A[b], Ab[0])
        np.testing.assert_array_equal(B[b], Bb[0])
