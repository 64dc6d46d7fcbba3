"""The training module: checkpoints that resume bit for bit, stopping rules, callbacks."""

import json
import subprocess
import sys

import numpy as np
import pytest

import hfcontrol as hf
from hfcontrol import training
from hfcontrol.training import load_checkpoint, stop_after_seconds, stop_below, stop_on_plateau, train


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = (0.3 * rng.standard_normal((40, 8, 1))).astype(np.float32)
    return x, np.cumsum(x, axis=1)


def _net():
    return hf.RNNet([1, 6, 1], layers=["Linear", "Tanh", "Linear"], rng=11,
                    W_init_params={"init_type": "gaussian", "coeff": 0.5},
                    W_rec_params={"init_type": "gaussian", "coeff": 0.5})


def _optimizer(kind):
    if kind == "adam":
        return hf.opt.Adam(l_rate=0.01, clip_norm=0.5)
    return hf.opt.HessianFree(CG_iter=20) if kind == "hf" else hf.opt.SGD(l_rate=0.05)


def _run(kind, updates, checkpoint=None, resume=False, net=None):
    x, y = _data()
    net = _net() if net is None else net
    history = net.run_epochs(x, y, _optimizer(kind), max_epochs=updates, minibatch_size=16,
                             print_period=None, target_err=-1, checkpoint=checkpoint,
                             checkpoint_every=5, resume=resume)
    return net, history


_RESUME_SCRIPT = """
import sys, json
import numpy as np
sys.path.insert(0, {root!r})
from tests.test_core_training import _run
net, history = _run({kind!r}, 10, checkpoint={path!r}, resume=True)
np.save({out!r}, net.W)
print(json.dumps(history))
"""


@pytest.mark.parametrize("kind", ["hf", "sgd", "adam"])
def test_resume_from_a_checkpoint_in_a_new_process_is_bit_for_bit(kind, tmp_path):
    straight, history = _run(kind, 10)
    path = tmp_path / "ckpt.npz"
    _run(kind, 5, checkpoint=path)
    assert load_checkpoint(path)["updates_done"] == 5
    out = tmp_path / "W.npy"
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", _RESUME_SCRIPT.format(
        root=root, kind=kind, path=str(path), out=str(out))], capture_output=True, text=True,
        check=True)
    resumed_history = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.load(out), straight.W)
    for key in training.HISTORY_KEYS:
        if key != "time":  # wall-clock
            assert resumed_history[key] == pytest.approx(history[key], rel=0, abs=0,
                                                         nan_ok=True), key
    assert resumed_history["time"][5] >= resumed_history["time"][4]


def test_resume_in_the_same_process_with_a_new_object(tmp_path):
    straight, history = _run("hf", 10)
    path = tmp_path / "ckpt.npz"
    _run("hf", 5, checkpoint=path)
    resumed, resumed_history = _run("hf", 10, checkpoint=path, resume=True)
    np.testing.assert_array_equal(resumed.W, straight.W)
    assert resumed_history["train_err"] == history["train_err"]
    assert resumed_history["damping"] == history["damping"]


def test_an_interrupted_run_checkpoints_the_last_completed_update(tmp_path):
    path = tmp_path / "ckpt.npz"
    straight, _ = _run("hf", 7)

    def interrupt(state):
        if state.update == 3:
            raise KeyboardInterrupt

    x, y = _data()
    net = _net()
    with pytest.raises(KeyboardInterrupt):
        net.run_epochs(x, y, _optimizer("hf"), max_epochs=7, minibatch_size=16,
                       print_period=None, target_err=-1, checkpoint=path,
                       checkpoint_every=100, callbacks=[interrupt])
    # the interrupt came after update 3 had completed: the checkpoint holds its result
    assert load_checkpoint(path)["updates_done"] == 4
    resumed, _ = _run("hf", 7, checkpoint=path, resume=True)
    np.testing.assert_array_equal(resumed.W, straight.W)


def test_an_interrupt_in_the_middle_of_an_update_checkpoints_the_state_before_it(tmp_path):
    path = tmp_path / "ckpt.npz"
    straight, _ = _run("hf", 6)
    x, y = _data()
    net = _net()
    calls = []

    def batches(k):
        calls.append(k)
        if k == 2 and len(calls) == 3:
            net.rng.random(5)  # draws made before the interrupt must not count
            raise KeyboardInterrupt
        idx = net.rng.choice(40, size=16, replace=False)
        return x[idx], y[idx]

    net.optimizer = opt = _optimizer("hf")
    with pytest.raises(KeyboardInterrupt):
        train(net, opt, batches, updates=6, checkpoint=path, checkpoint_every=100,
              progress=False, evaluate=lambda: net._plain_error(x, y, net.loss))
    assert load_checkpoint(path)["updates_done"] == 2
    resumed, _ = _run("hf", 6, checkpoint=path, resume=True)
    np.testing.assert_array_equal(resumed.W, straight.W)


def test_checkpoint_mismatches_are_refused(tmp_path):
    path = tmp_path / "ckpt.npz"
    _run("hf", 2, checkpoint=path)
    with pytest.raises(ValueError, match="written by a HessianFree, not a SGD"):
        _run("sgd", 4, checkpoint=path, resume=True)
    other = hf.RNNet([1, 3, 1], rng=0)
    with pytest.raises(ValueError, match="do not fit the model"):
        _run("hf", 4, checkpoint=path, resume=True, net=other)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        _run("hf", 4, checkpoint=tmp_path / "missing.npz", resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        train(_net(), hf.opt.SGD(), lambda k: _data(), updates=1, resume=True)


def test_stopping_rules_and_callbacks():
    x, y = _data()
    net = _net()
    seen = []
    result = train(net, hf.opt.HessianFree(CG_iter=20), lambda k: (x, y), updates=50,
                   stop=[stop_below(0.5 * net.error(inputs=x, targets=y))],
                   callbacks=[lambda s: seen.append((s.update, s.test_err))], progress=False)
    assert result.stopped_by is not None and "stop_below" in result.stopped_by.__name__
    assert len(seen) == len(result.history["epoch"]) < 50
    assert [k for k, _ in seen] == list(range(len(seen)))

    plateau = stop_on_plateau(2)
    state = training.TrainState(0, None, None, {"test_err": [3.0, 1.0, 1.0, 1.0]}, 0, 0, 0, 0)
    assert plateau(state)
    state.history["test_err"] = [3.0, 2.0, 1.0]
    assert not plateau(state)
    state.elapsed = 5.0
    assert stop_after_seconds(4.0)(state) and not stop_after_seconds(6.0)(state)


def test_a_non_finite_update_leaves_the_weights(monkeypatch):
    x, y = _data()
    net = _net()
    opt = hf.opt.SGD(l_rate=0.1)
    monkeypatch.setattr(opt, "compute_update", lambda printing=False: np.full_like(net.W, np.nan))
    w0 = net.W.copy()
    train(net, opt, lambda k: (x, y), updates=3, progress=False)
    np.testing.assert_array_equal(net.W, w0)


def test_train_argument_checks():
    net = _net()
    with pytest.raises(ValueError, match="updates must be a positive integer"):
        train(net, hf.opt.SGD(), lambda k: _data(), updates=0)
    with pytest.raises(TypeError, match="batches must be a callable"):
        train(net, hf.opt.SGD(), [_data()], updates=1)
    with pytest.raises(TypeError, match="optimizer must be"):
        train(net, object(), lambda k: _data(), updates=1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        train(net, hf.opt.SGD(), lambda k: _data(), updates=1, checkpoint_every=0)
