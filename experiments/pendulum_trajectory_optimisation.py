"""Per-episode trajectory optimisation of Pendulum-v1's return: a yardstick for a controller.

Usage::

    python experiments/pendulum_trajectory_optimisation.py --controller RUN/controller.npz \\
        --out DIR [--episodes 100] [--seed 0] [--steps 100] [--quick]

``--controller`` is a saved :class:`hfcontrol.Controller` for the pendulum, e.g. the
``controller.npz`` that ``experiments/pendulum_swingup.py --out RUN`` writes. The script runs
it in Gymnasium's own ``Pendulum-v1`` for ``--episodes`` episodes, episode ``i`` reset with
seed ``--seed + i`` (the episodes of ``controller.evaluate("Pendulum-v1", episodes,
seed=seed)``), and records each episode's start state, torques and return. Then it asks
what open-loop torques could have done from the same starts: it minimises, for every
episode, ``Pendulum-v1``'s cost of the first ``--steps`` steps (``theta_n^2 + 0.1
theta_dot^2 + 0.001 u^2`` charged on the state before each step) plus the LQR cost-to-go
``x_T' P x_T`` of the state reached (``theta`` wrapped; ``P`` solves the discrete Riccati
equation of the step linearised upright, with the same weights), by L-BFGS-B on the
torques within the torque limit, with the exact gradient by the adjoint (backpropagation
through the plant's step Jacobians, velocity clip included). It starts from four torque
sequences and keeps each episode's best: the controller's own torques, bang-bang pumping
at the torque limit (switching every 12 steps) starting either way, and the clipped LQR
feedback law simulated from the start (the starts near the top where a catch exists).

The optimised value is a yardstick, not a return that a policy reached: after step
``--steps`` the LQR cost-to-go stands in for the rest of the episode (exact only for the
linearised, unclipped pendulum), and the optimisation is local. The dynamics are
``plants.Pendulum()`` (Gymnasium's ``Pendulum-v1`` constants and update: g = 10, m = l =
1, dt = 0.05, speed clip 8, torque limit 2) and the weights those of
``plants.tasks.PendulumV1(angle="wrapped")``; the tests check the replay of a Gymnasium
episode's torques against Gymnasium's own return.

Writes ``DIR/metrics.json``: the controller's mean return in ``Pendulum-v1`` (whole
episodes), the controller's torques scored by the yardstick's objective, the optimised
mean (best of the four starts) and the mean from each start, the mean return and the
optimised mean per bin of ``|theta_0|``, the episodes where the LQR-started optimisation
won, per-episode values, settings and wall time. ``--quick`` (for trying it out): at most
5 episodes and 200 L-BFGS-B iterations per start.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

#: L-BFGS-B limits per start (full run, ``--quick``)
MAX_ITERATIONS, QUICK_MAX_ITERATIONS = 3000, 200
#: ``--quick`` caps the episodes at this
QUICK_EPISODES = 5
#: steps per half-period of the bang-bang pumping starts
PUMP_HALF_PERIOD = 12
#: bin edges of ``|theta_0|`` (rad) for the per-bin means; the last bin is closed at pi
ANGLE_BINS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, np.pi)


class PendulumV1Objective:
    """``Pendulum-v1``'s cost of ``steps`` open-loop torques plus an LQR terminal cost.

    For a start ``x_0 = [theta_0, theta_dot_0]`` and torques ``u_0 .. u_{T-1}`` (``T =
    steps``)::

        J = sum_{t<T} [ q_theta theta_n,t^2 + q_dot theta_dot_t^2 + r u_t^2 ] + z_T' P z_T

    with ``theta_n`` the angle wrapped to ``[-pi, pi)``, ``z_T = [theta_n,T, theta_dot_T]``
    and ``P`` the discrete-time LQR cost-to-go of the plant's step linearised at rest upright,
    for ``Q = diag(q_theta, q_dot)`` and ``R = r``. The sum is minus ``Pendulum-v1``'s return
    of those ``T`` steps for torques within the limit.

    Parameters
    ----------
    steps : int
        Optimised steps ``T``.
    plant : plants.Pendulum, optional
        Dynamics; default ``plants.Pendulum()``, Gymnasium's ``Pendulum-v1``.
    """

    def __init__(self, steps: int, plant=None) -> None:
        import scipy.linalg

        import plants
        from plants.tasks import PendulumV1

        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        self.steps = int(steps)
        self.plant = plants.Pendulum() if plant is None else plant
        task = PendulumV1(self.plant, angle="wrapped")
        weights = task.weights
        self.state_weights = np.asarray(weights.output_weights, dtype=float)
        # the task spreads the effort weight over the episode: effort = r / (horizon dt)
        self.torque_weight = weights.effort * task.horizon * self.plant.dt
        self.max_torque = float(self.plant.control_high[0])
        a, b = self.plant.jacobians(np.zeros((1, 2)), np.zeros((1, 1)))
        self.linear_a, self.linear_b = a[0], b[0]
        self.terminal = scipy.linalg.solve_discrete_are(
            self.linear_a, self.linear_b, np.diag(self.state_weights),
            np.array([[self.torque_weight]]))

    def _check(self, torques, starts) -> tuple[np.ndarray, np.ndarray]:
        starts = np.asarray(starts, dtype=float)
        if starts.ndim != 2 or starts.shape[1] != 2 or not np.isfinite(starts).all():
            raise ValueError(f"starts must be a finite array [episodes, 2], got shape "
                             f"{starts.shape}")
        torques = np.asarray(torques, dtype=float)
        if torques.shape != (starts.shape[0], self.steps) or not np.isfinite(torques).all():
            raise ValueError(f"torques must be a finite array [episodes, steps] = "
                             f"{(starts.shape[0], self.steps)}, got shape {torques.shape}")
        return np.ascontiguousarray(torques), starts

    def lqr_gain(self) -> np.ndarray:
        """The LQR feedback gain ``K[1, 2]`` (``u = -K z``) that goes with ``P``."""
        b, p = self.linear_b, self.terminal
        return np.linalg.solve(np.array([[self.torque_weight]]) + b.T @ p @ b,
                               b.T @ p @ self.linear_a)

    def lqr_torques(self, starts) -> np.ndarray:
        """The clipped LQR feedback law ``u = clip(-K z)`` simulated from each start, as
        torques ``[episodes, steps]``."""
        from plants.tasks import wrap_angle

        _, starts = self._check(np.zeros((np.shape(starts)[0], self.steps)), starts)
        gain = self.lqr_gain()[0]
        x = starts.copy()
        torques = np.empty((x.shape[0], self.steps))
        for t in range(self.steps):
            u = np.clip(-(gain[0] * wrap_angle(x[:, 0]) + gain[1] * x[:, 1]),
                        -self.max_torque, self.max_torque)
            torques[:, t] = u
            x = self.plant.step(x, u[:, None])
        return torques

    def costs(self, torques, starts) -> np.ndarray:
        """``J`` of each episode: torques ``[episodes, steps]``, starts ``[episodes, 2]``."""
        return self.costs_and_gradients(torques, starts, gradient=False)[0]

    def costs_and_gradients(self, torques, starts, gradient: bool = True
                            ) -> tuple[np.ndarray, np.ndarray | None]:
        """``J`` of each episode ``[episodes]`` and ``dJ/du`` ``[episodes, steps]`` (adjoint).

        Parameters
        ----------
        torques : array ``[episodes, steps]``
            Torques, within ``±max_torque`` (the plant clips beyond; the gradient is then 0).
        starts : array ``[episodes, 2]``
            Start states ``[theta, theta_dot]``.
        gradient : bool
            Compute the gradient (else ``None``).
        """
        from plants.tasks import wrap_angle

        torques, starts = self._check(torques, starts)
        n, steps = torques.shape
        states = self.plant.rollout(starts, torques[:, :, None])  # [n, steps + 1, 2]
        wrapped = states.copy()
        wrapped[:, :, 0] = wrap_angle(states[:, :, 0])
        running = wrapped[:, :steps] ** 2 @ self.state_weights
        final = wrapped[:, steps]
        costs = (running.sum(axis=1) + self.torque_weight * (torques**2).sum(axis=1)
                 + np.einsum("bi,ij,bj->b", final, self.terminal, final))
        if not gradient:
            return costs, None
        a, b = self.plant.jacobians(states[:, :steps].reshape(-1, 2), torques.reshape(-1, 1))
        a, b = a.reshape(n, steps, 2, 2), b.reshape(n, steps, 2)
        # d(theta_n^2)/d theta = 2 theta_n away from the wrap point (a set of measure zero)
        adjoint = 2.0 * final @ self.terminal
        grads = np.empty((n, steps))
        for t in range(steps - 1, -1, -1):
            grads[:, t] = 2.0 * self.torque_weight * torques[:, t] + np.einsum(
                "bi,bi->b", adjoint, b[:, t])
            adjoint = (2.0 * self.state_weights * wrapped[:, t]
                       + np.einsum("bi,bij->bj", adjoint, a[:, t]))
        return costs, grads


def optimise(objective: PendulumV1Objective, torques, starts,
             max_iterations: int = MAX_ITERATIONS) -> tuple[np.ndarray, np.ndarray, dict]:
    """Minimise the objective's summed ``J`` over all episodes' torques by L-BFGS-B within
    ``±max_torque`` (the episodes are independent, so this minimises each one's ``J``).

    Parameters
    ----------
    objective : PendulumV1Objective
    torques : array ``[episodes, steps]``
        The start of the search (clipped to the torque limit first).
    starts : array ``[episodes, 2]``
        Start states.
    max_iterations : int
        L-BFGS-B iteration limit (function evaluations: twice that).

    Returns
    -------
    costs : ndarray ``[episodes]``
        ``J`` of each episode at the solution; never above the start's (if the search ends
        worse, which L-BFGS-B's line search does not allow, the start is kept).
    torques : ndarray ``[episodes, steps]``
    info : dict
        L-BFGS-B's iterations and message.
    """
    from scipy.optimize import minimize

    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int | np.integer) \
            or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive integer, got {max_iterations!r}")
    torques, starts = objective._check(torques, starts)
    limit = objective.max_torque
    initial = np.clip(torques, -limit, limit)
    shape = initial.shape

    def total(flat):
        costs, grads = objective.costs_and_gradients(flat.reshape(shape), starts)
        return costs.sum(), grads.ravel()

    result = minimize(total, initial.ravel(), jac=True, method="L-BFGS-B",
                      bounds=[(-limit, limit)] * initial.size,
                      options={"maxiter": int(max_iterations), "maxfun": 2 * int(max_iterations)})
    solution = result.x.reshape(shape)
    costs, start_costs = objective.costs(solution, starts), objective.costs(initial, starts)
    worse = costs > start_costs
    solution[worse], costs[worse] = initial[worse], start_costs[worse]
    return costs, solution, {"iterations": int(result.nit), "message": str(result.message)}


def pumping_torques(episodes: int, steps: int, max_torque: float, sign: float) -> np.ndarray:
    """Bang-bang torques ``±max_torque`` switching every ``PUMP_HALF_PERIOD`` steps,
    starting with ``sign * max_torque``: ``[episodes, steps]``."""
    phase = (np.arange(steps) // PUMP_HALF_PERIOD) % 2 == 0
    return np.tile(np.where(phase, sign, -sign) * max_torque, (episodes, 1))


def record_episodes(controller, episodes: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the controller in Gymnasium's ``Pendulum-v1`` as ``controller.evaluate`` does
    (episode ``i`` reset with ``seed + i``) and keep what the yardstick needs.

    Returns
    -------
    starts : ndarray ``[episodes, 2]``
        Start states ``[theta, theta_dot]``.
    torques : ndarray ``[episodes, episode_steps]``
        The torques applied (the actions clipped to the torque limit, as the env does).
    returns : ndarray ``[episodes]``
        Each episode's return.
    """
    import gymnasium as gym

    env = gym.make("Pendulum-v1")
    try:
        policy = controller.as_policy(env)
        limit = float(env.unwrapped.max_torque)
        starts, torques, returns = [], [], np.zeros(episodes)
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            policy.reset()
            starts.append(np.array(env.unwrapped.state, dtype=float))
            applied = []
            while True:
                action = policy(obs)
                applied.append(float(np.clip(action, -limit, limit)[0]))
                obs, reward, terminated, truncated, _ = env.step(action)
                returns[i] += float(reward)
                if terminated or truncated:
                    break
            torques.append(applied)
    finally:
        env.close()
    return np.array(starts), np.array(torques), returns


def bin_means(angles: np.ndarray, **values: np.ndarray) -> list[dict]:
    """Count and mean of each of ``values`` per bin of ``|theta_0|`` (``ANGLE_BINS``)."""
    magnitude = np.abs(angles)
    bins = []
    for k, (low, high) in enumerate(zip(ANGLE_BINS[:-1], ANGLE_BINS[1:], strict=True)):
        last = k == len(ANGLE_BINS) - 2
        inside = (magnitude >= low) & ((magnitude <= high) if last else (magnitude < high))
        row = {"abs_theta0_low": float(low), "abs_theta0_high": float(high),
               "episodes": int(inside.sum())}
        for name, value in values.items():
            row[name] = float(value[inside].mean()) if inside.any() else None
        bins.append(row)
    return bins


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controller", required=True,
                        help="a saved Controller (e.g. RUN/controller.npz of pendulum_swingup.py)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument("--steps", type=int, default=100, help="optimised steps per episode")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help=f"at most {QUICK_EPISODES} episodes, {QUICK_MAX_ITERATIONS} "
                             "iterations per start")
    args = parser.parse_args(argv)
    episode_steps = _episode_steps()
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if not 1 <= args.steps <= episode_steps:
        parser.error(f"--steps must be between 1 and Pendulum-v1's {episode_steps} steps, "
                     f"got {args.steps}")
    if not Path(args.controller).is_file():
        parser.error(f"--controller must be a saved controller file, got {args.controller!r}")
    return args


def _episode_steps() -> int:
    import gymnasium as gym

    return int(gym.spec("Pendulum-v1").max_episode_steps)


def main(argv=None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()
    from hfcontrol.controller import Controller
    from hfcontrol.persistence import atomic_write_text

    controller = Controller.load(args.controller)
    episodes = min(args.episodes, QUICK_EPISODES) if args.quick else args.episodes
    max_iterations = QUICK_MAX_ITERATIONS if args.quick else MAX_ITERATIONS
    starts, applied, returns = record_episodes(controller, episodes, args.seed)
    objective = PendulumV1Objective(args.steps)
    own = applied[:, :args.steps]
    limit = objective.max_torque
    initial = {"controller": own,
               "pump_positive_first": pumping_torques(episodes, args.steps, limit, 1.0),
               "pump_negative_first": pumping_torques(episodes, args.steps, limit, -1.0),
               "lqr": objective.lqr_torques(starts)}
    optimised, solver = {}, {}
    for name, torques in initial.items():
        costs, _, info = optimise(objective, torques, starts, max_iterations)
        optimised[name], solver[name] = -costs, info
        print(f"from {name}: mean {optimised[name].mean():.1f} "
              f"({info['iterations']} iterations, {info['message']})", flush=True)
    candidates = np.stack(list(optimised.values()))
    best = candidates.max(axis=0)
    others = np.stack([v for k, v in optimised.items() if k != "lqr"]).max(axis=0)
    caught = optimised["lqr"] > others + 1.0  # the LQR start wins by more than 1
    own_score = -objective.costs(own, starts)
    metrics = {
        "controller": str(args.controller),
        "controller_mean_return": float(returns.mean()),
        "controller_median_return": float(np.median(returns)),
        "controller_torques_objective_mean": float(own_score.mean()),
        "optimised_mean": float(best.mean()),
        "optimised_median": float(np.median(best)),
        "optimised_mean_by_start": {k: float(v.mean()) for k, v in optimised.items()},
        "lqr_start_wins": {"episodes": np.flatnonzero(caught).tolist(),
                           "starts": starts[caught].tolist(),
                           "gain": (optimised["lqr"] - others)[caught].tolist()},
        "per_bin": bin_means(starts[:, 0], controller_mean_return=returns,
                             optimised_mean=best),
        "episodes": {"starts": starts.tolist(), "controller_return": returns.tolist(),
                     "optimised": best.tolist()},
        "solver": solver,
        "settings": {"episodes": episodes, "seed": args.seed, "steps": args.steps,
                     "max_iterations": max_iterations, "quick": args.quick,
                     "pump_half_period": PUMP_HALF_PERIOD,
                     "lqr_gain": objective.lqr_gain().tolist(),
                     "terminal_cost": objective.terminal.tolist()},
        "wall_s": time.perf_counter() - started,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"controller mean return {returns.mean():.1f}; trajectory-optimised (best of "
          f"{len(initial)} starts) {best.mean():.1f}; LQR start wins on {int(caught.sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
