"""Nonlinearity derivatives against central finite differences of their activations."""

import numpy as np
import pytest

from hfcontrol import nonlinearities as nl

ELEMENTWISE = [nl.Tanh(), nl.Logistic(), nl.Linear(), nl.ReLU(max=2.0), nl.Gaussian(),
               nl.SoftLIF(), nl.SoftLIF(sigma=0.3, tau_rc=0.05, tau_ref=0.001, amp=0.5)]


def _away_from_kinks(x):
    # ReLU's derivative is undefined at 0 and at max; keep samples away from them
    return x[(np.abs(x) > 1e-3) & (np.abs(x - 2.0) > 1e-3)]


@pytest.mark.parametrize("nonlin", ELEMENTWISE, ids=repr)
def test_elementwise_derivative_matches_finite_differences(nonlin):
    x = _away_from_kinks(np.random.default_rng(0).uniform(-4, 4, 400))
    eps = 1e-6
    fd = (nonlin.activation(x + eps) - nonlin.activation(x - eps)) / (2 * eps)
    d = nonlin.d_activation(x, nonlin.activation(x))
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softlif_is_finite_and_monotone_for_large_inputs(dtype):
    lif = nl.SoftLIF()
    x = np.array([-1e4, -800, -50, -1, 0, 1, 50, 800, 1e4], dtype=dtype)
    a = lif.activation(x)
    d = lif.d_activation(x, a)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(d))
    assert a.dtype == dtype and d.dtype == dtype
    assert np.all(np.diff(a) >= 0)
    assert np.all(a >= 0) and np.all(d >= 0)
    # the saturated rate is amp / tau_ref
    assert a[-1] == pytest.approx(lif.amp / lif.tau_ref, rel=1e-3)
    # far below threshold the rate tends to zero like amp * sigma / (tau_rc * |x|)
    assert a[0] == pytest.approx(lif.amp * lif.sigma / (lif.tau_rc * 1e4), rel=1e-3)


def test_softmax_jacobian_matches_finite_differences():
    rng = np.random.default_rng(1)
    sm = nl.Softmax()
    x = rng.standard_normal((3, 5))
    J = sm.d_activation(x, sm.activation(x))
    eps = 1e-6
    for j in range(5):
        e = np.zeros(5)
        e[j] = eps
        fd = (sm.activation(x + e) - sm.activation(x - e)) / (2 * eps)
        np.testing.assert_allclose(J[:, :, j], fd, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(sm.activation(np.array([[1000.0, 0.0]])), [[1.0, 0.0]])


def test_continuous_filters_and_reports_state_derivatives():
    cont = nl.Continuous(nl.Tanh(), tau=4.0, dt=1.0)
    cont.reset(np.zeros((1, 2)))
    x = np.array([[1.0, -2.0]])
    a1 = cont.activation(x)
    np.testing.assert_allclose(cont.state, 0.25 * x)
    np.testing.assert_allclose(a1, np.tanh(0.25 * x))
    d = cont.d_activation(x, a1)
    assert d.shape == (1, 2, 3)
    np.testing.assert_allclose(d[..., 0], 0.25)
    np.testing.assert_allclose(d[..., 1], 0.75)
    np.testing.assert_allclose(d[..., 2], 1 - np.tanh(0.25 * x) ** 2)
    cont.activation(x)
    np.testing.assert_allclose(cont.state, 0.25 * x + 0.75 * 0.25 * x)


def test_names_and_bad_parameters():
    assert isinstance(nl.from_spec("Tanh"), nl.Tanh)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nl.from_spec("tanhh")
    with pytest.raises(TypeError, match="Nonlinearity"):
        nl.from_spec(3)
    with pytest.raises(ValueError, match="tau"):
        nl.Continuous("Tanh", tau=0.5, dt=1.0)
    with pytest.raises(ValueError, match="element-wise"):
        nl.Continuous(nl.Softmax())
    with pytest.raises(ValueError, match="sigma"):
        nl.SoftLIF(sigma=0)
    with pytest.raises(ValueError, match="max"):
        nl.ReLU(max=-1)


@pytest.mark.parametrize("nonlin", ELEMENTWISE + [nl.Softmax()], ids=repr)
def test_float32_stays_float32(nonlin):
    x = np.linspace(-40, 40, 24, dtype=np.float32).reshape(4, 6)
    a = nonlin.activation(x)
    assert a.dtype == np.float32
    assert nonlin.d_activation(x, a).dtype == np.float32
