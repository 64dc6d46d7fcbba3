"""The native vector environments: made through ``vector_entry_point``, deterministic, and
step for step the single environments' numbers in every autoreset mode (next-step,
same-step, disabled with partial resets); bad input."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import plants  # noqa: F401 - registers the environments
from plants.envs import ENV_IDS, PlantVectorEnv

MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]
SHORT = {"horizon": 4}  # short episodes: several resets in a few steps


def _vec(env_id, n, mode=AutoresetMode.NEXT_STEP, **kwargs):
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                        autoreset_mode=mode, **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_uses_the_native_vector_env(env_id):
    env = _vec(env_id, 3)
    assert isinstance(env.unwrapped, PlantVectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    single = gym.make(env_id)
    assert env.single_observation_space == single.observation_space
    assert env.single_action_space == single.action_space
    assert env.unwrapped.max_episode_steps == gym.spec(env_id).max_episode_steps
    obs, info = env.reset(seed=0)
    assert obs.shape == (3, *single.observation_space.shape) and obs.dtype == np.float32
    assert obs in env.observation_space and info == {}
    for mode in MODES:
        assert _vec(env_id, 2, mode).metadata["autoreset_mode"] == mode
    assert _vec(env_id, 2, "SameStep").metadata["autoreset_mode"] == AutoresetMode.SAME_STEP


def _run(env, seed, steps, rng):
    out = [env.reset(seed=seed)[0]]
    for _ in range(steps):
        a = rng.uniform(-1.2, 1.2, env.action_space.shape).astype(np.float32)
        obs, r, term, trunc, info = env.step(a)
        out += [obs, r, term, trunc]
        if env.metadata["autoreset_mode"] == AutoresetMode.DISABLED and trunc.any():
            out.append(env.reset(options={"reset_mask": trunc})[0])
    return out


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_trajectories(env_id, mode):
    a = _run(_vec(env_id, 3, mode, **SHORT), 5, 10, np.random.default_rng(0))
    b = _run(_vec(env_id, 3, mode, **SHORT), 5, 10, np.random.default_rng(0))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _start(single, vec, i):
    """Reset single env ``i`` to vector copy ``i``'s current episode; return its obs."""
    u = vec.unwrapped
    obs, _ = single.reset(options={"x0": u.state[i], "target": u.goal[i]})
    return obs


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_each_copy_agrees_with_the_single_env(env_id, mode):
    n, T = 3, SHORT["horizon"]
    vec = _vec(env_id, n, mode, **SHORT)
    singles = [gym.make(env_id, **SHORT) for _ in range(n)]
    obs, _ = vec.reset(seed=1)
    for i in range(n):
        np.testing.assert_allclose(_start(singles[i], vec, i), obs[i], rtol=1e-6, atol=1e-7)
    rng = np.random.default_rng(3)
    resets = 0
    for step in range(3 * T + 2):
        a = rng.uniform(-1.2, 1.2, vec.action_space.shape).astype(np.float32)
        pending = vec.unwrapped._done.copy()  # next-step: these copies reset now
        obs, rew, term, trunc, info = vec.step(a)
        assert not term.any()
        for i in range(n):
            if mode == AutoresetMode.NEXT_STEP and pending[i]:
                assert rew[i] == 0.0 and not trunc[i]
                np.testing.assert_allclose(_start(singles[i], vec, i), obs[i], rtol=1e-6,
                                           atol=1e-7)
                resets += 1
                continue
            o, r, te, tr, _ = singles[i].step(a[i])
            assert rew[i] == pytest.approx(r, rel=1e-10, abs=1e-15)
            assert tr == trunc[i] and te == term[i]
            if mode == AutoresetMode.SAME_STEP and tr:
                assert info["_final_obs"][i]
                np.testing.assert_allclose(info["final_obs"][i], o, rtol=1e-6, atol=1e-7)
                np.testing.assert_allclose(_start(singles[i], vec, i), obs[i], rtol=1e-6,
                                           atol=1e-7)
                resets += 1
            else:
                np.testing.assert_allclose(o, obs[i], rtol=1e-6, atol=1e-7)
        if mode == AutoresetMode.DISABLED and trunc.any():
            obs2, _ = vec.reset(options={"reset_mask": trunc})
            np.testing.assert_array_equal(obs2[~trunc], obs[~trunc])
            for i in np.flatnonzero(trunc):
                np.testing.assert_allclose(_start(singles[i], vec, i), obs2[i], rtol=1e-6,
                                           atol=1e-7)
                resets += 1
        assert (step + 1) % T != 0 or mode == AutoresetMode.NEXT_STEP or trunc.all()
    assert resets >= n * 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("env_id", ["plants/ArmReach-v0", "plants/PendulumSwingUp-v0"])
def test_one_copy_is_the_single_env_with_the_same_seed(env_id, mode):
    """With one copy the vector env draws exactly the single env's episodes, across resets."""
    vec = _vec(env_id, 1, mode, **SHORT)
    single = gym.make(env_id, **SHORT)
    o_v, _ = vec.reset(seed=9)
    o_s, _ = single.reset(seed=9)
    np.testing.assert_array_equal(o_v[0], o_s)
    rng = np.random.default_rng(0)
    pending = False
    for _ in range(12):
        a = rng.uniform(-1, 1, vec.action_space.shape).astype(np.float32)
        o_v, r_v, _, tr_v, info = vec.step(a)
        if pending:  # next-step: the vector env resets now
            o_s, _ = single.reset()
            pending = False
            np.testing.assert_array_equal(o_v[0], o_s)
            continue
        o_s, r_s, _, tr_s, _ = single.step(a[0])
        assert r_v[0] == r_s and tr_v[0] == tr_s
        if tr_s:
            if mode == AutoresetMode.NEXT_STEP:
                pending = True
            elif mode == AutoresetMode.SAME_STEP:
                np.testing.assert_array_equal(info["final_obs"][0], o_s)
                o_s, _ = single.reset()
            else:
                o_v, _ = vec.reset(options={"reset_mask": tr_v})
                o_s, _ = single.reset()
        np.testing.assert_array_equal(o_v[0], o_s)


def test_disabled_mode_needs_an_explicit_reset():
    vec = _vec("plants/PendulumSwingUp-v0", 2, AutoresetMode.DISABLED, horizon=2)
    vec.reset(seed=0)
    a = np.zeros((2, 1), dtype=np.float32)
    vec.step(a)
    *_, trunc, _ = vec.step(a)
    assert trunc.all()
    with pytest.raises(RuntimeError, match="reset_mask"):
        vec.step(a)
    vec.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(RuntimeError, match=r"copies \[1\]"):
        vec.step(a)


def test_partial_reset_with_per_copy_options():
    vec = _vec("plants/CartPoleBalance-v0", 3, AutoresetMode.DISABLED)
    vec.reset(seed=0)
    before = vec.unwrapped.state
    x0 = np.array([[0.1, 0, 0, 0], [0.2, 0, 0, 0], [0.3, 0, 0, 0]])
    vec.reset(options={"reset_mask": np.array([False, True, False]), "x0": x0})
    after = vec.unwrapped.state
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    np.testing.assert_array_equal(after[1], x0[1])
    vec.reset(options={"x0": x0[0], "target": [0.5, 0, 0, 0]})
    np.testing.assert_array_equal(vec.unwrapped.state, np.repeat(x0[:1], 3, axis=0))
    np.testing.assert_array_equal(vec.unwrapped.goal[:, 0], [0.5] * 3)


def test_max_episode_steps_shortens_episodes():
    vec = _vec("plants/ArmReach-v0", 2, AutoresetMode.SAME_STEP, max_episode_steps=3)
    vec.reset(seed=0)
    truncs = [vec.step(np.zeros((2, 2), np.float32))[3].all() for _ in range(3)]
    assert truncs == [False, False, True]


def test_bad_input_raises_clear_errors():
    vec = _vec("plants/ArmReach-v0", 4)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((4, 2), np.float32))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(4, 2\)"):
        vec.step(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"action must have shape \(4, 2\)"):
        vec.step(np.zeros(2, np.float32))
    bad = np.zeros((4, 2), np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="action must be finite"):
        vec.step(bad)
    with pytest.raises(ValueError, match=r'options\["x0"\] must have shape \(4,\) or \(4, 4\)'):
        vec.reset(options={"x0": np.zeros((3, 4))})
    with pytest.raises(ValueError, match=r'options\["target"\] must have shape \(2,\) or \(4, 2\)'):
        vec.reset(options={"target": np.zeros(3)})
    with pytest.raises(ValueError, match=r'options\["reset_mask"\] must be a boolean array'):
        vec.reset(options={"reset_mask": np.ones(4, dtype=int)})
    with pytest.raises(ValueError, match="seed must be an integer"):
        vec.reset(seed=[1, 2, 3, 4])
    with pytest.raises(ValueError, match="autoreset_mode must be"):
        _vec("plants/ArmReach-v0", 2, "Sometimes")
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        plants.envs.ArmReachVectorEnv(num_envs=0)


def test_vector_render_gives_one_frame_per_copy():
    vec = _vec("plants/PendulumSwingUp-v0", 2, render_mode="rgb_array")
    vec.reset(seed=0)
    frames = vec.render()
    assert len(frames) == 2 and frames[0].shape == (400, 400, 3)
    assert not np.array_equal(frames[0], frames[1])
    vec.close()


@pytest.mark.parametrize("env_id", ["plants/ArmReach-v0", "plants/ArmHold-v0"])
def test_episode_start_gives_the_tasks_step_weights(env_id):
    """The compiled start of episodes against ``task.step_weights`` (Reach: final error only;
    Hold: tracking and final error), with random steps left without a target, some copies
    without any, and a partial reset."""
    vec = _vec(env_id, 5)
    vec.reset(seed=0)
    ep, task = vec.unwrapped._ep, vec.unwrapped.task
    rng = np.random.default_rng(4)
    T, k = task.horizon, task.output_dim
    targets = rng.uniform(-0.5, 0.5, (3, T, k))
    targets[rng.random((3, T)) < 0.6] = np.nan
    targets[0, :, 1] = np.nan  # one entry missing: no target at any step
    targets[2, -5:] = np.nan   # the last targeted step before the end
    rows = np.array([4, 1, 2])
    before = ep.c[[0, 3]].copy()
    ep.start(rows, task.sample(3, rng=rng).x0, targets)
    np.testing.assert_allclose(ep.c[rows], task.step_weights(targets), rtol=1e-15, atol=0)
    has = ~np.isnan(targets).any(axis=2)  # a step with any entry NaN has no target
    np.testing.assert_array_equal(ep.targets[rows], np.where(has[:, :, None], targets, 0.0))
    np.testing.assert_array_equal(ep.c[[0, 3]], before)
    np.testing.assert_array_equal(ep.goal[rows[0]], [0.0, 0.0])
    for j in (1, 2):
        np.testing.assert_array_equal(ep.goal[rows[j]], targets[j, np.flatnonzero(has[j])[-1]])
    assert (ep.t[rows] == 0).all()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_many_copies_agree_with_the_single_env(env_id):
    """Enough copies for the plants' batch-major pass (a short last chunk included): every
    copy's rewards and observations are the single env's, to the rounding of the pass."""
    n = 37
    vec = _vec(env_id, n, AutoresetMode.SAME_STEP, **SHORT)
    obs, _ = vec.reset(seed=2)
    picks = [0, 17, 36]
    singles = {i: gym.make(env_id, **SHORT) for i in picks}
    for i in picks:
        _start(singles[i], vec, i)
    rng = np.random.default_rng(5)
    for _ in range(SHORT["horizon"] - 1):
        a = rng.uniform(-1.2, 1.2, vec.action_space.shape).astype(np.float32)
        obs, rew, term, trunc, _ = vec.step(a)
        for i in picks:
            o, r, _, tr, _ = singles[i].step(a[i])
            assert rew[i] == pytest.approx(r, rel=1e-9, abs=1e-13) and tr == trunc[i]
            np.testing.assert_allclose(obs[i], o, rtol=1e-5, atol=1e-6)


def test_a_non_finite_action_changes_nothing():
    vec = _vec("plants/ArmHold-v0", 20)
    vec.reset(seed=0)
    vec.step(np.full((20, 2), 0.3, np.float32))
    u = vec.unwrapped
    state, steps = u.state, u.elapsed_steps
    bad = np.zeros((20, 2), np.float32)
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match="action must be finite"):
        vec.step(bad)
    np.testing.assert_array_equal(u.state, state)
    np.testing.assert_array_equal(u.elapsed_steps, steps)
    # the returned arrays are new on every step (Gymnasium's CartPole vector env does so too)
    a = np.zeros((20, 2), np.float32)
    first = vec.step(a)
    second = vec.step(a)
    for x, y in zip(first[:4], second[:4], strict=True):
        assert not np.shares_memory(x, y)


@pytest.mark.parametrize("env_id", ["plants/ArmReach-v0", "plants/PendulumSwingUp-v0",
                                    "plants/CartPoleBalance-v0"])
def test_observed_angles_match_numpy_trigonometry(env_id):
    """The kernels' vectorised sines and cosines (libm beyond 1e6 rad) against NumPy's, for
    ordinary angles and huge ones, in chunks of copies with a short last one."""
    n = 37
    vec = _vec(env_id, n)
    u = vec.unwrapped
    rng = np.random.default_rng(6)
    x0 = u.task.sample(n, rng=rng).x0
    a = 0 if "Arm" not in env_id else slice(0, 2)
    col = 2 if "CartPole" in env_id else a
    x0[:, col] = rng.uniform(-4.0, 4.0, x0[:, col].shape)
    x0[::5, col] += 3.0e7
    obs, _ = vec.reset(seed=0, options={"x0": x0})
    q = u.state[:, col].reshape(n, -1)
    k = q.shape[1]
    c0 = 2 if "CartPole" in env_id else 0
    np.testing.assert_allclose(obs[:, c0:c0 + k], np.cos(q), rtol=0, atol=2e-7)
    np.testing.assert_allclose(obs[:, c0 + k:c0 + 2 * k], np.sin(q), rtol=0, atol=2e-7)
    obs, *_ = vec.step(np.zeros(vec.action_space.shape, np.float32))
    q = u.state[:, col].reshape(n, -1)
    np.testing.assert_allclose(obs[:, c0:c0 + k], np.cos(q), rtol=0, atol=2e-7)
    if "Arm" in env_id:  # the hand, from the absolute angles by angle addition
        hand = u.plant.hand_position(u.state)
        np.testing.assert_allclose(obs[:, 6:8], hand, rtol=0, atol=1e-6)
