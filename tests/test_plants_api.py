"""Plant API: shapes, validation, noise, kinematics, protocol conformance."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import plants
from plants import (
    ArmDynamics,
    CartPole,
    Dynamics,
    LinearPlant,
    MechanicalDynamics,
    Pendulum,
    ThreeLinkArm,
    TwoLinkArm,
)
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
    assert pushed.parameters["masses"].tolist() == [1.4, 1.0]
    x = np.array([[0.5, 1.0, 0.0, 0.0]])
    u = np.zeros((1, 2))
    assert not np.allclose(pushed.step(x, u), arm.step(x, u))
    # the force acts through J^T: hand accelerates along +y initially
    X = pushed.rollout(x, np.zeros((1, 5, 2)))
    hv = pushed.hand_velocity(X[:, -1])
    assert hv[0, 1] > 0


def test_public_api():
    for name in ["Dynamics", "MechanicalDynamics", "ArmDynamics", "CompiledDynamics",
                 "LinearPlant", "Pendulum", "CartPole", "TwoLinkArm", "ThreeLinkArm", "tasks"]:
        assert hasattr(plants, name)


@pytest.mark.parametrize(("make", "mechanical", "arm"), [
    (Pendulum, True, False),
    (CartPole, True, False),
    (TwoLinkArm, True, True),
    (ThreeLinkArm, True, True),
    (LinearPlant.demo, False, False),
])
def test_extended_protocols(make, mechanical, arm):
    p = make()
    assert isinstance(p, Dynamics) and isinstance(p, CompiledDynamics)
    assert isinstance(p, MechanicalDynamics) is mechanical
    assert isinstance(p, ArmDynamics) is arm
    x = 0.3 * np.ones((4, p.state_dim))
    if mechanical:
        assert p.energy(x).shape == (4,)
    if arm:
        N = p.n_links
        assert p.state_dim == 2 * N and p.control_dim == N
        assert p.hand_position(x).shape == (4, 2)
        J = p.hand_jacobian(x)
        assert J.shape == (4, 2, N)
        np.testing.assert_allclose(p.hand_velocity(x), np.einsum("bij,bj->bi", J, x[:, N:]))


def test_protocols_accept_a_users_duck_typed_arm():
    """The protocols are structural: a user's class with the members conforms."""

    class MyArm:
        state_dim, control_dim, dt, n_links = 2, 1, 0.01, 1
        control_low, control_high = np.array([-1.0]), np.array([1.0])
        parameters = {}

        def step(self, x, u): ...
        def rollout(self, x0, U): ...
        def jacobians(self, x, u): ...
        def energy(self, x): ...
        def hand_position(self, x): ...
        def hand_jacobian(self, x): ...
        def hand_velocity(self, x): ...

    assert isinstance(MyArm(), ArmDynamics) and isinstance(MyArm(), MechanicalDynamics)
    assert not isinstance(MyArm(), CompiledDynamics)
    del MyArm.energy
    assert not isinstance(MyArm(), MechanicalDynamics) and not isinstance(MyArm(), ArmDynamics)


def test_default_parameters_are_the_published_ones():
    """Literal values from the issue and the sources, and Gymnasium's own attributes."""
    arm = TwoLinkArm().parameters  # Li & Todorov (2004), as re-implementations give it
    np.testing.assert_array_equal(arm["masses"], [1.4, 1.0])
    np.testing.assert_array_equal(arm["lengths"], [0.30, 0.33])
    np.testing.assert_array_equal(arm["com"], [0.11, 0.16])
    np.testing.assert_array_equal(arm["inertias"], [0.025, 0.045])
    np.testing.assert_array_equal(arm["viscosity"], [[0.05, 0.025], [0.025, 0.05]])
    assert arm["gravity"] == 0.0 and arm["max_torque"] is None
    assert (arm["dt"], arm["integrator"], arm["substeps"]) == (0.01, "rk4", 1)

    pend = Pendulum()  # Gymnasium Pendulum-v1
    P = pend.parameters
    assert (P["g"], P["m"], P["l"], P["dt"], P["max_torque"]) == (10.0, 1.0, 1.0, 0.05, 2.0)
    np.testing.assert_array_equal(P["max_speed"], [8.0])
    np.testing.assert_array_equal(pend.control_high, [2.0])
    np.testing.assert_array_equal(pend.control_low, [-2.0])
    assert P["integrator"] == "semi_implicit"
    gym_pend = gymnasium.make("Pendulum-v1").unwrapped
    assert (gym_pend.g, gym_pend.m, gym_pend.l, gym_pend.dt) == (P["g"], P["m"], P["l"], P["dt"])
    assert (gym_pend.max_speed, gym_pend.max_torque) == (8.0, P["max_torque"])

    C = CartPole().parameters  # Gymnasium CartPole-v1
    assert (C["gravity"], C["masscart"], C["masspole"], C["length"]) == (9.8, 1.0, 0.1, 0.5)
    assert (C["force_mag"], C["dt"], C["integrator"]) == (10.0, 0.02, "euler")
    gym_cp = gymnasium.make("CartPole-v1").unwrapped
    assert (gym_cp.gravity, gym_cp.masscart, gym_cp.masspole, gym_cp.length) == (
        C["gravity"], C["masscart"], C["masspole"], C["length"])
    assert (gym_cp.force_mag, gym_cp.tau, gym_cp.kinematics_integrator) == (
        C["force_mag"], C["dt"], C["integrator"])

    # Winter (2009) Table 4.1 (mass fraction; CoM and radius of gyration about the proximal
    # joint, as fractions of segment length) and Fig. 4.1 (Drillis & Contini segment length /
    # height), for 70 kg and 1.75 m: upper arm, forearm, hand
    mass_frac = np.array([0.028, 0.016, 0.006])
    com_frac = np.array([0.436, 0.430, 0.506])
    gyr_frac = np.array([0.542, 0.526, 0.587])
    len_frac = np.array([0.186, 0.146, 0.108])
    lengths = len_frac * 1.75
    masses = mass_frac * 70.0
    A = ThreeLinkArm().parameters
    np.testing.assert_allclose(A["masses"], masses, rtol=1e-15)
    np.testing.assert_allclose(A["masses"], [1.96, 1.12, 0.42], rtol=1e-15)
    np.testing.assert_allclose(A["lengths"], lengths, rtol=1e-15)
    np.testing.assert_allclose(A["lengths"], [0.3255, 0.2555, 0.189], rtol=1e-15)
    np.testing.assert_allclose(A["com"], com_frac * lengths, rtol=1e-15)
    np.testing.assert_allclose(A["inertias"], masses * (gyr_frac * lengths) ** 2, rtol=1e-14)
    assert A["gravity"] == 0.0


def test_bad_parameter_types_name_the_argument():
    with pytest.raises(TypeError, match="max_speed must be a number or a length-2 vector"):
        TwoLinkArm(max_speed=["a"])
    with pytest.raises(TypeError, match="max_speed must be"):
        Pendulum(max_speed=["a"])
    with pytest.raises(TypeError, match="max_speed must be"):
        CartPole(max_speed=[[1.0, 2.0], [3.0]])  # ragged
    with pytest.raises(TypeError, match="max_torque must be"):
        ThreeLinkArm(max_torque=True)  # not silently 1 N m
    with pytest.raises(TypeError, match="control_noise must be"):
        TwoLinkArm(control_noise=[0.1, "b"])
    with pytest.raises(TypeError, match="joint_limits upper limit must be"):
        TwoLinkArm(joint_limits=(-1.0, "x"))
    with pytest.raises(TypeError, match="orientation must be"):
        ThreeLinkArm().inverse_kinematics([[0.3, 0.3]], orientation="up")
    with pytest.raises(ValueError, match=r"orientation must be a number or shape \(1,\)"):
        ThreeLinkArm().inverse_kinematics([[0.3, 0.3]], orientation=[0.0, 1.0])


@pytest.mark.parametrize("make", [
    Pendulum, CartPole, TwoLinkArm, ThreeLinkArm, LinearPlant.demo,
    lambda: Pendulum(integrator="rk4", substeps=2, joint_limits=(-0.2, 0.2)),
    lambda: TwoLinkArm(integrator="euler", max_speed=1.0, joint_limits=(-0.5, 0.5), curl=5.0),
    lambda: CartPole(integrator="semi_implicit", joint_limits=(-0.05, 0.05)),
])
def test_batched_paths_equal_per_sample_kernels_bitwise(make):
    """``step`` and ``rollout`` on a batch equal the kernels run on one sample, bit for bit;
    ``jacobians`` to rounding (a batch of 8 or more may take the batch-major pass, whose
    vectorised sine and cosine differ from libm's by an ulp or so)."""
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
        np.testing.assert_allclose(A[b], Ab[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(B[b], Bb[0], rtol=1e-12, atol=1e-14)


def test_calls_from_several_threads_match_one_thread():
    """The kernel scratch is reused per thread: calls from a thread pool, interleaving two
    plants of different sizes, give what sequential calls give."""
    from concurrent.futures import ThreadPoolExecutor

    arm, cart = TwoLinkArm(), CartPole()
    rng = np.random.default_rng(8)
    jobs = []
    for k in range(16):
        p = arm if k % 2 else cart
        x = 0.5 * rng.standard_normal((40, p.state_dim))
        u = 0.5 * rng.standard_normal((40, p.control_dim))
        jobs.append((p, x, u))

    def run(job):
        p, x, u = job
        return p.step(x, u), *p.jacobians(x, u)

    expected = [run(job) for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, jobs))
    for e, g in zip(expected, got, strict=True):
        for a, b in zip(e, g, strict=True):
            np.testing.assert_array_equal(a, b)
