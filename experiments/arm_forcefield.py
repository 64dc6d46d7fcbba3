"""Reaching in a velocity-dependent curl field: adaptation, after-effects and force-channel
probes, on the two-link arm or the six-muscle arm.

Usage::

    python experiments/arm_forcefield.py --out DIR [--plant arm|muscle] [--curl 15]
        [--seed S] [--null-updates N] [--field-updates N] [--washout-updates N] [--quick]

The protocol of force-field adaptation studies (Shadmehr & Mussa-Ivaldi 1994), with
Hessian-free updates as the learner, on ``--plant arm`` (the torque-driven two-link arm of
``hfcontrol.recipes.arm_reach``) or ``--plant muscle`` (``plants.MuscleArm``, MotorNet's
``RigidTendonArm26``, with the recipe ``hfcontrol.recipes.muscle_reach``: an instructed
delay, a go cue, catch trials, delayed and noisy proprioception):

1. **null field**: a controller is trained from scratch on the plant's recipe (a run
   folder in ``DIR/null``), then trained ``--probe-updates`` more updates in the null field
   (the baseline batches of the per-batch figure);
2. **early field**: the curl field ``F = K p_dot``, ``K = [[0, c], [-c, 0]]`` N s/m
   (``plant.replace(curl=c)``) is switched on; the first field batch is measured before
   any update in the field;
3. **late field**: after ``--field-updates`` Hessian-free updates on reaches in the field;
4. **washout**: the field is switched off and ``--washout-updates`` updates are made in the
   null field; its first batch, measured before any update, shows the after-effect.

Every batch is measured, before its update, on 8 centre-out reaches of 10 cm (fixed
targets; training draws its targets at random from the disc of the recipe; for the muscle
arm the go cue comes at the middle of its range and no probe is a catch trial), in the field
of that phase and without noise: the **lateral deviation** (the perpendicular distance of
the hand from the straight start-target line where it is largest, signed: positive to the
left of the movement, i.e. counter-clockwise) and the **angle at peak speed** (of the hand
velocity from the target direction, counter-clockwise positive), each averaged over the 8
reaches. With ``c > 0`` the field pushes the hand clockwise of its velocity.

**Force-channel probes** (``plants.tasks.ForceChannel``; error-clamp trials, Scheidt et al.
2000): at the end of the null phase and of the field phase the same 8 reaches are made in a
channel along each start-target line (6000 N/m, 50 N s/m; the field off), which holds the
hand on the line, and the lateral force the controller presses against the wall is
recorded. It is compared with the force that would cancel the field at the channel trial's
own hand velocity (``c`` times the speed, to the left): the **adaptation index** is the
least-squares slope of the measured force on that ideal force over all steps and reaches
(0: no compensation, 1: full; Smith, Ghazizadeh & Shadmehr 2006's measure).

Writes to ``DIR``: ``metrics.json`` (per phase: deviation, angle at peak speed, final
error; the channel probes' adaptation index, peak forces and largest deviation from the
line, and their mean force profiles; the per-batch series; the null run's summary; wall
time), ``hand_paths.png`` (the 8 reaches in the four phases), ``lateral_deviation.png``
(deviation and angle at peak speed per batch over the whole experiment),
``channel_force.png`` (the channel probes' lateral force against the field's predicted
force, over time) and the null run folder ``DIR/null``.
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
    parser.add_argument("--plant", choices=("arm", "muscle"), default="arm",
                        help="the torque-driven two-link arm (recipe arm-reach, default) or "
                             "the six-muscle arm (recipe muscle-reach)")
    parser.add_argument("--curl", type=float, default=15.0,
                        help="curl field strength c (N s/m); default 15")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--null-updates", type=int, default=None,
                        help="updates of the null-field training (default: the recipe's; "
                             "arm-reach 120, muscle-reach 80)")
    parser.add_argument("--probe-updates", type=int, default=5,
                        help="null-field batches measured before the field (default 5)")
    parser.add_argument("--field-updates", type=int, default=30,
                        help="updates in the field (default 30)")
    parser.add_argument("--washout-updates", type=int, default=15,
                        help="updates after the field is off (default 15)")
    parser.add_argument("--quick", action="store_true", help="a few updates (for the tests)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if not np.isfinite(args.curl) or args.curl == 0:
        parser.error("--curl must be a finite, non-zero number (N s/m)")
    for name in ("null_updates", "probe_updates", "field_updates", "washout_updates"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.quick:
        args.null_updates = args.null_updates or 3
        args.probe_updates, args.field_updates, args.washout_updates = 1, 2, 2
    return args


def path_measures(paths: np.ndarray, starts: np.ndarray, goals: np.ndarray, dt: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Signed lateral deviation (m) and angle at peak speed (rad) of each hand path.

    Parameters
    ----------
    paths : ndarray ``[B, T + 1, 2]``
        Hand positions (m).
    starts, goals : ndarray ``[B, 2]``
        Start and target hand positions.
    dt : float
        Time step (s), for the velocities.

    Returns
    -------
    deviation : ndarray ``[B]``
        The perpendicular distance from the start-target line where its magnitude is
        largest, positive to the left of the start-to-target direction.
    angle : ndarray ``[B]``
        The angle from the target direction to the hand velocity at peak hand speed
        (counter-clockwise positive), in (-pi, pi].
    """
    u = goals - starts
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    rel = paths - starts[:, None, :]
    perp = u[:, None, 0] * rel[:, :, 1] - u[:, None, 1] * rel[:, :, 0]
    rows = np.arange(paths.shape[0])
    deviation = perp[rows, np.argmax(np.abs(perp), axis=1)]
    vel = np.diff(paths, axis=1) / dt
    v = vel[rows, np.argmax(np.linalg.norm(vel, axis=2), axis=1)]
    angle = np.arctan2(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0], (u * v).sum(axis=1))
    return deviation, angle


def probe_batch(task, distance: float = 0.10, n: int = 8):
    """``n`` centre-out reaches of ``distance`` (m) from the task's start posture, as a
    :class:`plants.tasks.TaskBatch`, and their goals ``[n, 2]``. A task with a go cue
    (``DelayedReach``) gets it at the middle of its range, and no catch trial."""
    from hfcontrol.recipes.arm import centre_out
    from plants.tasks import TaskBatch

    if not hasattr(task, "episodes"):
        batch = centre_out(task, distance, n)
        return batch, batch.targets[:, -1]
    angles = np.arange(n) * 2 * np.pi / n
    goals = task.start + distance * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    go = np.full(n, (task._go[0] + task._go[1]) // 2)
    return TaskBatch(task.sample(n, seed=0).x0, *task.episodes(goals, go)), goals


def channel_probes(make_loop, plant, probe, goals, curl: float) -> dict:
    """The probe reaches, each in a force channel along its start-target line
    (:class:`plants.tasks.ForceChannel`, the field off): per reach ``[n, T + 1]`` the lateral
    force pressed against the channel (N), the force that would cancel the curl field ``c``
    at the same hand velocities, and the deviation from the line (m); and the adaptation
    index (least-squares slope of the first on the second)."""
    from plants.tasks import ForceChannel, TaskBatch

    K = np.array([[0.0, curl], [-curl, 0.0]])
    force, ideal, dev = [], [], []
    for i in range(goals.shape[0]):
        one = TaskBatch(probe.x0[i:i + 1], probe.targets[i:i + 1],
                        None if probe.inputs is None else probe.inputs[i:i + 1])
        start = plant.hand_position(probe.x0[i:i + 1])[0]
        channel = ForceChannel(start, goals[i])
        loop = make_loop(channel.plant(plant))
        X = loop.rollout(one, noise=False, cost=False).states
        d, _, f = channel.lateral(plant, X)
        force.append(f[0])
        ideal.append(channel.field_force(K, plant, X)[0])
        dev.append(d[0])
    force, ideal, dev = np.array(force), np.array(ideal), np.array(dev)
    return {"force": force, "ideal": ideal, "deviation": dev,
            "adaptation_index": float((force * ideal).sum() / (ideal * ideal).sum()),
            "peak_force_N": float(np.abs(force).max(axis=1).mean()),
            "peak_ideal_force_N": float(np.abs(ideal).max(axis=1).mean()),
            "max_abs_deviation_m": float(np.abs(dev).max())}


def main(argv=None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()  # before the import: loading the kernels counts
    from hfcontrol import figures, runs
    from hfcontrol import optimizers as opt
    from hfcontrol.closed_loop import ClosedLoop
    from hfcontrol.controller import Controller
    from hfcontrol.persistence import atomic_write_text
    from hfcontrol.training import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.quick and sys.stderr.isatty()
    recipe = {"arm": "arm-reach", "muscle": "muscle-reach"}[args.plant]
    null_run = runs.train_run(recipe, out / "null", seed=args.seed,
                              updates=args.null_updates,
                              options={"batch": 16} if args.quick else None,
                              progress=progress, started=started)
    trained = Controller.load(out / "null" / "controller.npz")
    net, base = trained.net, trained.loop
    arms = {"null": base.plant, "field": base.plant.replace(curl=args.curl)}
    rng = np.random.default_rng(1_000_000 + args.seed)  # the adaptation's own draws

    def make_loop(plant):
        # the trained loop's task, senses and cues, on another plant
        return ClosedLoop(plant, base.task, net, feedback=base.feedback, delay=base.delay,
                          obs_noise=base.obs_noise, observation=base.observation,
                          inputs=base.inputs, rng=rng)

    loops = {name: make_loop(arm) for name, arm in arms.items()}
    probe, goals = probe_batch(base.task)
    batch = int(runs.load_config(out / "null")["recipe"]["batch"])  # the recipe's
    dt = base.plant.dt

    def measure(loop):
        states = loop.rollout(probe, noise=False, cost=False).states
        paths = loop.task.observe(states)
        dev, ang = path_measures(paths, paths[:, 0], goals, dt)
        err = np.linalg.norm(paths[:, -1] - goals, axis=1)
        return {"deviation_m": float(dev.mean()), "abs_deviation_m": float(np.abs(dev).mean()),
                "angle_deg": float(np.degrees(ang).mean()), "final_error_m": float(err.mean()),
                "paths": paths}

    schedule = [("null", "null", args.probe_updates), ("field", "field", args.field_updates),
                ("washout", "null", args.washout_updates)]
    optimizer = opt.HessianFree(CG_iter=60, init_damping=1.0)
    series = {"phase": [], "batch": [], "deviation_m": [], "abs_deviation_m": [],
              "angle_deg": [], "final_error_m": []}
    snapshots = {}
    channels = {}
    done = 0
    for phase, field, updates in schedule:
        loop = loops[field]
        measured = []

        def record(m, phase=phase, base_batch=done, measured=measured):
            measured.append(m)
            series["phase"].append(phase)
            series["batch"].append(base_batch + len(measured))
            for key in ("deviation_m", "abs_deviation_m", "angle_deg", "final_error_m"):
                series[key].append(m[key])

        record(measure(loop))  # the phase's first batch, before any update in it
        train(loop, optimizer, lambda k, task=loop.task: (task.sample(batch, rng=rng),),
              updates=updates, callbacks=[lambda state, loop=loop: record(measure(loop))],
              rngs=[rng], progress=progress)
        if phase in ("null", "field"):  # channel probes at the phase's end
            channels[phase] = channel_probes(make_loop, base.plant, probe, goals, args.curl)
        # the last measurement is the state after the phase's last update (not a batch of
        # this phase): it is kept as the phase's end, and the next phase starts anew
        snapshots[phase] = (measured[0], measured[-1])
        done += updates + 1
    train_wall = time.perf_counter() - started

    def summary(m):
        return {k: m[k] for k in ("deviation_m", "abs_deviation_m", "angle_deg",
                                  "final_error_m")}

    phases = {"null": summary(snapshots["null"][-1]),
              "early_field": summary(snapshots["field"][0]),
              "late_field": summary(snapshots["field"][-1]),
              "washout_first": summary(snapshots["washout"][0]),
              "washout_late": summary(snapshots["washout"][-1])}
    metrics = {"curl_Ns_per_m": args.curl, "seed": args.seed, "phases": phases,
               "channel_probes": {
                   name: {k: v for k, v in channels[key].items()
                          if k not in ("force", "ideal", "deviation")}
                   | {"mean_force_N": channels[key]["force"].mean(axis=0).tolist(),
                      "mean_ideal_force_N": channels[key]["ideal"].mean(axis=0).tolist()}
                   for name, key in (("null", "null"), ("late_field", "field"))},
               "per_batch": series,
               "updates": {"null_training": null_run["updates"], "null": args.probe_updates,
                           "field": args.field_updates, "washout": args.washout_updates},
               "null_run": {k: null_run[k] for k in ("summary", "heldout_final_error_m",
                                                     "train_wall_s")},
               "signatures": {
                   "early_field_deviation_exceeds_null": abs(phases["early_field"]["deviation_m"])
                   > 2 * abs(phases["null"]["deviation_m"]) + 1e-3,
                   "late_field_recovers": abs(phases["late_field"]["deviation_m"])
                   < 0.5 * abs(phases["early_field"]["deviation_m"]),
                   "washout_after_effect_opposite": bool(
                       np.sign(phases["washout_first"]["deviation_m"])
                       == -np.sign(phases["early_field"]["deviation_m"]))},
               "wall_s": train_wall}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, default=bool))
    start = loops["null"].task.start
    figures.plot_hand_paths({"null field (end)": snapshots["null"][-1]["paths"],
                             "early field (1st batch)": snapshots["field"][0]["paths"],
                             "late field (adapted)": snapshots["field"][-1]["paths"],
                             "washout (1st batch)": snapshots["washout"][0]["paths"]},
                            goals, start, out / "hand_paths.png",
                            title=f"Curl field {args.curl:g} N s/m: centre-out reaches of 10 cm")
    _plot_series(series, out / "lateral_deviation.png", args.curl)
    _plot_channel(channels, dt, out / "channel_force.png", args.curl, args.plant)
    p = phases
    ci = {k: channels[k]["adaptation_index"] for k in channels}
    print(f"curl field {args.curl:g} N s/m: lateral deviation (mean of 8 reaches, + = "
          f"counter-clockwise) null {1000 * p['null']['deviation_m']:+.1f} mm, early field "
          f"{1000 * p['early_field']['deviation_m']:+.1f} mm, late field "
          f"{1000 * p['late_field']['deviation_m']:+.1f} mm, washout "
          f"{1000 * p['washout_first']['deviation_m']:+.1f} mm; force-channel adaptation "
          f"index null {ci['null']:.2f}, late field {ci['field']:.2f}; {train_wall:.0f} s; "
          f"wrote {out}/")
    return 0


def _plot_channel(channels, dt, path, curl, plant) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title in ((axes[0], "null", "null field (end)"),
                           (axes[1], "field", "late field (adapted)")):
        c = channels[key]
        t = np.arange(c["force"].shape[1]) * dt
        for i in range(c["force"].shape[0]):
            ax.plot(t, c["force"][i], color="C0", lw=0.6, alpha=0.35)
            ax.plot(t, c["ideal"][i], color="C3", lw=0.6, alpha=0.35, ls="--")
        ax.plot(t, c["force"].mean(axis=0), color="C0", lw=2,
                label="force pressed on the channel (mean of 8)")
        ax.plot(t, c["ideal"].mean(axis=0), color="C3", lw=2, ls="--",
                label=f"force that cancels the field (c = {curl:g} N s/m)")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{title}: adaptation index {c['adaptation_index']:.2f}", fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("lateral force (N, + = left of the movement)")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Force-channel probes, {'six-muscle' if plant == 'muscle' else 'two-link'} "
                 f"arm: 8 centre-out reaches of 10 cm")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_series(series, path, curl) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    phase = np.array(series["phase"])
    batch = np.array(series["batch"])
    colours = {"null": "0.3", "field": "C3", "washout": "C0"}
    for ax, key, scale, label in ((axes[0], "deviation_m", 1000, "lateral deviation (mm)"),
                                  (axes[1], "angle_deg", 1, "angle at peak speed (deg)")):
        values = scale * np.array(series[key])
        for name, colour in colours.items():
            sel = phase == name
            ax.plot(batch[sel], values[sel], "o-", color=colour, ms=4, lw=1.2,
                    label={"null": "null field", "field": f"curl field {curl:g} N s/m",
                           "washout": "washout (field off)"}[name])
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("batch (measured before its update; last point of a phase: after "
                       "its last update)")
    fig.suptitle("8 centre-out reaches per batch (mean; + = counter-clockwise)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
