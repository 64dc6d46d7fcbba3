"""The model contract: conjugate gradient on a plain matrix, and a model that is not a
network trained by the optimisers and the training loop through the contract alone."""

import numpy as np
import pytest

import hfcontrol as hf
from hfcontrol.model import Model, check_model
from hfcontrol.optimizers import conjugate_gradient
from hfcontrol.training import train


class LeastSquares:
    """``error(W) = |X W - y|^2 / (2 n)``: a model written against the contract only."""

    def __init__(self, n_features: int, rng: np.random.Generator):
        self.W = np.zeros(n_features)
        self.mask = None
        self.rng = rng

    def cache_minibatch(self, X, y):
        self.X, self.y = X, y
        self.W_cached = self.W.copy()

    def error(self, W=None):
        W = self.W if W is None else W
        r = self.X @ W - self.y
        return float(r @ r) / (2 * len(self.y))

    def calc_grad(self):
        return self.X.T @ (self.X @ self.W_cached - self.y) / len(self.y)

    def calc_G(self, v, damping=0, out=None):
        gv = self.X.T @ (self.X @ v) / len(self.y) + damping * v
        if out is not None:
            out[:] = gv
            return out
        return gv


def _spd(n, rng):
    a = rng.standard_normal((n, n))
    return a @ a.T + 0.1 * np.eye(n)


def test_cg_solves_a_numpy_system_in_n_steps():
    rng = np.random.default_rng(0)
    A = _spd(12, rng)
    b = rng.standard_normal(12)
    result = conjugate_gradient(lambda v: A @ v, b, iters=40)
    assert not result.breakdown
    np.testing.assert_allclose(result.iterates[-1][1], np.linalg.solve(A, -b), rtol=1e-8)
    # a warm start at the solution: the first iterate is the solution
    again = conjugate_gradient(lambda v: A @ v, b, result.iterates[-1][1], iters=1)
    np.testing.assert_allclose(again.iterates[0][1], np.linalg.solve(A, -b), rtol=1e-8)


def test_cg_stops_at_non_positive_curvature():
    A = np.diag([1.0, -1.0])
    result = conjugate_gradient(lambda v: A @ v, np.array([1.0, 1.0]), iters=10)
    assert result.breakdown
    # the first direction (the residual, -b) has curvature 1 - 1 = 0: no iterate at all
    assert result.iterates == []


def test_cg_phi_decreases_over_the_stored_iterates():
    rng = np.random.default_rng(1)
    A = _spd(30, rng)
    b = rng.standard_normal(30)
    iterates = conjugate_gradient(lambda v: A @ v, b, iters=30).iterates
    phis = [0.5 * x @ A @ x + b @ x for _, x in iterates]
    assert all(later <= earlier + 1e-12 for earlier, later in zip(phis, phis[1:], strict=False))
    assert [i for i, _ in iterates][:5] == [1, 2, 3, 4, 6]


def test_cg_argument_checks():
    with pytest.raises(ValueError, match="grad must be a 1-D vector"):
        conjugate_gradient(lambda v: v, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="init_delta must have the shape of grad"):
        conjugate_gradient(lambda v: v, np.zeros(3), np.zeros(2))


def test_a_model_that_is_not_a_network_is_trained_by_hessian_free():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 6))
    w_true = rng.standard_normal(6)
    y = X @ w_true
    model = LeastSquares(6, rng)
    assert isinstance(model, Model) and check_model(model) is model
    result = train(model, hf.opt.HessianFree(CG_iter=50, init_damping=1e-3),
                   lambda k: (X, y), updates=5, progress=False)
    # Gauss-Newton is the exact Hessian here: a few Newton steps solve it
    np.testing.assert_allclose(model.W, w_true, atol=1e-6)
    assert result.history["test_err"][-1] < 1e-12


def test_sgd_trains_the_same_model_on_random_minibatches():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0])
    model = LeastSquares(4, rng)

    def batches(k):
        idx = model.rng.choice(500, size=50, replace=False)
        return X[idx], y[idx]

    result = train(model, hf.opt.SGD(l_rate=0.3), batches, updates=200, progress=False,
                   evaluate=lambda: float(np.mean((X @ model.W - y) ** 2)) / 2)
    np.testing.assert_allclose(model.W, [1.0, -2.0, 0.5, 3.0], atol=1e-3)
    assert len(result.history["epoch"]) == 200


def test_check_model_names_what_is_missing():
    class NoCurvature:
        W = np.zeros(3)
        mask = None

        def cache_minibatch(self):
            pass

        def error(self, W=None):
            return 0.0

        def calc_grad(self):
            return np.zeros(3)

    with pytest.raises(TypeError, match="lacks calc_G"):
        check_model(NoCurvature())
    with pytest.raises(TypeError, match="lacks calc_G"):
        train(NoCurvature(), hf.opt.SGD(), lambda k: (), updates=1, progress=False)
