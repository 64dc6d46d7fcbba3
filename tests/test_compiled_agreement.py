"""The compiled (numba) path agrees with the NumPy reference path and with finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import hfcontrol as hf
from hfcontrol import loss_funcs as lf
from hfcontrol import nl

TOL = {np.float64: 1e-10, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b))) / max(float(np.max(np.abs(b))),
                                                                      1e-30)


def _nonlins():
    return {
        "Linear": nl.Linear(),
        "Tanh": nl.Tanh(),
        "Logistic": nl.Logistic(),
        "ReLU": nl.ReLU(max=2.0),
        "Gaussian": nl.Gaussian(),
        "Softmax": nl.Softmax(),
        "SoftLIF": nl.SoftLIF(sigma=1.0, tau_rc=0.02, tau_ref=0.002, amp=0.05),
        "SoftLIF-smooth": nl.SoftLIF(sigma=2.0, tau_rc=0.05, tau_ref=0.001, amp=0.5),
        "Continuous": nl.Continuous(nl.Tanh(), tau=3.0, dt=1.0),
    }


def _data(net, batch, steps, rng, nan=False, positive_targets=False):
    dt = net.dtype
    if steps is None:
        x = rng.standard_normal((batch, net.shape[0]))
        y = rng.standard_normal((batch, net.shape[-1]))
    else:
        x = rng.standard_normal((batch, steps, net.shape[0]))
        y = rng.standard_normal((batch, steps, net.shape[-1]))
    if positive_targets:
        y = np.abs(y)
        y /= y.sum(axis=-1, keepdims=True)
    if nan:
        y[rng.random(y.shape) < 0.3] = np.nan
    return x.astype(dt), y.astype(dt)


def _compare(net, x, y, rng, init=None):
    """Cache on both paths from the same weights; return the worst relative difference."""
    kwargs = {} if init is None else init
    assert net.backend == "numba"
    v = rng.standard_normal(net.n_params).astype(net.dtype)
    net.cache_minibatch(x, y, **kwargs)
    out_c = ([a.copy() for a in net.activations], net.calc_grad(), net.calc_G(v, damping=0.5),
             net.error(), [a.copy() for a in net.forward(x, **kwargs)])
    net.backend = "numpy"
    net.cache_minibatch(x, y, **kwargs)
    out_n = (net.activations, net.calc_grad(), net.calc_G(v, damping=0.5), net.error(),
             net.forward(x, **kwargs))
    net.backend = "auto"
    errs = [max(_rel(a, b) for a, b in zip(out_c[0], out_n[0], strict=True)),
            _rel(out_c[1], out_n[1]), _rel(out_c[2], out_n[2]),
            abs(out_c[3] - out_n[3]) / max(abs(out_n[3]), 1e-30),
            max(_rel(a, b) for a, b in zip(out_c[4], out_n[4], strict=True))]
    return max(errs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(_nonlins()))
def test_rnn_each_nonlinearity(name, dtype):
    rng = np.random.default_rng(1)
    layer = _nonlins()[name]
    out_layer = nl.Softmax() if name == "Softmax" else nl.Linear()
    loss = lf.CrossEntropy() if name == "Softmax" else lf.SquaredError()
    net = hf.RNNet([3, 5, 4], layers=[nl.Linear(), layer, out_layer], loss_type=loss, rng=2,
                   dtype=dtype, W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian", "coeff": 0.8})
    x, y = _data(net, 6, 9, rng, nan=True, positive_targets=name == "Softmax")
    assert _compare(net, x, y, rng) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(_nonlins())[:-1])
def test_ff_each_nonlinearity(name, dtype):
    rng = np.random.default_rng(3)
    layer = _nonlins()[name]
    loss = lf.CrossEntropy() if name == "Softmax" else lf.SquaredError()
    out_layer = nl.Softmax() if name == "Softmax" else nl.Logistic()
    net = hf.FFNet([4, 6, 5, 3], layers=[nl.Linear(), layer, layer, out_layer], loss_type=loss,
                   conns={0: [1, 2], 1: [2, 3], 2: [3]}, rng=4, dtype=dtype,
                   W_init_params={"init_type": "gaussian"})
    x, y = _data(net, 7, None, rng, nan=True, positive_targets=name == "Softmax")
    assert _compare(net, x, y, rng) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_skip_truncation_stateful_losses(dtype):
    """Skip connections, two recurrent layers, a stateful output, truncation, a loss set."""
    rng = np.random.default_rng(5)
    layers = [nl.Linear(), nl.Tanh(), nl.Continuous(nl.Logistic(), tau=2.0), nl.Continuous(
        nl.Linear(), tau=4.0, dt=1.0)]
    loss = [lf.SquaredError(), lf.SparseL2(0.1, layers=[1]), lf.SparseL1(0.05, layers=[2]),
            lf.StructuralDamping(0.3, layers=[1, 2])]
    net = hf.RNNet([2, 6, 5, 3], layers=layers, rec_layers=[1, 2], truncation=(3, 5),
                   conns={0: [1, 3], 1: [2, 3], 2: [3]}, loss_type=loss, rng=6, dtype=dtype,
                   W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian", "coeff": 0.7})
    x, y = _data(net, 5, 11, rng, nan=True)
    init = {"init_activations": [None, rng.standard_normal((5, 6)).astype(dtype),
                                 rng.standard_normal((5, 5)).astype(dtype), None],
            "init_state": [None, None, rng.standard_normal((5, 5)).astype(dtype),
                           rng.standard_normal((5, 3)).astype(dtype)]}
    assert _compare(net, x, y, rng, init) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64])
def test_rnn_softlif_recurrent_large_inputs(dtype):
    """SoftLIF's large-|x| branches inside the recurrence.

    float64 only: the kernels evaluate SoftLIF in float64, while the float32 reference
    evaluates ``1 + tanh(y / 2)`` in float32, which cancels for ``y << 0``; the two then
    differ by the reference's own rounding error (about 1e-2 relative here).
    """
    rng = np.random.default_rng(7)
    net = hf.RNNet([2, 8, 2], layers=[nl.Linear(), nl.SoftLIF(sigma=0.02), nl.Linear()],
                   rng=8, dtype=dtype, W_init_params={"init_type": "gaussian", "coeff": 30},
                   W_rec_params={"init_type": "gaussian", "coeff": 2.0})
    x, y = _data(net, 4, 6, rng)
    assert _compare(net, x, y, rng) <= TOL[dtype]


def test_large_sizes_use_blas_and_agree():
    """Sizes above the explicit-loop threshold go through np.dot; still the same result."""
    rng = np.random.default_rng(9)
    net = hf.RNNet([10, 64, 10], layers=[nl.Linear(), nl.Tanh(), nl.Linear()], rng=10,
                   dtype=np.float64, W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian", "coeff": 0.9})
    x, y = _data(net, 40, 12, rng, nan=True)
    assert _compare(net, x, y, rng) <= 1e-10


@pytest.mark.parametrize("kind", ["ff", "rnn", "rnn-stateful", "rnn-truncated"])
def test_compiled_matches_finite_differences(kind):
    rng = np.random.default_rng(11)
    if kind == "ff":
        net = hf.FFNet([3, 5, 4], layers=[nl.Linear(), nl.SoftLIF(), nl.Softmax()],
                       conns={0: [1, 2], 1: [2]}, loss_type=lf.CrossEntropy(), rng=12,
                       dtype=np.float64, W_init_params={"init_type": "gaussian"})
        x, y = _data(net, 5, None, rng, positive_targets=True)
    elif kind == "rnn":
        net = hf.RNNet([2, 4, 2], layers=[nl.Linear(), nl.Logistic(), nl.Tanh()], rng=13,
                       dtype=np.float64, W_init_params={"init_type": "gaussian"},
                       W_rec_params={"init_type": "gaussian"})
        x, y = _data(net, 3, 6, rng, nan=True)
    elif kind == "rnn-truncated":
        # finite differences of the truncated objective (each window with its entering
        # state held fixed, as check_grad/check_G define it)
        net = hf.RNNet([2, 4, 3, 2], layers=[nl.Linear(), nl.Tanh(),
                                             nl.Continuous(nl.Logistic(), tau=2.0), nl.Linear()],
                       rec_layers=[1, 2], truncation=(2, 4), conns={0: [1, 3], 1: [2], 2: [3]},
                       rng=15, dtype=np.float64, W_init_params={"init_type": "gaussian"},
                       W_rec_params={"init_type": "gaussian"})
        x, y = _data(net, 3, 7, rng, nan=True)
    else:
        net = hf.RNNet([2, 4, 2], layers=[nl.Linear(), nl.Continuous(nl.Tanh(), tau=2.0),
                                          nl.Gaussian()],
                       rec_layers=[1, 2], rng=14, dtype=np.float64,
                       W_init_params={"init_type": "gaussian"},
                       W_rec_params={"init_type": "gaussian"})
        x, y = _data(net, 3, 7, rng)
    assert net.backend == "numba"
    assert net.check_grad(x, y) < 1e-6
    assert net.check_G() < 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_hf_update_same_on_both_paths(dtype):
    rng = np.random.default_rng(15)
    updates = []
    for backend in ("numba", "numpy"):
        net = hf.RNNet([2, 6, 2], layers=[nl.Linear(), nl.Tanh(), nl.Linear()], rng=16,
                       dtype=dtype, W_init_params={"init_type": "gaussian"},
                       W_rec_params={"init_type": "gaussian", "coeff": 0.5})
        net.backend = backend
        x, y = _data(net, 8, 10, np.random.default_rng(17))
        net.cache_minibatch(x, y)
        opt = hf.opt.HessianFree(CG_iter=20, init_damping=1.0, plotting=False)
        net.optimizer = opt
        updates.append(opt.compute_update())
    tol = 1e-8 if dtype == np.float64 else 1e-3
    assert _rel(updates[0], updates[1]) <= tol
    del rng


def test_backend_selection_and_fallback():
    class Square(nl.Nonlinearity):
        def activation(self, x):
            return x * x

        def d_activation(self, x, a):
            return 2 * x

    net = hf.RNNet([2, 3, 2], layers=[nl.Linear(), Square(), nl.Linear()], rng=0)
    assert net.backend == "numpy"
    with pytest.raises(ValueError, match="no compiled kernel"):
        net.backend = "numba"
    with pytest.raises(ValueError, match="backend must be"):
        net.backend = "jax"
    net = hf.RNNet([2, 3, 2], layers=[nl.Linear(), nl.Tanh(), nl.Linear()], rng=0)
    assert net.backend == "numba"
    net.backend = "numpy"
    assert net.backend == "numpy"
    net.backend = "auto"
    assert net.backend == "numba"
    # a subclass of a built-in may override its maths: never compiled
    class MyTanh(nl.Tanh):
        pass

    assert hf.FFNet([2, 2], layers=[nl.Linear(), MyTanh()]).backend == "numpy"


def test_d_activations_available_on_compiled_path():
    rng = np.random.default_rng(18)
    net = hf.RNNet([2, 3, 2], layers=[nl.Linear(), nl.Continuous(nl.Tanh()), nl.Softmax()],
                   dtype=np.float64, rng=0)
    x, y = _data(net, 2, 4, rng)
    net.cache_minibatch(x, y)
    assert net.backend == "numba"
    d = net.d_activations
    assert d[1].shape == (2, 4, 3, 3) and d[2].shape == (2, 4, 2, 2)


@njit
def _softsign(x):
    return x / (1.0 + abs(x))


@njit
def _d_softsign(x, a):
    return 1.0 / (1.0 + abs(x)) ** 2


class Softsign(nl.Nonlinearity):
    """A user nonlinearity that opts into the compiled path."""

    njit_activation = staticmethod(_softsign)
    njit_d_activation = staticmethod(_d_softsign)

    def activation(self, x):
        return x / (1 + np.abs(x))

    def d_activation(self, x, a):
        return 1 / (1 + np.abs(x)) ** 2


def test_user_nonlinearity_with_compiled_kernels():
    rng = np.random.default_rng(19)
    net = hf.RNNet([2, 5, 2], layers=[nl.Linear(), Softsign(), nl.Continuous(Softsign())],
                   rec_layers=[1], rng=20, dtype=np.float64,
                   W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian"})
    assert net.backend == "numba"
    x, y = _data(net, 4, 6, rng, nan=True)
    assert _compare(net, x, y, rng) <= 1e-10
    assert net.check_grad(x, y) < 1e-6
