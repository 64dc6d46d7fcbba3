"""The compiled path's cached network description (``kernels.plan_for``) follows changes
made after construction: layer parameters, replaced layers, truncation, backend."""

from __future__ import annotations

import numpy as np
import pytest

import hfcontrol as hf
from hfcontrol import kernels, nl
from hfcontrol.kernels import activations, plan

TOL = 1e-10


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-30)


def _net(layers, truncation=None):
    return hf.RNNet([2, 6, 3], layers=layers, dtype=np.float64, truncation=truncation,
                    rng=np.random.default_rng(0))


def _data(rng, steps=6):
    return rng.standard_normal((4, steps, 2)), rng.standard_normal((4, steps, 3))


def _all(net, x, y, v):
    """forward, error(W), gradient and G v on the current backend."""
    net.cache_minibatch(x, y)
    W2 = net.W * 0.9
    return ([a.copy() for a in net.forward(x)], net.error(W2), net.calc_grad(), net.calc_G(v))


def _check_both(net, x, y, v):
    assert net.backend == "numba"
    compiled = _all(net, x, y, v)
    net.backend = "numpy"
    reference = _all(net, x, y, v)
    net.backend = "auto"
    for c, r in zip(compiled[0], reference[0], strict=True):
        assert _rel(c, r) <= TOL
    for c, r in zip(compiled[1:], reference[1:], strict=True):
        assert _rel(c, r) <= TOL


def test_plan_is_cached_and_reused():
    net = _net([nl.Linear(), nl.Tanh(), nl.Linear()])
    assert kernels.plan_for(net) is kernels.plan_for(net)


@pytest.mark.parametrize("change", ["relu_max", "continuous_coeff", "softlif", "replace"])
def test_layer_changes_after_use(change):
    rng = np.random.default_rng(1)
    layers = [nl.Linear(), nl.ReLU(max=5.0),
              nl.Continuous(nl.SoftLIF(sigma=1.0, tau_rc=0.02, tau_ref=0.002, amp=0.05),
                            tau=3.0, dt=1.0)]
    net = hf.RNNet([2, 6, 3], layers=layers, dtype=np.float64, rng=np.random.default_rng(0))
    x, y = _data(rng)
    v = rng.standard_normal(net.n_params)
    _check_both(net, x, y, v)
    old = kernels.plan_for(net)
    if change == "relu_max":
        net.layers[1].max = 0.3
    elif change == "continuous_coeff":
        net.layers[2].coeff = 0.9
    elif change == "softlif":
        net.layers[2].base.sigma = 0.5
    else:
        net.layers[1] = nl.Tanh()
    assert kernels.plan_for(net) is not old
    _check_both(net, x, y, v)


def test_truncation_changed_after_cache():
    rng = np.random.default_rng(2)
    net = _net([nl.Linear(), nl.Tanh(), nl.Linear()])
    x, y = _data(rng, steps=8)
    v = rng.standard_normal(net.n_params)
    net.cache_minibatch(x, y)
    full = net.calc_grad(), net.calc_G(v)
    for trunc in [(2, 3), (8, 8), None]:
        net.truncation = trunc
        compiled = net.calc_grad(), net.calc_G(v)   # same cached minibatch
        net.backend = "numpy"
        reference = net.calc_grad(), net.calc_G(v)
        net.backend = "auto"
        for c, r in zip(compiled, reference, strict=True):
            assert _rel(c, r) <= TOL
    for c, r in zip(compiled, full, strict=True):   # back to no truncation
        assert _rel(c, r) <= TOL
    _check_both(net, x, y, v)


def test_backend_switch_and_user_layer():
    class Custom(nl.Tanh):  # a subclass: NumPy path
        pass

    rng = np.random.default_rng(3)
    net = _net([nl.Linear(), nl.Tanh(), nl.Linear()])
    x, y = _data(rng)
    v = rng.standard_normal(net.n_params)
    _check_both(net, x, y, v)
    net.layers[1] = Custom()
    assert net.backend == "numpy"
    with pytest.raises(ValueError, match="backend='numba'"):
        net.backend = "numba"
    net.layers[1] = nl.Tanh()
    assert net.backend == "numba"
    _check_both(net, x, y, v)


def test_forward_float32_tanh_close_to_float64():
    """float32 tanh is a rational approximation: a few float32 ulp from exact."""
    rng = np.random.default_rng(4)
    net64 = _net([nl.Linear(), nl.Tanh(), nl.Tanh()])
    net32 = hf.RNNet([2, 6, 3], layers=[nl.Linear(), nl.Tanh(), nl.Tanh()], dtype=np.float32)
    net32.W[:] = net64.W
    x = rng.standard_normal((4, 6, 2)) * 4
    a64 = net64.forward(x)[-1]
    a32 = net32.forward(x.astype(np.float32))[-1]
    assert _rel(a32, a64) <= 2e-6
    z = np.linspace(-12, 12, 20001, dtype=np.float32).reshape(1, -1)
    a = np.empty_like(z)
    activations._elementwise(plan.TANH, np.zeros(5), z, a, a, False)
    assert np.max(np.abs(a - np.tanh(z.astype(np.float64)))
                  / np.maximum(np.abs(np.tanh(z.astype(np.float64))), 1e-30)) <= 5e-7


def test_float32_logistic_both_tails():
    """float32 logistic (``expf``): a few float32 ulp from exact, lower tail included."""
    z = np.linspace(-80, 30, 20001, dtype=np.float32).reshape(1, -1)
    a = np.empty_like(z)
    activations._elementwise(plan.LOGISTIC, np.zeros(5), z, a, a, False)
    exact = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    assert np.max(np.abs(a - exact) / exact) <= 5e-7
