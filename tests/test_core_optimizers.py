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
    # re-simulate the closed loop by hand from the trained weights and the plant equations
    plant = net.layers[-1]
    W = net.W.astype(np.float64)
    w_in, b_in = net.get_weights(W, (0, 1))
    w_rec, b_rec = net.get_weights(W, (1, 1))
    w_out, b_out = net.get_weights(W, (1, 2))
    state = plant.init_states.copy()
    hidden = np.zeros((state.shape[0], w_rec.shape[0]))
    for t in range(plant.shape[1]):
        hidden = np.tanh(state @ w_in + b_in + (hidden @ w_rec if t else b_rec))
        u = hidden @ w_out + b_out
        position, velocity = state[:, 0], state[:, 1]
        state = np.column_stack([position + 0.2 * velocity, velocity + np.tanh(position) * u[:, 1]])
    assert 0.5 * np.sum((state - [1.0, 0.0]) ** 2) / state.shape[0] < 1e-3


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


def _attached(init_damping=1.0, **kwargs):
    net = _small_net()
    opt = hf.opt.HessianFree(init_damping=init_damping, **kwargs)
    net.optimizer = opt
    return net, opt


def test_compute_update_warm_starts_from_095_of_the_last_solution():
    net, opt = _attached(CG_iter=5)
    starts = []
    solve = opt.conjugate_gradient

    def spy(init_delta, grad, iters):
        starts.append(init_delta.copy())
        return solve(init_delta, grad, iters)

    opt.conjugate_gradient = spy
    opt.compute_update()
    first_solution = opt.init_delta.copy()
    net.cache_minibatch(net.inputs, net.targets)
    opt.compute_update()
    assert not np.any(starts[0])
    np.testing.assert_allclose(starts[1], 0.95 * first_solution, rtol=1e-12)


def test_damping_rises_by_3_2_when_the_model_overpredicts():
    net, opt = _attached(init_damping=2.0)
    true_error = net.error
    w0 = net.W.copy()
    # every trial point is made to look barely better than the start: rho is tiny
    net.error = lambda W=None, inputs=None, targets=None: (
        true_error() if W is None or np.array_equal(W, w0) else true_error() - 1e-12)
    opt.compute_update()
    assert 0 <= opt.last["rho"] < 0.25
    assert opt.damping == pytest.approx(3.0)


def test_a_zero_gradient_changes_nothing():
    net, opt = _attached()
    net.set_mask(np.zeros(net.n_params, bool))
    update = opt.compute_update()
    assert not np.any(update) and opt.damping == 1.0


def test_zero_damping_can_still_be_raised():
    _, opt = _attached(init_damping=0.0)
    opt._raise_damping()
    assert opt.damping > 0


def test_a_non_finite_final_iterate_sends_backtracking_to_earlier_ones():
    net, opt = _attached(CG_iter=30)
    w0 = net.W.copy()
    solve = opt.conjugate_gradient
    final = {}

    def record(init_delta, grad, iters):
        iterates = solve(init_delta, grad, iters)
        final["delta"] = iterates[-1][1]
        return iterates

    opt.conjugate_gradient = record
    true_error = net.error

    def error(W=None, inputs=None, targets=None):
        if W is not None and np.array_equal(W, w0 + final["delta"]):
            return np.nan
        return true_error(W)

    net.error = error
    update = opt.compute_update()
    assert np.all(np.isfinite(update)) and np.any(update)
    assert opt.last["cg_used"] < opt.last["cg_iters"]
    assert true_error(w0 + update) < true_error()


def test_cg_stops_on_relative_progress():
    net, opt = _attached(CG_iter=250, init_damping=1e-8)
    grad = net.calc_grad()
    default = opt.conjugate_gradient(np.zeros(net.n_params), grad, 250)[-1][0]
    opt.cg_tolerance = 0.0
    strict = opt.conjugate_gradient(np.zeros(net.n_params), grad, 250)[-1][0]
    assert default < strict
