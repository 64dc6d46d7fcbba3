"""Delayed, noisy senses for the envs (plants.envs.senses): Gymnasium's check_env; without
noise, each channel's entries are the unwrapped env's observation ``delay`` steps earlier
(the reset observation before the start) and the goal is current; the vector wrapper is the
single one copy by copy across autoresets and masked resets; seeded noise of the given
standard deviation; bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import plants  # noqa: F401 - registers the environments
from plants.envs import ArmReachEnv, ArmReachVectorEnv, DelayedSenses, DelayedSensesVector, SenseChannel

WRAPPED = "is different from the unwrapped version"  # check_env's note on any wrapped env
DT = 0.01  # the arms' time step (s)
ARM_PROPRIO = ("cos_q1", "cos_q2", "sin_q1", "sin_q2", "q1_dot", "q2_dot")
ARM_COLS = {"cos_q1": 0, "cos_q2": 1, "sin_q1": 2, "sin_q2": 3, "q1_dot": 4, "q2_dot": 5,
            "hand_x": 6, "hand_y": 7, "goal_x": 8, "goal_y": 9, "time": 10}


def _quiet(delays=(0.02, 0.07)):
    """The default channels without noise."""
    return [SenseChannel("proprioception", ARM_PROPRIO, delays[0], 0.0),
            SenseChannel("vision", ("hand_x", "hand_y"), delays[1], 0.0)]


@pytest.mark.parametrize("env_id", ["plants/ArmReach-v0", "plants/MuscleArmReach-v0"])
def test_check_env_passes_without_warnings(env_id):
    env = DelayedSenses(gym.make(env_id))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=f".*{WRAPPED}.*")
        # rendering is the wrapped env's own (tests/test_envs.py checks it with a fake display)
        check_env(env, skip_render_check=True)
    env.close()


def test_default_channels_are_the_closed_loops():
    env = DelayedSenses(gym.make("plants/MuscleArmReach-v0"))
    proprio, vision = env.channels
    assert (proprio.name, proprio.delay, proprio.noise) == ("proprioception", 0.02, 1e-3)
    assert (vision.name, vision.delay, vision.noise) == ("vision", 0.07, 1e-3)
    assert vision.entries == ("hand_x", "hand_y")
    assert set(ARM_PROPRIO) < set(proprio.entries) and len(proprio.entries) == 6 + 6
    assert all(e.startswith("activation_") for e in proprio.entries[6:])
    assert env.delay_steps == {"proprioception": 2, "vision": 7}
    # the space is the env's, widened only on the noisy entries
    inner = env.env.observation_space
    same = env.observation_space.low == inner.low
    assert set(np.flatnonzero(same)) == {ARM_COLS["goal_x"], ARM_COLS["goal_y"], ARM_COLS["time"]}
    assert (env.observation_space.low <= inner.low).all()
    assert (env.observation_space.high >= inner.high).all()


@pytest.mark.parametrize("delays", [(0.02, 0.07), (0.0, 0.05), (0.03, 0.5)])
def test_noiseless_channels_are_the_observation_delay_steps_earlier(delays):
    rng = np.random.default_rng(3)
    raw_env, env = gym.make("plants/ArmReach-v0"), DelayedSenses(gym.make("plants/ArmReach-v0"),
                                                                _quiet(delays))
    raw = [raw_env.reset(seed=5)[0]]
    seen = [env.reset(seed=5)[0]]
    for _ in range(49):
        a = rng.uniform(-1, 1, 2)
        raw.append(raw_env.step(a)[0])
        seen.append(env.step(a)[0])
    raw, seen = np.array(raw), np.array(seen)
    for names, delay in ((ARM_PROPRIO, delays[0]), (("hand_x", "hand_y"), delays[1])):
        d = round(delay / DT)
        cols = [ARM_COLS[e] for e in names]
        for t in range(len(raw)):
            np.testing.assert_array_equal(seen[t, cols], raw[max(t - d, 0), cols])
    rest = [ARM_COLS[e] for e in ("goal_x", "goal_y", "time")]
    np.testing.assert_array_equal(seen[:, rest], raw[:, rest])  # current, exact
    assert not np.array_equal(raw[1:, 6:8], raw[:-1, 6:8])  # the hand moved


def _record(vec, steps, rng, mode, mask_at=None):
    """Run a wrapped vector env; per copy, its episodes as ``[x0, goal, actions, sensed]``."""
    N = vec.num_envs
    obs, _ = vec.reset(seed=11)
    eps = [[[vec.unwrapped.state[i], vec.unwrapped.goal[i], [], [obs[i]]]] for i in range(N)]
    ended = np.zeros(N, dtype=bool)
    for k in range(steps):
        if k == mask_at:
            mask = np.array([True] + [False] * (N - 1))
            before = obs.copy()
            obs, _ = vec.reset(options={"reset_mask": mask})
            np.testing.assert_array_equal(obs[1:], before[1:])  # the others: unchanged
            eps[0].append([vec.unwrapped.state[0], vec.unwrapped.goal[0], [], [obs[0]]])
            ended[0] = False
            continue
        if mode == AutoresetMode.DISABLED and ended.any():  # the user resets the ended ones
            obs, _ = vec.reset(options={"reset_mask": ended})
            for i in np.flatnonzero(ended):
                eps[i].append([vec.unwrapped.state[i], vec.unwrapped.goal[i], [], [obs[i]]])
            ended[:] = False
        a = rng.uniform(-1, 1, (N, 2))
        obs, _, term, trunc, info = vec.step(a)
        state, goal = vec.unwrapped.state, vec.unwrapped.goal
        for i in range(N):
            if mode == AutoresetMode.NEXT_STEP and ended[i]:
                eps[i].append([state[i], goal[i], [], [obs[i]]])
                continue
            eps[i][-1][2].append(a[i])
            if mode == AutoresetMode.SAME_STEP and trunc[i]:
                eps[i][-1][3].append(info["final_obs"][i])
                eps[i].append([state[i], goal[i], [], [obs[i]]])
            else:
                eps[i][-1][3].append(obs[i])
        ended = term | trunc
    return eps


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP,
                                  AutoresetMode.DISABLED])
def test_vector_wrapper_is_the_single_wrapper_copy_by_copy(mode):
    rng = np.random.default_rng(0)
    vec = DelayedSensesVector(ArmReachVectorEnv(num_envs=3, horizon=9, autoreset_mode=mode),
                              _quiet())
    eps = _record(vec, 30, rng, mode, mask_at=4)
    single = DelayedSenses(ArmReachEnv(horizon=9), _quiet())
    checked = 0
    for i, episodes in enumerate(eps):
        assert len(episodes) >= 3, (i, len(episodes))  # across autoresets
        for x0, goal, actions, sensed in episodes:
            obs, _ = single.reset(options={"x0": x0, "target": goal})
            np.testing.assert_array_equal(sensed[0], obs)
            for a, o in zip(actions, sensed[1:], strict=True):
                np.testing.assert_array_equal(o, single.step(a)[0])
                checked += 1
    assert checked > 60


def test_same_seed_same_noise_other_seed_other_noise():
    def run(seed):
        env = DelayedSenses(gym.make("plants/ArmReach-v0"))
        rng = np.random.default_rng(1)
        out = [env.reset(seed=seed)[0]]
        out += [env.step(rng.uniform(-1, 1, 2))[0] for _ in range(20)]
        return np.array(out)

    a, b, c = run(4), run(4), run(5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, :8], c[:, :8])
    # the wrapper's noise does not touch the env's stream: the same goal as unwrapped
    goal = gym.make("plants/ArmReach-v0").reset(seed=4)[0][8:10]
    np.testing.assert_array_equal(a[0, 8:10], goal)

    vec = [DelayedSensesVector(ArmReachVectorEnv(num_envs=4)) for _ in range(3)]
    seeds = (4, 4, 5)
    obs = [v.reset(seed=s)[0] for v, s in zip(vec, seeds, strict=True)]
    act = np.zeros((4, 2))
    obs = [np.stack([o, v.step(act)[0]]) for o, v in zip(obs, vec, strict=True)]
    np.testing.assert_array_equal(obs[0], obs[1])
    assert not np.array_equal(obs[0][..., :8], obs[2][..., :8])


@pytest.mark.parametrize("std", [1e-3, 0.02])
def test_noise_has_the_given_standard_deviation(std):
    N, steps = 32, 40
    chans = [SenseChannel("proprioception", ARM_PROPRIO, 0.0, std),
             SenseChannel("vision", ("hand_x", "hand_y"), 0.0, std)]
    raw_env = ArmReachVectorEnv(num_envs=N)
    env = DelayedSensesVector(ArmReachVectorEnv(num_envs=N), chans)
    rng = np.random.default_rng(2)
    raw, seen = [raw_env.reset(seed=9)[0]], [env.reset(seed=9)[0]]
    for _ in range(steps):
        a = rng.uniform(-1, 1, (N, 2))
        raw.append(raw_env.step(a)[0])
        seen.append(env.step(a)[0])
    err = np.array(seen, dtype=np.float64) - np.array(raw, dtype=np.float64)
    noisy = err[..., :8].ravel()
    n = noisy.size  # 10,496 draws: the sample std is within 5% with probability ~1 - 1e-11
    assert abs(noisy.std() / std - 1) < 0.05, noisy.std()
    assert abs(noisy.mean()) < 5 * std / np.sqrt(n)
    lag = np.corrcoef(err[1:, :, :8].ravel(), err[:-1, :, :8].ravel())[0, 1]
    assert abs(lag) < 0.05  # fresh noise at every step
    np.testing.assert_array_equal(err[..., 8:], 0.0)  # goal, time: exact
    assert all(o in env.observation_space for o in seen)


@pytest.mark.parametrize("channels, match", [
    ([SenseChannel("v", ("hand_z",))], r"channels: channel 'v': unknown observation entries"),
    ([SenseChannel("v", ("hand_x",), 0.02), SenseChannel("w", ("hand_x", "q1_dot"))],
     r"channels: entry 'hand_x' is in both 'v' and 'w'.*overlap"),
    ([SenseChannel("v", ("hand_x",), 0.51)], r"channels: channel 'v': delay .* longer than"),
    ([SenseChannel("v", ("hand_x",), 0.015)],
     r"channels: channel 'v': delay must be a non-negative multiple"),
    ([SenseChannel("v", ("hand_x",)), SenseChannel("v", ("hand_y",))], r"channels: names"),
    ("vision", r'channels must be "default"'),
    ([], r"channels must be"),
    ([{"name": "v", "entry": ["hand_x"]}], r"channels: a channel mapping needs"),
])
def test_bad_channels_raise_naming_the_argument(channels, match):
    for make in (lambda: gym.make("plants/ArmReach-v0"), lambda: ArmReachVectorEnv(num_envs=2)):
        wrap = DelayedSenses if isinstance(make(), gym.Env) else DelayedSensesVector
        with pytest.raises(ValueError, match=match):
            wrap(make(), channels)


@pytest.mark.parametrize("kwargs, match", [
    ({"delay": -0.01}, r"channel 'v': delay must be finite and >= 0"),
    ({"noise": -1e-3}, r"channel 'v': noise must be finite and >= 0"),
    ({"noise": float("nan")}, r"channel 'v': noise must be finite and >= 0"),
    ({"delay": True}, r"channel 'v': delay"),
    ({"entries": "hand_x"}, r"channel 'v': entries must be a non-empty list"),
    ({"entries": ()}, r"channel 'v': entries must be a non-empty list"),
    ({"entries": ("hand_x", "hand_x")}, r"channel 'v': entries repeat"),
])
def test_bad_channel_raises_naming_the_field(kwargs, match):
    args = {"name": "v", "entries": ("hand_x",), **kwargs}
    with pytest.raises(ValueError, match=match):
        SenseChannel(**args)


def test_default_needs_an_arm_and_the_wrappers_need_plant_envs():
    with pytest.raises(ValueError, match=r'channels="default" is for the arm'):
        DelayedSenses(gym.make("plants/PendulumSwingUp-v0"))
    # explicit channels work for any plant env
    env = DelayedSenses(gym.make("plants/PendulumSwingUp-v0"),
                        [SenseChannel("angle", ("cos_theta", "sin_theta"), 0.1, 0.0)])
    assert env.delay_steps == {"angle": 2}
    with pytest.raises(TypeError, match=r"env: DelayedSenses wraps a plants.envs.PlantEnv"):
        DelayedSenses(gym.make("Pendulum-v1"))
    with pytest.raises(TypeError, match=r"env: DelayedSensesVector wraps"):
        DelayedSensesVector(gym.make_vec("Pendulum-v1", num_envs=2))



def test_the_env_and_closed_loop_defaults_are_the_same_senses():
    from hfcontrol.observation import arm_senses

    env = DelayedSenses(gym.make("plants/ArmReach-v0"))
    loop = {ch.name: ch for ch in arm_senses(env.unwrapped.plant)}
    assert {name: ch.delay for name, ch in loop.items()} == env.delay_steps == {
        "proprioception": 2, "vision": 7}  # 20 ms and 70 ms at dt = 10 ms
    assert {name: ch.noise for name, ch in loop.items()} == {
        "proprioception": 1e-3, "vision": 1e-3}


def test_obs_names_name_every_observation_entry():
    for env_id in ("plants/ArmReach-v0", "plants/MuscleArmReach-v0"):
        env = gym.make(env_id)
        names = env.unwrapped.obs_names
        assert len(names) == env.observation_space.shape[0] == len(set(names))
        vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
        assert vec.unwrapped.obs_names == names
    # the docstring's order: [cos q1, cos q2, sin q1, sin q2, q1_dot, q2_dot, hand, goal, time]
    assert names[:11] == ("cos_q1", "cos_q2", "sin_q1", "sin_q2", "q1_dot", "q2_dot", "hand_x",
                          "hand_y", "goal_x", "goal_y", "time")
