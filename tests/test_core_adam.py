"""Adam (Kingma & Ba 2015) against a hand-written NumPy Adam on a quadratic, clipping,
bias correction, rejected steps, frozen parameters and argument checks."""

import numpy as np
import pytest

import hfcontrol as hf
from hfcontrol.training import train


class Quadratic:
    """``error(W) = (W - c) . A (W - c) / 2`` with a fixed SPD ``A``: a model written
    against the contract only (no minibatch: ``cache_minibatch`` just pins the weights)."""

    def __init__(self, A, c, W0, dtype=np.float64):
        self.A, self.c = A, c
        self.W = np.array(W0, dtype=dtype)
        self.mask = None

    def cache_minibatch(self):
        self.W_cached = self.W.copy()

    def error(self, W=None):
        d = (self.W if W is None else W) - self.c
        return 0.5 * float(d @ self.A @ d)

    def calc_grad(self):
        g = self.A @ (self.W_cached - self.c)
        return g if self.mask is None else g * self.mask

    def calc_G(self, v, damping=0, out=None):
        return self.A @ v + damping * v


def _problem(n=6, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = q @ np.diag(np.logspace(0, 2, n)) @ q.T  # condition number 100
    return A, rng.standard_normal(n), rng.standard_normal(n)


def _oracle(A, c, W0, steps, lr, b1=0.9, b2=0.999, eps=1e-8, clip=None, bias_correction=True):
    """Algorithm 1 of Kingma & Ba (2015), written out here; ``clip`` rescales the gradient
    to that norm first. Returns the weights after each step."""
    W, m, v, out = np.array(W0, float), 0.0, 0.0, []
    for t in range(1, steps + 1):
        g = A @ (W - c)
        if clip is not None and np.linalg.norm(g) > clip:
            g = g * clip / np.linalg.norm(g)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        mh, vh = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
        W = W - lr * mh / (np.sqrt(vh) + eps)
        out.append(W.copy())
    return np.array(out)


def _run_adam(model, opt, steps):
    opt.net = model
    out = []
    for _ in range(steps):
        model.cache_minibatch()
        model.W = model.W + opt.compute_update()
        out.append(model.W.copy())
    return np.array(out)


@pytest.mark.parametrize("settings", [
    {"l_rate": 0.05},
    {"l_rate": 0.02, "beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3},
])
def test_adam_follows_a_hand_written_adam_on_a_quadratic(settings):
    A, c, W0 = _problem()
    path = _run_adam(Quadratic(A, c, W0), hf.opt.Adam(**settings), 60)
    expected = _oracle(A, c, W0, 60, settings["l_rate"], settings.get("beta1", 0.9),
                       settings.get("beta2", 0.999), settings.get("epsilon", 1e-8))
    np.testing.assert_allclose(path, expected, rtol=1e-12, atol=1e-13)
    model = Quadratic(A, c, W0)
    assert model.error(path[-1]) < 0.25 * model.error()  # and it descends


def test_the_first_step_is_bias_corrected():
    # with bias correction the first step is -l_rate * g / (|g| + eps), about l_rate in
    # every coordinate; without it, (1 - beta1) / sqrt(1 - beta2) = 3.16 times that
    A, c, W0 = _problem()
    opt = hf.opt.Adam(l_rate=0.01)
    step = _run_adam(Quadratic(A, c, W0), opt, 1)[0] - W0
    g = A @ (W0 - c)
    np.testing.assert_allclose(step, -0.01 * np.sign(g), rtol=1e-6)
    uncorrected = _oracle(A, c, W0, 1, 0.01, bias_correction=False)[0] - W0
    assert np.all(np.abs(uncorrected) > 3 * np.abs(step))
    assert opt.step == 1


def test_gradient_norm_clipping():
    A, c, W0 = _problem(seed=1)
    clip = 0.5 * np.linalg.norm(A @ (W0 - c))  # the first gradients are clipped, later not
    opt = hf.opt.Adam(l_rate=0.05, epsilon=1e-2, clip_norm=clip, plotting=True)
    path = _run_adam(Quadratic(A, c, W0), opt, 40)
    np.testing.assert_allclose(path, _oracle(A, c, W0, 40, 0.05, eps=1e-2, clip=clip),
                               rtol=1e-12, atol=1e-13)
    unclipped = _oracle(A, c, W0, 40, 0.05, eps=1e-2)
    assert np.abs(path - unclipped).max() > 1e-3  # the clipping mattered
    clipped = np.array(opt.plots["clipped"])
    assert clipped[0] == 1.0 and clipped[-1] == 0.0
    assert opt.plots["grad_norm"][0] == pytest.approx(2 * clip)


def test_a_non_finite_gradient_or_error_is_a_rejected_step():
    A, c, W0 = _problem()
    model = Quadratic(A, c, W0)
    opt = hf.opt.Adam(l_rate=0.05)
    _run_adam(model, opt, 3)
    state = opt.state_dict()
    m, v, W = state["m"].copy(), state["v"].copy(), model.W.copy()
    for field in ("grad", "error"):
        bad = Quadratic(A, c, W0)
        bad.W = W.copy()
        if field == "grad":
            bad.calc_grad = lambda: np.full(W.size, np.nan)
        else:
            bad.error = lambda W=None: np.inf
        opt.net = bad
        bad.cache_minibatch()
        update = opt.compute_update()
        assert not np.any(update) and opt.last["l_rate"] == 0
        assert opt.step == 3
        np.testing.assert_array_equal(opt.m, m)
        np.testing.assert_array_equal(opt.v, v)
    # the next good steps continue as if the rejected ones had not happened
    path = _run_adam(model, opt, 5)
    np.testing.assert_allclose(path[-1], _oracle(A, c, W0, 8, 0.05)[-1], rtol=1e-12)


def test_frozen_parameters_get_no_update_and_float32_weights_stay_float32():
    A, c, W0 = _problem()
    model = Quadratic(A, c, W0, dtype=np.float32)
    opt = hf.opt.Adam(l_rate=0.05)
    _run_adam(model, opt, 3)
    # frozen after three steps: their moments are not zero, yet they must not move
    model.mask = np.array([True, False, True, True, False, True])
    assert np.all(opt.m[~model.mask] != 0)
    model.cache_minibatch()
    update = opt.compute_update()
    assert update.dtype == np.float32
    assert np.all(update[~model.mask] == 0) and np.all(update[model.mask] != 0)


def test_adam_trains_a_closed_loop_under_the_training_loop():
    from hfcontrol import recipes

    recipe = recipes.arm_reach(0, hidden=8, batch=8)
    loop = recipe.loop
    validation = recipe.loop.task.sample(16, seed=5)

    def evaluate():
        return float(np.mean(loop.rollout(validation, noise=False).cost))

    before = evaluate()
    result = train(loop, hf.opt.Adam(l_rate=1e-2, clip_norm=1.0), recipe.train_batches,
                   updates=30, evaluate=evaluate, progress=False)
    assert result.history["test_err"][-1] < 0.5 * before
    assert all(rate == 1e-2 for rate in result.history["l_rate"])


def test_moments_of_another_model_are_refused():
    A, c, W0 = _problem()
    opt = hf.opt.Adam()
    _run_adam(Quadratic(A, c, W0), opt, 1)
    other = Quadratic(np.eye(3), np.zeros(3), np.ones(3))
    opt.net = other
    other.cache_minibatch()
    with pytest.raises(ValueError, match="reset"):
        opt.compute_update()
    opt.reset()
    assert opt.step == 0 and np.any(opt.compute_update())


def test_adam_argument_checks():
    for kwargs, name in [({"l_rate": 0}, "l_rate"), ({"l_rate": np.inf}, "l_rate"),
                         ({"beta1": 1.0}, "beta1"), ({"beta1": -0.1}, "beta1"),
                         ({"beta2": 1.5}, "beta2"), ({"epsilon": 0}, "epsilon"),
                         ({"clip_norm": 0.0}, "clip_norm"), ({"clip_norm": np.nan}, "clip_norm")]:
        with pytest.raises(ValueError, match=name):
            hf.opt.Adam(**kwargs)
    for kwargs, name in [({"l_rate": "0.1"}, "l_rate"), ({"beta1": True}, "beta1")]:
        with pytest.raises(TypeError, match=name):
            hf.opt.Adam(**kwargs)
    hf.opt.Adam(beta1=0.0)  # no momentum is allowed
    with pytest.raises(RuntimeError, match="not attached"):
        hf.opt.Adam().compute_update()
    with pytest.raises(ValueError, match="unknown keys"):
        hf.opt.Adam().load_state_dict({"damping": 1.0})
