"""Train a recurrent controller to balance the cart-pole, and run it in Gymnasium.

Usage::

    python experiments/cartpole_balance.py --out DIR [--seed S] [--hidden N] [--updates N]
        [--episodes N] [--quick]

The recipe is ``hfcontrol.recipes.cartpole_balance`` (``hfcontrol train cartpole-balance``):
``plants.CartPole`` (CartPole-v1's constants and equations, a continuous force within 10 N,
a 2.4 m track with end stops) and ``plants.tasks.Balance``, a 32-unit RNN sensing the
state, Hessian-free optimisation with exact curvature through the loop on 2 s then 5 s
episodes. Held out: 81 starts (the grid ``{-0.1, 0, 0.1}^4``) run for 10 s; success is
CartPole-v1's criterion (pole within 12 degrees, cart within 2.4 m, at every step).

Then two Gymnasium evaluations of the trained controller, ``--episodes`` episodes each
(seeds 0, 1, ...):

* ``plants/CartPoleBalance-v0`` (this project's continuous-force environment, 500 steps),
  through ``Controller.evaluate``: the mean return (minus the task's cost);
* Gymnasium's own ``CartPole-v1``, whose actions are discrete (push left or right with
  10 N): the controller's force is turned into the push of the same sign (bang-bang), so
  the network meets a plant it was not trained on. The return is the number of steps
  (out of 500) before the pole passes 12 degrees or the cart leaves the track.

Writes to ``DIR`` (a run folder, see :mod:`hfcontrol.runs`): ``controller.npz``,
``config.json``, ``metrics.json`` (the held-out metrics, ``gym_plants_cartpole_returns``,
``gym_cartpole_v1_returns`` and their means, ``train_wall_s``), ``phase_portrait.png``
(the pole's angle against its velocity), ``trajectories.png`` (cart position, pole angle
and force), ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=32, help="recurrent units")
    parser.add_argument("--updates", type=int, default=None, help="updates (default 120)")
    parser.add_argument("--episodes", type=int, default=20,
                        help="Gymnasium episodes per environment (default 20)")
    parser.add_argument("--quick", action="store_true", help="a few updates (for the tests)")
    args = parser.parse_args(argv)
    if args.seed < 0 or args.hidden < 1 or args.episodes < 1:
        parser.error("--seed must be >= 0, --hidden and --episodes >= 1")
    if args.updates is not None and args.updates < 2:
        parser.error("--updates must be >= 2 (two phases)")
    return args


def cartpole_v1_returns(controller, episodes: int, seed: int = 0) -> np.ndarray:
    """Returns of ``controller`` in Gymnasium's ``CartPole-v1``: each step pushes the cart
    the way the controller's force points (action 1: right, 0: left)."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    returns = np.zeros(episodes)
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            controller.reset()
            while True:
                force = controller.act(controller.observe(np.asarray(obs, dtype=float)))
                obs, reward, terminated, truncated, _ = env.step(int(force[0] > 0))
                returns[i] += reward
                if terminated or truncated:
                    break
    finally:
        env.close()
    return returns


def main(argv=None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()  # before the import: loading the kernels counts
    import plants.envs  # noqa: F401  (registers plants/CartPoleBalance-v0)
    from hfcontrol import runs
    from hfcontrol.controller import Controller
    from hfcontrol.persistence import atomic_write_text

    options = {"hidden": args.hidden}
    if args.quick:
        options["batch"] = 8
    metrics = runs.train_run("cartpole-balance", args.out, seed=args.seed,
                             updates=args.updates or (2 if args.quick else None),
                             options=options, progress=not args.quick and sys.stderr.isatty(),
                             started=started)
    controller = Controller.load(Path(args.out) / "controller.npz")
    episodes = 3 if args.quick else args.episodes
    ours = controller.evaluate("plants/CartPoleBalance-v0", episodes, seed=0)
    theirs = cartpole_v1_returns(controller, episodes, seed=0)
    metrics.update({"gym_plants_cartpole_returns": ours.tolist(),
                    "gym_plants_cartpole_mean_return": float(ours.mean()),
                    "gym_cartpole_v1_returns": theirs.tolist(),
                    "gym_cartpole_v1_mean_return": float(theirs.mean()),
                    "gym_cartpole_v1_solved_fraction": float(np.mean(theirs >= 500))})
    path = Path(args.out) / "metrics.json"
    atomic_write_text(path, json.dumps(metrics, indent=2))
    print(f"{metrics['summary']} (compilation included); plants/CartPoleBalance-v0 mean return "
          f"{ours.mean():.3g}; CartPole-v1 (bang-bang) mean return {theirs.mean():.0f} / 500 "
          f"over {episodes} episodes; wrote {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
