"""Muscle-driven plants: Hill muscles, MuscleArm, PointMass.

Oracles: central finite differences of the compiled step (Jacobians), the plants' NumPy
step (compiled kernels), the closed form of the activation decay and solve_ivp, the
skeleton's mass matrix and Coriolis terms written out here (muscle torques), the power
balance of the skeleton, and the exact solution of a constant force (point mass).
"""

from __future__ import annotations

import numpy as np
import pytest
from plants_oracles import central_jacobian
from scipy.integrate import solve_ivp

import plants
from plants import muscles as M
from plants.tasks import Hold, Reach, Track

DEG = np.pi / 180


def _arm_states(arm, B, rng):
    """Random states inside the joint stops, moving (no muscle at zero velocity), activations
    away from the clamps and from the switches of the Hill model."""
    x = np.zeros((B, arm.state_dim))
    x[:, 0] = rng.uniform(20 * DEG, 110 * DEG, B)
    x[:, 1] = rng.uniform(30 * DEG, 130 * DEG, B)
    x[:, 2:4] = rng.uniform(0.3, 1.5, (B, 2)) * rng.choice([-1, 1], (B, 2))
    x[:, 4:] = rng.uniform(0.05, 0.9, (B, 6))
    return x



def _assert_jacobians(plant, x, u):
    A, B = plant.jacobians(x, u)
    Afd = central_jacobian(lambda y: plant.step(y, u), x)
    Bfd = central_jacobian(lambda v: plant.step(x, v), u)
    scale_a = max(1.0, np.abs(Afd).max())
    scale_b = max(1.0, np.abs(Bfd).max())
    np.testing.assert_allclose(A, Afd, atol=2e-6 * scale_a, rtol=0)
    np.testing.assert_allclose(B, Bfd, atol=2e-6 * scale_b, rtol=0)


def _kink_free(arm, x, u, margin=1e-3):
    """Keep samples whose excitation differs from the activation (the activation/
    deactivation switch) and whose muscles are not at zero velocity."""
    vel = arm.muscle_velocities(x)
    ok = (np.abs(u - x[:, 4:]) > margin).all(axis=1) & (np.abs(vel) > margin).all(axis=1)
    return x[ok], u[ok]


@pytest.mark.parametrize("kw", [
    {},
    {"integrator": "rk4", "substeps": 2},
    {"gravity": True, "curl": 10.0, "constant_force": (1.0, -2.0)},
    {"integrator": "rk4", "gravity": True, "viscosity": ((0.05, 0.025), (0.025, 0.05))},
    {"position_field": ((-400.0, 60.0), (30.0, -200.0)), "field_origin": (0.05, 0.4),
     "field": ((-5.0, 1.0), (0.0, -3.0))},
])
def test_muscle_arm_jacobians_match_finite_differences(kw):
    arm = plants.MuscleArm(joint_limits=None, **kw)
    rng = np.random.default_rng(1)
    x = _arm_states(arm, 12, rng)
    u = rng.uniform(0.0, 1.0, (12, 6))
    x, u = _kink_free(arm, x, u)
    assert x.shape[0] >= 6
    _assert_jacobians(arm, x, u)


def test_muscle_arm_jacobian_clamps_and_clips():
    """Excitations outside [0, 1] are clipped (zero column), an activation driven past 1 by
    the Euler step is clamped (zero row), as the finite differences see them too."""
    arm = plants.MuscleArm(joint_limits=None)
    rng = np.random.default_rng(2)
    x = _arm_states(arm, 4, rng)
    x[:, 4:] = 0.02
    u = np.full((4, 6), 0.5)
    u[:, 0] = 1.0 + 0.3   # clipped to 1: activation 0.02 -> above 1 after one Euler step
    u[:, 1] = -0.2        # clipped to 0 (then raised to a_min)
    A, B = arm.jacobians(x, u)
    np.testing.assert_array_equal(B[:, :, 0], 0.0)
    np.testing.assert_array_equal(B[:, :, 1], 0.0)
    xn = arm.step(x, u)
    assert np.all(xn[:, 4] == 1.0)
    np.testing.assert_array_equal(A[:, 4, :], 0.0)
    np.testing.assert_array_equal(xn, arm.step(x, np.clip(u, 0.0, 1.0)))
    _assert_jacobians(arm, x, u)


@pytest.mark.parametrize("kw", [
    {},
    {"integrator": "rk4", "substeps": 3, "gravity": True, "curl": -8.0},
    {"substeps": 3, "position_field": ((-2000.0, 0.0), (0.0, -500.0)),
     "field_origin": (0.0, 0.45), "field": ((-20.0, 0.0), (0.0, -20.0))},
])
def test_compiled_muscle_arm_agrees_with_numpy(kw):
    arm = plants.MuscleArm(**kw)
    rng = np.random.default_rng(3)
    B, T = 16, 60
    x0 = arm.rest_state(np.column_stack([rng.uniform(30, 100, B) * DEG,
                                         rng.uniform(40, 120, B) * DEG]))
    U = rng.uniform(-0.2, 1.2, (B, T, 6))   # some clipped
    X = arm.rollout(x0, U)
    x = x0
    for t in range(T):
        x = arm.numpy_step(x, U[:, t])
        np.testing.assert_allclose(X[:, t + 1], x, rtol=1e-9, atol=1e-9)


def test_joint_stops_hold_the_arm_inside_motornets_limits():
    arm = plants.MuscleArm()
    x0 = arm.rest_state([[0.1, 0.1]])
    U = np.zeros((1, 100, 6))
    U[:, :, [1, 3]] = 1.0    # deltoid and triceps: drive both joints towards 0
    X = arm.rollout(x0, U)
    assert X[0, :, 0].min() >= 0.0 and X[0, :, 1].min() >= 0.0
    assert X[0, -1, 0] == 0.0 and X[0, -1, 1] == 0.0


def _skeleton_torque(arm, x, acc):
    """``M(q) qddot + C(q, qdot) qdot`` written out (MotorNet's TwoDofArm form, inertias
    about the centres of mass) for the horizontal arm without viscosity."""
    m1, m2 = 1.82, 1.43
    l1, s1, s2 = 0.309, 0.135, 0.165
    I1, I2 = 0.051, 0.057
    q2, v1, v2 = x[:, 1], x[:, 2], x[:, 3]
    c2, sn2 = np.cos(q2), np.sin(q2)
    m11 = m1 * s1**2 + I1 + m2 * (s2**2 + l1**2) + I2 + 2 * m2 * l1 * s2 * c2
    m12 = m2 * s2**2 + I2 + m2 * l1 * s2 * c2
    m22 = m2 * s2**2 + I2
    t1 = m11 * acc[:, 0] + m12 * acc[:, 1] - m2 * l1 * s2 * sn2 * (2 * v1 + v2) * v2
    t2 = m12 * acc[:, 0] + m22 * acc[:, 1] + m2 * l1 * s2 * sn2 * v1**2
    return np.stack([t1, t2], axis=1)


def _path_lengths(q):
    a0 = np.array(M.ARM26["path_a0"])
    a1 = np.array(M.ARM26["path_a1"])
    a2 = np.array(M.ARM26["path_a2"])
    d = q - np.array([np.pi / 2, 0.0])
    L = a0 + ((a1 + a2 * d[:, :, None]) * d[:, :, None]).sum(axis=1)
    r = a1 + 2 * a2 * d[:, :, None]
    return L, r


def test_zero_excitation_forces_are_the_passive_forces():
    """No gravity, zero excitation, activations at a negligible floor, the arm at rest: the
    torques that the compiled step applies are those of the passive elements alone. (At rest:
    the eccentric curve keeps a term ``0.001 vn F_max`` at zero activation, see
    plants.muscles.) (RigidTendonArm26's
    fibres stay below the passive element's slack length 1.4 l0 within its joint range,
    so the tendons are shortened by 3 cm here to stretch them.)"""
    lse = np.array(M.ARM26["tendon_slack_length"]) - 0.03
    arm = plants.MuscleArm(min_activation=1e-12, joint_limits=None, tendon_slack_length=lse)
    q = np.array([[0.0, 150 * DEG], [10 * DEG, 160 * DEG], [140 * DEG, 0.0],
                  [60 * DEG, 90 * DEG]])
    x = arm.rest_state(q)
    xn = arm.step(x, np.zeros((4, 6)))
    acc = (xn[:, 2:4] - x[:, 2:4]) / arm.dt        # Euler: exact accelerations
    L, r = _path_lengths(q)
    l0 = np.array(M.ARM26["optimal_fibre_length"])
    fmax = np.array(M.ARM26["max_isometric_force"])
    strain = np.maximum((L - lse) / l0 - 1.4, 0.0)
    passive = fmax * strain**2 / 0.26**2
    assert (passive > 1.0).sum() >= 3                # stretched muscles exist here
    tau = -np.einsum("bji,bi->bj", r, passive)
    np.testing.assert_allclose(_skeleton_torque(arm, x, acc), tau, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(arm.muscle_forces(x), passive, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("a", [0.1, 0.5, 1.0])
def test_isometric_force_at_optimal_length_is_activation_times_max(a):
    """Place every fibre at its optimal length at a posture (path_a0 chosen so) and hold
    the arm still: force = a F_max, and the compiled step's torques agree."""
    q = np.array([[45 * DEG, 80 * DEG]])
    L, r = _path_lengths(q)
    l0 = np.array(M.ARM26["optimal_fibre_length"])
    lse = np.array(M.ARM26["tendon_slack_length"])
    a0 = np.array(M.ARM26["path_a0"]) + (l0 + lse - L[0])
    arm = plants.MuscleArm(path_a0=a0)
    x = arm.rest_state(q)
    x[:, 4:] = a
    fmax = np.array(M.ARM26["max_isometric_force"])
    np.testing.assert_allclose(arm.muscle_lengths(x), l0[None], rtol=1e-12)
    np.testing.assert_allclose(arm.muscle_forces(x), a * fmax[None], rtol=1e-12)
    xn = arm.step(x, np.full((1, 6), a))
    acc = (xn[:, 2:4] - x[:, 2:4]) / arm.dt
    tau = -np.einsum("bji,bi->bj", r, a * fmax[None])
    np.testing.assert_allclose(_skeleton_torque(arm, x, acc), tau, rtol=1e-9)


@pytest.mark.parametrize("a", [0.01, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("ln", [0.7, 1.0, 1.3])
def test_force_velocity_is_monotone(a, ln):
    l0, lse = 0.1, 0.2
    v = np.linspace(-10 * l0, 10 * l0, 4001)       # -v_max .. v_max
    F = M.hill_force(a, lse + ln * l0, v, 100.0, l0, lse)
    assert np.all(np.diff(F) >= 0)
    assert np.all(np.diff(F)[F[1:] > 0] > 0)      # strictly where the floor does not act
    iso = M.hill_force(a, lse + ln * l0, 0.0, 100.0, l0, lse)
    passive = M.hill_force(a, lse + ln * l0, 0.0, 100.0, l0, lse, parts=True)[2]
    fl = max(1 - (ln - 1) ** 2 / 0.66**2, 0.01)
    assert iso - passive == pytest.approx(100.0 * a * fl, rel=1e-12)
    # eccentric asymptote 1.5 a f_l plus the slope term 0.001 vn (vn <= 1 here)
    assert F.max() < passive + 100.0 * (1.5 * a * fl + 0.001)
    assert F.max() > passive + 100.0 * 1.2 * a * fl
    assert F.min() >= 0.0


def test_activation_decays_with_the_deactivation_time_constant():
    """Zero excitation: da/dt = -(0.5 a + 1.5 a^2) / tau_deact, whose exact solution is
    a0 e^{-t/(2 tau)} / (1 + 3 a0 (1 - e^{-t/(2 tau)})); the RK4 arm (many substeps) follows
    it, and the default Euler arm follows solve_ivp of the Euler-free ODE to O(dt)."""
    tau = 0.05
    arm = plants.MuscleArm(min_activation=1e-12, integrator="rk4", substeps=10,
                           joint_limits=None)
    a0 = np.array([1.0, 0.8, 0.5, 0.3, 0.1, 0.02])
    x0 = arm.rest_state([[45 * DEG, 90 * DEG]])
    x0[:, 4:] = a0
    T = 50
    X = arm.rollout(x0, np.zeros((1, T, 6)))
    t = arm.dt * np.arange(T + 1)
    e = np.exp(-t[:, None] / (2 * tau))
    exact = a0 * e / (1 + 3 * a0 * (1 - e))
    np.testing.assert_allclose(X[0, :, 4:], exact, rtol=1e-6, atol=1e-9)
    # small activations decay with time constant 2 tau_deact
    assert X[0, -1, 5] / X[0, -2, 5] == pytest.approx(np.exp(-arm.dt / (2 * tau)), rel=2e-3)
    sol = solve_ivp(lambda _, a: -(0.5 * a + 1.5 * a**2) / tau, (0, t[-1]), a0, t_eval=t,
                    rtol=1e-10, atol=1e-12)
    euler = plants.MuscleArm(min_activation=1e-12, dt=1e-4, joint_limits=None)
    Xe = euler.rollout(x0, np.zeros((1, 100 * T, 6)))[0, ::100, 4:]
    np.testing.assert_allclose(Xe, sol.y.T, atol=1e-3)


def test_activation_rises_with_the_activation_time_constant():
    """Full excitation from a small activation: da/dt = (1 - a) / (tau_act (0.5 + 1.5 a)),
    integrated by solve_ivp."""
    arm = plants.MuscleArm(integrator="rk4", substeps=20, joint_limits=None)
    x0 = arm.rest_state([[45 * DEG, 90 * DEG]])
    T = 10
    X = arm.rollout(x0, np.ones((1, T, 6)))
    t = arm.dt * np.arange(T + 1)
    sol = solve_ivp(lambda _, a: (1 - a) / (0.015 * (0.5 + 1.5 * a)), (0, t[-1]),
                    [arm.min_activation], t_eval=t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(X[0, :, 4], sol.y[0], atol=1e-6)


def test_skeleton_power_balance():
    """Without viscosity or fields the skeleton's energy changes by the muscles' work:
    dE/dt = tau . qdot = -sum_i F_i L_dot_i (RK4, small steps, trapezoid rule)."""
    arm = plants.MuscleArm(integrator="rk4", substeps=4, dt=0.002, joint_limits=None)
    rng = np.random.default_rng(5)
    x0 = arm.rest_state([[50 * DEG, 70 * DEG], [70 * DEG, 100 * DEG]])
    U = np.repeat(rng.uniform(0, 0.3, (2, 25, 6)), 10, axis=1)
    X = arm.rollout(x0, U).reshape(-1, 10)
    E = arm.energy(X).reshape(2, -1)
    power = -(arm.muscle_forces(X) * arm.muscle_velocities(X)).sum(axis=1).reshape(2, -1)
    work = np.concatenate([np.zeros((2, 1)), np.cumsum(
        0.5 * (power[:, 1:] + power[:, :-1]) * arm.dt, axis=1)], axis=1)
    assert np.abs(E[:, -1] - E[:, 0]).max() > 0.05
    np.testing.assert_allclose(E - E[:, :1], work, atol=2e-3 * np.abs(E).max())


def test_muscle_arm_against_solve_ivp():
    """The RK4 rollout with small steps follows solve_ivp of the plant's NumPy
    right-hand side."""
    arm = plants.MuscleArm(integrator="rk4", substeps=20, joint_limits=None)
    x0 = arm.rest_state([[45 * DEG, 90 * DEG]])
    u = np.array([[0.3, 0.05, 0.2, 0.1, 0.4, 0.05]])
    T = 30
    X = arm.rollout(x0, np.repeat(u[:, None], T, axis=1))
    t = arm.dt * np.arange(T + 1)
    sol = solve_ivp(lambda _, z: arm.numpy_rhs(z[None], u)[0], (0, t[-1]), x0[0],
                    t_eval=t, rtol=1e-10, atol=1e-12, method="DOP853")
    np.testing.assert_allclose(X[0], sol.y.T, atol=2e-5)


# -- point mass -----------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"integrator": "rk4", "substeps": 2, "curl": 3.0}])
def test_point_mass_muscle_jacobians(kw):
    pm = plants.PointMass(joint_limits=None, **kw)
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.uniform(-0.8, 0.8, (10, 2)), rng.normal(size=(10, 2)),
                        rng.uniform(0.05, 0.9, (10, 4))], axis=1)
    u = rng.uniform(0, 1, (10, 4))
    u = np.where(np.abs(u - x[:, 4:]) < 1e-3, u + 0.01, u)
    _assert_jacobians(pm, x, u)


@pytest.mark.parametrize("kw", [{"integrator": "rk4"}, {"integrator": "semi_implicit",
                                                         "field": [[0.5, 1.0], [-1.0, 0.2]]}])
def test_point_mass_force_jacobians(kw):
    pm = plants.PointMass(muscles=False, joint_limits=None, **kw)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 4))
    u = rng.normal(size=(5, 2))
    _assert_jacobians(pm, x, u)


@pytest.mark.parametrize("muscles", [True, False])
def test_compiled_point_mass_agrees_with_numpy(muscles):
    pm = plants.PointMass(muscles=muscles, curl=2.0)
    rng = np.random.default_rng(8)
    B, T = 8, 80
    x0 = np.zeros((B, pm.state_dim))
    x0[:, :2] = rng.uniform(-0.5, 0.5, (B, 2))
    U = rng.uniform(-0.2, 1.2, (B, T, pm.control_dim)) * (1 if muscles else 20)
    X = pm.rollout(x0, U)
    x = x0
    for t in range(T):
        x = pm.numpy_step(x, U[:, t])
        np.testing.assert_allclose(X[:, t + 1], x, rtol=1e-10, atol=1e-10)
    assert np.abs(X[:, :, :2]).max() <= 1.0     # MotorNet's position bounds


def test_point_mass_force_is_exact_for_constant_force():
    """RK4 integrates p'' = F / m exactly: p(t) = p0 + v0 t + F t^2 / (2 m)."""
    pm = plants.PointMass(muscles=False, mass=2.0, integrator="rk4", joint_limits=None)
    x0 = np.array([[0.1, -0.2, 0.3, 0.1]])
    F = np.array([1.5, -0.5])
    X = pm.rollout(x0, np.tile(F, (1, 50, 1)))
    t = pm.dt * np.arange(51)[:, None]
    np.testing.assert_allclose(X[0, :, :2], x0[0, :2] + x0[0, 2:] * t + F / 4.0 * t**2,
                               atol=1e-12)
    np.testing.assert_allclose(pm.energy(X[0, -1:]), 0.5 * 2.0 * ((x0[0, 2:] + F / 2.0 * 0.5)
                                                                   ** 2).sum(), rtol=1e-12)


def test_point_mass_muscles_pull_towards_their_anchors():
    pm = plants.PointMass()
    x0 = np.zeros((4, 8))
    U = np.zeros((4, 20, 4))
    for i in range(4):
        U[i, :, i] = 1.0
    X = pm.rollout(x0, U)
    direction = X[:, -1, :2] / np.linalg.norm(X[:, -1, :2], axis=1, keepdims=True)
    np.testing.assert_allclose(direction, pm.anchors / np.linalg.norm(pm.anchors, axis=1,
                                                                       keepdims=True),
                               atol=1e-12)
    lengths = pm.muscle_lengths(X[:, -1])
    assert np.all(lengths[np.arange(4), np.arange(4)] < 2 * np.sqrt(2))


# -- protocols, specs, tasks, bad input ------------------------------------------------------
def test_protocols_spec_and_kernels():
    arm = plants.MuscleArm(curl=5.0)
    for proto in (plants.Dynamics, plants.MechanicalDynamics, plants.ArmDynamics,
                  plants.CompiledDynamics):
        assert isinstance(arm, proto)
    pm = plants.PointMass()
    for proto in (plants.Dynamics, plants.MechanicalDynamics, plants.CompiledDynamics):
        assert isinstance(pm, proto)
    assert arm.kernels[0].__name__ == "rollout_muscle_arm"
    assert pm.kernels[1].__name__ == "jacobians_point_mass"
    for p in (arm, pm, plants.PointMass(muscles=False, max_force=5.0)):
        q = plants.from_spec(plants.to_spec(p))
        assert type(q) is type(p)
        np.testing.assert_array_equal(q.kernel_params, p.kernel_params)
    task = Reach(arm)
    t2 = plants.from_spec(plants.to_spec(task))
    assert isinstance(t2.plant, plants.MuscleArm)


def test_arm_tasks_accept_the_muscle_arm():
    arm = plants.MuscleArm()
    for task in (Reach(arm), Hold(arm), Track(arm)):
        batch = task.sample(4, seed=0)
        assert batch.x0.shape == (4, 10)
        np.testing.assert_array_equal(batch.x0[:, 4:], arm.min_activation)
        U = np.full((4, task.horizon, 6), 0.05)
        X = task.plant.rollout(batch.x0, U)
        assert task.cost(X, U, batch.targets).shape == (4,)
        x = X[:, 3]
        J = task.outputs_jacobian(x)
        Jv = task.velocity_jacobian(x)
        assert J.shape == (4, 2, 10) and Jv.shape == (4, 2, 10)
        eps = 1e-7
        for j in range(10):
            e = np.zeros(10)
            e[j] = eps
            fd = (task.outputs(x + e) - task.outputs(x - e)) / (2 * eps)
            np.testing.assert_allclose(J[:, :, j], fd, atol=1e-7)
            fd = (task.velocity(x + e) - task.velocity(x - e)) / (2 * eps)
            np.testing.assert_allclose(Jv[:, :, j], fd, atol=1e-7)


def test_bad_input():
    arm = plants.MuscleArm()
    x = arm.rest_state([[0.5, 1.0]])
    u = np.full((1, 6), 0.2)
    u[0, 2] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        arm.step(x, u)
    with pytest.raises(ValueError, match="must be finite"):
        arm.rollout(x, u[:, None])
    with pytest.raises(ValueError, match="u must have shape"):
        arm.step(x, np.zeros((1, 5)))
    with pytest.raises(ValueError, match="max_isometric_force"):
        plants.MuscleArm(max_isometric_force=(1.0, 2.0, 3.0, 4.0, 5.0))
    with pytest.raises(ValueError, match="optimal_fibre_length must be > 0"):
        plants.MuscleArm(optimal_fibre_length=(0.1, 0.1, -0.1, 0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="tendon_slack_length must be >= 0"):
        plants.MuscleArm(tendon_slack_length=-0.1)
    with pytest.raises(ValueError, match="path_a1 must have shape"):
        plants.MuscleArm(path_a1=np.zeros((6, 2)))
    with pytest.raises(ValueError, match="tau_deactivation"):
        plants.MuscleArm(tau_deactivation=0.0)
    with pytest.raises(ValueError, match="min_activation must be > 0"):
        plants.MuscleArm(min_activation=0.0)
    with pytest.raises(ValueError, match="integrator"):
        plants.MuscleArm(integrator="semi_implicit")
    with pytest.raises(ValueError, match="anchors must lie outside"):
        plants.PointMass(anchors=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="max_force applies"):
        plants.PointMass(max_force=3.0)
    with pytest.raises(ValueError, match="no muscles"):
        plants.PointMass(muscles=False).muscle_lengths(np.zeros((1, 4)))
