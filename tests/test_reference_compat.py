"""Behaviours a user of the ``hessianfree`` reference package relies on.

Each test is written the way code for the reference is written (``import ... as hf``,
``rng=np.random.RandomState(0)``, ``use_GPU=False``, ``run_epochs(..., print_period=None)``
and assertions on ``net.loss.batch_loss``), with only the import changed; finite-difference
checks back up the user nonlinearities with non-symmetric Jacobians and the per-unit time
constants of ``Continuous``.
"""

import json

import numpy as np
import pytest

import hfcontrol as hf
from hfcontrol import demos
from hfcontrol.nonlinearities import Continuous, Linear, Logistic, Tanh
from hfcontrol.optimizers import HessianFree

XOR_IN = np.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_OUT = np.asarray([[0], [1], [1], [0]], dtype=np.float32)


def integrator_data(n_inputs=3, sig_len=5):
    inputs = np.outer(np.linspace(0.1, 0.9, n_inputs), np.ones(sig_len))[:, :, None]
    targets = np.outer(np.linspace(0.1, 0.9, n_inputs), np.linspace(0, 1, sig_len))[:, :, None]
    return inputs.astype(np.float32), targets.astype(np.float32)


# ---------------------------------------------------------------- 1. rng=RandomState
def test_randomstate_rng_is_accepted_and_reproducible():
    ff = hf.FFNet([2, 5, 1], rng=np.random.RandomState(0))
    again = hf.FFNet([2, 5, 1], rng=np.random.RandomState(0))
    other = hf.FFNet([2, 5, 1], rng=np.random.RandomState(1))
    np.testing.assert_array_equal(ff.W, again.W)
    assert not np.array_equal(ff.W, other.W)

    rnn = hf.RNNet([2, 5, 1], rng=np.random.RandomState(0))
    np.testing.assert_array_equal(rnn.W, hf.RNNet([2, 5, 1], rng=np.random.RandomState(0)).W)


def test_randomstate_stream_is_shared_with_the_network():
    rs = np.random.RandomState(0)
    first = np.random.RandomState(0).random_sample()
    hf.FFNet([2, 5, 1], rng=rs)
    # the network drew from the RandomState's own bit generator, which moved on
    assert rs.random_sample() != first
    # the same seed gives the same stream after building the same network
    rs_a, rs_b = np.random.RandomState(3), np.random.RandomState(3)
    hf.FFNet([2, 5, 1], rng=rs_a)
    hf.FFNet([2, 5, 1], rng=rs_b)
    assert rs_a.random_sample() == rs_b.random_sample()


def test_xor_trains_with_a_randomstate():
    ff = hf.FFNet([2, 5, 1], rng=np.random.RandomState(0))
    ff.run_epochs(XOR_IN, XOR_OUT, optimizer=hf.opt.HessianFree(CG_iter=2), max_epochs=40,
                  print_period=None)
    assert ff.loss.batch_loss(ff.forward(XOR_IN, ff.W), XOR_OUT) < 1e-4


@pytest.mark.parametrize("bad", [1.5, "0", True, [0], np.random])
def test_other_rng_values_are_a_type_error(bad):
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, a numpy.random."
                                        "RandomState, an int seed or None"):
        hf.FFNet([2, 5, 1], rng=bad)


def test_generator_seed_and_none_still_work():
    gen = np.random.default_rng(4)
    assert hf.FFNet([2, 5, 1], rng=gen).rng is gen
    np.testing.assert_array_equal(hf.FFNet([2, 5, 1], rng=4).W,
                                  hf.FFNet([2, 5, 1], rng=np.int64(4)).W)
    assert isinstance(hf.FFNet([2, 5, 1], rng=None).rng, np.random.Generator)


# ---------------------------------------------------------------- 2. use_GPU
def test_use_gpu_false_is_accepted():
    ff = hf.FFNet([2, 5, 1], debug=False, use_GPU=False, rng=np.random.RandomState(0))
    ff.run_epochs(XOR_IN, XOR_OUT, optimizer=hf.opt.HessianFree(CG_iter=2), max_epochs=40,
                  print_period=None)
    assert ff.loss.batch_loss(ff.forward(XOR_IN, ff.W), XOR_OUT) < 1e-4

    inputs, targets = integrator_data()
    rnn = hf.RNNet(shape=[1, 5, 1], use_GPU=False, rng=np.random.RandomState(0))
    rnn.run_epochs(inputs, targets, optimizer=HessianFree(CG_iter=100), max_epochs=30,
                   print_period=None)
    assert rnn.loss.batch_loss(rnn.forward(inputs, rnn.W), targets) < 1e-3


@pytest.mark.parametrize("cls", [hf.FFNet, hf.RNNet])
def test_use_gpu_true_is_a_clear_error(cls):
    with pytest.raises(ValueError, match="use_GPU=True: hfcontrol has no GPU path"):
        cls([2, 5, 1], use_GPU=True)


# ---------------------------------------------------------------- 3. non-symmetric Jacobians
class Roll(hf.nl.Nonlinearity):
    """The reference's own test nonlinearity: it declares nothing about its Jacobian."""

    def activation(self, x):
        return np.roll(x, 1, axis=-1)

    def d_activation(self, x, _):
        d_act = np.roll(np.eye(x.shape[-1], dtype=x.dtype), 1, axis=0)
        return np.resize(d_act, np.concatenate((x.shape[:-1], d_act.shape)))


class ScaledRollTanh(hf.nl.Nonlinearity):
    """``a_i = (i + 1) tanh(x_{i-1})``: a non-symmetric Jacobian ``[..., output, input]``."""

    elementwise = False

    def activation(self, x):
        return np.arange(1, x.shape[-1] + 1) * np.tanh(np.roll(x, 1, axis=-1))

    def d_activation(self, x, a):
        n = x.shape[-1]
        slope = np.arange(1, n + 1) * (1 - np.tanh(np.roll(x, 1, axis=-1)) ** 2)
        return slope[..., :, None] * np.roll(np.eye(n), 1, axis=0)


class TransposedJacobian(ScaledRollTanh):
    """The same function with its Jacobian in the other layout ``[..., input, output]``."""

    def d_activation(self, x, a):
        return np.swapaxes(super().d_activation(x, a), -1, -2)


class RolledLeak(hf.nl.Nonlinearity):
    """Stateful, with full non-symmetric Jacobians: ``s' = 0.5 s + 0.5 P x``, ``a = Q tanh(s')``
    for two different permutation-and-scale matrices ``P`` and ``Q`` (and ``ds'/ds`` diagonal)."""

    elementwise = False

    def __init__(self):
        super().__init__(stateful=True)
        self.state = None

    @staticmethod
    def _p(n):
        return np.roll(np.eye(n), 1, axis=0) * np.arange(1, n + 1)[:, None]

    @staticmethod
    def _q(n):
        return np.roll(np.eye(n), -1, axis=0) + 0.3 * np.triu(np.ones((n, n)), 1)

    def reset(self, init=None):
        self.state = None if init is None else init.copy()

    def activation(self, x):
        n = x.shape[-1]
        if self.state is None:
            self.state = np.zeros_like(x)
        self.state = 0.5 * self.state + 0.5 * x @ self._p(n).T
        return np.tanh(self.state) @ self._q(n).T

    def d_activation(self, x, a):
        n = x.shape[-1]
        out = np.zeros(x.shape + (n, 3))
        out[..., 0] = 0.5 * self._p(n)
        out[..., 1] = 0.5 * np.eye(n)
        out[..., 2] = self._q(n) * (1 - np.tanh(self.state) ** 2)[..., None, :]
        return out


# A network of Roll layers is linear and cannot fit XOR: near its optimum the gradient
# vanishes and debug's relative finite-difference error says nothing (the checks at a
# generic point are in test_non_symmetric_jacobian_matches_finite_differences).
@pytest.mark.filterwarnings("ignore:debug. gradient error")
def test_asym_dact_ffnet_trains():
    ff = hf.FFNet([2, 5, 1], layers=Roll(), debug=True, use_GPU=False, dtype=np.float64)
    ff.run_epochs(XOR_IN, XOR_OUT, optimizer=hf.opt.HessianFree(CG_iter=2), max_epochs=40,
                  print_period=None)
    assert np.all(np.isfinite(ff.W))


@pytest.mark.filterwarnings("error")  # debug=True warns if a check against finite differences fails
def test_asym_dact_rnnet_trains():
    inputs, targets = integrator_data()
    rnn = hf.RNNet(shape=[1, 5, 1], layers=Roll(), debug=True, use_GPU=False, dtype=np.float64)
    rnn.run_epochs(inputs, targets, optimizer=HessianFree(CG_iter=100), max_epochs=30,
                   print_period=None)
    assert np.all(np.isfinite(rnn.W))


@pytest.mark.parametrize("layer", [Roll, ScaledRollTanh])
def test_non_symmetric_jacobian_matches_finite_differences(layer):
    rng = np.random.RandomState(0)
    ff = hf.FFNet([3, 4, 2], layers=[Linear(), layer(), Tanh()], dtype=np.float64, rng=rng)
    assert ff.check_grad(rng.randn(6, 3), rng.randn(6, 2)) < 1e-6
    assert ff.check_G() < 1e-6

    rnn = hf.RNNet([2, 4, 2], layers=[Linear(), layer(), Tanh()], dtype=np.float64, rng=rng)
    assert rnn.check_grad(rng.randn(3, 5, 2), rng.randn(3, 5, 2)) < 1e-6
    assert rnn.check_G() < 1e-6


def test_stateful_full_jacobians_match_finite_differences():
    rng = np.random.RandomState(1)
    rnn = hf.RNNet([2, 4, 2], layers=[Linear(), RolledLeak(), Tanh()], dtype=np.float64,
                   rng=rng)
    assert rnn.check_grad(rng.randn(3, 6, 2), rng.randn(3, 6, 2)) < 1e-6
    assert rnn.check_G() < 1e-6
    rnn.truncation = (2, 3)
    assert rnn.check_grad() < 1e-6
    assert rnn.check_G() < 1e-6


def test_the_jacobian_layout_is_output_then_input():
    # the transposed layout describes another function: the gradient no longer matches
    rng = np.random.RandomState(2)
    ff = hf.FFNet([3, 4, 2], layers=[Linear(), TransposedJacobian(), Tanh()], dtype=np.float64,
                  rng=rng)
    assert ff.check_grad(rng.randn(6, 3), rng.randn(6, 2)) > 1e-2


def test_a_jacobian_of_the_wrong_shape_is_a_clear_error():
    class Bad(hf.nl.Nonlinearity):
        def activation(self, x):
            return x

        def d_activation(self, x, a):
            return np.ones(x.shape + (2,))

    ff = hf.FFNet([2, 3, 1], layers=[Linear(), Bad(), Linear()], dtype=np.float64)
    ff.cache_minibatch(XOR_IN, XOR_OUT)
    with pytest.raises(ValueError, match=r"d_activation of .*Bad.* returned shape \(4, 3, 2\)"):
        ff.calc_grad()


# ---------------------------------------------------------------- 4. per-unit tau
def test_continuous_with_per_unit_tau_trains():
    inputs, targets = integrator_data()
    nl = Continuous(Logistic(), tau=np.random.RandomState(0).uniform(1, 3, size=5), dt=0.9)
    rnn = hf.RNNet(shape=[1, 5, 1], layers=[Linear(), nl, Logistic()], use_GPU=False,
                   rng=np.random.RandomState(0))
    assert rnn.backend == "numba"  # the compiled kernels take per-unit coefficients
    rnn.run_epochs(inputs, targets, optimizer=HessianFree(CG_iter=100), max_epochs=30,
                   print_period=None)
    assert rnn.loss.batch_loss(rnn.forward(inputs, rnn.W), targets) < 1e-3
    compiled = rnn.forward(inputs)[-1]
    rnn.backend = "numpy"
    np.testing.assert_allclose(rnn.forward(inputs)[-1], compiled, rtol=1e-5, atol=1e-6)


def test_per_unit_tau_matches_finite_differences():
    rng = np.random.RandomState(3)
    tau = np.array([1.0, 2.0, 5.0, 10.0])
    rnn = hf.RNNet([2, 4, 2], layers=[Linear(), Continuous(Tanh(), tau=tau, dt=1.0), Tanh()],
                   dtype=np.float64, rng=rng)
    assert rnn.check_grad(rng.randn(3, 6, 2), rng.randn(3, 6, 2)) < 1e-6
    assert rnn.check_G() < 1e-6


def test_units_with_different_tau_filter_as_the_formula_says():
    tau, dt = np.array([1.0, 2.0, 4.0, 8.0]), 0.5
    layer = Continuous(Linear(), tau=tau, dt=dt)
    np.testing.assert_allclose(layer.coeff, dt / tau)
    steps = np.arange(1, 11)
    out = np.stack([layer.activation(np.ones((1, 4)))[0] for _ in steps])
    # a unit step filtered by s_t = s_{t-1} + dt / tau (x - s_{t-1}) from s_0 = 0
    np.testing.assert_allclose(out, 1 - (1 - dt / tau) ** steps[:, None])
    assert out[0, 0] > out[0, 1] > out[0, 2] > out[0, 3]

    # in a network: a unit driven only by the input, one time constant per unit
    rnn = hf.RNNet([1, 4, 1], layers=[Linear(), Continuous(Linear(), tau=tau, dt=dt), Linear()],
                   rec_layers=[], dtype=np.float64)
    w, b = rnn.get_weights(rnn.W, (0, 1))
    w[:], b[:] = 1, 0
    hidden = rnn.forward(np.ones((1, 10, 1)))[1][0]
    np.testing.assert_allclose(hidden, 1 - (1 - dt / tau) ** steps[:, None])


def test_scalar_tau_is_unchanged():
    layer = Continuous(Tanh(), tau=4, dt=2)
    assert type(layer.tau) is float and type(layer.coeff) is float and layer.coeff == 0.5
    assert layer.get_config() == {"base": {"type": "Tanh", "config": {}}, "tau": 4.0, "dt": 2.0}
    rnn = hf.RNNet([1, 3, 1], layers=[Linear(), layer, Linear()])
    assert rnn.backend == "numba"


def test_per_unit_tau_saves_and_loads(tmp_path):
    tau = [1.0, 1.5, 3.0]
    rnn = hf.RNNet([1, 3, 1], layers=[Linear(), Continuous(Tanh(), tau=tau, dt=1.0), Linear()],
                   rng=np.random.RandomState(0))
    config = rnn.layers[1].get_config()
    assert json.loads(json.dumps(config))["tau"] == tau
    rnn.save(tmp_path / "net.npz")
    loaded = hf.RNNet.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(loaded.layers[1].tau, tau)
    np.testing.assert_array_equal(loaded.layers[1].coeff, 1 / np.array(tau))
    inputs, _ = integrator_data(2, 4)
    np.testing.assert_array_equal(loaded.forward(inputs)[-1], rnn.forward(inputs)[-1])


def test_tau_length_must_match_the_layer():
    with pytest.raises(ValueError, match=r"layers\[1\]: Continuous tau has 3 per-unit time "
                                         r"constants but layer 1 has 5 units"):
        hf.RNNet([1, 5, 1], layers=[Linear(), Continuous(Tanh(), tau=[1, 2, 3]), Linear()])
    layer = Continuous(Tanh(), tau=[1, 2, 3])
    with pytest.raises(ValueError, match="tau has 3 per-unit time constants but the layer input "
                                         "has 5 units"):
        layer.activation(np.zeros((2, 5)))


@pytest.mark.parametrize("tau, message", [
    ([[1.0, 2.0]], "1-D array"),
    ([], "1-D array"),
    ([2.0, 0.5], r"tau\[1\] = 0.5"),
    ([2.0, np.inf], r"tau\[1\] = inf"),
    ([np.nan], r"tau\[0\] = nan"),
    ([-1.0, 2.0], r"tau\[0\] = -1.0"),
])
def test_bad_per_unit_tau_is_a_clear_error(tau, message):
    with pytest.raises(ValueError, match=f"Continuous: .*tau.*{message}|{message}"):
        Continuous(Tanh(), tau=tau, dt=1.0)


# ---------------------------------------------------------------- 5. demos
def test_standard_demos_run(capsys):
    # the reference's own smoke test of its demos, import changed
    demos.xor()
    demos.crossentropy()
    demos.connections()
    demos.integrator(plots=False)
    demos.plant(plots=False)
    stats = demos.profile("integrator", max_epochs=2)
    assert stats.total_calls > 0
    assert "function calls" in capsys.readouterr().out


def test_demo_results():
    _, _, metrics = demos.xor(print_period=None)
    assert metrics["final_error"] < 1e-3
    _, history, metrics = demos.integrator(plots=False, print_period=None)
    assert metrics["final_error"] < 0.05 * metrics["error_of_zero_output"]
    _, _, metrics = demos.integrator(run_args={"max_epochs": 2, "CG_iter": 5}, plots=False,
                                     model_args={"shape": [1, 4, 1]}, print_period=None)
    assert np.isfinite(metrics["final_error"])


def test_adding_demo_runs_and_plots(tmp_path):
    net, history, metrics = demos.adding(T=10, plots=True, out=tmp_path, n_sequences=500,
                                         epochs=2, print_period=None)
    assert len(history["epoch"]) == 2
    assert set(metrics) >= {"test_error", "error_of_constant_output", "test_fraction_within_0.04"}
    for name in ("history.png", "signals.png"):
        assert (tmp_path / "adding" / name).read_bytes()[:4] == b"\x89PNG"
    inputs, targets = demos.adding_problem(20, 10, np.random.RandomState(0))
    assert inputs.shape == (20, 10, 2) and np.all(inputs[..., 1].sum(axis=1) == 2)
    marked = (inputs[..., 0] * inputs[..., 1]).sum(axis=1)
    np.testing.assert_allclose(targets[:, -1, 0], marked, rtol=1e-6)
    assert np.all(np.isnan(targets[:, :-1]))
    with pytest.raises(ValueError, match="T must be at least 10"):
        demos.adding(T=5)


def test_plots_are_written_when_asked(tmp_path):
    demos.plant(plots=True, out=tmp_path, epochs=1, print_period=None)
    demos.integrator(plots=True, out=tmp_path, epochs=1, print_period=None)
    assert (tmp_path / "plant" / "trajectories.png").stat().st_size > 0
    assert (tmp_path / "integrator" / "signals.png").stat().st_size > 0


def test_adding_is_on_the_command_line(tmp_path):
    metrics = demos.run("adding", out=tmp_path, seed=0, epochs=1, print_period=None)
    assert metrics["updates"] == 1 and metrics["T"] == 50
    loaded = hf.RNNet.load(tmp_path / "adding" / "net.npz")
    assert isinstance(loaded.layers[2], Continuous) and loaded.layers[2].tau == 20.0


def test_profile_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="unknown demo 'mnist'"):
        demos.profile("mnist")
    with pytest.raises(ValueError, match="use_GPU=True"):
        demos.profile("xor", use_GPU=True)


# ---------------------------------------------------------------- run_epochs and CG as in the reference
def test_run_epochs_keeps_the_final_weights_and_the_best_aside():
    rng = np.random.RandomState(0)
    ff = hf.FFNet([2, 5, 1], rng=rng)
    ff.run_epochs(XOR_IN, XOR_OUT, optimizer=hf.opt.HessianFree(CG_iter=2), max_epochs=40,
                  test=(XOR_IN, XOR_OUT), test_err=hf.loss_funcs.ClassificationError(),
                  target_err=-1, print_period=None)
    # the classification error reaches zero early, but training goes on to a low loss: W is
    # the final weights, best_W the first with the lowest classification error
    assert ff.loss.batch_loss(ff.forward(XOR_IN, ff.W), XOR_OUT) < 1e-4
    assert ff.best_error == 0
    assert ff.loss.batch_loss(ff.forward(XOR_IN, ff.best_W), XOR_OUT) > \
        ff.loss.batch_loss(ff.forward(XOR_IN, ff.W), XOR_OUT)


def test_conjugate_gradient_takes_the_reference_arguments(capsys):
    ff = hf.FFNet([2, 5, 1], rng=np.random.RandomState(0), dtype=np.float64)
    opt = hf.opt.HessianFree(CG_iter=20)
    ff.optimizer = opt
    ff.cache_minibatch(XOR_IN, XOR_OUT)
    grad = ff.calc_grad()
    deltas = opt.conjugate_gradient(np.zeros_like(ff.W), grad, iters=20, printing=False)
    assert capsys.readouterr().out == ""
    assert deltas[-1][0] <= 20
    # a descent direction that lowers the quadratic model
    delta = deltas[-1][1]
    assert grad @ delta < 0
    opt.conjugate_gradient(np.zeros_like(ff.W), grad, iters=20, printing=True)
    assert "CG:" in capsys.readouterr().out
