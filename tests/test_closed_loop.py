"""ClosedLoop: the error is the task's cost, and the gradient and G v through the feedback
path agree with finite differences (float64), for the linear demo plant, the pendulum and
the two-link arm, with and without delay, in both feedback modes, with noise on."""

import numpy as np
import pytest
from closed_loop_checks import assert_compiled_matches_reference

import hfcontrol as hf
import plants
from plants.tasks import CostWeights, PendulumV1, Reach, StateTarget, TaskBatch


def _linear():
    task = StateTarget.demo()
    return task.plant, task, {}


def _pendulum():
    plant = plants.Pendulum()
    task = PendulumV1(plant, horizon=10)
    return plant, task, {"observation": {"linear": [1], "angles": [0]}, "control_scale": 2.0}


def _arm():
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=10, weights=CostWeights(1.0, 1e-3, 0.1, 0.5))
    return plant, task, {"control_scale": 0.5}


SETUPS = {"linear": _linear, "pendulum": _pendulum, "arm": _arm}


def _loop(name, backend="numpy", **kwargs):
    plant, task, extra = SETUPS[name]()
    extra.update(kwargs)
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=3, dtype=np.float64, backend=backend,
                         **extra)
    batch = task.sample(6, seed=4)
    if name == "linear":  # a shorter episode keeps the finite differences quick
        batch = TaskBatch(batch.x0, batch.targets)
    return loop, task, batch


@pytest.mark.parametrize("name", list(SETUPS))
def test_error_is_the_mean_task_cost(name):
    loop, task, batch = _loop(name)
    loop.cache_minibatch(batch)
    run = loop.rollout(batch, noise=False)
    np.testing.assert_allclose(run.cost, task.cost(run.states, run.controls, batch.targets),
                               rtol=1e-12)
    assert loop.error() == pytest.approx(np.mean(run.cost), rel=1e-12)
    assert run.states.shape == (6, task.horizon + 1, loop.n)
    assert run.controls.shape == (6, task.horizon, loop.m)
    np.testing.assert_array_equal(run.states[:, 0], batch.x0)


@pytest.mark.parametrize("name", list(SETUPS))
@pytest.mark.parametrize("feedback", ["exact", "data"])
@pytest.mark.parametrize("delay", [0, 2])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_gradient_and_G_agree_with_finite_differences(name, feedback, delay, noise):
    loop, task, batch = _loop(name, feedback=feedback, delay=delay, obs_noise=noise)
    loop.cache_minibatch(batch)
    assert loop.check_grad() <= 1e-5
    assert loop.check_G() <= 1e-5


@pytest.mark.parametrize("name", list(SETUPS))
def test_G_is_symmetric_positive_semidefinite(name):
    loop, _, batch = _loop(name, delay=1)
    loop.cache_minibatch(batch)
    rng = np.random.default_rng(0)
    n = loop.n_params
    G = np.column_stack([loop.calc_G(e) for e in np.eye(n)])
    np.testing.assert_allclose(G, G.T, atol=1e-10 * np.abs(G).max())
    assert np.linalg.eigvalsh(0.5 * (G + G.T)).min() > -1e-9 * np.abs(G).max()
    v = rng.standard_normal(n)
    np.testing.assert_allclose(loop.calc_G(v, damping=0.3), G @ v + 0.3 * v, rtol=1e-10)


def test_G_is_the_hessian_where_the_residuals_vanish():
    """Targets equal to the current rollout's outputs, no other cost, inputs independent
    of the targets: the Gauss-Newton matrix is the Hessian, so G v is the derivative of
    the gradient along v."""
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=8, weights=CostWeights(0.0, 0.0, 0.0, 1.0))
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=3, dtype=np.float64, inputs="none",
                         backend="numpy", control_scale=0.5, delay=1)
    start = task.sample(4, seed=1)
    hand = loop.rollout(start, noise=False).states[:, 1:]
    targets = task.outputs(hand.reshape(-1, loop.n)).reshape(4, 8, 2)
    batch = TaskBatch(start.x0, targets)
    loop.cache_minibatch(batch)
    assert loop.error() < 1e-28
    v = np.random.default_rng(2).standard_normal(loop.n_params)
    w0, eps = loop.W.copy(), 1e-5

    def grad_at(w):
        loop.W = w
        loop.cache_minibatch(batch)
        return loop.calc_grad()

    fd = (grad_at(w0 + eps * v) - grad_at(w0 - eps * v)) / (2 * eps)
    gv = grad_at(w0) * 0 + loop.calc_G(v)
    assert np.max(np.abs(gv - fd)) / np.max(np.abs(fd)) < 1e-6


def test_exact_feedback_differs_from_data_feedback():
    loop_exact, _, batch = _loop("arm", feedback="exact", delay=1)
    loop_data, _, _ = _loop("arm", feedback="data", delay=1)
    loop_exact.cache_minibatch(batch)
    loop_data.cache_minibatch(batch)
    np.testing.assert_array_equal(loop_exact.W, loop_data.W)
    assert loop_exact.error() == loop_data.error()
    g_exact, g_data = loop_exact.calc_grad(), loop_data.calc_grad()
    assert np.max(np.abs(g_exact - g_data)) > 1e-3 * np.max(np.abs(g_exact))


def test_noise_is_drawn_once_per_minibatch():
    loop, _, batch = _loop("arm", obs_noise=0.1)
    loop.cache_minibatch(batch)
    first = loop.error(loop.W + 0.01)
    assert loop.error(loop.W + 0.01) == first
    loop.cache_minibatch(batch)
    assert loop.error(loop.W + 0.01) != first


def test_a_plant_without_jacobians_gets_finite_differences():
    class Plain:
        """A user's plant: the demo map in Python, no jacobians."""

        state_dim, control_dim, dt = 2, 2, 1.0

        def step(self, x, u):
            return np.column_stack([x[:, 0] + 0.2 * x[:, 1], x[:, 1] + np.tanh(x[:, 0]) * u[:, 1]])

    task = StateTarget.demo()
    loop = hf.ClosedLoop(Plain(), task, hidden=4, rng=0, dtype=np.float64, delay=1)
    assert loop.backend == "numpy"
    batch = task.sample(5, seed=0)
    loop.cache_minibatch(batch)
    reference = hf.ClosedLoop(task.plant, task, hidden=4, rng=0, dtype=np.float64, delay=1,
                              backend="numpy")
    reference.cache_minibatch(batch)
    assert loop.error() == pytest.approx(reference.error(), rel=1e-12)
    np.testing.assert_allclose(loop.calc_grad(), reference.calc_grad(), rtol=1e-6, atol=1e-9)
    assert loop.check_grad() < 1e-5


def test_bad_input_is_named():
    plant, task, _ = _arm()
    with pytest.raises(ValueError, match=r"net must have shape \[6, hidden, 2\]"):
        hf.ClosedLoop(plant, task, net=hf.RNNet([5, 8, 2]))
    with pytest.raises(ValueError, match=r"net must have shape \[6, hidden, 2\]"):
        hf.ClosedLoop(plant, task, net=hf.RNNet([6, 8, 3]))
    loop = hf.ClosedLoop(plant, task, hidden=4, delay=3)
    batch = task.sample(4, seed=0)
    with pytest.raises(ValueError, match=r"batch.targets must have shape \[4, horizon, 2\]"):
        loop.cache_minibatch(TaskBatch(batch.x0, batch.targets[..., :1]))
    short = TaskBatch(batch.x0, batch.targets[:, -3:])
    with pytest.raises(ValueError, match="delay \\(3 steps\\) must be shorter than the horizon"):
        loop.cache_minibatch(short)
    x0 = batch.x0.copy()
    x0[1, 0] = np.nan
    with pytest.raises(ValueError, match="batch.x0 must be finite"):
        loop.cache_minibatch(TaskBatch(x0, batch.targets))
    with pytest.raises(ValueError, match="feedback must be one of"):
        hf.ClosedLoop(plant, task, feedback="closed")
    with pytest.raises(ValueError, match="delay must be a non-negative integer"):
        hf.ClosedLoop(plant, task, delay=-1)
    with pytest.raises(ValueError, match="control_scale must be"):
        hf.ClosedLoop(plant, task, control_scale=[1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="no minibatch is cached"):
        hf.ClosedLoop(plant, task).calc_grad()


class _NaNOnCall:
    """The demo plant, returning NaN from the chosen call of ``step`` on."""

    def __init__(self, bad_call):
        self.inner = plants.LinearPlant.demo()
        self.state_dim, self.control_dim, self.dt = 2, 2, 1.0
        self.calls, self.bad_call = 0, bad_call

    def step(self, x, u):
        self.calls += 1
        out = self.inner.step(x, u)
        return out * np.nan if self.calls >= self.bad_call else out

    def jacobians(self, x, u):
        return self.inner.jacobians(x, u)


def test_a_plant_that_blows_up_mid_training_rejects_the_step_and_keeps_the_weights():
    task = StateTarget.demo()
    plant = _NaNOnCall(bad_call=10**9)
    loop = hf.ClosedLoop(plant, task, hidden=4, rng=0, dtype=np.float64)
    batch = task.sample(8, seed=0)
    opt = hf.opt.HessianFree(CG_iter=10)
    loop.optimizer = opt
    opt.net = loop
    loop.cache_minibatch(batch)
    calls = plant.calls
    plant.bad_call = calls + 3  # NaN from the first trial rollout of the update on
    w0 = loop.W.copy()
    update = opt.compute_update()
    assert not np.any(update)
    assert opt.damping > 1.0
    np.testing.assert_array_equal(loop.W, w0)
    # a minibatch cached while the plant blows up gives a NaN error and gradient, which
    # the optimiser rejects without touching the weights
    loop.cache_minibatch(batch)
    assert np.isnan(loop.error()) and np.isnan(loop.calc_grad()).all()
    assert not np.any(opt.compute_update())


# ---------------------------------------------------------------- Controller
@pytest.mark.parametrize("delay", [0, 3])
def test_controller_steps_reproduce_the_rollout(delay):
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=12)
    loop = hf.ClosedLoop(plant, task, hidden=6, rng=1, delay=delay, backend="numpy",
                         control_scale=0.5)
    ctrl = hf.Controller(loop)
    batch = task.sample(5, seed=2)
    run = ctrl.rollout(batch)
    goal = batch.targets[:, -1]
    ctrl.reset(goal=goal, batch=5)
    x = batch.x0
    for t in range(task.horizon):
        u = ctrl.act(ctrl.observe(x))
        np.testing.assert_allclose(u, run.controls[:, t], rtol=1e-5, atol=1e-6)
        x = plant.step(x, u)
    np.testing.assert_allclose(x, run.states[:, -1], rtol=1e-5, atol=1e-6)
    # one episode at a time, with a 1-D observation
    ctrl.reset(goal=goal[0])
    u0 = ctrl.act(ctrl.observe(batch.x0[0]))
    assert u0.shape == (2,)
    np.testing.assert_allclose(u0, run.controls[0, 0], rtol=1e-5, atol=1e-6)


def test_controller_save_and_load(tmp_path):
    plant = plants.Pendulum()
    task = PendulumV1(plant, horizon=15)
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=1, delay=2, obs_noise=0.01,
                         observation={"linear": [1], "angles": [0]}, control_scale=2.0,
                         backend="numpy")
    ctrl = hf.Controller(loop)
    ctrl.save(tmp_path / "ctrl.npz")
    back = hf.Controller.load(tmp_path / "ctrl.npz", backend="numpy")
    batch = task.sample(4, seed=0)
    np.testing.assert_array_equal(back.rollout(batch).states, ctrl.rollout(batch).states)
    assert (back.loop.delay, back.loop.obs_noise, back.loop.inputs) == (2, 0.01, "goal")
    assert type(back.plant) is plants.Pendulum and type(back.task) is PendulumV1
    with pytest.raises(TypeError, match="holds a Controller, not a FFNet"):
        hf.persistence.load(tmp_path / "ctrl.npz", expected=hf.FFNet)


def test_controller_argument_checks():
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=5)
    ctrl = hf.Controller(hf.ClosedLoop(plant, task, hidden=3, backend="numpy"))
    with pytest.raises(RuntimeError, match="call reset"):
        ctrl.act(np.zeros(4))
    with pytest.raises(ValueError, match="goal is required"):
        ctrl.reset()
    ctrl.reset(goal=[0.0, 0.4], batch=2)
    with pytest.raises(ValueError, match=r"obs must have shape \[4\] or \[2, 4\]"):
        ctrl.act(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="obs must be finite"):
        ctrl.act(np.full((2, 4), np.nan))
    with pytest.raises(TypeError, match="loop must be a hfcontrol.ClosedLoop"):
        hf.Controller(task)


# ---------------------------------------------------------------- the compiled loop
@pytest.mark.parametrize("name", list(SETUPS))
@pytest.mark.parametrize("feedback", ["exact", "data"])
@pytest.mark.parametrize("delay", [0, 2])
def test_the_compiled_loop_agrees_with_the_numpy_reference(name, feedback, delay):
    loops = []
    for backend in ("numba", "numpy"):
        loop, _, batch = _loop(name, backend=backend, feedback=feedback, delay=delay,
                               obs_noise=0.05)
        loop.cache_minibatch(batch)
        loops.append(loop)
    compiled, reference = loops
    assert_compiled_matches_reference(compiled, reference, rel=1e-12)
    run_c, run_r = compiled.rollout(batch, noise=False), reference.rollout(batch, noise=False)
    np.testing.assert_allclose(run_c.states, run_r.states, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(run_c.hidden, run_r.hidden, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(SETUPS))
def test_the_compiled_loop_agrees_with_finite_differences(name):
    loop, _, batch = _loop(name, backend="numba", delay=1, obs_noise=0.05)
    loop.cache_minibatch(batch)
    assert loop.check_grad() <= 1e-5
    assert loop.check_G() <= 1e-5


def test_the_compiled_loop_in_float32_tracks_float64():
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=20)
    batch = task.sample(16, seed=0)
    loops = [hf.ClosedLoop(plant, task, hidden=8, rng=5, dtype=dt) for dt in
             (np.float32, np.float64)]
    loops[1].W = loops[0].W.astype(np.float64)
    for loop in loops:
        loop.cache_minibatch(batch)
    assert loops[0].backend == "numba"
    assert loops[0].error() == pytest.approx(loops[1].error(), rel=1e-4)
    g32, g64 = loops[0].calc_grad(), loops[1].calc_grad()
    assert g32.dtype == np.float32
    assert np.max(np.abs(g32 - g64)) < 1e-3 * np.max(np.abs(g64))


def test_the_compiled_loop_reports_a_blow_up():
    task = StateTarget.demo()
    loop = hf.ClosedLoop(task.plant, task, hidden=4, rng=0, control_scale=1e300)
    assert loop.backend == "numba"
    batch = task.sample(4, seed=0)
    loop.cache_minibatch(batch)
    assert np.isnan(loop.error()) and np.isnan(loop.calc_grad()).all()
    assert not loop.rollout(batch).finite


def test_a_separate_curvature_minibatch():
    loop, task, batch = _loop("arm", backend="numba", delay=1)
    v = np.random.default_rng(0).standard_normal(loop.n_params)
    small = TaskBatch(batch.x0[:2], batch.targets[:2])
    loop.cache_minibatch(small)
    expected = loop.calc_G(v)
    loop.cache_minibatch(batch, curvature=2)
    np.testing.assert_allclose(loop.calc_G(v), expected, rtol=1e-12)
    full_error = loop.error()
    assert full_error != pytest.approx(task.cost(*_states_controls(loop, small), small.targets).mean())
    loop.cache_minibatch(batch, curvature=small)
    np.testing.assert_allclose(loop.calc_G(v), expected, rtol=1e-12)
    assert loop.error() == full_error
    assert loop.check_G(v) < 1e-5
    with pytest.raises(ValueError, match="curvature must be a number of episodes in 1..6"):
        loop.cache_minibatch(batch, curvature=7)


def _states_controls(loop, batch):
    run = loop.rollout(batch, noise=False)
    return run.states, run.controls


def test_a_large_rollout_split_over_threads_matches_one_partition():
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=15, targets="disc", distance=0.1)
    loop = hf.ClosedLoop(plant, task, hidden=6, rng=2, dtype=np.float64)
    batch = task.sample(300, seed=0)
    threads = hf.get_num_threads()
    try:
        hf.set_num_threads(1)
        one = loop.rollout(batch, noise=False)
        hf.set_num_threads(2)
        two = loop.rollout(batch, noise=False)
    finally:
        hf.set_num_threads(threads)
    np.testing.assert_array_equal(one.states, two.states)
    np.testing.assert_array_equal(one.controls, two.controls)
    np.testing.assert_array_equal(one.hidden, two.hidden)
    np.testing.assert_array_equal(one.cost, two.cost)


@pytest.mark.parametrize("feedback", ["exact", "data"])
def test_gradient_and_G_split_over_threads_agree_with_the_numpy_reference(monkeypatch,
                                                                          feedback):
    from hfcontrol.kernels import closed_loop as kernels
    from hfcontrol.kernels import runner

    monkeypatch.setattr(kernels, "MIN_MACS_PER_THREAD", 1)
    monkeypatch.setattr(kernels, "PARTITION_SAMPLES", 1)
    monkeypatch.setattr(runner, "_THREADS", [4])  # 6 episodes: partitions of 1, 2, 1, 2
    loops = []
    for backend in ("numba", "numpy"):
        loop, _, batch = _loop("arm", backend=backend, feedback=feedback, delay=2,
                               obs_noise=0.05)
        loop.cache_minibatch(batch)
        loops.append(loop)
    compiled, reference = loops
    assert len(compiled._engine(6, batch.targets.shape[1]).parts) == 4
    v = np.random.default_rng(1).standard_normal(compiled.n_params)
    for a, b in ((compiled.calc_grad(), reference.calc_grad()),
                 (compiled.calc_G(v), reference.calc_G(v))):
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))


def test_a_rollout_keeps_its_arrays_when_another_runs():
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=10)
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=0, obs_noise=0.1)
    batch = task.sample(4, seed=0)
    first = loop.rollout(batch)
    kept = [np.copy(a) for a in (first.states, first.hidden, first.observations)]
    second = loop.rollout(batch)  # other noise: other observations and states
    assert not np.array_equal(second.observations, first.observations)
    for a, b in zip(kept, (first.states, first.hidden, first.observations), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loop.rollout(batch, cost=False).cost is None
