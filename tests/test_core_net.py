"""Network construction, bad input, persistence, training loop, plotting and demos."""

import json

import numpy as np
import pytest

import hfcontrol as hf
import plants
from hfcontrol import demos
from hfcontrol import loss_funcs as lf
from hfcontrol import nonlinearities as nl
from hfcontrol.plotting import plot_history


def test_default_layers_shapes_and_views():
    net = hf.FFNet([3, 4, 2], rng=0)
    assert isinstance(net.layers[0], nl.Linear) and isinstance(net.layers[1], nl.Logistic)
    assert net.W.dtype == np.float32 and net.n_params == 3 * 4 + 4 + 4 * 2 + 2
    w, b = net.get_weights(net.W, (0, 1))
    assert w.shape == (3, 4) and b.shape == (4,)
    w[0, 0] = 123.0
    assert net.W[0] == 123.0  # a view, not a copy
    acts = net.forward(np.zeros((5, 3), np.float32))
    assert [a.shape for a in acts] == [(5, 3), (5, 4), (5, 2)]


def test_sparse_init_gives_fifteen_incoming_weights_per_unit():
    net = hf.FFNet([40, 30, 5], rng=1)
    w, b = net.get_weights(net.W, (0, 1))
    assert np.all(np.count_nonzero(w, axis=0) == 15)
    assert np.all(np.count_nonzero(net.get_weights(net.W, (1, 2))[0], axis=0) == 15)
    assert np.all(b == 0)
    net = hf.FFNet([40, 30, 5], rng=1, W_init_params={"init_type": "uniform", "coeff": 2.0,
                                                     "biases": 0.5})
    w, b = net.get_weights(net.W, (0, 1))
    assert np.all(np.abs(w) <= 2.0 / np.sqrt(40)) and np.all(b == 0.5)


def test_same_seed_same_weights():
    np.testing.assert_array_equal(hf.RNNet([2, 8, 2], rng=5).W, hf.RNNet([2, 8, 2], rng=5).W)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(shape=[2, 3], layers=["Linear", "Tanh", "Tanh"]), ValueError, "one nonlinearity per layer"),
    (dict(shape=[2, 3, 1], conns={0: [1], 2: [1], 1: [2]}), ValueError, "backward"),
    (dict(shape=[2, 3, 1], conns={0: [1]}), ValueError, "receives no connection"),
    (dict(shape=[2, 0, 1]), ValueError, "positive integers"),
    (dict(shape=[2]), ValueError, "at least an input and an output"),
    (dict(shape=[2, 3], dtype=np.int32), TypeError, "float32 or float64"),
    (dict(shape=[2, 3], layers=["Linear", nl.Continuous("Tanh")]), ValueError, "RNNet"),
    (dict(shape=[2, 3], W_init_params={"kind": "sparse"}), ValueError, "unknown keys"),
    (dict(shape=[2, 3], loss_type="Squared"), ValueError, "unknown loss"),
])
def test_bad_construction_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        hf.FFNet(**kwargs)


def test_bad_data_raises_naming_the_argument():
    net = hf.FFNet([2, 3, 1], rng=0)
    with pytest.raises(ValueError, match="inputs must have 2 units"):
        net.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"inputs must have shape \[batch, units\]"):
        net.forward(np.zeros(2))
    with pytest.raises(ValueError, match="targets must have 1 units"):
        net.cache_minibatch(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="targets must have batch size 4"):
        net.cache_minibatch(np.zeros((4, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="inputs contains NaN"):
        net.forward(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="targets contains infinite"):
        net.cache_minibatch(np.zeros((1, 2)), np.array([[np.inf]]))
    with pytest.raises(TypeError, match="params must have dtype float32"):
        net.forward(np.zeros((1, 2)), params=net.W.astype(np.float64))
    rnn = hf.RNNet([2, 3, 1], truncation=(2, 5), rng=0)
    with pytest.raises(ValueError, match="truncation: k = 5 steps .* longer than the sequence"):
        rnn.cache_minibatch(np.zeros((2, 4, 2)), np.zeros((2, 4, 1)))
    assert rnn.forward(np.zeros((2, 4, 2)))[-1].shape == (2, 4, 1)  # evaluation is fine
    with pytest.raises(ValueError, match=r"\[batch, time, units\]"):
        rnn.forward(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="targets must have 4 time steps"):
        hf.RNNet([2, 3, 1], rng=0).cache_minibatch(np.zeros((2, 4, 2)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match=r"truncation \(n, k\) needs 1 <= n <= k"):
        hf.RNNet([2, 3, 1], truncation=(3, 2))
    with pytest.raises(ValueError, match=r"truncation \(n, k\) needs 1 <= n <= k"):
        hf.RNNet([2, 3, 1], truncation=(0, 2))
    with pytest.raises(TypeError, match="truncation must be a pair"):
        hf.RNNet([2, 3, 1], truncation=(1.5, 2))
    with pytest.raises(ValueError, match="needs 1 <= n <= k"):  # checked when set later too
        hf.RNNet([2, 3, 1], rng=0).truncation = (4, 2)


def test_loaded_weights_of_wrong_length_or_dtype_raise(tmp_path):
    net = hf.FFNet([2, 3, 1], rng=0)
    with pytest.raises(ValueError, match="load_weights must be a vector of length 13"):
        hf.FFNet([2, 3, 1], load_weights=np.zeros(12, np.float32))
    with pytest.raises(TypeError, match="load_weights must have dtype float32"):
        hf.FFNet([2, 3, 1], load_weights=net.W.astype(np.float64))
    net.save(tmp_path / "net.npz")
    with pytest.raises(ValueError, match="load_weights must be a vector of length"):
        hf.FFNet([2, 4, 1], load_weights=tmp_path / "net.npz")


@pytest.mark.parametrize("make", [
    lambda: hf.FFNet([3, 5, 4, 2], layers=["Linear", nl.SoftLIF(sigma=0.5), "Tanh", "Softmax"],
                     conns={0: [1, 3], 1: [2], 2: [3]},
                     loss_type=[lf.CrossEntropy(), lf.SparseL1(0.1, layers=[1])], rng=0),
    lambda: hf.RNNet([3, 5, 2], layers=["Linear", nl.Continuous(nl.ReLU(max=5), tau=2.0), "Linear"],
                     truncation=(2, 4), dtype=np.float64, rng=0),
])
def test_save_load_round_trip_gives_identical_outputs(tmp_path, make):
    net = make()
    mask = np.ones(net.n_params, bool)
    mask[::3] = False
    net.set_mask(mask)
    x = np.random.default_rng(0).standard_normal((4, 6, 3) if isinstance(net, hf.RNNet) else (4, 3))
    net.save(tmp_path / "net.npz")
    loaded = hf.FFNet.load(tmp_path / "net.npz")
    assert type(loaded) is type(net) and loaded.shape == net.shape
    np.testing.assert_array_equal(loaded.W, net.W)
    np.testing.assert_array_equal(loaded.mask, net.mask)
    for a, b in zip(net.forward(x), loaded.forward(x), strict=True):
        np.testing.assert_array_equal(a, b)
    with np.load(tmp_path / "net.npz", allow_pickle=False) as data:
        json.loads(str(data["config"]))


def test_custom_nonlinearity_cannot_be_saved(tmp_path):
    class Cube(nl.Nonlinearity):
        def activation(self, x):
            return x ** 3

        def d_activation(self, x, a):
            return 3 * x ** 2

    net = hf.FFNet([2, 3, 1], layers=["Linear", Cube(), "Linear"], dtype=np.float64, rng=0)
    net.cache_minibatch(np.ones((2, 2)), np.ones((2, 1)))
    assert net.check_grad() < 1e-5  # custom nonlinearities run on the reference path
    with pytest.raises(TypeError, match="cannot save custom nonlinearity"):
        net.save(tmp_path / "net.npz")


def test_mask_freezes_parameters_during_training():
    net = hf.FFNet([2, 5, 1], layers=["Linear", "Tanh", "Logistic"], rng=0)
    mask = np.ones(net.n_params, bool)
    mask[: net.offsets[(0, 1)][2]] = False
    net.set_mask(mask)
    w0 = net.W.copy()
    net.run_epochs(demos.XOR_INPUTS, demos.XOR_TARGETS, hf.opt.HessianFree(), max_epochs=5,
                   print_period=None)
    np.testing.assert_array_equal(net.W[~mask], w0[~mask])
    assert not np.array_equal(net.W[mask], w0[mask])
    with pytest.raises(ValueError, match="mask must be a boolean vector"):
        net.set_mask(np.ones(3, bool))


def test_run_epochs_history_best_weights_and_outputs(tmp_path):
    net = hf.FFNet([2, 5, 1], layers=["Linear", "Tanh", "Logistic"], rng=0)
    history = net.run_epochs(demos.XOR_INPUTS, demos.XOR_TARGETS, hf.opt.HessianFree(),
                             max_epochs=6, test=(demos.XOR_INPUTS, demos.XOR_TARGETS),
                             test_err=lf.ClassificationError(), plotting=True,
                             file_output=tmp_path / "xor", print_period=None, target_err=-1)
    assert set(history) == {"epoch", "train_err", "test_err", "damping", "cg_iters", "l_rate",
                            "time"}
    assert all(len(v) == 6 for v in history.values())
    assert np.all(np.diff(history["time"]) >= 0)
    initial = lf.ClassificationError().batch_loss(
        hf.FFNet([2, 5, 1], layers=["Linear", "Tanh", "Logistic"], rng=0).forward(
            demos.XOR_INPUTS), demos.XOR_TARGETS)
    assert net.best_error == min([initial] + history["test_err"])
    for name in ("xor.npz", "xor_history.json", "xor_history.png"):
        assert (tmp_path / name).stat().st_size > 0
    with pytest.raises(ValueError, match="minibatch_size"):
        net.run_epochs(demos.XOR_INPUTS, demos.XOR_TARGETS, hf.opt.SGD(), minibatch_size=10)


def test_minibatches_are_drawn_from_the_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2, 1)).astype(np.float32)
    y = x.copy()
    net = hf.RNNet([1, 4, 1], layers=["Linear", "Tanh", "Linear"], rng=1)
    history = net.run_epochs(x, y, hf.opt.HessianFree(CG_iter=20), max_epochs=4,
                             minibatch_size=10, print_period=None)
    assert net.inputs.shape == (10, 2, 1) and len(history["epoch"]) == 4


def test_plot_history_writes_a_png(tmp_path):
    history = {"train_err": [1.0, 0.1], "test_err": [1.2, 0.2], "damping": [1.0, 0.6],
               "cg_iters": [3, 5], "l_rate": [1.0, 1.0]}
    plot_history(history, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="train_err"):
        plot_history({"test_err": []}, tmp_path / "x.png")


@pytest.mark.parametrize("name", ["xor", "crossentropy", "connections", "integrator"])
def test_demos_run_and_write_their_outputs(tmp_path, name):
    metrics = demos.run(name, out=tmp_path, seed=0, epochs=3, print_period=None)
    assert metrics["updates"] == 3
    for file in ("history.png", "metrics.json", "history.json", "net.npz"):
        assert (tmp_path / name / file).stat().st_size > 0
    loaded = hf.FFNet.load(tmp_path / name / "net.npz")
    if name in ("xor", "connections"):  # the saved network reproduces the reported error
        assert loaded.error(inputs=demos.XOR_INPUTS, targets=demos.XOR_TARGETS) == \
            metrics["final_error"]


def test_demo_cli_rejects_unknown_names():
    with pytest.raises(SystemExit):
        demos.main(["nope"])


def test_a_single_stateful_nonlinearity_is_copied_per_layer():
    shared = hf.RNNet([2, 4, 4, 4], layers=nl.Continuous("Tanh", tau=2.0), rng=3)
    assert len({id(layer) for layer in shared.layers}) == 4
    separate = hf.RNNet([2, 4, 4, 4], layers=["Linear"] + [nl.Continuous("Tanh", tau=2.0)
                                                          for _ in range(3)], rng=3)
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    np.testing.assert_array_equal(shared.forward(x)[-1], separate.forward(x)[-1])
    cont = nl.Continuous("Tanh")
    with pytest.raises(ValueError, match="same stateful Continuous object"):
        hf.RNNet([2, 4, 4, 1], layers=["Linear", cont, cont, "Linear"])
    with pytest.raises(ValueError, match="need a recurrent network"):
        hf.FFNet([2, 3, 1], layers=nl.Continuous("Tanh"))


def test_cached_minibatch_does_not_follow_later_edits_of_the_callers_arrays():
    net = hf.FFNet([2, 3, 1], rng=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 2))
    y = np.zeros((5, 1))
    net.cache_minibatch(x, y)
    before = net.error()
    x += 1.0
    y += 1.0
    assert net.error() == before
    assert net.error(net.W.copy()) == pytest.approx(before, rel=1e-12)
    rnn = hf.RNNet([2, 3, 1], rng=0, dtype=np.float64)
    xs = np.random.default_rng(1).standard_normal((4, 5, 2))
    ys = np.zeros((4, 5, 1))
    init = np.ones((4, 3))
    rnn.cache_minibatch(xs, ys, init_activations=[None, init, None])
    grad, err = rnn.calc_grad(), rnn.error(rnn.W.copy())
    xs += 1.0
    init += 1.0
    np.testing.assert_array_equal(rnn.calc_grad(), grad)
    assert rnn.error(rnn.W.copy()) == err


def test_more_bad_arguments():
    with pytest.raises(ValueError, match="load_weights contains NaN"):
        hf.FFNet([2, 3, 1], load_weights=np.full(13, np.nan, np.float32))
    with pytest.raises(TypeError, match=r"conns\[0\] must be a list"):
        hf.FFNet([2, 3, 1], conns={0: 1, 1: [2]})
    with pytest.warns(UserWarning, match="float64"):
        hf.FFNet([2, 3, 1], debug=True)
    with pytest.raises(ValueError, match="CG_iter must be a positive integer"):
        hf.opt.HessianFree(CG_iter=float("nan"))


def test_loaded_structural_damping_follows_the_next_optimiser(tmp_path):
    opt = hf.opt.HessianFree(init_damping=5.0)
    sd = lf.StructuralDamping(0.5, optimizer=opt)
    net = hf.RNNet([2, 3, 1], loss_type=[lf.SquaredError(), sd], rng=0)
    assert sd.scale == 2.5
    net.save(tmp_path / "net.npz")
    loaded = hf.FFNet.load(tmp_path / "net.npz")
    loaded_sd = loaded.loss.set[1]
    new_opt = hf.opt.HessianFree(init_damping=3.0)
    loaded.optimizer = new_opt
    assert loaded_sd.optimizer is new_opt and loaded_sd.scale == 1.5


def test_compiled_path_follows_changed_layer_and_loss_settings_and_odd_vectors():
    for backend in ("numba", "numpy"):
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
        sparse = lf.SparseL2(0.1)
        net = hf.FFNet([3, 4, 2], layers=["Linear", nl.ReLU(max=1), "Linear"],
                       loss_type=[lf.SquaredError(), sparse], dtype=np.float64, rng=1)
        net.backend = backend
        net.layers[1].max = np.float64(0.25)  # not a Python float
        net.cache_minibatch(x, y)
        assert net.check_grad() < 1e-5
        v = rng.standard_normal(net.n_params)
        net.calc_G(v)
        sparse.weight = 3.0
        assert net.check_G(v) < 1e-5
        history = np.stack([net.W, net.W + 0.1], axis=1)  # columns are strided vectors
        assert np.isfinite(net.error(history[:, 1]))
        assert np.all(np.isfinite(net.calc_G(history[:, 1])))
    net.W = net.W.astype(np.float32)
    with pytest.raises(TypeError, match="W must have dtype float64"):
        net.forward(x)


def _incoming_nonzeros(net, post, conns):
    """Non-zero incoming weights of every unit of layer ``post`` over ``conns``."""
    return sum(np.count_nonzero(net.get_weights(net.W, (pre, post))[0], axis=0) for pre in conns)


def test_sparse_init_counts_fifteen_weights_per_unit_over_all_its_connections():
    # layer 2 receives 10 + 10 inputs (neither connection alone has 15): 15 per unit in all
    net = hf.FFNet([10, 10, 3], conns={0: [1, 2], 1: [2]}, rng=0)
    assert np.all(_incoming_nonzeros(net, 2, [0, 1]) == 15)
    assert np.all(_incoming_nonzeros(net, 1, [0]) == 10)  # fewer than 15 inputs: all of them
    # 40 + 30 + 5 inputs to the output layer
    net = hf.FFNet([40, 30, 5, 4], conns={0: [1, 3], 1: [2, 3], 2: [3]}, rng=1)
    assert np.all(_incoming_nonzeros(net, 3, [0, 1, 2]) == 15)
    assert np.all(_incoming_nonzeros(net, 2, [1]) == 15)
    # fewer than 15 inputs over several connections: every weight is non-zero
    net = hf.FFNet([3, 4, 2], conns={0: [1, 2], 1: [2]}, rng=2)
    assert np.all(_incoming_nonzeros(net, 2, [0, 1]) == 7)
    # recurrent weights are counted on their own: 15 feedforward plus 15 recurrent
    rnn = hf.RNNet([20, 30, 2], rng=3)
    assert np.all(_incoming_nonzeros(rnn, 1, [0]) == 15)
    assert np.all(_incoming_nonzeros(rnn, 1, [1]) == 15)


def test_rec_layers_as_booleans_like_hessianfree():
    by_flags = hf.RNNet([2, 3, 4, 1], rec_layers=[False, True, False, True], rng=4)
    by_index = hf.RNNet([2, 3, 4, 1], rec_layers=[1, 3], rng=4)
    assert by_flags.rec_layers == [1, 3]
    np.testing.assert_array_equal(by_flags.W, by_index.W)
    assert hf.RNNet([2, 3, 1], rec_layers=np.array([False, True, False])).rec_layers == [1]
    assert hf.RNNet([2, 3, 1], rec_layers=[False, False, False]).rec_layers == []
    with pytest.raises(ValueError, match="rec_layers: a list of booleans needs one per layer"):
        hf.RNNet([2, 3, 1], rec_layers=[False, True])
    with pytest.raises(ValueError, match="input layer"):
        hf.RNNet([2, 3, 1], rec_layers=[True, False, False])
    with pytest.raises(TypeError, match="not a mixture"):
        hf.RNNet([2, 3, 1], rec_layers=[1, True])
    with pytest.raises(TypeError, match="rec_layers must be"):
        hf.RNNet([2, 3, 1], rec_layers="1")
    with pytest.raises(ValueError, match="layer 0 is not a hidden or output layer"):
        hf.RNNet([2, 3, 1], rec_layers=[0])


def test_more_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="W_init_params: coeff must be a real number"):
        hf.FFNet([2, 3, 1], W_init_params={"coeff": "x"})
    with pytest.raises(ValueError, match="W_init_params: biases must be finite"):
        hf.FFNet([2, 3, 1], W_init_params={"biases": np.nan})
    with pytest.raises(TypeError, match="W_rec_params: coeff must be a real number"):
        hf.RNNet([2, 3, 1], W_rec_params={"coeff": None})
    with pytest.raises(TypeError, match="W_init_params must be a dict"):
        hf.FFNet([2, 3, 1], W_init_params=["sparse"])
    with pytest.raises(TypeError, match="conns: keys must be integer layer indices"):
        hf.FFNet([2, 3, 1], conns={"a": [1], 1: [2]})
    with pytest.raises(TypeError, match="conns: keys must be integer layer indices"):
        hf.FFNet([2, 3, 1], conns={0.5: [1], 1: [2]})
    with pytest.raises(TypeError, match=r"conns\[0\] must list integer layer indices"):
        hf.FFNet([2, 3, 1], conns={0: [1.0], 1: [2]})
    net = hf.FFNet([2, 3, 1], rng=0)
    x, y = demos.XOR_INPUTS, demos.XOR_TARGETS
    with pytest.raises(ValueError, match=r"test\[0\] \(the test inputs\) must have 2 units"):
        net.run_epochs(x, y, hf.opt.SGD(), test=(np.zeros((4, 3)), y), print_period=None)
    with pytest.raises(ValueError, match=r"test\[1\] \(the test targets\) must have batch size 4"):
        net.run_epochs(x, y, hf.opt.SGD(), test=(x, y[:2]), print_period=None)
    with pytest.raises(ValueError, match="test must be a pair"):
        net.run_epochs(x, y, hf.opt.SGD(), test=(x, y, y), print_period=None)
    with pytest.raises(TypeError, match="test must be a pair"):
        net.run_epochs(x, y, hf.opt.SGD(), test=x, print_period=None)


def test_restored_best_weights_can_be_the_starting_ones():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 3))
    y = np.tanh(x @ rng.standard_normal((3, 2)))
    net = hf.FFNet([3, 6, 2], layers=["Linear", "Tanh", "Linear"], dtype=np.float64, rng=6)
    w0 = net.W.copy()
    before = net.error(inputs=x, targets=y)
    history = net.run_epochs(x, y, hf.opt.SGD(l_rate=1e4), max_epochs=3, print_period=None,
                             restore_best=True)
    assert min(history["test_err"]) > before  # every update made things worse ...
    np.testing.assert_array_equal(net.W, w0)  # ... so the starting weights are restored
    assert net.best_error == before


def test_run_epochs_leaves_the_final_weights_by_default_as_the_reference_does():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 3))
    y = np.tanh(x @ rng.standard_normal((3, 2)))
    net = hf.FFNet([3, 6, 2], layers=["Linear", "Tanh", "Linear"], dtype=np.float64, rng=6)
    w0 = net.W.copy()
    history = net.run_epochs(x, y, hf.opt.SGD(l_rate=1e4), max_epochs=3, print_period=None)
    # every update made things worse: the final weights stay, the best are kept aside
    assert net.error(inputs=x, targets=y) == pytest.approx(history["test_err"][-1])
    assert not np.array_equal(net.W, w0)
    np.testing.assert_array_equal(net.best_W, w0)


class _Recorder(nl.Plant):
    """Input source that feeds back half the previous output plus a fixed drive, and
    records what the network passes it."""

    def __init__(self, batch=3, steps=5):
        super().__init__()
        self.shape = (batch, steps, 2)
        self.drive = np.random.default_rng(7).standard_normal((steps, batch, 2))
        self.reset()

    def reset(self, init=None):
        self.received, self.inputs = [], []

    def __call__(self, x):
        self.received.append(x.copy())  # hessianfree plants do arithmetic on x: no None
        self.inputs.append(0.5 * x + self.drive[len(self.inputs)])
        return self.inputs[-1]

    def get_vecs(self):
        inputs = np.stack(self.inputs, axis=1)
        return inputs, np.full(inputs.shape, 0.25)


def test_a_plant_input_receives_zeros_then_the_previous_output():
    plant = _Recorder()
    net = hf.RNNet([2, 4, 2], layers=["Linear", "Tanh", "Linear"], dtype=np.float64, rng=8,
                   W_init_params={"init_type": "gaussian"})
    acts = net.forward(plant)
    assert len(plant.received) == 5
    assert plant.received[0].shape == (3, 2) and plant.received[0].dtype == np.float64
    assert not np.any(plant.received[0])
    for t in range(1, 5):
        np.testing.assert_array_equal(plant.received[t], acts[-1][:, t - 1])
    # a recurrent output layer's initial activation is what the plant receives first
    rec = hf.RNNet([2, 4, 2], rec_layers=[1, 2], layers=["Linear", "Tanh", "Linear"],
                   dtype=np.float64, rng=8)
    first = np.arange(6.0).reshape(3, 2)
    rec.forward(plant, init_activations=[None, None, first])
    np.testing.assert_array_equal(plant.received[0], first)


def test_plant_driven_net_agrees_on_both_backends():
    results = {}
    for backend in ("numpy", "numba"):
        net = hf.RNNet([2, 4, 2], layers=["Linear", "Tanh", "Linear"], dtype=np.float64, rng=9,
                       W_init_params={"init_type": "gaussian"})
        net.backend = backend
        net.cache_minibatch(_Recorder())
        assert net.check_grad() < 1e-5
        v = np.random.default_rng(0).standard_normal(net.n_params)
        results[backend] = net.calc_grad(), net.calc_G(v), net.error()
    for a, b in zip(results["numpy"], results["numba"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_plant_demo_saves_a_controller_that_loads_and_reproduces_its_outputs(tmp_path):
    metrics = demos.run("plant", out=tmp_path, seed=0, epochs=2, print_period=None)
    loaded = hf.Controller.load(tmp_path / "plant" / "controller.npz")
    assert isinstance(loaded.plant, plants.LinearPlant)
    # the demo draws its 32 initial states first from default_rng(seed)
    batch = loaded.task.sample(32, rng=np.random.default_rng(0))
    final = loaded.rollout(batch).states[:, -1]
    assert metrics["mean_final_position"] == float(final[:, 0].mean())
    assert metrics["mean_final_velocity"] == float(final[:, 1].mean())
    assert metrics["final_step_squared_error"] == float(
        0.5 * np.sum((final - [1.0, 0.0]) ** 2) / final.shape[0])


def test_a_user_plant_network_saves_and_loads(tmp_path):
    from user_plants import RowFormPlant

    plant = RowFormPlant(batch=4, steps=5, rng=0)
    net = hf.RNNet([2, 6, 2], layers=["Linear", "Tanh", plant], rng=1)
    net.run_epochs(plant, None, hf.opt.HessianFree(CG_iter=10), max_epochs=2, print_period=None)
    net.save(tmp_path / "net.npz")
    loaded = hf.FFNet.load(tmp_path / "net.npz")
    assert type(loaded) is hf.RNNet and type(loaded.layers[-1]) is RowFormPlant
    np.testing.assert_array_equal(loaded.layers[-1].init_states, plant.init_states)
    np.testing.assert_array_equal(loaded.forward(loaded.layers[-1])[-1], net.forward(plant)[-1])


def test_demo_cli_writes_a_loadable_controller(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "hfcontrol.demos", "plant", "--epochs", "1", "--out",
                    str(tmp_path)], check=True, capture_output=True)
    loaded = hf.Controller.load(tmp_path / "plant" / "controller.npz")
    metrics = json.loads((tmp_path / "plant" / "metrics.json").read_text())
    final = loaded.rollout(loaded.task.sample(32, rng=np.random.default_rng(0))).states[:, -1]
    assert metrics["mean_final_position"] == float(final[:, 0].mean())
