"""Conjugate gradient, Hessian-free and SGD training."""

import numpy as np
import pytest

import hfcontrol as hf
from hfcontrol import demos


def _small_net():
    net = hf.FFNet([3, 4, 2], layers=["Linear", "Tanh", "Linear"], dtype=np.float64, rng=0,
                   W_init_params={"init_type": "gaussian"})
    rng = np.random.default_rng(1)
    net.cache_minibatch(rng.standard_normal((6, 3)), rng.standard_normal((6, 2)))
    return net


def test_cg_run_to_n_iterations_solves_the_damped_system():
    net = _small_net()
    opt = hf.opt.HessianFree(init_damping=0.3)
    net.optimizer = opt
    grad = net.calc_grad()
    n = net.n_params
    G = np.column_stack([net.calc_G(e) for e in np.eye(n)])
    expected = np.linalg.solve(G + 0.3 * np.eye(n), -grad)
    iterates = opt.conjugate_gradient(np.zeros(n), grad, iters=4 * n)
    iterations, delta = iterates[-1]
    np.testing.assert_allclose(delta, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())
    steps = [i for i, _ in iterates]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    # iterates kept at geometrically spaced iterations: 1, 2, 3, 4, 6, 8, 11, ...
    assert steps[:6] == [1, 2, 3, 4, 6, 8][: len(steps[:6])]


def test_cg_warm_start_is_used():
    net = _small_net()
    opt = hf.opt.HessianFree(init_damping=0.3)
    net.optimizer = opt
    grad = net.calc_grad()
    exact = opt.conjugate_gradient(np.zeros(net.n_params), grad, iters=200)[-1][1]
    # starting from the solution, the first iterate is already (almost) the solution
    first = opt.conjugate_gradient(exact, grad, iters=1)[0][1]
    np.testing.assert_allclose(first, exact, atol=1e-8)


def test_hf_solves_xor_within_40_updates():
    net = hf.FFNet([2, 5, 1], layers=["Linear", "Tanh", "Logistic"], rng=0)
    history = net.run_epochs(demos.XOR_INPUTS, demos.XOR_TARGETS, hf.opt.HessianFree(CG_iter=100),
                             max_epochs=40, target_err=1e-4, print_period=None)
    assert len(history["epoch"]) <= 40
    assert net.error(inputs=demos.XOR_INPUTS, targets=demos.XOR_TARGETS) < 1e-3
    out = net.forward(demos.XOR_INPUTS)[-1]
    assert np.all((out > 0.5) == (demos.XOR_TARGETS > 0.5))


def test_hf_controls_the_demo_plant():
    net, history, metrics = demos.plant(np.random.default_rng(0), print_period=None)
    assert metrics["final_step_squared_error"] < 1e-3
    # recomputed independently of the demo's metric: simulate the closed loop by hand
    plant = net.layers[-1]
    plant.reset()
    state = plant.init_states.copy()
    out = net.forward(plant)[-1]
    inputs, _ = plant.get_vecs()
    np.testing.assert_allclose(inputs[:, 0], state)
    final = out[:, -1].astype(np.float64)
    assert 0.5 * np.sum((final - [1.0, 0.0]) ** 2) / final.shape[0] < 1e-3


def test_sgd_lowers_the_error():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 3)).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal((3, 2))).astype(np.float32)
    net = hf.FFNet([3, 8, 2], layers=["Linear", "Tanh", "Linear"], rng=3)
    before = net.error(inputs=x, targets=y)
    history = net.run_epochs(x, y, hf.opt.SGD(l_rate=0.1), max_epochs=50, print_period=None)
    assert history["test_err"][-1] < 0.5 * before
    assert all(np.isnan(d) for d in history["damping"])


def test_non_finite_values_reject_the_step_and_keep_the_weights():
    net = hf.FFNet([2, 3, 1], layers=["Linear", "Tanh", "Linear"], rng=4, dtype=np.float64)
    x = np.ones((4, 2))
    y = np.ones((4, 1))
    opt = hf.opt.HessianFree(init_damping=1.0)
    net.optimizer = opt
    net.cache_minibatch(x, y)
    w0 = net.W.copy()
    # any trial step evaluates to NaN: backtracking and the line search must refuse it
    net.error = lambda W=None, inputs=None, targets=None: (
        0.5 if W is None or np.array_equal(W, w0) else np.nan)
    update = opt.compute_update()
    assert np.all(update == 0)
    assert opt.damping > 1.0
    np.testing.assert_array_equal(net.W, w0)


def test_damping_follows_the_reduction_ratio():
    net = _small_net()
    opt = hf.opt.HessianFree(CG_iter=50, init_damping=1.0)
    net.optimizer = opt
    opt.compute_update()
    # a quadratic-looking problem with a good model: rho near 1 lowers the damping by 2/3
    assert opt.last["rho"] > 0.75
    assert opt.damping == pytest.approx(2 / 3)


def test_optimizer_argument_checks():
    with pytest.raises(ValueError, match="CG_iter"):
        hf.opt.HessianFree(CG_iter=0)
    with pytest.raises(ValueError, match="init_damping"):
        hf.opt.HessianFree(init_damping=-1)
    with pytest.raises(ValueError, match="l_rate"):
        hf.opt.SGD(l_rate=0)
    with pytest.raises(RuntimeError, match="not attached"):
        hf.opt.SGD().compute_update()
