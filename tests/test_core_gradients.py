"""Gradient and Gauss-Newton products against central finite differences (float64).

``check_grad`` differences the error; ``check_G`` differences the activations
(``J v``) and then the contraction ``a(W) . c`` (``J^T c``), so neither oracle
uses the back-propagation or R-operator code it checks. Every check runs on both
backends: the NumPy reference path and the compiled (Numba) path.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hfcontrol as hf
from hfcontrol import loss_funcs as lf
from hfcontrol import nonlinearities as nl

TOL = 1e-5
RNG = np.random.default_rng(0)
BACKENDS = pytest.mark.parametrize("backend", ["numpy", "numba"])


def _ff_data(n_in, n_out, batch=5, positive=False):
    x = RNG.standard_normal((batch, n_in))
    y = RNG.uniform(0.1, 0.9, (batch, n_out)) if positive else RNG.standard_normal((batch, n_out))
    return x, y


def _assert_checks(net, inputs, targets, backend=None, **kwargs):
    if backend is not None:
        net.backend = backend
        assert net.backend == backend
    net.cache_minibatch(inputs, targets, **kwargs)
    # the compiled path keeps its own minibatch cache; the reference path has none
    assert (net._cc is not None) == (net.backend == "numba")
    assert net.check_grad() < TOL
    for seed in range(2):
        v = np.random.default_rng(seed).standard_normal(net.n_params)
        assert net.check_G(v) < TOL


@BACKENDS
@pytest.mark.parametrize("hidden", ["Tanh", "Logistic", "Linear", "Gaussian", nl.ReLU(max=3.0),
                                    nl.SoftLIF(sigma=0.5, amp=0.05), "Softmax",
                                    nl.Continuous(nl.Tanh(), tau=2.0)], ids=repr)
def test_every_nonlinearity(hidden, backend):
    kwargs = dict(layers=["Linear", hidden, "Tanh"], dtype=np.float64, rng=1,
                  W_init_params={"init_type": "gaussian", "coeff": 1.0, "biases": 0.1})
    if isinstance(hidden, nl.Continuous):  # stateful: only in a recurrent net
        _assert_checks(hf.RNNet([3, 6, 2], **kwargs), *_rnn_data(3, 2), backend)
    else:
        _assert_checks(hf.FFNet([3, 6, 2], **kwargs), *_ff_data(3, 2), backend)


@pytest.mark.parametrize("loss", [lf.SquaredError(), lf.CrossEntropy(),
                                  [lf.SquaredError(), lf.SparseL1(0.2)],
                                  [lf.SquaredError(), lf.SparseL2(0.3, target=0.1)],
                                  [lf.SquaredError(), lf.StructuralDamping(0.7)]], ids=repr)
@BACKENDS
def test_every_loss(loss, backend):
    net = hf.FFNet([3, 6, 2], layers=["Linear", "Tanh", "Logistic"], loss_type=loss,
                   dtype=np.float64, rng=2, W_init_params={"init_type": "gaussian"})
    _assert_checks(net, *_ff_data(3, 2, positive=True), backend)


@BACKENDS
def test_softmax_with_crossentropy_and_nan_targets(backend):
    net = hf.FFNet([4, 7, 3], layers=["Linear", "Tanh", "Softmax"], loss_type=lf.CrossEntropy(),
                   dtype=np.float64, rng=3, W_init_params={"init_type": "gaussian"})
    x = RNG.standard_normal((6, 4))
    y = np.eye(3)[RNG.integers(0, 3, 6)]
    y[2] = np.nan
    _assert_checks(net, x, y, backend)


@BACKENDS
def test_nan_targets_in_a_recurrent_net(backend):
    net = hf.RNNet([2, 4, 3], layers=["Linear", "Tanh", "Linear"], dtype=np.float64, rng=11,
                   W_init_params={"init_type": "gaussian"})
    x, y = _rnn_data(2, 3)
    y[1, 3, 0] = y[0, 4] = np.nan
    _assert_checks(net, x, y, backend)


@BACKENDS
def test_skip_connections(backend):
    net = hf.FFNet([3, 4, 5, 2], layers=["Linear", "Tanh", "Logistic", "Linear"],
                   conns={0: [1, 2, 3], 1: [2, 3], 2: [3]}, dtype=np.float64, rng=4)
    x, y = _ff_data(3, 2)
    y[0, 1] = np.nan
    _assert_checks(net, x, y, backend)


def _rnn_data(n_in, n_out, batch=3, steps=6):
    x = RNG.standard_normal((batch, steps, n_in))
    y = RNG.standard_normal((batch, steps, n_out))
    y[:, :2] = np.nan
    return x, y


@BACKENDS
def test_recurrent_net_with_stateful_layers_and_damping(backend):
    layers = ["Linear", nl.Continuous(nl.Tanh(), tau=3.0, dt=1.0),
              nl.Continuous(nl.Logistic(), tau=2.0, dt=0.5), "Linear"]
    net = hf.RNNet([2, 5, 4, 2], rec_layers=[1, 2], layers=layers,
                   conns={0: [1, 3], 1: [2], 2: [3]},
                   loss_type=[lf.SquaredError(), lf.StructuralDamping(0.3), lf.SparseL2(0.1)],
                   dtype=np.float64, rng=5, W_init_params={"init_type": "gaussian"})
    x, y = _rnn_data(2, 2)
    _assert_checks(net, x, y, backend,
                   init_state=[None, RNG.standard_normal((3, 5)), None, None],
                   init_activations=[None, RNG.standard_normal((3, 5)), None, None])


def _fd_gradient_of_error(net, eps=1e-6):
    """Central differences of the (untruncated) error on the cached minibatch."""
    w0 = net.W.copy()
    fd = np.zeros(net.n_params)
    for i in range(net.n_params):
        e = np.zeros(net.n_params)
        e[i] = eps
        fd[i] = (net.error(w0 + e) - net.error(w0 - e)) / (2 * eps)
    return fd


@BACKENDS
@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_truncation_reaching_back_over_the_whole_sequence_gives_the_full_gradient(n, backend):
    # (n, k) = (n, T): back-propagation every n steps, each time back through all T = 6 steps
    net = hf.RNNet([2, 5, 2], layers=["Linear", "Tanh", "Linear"], truncation=(n, 6),
                   dtype=np.float64, rng=6, W_init_params={"init_type": "gaussian"})
    _assert_checks(net, *_rnn_data(2, 2), backend)
    fd = _fd_gradient_of_error(net)
    assert np.max(np.abs(net.calc_grad() - fd)) <= TOL * np.max(np.abs(fd))


@BACKENDS
@pytest.mark.parametrize("truncation", [(2, 3), (1, 2), (3, 3), (2, 7)])
def test_truncation_order_is_every_n_steps_back_k_steps(truncation, backend):
    """hessianfree's (n, k): every n steps, back-propagate through the last k steps.

    Linear recurrent output ``y_t = w x_t + r y_{t-1}`` (``+ b`` at t = 0, no ``r``). The
    sequence (T = 7) is cut into blocks of n steps; the error ``e_t`` of a step in the
    block ending at ``end`` reaches back to step ``low = max(0, end - k)``, so
    ``dy_t/dr = sum_{s = max(low, 1)}^{t} r^(t - s) y_{s-1}``.
    """
    n, k = truncation
    net = hf.RNNet([1, 1], rec_layers=[1], layers=["Linear", "Linear"], truncation=truncation,
                   dtype=np.float64, rng=12, W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian", "coeff": 0.8})
    net.backend = backend
    x = RNG.standard_normal((3, 7, 1))
    target = RNG.standard_normal((3, 7, 1))
    net.cache_minibatch(x, target)
    r = net.get_weights(net.W, (1, 1))[0][0, 0]
    y = net.activations[-1][..., 0]
    e = y - target[..., 0]
    expected = 0.0
    for start in range(0, 7, n):
        end = min(start + n, 7)
        low = max(0, end - k)
        for t in range(start, end):
            dy_dr = sum(r ** (t - s) * y[:, s - 1] for s in range(max(low, 1), t + 1))
            expected += np.sum(e[:, t] * dy_dr)
    expected /= 3
    assert net.get_weights(net.calc_grad(), (1, 1))[0][0, 0] == pytest.approx(expected, rel=1e-10)


def test_one_step_truncation_matches_hand_computed_gradient():
    # linear recurrent output layer y_t = x_t w + y_{t-1} r (+ b at t=0): with truncation (1, 1)
    # the recurrent-weight gradient keeps only the direct term sum_t y_{t-1} (y_t - target_t) / B
    net = hf.RNNet([1, 1], rec_layers=[1], layers=["Linear", "Linear"], truncation=(1, 1),
                   dtype=np.float64, rng=7, W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian", "coeff": 0.5})
    x = RNG.standard_normal((4, 5, 1))
    target = RNG.standard_normal((4, 5, 1))
    net.cache_minibatch(x, target)
    y = net.activations[-1]
    grad = net.calc_grad()
    w_rec_grad, b_rec_grad = net.get_weights(grad, (1, 1))
    expected = np.sum(y[:, :-1, 0] * (y[:, 1:, 0] - target[:, 1:, 0])) / 4
    assert w_rec_grad[0, 0] == pytest.approx(expected, rel=1e-12)
    assert b_rec_grad[0] == pytest.approx(np.sum(y[:, 0, 0] - target[:, 0, 0]) / 4, rel=1e-12)
    # and it differs from the full gradient
    net.truncation = None
    net.cache_minibatch(x, target)
    assert net.calc_grad()[net.offsets[(1, 1)][0]] != pytest.approx(expected)


def test_plant_output_layer_derivatives_treat_fed_back_input_as_data():
    from user_plants import RowFormPlant

    plant = RowFormPlant(batch=6, steps=5, rng=0)
    net = hf.RNNet([2, 5, 2], layers=["Linear", "Tanh", plant], dtype=np.float64, rng=8,
                   W_init_params={"coeff": 0.5}, W_rec_params={"coeff": 0.5})
    net.cache_minibatch(plant)
    inputs, targets = plant.get_vecs()
    targets[:, 2] = 0.3  # more error terms than the final step alone
    # with the recorded inputs held fixed, the plant's own state chain is differentiated
    _assert_checks(net, inputs, targets)


@BACKENDS
def test_masked_parameters_have_zero_gradient_and_curvature(backend):
    net = hf.FFNet([2, 3, 1], layers=["Linear", "Tanh", "Linear"], dtype=np.float64, rng=9)
    net.backend = backend
    mask = np.ones(net.n_params, bool)
    mask[:4] = False
    net.set_mask(mask)
    net.cache_minibatch(*_ff_data(2, 1))
    assert np.all(net.calc_grad()[:4] == 0)
    assert np.all(net.calc_G(np.ones(net.n_params))[:4] == 0)
    assert net.check_grad() < TOL


@BACKENDS
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_random_architectures(backend, data):
    """Random layer sizes, nonlinearities and forward connections: the oracles still agree."""
    n_layers = data.draw(st.integers(2, 4), label="n_layers")
    shape = [data.draw(st.integers(1, 4), label=f"size{i}") for i in range(n_layers)]
    names = ["Tanh", "Logistic", "Linear", "Gaussian", "Softmax"]
    layers = ["Linear"] + [data.draw(st.sampled_from(names), label=f"nl{i}")
                           for i in range(1, n_layers)]
    conns = {pre: [post for post in range(pre + 1, n_layers)
                   if post == pre + 1 or data.draw(st.booleans(), label=f"skip{pre}{post}")]
             for pre in range(n_layers - 1)}
    recurrent = data.draw(st.booleans(), label="recurrent")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    rng = np.random.default_rng(seed)
    kwargs = dict(layers=layers, conns=conns, dtype=np.float64, rng=seed,
                  W_init_params={"init_type": "gaussian", "biases": 0.1})
    if recurrent:
        net = hf.RNNet(shape, **kwargs)
        x = rng.standard_normal((2, 3, shape[0]))
        y = rng.standard_normal((2, 3, shape[-1]))
    else:
        net = hf.FFNet(shape, **kwargs)
        x = rng.standard_normal((3, shape[0]))
        y = rng.standard_normal((3, shape[-1]))
    _assert_checks(net, x, y, backend)


@BACKENDS
@pytest.mark.parametrize("truncation", [(2, 3), (2, 2), (1, 4)])
def test_truncated_gradient_and_curvature_against_window_oracles(backend, truncation):
    """With k < T: G is symmetric PSD, and both products match per-window finite differences."""
    layers = ["Linear", nl.Continuous(nl.Tanh(), tau=2.0), "Logistic", "Linear"]
    net = hf.RNNet([2, 4, 3, 2], layers=layers, rec_layers=[1, 2], truncation=truncation,
                   loss_type=[lf.SquaredError(), lf.SparseL2(0.2)], dtype=np.float64, rng=10,
                   W_init_params={"init_type": "gaussian"})
    x, y = _rnn_data(2, 2, steps=8)
    _assert_checks(net, x, y, backend)
    G = np.column_stack([net.calc_G(e) for e in np.eye(net.n_params)])
    np.testing.assert_allclose(G, G.T, atol=1e-12 * np.abs(G).max())
    assert np.linalg.eigvalsh(0.5 * (G + G.T)).min() > -1e-10 * np.abs(G).max()
