"""Train a controller to swing the pendulum up and balance it (Pendulum-v1).

Usage::

    python experiments/pendulum_swingup.py --out DIR [--seed S] [--restarts N] [--quick]
    python experiments/pendulum_swingup.py --out DIR --gym-dynamics [--init CONTROLLER]

The recipe is ``hfcontrol.recipes.pendulum_swingup`` (``hfcontrol train pendulum-swingup``;
its docstring and module hold every setting): ``plants.Pendulum()`` (Gymnasium's
``Pendulum-v1`` constants and update; torque limit 2 N m, below what lifts the pendulum
directly, so the controller must pump energy over several swings), the cost
``plants.tasks.PendulumV1``, Pendulum-v1's own per-step cost in squares, from Pendulum-v1's
start distribution; a 32-unit network (the RNN with its recurrent weights frozen at zero: a
feedforward policy of the current observation), Hessian-free optimisation with exact
curvature through the loop, in float64, on 256 fresh episodes per update (64 of them for
the curvature products); a curriculum over the horizon with energy shaping, the first
phase screened from several initialisations, then Pendulum-v1's own cost unshaped. This
script runs it as a run folder
(:func:`hfcontrol.runs.train_run`) and adds the evaluation in Gymnasium's own env.

``--plain`` drops curriculum, shaping and screening; ``--restarts N`` trains N runs (seeds
``S + 1000 k``, in ``DIR/restart-k``) and keeps the one with the best validation score.
``--gym-dynamics`` trains through ``plants.GymDynamics(gymnasium.make("Pendulum-v1"))``
instead (finite-difference Jacobians, one Python call of Gymnasium's ``step`` per sample
and step: 15-17 times the time per update); validation runs through it as well. ``--init
CONTROLLER`` starts from a saved controller's weights (a warm start) instead of screening
fresh ones, and with ``--gym-dynamics`` runs the short schedule ``GYM_PHASES``. The
controller is saved on ``plants.Pendulum`` (the same dynamics, and a plant that
``Controller.save`` can describe).

Success on an episode: the pendulum is upright (|theta| < 0.1 rad, |theta_dot| < 0.5
rad/s) at step 100 and stays so to step 200. Measured on 100 held-out initial states
drawn as Pendulum-v1 draws them (a seed training never uses). Writes to ``DIR`` the run
folder (``controller.npz``, ``config.json``, ``history.json``, ``curve.json``,
``checkpoints/``) and ``metrics.json`` (``success_rate``, ``train_wall_s``,
``pendulum_v1_mean_return`` -- the controller run in Gymnasium's own ``Pendulum-v1``
for 100 episodes, seed 0 -- update counts and seconds per phase, and the learning
curve), ``phase_portrait.png``, ``trajectories.png`` and ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

#: ``--plain``: no curriculum, shaping or screening
PLAIN_PHASES = [[200, 0.0, 500]]
#: ``--quick`` (the tests): a few updates on short episodes
QUICK_PHASES = [[20, 5.0, 2], [20, 0.0, 1]]
#: through plants.GymDynamics from a warm start (``--gym-dynamics --init``)
GYM_PHASES = [[200, 0.0, 20]]


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restarts", type=int, default=1, help="networks trained (best kept)")
    parser.add_argument("--hidden", type=int, default=32)
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


def _options(args) -> dict:
    """The recipe's options for these flags."""
    options = {"hidden": args.hidden, "gym_dynamics": args.gym_dynamics, "init": args.init}
    if args.quick:
        options.update(phases=QUICK_PHASES, screen=1, batch=16, curvature=8)
    elif args.gym_dynamics and args.init is not None:
        options["phases"] = GYM_PHASES
    elif args.plain:
        options.update(phases=PLAIN_PHASES, screen=1)
    return options


def _phases_timing(out: Path, schedule) -> list[dict]:
    """Updates and seconds of each phase (and of each screened start) from the history."""
    history = json.loads((out / "history.json").read_text())
    timing: list[dict] = []
    candidates = history.get("candidate", [0] * len(history["phase"]))
    for phase, candidate, t in zip(history["phase"], candidates, history["time"], strict=True):
        if not timing or (timing[-1]["phase_index"], timing[-1]["candidate"]) != (phase,
                                                                                  candidate):
            timing.append({"phase_index": phase, "phase": list(schedule[phase]),
                           "candidate": candidate, "updates": 0, "seconds": 0.0})
        timing[-1]["updates"] += 1
        timing[-1]["seconds"] = t  # the time column restarts at each phase
    return timing


def main(argv=None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()  # before the import: loading the kernels counts
    from hfcontrol import runs
    from hfcontrol.controller import Controller
    from hfcontrol.persistence import atomic_write_text
    from hfcontrol.recipes import pendulum

    out = Path(args.out)
    options = _options(args)
    progress = not args.quick and sys.stderr.isatty()
    runs_done = []
    for restart in range(args.restarts):
        folder = out if args.restarts == 1 else out / f"restart-{restart}"
        metrics = runs.train_run("pendulum-swingup", folder, seed=args.seed + 1000 * restart,
                                 options=options, progress=progress, started=started)
        runs_done.append((metrics["validation_score"], restart, folder, metrics))
        print(f"restart {restart}: {metrics['summary']}", flush=True)
    _, kept, folder, metrics = min(runs_done, key=lambda r: r[:2])
    if folder != out:
        for name in ("controller.npz", "config.json", "history.json", "curve.json",
                     "learning_curve.png", "phase_portrait.png", "trajectories.png"):
            shutil.copyfile(folder / name, out / name)
    train_wall = sum(r[3]["train_wall_s"] for r in runs_done)  # the first with the imports
    controller = Controller.load(out / "controller.npz")
    returns = controller.evaluate("Pendulum-v1", 10 if args.quick else 100, seed=0)
    recipe_options = json.loads((out / "config.json").read_text())["recipe"]
    schedule = recipe_options["phases"]
    metrics.update({
        "train_wall_s": train_wall,
        "pendulum_v1_mean_return": float(returns.mean()),
        "pendulum_v1_median_return": float(np.median(returns)),
        "pendulum_v1_returns": returns.tolist(),
        "restart_kept": kept,
        "training_plant": "GymDynamics(Pendulum-v1)" if args.gym_dynamics else "Pendulum()",
        "phases_timing": _phases_timing(out, schedule),
        "settings": {"seed": args.seed, "restarts": args.restarts, "hidden": args.hidden,
                     "angle": recipe_options["angle"], "screen": recipe_options["screen"],
                     "batch": recipe_options["batch"], "cg_iter": recipe_options["cg_iter"],
                     "curvature": recipe_options["curvature"],
                     "recurrent": recipe_options["recurrent"],
                     "tolerated": recipe_options["tolerated"],
                     "near_upright": recipe_options["near_upright"],
                     "init": args.init, "phases": schedule}})
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"pendulum swing-up: {100 * metrics['success_rate']:.0f} % of 100 held-out starts "
          f"upright by step {pendulum.SETTLE} and to the end; Pendulum-v1 mean return "
          f"{returns.mean():.1f}; {metrics['updates']} updates in {train_wall:.0f} s "
          f"(with the restarts); wrote {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
