"""The muscle arm's batch-major passes (:mod:`plants._muscle_chunked`): steps, rollouts and
step Jacobians over chunks of samples, against the per-sample pass (a batch of one is below
:data:`plants._chunked.MIN_BATCH` and takes it), the plant's NumPy step and finite
differences.

The states are drawn so that every branch of the model is taken somewhere in a chunk: joints
past their stops and moving into them, activations outside ``[a_min, 1]`` and excitations
outside ``[0, 1]``, shortening and lengthening muscles, activations below and above the
Hill model's ``0.3`` switch.
"""

from __future__ import annotations

import numpy as np
import pytest
from plants_oracles import central_jacobian

import plants
from plants._chunked import CHUNK, MIN_BATCH

DEG = np.pi / 180
# the largest batch below the pass, the smallest in it, a full chunk and a short one, many
BATCHES = (MIN_BATCH - 1, MIN_BATCH, CHUNK + 1, 7 * CHUNK + 5)


def _states(arm, B, rng):
    x = np.zeros((B, arm.state_dim))
    x[:, 0] = rng.uniform(-10 * DEG, 145 * DEG, B)    # some past the stops [0, 135] deg
    x[:, 1] = rng.uniform(-10 * DEG, 165 * DEG, B)    # [0, 155] deg
    x[:, 2:4] = rng.normal(0.0, 3.0, (B, 2))
    x[:, 4:] = rng.uniform(-0.1, 1.1, (B, 6))         # some outside [a_min, 1]
    return x


def _per_sample_rollout(arm, x0, U, o0):
    rollout = arm.kernels[0]
    ws = np.empty(arm.workspace_size)
    X = np.empty((x0.shape[0], U.shape[1] + o0, arm.state_dim))
    for b in range(x0.shape[0]):
        Xb = np.empty((1,) + X.shape[1:])
        assert rollout(arm.kernel_params, x0[b:b + 1], U[b:b + 1], U[b:b + 1], False, Xb, o0,
                       ws) == -1
        X[b] = Xb[0]
    return X


def _per_sample_jacobians(arm, x, u):
    jacobians = arm.kernels[1]
    ws = np.empty(arm.workspace_size)
    A = np.empty((x.shape[0], arm.state_dim, arm.state_dim))
    B = np.empty((x.shape[0], arm.state_dim, arm.control_dim))
    for b in range(x.shape[0]):
        Ab, Bb = A[b:b + 1].copy(), B[b:b + 1].copy()
        assert jacobians(arm.kernel_params, x[b:b + 1], u[b:b + 1], Ab, Bb, ws) == -1
        A[b], B[b] = Ab[0], Bb[0]
    return A, B


@pytest.mark.parametrize("kw", [
    {},                                              # Euler, joint stops (the default)
    {"joint_limits": None},
    {"integrator": "rk4", "substeps": 3},
    {"substeps": 2, "min_activation": 0.05},
])
def test_rollouts_and_steps_equal_the_per_sample_pass(kw):
    arm = plants.MuscleArm(**kw)
    rng = np.random.default_rng(21)
    for B in BATCHES:
        x0 = _states(arm, B, rng)
        U = rng.uniform(-0.3, 1.3, (B, 6, 6))
        X = arm.rollout(x0, U)
        Xr = _per_sample_rollout(arm, x0, U, 1)
        if B < MIN_BATCH:
            np.testing.assert_array_equal(X, Xr)
        else:
            np.testing.assert_allclose(X, Xr, rtol=0, atol=1e-12 * np.abs(Xr).max())
        U1 = np.ascontiguousarray(U[:, 0])
        np.testing.assert_allclose(arm.step(x0, U1), _per_sample_rollout(
            arm, x0, U1[:, None], 0)[:, 0], rtol=0, atol=1e-12 * np.abs(Xr).max())
    if kw.get("joint_limits", 0) is not None:
        # the stops acted: joints held at their limits
        assert (X[:, 1:, 0] == 0.0).any() and (X[:, 1:, 1] == 0.0).any()
    assert (X[:, 1:, 4:] == 1.0).any() and (X[:, 1:, 4:] == arm.min_activation).any()


def test_large_batch_rollout_follows_the_numpy_step():
    """The batch-major rollout over many chunks against the plant's NumPy step (an
    independent implementation of the model), step by step."""
    arm = plants.MuscleArm()
    rng = np.random.default_rng(22)
    B = 5 * CHUNK + 3
    x0 = arm.rest_state(np.column_stack([rng.uniform(10, 120, B) * DEG,
                                         rng.uniform(20, 140, B) * DEG]))
    U = rng.uniform(-0.2, 1.2, (B, 40, 6))
    X = arm.rollout(x0, U)
    x = x0
    for t in range(U.shape[1]):
        x = arm.numpy_step(x, U[:, t])
        np.testing.assert_allclose(X[:, t + 1], x, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kw", [
    {},                                              # the batch-major Jacobian pass
    {"joint_limits": None},
    {"max_speed": 2.0},                              # velocity clip: per-sample pass
    {"integrator": "rk4"},
    {"substeps": 2},
])
def test_jacobians_equal_the_per_sample_pass(kw):
    arm = plants.MuscleArm(**kw)
    rng = np.random.default_rng(23)
    for B in BATCHES:
        x = _states(arm, B, rng)
        u = rng.uniform(-0.3, 1.3, (B, 6))
        A, Bm = arm.jacobians(x, u)
        Ar, Br = _per_sample_jacobians(arm, x, u)
        if B < MIN_BATCH:
            np.testing.assert_array_equal(A, Ar)
            np.testing.assert_array_equal(Bm, Br)
        else:
            np.testing.assert_allclose(A, Ar, rtol=0, atol=1e-12 * np.abs(Ar).max())
            np.testing.assert_allclose(Bm, Br, rtol=0, atol=1e-12 * np.abs(Br).max())
            # the same entries are zeroed by the stops, clamps and clips
            np.testing.assert_array_equal(A == 0.0, Ar == 0.0)
            np.testing.assert_array_equal(Bm == 0.0, Br == 0.0)
    if kw == {}:
        # rows the stops and clamps zeroed, columns the clip zeroed: all present
        assert (A[:, 0].sum(axis=1) == 0).any() and (A[:, 4:].sum(axis=2) == 0).any()
        assert (Bm[:, 4:].sum(axis=1) == 0).any()



def test_batch_major_jacobians_match_finite_differences():
    """Away from the model's switches (the stops, clamps, clip edges, the Hill model's
    concentric/eccentric and activation/deactivation switches), the batch-major Jacobians
    are the step's derivatives."""
    arm = plants.MuscleArm()
    rng = np.random.default_rng(24)
    B = 3 * CHUNK
    x = np.zeros((B, 10))
    x[:, 0] = rng.uniform(30 * DEG, 100 * DEG, B)
    x[:, 1] = rng.uniform(40 * DEG, 120 * DEG, B)
    x[:, 2:4] = rng.uniform(0.3, 1.5, (B, 2)) * rng.choice([-1, 1], (B, 2))
    x[:, 4:] = rng.uniform(0.05, 0.9, (B, 6))
    u = rng.uniform(0.0, 1.0, (B, 6))
    vel = arm.muscle_velocities(x)
    ok = (np.abs(u - x[:, 4:]) > 1e-3).all(axis=1) & (np.abs(vel) > 1e-3).all(axis=1)
    x, u = x[ok], u[ok]
    assert x.shape[0] >= MIN_BATCH
    A, Bm = arm.jacobians(x, u)
    Afd = central_jacobian(lambda y: arm.step(y, u), x)
    Bfd = central_jacobian(lambda v: arm.step(x, v), u)
    np.testing.assert_allclose(A, Afd, rtol=0, atol=2e-6 * max(1.0, np.abs(Afd).max()))
    np.testing.assert_allclose(Bm, Bfd, rtol=0, atol=2e-6 * max(1.0, np.abs(Bfd).max()))


def test_non_finite_inputs_and_results_give_the_per_sample_return_code():
    """The kernels' return codes: the first sample with a non-finite input (``b``) or a
    non-finite result (``-2 - b``), in a full chunk and in the short last one."""
    arm = plants.MuscleArm(joint_limits=None)
    rollout, jacobians = arm.kernels
    p, n, m = arm.kernel_params, arm.state_dim, arm.control_dim
    ws = np.empty(arm.workspace_size)
    rng = np.random.default_rng(25)
    B = 3 * CHUNK + 7
    for bad, code in ((40, 40), (B - 1, B - 1), (CHUNK + 5, -2 - (CHUNK + 5)),
                      (B - 2, -2 - (B - 2))):
        x = _states(arm, B, rng)
        u = rng.uniform(0.0, 1.0, (B, m))
        if code >= 0:
            x[bad, 2] = np.nan
        else:
            x[bad, 2:4] = 1e200   # Coriolis terms overflow
        X = np.empty((B, 1, n))
        assert rollout(p, x, u[:, None], u[:, None], False, X, 0, ws) == code
        A, Bm = np.empty((B, n, n)), np.empty((B, n, m))
        assert jacobians(p, x, u, A, Bm, ws) == code
