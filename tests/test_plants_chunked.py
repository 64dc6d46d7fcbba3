"""The batch-major Jacobian pass (:mod:`plants._chunked`) against the per-sample pass and
against finite differences of the step."""

from __future__ import annotations

import numpy as np
import pytest

from plants import CartPole, ThreeLinkArm, TwoLinkArm
from plants._chunked import CHUNK, MIN_BATCH

# a full chunk and a short one
BATCH = CHUNK + 13
assert BATCH >= MIN_BATCH


def _per_sample(plant, x, u):
    """Jacobians one sample at a time: a batch of one takes the per-sample pass."""
    n, m = plant.state_dim, plant.control_dim
    _, jacobians = plant.kernels
    ws = np.empty(plant.workspace_size)
    A = np.empty((x.shape[0], n, n))
    B = np.empty((x.shape[0], n, m))
    for b in range(x.shape[0]):
        Ab, Bb = np.empty((1, n, n)), np.empty((1, n, m))
        assert jacobians(plant.kernel_params, x[b:b + 1], u[b:b + 1], Ab, Bb, ws) == -1
        A[b], B[b] = Ab[0], Bb[0]
    return A, B


def _inputs(plant, rng, scale_u=0.5):
    x = 0.5 * rng.standard_normal((BATCH, plant.state_dim))
    u = scale_u * rng.standard_normal((BATCH, plant.control_dim))
    return x, u


CASES = {
    "arm2": lambda **kw: TwoLinkArm(**kw),
    "arm2 clipped": lambda **kw: TwoLinkArm(max_torque=0.4, **kw),
    "arm3": lambda **kw: ThreeLinkArm(**kw),
    "arm3 clipped": lambda **kw: ThreeLinkArm(max_torque=0.4, **kw),
    "cartpole": lambda **kw: CartPole(**kw),
    "cartpole clipped": lambda **kw: CartPole(force_mag=0.3, **kw),
}


@pytest.mark.parametrize("integ", ["euler", "rk4"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_major_pass_equals_the_per_sample_pass(case, integ):
    plant = CASES[case](integrator=integ)
    rng = np.random.default_rng(3)
    x, u = _inputs(plant, rng)
    if "clipped" in case:  # some controls past their limits
        u *= 4.0
    A, B = plant.jacobians(x, u)
    Ar, Br = _per_sample(plant, x, u)
    scale = max(np.abs(Ar).max(), 1.0)
    np.testing.assert_allclose(A, Ar, rtol=1e-12, atol=1e-14 * scale)
    np.testing.assert_allclose(B, Br, rtol=1e-12, atol=1e-14 * scale)
    if "clipped" in case:
        assert (B == 0.0).all(axis=1).any()  # a clipped control's column is zero
        assert (B != 0.0).any()


@pytest.mark.parametrize("make", [
    lambda: TwoLinkArm(substeps=2), lambda: TwoLinkArm(max_speed=0.6),
    lambda: TwoLinkArm(gravity=True), lambda: ThreeLinkArm(curl=10.0),
    lambda: CartPole(integrator="rk4", substeps=3), lambda: CartPole(curl=2.0),
    lambda: TwoLinkArm(integrator="semi_implicit"), lambda: CartPole(joint_limits=(-1, 1)),
])
def test_settings_outside_the_pass_take_the_per_sample_pass(make):
    """Substeps, velocity clips, joint stops, semi-implicit Euler, gravity and fields: the
    batch gives bit for bit what its samples give one at a time."""
    plant = make()
    rng = np.random.default_rng(7)
    x, u = _inputs(plant, rng)
    x[:, plant.state_dim // 2:] *= 4.0
    A, B = plant.jacobians(x, u)
    Ar, Br = _per_sample(plant, x, u)
    np.testing.assert_array_equal(A, Ar)
    np.testing.assert_array_equal(B, Br)


@pytest.mark.parametrize("make", [TwoLinkArm, ThreeLinkArm, CartPole])
def test_batch_major_pass_matches_finite_differences(make):
    plant = make()
    rng = np.random.default_rng(4)
    x, u = _inputs(plant, rng)
    A, B = plant.jacobians(x, u)
    n, m = plant.state_dim, plant.control_dim
    eps = 1e-6
    for j in range(n + m):
        dx = np.zeros(n + m)
        dx[j] = eps
        up = plant.step(x + dx[:n], u + dx[n:])
        dn = plant.step(x - dx[:n], u - dx[n:])
        fd = (up - dn) / (2 * eps)
        an = A[:, :, j] if j < n else B[:, :, j - n]
        scale = max(np.abs(fd).max(), 1e-3)
        assert np.abs(an - fd).max() / scale <= 1e-6, (make.__name__, j)


@pytest.mark.parametrize("make", [TwoLinkArm, CartPole])
def test_angles_beyond_the_vectorised_sine_range(make):
    """Angles past 1e6 rad fall back to ``np.sin``/``np.cos`` in the vectorised stages."""
    plant = make()
    rng = np.random.default_rng(5)
    x, u = _inputs(plant, rng)
    angle = 1 if make is TwoLinkArm else 2
    x[::7, angle] += 3.0e7
    A, B = plant.jacobians(x, u)
    Ar, Br = _per_sample(plant, x, u)
    np.testing.assert_allclose(A, Ar, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(B, Br, rtol=1e-9, atol=1e-12)


def test_small_batches_take_the_per_sample_pass():
    """Below MIN_BATCH the per-sample pass runs: bit-for-bit what one sample gives."""
    plant = TwoLinkArm()
    rng = np.random.default_rng(6)
    x = 0.5 * rng.standard_normal((MIN_BATCH - 1, 4))
    u = 0.5 * rng.standard_normal((MIN_BATCH - 1, 2))
    A, B = plant.jacobians(x, u)
    Ar, Br = _per_sample(plant, x, u)
    np.testing.assert_array_equal(A, Ar)
    np.testing.assert_array_equal(B, Br)


def test_non_finite_jacobians_name_the_sample():
    plant = TwoLinkArm(dt=10.0)
    x = np.zeros((BATCH, 4))
    u = np.zeros((BATCH, 2))
    x[CHUNK + 5, 2:] = 1e200  # overflows in the stage derivatives
    with pytest.raises(ValueError, match=rf"sample {CHUNK + 5}"):
        plant.jacobians(x, u)
    x[CHUNK + 5, 2:] = 0.0
    x[40, 0] = np.nan
    with pytest.raises(ValueError, match=r"x\[40\] must be finite"):
        plant.jacobians(x, u)
