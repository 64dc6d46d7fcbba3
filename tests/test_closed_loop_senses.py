"""Sensory channels: each with its own delay and noise. The observation map and its
Jacobian against the plants' kinematics and finite differences; the closed loop's gradient
and G v against finite differences with two channels of different delays and noise on,
in both feedback modes, for the pendulum, the two-link arm and the muscle arm, on the
compiled and the NumPy paths; what the network senses against the states it was given;
the Controller's delay line, saving and loading (also the old one-channel format); bad
input."""

import json

import numpy as np
import pytest

import hfcontrol as hf
import plants
from hfcontrol.observation import Channel, Observation, Senses, arm_senses
from hfcontrol.persistence import atomic_savez
from plants.tasks import CostWeights, PendulumV1, Reach


# ---------------------------------------------------------------- the observation map
def test_vision_is_the_plants_hand_position_with_its_exact_jacobian():
    rng = np.random.default_rng(0)
    for arm in (plants.TwoLinkArm(), plants.ThreeLinkArm(), plants.MuscleArm()):
        vision = {ch.name: ch for ch in arm_senses(arm)}["vision"].observation
        x = rng.uniform(0.2, 1.5, size=(5, arm.state_dim))
        np.testing.assert_allclose(vision(x), arm.hand_position(x), rtol=1e-13, atol=1e-15)
        N = arm.n_links
        J = vision.jacobian(x)
        np.testing.assert_allclose(J[:, :, :N], arm.hand_jacobian(x), rtol=1e-13, atol=1e-15)
        np.testing.assert_array_equal(J[:, :, N:], 0.0)


def test_a_general_observation_and_its_jacobian_against_finite_differences():
    rng = np.random.default_rng(1)
    n, p, r = 5, 4, 3
    obs = Observation.general(rng.standard_normal((p, n)), rng.standard_normal((r, n)),
                              rng.standard_normal((p, r)), rng.standard_normal((p, r)),
                              rng.standard_normal(p))
    x = rng.standard_normal((2, 3, n))
    ang = x @ obs.A.T
    direct = x @ obs.L.T + np.cos(ang) @ obs.Rc.T + np.sin(ang) @ obs.Rs.T + obs.c
    np.testing.assert_allclose(obs(x), direct, rtol=1e-14)
    eps = 1e-6
    fd = np.stack([(obs(x + eps * e) - obs(x - eps * e)) / (2 * eps) for e in np.eye(n)],
                  axis=-1)
    np.testing.assert_allclose(obs.jacobian(x), fd, rtol=1e-8, atol=1e-9)
    back = Observation.from_spec(json.loads(json.dumps(obs.spec())), n)
    np.testing.assert_array_equal(back(x), obs(x))


def test_the_pendulum_form_is_a_special_case():
    obs = Observation(2, [1], angles=[0])
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    np.testing.assert_allclose(obs(x), np.column_stack([x[:, 1], np.cos(x[:, 0]),
                                                        np.sin(x[:, 0])]), rtol=1e-15)


# ---------------------------------------------------------------- the closed loop
def _pendulum(delays=(1, 3), noise=(0.05, 0.02)):
    plant = plants.Pendulum()
    task = PendulumV1(plant, horizon=10)
    sensors = [Channel("angle", Observation(2, None, angles=[0]), delays[0], noise[0]),
               Channel("velocity", Observation(2, [1]), delays[1], noise[1])]
    return plant, task, {"sensors": sensors, "control_scale": 2.0}


def _arm(delays=(0.01, 0.03), noise=(0.05, 0.01)):
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=10, weights=CostWeights(1.0, 1e-3, 0.1, 0.5))
    sensors = arm_senses(plant, proprioception_delay=delays[0], vision_delay=delays[1],
                         proprioception_noise=noise[0], vision_noise=noise[1])
    return plant, task, {"sensors": sensors, "control_scale": 0.5}


def _muscle(delays=(0.01, 0.03), noise=(0.05, 0.01)):
    plant = plants.MuscleArm()
    task = Reach(plant, horizon=10)
    sensors = arm_senses(plant, proprioception_delay=delays[0], vision_delay=delays[1],
                         proprioception_noise=noise[0], vision_noise=noise[1])
    return plant, task, {"sensors": sensors, "control_scale": 0.5}


SETUPS = {"pendulum": _pendulum, "arm": _arm, "muscle": _muscle}


def _loop(name, backend="numpy", **kwargs):
    plant, task, extra = SETUPS[name]()
    extra.update(kwargs)
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=3, dtype=np.float64, backend=backend,
                         **extra)
    return loop, task, task.sample(5, seed=4)


@pytest.mark.parametrize("name", list(SETUPS))
@pytest.mark.parametrize("feedback", ["exact", "data"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gradient_and_G_with_two_channels_agree_with_finite_differences(name, feedback,
                                                                        backend):
    loop, _, batch = _loop(name, backend=backend, feedback=feedback)
    assert loop.backend == backend
    assert len(set(loop.senses.row_delays)) == 2 and loop.obs_noise > 0
    loop.cache_minibatch(batch)
    assert loop.check_grad() <= 1e-5
    assert loop.check_G() <= 1e-5


@pytest.mark.parametrize("name", list(SETUPS))
@pytest.mark.parametrize("feedback", ["exact", "data"])
def test_the_compiled_loop_agrees_with_the_numpy_reference(name, feedback):
    loops = []
    for backend in ("numba", "numpy"):
        loop, _, batch = _loop(name, backend=backend, feedback=feedback)
        loop.cache_minibatch(batch)
        loops.append(loop)
    compiled, reference = loops
    np.testing.assert_array_equal(compiled._cache["noise"], reference._cache["noise"])
    v = np.random.default_rng(0).standard_normal(compiled.n_params)
    assert compiled.error() == pytest.approx(reference.error(), rel=1e-12)
    assert compiled.error(compiled.W + 0.01 * v) == pytest.approx(
        reference.error(reference.W + 0.01 * v), rel=1e-12)
    for a, b in ((compiled.calc_grad(), reference.calc_grad()),
                 (compiled.calc_G(v), reference.calc_G(v))):
        assert np.max(np.abs(a - b)) <= 1e-11 * np.max(np.abs(b))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_each_channel_senses_the_state_its_delay_ago(backend):
    """The observations of a rollout, rebuilt from its states channel by channel."""
    loop, _, batch = _loop("muscle", backend=backend)
    run = loop.rollout(batch, noise=False)
    T = batch.targets.shape[1]
    for ch in loop.senses.channels:
        rows = loop.senses.rows[ch.name]
        for t in range(T):
            expected = ch.observation(run.states[:, max(t - ch.delay, 0)])
            np.testing.assert_allclose(run.observations[:, t, rows], expected, rtol=1e-12,
                                       atol=1e-14)
    # with noise: each channel's rows carry noise of their own standard deviation
    loop.rng = np.random.default_rng(0)
    big = loop.task.sample(200, seed=1)
    noisy = loop.rollout(big, noise=True)
    quiet = loop.rollout(big, noise=False)
    for ch in loop.senses.channels:
        rows = loop.senses.rows[ch.name]
        # step 0: every channel reads x_0, which the noise does not move
        spread = np.std(noisy.observations[:, 0, rows] - quiet.observations[:, 0, rows])
        assert spread == pytest.approx(ch.noise, rel=0.1)


def test_the_old_arguments_make_one_channel_and_the_same_loop():
    plant = plants.Pendulum()
    task = PendulumV1(plant, horizon=8)
    batch = task.sample(4, seed=0)
    old = hf.ClosedLoop(plant, task, hidden=4, rng=5, dtype=np.float64, backend="numpy",
                        observation={"linear": [1], "angles": [0]}, delay=2, obs_noise=0.03)
    new = hf.ClosedLoop(plant, task, hidden=4, rng=5, dtype=np.float64, backend="numpy",
                        sensors=[Channel("all", Observation(2, [1], [0]), 2, 0.03)])
    assert old.senses.names == ("observation",) and (old.delay, old.obs_noise) == (2, 0.03)
    for loop in (old, new):
        loop.cache_minibatch(batch)
    assert old.error() == new.error()
    np.testing.assert_array_equal(old.calc_grad(), new.calc_grad())


# ---------------------------------------------------------------- the Controller
def test_controller_steps_reproduce_the_rollout_with_two_delays():
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=12)
    loop = hf.ClosedLoop(plant, task, hidden=6, rng=1, backend="numpy", control_scale=0.5,
                         sensors=arm_senses(plant, proprioception_delay=0.02,
                                            vision_delay=0.05))
    ctrl = hf.Controller(loop)
    batch = task.sample(3, seed=2)
    run = ctrl.rollout(batch)
    ctrl.reset(goal=batch.targets[:, -1], batch=3)
    x = batch.x0
    for t in range(task.horizon):
        u = ctrl.act(ctrl.observe(x))
        np.testing.assert_allclose(u, run.controls[:, t], rtol=1e-5, atol=1e-6)
        x = plant.step(x, u)


def test_controller_save_and_load_keep_the_channels(tmp_path):
    plant = plants.MuscleArm()
    task = Reach(plant, horizon=10)
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=1, sensors="default", backend="numpy")
    assert loop.senses.names == ("proprioception", "vision")
    assert [ch.delay for ch in loop.senses.channels] == [2, 7]
    ctrl = hf.Controller(loop)
    ctrl.save(tmp_path / "ctrl.npz")
    back = hf.Controller.load(tmp_path / "ctrl.npz", backend="numpy")
    assert back.senses.names == loop.senses.names
    for a, b in zip(back.senses.channels, loop.senses.channels, strict=True):
        assert (a.delay, a.noise) == (b.delay, b.noise)
    batch = task.sample(3, seed=0)
    np.testing.assert_array_equal(back.rollout(batch).states, ctrl.rollout(batch).states)


def test_a_controller_saved_in_the_one_channel_format_loads(tmp_path):
    """The format before channels: ``delay``, ``obs_noise`` and ``observation`` in the
    loop's settings."""
    plant = plants.Pendulum()
    task = PendulumV1(plant, horizon=12)
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=1, backend="numpy", control_scale=2.0,
                         observation={"linear": [1], "angles": [0]}, delay=2, obs_noise=0.01)
    ctrl = hf.Controller(loop)
    config = dict(ctrl._config(), **{"class": "Controller"})
    settings = config["loop"]
    del settings["sensors"]
    settings.update(delay=2, obs_noise=0.01, observation={"linear": [[0.0, 1.0]],
                                                          "angles": [0]})
    atomic_savez(tmp_path / "old.npz", config=np.array(json.dumps(config)), W=loop.W)
    back = hf.Controller.load(tmp_path / "old.npz", backend="numpy")
    assert (back.loop.delay, back.loop.obs_noise) == (2, 0.01)
    batch = task.sample(3, seed=0)
    np.testing.assert_array_equal(back.rollout(batch).states, ctrl.rollout(batch).states)


# ---------------------------------------------------------------- bad input
def test_bad_sensors_are_named():
    plant = plants.TwoLinkArm()
    task = Reach(plant, horizon=5)
    with pytest.raises(ValueError, match="sensors: unknown channel 'touch'"):
        hf.ClosedLoop(plant, task, sensors=["proprioception", "touch"])
    with pytest.raises(ValueError, match="channels: unknown channel 'smell'"):
        arm_senses(plant, channels=["smell"])
    with pytest.raises(ValueError, match="vision_noise must be a finite standard deviation"):
        arm_senses(plant, vision_noise=-1e-3)
    with pytest.raises(ValueError, match="proprioception_delay must be a non-negative multiple"):
        arm_senses(plant, proprioception_delay=0.025)
    obs = Observation(plant.state_dim)
    with pytest.raises(ValueError, match="channel 'eye': noise must be a finite standard"):
        Channel("eye", obs, 1, -0.1)
    with pytest.raises(ValueError, match="channel 'eye': delay must be a non-negative"):
        Channel("eye", obs, -1)
    with pytest.raises(ValueError, match=r"channel names must be unique, \['eye'\]"):
        Senses([Channel("eye", obs), Channel("eye", obs)])
    with pytest.raises(ValueError, match="sensors replaces observation, delay and obs_noise"):
        hf.ClosedLoop(plant, task, sensors="default", delay=2)
    with pytest.raises(ValueError, match="default channels exist for planar arms"):
        hf.ClosedLoop(plants.Pendulum(), PendulumV1(plants.Pendulum(), horizon=5),
                      sensors="default")
    loop = hf.ClosedLoop(plant, task, hidden=3, sensors="default")  # vision: 7 steps
    with pytest.raises(ValueError, match=r"channel 'vision': delay \(7 steps\) must be "
                                         r"shorter than the horizon \(5 steps\)"):
        loop.cache_minibatch(task.sample(2, seed=0))
