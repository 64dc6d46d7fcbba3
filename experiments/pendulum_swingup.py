"""Train a recurrent controller to swing the pendulum up and balance it (Pendulum-v1).

Usage::

    python experiments/pendulum_swingup.py --out DIR [--seed S] [--restarts N] [--quick]
    python experiments/pendulum_swingup.py --out DIR --gym-dynamics [--init CONTROLLER]

The plant is ``plants.Pendulum()`` (Gymnasium's ``Pendulum-v1`` constants and update;
torque limit 2 N m, below what lifts the pendulum directly, so the controller must pump
energy over several swings). The cost is ``plants.tasks.PendulumV1``: Pendulum-v1's
per-step cost ``theta_n^2 + 0.1 theta_dot^2 + 0.001 u^2`` as a sum of squares (``ANGLE``
below: ``"wrapped"`` charges Gymnasium's own wrapped angle, ``"cosine"`` its smooth twin
``2 - 2 cos theta``), from Pendulum-v1's start distribution (theta ~ U(-pi, pi),
theta_dot ~ U(-1, 1)). A 32-unit RNN senses (theta_dot, cos theta, sin theta) and outputs
the torque through a tanh (times 2 N m, so never clipped); Hessian-free optimisation with
exact curvature through the loop, in float64.

The recipe (all its settings are in the block below): a curriculum over the horizon
(60 -> 100 -> 200 steps) with energy shaping (``PendulumV1(energy_weight=...)``) in the
first phases, to leave the flat basin of the do-nothing policy; the first phase screened
from ``SCREEN`` initialisations, the one with the best validation return going on; the
weights kept those of the update with the fewest failures on a validation batch, then the
highest return. ``--plain`` drops curriculum, shaping and screening; ``--restarts N``
trains N networks (seeds ``S + 1000 k``) and keeps the best of them by the same rule.

``--gym-dynamics`` trains the same recipe through
``plants.GymDynamics(gymnasium.make("Pendulum-v1"))`` instead (finite-difference
Jacobians, one Python call of Gymnasium's ``step`` per sample and step: 15-17 times the
time per update); validation runs through it as well. ``--init CONTROLLER`` starts from a
saved controller's weights (a warm start) instead of screening fresh ones, and then runs
the short schedule ``GYM_PHASES`` with ``--gym-dynamics``. The controller is saved on
``plants.Pendulum`` (the same dynamics, and a plant that ``Controller.save`` can describe).

Success on an episode: the pendulum is upright (|theta| < 0.1 rad, |theta_dot| < 0.5
rad/s) at step 100 and stays so to step 200. Measured on 100 held-out initial states
drawn as Pendulum-v1 draws them (a seed training never uses). Writes to ``DIR``:
``controller.npz``, ``metrics.json`` (``success_rate``, ``train_wall_s``,
``pendulum_v1_mean_return`` -- the controller run in Gymnasium's own ``Pendulum-v1``
for 100 episodes, seed 0 -- update counts and seconds per phase, and the learning
curve), ``phase_portrait.png``, ``trajectories.png`` and ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np


# ------------------------------------------------------------------------------------------
# The training recipe
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """One stage of the curriculum."""

    horizon: int  #: steps per training episode
    energy_weight: float  #: PendulumV1's energy-shaping weight
    updates: int  #: Hessian-free updates


#: PendulumV1's angle term: Gymnasium's own ``theta_n^2`` ("wrapped") or ``2 - 2 cos``
ANGLE = "wrapped"
#: (a fourth phase without shaping, Phase(200, 0.0, 150), and 50 more updates of the third
#: never beat update 201 on validation, while the held-out return fell from -266 to -326)
PHASES = (Phase(60, 5.0, 100), Phase(100, 2.0, 100), Phase(200, 1.0, 100))
#: the first phase is run from this many initialisations (seeds ``seed + 1000 j``); the one
#: with the best validation return goes on to the next phases
SCREEN = 4
PLAIN_PHASES = (Phase(200, 0.0, 500),)
QUICK_PHASES = (Phase(20, 5.0, 2), Phase(20, 0.0, 1))
#: through plants.GymDynamics from a warm start (--gym-dynamics --init)
GYM_PHASES = (Phase(200, 0.0, 20),)
NETWORK = {"hidden": 32, "layers": ["Linear", "Tanh", "Tanh"],
           "W_init_params": {"init_type": "gaussian", "coeff": 1.0},
           "W_rec_params": {"init_type": "gaussian", "coeff": 0.5}}
SENSING = {"inputs": "none", "observation": {"linear": [1], "angles": [0]},
           "control_scale": 2.0, "dtype": np.float64}
BATCH = 64  #: episodes per update, for the gradient and the curvature
OPTIMIZER = {"CG_iter": 60, "init_damping": 1.0}
VALIDATION = {"episodes": 64, "seed": 654_321, "every": 1}
HELDOUT = {"episodes": 100, "seed": 123_456}


def selection_score(states: np.ndarray, controls: np.ndarray) -> tuple[float, float]:
    """Model selection on the validation batch, smaller is better: the fraction of
    failures, then minus the mean Pendulum-v1 return. The success rate swings by tens of
    percent between updates while the return changes slowly."""
    return 1.0 - float(success(states).mean()), -float(pendulum_v1_return(states,
                                                                          controls).mean())


# ------------------------------------------------------------------------------------------
def success(states: np.ndarray) -> np.ndarray:
    """Per episode: upright (|theta| < 0.1, |theta_dot| < 0.5) from step 100 to the end."""
    from plants.tasks import wrap_angle

    ok = (np.abs(wrap_angle(states[:, :, 0])) < 0.1) & (np.abs(states[:, :, 1]) < 0.5)
    return ok[:, 100:].all(axis=1)


def pendulum_v1_return(states: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """Per episode: Pendulum-v1's return of our rollout (its reward charges the state
    before each step, ``X[:, :T]``, and the torque, never clipped here)."""
    from plants.tasks import wrap_angle

    theta, omega = wrap_angle(states[:, :-1, 0]), states[:, :-1, 1]
    return -(theta**2 + 0.1 * omega**2 + 0.001 * controls[..., 0] ** 2).sum(axis=1)


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restarts", type=int, default=1, help="networks trained (best kept)")
    parser.add_argument("--hidden", type=int, default=NETWORK["hidden"])
    parser.add_argument("--plain", action="store_true",
                        help="no curriculum, shaping or screening: 500 updates at 200 steps")
    parser.add_argument("--gym-dynamics", action="store_true",
                        help="train through plants.GymDynamics(gymnasium.make('Pendulum-v1'))")
    parser.add_argument("--init", help="start from this saved controller's weights")
    parser.add_argument("--quick", action="store_true", help="a few updates (for the tests)")
    args = parser.parse_args(argv)
    if args.seed < 0 or args.restarts < 1 or args.hidden < 1:
        parser.error("--seed must be >= 0, --restarts and --hidden >= 1")
    if args.init is not None and not Path(args.init).is_file():
        parser.error(f"--init must be a saved controller file, got {args.init!r}")
    return args


def main(argv=None) -> int:
    args = _arguments(argv)
    start_clock = time.perf_counter()
    # imported here, so that the clock includes loading the compiled kernels
    import hfcontrol as hf
    import plants
    from hfcontrol.persistence import atomic_write_text
    from hfcontrol.training import train
    from plants.tasks import PendulumV1

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        phases, screen = QUICK_PHASES, 1
    elif args.gym_dynamics and args.init is not None:
        phases, screen = GYM_PHASES, 1
    elif args.plain:
        phases, screen = PLAIN_PHASES, 1
    else:
        phases, screen = PHASES, SCREEN
    if args.init is not None:
        screen = 1
    pendulum = plants.Pendulum()
    if args.gym_dynamics:
        import gymnasium as gym

        plant = plants.GymDynamics(gym.make("Pendulum-v1"))
    else:
        plant = pendulum
    objective = PendulumV1(plant, angle=ANGLE)  # 200 steps: success is judged at 100-200
    small = 16 if args.quick else None
    heldout = objective.sample(small or HELDOUT["episodes"], seed=HELDOUT["seed"])
    validation = objective.sample(small or VALIDATION["episodes"], seed=VALIDATION["seed"])
    init_W = None if args.init is None else hf.Controller.load(args.init).net.W.copy()

    def fresh_net(seed):
        rng = np.random.default_rng(seed)
        net = hf.RNNet([3, args.hidden, 1], layers=NETWORK["layers"], rng=rng,
                       dtype=SENSING["dtype"], W_init_params=NETWORK["W_init_params"],
                       W_rec_params=NETWORK["W_rec_params"])
        if init_W is not None:
            net.W = init_W.copy()
        return net, rng

    best = None  # (score, W, restart, update)
    curve = {"update": [], "time": [], "heldout": [], "success": []}
    timing = []  # per phase: updates and seconds
    for restart in range(args.restarts):
        seed = args.seed + 1000 * restart
        first = _screen(phases[0], screen, seed, fresh_net, plant, validation, timing,
                        args.quick)
        net, rng, optimizer = first
        evaluation = hf.ClosedLoop(plant, objective, net, rng=rng, **SENSING)
        done = phases[0].updates if screen > 1 else 0
        for phase in phases[1:] if screen > 1 else phases:
            task = PendulumV1(plant, horizon=phase.horizon, energy_weight=phase.energy_weight,
                              angle=ANGLE)
            loop = hf.ClosedLoop(plant, task, net, rng=rng, **SENSING)

            def record(state, base=done, restart=restart, evaluation=evaluation,
                       last=phase.updates):
                nonlocal best
                k = base + state.update + 1
                if k % VALIDATION["every"] and state.update + 1 != last:
                    return
                val = evaluation.rollout(validation, noise=False)
                score = selection_score(val.states, val.controls)
                if best is None or score < best[0]:
                    best = (score, evaluation.net.W.copy(), restart, k)
                if restart == 0 and k % 10 == 0:
                    run = evaluation.rollout(heldout, noise=False)
                    curve["update"].append(k)
                    curve["time"].append(time.perf_counter() - start_clock)
                    curve["heldout"].append(-float(pendulum_v1_return(run.states,
                                                                      run.controls).mean()))
                    curve["success"].append(float(success(run.states).mean()))

            clock = time.perf_counter()
            train(loop, optimizer, lambda k, task=task, rng=rng: (task.sample(BATCH, rng=rng),),
                  updates=phase.updates, callbacks=[record],
                  progress=not args.quick and sys.stderr.isatty())
            timing.append({"phase": astuple(phase), "restart": restart, "updates": phase.updates,
                           "seconds": time.perf_counter() - clock})
            done += phase.updates
            print(f"phase {astuple(phase)}: {phase.updates} updates in {timing[-1]['seconds']:.0f}"
                  f" s; best validation so far: {100 * (1 - best[0][0]):.0f} %, return "
                  f"{-best[0][1]:.1f} (update {best[3]})", flush=True)
    train_wall = time.perf_counter() - start_clock
    net.W = best[1]
    # the controller on plants.Pendulum (the same dynamics as GymDynamics(Pendulum-v1), and a
    # plant that Controller.save can describe)
    controller = hf.Controller(hf.ClosedLoop(pendulum, PendulumV1(pendulum, angle=ANGLE), net,
                                             **SENSING))
    controller.save(out / "controller.npz")
    run = controller.rollout(heldout)
    ok = success(run.states)
    returns = controller.evaluate("Pendulum-v1", 10 if args.quick else 100, seed=0)
    metrics = {"success_rate": float(ok.mean()), "train_wall_s": train_wall,
               "pendulum_v1_mean_return": float(returns.mean()),
               "pendulum_v1_median_return": float(np.median(returns)),
               "pendulum_v1_returns": returns.tolist(),
               "heldout_mean_return": float(pendulum_v1_return(run.states, run.controls).mean()),
               "restart_kept": best[2], "update_kept": best[3],
               "training_plant": repr(plant),
               "updates": int(sum(t["updates"] for t in timing)),
               "phases_timing": timing,
               "settings": {"seed": args.seed, "restarts": args.restarts, "hidden": args.hidden,
                            "angle": ANGLE, "screen": screen, "batch": BATCH,
                            "optimizer": OPTIMIZER, "init": args.init,
                            "phases": [astuple(p) for p in phases]},
               "learning_curve": curve}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    _figures(out, run, ok, pendulum.dt, curve)
    print(f"pendulum swing-up: {100 * ok.mean():.0f} % of {len(ok)} held-out starts upright "
          f"by step 100 and to the end; Pendulum-v1 mean return {returns.mean():.1f}; "
          f"{metrics['updates']} updates in {train_wall:.0f} s; wrote {out}/")
    return 0


def _screen(phase, count, seed, fresh_net, plant, validation, timing, quick):
    """Train the first phase from ``count`` initialisations; return the network (at its
    best validation return, checked every 10 updates), generator and optimiser of the best
    one."""
    import hfcontrol as hf
    from hfcontrol.training import train
    from plants.tasks import PendulumV1

    net, rng = fresh_net(seed)
    optimizer = hf.opt.HessianFree(**OPTIMIZER)
    if count == 1:
        return net, rng, optimizer
    task = PendulumV1(plant, horizon=phase.horizon, energy_weight=phase.energy_weight,
                      angle=ANGLE)
    objective = PendulumV1(plant, angle=ANGLE)
    best = None
    for j in range(count):
        net, rng = fresh_net(seed + 1000 * j)
        optimizer = hf.opt.HessianFree(**OPTIMIZER)
        loop = hf.ClosedLoop(plant, task, net, rng=rng, **SENSING)
        evaluation = hf.ClosedLoop(plant, objective, net, rng=rng, **SENSING)
        kept = [None]

        def record(state, evaluation=evaluation, kept=kept, optimizer=optimizer):
            if (state.update + 1) % 10:
                return
            val = evaluation.rollout(validation, noise=False)
            r = float(pendulum_v1_return(val.states, val.controls).mean())
            if kept[0] is None or r > kept[0][0]:
                kept[0] = (r, evaluation.net.W.copy(), optimizer.damping)

        clock = time.perf_counter()
        train(loop, optimizer, lambda k, rng=rng: (task.sample(BATCH, rng=rng),),
              updates=phase.updates, callbacks=[record], progress=not quick and sys.stderr.isatty())
        timing.append({"phase": astuple(phase), "screen": j, "updates": phase.updates,
                       "seconds": time.perf_counter() - clock, "validation_return": kept[0][0]})
        print(f"screening {j + 1}/{count}: {phase.updates} updates in "
              f"{timing[-1]['seconds']:.0f} s, validation return {kept[0][0]:.1f}", flush=True)
        if best is None or kept[0][0] > best[0]:
            net.W = kept[0][1]
            # a fresh optimiser at the kept update's damping (no CG warm start from later)
            optimizer = hf.opt.HessianFree(**OPTIMIZER)
            optimizer.damping = kept[0][2]
            best = (kept[0][0], net, rng, optimizer)
    return best[1:]


def _figures(out, run, ok, dt, curve) -> None:
    from hfcontrol import figures

    figures.plot_phase_portrait(run.states[:20, :, 0], run.states[:20, :, 1],
                                out / "phase_portrait.png",
                                title="Pendulum, 20 held-out starts (o)")
    t = np.arange(run.states.shape[1]) * dt
    _plot_trajectories(t, run.states[:20], run.controls[:20], ok[:20], out / "trajectories.png")
    if curve["update"]:
        figures.plot_learning_curves({"Hessian-free": curve}, out / "learning_curve.png",
                                     ylabel="held-out -return (Pendulum-v1)")


def _plot_trajectories(t, states, controls, ok, path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from plants.tasks import wrap_angle

    fig = Figure(figsize=(10, 3.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for s, u, good in zip(states, controls, ok, strict=True):
        colour = "C0" if good else "C3"
        axes[0].plot(t, wrap_angle(s[:, 0]), color=colour, lw=0.8)
        axes[1].plot(t, s[:, 1], color=colour, lw=0.8)
        axes[2].plot(t[:-1], u[:, 0], color=colour, lw=0.8)
    for ax, label in zip(axes, ("angle (rad, 0 upright)", "velocity (rad/s)", "torque (N m)"),
                         strict=True):
        ax.set_xlabel("time (s)")
        ax.set_ylabel(label)
    fig.suptitle("held-out starts (blue: success, red: failure)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
