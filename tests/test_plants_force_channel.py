"""Force-channel trials (plants.tasks.ForceChannel) on the two-link and muscle arms."""

from __future__ import annotations

import numpy as np
import pytest
from plants_oracles import hand_force_from_dynamics

import plants
from plants.tasks import ForceChannel


def _torque_reach(arm, T):
    """Joint torques of a 0.4 s reach: a push then a brake."""
    U = np.zeros((1, T, arm.control_dim))
    U[0, : T // 2] = (1.0, 0.6)
    U[0, T // 2:] = (-1.0, -0.6)
    return U


def test_channel_clamps_a_reach_and_its_force_is_the_walls():
    arm = plants.TwoLinkArm(integrator="euler")
    q0 = np.array([[np.pi / 4, np.pi / 2]])
    x0 = np.concatenate([q0, np.zeros((1, 2))], axis=1)
    T = 40
    U = _torque_reach(arm, T)
    free = arm.rollout(x0, U)
    start = arm.hand_position(x0)[0]
    moved = arm.hand_position(free[:, -1])[0] - start
    # the channel 17 degrees off the free movement's direction
    rot = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    ch = ForceChannel(start, start + rot @ moved)
    carm = ch.plant(arm)
    assert carm.substeps == ch.substeps(arm) >= 3   # 10 ms / (50 / 12000 s) -> 3
    X = carm.rollout(x0, U)
    d_free = ch.lateral(arm, free)[0]
    d, dd, f = ch.lateral(carm, X)
    assert np.abs(d_free).max() > 0.01           # free, the hand leaves the line by > 1 cm
    assert np.abs(d).max() < 1e-3                # in the channel, by less than 1 mm
    assert np.abs(f).max() > 1.0                 # against a force of newtons
    along = (arm.hand_position(X[:, -1])[0] - start) @ ch.direction
    assert along > 0.5 * np.linalg.norm(moved)   # and still moves along the channel
    # the wall's force from the dynamics: -(k d + b d_dot) n, nothing along the channel
    xs = X[0, 1:]
    us = U[0]
    F = hand_force_from_dynamics(carm, arm, xs, us)
    np.testing.assert_allclose(F @ ch.normal, -f[0, 1:], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(F @ ch.direction, 0.0, atol=1e-6)


def test_channel_on_the_muscle_arm():
    arm = plants.MuscleArm()
    x0 = arm.rest_state([[np.pi / 4, np.pi / 2]])
    T = 40
    U = np.full((1, T, 6), 0.02)
    U[0, :12, [0, 3]] = 0.05     # pectoralis and lateral triceps, then their antagonists
    U[0, 12:24, [1, 2]] = 0.05   # (a reach of about 5 cm)
    free = arm.rollout(x0, U)
    start = arm.hand_position(x0)[0]
    moved = arm.hand_position(free[:, 20])[0] - start
    ch = ForceChannel(start, start + 0.5 * np.array([moved[1], -moved[0]]) + moved)  # 27 deg
    carm = ch.plant(arm)
    X = carm.rollout(x0, U)
    assert np.abs(ch.lateral(arm, free)[0]).max() > 0.02
    d, dd, f = ch.lateral(carm, X)
    assert np.abs(d).max() < 1.5e-3
    assert np.abs(f).max() > 3.0
    F = hand_force_from_dynamics(carm, arm, X[0, 1:], U[0])
    np.testing.assert_allclose(F @ ch.normal, -f[0, 1:], rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("integ", ["euler", "rk4"])
def test_channel_jacobians_match_finite_differences(integ):
    ch = ForceChannel((0.1, 0.45), (0.0, 0.55))
    arm = ch.plant(plants.MuscleArm(integrator=integ, joint_limits=None))
    rng = np.random.default_rng(4)
    x = np.concatenate([[0.8, 1.4, 0.6, -0.9], rng.uniform(0.1, 0.7, 6)])
    u = rng.uniform(0.1, 0.9, 6)
    A, B = arm.jacobians(x[None], u[None])
    eps = 1e-6
    E = np.eye(10)
    Af = np.stack([(arm.step((x + eps * e)[None], u[None])
                    - arm.step((x - eps * e)[None], u[None]))[0] for e in E], 1) / (2 * eps)
    Bf = np.stack([(arm.step(x[None], (u + eps * e)[None])
                    - arm.step(x[None], (u - eps * e)[None]))[0] for e in E[:6, :6]],
                  1) / (2 * eps)
    assert np.abs(A[0] - Af).max() <= 1e-6 * max(1.0, np.abs(Af).max())
    assert np.abs(B[0] - Bf).max() <= 1e-6 * max(1e-3, np.abs(Bf).max())


def test_field_force_is_the_curl_fields_push_across_the_channel():
    """A hand moving along the channel at speed s in the curl field K = [[0, c], [-c, 0]]
    is pushed to the right by c s; cancelling it takes c s to the left (+ normal)."""
    arm = plants.TwoLinkArm()
    ch = ForceChannel((0.0, 0.4), (0.06, 0.48))   # direction (0.6, 0.8)
    q = arm.inverse_kinematics(np.array([[0.03, 0.44]]))
    J = arm.hand_jacobian(np.concatenate([q, np.zeros((1, 2))], axis=1))[0]
    s = 0.4
    qd = np.linalg.solve(J, s * ch.direction)
    X = np.concatenate([q[0], qd])[None, None]
    c = 15.0
    f = ch.field_force([[0.0, c], [-c, 0.0]], arm, X)
    np.testing.assert_allclose(f, [[c * s]], rtol=1e-12)


def test_bad_channels_and_position_fields_are_named():
    with pytest.raises(ValueError, match="target must differ"):
        ForceChannel((0.1, 0.2), (0.1, 0.2))
    with pytest.raises(ValueError, match="stiffness"):
        ForceChannel((0.0, 0.0), (0.1, 0.0), stiffness=-1.0)
    with pytest.raises(ValueError, match="damping"):
        ForceChannel((0.0, 0.0), (0.1, 0.0), damping=0.0)
    with pytest.raises(ValueError, match="start"):
        ForceChannel((0.0, np.nan), (0.1, 0.0))
    with pytest.raises(ValueError, match="position_field"):
        plants.TwoLinkArm(position_field=[1.0, 2.0])
    with pytest.raises(ValueError, match="two links only"):
        plants.ThreeLinkArm(position_field=np.eye(2))
    with pytest.raises(TypeError, match="two-link arm"):
        ForceChannel((0.0, 0.0), (0.1, 0.0)).plant(plants.Pendulum())
