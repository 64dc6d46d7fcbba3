"""The compiled path's batch partitions (threads), blocks of steps, buffer reuse and split
BLAS products give the reference results."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from test_compiled_agreement import _compare, _data, _rel

import hfcontrol as hf
from hfcontrol import loss_funcs as lf
from hfcontrol import nl
from hfcontrol.kernels import _blas, _small, activations, plan
from hfcontrol.kernels import runner as kernel_runner


@pytest.fixture(params=["whole", "blocks", "split", "split-blocks"])
def layout(request, monkeypatch):
    """``whole``: the default for these small nets (one partition, all steps in one block);
    ``blocks``: one partition, blocks of a few steps; ``split``: three uneven partitions on
    threads, one step at a time; ``split-blocks``: three partitions, blocks of a few steps."""
    if request.param == "blocks":
        monkeypatch.setattr(kernel_runner, "BLOCK_ELEMENTS", 130)
    elif request.param == "split-blocks":
        monkeypatch.setattr(kernel_runner, "MIN_MACS_PER_THREAD", 1)
        monkeypatch.setattr(kernel_runner, "MIN_PARTITION", 1)
        monkeypatch.setattr(kernel_runner, "BLOCK_ELEMENTS", 40)
        monkeypatch.setattr(kernel_runner, "_THREADS", [3])
    elif request.param == "split":
        monkeypatch.setattr(kernel_runner, "MIN_MACS_PER_THREAD", 1)
        monkeypatch.setattr(kernel_runner, "MIN_PARTITION", 1)
        monkeypatch.setattr(kernel_runner, "BLOCK_ELEMENTS", 8)
        monkeypatch.setattr(kernel_runner, "_THREADS", [3])
    return request.param


def _runner(net):
    return net._cc.runner


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rnn_partitions_and_blocks(layout, dtype):
    rng = np.random.default_rng(1)
    layers = [nl.Linear(), nl.Tanh(), nl.Continuous(nl.Logistic(), tau=2.0), nl.Softmax()]
    loss = [lf.CrossEntropy(), lf.SparseL2(0.1, layers=[1]), lf.StructuralDamping(0.3)]
    net = hf.RNNet([2, 6, 5, 3], layers=layers, rec_layers=[1, 2], truncation=(3, 5),
                   conns={0: [1, 3], 1: [2, 3], 2: [3]}, loss_type=loss, rng=6, dtype=dtype,
                   W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian", "coeff": 0.7})
    x, y = _data(net, 7, 11, rng, nan=True, positive_targets=True)
    init = {"init_activations": [None, rng.standard_normal((7, 6)).astype(dtype),
                                 rng.standard_normal((7, 5)).astype(dtype), None],
            "init_state": [None, None, rng.standard_normal((7, 5)).astype(dtype), None]}
    assert _compare(net, x, y, rng, init) <= (1e-10 if dtype == np.float64 else 1e-4)
    net.cache_minibatch(x, y, **init)
    runner = _runner(net)
    if layout == "split":
        assert [size for _, size in runner.parts] == [2, 2, 3]
        assert runner.chunk == [1, 1, 1]
        assert isinstance(net.activations, kernel_runner.LayerArrays)
    elif layout == "blocks":
        assert runner.parts == [(0, 7)] and runner.chunk == [3]
    elif layout == "split-blocks":
        assert [size for _, size in runner.parts] == [2, 2, 3]
        assert runner.chunk == [3, 3, 2]
    else:
        assert runner.parts == [(0, 7)] and runner.chunk == [11]
        assert isinstance(net.activations, list)


def test_ff_partitions(layout):
    rng = np.random.default_rng(2)
    net = hf.FFNet([4, 6, 5, 3], layers=[nl.Linear(), nl.ReLU(max=2.0), nl.SoftLIF(), nl.Softmax()],
                   conns={0: [1, 2], 1: [2, 3], 2: [3]}, loss_type=lf.CrossEntropy(), rng=3,
                   dtype=np.float64, W_init_params={"init_type": "gaussian"})
    x, y = _data(net, 10, None, rng, positive_targets=True)
    assert _compare(net, x, y, rng) <= 1e-10
    # a feedforward batch is [B, n] in every layout: activations are views
    net.cache_minibatch(x, y)
    assert isinstance(net.activations, list)


def test_split_batch_matches_finite_differences(layout):
    rng = np.random.default_rng(4)
    net = hf.RNNet([2, 4, 2], layers=[nl.Linear(), nl.Tanh(), nl.Linear()], rng=5,
                   truncation=(2, 3), dtype=np.float64, W_init_params={"init_type": "gaussian"},
                   W_rec_params={"init_type": "gaussian"})
    x, y = _data(net, 5, 6, rng, nan=True)
    assert net.check_grad(x, y) < 1e-6
    assert net.check_G() < 1e-6


def test_layer_arrays_behave_like_a_list(layout):
    rng = np.random.default_rng(5)
    net = hf.RNNet([2, 4, 3], layers=[nl.Linear(), nl.Tanh(), nl.Linear()], rng=6,
                   dtype=np.float64)
    x, y = _data(net, 6, 5, rng)
    acts = net.forward(x)
    net.backend = "numpy"
    ref = net.forward(x)
    assert len(acts) == 3
    assert all(a.shape == (6, 5, n) for a, n in zip(acts, net.shape, strict=True))
    assert _rel(acts[-1], ref[-1]) < 1e-12 and _rel(acts[-3], ref[0]) < 1e-12
    assert [a.shape for a in acts[1:]] == [(6, 5, 4), (6, 5, 3)]
    assert max(_rel(a, b) for a, b in zip(acts, ref, strict=True)) < 1e-12
    with pytest.raises(IndexError):
        acts[3]


def test_reused_buffers_never_change_what_the_caller_holds(layout):
    """The kernels' buffers are reused only when nothing refers to them any more."""
    rng = np.random.default_rng(7)
    net = hf.RNNet([2, 5, 2], layers=[nl.Linear(), nl.Tanh(), nl.Linear()], rng=8)
    x1, y1 = _data(net, 6, 5, rng)
    x2, y2 = _data(net, 6, 5, rng)
    held = net.forward(x1)
    out1 = [np.array(a) for a in held]
    net.cache_minibatch(x1, y1)
    cached = net.activations
    cached1 = [np.array(a) for a in cached]
    hidden = net.activations[1]  # a single layer of the cache
    hidden1 = np.array(hidden)
    for _ in range(3):
        net.forward(x2)
        net.cache_minibatch(x2, y2)
        net.calc_G(np.ones(net.n_params, net.dtype))
    assert all(np.array_equal(a, b) for a, b in zip(held, out1, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(cached, cached1, strict=True))
    assert np.array_equal(hidden, hidden1)
    # and the cache is now the second batch's
    current = np.array(net.activations[-1])
    net.backend = "numpy"
    assert _rel(current, net.forward(x2)[-1]) < 1e-5


@njit
def _mm_call(a, ta, b, tb, c, acc):
    _blas._mm(a, ta, b, tb, c, acc)


@pytest.mark.parametrize("shape", [
    (5000, 256, 3),    # skinny, split along the rows of a and c
    (700, 3, 600),     # skinny inner dimension
    (300, 40, 40),     # small: one call
    (480, 16, 2),      # small, narrow: the weight gradient computed transposed
])
@pytest.mark.parametrize("acc", [False, True])
def test_split_products_match_numpy(shape, acc):
    rng = np.random.default_rng(9)
    m, k, n = shape
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    c0 = rng.standard_normal((m, n))
    c = c0.copy()
    _mm_call(a, False, b, False, c, acc)
    assert _rel(c, a @ b + (c0 if acc else 0)) < 1e-12
    # a weight gradient: a reduction over many rows, split into pieces
    g0 = rng.standard_normal((k, n))
    g = g0.copy()
    d = rng.standard_normal((m, n))
    _mm_call(a, True, d, False, g, acc)
    assert _rel(g, a.T @ d + (g0 if acc else 0)) < 1e-12


@njit
def _small_call(a, ta, b, c, init, has_init, d, has_d):
    _small._small_gemm(a, ta, b, c, init, has_init, d, has_d)


@njit
def _fused_call(a, b, x, d, c, tmp):
    _blas._fused_step(a, b, x, d, c, tmp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_products_match_numpy(dtype):
    """The vector loops for small products: every remainder of rows (blocks of 4 or 8, then
    powers of two) and of columns (a 64-byte vector, then powers of two), ``k`` from 0,
    ``a`` transposed or not, added to ``c`` or to another array, scaled or not."""
    rng = np.random.default_rng(5)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for m in (0, 1, 2, 3, 6, 7, 9, 13):
        for n in (1, 2, 3, 7, 16, 17, 35):
            for k in (0, 1, 3, 9, 33):
                for ta in (False, True):
                    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                    b = rng.standard_normal((k, n)).astype(dtype)
                    c0, x, d = (rng.standard_normal((m, n)).astype(dtype) for _ in range(3))
                    product = (a.T if ta else a).astype(np.float64) @ b
                    for init, has_d, expected in ((None, False, product),
                                                  ("c", False, c0 + product),
                                                  ("x", True, d * (x + product)),
                                                  (None, True, d * product)):
                        c = c0.copy()
                        source = {"c": c, "x": x, None: c}[init]
                        _small_call(a, ta, b, c, source, init is not None, d, has_d)
                        assert np.max(np.abs(c - expected), initial=0) <= tol * max(
                            1.0, np.max(np.abs(expected), initial=0)), (m, n, k, ta, init)
    # a row's result does not depend on how many rows the product has (batch partitions)
    a = rng.standard_normal((37, 20)).astype(dtype)
    b = rng.standard_normal((20, 19)).astype(dtype)
    whole, part = np.empty((37, 19), dtype), np.empty((21, 19), dtype)
    _small_call(a, False, b, whole, whole, False, whole, False)
    _small_call(a[:21], False, b, part, part, False, part, False)
    np.testing.assert_array_equal(part, whole[:21])


@pytest.mark.parametrize("rows", [64, 1100])  # the loops of _small, then BLAS and a loop
def test_a_fused_recurrent_step_matches_numpy(rows):
    rng = np.random.default_rng(6)
    a, x, d = (rng.standard_normal((rows, 32)) for _ in range(3))
    w = rng.standard_normal((32, 32))
    c = np.empty((rows, 32))
    _fused_call(a, w, x, d, c, np.empty(rows * 32))
    assert _rel(c, d * (x + a @ w)) < 1e-13
    _fused_call(a, w, x, d, x, np.empty(rows * 32))  # in place
    assert _rel(x, c) == 0


@njit
def _block_call(buf, off, rows, n):
    return _blas._block(buf, off, rows, n).sum()


def test_views_outside_their_buffer_raise():
    buf = np.arange(12.0)
    assert _block_call(buf, 2, 2, 5) == sum(range(2, 12))
    with pytest.raises(IndexError):
        _block_call(buf, 3, 2, 5)
    with pytest.raises(IndexError):
        _block_call(buf, -1, 1, 2)


def test_thread_setting():
    old = kernel_runner.get_num_threads()
    old_blas = kernel_runner.thread_info()["blas"]
    try:
        assert kernel_runner.set_num_threads(1)["kernels"] == 1
        net = hf.RNNet([1, 100, 1], layers=[nl.Linear(), nl.Logistic(), nl.Linear()], rng=0)
        x = np.zeros((64, 50, 1), np.float32)
        net.cache_minibatch(x, x)
        assert len(_runner(net).parts) == 1
        kernel_runner.set_num_threads(2)
        net.cache_minibatch(x, x)
        assert len(_runner(net).parts) == 2
        with pytest.raises(ValueError, match="positive integer"):
            kernel_runner.set_num_threads(0)
    finally:
        kernel_runner.set_num_threads(old)
        if old_blas > 0:  # set_num_threads also set BLAS's threads: put them back
            kernel_runner.set_num_threads(old_blas)
            kernel_runner._THREADS[0] = old


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("code", [plan.TANH, plan.LOGISTIC])
def test_nan_stays_nan(code, dtype):
    """The vectorised float32 tanh and logistic clamp their argument; a NaN must not come
    out finite (a blown-up step would then look acceptable to the line search)."""
    z = np.array([[np.nan, 0.5, -np.inf, np.inf, -0.5, np.nan]], dtype)
    a = np.empty_like(z)
    activations._elementwise(code, np.zeros(5), z, a, a, False)
    assert np.isnan(a[0, 0]) and np.isnan(a[0, 5])
    assert np.all(np.isfinite(a[0, 1:5]))


def test_runners_kept_for_alternating_batch_shapes():
    """A training minibatch and a test set of another size alternate: each shape keeps
    its Runner (and its work buffers) instead of rebuilding it every call."""
    rng = np.random.default_rng(10)
    net = hf.RNNet([2, 5, 2], layers=[nl.Linear(), nl.Tanh(), nl.Linear()], rng=11)
    x1, y1 = _data(net, 6, 5, rng)
    x2, _ = _data(net, 9, 4, rng)
    net.cache_minibatch(x1, y1)
    first = _runner(net)
    net.forward(x2)
    other = net._runners[next(reversed(net._runners))]
    for _ in range(3):
        net.cache_minibatch(x1, y1)
        assert _runner(net) is first
        net.forward(x2)
        assert net._runners[next(reversed(net._runners))] is other


def test_run_all_waits_for_every_partition_before_raising():
    """A partition that fails must not leave others running on the shared buffers."""
    import time

    done = []

    def slow():
        time.sleep(0.2)
        done.append("slow")

    def failing():
        raise RuntimeError("partition failed")

    with pytest.raises(RuntimeError, match="partition failed"):
        kernel_runner._run_all([failing, slow])
    assert done == ["slow"]
    done.clear()
    with pytest.raises(RuntimeError, match="partition failed"):
        kernel_runner._run_all([slow, failing])
    assert done == ["slow"]
