"""The batch-major step and rollout pass (:func:`plants._chunked.rollout_chunks`) against
the per-sample pass (:func:`plants._integrate.rollout_rows`).

The per-sample reference is the same kernel called one sample at a time: a batch of one is
below :data:`plants._chunked.MIN_BATCH` and takes the per-sample pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from plants import CartPole, ThreeLinkArm, TwoLinkArm
from plants._chunked import CHUNK, MIN_BATCH

# one sample; the largest batch below the pass; the smallest in it; a full chunk and one
# sample (a short last chunk); many chunks
BATCHES = (1, MIN_BATCH - 1, MIN_BATCH, CHUNK + 1, 1024)
assert MIN_BATCH <= CHUNK

MAKERS = {"arm2": TwoLinkArm, "arm3": ThreeLinkArm, "cartpole": CartPole,
          # gravity, a constant push and a curl field: the two-link arm's other stage function
          "arm2_forces": lambda **kw: TwoLinkArm(gravity=True, constant_force=(0.5, -2.0),
                                                 curl=3.0, **kw)}
# control limits tight enough that the controls below are often clipped
LIMITS = {"arm2": dict(max_torque=0.4), "arm3": dict(max_torque=0.4),
          "cartpole": dict(force_mag=0.3), "arm2_forces": dict(max_torque=0.4)}


def _run(plant, x0, U, *, o0, W=None):
    """The plant's rollout kernel on the whole batch: ``(X, return code)``."""
    rollout = plant.kernels[0]
    B, T = U.shape[:2]
    X = np.full((B, T + o0, plant.state_dim), -7.0)
    code = rollout(plant.kernel_params, x0, U, U if W is None else W, W is not None, X, o0,
                   np.empty(plant.workspace_size))
    return X, code


def _per_sample(plant, x0, U, *, o0, W=None):
    """The same, one sample at a time: ``(X, the per-sample pass's return code)``, the
    code being that of the first sample whose call fails (as the pass scans the batch)."""
    B = U.shape[0]
    X = np.empty((B, U.shape[1] + o0, plant.state_dim))
    code = -1
    for b in range(B):
        Xb, cb = _run(plant, x0[b:b + 1], U[b:b + 1], o0=o0,
                      W=None if W is None else W[b:b + 1])
        X[b] = Xb[0]
        if code == -1 and cb != -1:
            code = b if cb >= 0 else -2 - b
    return X, code


def _inputs(plant, rng, B, T):
    x0 = 0.5 * rng.standard_normal((B, plant.state_dim))
    U = 2.0 * rng.standard_normal((B, T, plant.control_dim))
    return x0, U


def _assert_close(X, Xr):
    """Agreement to rounding: 1e-13 of the largest entry (at least 1)."""
    err = np.abs(X - Xr).max()
    assert err <= 1e-13 * max(np.abs(Xr).max(), 1.0), err


@pytest.mark.parametrize("substeps", [1, 3])
@pytest.mark.parametrize("integ", ["euler", "semi_implicit", "rk4"])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_steps_and_rollouts_equal_the_per_sample_pass(name, integ, substeps):
    """Steps (``T = 1``, ``o0 = 0``, the closed loop's call) and rollouts (``o0 = 1``) with
    clipped controls, for batches below the pass (bit for bit) and in it (to rounding)."""
    plant = MAKERS[name](integrator=integ, substeps=substeps, **LIMITS[name])
    rng = np.random.default_rng(11)
    hi = plant.control_high
    for B in BATCHES:
        for T, o0 in ((1, 0), (4, 1)):
            x0, U = _inputs(plant, rng, B, T)
            X, code = _run(plant, x0, U, o0=o0)
            Xr, code_r = _per_sample(plant, x0, U, o0=o0)
            assert code == code_r == -1
            if o0 == 1:
                np.testing.assert_array_equal(X[:, 0], x0)
            if B < MIN_BATCH:
                np.testing.assert_array_equal(X, Xr)
            else:
                _assert_close(X, Xr)
            if B == 1024:
                assert (np.abs(U) > hi).any() and (np.abs(U) < hi).any()
                # the batch went through the other pass: the last bits differ somewhere
                assert not np.array_equal(X, Xr)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_process_noise_is_added_as_in_the_per_sample_pass(name):
    plant = MAKERS[name]()
    rng = np.random.default_rng(12)
    for B in (CHUNK + 1, 1024):
        x0, U = _inputs(plant, rng, B, 3)
        W = 0.01 * rng.standard_normal((B, 3, plant.state_dim))
        X, code = _run(plant, x0, U, o0=1, W=W)
        Xr, code_r = _per_sample(plant, x0, U, o0=1, W=W)
        assert code == code_r == -1
        _assert_close(X, Xr)
        Xq, _ = _run(plant, x0, U, o0=1)
        assert np.abs(X - Xq).max() > 1e-3  # the noise was added


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_the_plants_step_and_rollout_take_the_pass(name):
    """``plant.step`` and ``plant.rollout`` (argument checks, then the kernel) agree with
    the per-sample pass too."""
    plant = MAKERS[name]()
    rng = np.random.default_rng(13)
    x0, U = _inputs(plant, rng, 100, 5)
    _assert_close(plant.rollout(x0, U), _per_sample(plant, x0, U, o0=1)[0])
    U1 = np.ascontiguousarray(U[:, :1])
    _assert_close(plant.step(x0, U1[:, 0]), _per_sample(plant, x0, U1, o0=0)[0][:, 0])


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_non_finite_inputs_give_the_per_sample_return_code(name):
    plant = MAKERS[name]()
    rng = np.random.default_rng(14)
    B = 3 * CHUNK + 7
    for bad_x, bad_u in ((40, None), (None, 37), (50, 37), (B - 1, None)):
        x0, U = _inputs(plant, rng, B, 3)
        if bad_x is not None:
            x0[bad_x, 1] = np.nan
        if bad_u is not None:
            U[bad_u, 0, 0] = np.inf
        first = min(b for b in (bad_x, bad_u) if b is not None)
        for T, o0 in ((1, 0), (3, 1)):
            Ut = np.ascontiguousarray(U[:, :T])
            assert _run(plant, x0, Ut, o0=o0)[1] == first
            assert _per_sample(plant, x0, Ut, o0=o0)[1] == first


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_non_finite_results_give_the_per_sample_return_code(name):
    """Velocities that overflow in the right-hand side, in a full chunk and in the short
    last one: ``-2 - b`` for the first such sample ``b``."""
    plant = MAKERS[name](dt=10.0)
    n = plant.state_dim
    for B, bad in ((3 * CHUNK + 7, (CHUNK + 5, 2 * CHUNK + 1)), (CHUNK + 1, (CHUNK,))):
        x0 = np.zeros((B, n))
        U = np.zeros((B, 2, plant.control_dim))
        for b in bad:
            x0[b, n // 2:] = 1e200
        for T, o0 in ((1, 0), (2, 1)):
            Ut = np.ascontiguousarray(U[:, :T])
            assert _run(plant, x0, Ut, o0=o0)[1] == _per_sample(plant, x0, Ut, o0=o0)[1] == -2 - bad[0]


@pytest.mark.parametrize("make", [
    lambda: TwoLinkArm(gravity=True, max_speed=0.6), lambda: TwoLinkArm(joint_limits=(-0.3, 0.3)),
    lambda: ThreeLinkArm(curl=10.0), lambda: ThreeLinkArm(max_speed=0.6),
    lambda: CartPole(curl=2.0), lambda: CartPole(max_speed=0.6),
    lambda: CartPole(integrator="semi_implicit", joint_limits=(-0.3, 0.3)),
])
def test_settings_outside_the_pass_take_the_per_sample_pass(make):
    """Fields on the three-link arm and the cart-pole, velocity clips and joint stops: a
    batch gives bit for bit what its samples give one at a time."""
    plant = make()
    rng = np.random.default_rng(15)
    for T, o0 in ((1, 0), (4, 1)):
        x0, U = _inputs(plant, rng, 2 * CHUNK + 3, T)
        X, code = _run(plant, x0, U, o0=o0)
        Xr, code_r = _per_sample(plant, x0, U, o0=o0)
        assert code == code_r == -1
        np.testing.assert_array_equal(X, Xr)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_angles_beyond_the_vectorised_sine_range(name):
    """Angles past 1e6 rad fall back to ``np.sin``/``np.cos`` in the vectorised stages."""
    plant = MAKERS[name]()
    rng = np.random.default_rng(16)
    x0, U = _inputs(plant, rng, CHUNK + 13, 3)
    x0[::7, 2 if name == "cartpole" else 1] += 3.0e7
    X, code = _run(plant, x0, U, o0=1)
    Xr, code_r = _per_sample(plant, x0, U, o0=1)
    assert code == code_r == -1
    np.testing.assert_allclose(X, Xr, rtol=1e-12, atol=1e-12)
