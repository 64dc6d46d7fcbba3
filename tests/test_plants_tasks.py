"""Tasks: initial states, targets, horizons and costs."""

from __future__ import annotations

import numpy as np
import pytest

from plants import CartPole, Pendulum, ThreeLinkArm, TwoLinkArm
from plants.tasks import Balance, CostWeights, Hold, Reach, SwingUp, TaskBatch, Track


def test_centre_out_reach_has_eight_targets_10cm_from_start():
    arm = TwoLinkArm()
    task = Reach(arm)
    b = task.sample(16, seed=0)
    assert isinstance(b, TaskBatch) and b.x0.shape == (16, 4)
    assert b.targets.shape == (16, task.horizon, 2) and b.horizon == task.horizon
    start = arm.hand_position(b.x0)
    goal = b.targets[:, -1]
    np.testing.assert_allclose(np.linalg.norm(goal - start, axis=1), 0.10, atol=1e-12)
    ang = np.degrees(np.arctan2(*(goal - start)[:8, ::-1].T)) % 360
    np.testing.assert_allclose(np.sort(ang), np.arange(0, 360, 45), atol=1e-9)
    assert np.isnan(b.targets[:, :-1]).all()  # only the final step is targeted
    np.testing.assert_array_equal(b.x0[:, 2:], 0.0)


@pytest.mark.parametrize("cls", [TwoLinkArm, ThreeLinkArm])
def test_random_reach_targets_are_reachable_and_seeded(cls):
    task = Reach(cls(), targets="random")
    a = task.sample(32, seed=1)
    b = task.sample(32, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a.targets, b.targets)
    goal = a.targets[:, -1]
    if cls is TwoLinkArm:
        q = task.plant.inverse_kinematics(goal)  # raises if unreachable
        assert q.shape == (32, 2)
    assert np.linalg.norm(goal, axis=1).max() <= task.plant.lengths.sum()


def test_reach_cost_terms():
    arm = TwoLinkArm()
    task = Reach(arm, weights=CostWeights(final_error=1.0, effort=0.0, final_velocity=0.0))
    b = task.sample(8, seed=0)
    U = np.zeros((8, task.horizon, 2))
    X = arm.rollout(b.x0, U)  # never moves
    J = task.cost(X, U, b.targets)
    np.testing.assert_allclose(J, 0.10**2, rtol=1e-10)
    task2 = Reach(arm, weights=CostWeights(final_error=0.0, effort=2.0))
    U2 = np.ones((8, task.horizon, 2))
    J2 = task2.cost(arm.rollout(b.x0, U2), U2, b.targets)
    np.testing.assert_allclose(J2, 2.0 * arm.dt * 2 * task.horizon)
    with pytest.raises(ValueError, match="targets must have shape"):
        task.cost(X, U, b.targets[:, :-1])


def test_hold_applies_the_perturbing_force():
    arm = TwoLinkArm()
    task = Hold(arm, force=(0.0, 5.0))
    assert task.plant is not arm
    assert np.array_equal(task.plant.parameters["masses"], arm.parameters["masses"])
    b = task.sample(3, seed=0)
    U = np.zeros((3, task.horizon, 2))
    X = task.plant.rollout(b.x0, U)
    drift = task.observe(X)[:, -1] - b.targets[:, -1]
    assert np.all(drift[:, 1] > 0.01)  # pushed along +y without control
    assert np.all(task.cost(X, U, b.targets) > 0)


def test_track_default_circle_and_custom_trajectory():
    arm = TwoLinkArm()
    task = Track(arm)
    b = task.sample(2, seed=0)
    np.testing.assert_allclose(arm.hand_position(b.x0), task.trajectory[0, :1].repeat(2, 0),
                               atol=1e-12)
    assert not np.isnan(b.targets).any()
    traj = np.stack([np.linspace(0.2, 0.3, 11), np.full(11, 0.3)], axis=1)
    t2 = Track(arm, traj)
    assert t2.horizon == 10
    np.testing.assert_allclose(t2.sample(1, seed=0).targets[0], traj[1:])


def test_swingup_and_balance():
    task = SwingUp(Pendulum())
    b = task.sample(4, seed=0)
    assert np.all(np.abs(b.x0[:, 0] - np.pi) < 0.5) and np.all(b.x0[:, 1] == 0)
    assert np.isnan(b.targets[:, : task.horizon // 2]).all()
    np.testing.assert_array_equal(b.targets[:, -1], np.tile([1.0, 0.0, 0.0], (4, 1)))
    X = np.zeros((4, task.horizon + 1, 2))  # upright and still: zero error cost
    U = np.zeros((4, task.horizon, 1))
    np.testing.assert_allclose(task.cost(X, U, b.targets), 0.0, atol=1e-15)

    bal = Balance(CartPole())
    bb = bal.sample(5, seed=2)
    assert np.abs(bb.x0).max() <= 0.05 and bb.targets.shape == (5, 500, 4)
    with pytest.raises(TypeError, match="plant must be a CartPole"):
        Balance(Pendulum())
    with pytest.raises(ValueError, match="horizon must be"):
        Balance(CartPole(), horizon=0)


@pytest.mark.parametrize("cls", [TwoLinkArm, ThreeLinkArm])
def test_centre_out_targets_outside_the_workspace_are_rejected(cls):
    arm = cls()
    reach = arm.lengths.sum()  # fully stretched, computed here from the link lengths
    with pytest.raises(ValueError, match=r"distance=2\.0 m puts centre-out target 0"):
        Reach(arm, targets="centre_out", distance=2.0)
    # one target, at start + (d, 0): the distance d_edge where it meets full extension
    # solves |start + (d, 0)| = reach; 1 mm further fails and 1 mm less passes
    start = arm.hand_position(Reach(arm).sample(1, seed=0).x0)[0]
    d_edge = -start[0] + np.sqrt(reach**2 - start[1] ** 2)
    with pytest.raises(ValueError, match="outside the arm's workspace"):
        Reach(arm, distance=d_edge + 1e-3, n_targets=1)
    task = Reach(arm, distance=d_edge - 1e-3, n_targets=1)
    goal = task.sample(1, seed=0).targets[:, -1]
    assert np.linalg.norm(goal, axis=1).max() <= reach
    if cls is TwoLinkArm:
        task.plant.inverse_kinematics(goal)  # every target has a posture
    # the random mode never uses distance
    Reach(arm, targets="random", distance=2.0)


def test_two_link_folded_workspace_hole():
    """A target closer to the shoulder than |l1 - l2| cannot be reached either."""
    arm = TwoLinkArm(lengths=(0.30, 0.10), com=(0.11, 0.05), inertias=(0.025, 0.01))
    posture = arm.inverse_kinematics(np.array([[0.25, 0.0]]))[0]
    with pytest.raises(ValueError, match=r"distances 0\.2 to 0\.4 m"):
        Reach(arm, posture=posture, distance=0.06)  # target (0.19, 0) is inside the hole
    Reach(arm, posture=posture, distance=0.04)


def test_task_array_inputs_are_checked():
    arm = TwoLinkArm()
    task = Reach(arm)
    b = task.sample(2, seed=0)
    X = arm.rollout(b.x0, np.zeros((2, task.horizon, 2)))
    U = np.zeros((2, task.horizon, 2))
    with pytest.raises(TypeError, match="targets must be a real numeric array"):
        task.cost(X, U, np.full(b.targets.shape, "a"))
    with pytest.raises(ValueError, match="X must have shape"):
        task.observe(X[:, :, :3])
    with pytest.raises(TypeError, match="trajectory must be"):
        Track(arm, [["a", "b"], ["c", "d"]])
    with pytest.raises(TypeError, match="trajectory must be"):
        Track(arm, [[0.3, 0.3], [0.3]])  # ragged


def test_reach_disc_targets_fill_the_disc_around_the_start():
    task = Reach(TwoLinkArm(), targets="disc", distance=0.12)
    goals = task.sample(4000, seed=0).targets[:, -1]
    d = goals - task.start
    r = np.linalg.norm(d, axis=1)
    assert r.max() <= 0.12
    # uniform by area: a quarter of the targets within half the radius, every direction
    assert abs(np.mean(r < 0.06) - 0.25) < 0.03
    quadrant = np.bincount((np.arctan2(d[:, 1], d[:, 0]) // (np.pi / 2)).astype(int) + 2)
    assert quadrant.min() > 900
    with pytest.raises(ValueError, match="distance=0.5 m puts a disc target"):
        Reach(TwoLinkArm(), targets="disc", distance=0.5)
