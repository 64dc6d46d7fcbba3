"""The per-minibatch preparation of the compiled path (CompiledBatch) gives the NumPy
reference path's numbers: structural damping's per-layer scalar curvature, a user loss's
curvature re-evaluated every call, per-unit ``Continuous`` coefficients; and the public
thread control."""

from __future__ import annotations

import types

import numpy as np
import pytest

import hfcontrol as hf
from hfcontrol import loss_funcs as lf
from hfcontrol import nl

TOL = 1e-10


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-30)


def _pair(make):
    """The same network twice: compiled, and forced onto the NumPy path."""
    compiled, reference = make(), make()
    reference.W[:] = compiled.W
    reference.backend = "numpy"
    assert compiled.backend == "numba"
    return compiled, reference


def _rnn(layers, loss=None, truncation=None):
    return lambda: hf.RNNet([2, 6, 3], layers=layers(), loss_type=loss() if loss else None,
                            dtype=np.float64, truncation=truncation, rng=0)


def _data(rng, batch=5, steps=7):
    return rng.standard_normal((batch, steps, 2)), rng.standard_normal((batch, steps, 3))


@pytest.mark.parametrize("truncation", [None, (3, 5)])
def test_structural_damping_scalar_curvature_follows_the_optimiser(truncation):
    opt = types.SimpleNamespace(damping=2.0)
    sd = lf.StructuralDamping(0.5, optimizer=opt)
    sparse = lf.SparseL2(0.1, layers=[1, 2])

    def make():
        return hf.RNNet([2, 6, 3], layers=[nl.Linear(), nl.Tanh(), nl.Logistic()],
                        loss_type=[lf.SquaredError(), sparse, sd], dtype=np.float64,
                        truncation=truncation, rng=0)

    net, ref = _pair(make)
    # both nets share the loss objects (and so the optimiser), as a training loop would
    ref.loss = net.loss
    rng = np.random.default_rng(1)
    x, y = _data(rng)
    net.cache_minibatch(x, y)
    ref.cache_minibatch(x, y)
    v = rng.standard_normal(net.n_params)
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL
    with lf.without_structural_damping(net.loss):
        assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL
    opt.damping = 0.3  # the optimiser's damping changes between two products
    assert _rel(net.calc_G(v, damping=0.7), ref.calc_G(v, damping=0.7)) <= TOL
    sd.layers = [1, 2]  # its layers change too
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL
    with lf.without_structural_damping(net.loss):
        undamped = net.calc_G(v)
        assert _rel(undamped, ref.calc_G(v)) <= TOL
    damped = net.calc_G(v)
    assert np.max(np.abs(damped - undamped)) > 1e-3 * np.max(np.abs(undamped))
    assert _rel(damped - undamped, ref.calc_G(v) - undamped) <= 1e-8


def test_structural_damping_alone_on_a_layer_without_other_curvature():
    sd = lf.StructuralDamping(1.5, layers=[1])
    net, ref = _pair(_rnn(lambda: [nl.Linear(), nl.Tanh(), nl.Linear()],
                          lambda: [lf.SquaredError(), sd]))
    ref.loss = net.loss
    rng = np.random.default_rng(2)
    x, y = _data(rng)
    net.cache_minibatch(x, y)
    ref.cache_minibatch(x, y)
    v = rng.standard_normal(net.n_params)
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL


class _Moving(lf.LossFunction):
    """A user loss whose curvature follows a setting changed between calls."""

    def __init__(self):
        self.k = 1.0

    @lf.output_loss
    def loss(self, output, targets):
        return 0.5 * self.k * (output - targets) ** 4

    @lf.output_loss
    def d_loss(self, output, targets):
        return 2 * self.k * (output - targets) ** 3

    @lf.output_loss
    def d2_loss(self, output, targets):
        return 6 * self.k * (output - targets) ** 2


class _DoubledSquaredError(lf.SquaredError):
    """Overrides d2_loss without declaring its curvature: re-evaluated, not static."""

    def __init__(self):
        self.factor = 1.0

    def d2_loss(self, activities, targets):
        return [None if d is None else d * self.factor for d in super().d2_loss(activities, targets)]


def test_user_loss_curvature_is_evaluated_every_call():
    assert _Moving.curvature == "dynamic" and _DoubledSquaredError.curvature == "dynamic"
    assert lf.SquaredError.curvature == "static"
    moving, doubled = _Moving(), _DoubledSquaredError()
    net, ref = _pair(_rnn(lambda: [nl.Linear(), nl.Tanh(), nl.Tanh()],
                          lambda: [moving, doubled, lf.StructuralDamping(0.2)]))
    ref.loss = net.loss
    rng = np.random.default_rng(3)
    x, y = _data(rng)
    net.cache_minibatch(x, y)
    ref.cache_minibatch(x, y)
    v = rng.standard_normal(net.n_params)
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL
    moving.k = 3.0
    doubled.factor = 5.0  # not seen by any settings check: re-evaluated anyway
    first = net.calc_G(v)
    assert _rel(first, ref.calc_G(v)) <= TOL
    assert _rel(first, net.calc_G(v)) == 0.0


def test_replaced_loss_is_prepared_again():
    net, ref = _pair(_rnn(lambda: [nl.Linear(), nl.Tanh(), nl.Linear()]))
    rng = np.random.default_rng(4)
    x, y = _data(rng)
    net.cache_minibatch(x, y)
    ref.cache_minibatch(x, y)
    v = rng.standard_normal(net.n_params)
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL
    net.loss = ref.loss = lf.LossSet([lf.SquaredError(), lf.SparseL2(0.5)])
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL
    net.loss.set.append(lf.SparseL2(2.0, layers=[1]))  # a member added in place
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL


def _continuous_layers():
    return [nl.Linear(), nl.Continuous(nl.Tanh(), tau=4.0, dt=1.0),
            nl.Continuous(nl.Logistic(), tau=2.0, dt=1.0)]


@pytest.mark.parametrize("truncation", [None, (3, 4)])
def test_per_unit_continuous_coefficients(truncation):
    net, ref = _pair(_rnn(_continuous_layers, truncation=truncation))
    coeffs = [np.linspace(0.1, 0.9, 6), np.array([1.0, 0.5, 0.25])]
    for n in (net, ref):
        n.layers[1].coeff = coeffs[0].copy()
        n.layers[2].coeff = coeffs[1].copy()
    rng = np.random.default_rng(5)
    x, y = _data(rng)
    init_state = [None, rng.standard_normal((5, 6)), rng.standard_normal((5, 3))]
    for a, b in zip(net.forward(x, init_state=init_state), ref.forward(x, init_state=init_state),
                    strict=True):
        assert _rel(a, b) <= TOL
    net.cache_minibatch(x, y, init_state=init_state)
    ref.cache_minibatch(x, y, init_state=init_state)
    assert _rel(net.calc_grad(), ref.calc_grad()) <= TOL
    v = rng.standard_normal(net.n_params)
    assert _rel(net.calc_G(v), ref.calc_G(v)) <= TOL
    # the per-unit coefficients matter: one scalar for all units gives other numbers
    net.layers[1].coeff = 0.5
    net.cache_minibatch(x, y, init_state=init_state)
    assert _rel(net.calc_grad(), ref.calc_grad()) > 1e-6


def test_per_unit_coefficients_of_the_wrong_length():
    net = _rnn(_continuous_layers)()
    net.layers[2].coeff = np.full(5, 0.5)
    with pytest.raises(ValueError, match=r"layer 2 .*3 units.*shape \(5,\)"):
        net.forward(np.zeros((2, 3, 2)))


def test_public_thread_control():
    assert "set_num_threads" in hf.__all__ and "get_num_threads" in hf.__all__
    old = hf.get_num_threads()
    try:
        assert hf.set_num_threads(1)["kernels"] == 1
        assert hf.get_num_threads() == 1
        net = hf.RNNet([1, 100, 1], layers=[nl.Linear(), nl.Logistic(), nl.Linear()], rng=0)
        x = np.zeros((64, 50, 1), np.float32)
        net.cache_minibatch(x, x)
        assert len(net._cc.runner.parts) == 1
        with pytest.raises(ValueError, match="positive integer"):
            hf.set_num_threads(0)
    finally:
        hf.set_num_threads(old)
    assert hf.get_num_threads() == old
