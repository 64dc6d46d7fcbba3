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
    controller, history, metrics = demos.plant(plots=False, rng=np.random.default_rng(0),
                                               print_period=None)
    assert metrics["final_step_squared_error"] < 1e-4
    assert len(history["epoch"]) < 60
    # re-simulate the closed loop by hand from the trained weights and the plant equations
    net = controller.net
    W = net.W.astype(np.float64)
    w_in, b_in = net.get_weights(W, (0, 1))
    w_rec, b_rec = net.get_weights(W, (1, 1))
    w_out, b_out = net.get_weights(W, (1, 2))
    state = controller.task.sample(32, rng=np.random.default_rng(0)).x0
    hidden = None
    for _ in range(15):
        hidden = np.tanh(state @ w_in + b_in + (hidden @ w_rec if hidden is not None else b_rec))
        u = hidden @ w_out + b_out
        position, velocity = state[:, 0], state[:, 1]
        state = np.column_stack([position + 0.2 * velocity, velocity + np.tanh(position) * u[:, 1]])
    assert 0.5 * np.sum((state - [1.0, 0.0]) ** 2) / state.shape[0] < 1e-4


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


# ---------------------------------------------------------------------------------------------
# Hand-computed oracles: a 3-4-2 Tanh net evaluated by plain NumPy, its Gauss-Newton matrix
# from a finite-difference Jacobian, and a linear net whose Gauss-Newton matrix is exact.


def _hand_outputs(net, W):
    """Outputs of the 3-4-2 Linear-Tanh-Linear net of ``_small_net``, by hand."""
    w1, b1 = net.get_weights(W, (0, 1))
    w2, b2 = net.get_weights(W, (1, 2))
    return np.tanh(net.inputs @ w1 + b1) @ w2 + b2


def _hand_error(net, W):
    return 0.5 * np.sum((_hand_outputs(net, W) - net.targets) ** 2) / net.inputs.shape[0]


def _hand_model(net, eps=1e-6):
    """``(g, G)`` at ``net.W`` from a central-difference Jacobian of the hand-computed outputs."""
    W = net.W.copy()
    batch = net.inputs.shape[0]
    J = np.zeros(_hand_outputs(net, W).shape + (net.n_params,))
    for i in range(net.n_params):
        e = np.zeros(net.n_params)
        e[i] = eps
        J[..., i] = (_hand_outputs(net, W + e) - _hand_outputs(net, W - e)) / (2 * eps)
    residual = _hand_outputs(net, W) - net.targets
    g = np.einsum("bjp,bj->p", J, residual) / batch
    G = np.einsum("bjp,bjq->pq", J, J) / batch
    return g, G


def _spy_iterates(opt):
    captured = []
    solve = opt.conjugate_gradient

    def spy(init_delta, grad, iters):
        captured.append(solve(init_delta, grad, iters))
        return captured[-1]

    opt.conjugate_gradient = spy
    return captured


def test_rho_is_the_reduction_ratio_of_the_undamped_quadratic_model():
    net, opt = _attached(init_damping=5.0, CG_iter=3)
    captured = _spy_iterates(opt)
    w0 = net.W.copy()
    g, G = _hand_model(net)
    opt.compute_update()
    delta = dict(captured[0])[opt.last["cg_used"]]
    actual = _hand_error(net, w0 + delta) - _hand_error(net, w0)
    rho = actual / (g @ delta + 0.5 * delta @ G @ delta)
    assert opt.last["rho"] == pytest.approx(rho, rel=1e-6)
    # the damped model would give a clearly different ratio: the test tells them apart
    damped = actual / (g @ delta + 0.5 * delta @ (G + 5.0 * np.eye(net.n_params)) @ delta)
    assert abs(damped - rho) > 1e-3 * abs(rho)


def test_armijo_shortens_a_full_step_that_overshoots():
    net, opt = _attached(init_damping=1e-3, CG_iter=1)
    captured = _spy_iterates(opt)
    w0 = net.W.copy()
    e0 = _hand_error(net, w0)
    g, _ = _hand_model(net)

    def penalised(W):
        # zero value and zero gradient at w0, so g is still the gradient at w0, but a long
        # step is heavily penalised: the full step overshoots
        return _hand_error(net, W) + 50.0 * np.sum((W - w0) ** 2) ** 2

    net.error = lambda W=None, inputs=None, targets=None: penalised(w0 if W is None else W)
    update = opt.compute_update()
    [(iteration, delta)] = captured[0]
    slope = g @ delta
    assert iteration == 1 and slope < 0
    assert penalised(w0 + delta) > e0 + opt.armijo_c * slope  # the full step fails Armijo
    step = 1.0
    while penalised(w0 + step * delta) > e0 + opt.armijo_c * step * slope:
        step *= opt.armijo_shrink
    assert 0 < step < 1
    assert opt.last["l_rate"] == pytest.approx(step, rel=1e-12)
    np.testing.assert_allclose(update, step * delta, rtol=1e-12, atol=0)


def _linear_problem(seed=0, n_in=12, n_out=2, batch=40):
    """A linear net (``y = x W + b``) with its exact gradient and Gauss-Newton matrix."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n_in)) * np.logspace(0, -1.5, n_in)  # spread curvatures
    y = rng.standard_normal((batch, n_out))
    net = hf.FFNet([n_in, n_out], layers=["Linear", "Linear"], dtype=np.float64, rng=seed,
                   W_init_params={"init_type": "gaussian"})
    net.cache_minibatch(x, y)
    J = np.zeros((batch, n_out, net.n_params))
    for j in range(n_out):
        for i in range(n_in):
            J[:, j, i * n_out + j] = x[:, i]  # dy_j / dW[i, j] (W stored row-major)
        J[:, j, n_in * n_out + j] = 1.0       # dy_j / db_j
    w, b = net.get_weights(net.W, (0, 1))
    g = np.einsum("bjp,bj->p", J, x @ w + b - y) / batch
    G = np.einsum("bjp,bjq->pq", J, J) / batch
    return net, g, G


def test_cg_stops_where_the_relative_progress_rule_says():
    """Martens (2010): stop at the first i > k = max(10, i // 10) with phi_i < 0 and
    (phi_i - phi_{i-k}) / phi_i < k * 5e-4, phi the damped quadratic model."""
    damping = 1e-4
    net, g, G = _linear_problem()
    opt = hf.opt.HessianFree(init_damping=damping)
    net.optimizer = opt
    A = G + damping * np.eye(net.n_params)
    x = np.zeros(net.n_params)
    r = -g
    d = r.copy()
    phis, stop = [], None
    for i in range(1, net.n_params + 1):
        a = (r @ r) / (d @ A @ d)
        x = x + a * d
        r_new = r - a * (A @ d)
        d = r_new + (r_new @ r_new) / (r @ r) * d
        r = r_new
        phis.append(0.5 * x @ A @ x + g @ x)
        k = max(10, i // 10)
        if i > k and phis[-1] < 0 and (phis[-1] - phis[-1 - k]) / phis[-1] < k * 5e-4:
            stop = i
            break
    assert stop is not None and 10 < stop < net.n_params  # the rule, not convergence, stops it
    iterates = opt.conjugate_gradient(np.zeros(net.n_params), net.calc_grad(), 250)
    assert iterates[-1][0] == stop
    np.testing.assert_allclose(iterates[-1][1], x, rtol=1e-8, atol=1e-10 * np.abs(x).max())


def test_non_positive_curvature_after_the_first_iteration_keeps_the_iterate_and_raises_damping():
    net, opt = _attached(init_damping=1.0, CG_iter=10)
    g, G = _hand_model(net)
    calc_G = net.calc_G
    calls = []

    def flipped(v, damping=0, out=None):
        calls.append(damping)
        result = calc_G(v, damping=damping, out=out)
        # CG's calls: G x0 (residual), then one per iteration; the second iteration's
        # direction is given negative curvature
        return -result if len(calls) == 3 else result

    net.calc_G = flipped
    update = opt.compute_update()
    assert opt.cg_breakdown
    # the first CG iterate from 0, by hand: exact line search along -g on the damped model
    A = G + 1.0 * np.eye(net.n_params)
    first = -(g @ g) / (g @ A @ g) * g
    assert opt.last["cg_iters"] == 1 and opt.last["l_rate"] > 0
    np.testing.assert_allclose(update, opt.last["l_rate"] * first, rtol=1e-6)
    # the model is good along that step (rho > 3/4 would lower the damping) ...
    assert opt.last["rho"] > 0.75
    # ... yet the damping is raised, because the damped model was not convex
    assert opt.damping == pytest.approx(1.5)


def test_an_ascent_direction_is_not_line_searched():
    net, opt = _attached(init_damping=1.0)
    w0 = net.W.copy()
    grad = net.calc_grad()
    opt.conjugate_gradient = lambda init_delta, grad_, iters: [(1, 0.1 * grad_)]
    true_error = net.error
    trials = []

    def counting(W=None, inputs=None, targets=None):
        if W is not None:
            trials.append(W)
        return true_error(W)

    net.error = counting
    update = opt.compute_update()
    assert grad @ (0.1 * grad) > 0
    assert not np.any(update)
    assert len(trials) == 1  # the backtracking evaluation only, no Armijo trials
    assert opt.last["l_rate"] == 0 and opt.damping == pytest.approx(1.5)
    np.testing.assert_array_equal(net.W, w0)
