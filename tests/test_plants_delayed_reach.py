"""The instructed-delay reach with a go cue and catch trials, and the loop reading task
inputs (``ClosedLoop(inputs="task")``)."""

import numpy as np
import pytest

import hfcontrol as hf
import plants
from plants.tasks import DelayedReach, Reach, TaskBatch


@pytest.fixture(scope="module")
def task():
    return DelayedReach(plants.TwoLinkArm(), targets="disc", distance=0.1, catch=0.5,
                        target_on=0.02, go=(0.05, 0.08), movement=0.06, horizon=16)


def test_episodes_hold_until_the_go_cue_then_reach(task):
    goals = task.start + np.array([[0.05, 0.0], [0.0, -0.08]])
    targets, inputs = task.episodes(goals, np.array([5, 7]), np.array([False, True]))
    T = task.horizon
    # reach trial: the state after step t is held at the start while t + 1 <= go
    np.testing.assert_array_equal(targets[0, :5], np.broadcast_to(task.start, (5, 2)))
    assert np.isnan(targets[0, 5:10]).all()  # 6 steps of movement, no target
    np.testing.assert_array_equal(targets[0, 10:], np.broadcast_to(goals[0], (T - 10, 2)))
    np.testing.assert_array_equal(inputs[0, :, 2], (np.arange(T) >= 5).astype(float))
    np.testing.assert_array_equal(inputs[0, :2, :2], 0.0)  # the target appears at step 2
    np.testing.assert_allclose(inputs[0, 2:, :2], np.broadcast_to([0.05, 0.0], (T - 2, 2)))
    # catch trial: the target is shown, no go cue, hold at the start throughout
    np.testing.assert_array_equal(targets[1], np.broadcast_to(task.start, (T, 2)))
    assert not inputs[1, :, 2].any() and np.allclose(inputs[1, 2:, :2], [0.0, -0.08])


def test_sampled_batches_draw_go_times_and_catch_trials(task):
    batch = task.sample(400, seed=3)
    go = np.argmax(batch.inputs[:, :, 2] > 0, axis=1)
    cued = batch.inputs[:, :, 2].any(axis=1)
    assert 0.4 < 1 - cued.mean() < 0.6  # catch = 0.5
    assert set(go[cued]) == {5, 6, 7, 8}  # go in (0.05, 0.08) s at dt = 10 ms
    assert batch.inputs.shape == (400, task.horizon, 3) and task.input_dim == 3


@pytest.mark.parametrize("bad, message", [
    ({"go": (0.3, 0.1)}, "go must be a range"),
    ({"catch": 1.0}, "catch must be a probability"),
    ({"target_on": 0.1, "go": (0.05, 0.08)}, "target_on"),
    ({"movement": 0.2, "horizon": 20}, "must end before the horizon"),
])
def test_bad_timelines_are_named(bad, message):
    kwargs = {"go": (0.05, 0.08), "movement": 0.06, "horizon": 16, **bad}
    with pytest.raises(ValueError, match=message):
        DelayedReach(plants.TwoLinkArm(), **kwargs)


def test_episodes_reject_go_cues_outside_the_timeline(task):
    with pytest.raises(ValueError, match="go must be 2 integer steps"):
        task.episodes(np.zeros((2, 2)) + task.start, np.array([1, 5]))


@pytest.mark.parametrize("feedback", ["exact", "data"])
def test_gradient_and_G_through_the_task_inputs(task, feedback):
    loop = hf.ClosedLoop(task.plant, task, inputs="task", hidden=6, delay=1, obs_noise=0.01,
                         feedback=feedback, rng=0, dtype=np.float64)
    assert loop.net.shape == [3 + 4, 6, 2]
    loop.cache_minibatch(task.sample(4, seed=1))
    assert loop.check_grad() < 1e-5
    assert loop.check_G() < 1e-5


def test_compiled_and_numpy_loops_agree_on_task_inputs(task):
    loop = hf.ClosedLoop(task.plant, task, inputs="task", hidden=6, delay=1, rng=0,
                         dtype=np.float64)
    v = np.random.default_rng(2).standard_normal(loop.n_params)
    results = []
    for backend in ("numba", "numpy"):
        loop.backend = backend
        loop.cache_minibatch(task.sample(4, seed=1))
        results.append((loop.error(), loop.calc_grad(), loop.calc_G(v)))
    for x, y in zip(*results, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


def test_task_inputs_are_required_and_checked(task):
    loop = hf.ClosedLoop(task.plant, task, inputs="task", hidden=4, rng=0)
    batch = task.sample(3, seed=0)
    with pytest.raises(ValueError, match="needs the batch's task inputs"):
        loop.cache_minibatch(TaskBatch(batch.x0, batch.targets))
    with pytest.raises(ValueError, match=r"batch.inputs must be finite, of shape \[3, 16, 3\]"):
        loop.rollout(TaskBatch(batch.x0, batch.targets, batch.inputs[:, :, :2]))
    bad = batch.inputs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="batch.inputs must be finite"):
        loop.rollout(TaskBatch(batch.x0, batch.targets, bad))
    with pytest.raises(ValueError, match="inputs='task' needs a task that gives"):
        hf.ClosedLoop(task.plant, Reach(task.plant), inputs="task")


def test_the_task_and_a_controller_round_trip(task, tmp_path):
    again = plants.from_spec(plants.to_spec(task))
    assert isinstance(again, DelayedReach) and again.catch == 0.5 and again.horizon == 16
    loop = hf.ClosedLoop(task.plant, task, inputs="task", hidden=4, rng=0)
    hf.Controller(loop).save(tmp_path / "c.npz")
    loaded = hf.Controller.load(tmp_path / "c.npz")
    batch = task.sample(2, seed=5)
    np.testing.assert_array_equal(loaded.rollout(batch).states,
                                  loop.rollout(batch, noise=False).states)
