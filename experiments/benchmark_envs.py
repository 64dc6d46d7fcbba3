"""Steps per second of the plants' vector environments against Gymnasium's.

With ``num_envs`` copies (default 256), in one run, interleaved rounds, medians:

* every registered ``plants/`` environment through
  ``gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point")`` (the native
  vector env: one compiled call steps every copy);
* Gymnasium's own NumPy vector env of ``CartPole-v1`` (``vector_entry_point``);
* a ``SyncVectorEnv`` (``vectorization_mode="sync"``) of each registered environment, and of
  ``Pendulum-v1`` for scale.

Actions are drawn up front (uniform in the action space) and cycled, so that drawing them
is not timed. Prints the table and the ratios (native / Gymnasium's CartPole vector env,
native / SyncVectorEnv of the same env) and, with ``--out``, writes JSON. Usage::

    .venv/bin/python experiments/benchmark_envs.py [--num-envs 256] [--repeats 7] \
        [--out results/benchmark_envs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import gymnasium as gym
import numpy as np

import plants


def _bench(env, actions, seconds: float):
    """A closure that steps ``env`` for about ``seconds`` and returns steps (of one copy)
    per second."""
    env.reset(seed=0)
    n = env.num_envs
    k = len(actions)
    for i in range(3):  # warm up
        env.step(actions[i % k])
    t0 = time.perf_counter()
    env.step(actions[0])
    per = max(time.perf_counter() - t0, 1e-7)
    count = max(3, int(seconds / per))

    def run() -> float:
        step = env.step
        start = time.perf_counter()
        for i in range(count):
            step(actions[i % k])
        return n * count / (time.perf_counter() - start)

    return run


def _actions(space, count: int, seed: int) -> list:
    space.seed(seed)
    return [space.sample() for _ in range(count)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--num-envs", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians)")
    ap.add_argument("--seconds", type=float, default=0.15, help="time per measurement")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    N = args.num_envs

    benches: dict[str, object] = {}
    envs = []
    for env_id in plants.envs.ENV_IDS:
        vec = gym.make_vec(env_id, N, vectorization_mode="vector_entry_point")
        assert isinstance(vec.unwrapped, plants.envs.PlantVectorEnv)
        envs.append(vec)
        benches[f"{env_id} native"] = _bench(vec, _actions(vec.action_space, 16, 0), args.seconds)
        sync = gym.make_vec(env_id, N, vectorization_mode="sync")
        envs.append(sync)
        benches[f"{env_id} sync"] = _bench(sync, _actions(sync.action_space, 4, 0),
                                           args.seconds)
    cart = gym.make_vec("CartPole-v1", N, vectorization_mode="vector_entry_point")
    envs.append(cart)
    benches["CartPole-v1 gymnasium-vector"] = _bench(cart, _actions(cart.action_space, 16, 0),
                                                     args.seconds)
    pend = gym.make_vec("Pendulum-v1", N, vectorization_mode="sync")
    envs.append(pend)
    benches["Pendulum-v1 sync"] = _bench(pend, _actions(pend.action_space, 4, 0), args.seconds)

    samples: dict[str, list[float]] = {name: [] for name in benches}
    for _ in range(args.repeats):
        for name, run in benches.items():
            samples[name].append(run())
    med = {name: float(np.median(v)) for name, v in samples.items()}
    for env in envs:
        env.close()

    cart_rate = med["CartPole-v1 gymnasium-vector"]
    print(f"steps/s with {N} copies, medians of {args.repeats} interleaved rounds "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)\n")
    head = f"{'environment':28s} {'native':>12s} {'sync':>10s} {'native/sync':>12s} {'/gym cartpole':>14s}"
    print(head)
    print("-" * len(head))
    rows = {}
    for env_id in plants.envs.ENV_IDS:
        nat, syn = med[f"{env_id} native"], med[f"{env_id} sync"]
        rows[env_id] = {"native": nat, "sync": syn, "native_over_sync": nat / syn,
                        "native_over_gym_cartpole": nat / cart_rate}
        print(f"{env_id:28s} {nat:12.4g} {syn:10.4g} {nat / syn:12.1f} {nat / cart_rate:14.2f}")
    print(f"{'CartPole-v1 (gymnasium vec)':28s} {cart_rate:12.4g}")
    print(f"{'Pendulum-v1 (sync)':28s} {'':12s} {med['Pendulum-v1 sync']:10.4g}")
    slowest = min(rows, key=lambda k: rows[k]["native"])
    worst_sync = min(rows, key=lambda k: rows[k]["native_over_sync"])
    print(f"\nslowest native env: {slowest}, {rows[slowest]['native_over_gym_cartpole']:.2f}x "
          f"Gymnasium's CartPole vector env (required >= 2, aim 5)")
    print(f"smallest native/sync ratio: {worst_sync}, {rows[worst_sync]['native_over_sync']:.0f}x "
          f"(required >= 50)")
    result = {"num_envs": N, "repeats": args.repeats, "medians": med, "rows": rows,
              "gym_cartpole_vector": cart_rate, "samples": samples}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main()
