"""Task outputs and velocities with their exact Jacobians, per-output weights, PendulumV1 and
StateTarget: against central finite differences and hand-written formulas."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from plants_oracles import central_jacobian, relative_error

from plants import CartPole, LinearPlant, Pendulum, PlanarArm, ThreeLinkArm, TwoLinkArm
from plants.tasks import (
    Balance,
    CostWeights,
    Hold,
    PendulumV1,
    Reach,
    StateTarget,
    SwingUp,
    Track,
)

TASKS = {
    "reach2": lambda: Reach(TwoLinkArm()),
    "reach3": lambda: Reach(ThreeLinkArm()),
    "hold2": lambda: Hold(TwoLinkArm()),
    "track3": lambda: Track(ThreeLinkArm()),
    "swingup": lambda: SwingUp(Pendulum()),
    "pendulum_v1": lambda: PendulumV1(Pendulum()),
    "pendulum_v1_wrapped": lambda: PendulumV1(Pendulum(), angle="wrapped"),
    "pendulum_v1_wrapped_energy": lambda: PendulumV1(Pendulum(), angle="wrapped",
                                                     energy_weight=2.0),
    "balance": lambda: Balance(CartPole()),
    "state_linear": lambda: StateTarget.demo(),
    "state_cartpole": lambda: StateTarget(CartPole(), np.zeros(4), horizon=10),
    "state_arm3": lambda: StateTarget(ThreeLinkArm(), np.zeros(6), horizon=10),
}


def _states(n, B=7, seed=0):
    """Random states with angles over several turns and sizeable velocities."""
    return np.random.default_rng(seed).uniform(-4.0, 4.0, size=(B, n))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_output_and_velocity_jacobians_match_central_differences(name):
    task = TASKS[name]()
    n = task.plant.state_dim
    x = _states(n)
    y = task.outputs(x)
    assert y.shape == (7, task.output_dim) and len(task.output_names) == task.output_dim
    Jy = task.outputs_jacobian(x)
    assert Jy.shape == (7, task.output_dim, n)
    assert relative_error(Jy, central_jacobian(task.outputs, x)) < 1e-7
    v = task.velocity(x)
    assert v.shape == (7, task.velocity_dim) and len(task.velocity_names) == task.velocity_dim
    Jv = task.velocity_jacobian(x)
    assert Jv.shape == (7, task.velocity_dim, n)
    assert relative_error(Jv, central_jacobian(task.velocity, x)) < 1e-7
    # observe is outputs over [B, T + 1, n]
    X = _states(n, B=12, seed=1).reshape(3, 4, n)
    np.testing.assert_array_equal(task.observe(X), task.outputs(X.reshape(12, n)).reshape(3, 4, -1))


@pytest.mark.parametrize("N", [1, 2, 3, 4, 6])
def test_hand_velocity_jacobian_of_any_planar_chain(N):
    rng = np.random.default_rng(N)
    lengths = rng.uniform(0.1, 0.4, N)
    arm = PlanarArm(masses=np.ones(N), lengths=lengths, com=lengths / 2,
                    inertias=lengths**2 / 3, viscosity=np.zeros((N, N)))
    x = _states(2 * N, B=5, seed=N)
    D = arm.hand_velocity_jacobian(x)
    assert D.shape == (5, 2, 2 * N)
    assert relative_error(D, central_jacobian(arm.hand_velocity, x)) < 1e-7
    np.testing.assert_array_equal(D[:, :, N:], arm.hand_jacobian(x))
    # the velocity is J(q) qdot written out: sum_a l_a phidot_a (-sin phi_a, cos phi_a)
    phi, phid = np.cumsum(x[:, :N], axis=1), np.cumsum(x[:, N:], axis=1)
    v = np.stack([-(lengths * phid * np.sin(phi)).sum(1), (lengths * phid * np.cos(phi)).sum(1)], 1)
    np.testing.assert_allclose(arm.hand_velocity(x), v, rtol=1e-13, atol=1e-15)


def test_pendulum_and_cartpole_outputs_are_the_documented_maps():
    x = _states(2)
    np.testing.assert_array_equal(SwingUp(Pendulum()).outputs(x),
                                  np.stack([np.cos(x[:, 0]), np.sin(x[:, 0]), x[:, 1]], axis=1))
    np.testing.assert_array_equal(SwingUp(Pendulum()).velocity(x), x[:, 1:])
    z = _states(4)
    np.testing.assert_array_equal(Balance(CartPole()).outputs(z), z)
    np.testing.assert_array_equal(Balance(CartPole()).velocity(z), z[:, [1, 3]])
    arm = TwoLinkArm()
    a = _states(4)
    np.testing.assert_array_equal(Reach(arm).outputs(a), arm.hand_position(a))
    np.testing.assert_array_equal(Reach(arm).velocity(a), arm.hand_velocity(a))


def test_state_gradient_from_the_jacobians_matches_the_cost():
    """The gradient of cost w.r.t. one state, built as the module docstring says, is the
    finite-difference gradient of ``cost`` (states treated as free variables)."""
    arm = TwoLinkArm()
    task = Reach(arm, hold_steps=5, weights=CostWeights(1.0, 1e-4, 0.3, 0.7, (2.0, 0.5)))
    b = task.sample(3, seed=0)
    T = task.horizon
    X = _states(4, B=3 * (T + 1), seed=2).reshape(3, T + 1, 4) * 0.3 + b.x0[:, None]
    U = np.random.default_rng(3).normal(size=(3, T, 2))
    c = task.step_weights(b.targets)
    W = task.output_weights
    for t in (T - 2, T):  # a tracked step and the final one (tracked, final error, velocity)
        x = X[:, t]
        r = task.outputs(x) - b.targets[:, t - 1]
        g = 2 * c[:, t - 1, None] * np.einsum("bkn,bk->bn", task.outputs_jacobian(x), W * r)
        if t == T:
            g += 2 * 0.3 * np.einsum("bqn,bq->bn", task.velocity_jacobian(x), task.velocity(x))

        def cost_of(xt, t=t):
            Xc = np.repeat(X, 1, axis=0)
            Xc[:, t] = xt
            return task.cost(Xc, U, b.targets)[:, None]
        fd = central_jacobian(cost_of, x)[:, 0]
        assert relative_error(g, fd) < 1e-7


# -- per-output weights ----------------------------------------------------------------------
def test_output_weights_scale_each_output_dimension():
    pend = Pendulum()
    rng = np.random.default_rng(4)
    X = rng.uniform(-3, 3, size=(4, 21, 2))
    U = rng.uniform(-2, 2, size=(4, 20, 1))
    w = np.array([0.5, 2.0, 0.0])
    for fe, tr in ((1.0, 0.0), (0.0, 1.0), (0.4, 2.5)):
        task = SwingUp(pend, horizon=20, weights=CostWeights(fe, 0.0, 0.0, tr, tuple(w)))
        b = task.sample(4, seed=1)
        Y = task.observe(X)[:, 1:]
        E = (w * (Y - np.nan_to_num(b.targets)) ** 2).sum(axis=2)  # [B, T]
        held = slice(10, 20)  # the last half is targeted
        expected = fe * E[:, 19] + tr * E[:, held].mean(axis=1)
        np.testing.assert_allclose(task.cost(X, U, b.targets), expected, rtol=1e-13)
    # default: all ones, the same as explicit ones
    a = SwingUp(pend, horizon=20)
    ones = SwingUp(pend, horizon=20, weights=CostWeights(1.0, 1e-3, 0.1, 1.0, (1, 1, 1)))
    b = a.sample(4, seed=1)
    np.testing.assert_array_equal(a.cost(X, U, b.targets), ones.cost(X, U, b.targets))
    np.testing.assert_array_equal(a.output_weights, np.ones(3))
    assert ones.weights.output_weights == (1.0, 1.0, 1.0)


def test_output_weights_are_checked():
    with pytest.raises(ValueError, match=r"weights.output_weights must have 2 entries, one per "
                                         r"output of Reach \(hand_x, hand_y\), got 3"):
        Reach(TwoLinkArm(), weights=CostWeights(output_weights=(1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match="weights.output_weights must have 4 entries"):
        Balance(CartPole(), weights=CostWeights(output_weights=(1.0,)))
    with pytest.raises(ValueError, match="non-negative"):
        CostWeights(output_weights=(1.0, -0.1))
    with pytest.raises(ValueError, match="weights.output_weights must have shape"):
        CostWeights(output_weights=[[1.0]])
    with pytest.raises(TypeError, match="weights.output_weights must be a real numeric"):
        CostWeights(output_weights=("a", "b"))


def test_step_weights_are_the_coefficients_of_the_step_errors():
    task = Reach(TwoLinkArm(), hold_steps=4, weights=CostWeights(2.0, 0.0, 0.0, 3.0))
    b = task.sample(2, seed=0)
    c = task.step_weights(b.targets)
    T = task.horizon
    expected = np.zeros((2, T))
    expected[:, T - 4:] = 3.0 / 4
    expected[:, T - 1] += 2.0
    np.testing.assert_array_equal(c, expected)
    none = np.full((1, T, 2), np.nan)
    np.testing.assert_array_equal(task.step_weights(none), 0.0)


# -- PendulumV1 ------------------------------------------------------------------------------
def test_pendulum_v1_cost_is_gymnasiums_per_step_cost_averaged():
    pend = Pendulum()
    task = PendulumV1(pend)
    assert task.horizon == 200
    w = task.weights
    assert (w.final_error, w.final_velocity, w.tracking) == (0.0, 0.0, 1.0)
    assert w.output_weights == (1.0, 1.0, 0.1)
    assert w.effort == pytest.approx(0.001 / (200 * 0.05), rel=1e-15)
    b = task.sample(16, seed=3)
    np.testing.assert_array_equal(b.targets, np.broadcast_to([1.0, 0.0, 0.0], (16, 200, 3)))
    U = np.random.default_rng(5).uniform(-2, 2, size=(16, 200, 1))
    X = pend.rollout(b.x0, U)
    th, thd = X[:, 1:, 0], X[:, 1:, 1]  # states after each step
    per_step = (2 - 2 * np.cos(th)) + 0.1 * thd**2 + 0.001 * U[..., 0] ** 2
    np.testing.assert_allclose(task.cost(X, U, b.targets), per_step.mean(axis=1), rtol=1e-12)
    # another horizon and dt keep the same per-step ratio
    short = PendulumV1(Pendulum(dt=0.02), horizon=50)
    b2 = short.sample(3, seed=1)
    U2 = np.random.default_rng(6).uniform(-2, 2, size=(3, 50, 1))
    X2 = short.plant.rollout(b2.x0, U2)
    per2 = (2 - 2 * np.cos(X2[:, 1:, 0])) + 0.1 * X2[:, 1:, 1] ** 2 + 0.001 * U2[..., 0] ** 2
    np.testing.assert_allclose(short.cost(X2, U2, b2.targets), per2.mean(axis=1), rtol=1e-12)


def test_pendulum_v1_angle_residuals_match_the_wrapped_angle_near_upright():
    th = np.linspace(-0.3, 0.3, 61) + 2 * np.pi * 3  # several turns away: the wrap is implicit
    wrapped = ((th + np.pi) % (2 * np.pi)) - np.pi
    y = PendulumV1(Pendulum()).outputs(np.stack([th, np.zeros_like(th)], axis=1))
    sq = (1 - y[:, 0]) ** 2 + y[:, 1] ** 2
    np.testing.assert_allclose(sq, 2 - 2 * np.cos(th), atol=1e-14)
    assert np.abs(sq - wrapped**2).max() <= (0.3**4) / 12 * 1.01


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_pendulum_v1_initial_states_are_gymnasiums_reset(seed):
    env = gymnasium.make("Pendulum-v1")
    env.reset(seed=seed)
    x0 = PendulumV1(Pendulum()).sample(1, seed=seed).x0[0]
    np.testing.assert_array_equal(x0, env.unwrapped.state)
    big = PendulumV1(Pendulum()).sample(5000, seed=seed).x0
    assert np.abs(big[:, 0]).max() <= np.pi and np.abs(big[:, 1]).max() <= 1.0
    assert big[:, 0].min() < -3.0 and big[:, 0].max() > 3.0


def test_pendulum_v1_rejects_other_plants():
    with pytest.raises(ValueError, match="plant must have the pendulum's layout"):
        PendulumV1(CartPole())
    with pytest.raises(TypeError, match="plant must be a Pendulum or follow"):
        PendulumV1(object())
    with pytest.raises(ValueError, match="horizon must be"):
        PendulumV1(Pendulum(), horizon=0)


def test_pendulum_v1_energy_shaping_output():
    plant = Pendulum()
    task = PendulumV1(plant, energy_weight=0.5)
    x = np.random.default_rng(0).normal(size=(6, 2))
    assert task.output_names[-1] == "energy"
    np.testing.assert_allclose(task.outputs(x)[:, 3],
                               plant.energy(x) / (plant.m * plant.g * plant.l / 2))
    np.testing.assert_allclose(task.outputs_jacobian(x), central_jacobian(task.outputs, x),
                               rtol=1e-7, atol=1e-9)
    upright = np.zeros((1, 2))
    assert task.outputs(upright)[0, 3] == 1.0  # no energy residual at the upright rest
    batch = task.sample(2, seed=0)
    np.testing.assert_array_equal(batch.targets[0, 0], [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(task.output_weights, [1.0, 1.0, 0.1, 0.5])
    with pytest.raises(ValueError, match="energy_weight"):
        PendulumV1(plant, energy_weight=-1.0)


def _gym_rewards(x0, U):
    """Gymnasium's own Pendulum-v1 from state ``x0`` under the torques ``U[T]``: the rewards of
    the T steps, then those of one more step with no torque from the last state and from
    ``x0`` (each state's charge alone)."""
    env = gymnasium.make("Pendulum-v1").unwrapped
    env.reset(seed=0)

    def step(x, u):
        env.state = np.array(x, dtype=float)
        reward = env.step(np.array([u]))[1]
        return float(reward), np.array(env.state, dtype=float)

    rewards, x = [], np.array(x0, dtype=float)
    for u in U:
        r, x = step(x, u)
        rewards.append(r)
    return np.array(rewards), step(x, 0.0)[0], step(x0, 0.0)[0], x


@pytest.mark.parametrize("seed", [0, 1])
def test_pendulum_v1_wrapped_cost_is_gymnasiums_return(seed):
    """T cost = -(return) - c(x_0) + c(x_T): Gymnasium charges the state before each step,
    the task the state after it; everything on the right from Gymnasium's own env."""
    rng = np.random.default_rng(seed)
    T = 120
    task = PendulumV1(Pendulum(), horizon=T, angle="wrapped")
    assert task.output_names == ("theta_wrapped", "theta_dot")
    b = task.sample(4, seed=seed)
    np.testing.assert_array_equal(b.targets, 0.0)
    # spinning over the top both ways (a torque along the motion), then random torques
    X0 = b.x0.copy()
    X0[0] = (np.pi - 1e-3, 0.0)  # start near the wrap point
    X0[1], X0[2] = (0.5, 7.9), (-2.0, -7.9)
    U = rng.uniform(-2, 2, (4, T, 1))
    U[1, :60], U[2, :60] = 2.0, -2.0
    X = task.plant.rollout(X0, U)
    assert X[1, :, 0].max() > 4 * np.pi and X[2, :, 0].min() < -4 * np.pi  # wraps both ways
    cost = task.cost(X, U, b.targets)
    for i in range(4):
        rewards, last, first, x_end = _gym_rewards(X0[i], U[i, :, 0])
        np.testing.assert_allclose(x_end, X[i, -1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(T * cost[i], -rewards.sum() - (-first) + (-last),
                                   rtol=1e-12)


def test_pendulum_v1_wrapped_square_is_continuous_at_the_wrap_with_a_concave_kink():
    task = PendulumV1(Pendulum(), angle="wrapped")
    th = np.pi + np.array([-1e-9, 0.0, 1e-9]) + 4 * np.pi
    y = task.outputs(np.stack([th, np.zeros(3)], axis=1))[:, 0]
    assert y[0] == pytest.approx(np.pi, abs=1e-8) and y[2] == pytest.approx(-np.pi, abs=1e-8)
    np.testing.assert_allclose(y**2, np.pi**2, rtol=1e-8)  # the square does not jump
    # theta_n^2 = min_k (theta - 2 pi k)^2, and the outputs' Jacobian is the identity
    th = np.random.default_rng(3).uniform(-20, 20, 500)
    k = np.arange(-5, 6)
    best = ((th[:, None] - 2 * np.pi * k) ** 2).min(axis=1)
    y = task.outputs(np.stack([th, th], axis=1))
    np.testing.assert_allclose(y[:, 0] ** 2, best, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(task.outputs_jacobian(np.stack([th, th], axis=1)),
                                  np.broadcast_to(np.eye(2), (500, 2, 2)))


def test_pendulum_v1_angle_choice_is_checked_and_kept_in_the_spec():
    import plants

    with pytest.raises(ValueError, match="angle must be one of"):
        PendulumV1(Pendulum(), angle="theta")
    task = PendulumV1(Pendulum(), angle="wrapped", energy_weight=1.5, horizon=30)
    back = plants.from_spec(plants.to_spec(task))
    assert (back.angle, back.energy_weight, back.horizon) == ("wrapped", 1.5, 30)
    assert back.output_names == ("theta_wrapped", "theta_dot", "energy")
    np.testing.assert_array_equal(back.sample(1, seed=0).targets[0, 0], [0.0, 0.0, 1.0])


def test_pendulum_v1_energy_shaping_on_gymnasiums_pendulum():
    import plants

    gym_plant = plants.GymDynamics(gymnasium.make("Pendulum-v1"))
    x = np.random.default_rng(1).uniform(-4, 4, (5, 2))
    for angle in ("cosine", "wrapped"):
        ours = PendulumV1(Pendulum(), energy_weight=1.0, angle=angle)
        theirs = PendulumV1(gym_plant, energy_weight=1.0, angle=angle)
        np.testing.assert_array_equal(theirs.outputs(x), ours.outputs(x))
        np.testing.assert_array_equal(theirs.outputs_jacobian(x), ours.outputs_jacobian(x))
    car = plants.GymDynamics(gymnasium.make("MountainCarContinuous-v0"))  # the layout fits
    with pytest.raises(TypeError, match="energy_weight needs the pendulum's mass"):
        PendulumV1(car, energy_weight=1.0)


# -- StateTarget ------------------------------------------------------------------------------
def test_state_target_drives_the_demo():
    task = StateTarget.demo()
    assert isinstance(task.plant, LinearPlant) and task.horizon == 15
    b = task.sample(32, seed=0)
    # the reference package's draw of the demo's initial states
    np.testing.assert_array_equal(b.x0, np.random.default_rng(0).uniform(-0.5, 0.5, (32, 2)))
    assert b.targets.shape == (32, 15, 2)
    assert np.isnan(b.targets[:, :-1]).all()
    np.testing.assert_array_equal(b.targets[:, -1], np.tile([1.0, 0.0], (32, 1)))
    U = np.random.default_rng(1).normal(size=(32, 15, 2))
    X = task.plant.rollout(b.x0, U)
    expected = (X[:, 15, 0] - 1.0) ** 2 + X[:, 15, 1] ** 2  # final error only, no effort
    np.testing.assert_allclose(task.cost(X, U, b.targets), expected, rtol=1e-14)
    assert task.velocity_dim == 0 and task.velocity(b.x0).shape == (32, 0)


def test_state_target_options():
    cp = CartPole()
    target = np.array([0.5, 0.0, 0.0, 0.0])
    t = StateTarget(cp, target, horizon=6, steps=[2, 6, 4, 4], spread=[0.1, 0.0, 0.2, 0.0],
                    centre=[1.0, 0.0, 0.0, 0.0],
                    weights=CostWeights(0.0, 0.0, 2.0, 1.0, (1.0, 0.0, 3.0, 0.0)))
    assert t.steps == (2, 4, 6) and t.velocity_index == (1, 3)
    b = t.sample(50, seed=2)
    assert np.all(np.abs(b.x0[:, 0] - 1.0) <= 0.1) and np.all(b.x0[:, [1, 3]] == 0.0)
    assert np.all(np.abs(b.x0[:, 2]) <= 0.2)
    targeted = ~np.isnan(b.targets).any(axis=2)
    assert targeted[0].tolist() == [False, True, False, True, False, True]
    X = np.random.default_rng(3).normal(size=(50, 7, 4))
    U = np.zeros((50, 6, 1))
    w = np.array([1.0, 0.0, 3.0, 0.0])
    E = np.stack([(w * (X[:, s] - target) ** 2).sum(1) for s in (2, 4, 6)], axis=1)
    expected = E.mean(axis=1) + 2.0 * (X[:, 6, 1] ** 2 + X[:, 6, 3] ** 2)
    np.testing.assert_allclose(t.cost(X, U, b.targets), expected, rtol=1e-13)
    # given initial states: one for all, or one per sample
    one = StateTarget(cp, target, horizon=3, x0=[0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(one.sample(3, seed=0).x0, np.tile([0.1, 0.2, 0.3, 0.4], (3, 1)))
    per = StateTarget(cp, target, horizon=3, x0=np.arange(8.0).reshape(2, 4))
    np.testing.assert_array_equal(per.sample(2, seed=0).x0, np.arange(8.0).reshape(2, 4))
    with pytest.raises(ValueError, match="batch must be 2 for the given x0, got 3"):
        per.sample(3, seed=0)


def test_state_target_bad_input():
    lin = LinearPlant.demo()
    with pytest.raises(ValueError, match=r"target must have shape \(2,\)"):
        StateTarget(lin, [1.0, 0.0, 0.0], horizon=5)
    with pytest.raises(ValueError, match="target contains NaN"):
        StateTarget(lin, [1.0, np.nan], horizon=5)
    with pytest.raises(ValueError, match=r"steps entries must be in 1 \.\. 5, got 0"):
        StateTarget(lin, [1.0, 0.0], horizon=5, steps=[0, 5])
    with pytest.raises(ValueError, match=r"steps entries must be in 1 \.\. 5, got 6"):
        StateTarget(lin, [1.0, 0.0], horizon=5, steps=[6])
    with pytest.raises(ValueError, match="steps must name at least one step"):
        StateTarget(lin, [1.0, 0.0], horizon=5, steps=[])
    with pytest.raises(TypeError, match="steps must be a sequence of integers"):
        StateTarget(lin, [1.0, 0.0], horizon=5, steps=[2.5])
    with pytest.raises(ValueError, match="weights.final_velocity needs velocity coordinates"):
        StateTarget(lin, [1.0, 0.0], horizon=5, weights=CostWeights(1.0, 0.0, 1.0, 0.0))
    StateTarget(lin, [1.0, 0.0], horizon=5, velocity_index=[1],
                weights=CostWeights(1.0, 0.0, 1.0, 0.0))
    with pytest.raises(ValueError, match=r"velocity_index entries must be in 0 \.\. 1, got 2"):
        StateTarget(lin, [1.0, 0.0], horizon=5, velocity_index=[2])
    with pytest.raises(ValueError, match="spread must be finite and >= 0"):
        StateTarget(lin, [1.0, 0.0], horizon=5, spread=-1.0)
    with pytest.raises(ValueError, match=r"x0 must have shape \(2,\)"):
        StateTarget(lin, [1.0, 0.0], horizon=5, x0=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="plant must satisfy the plants.Dynamics protocol"):
        StateTarget(object(), [1.0], horizon=5)
    with pytest.raises(ValueError, match="horizon must be"):
        StateTarget(lin, [1.0, 0.0], horizon=0)
    task = StateTarget(lin, [1.0, 0.0], horizon=5)
    with pytest.raises(ValueError, match=r"x must have shape \(any, 2\)"):
        task.outputs_jacobian(np.zeros((3, 3)))
