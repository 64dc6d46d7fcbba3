"""Reaching in a velocity-dependent curl field: adaptation, after-effects and force-channel
probes, on the torque-driven two-link arm or the six-muscle arm.

Usage::

    python experiments/arm_forcefield.py --out DIR [--plant torque|muscle] [--curl 15]
        [--seed S] [--null-updates N] [--probe-updates N] [--field-updates N]
        [--washout-updates N] [--quick]

The protocol of force-field adaptation studies (Shadmehr & Mussa-Ivaldi 1994, J Neurosci
14:3208), with Hessian-free updates as the learner, on ``--plant torque`` (the default: the
torque-driven ``plants.TwoLinkArm`` of the recipe ``hfcontrol.recipes.arm_reach``) or
``--plant muscle`` (``plants.MuscleArm``, MotorNet's ``RigidTendonArm26``, with the recipe
``hfcontrol.recipes.muscle_reach``: an instructed delay, a go cue, catch trials, and two
senses, proprioception 20 ms and vision 70 ms late, each noisy):

1. **null field**: a controller is trained from scratch on the plant's recipe (a run
   folder in ``DIR/null``; ``--null-updates``, default the recipe's), then trained
   ``--probe-updates`` more updates in the null field (the baseline batches of the
   per-batch figure);
2. **early field**: the curl field ``F = K p_dot``, ``K = [[0, c], [-c, 0]]`` N s/m
   (``plant.replace(curl=c)``) is switched on; the first field batch is measured before
   any update in the field;
3. **late field**: after ``--field-updates`` Hessian-free updates on reaches in the field;
4. **washout**: the field is switched off and ``--washout-updates`` updates are made in the
   null field; its first batch, measured before any update, shows the after-effect.

Every phase trains as its recipe does (its batch size, its senses, delays and noise, its
task: random targets from the recipe's disc, and for the muscle arm random go cues and one
catch trial in five), through one network whose weights carry over from phase to phase.

Every batch is measured, before its update, on 8 reaches of 10 cm to fixed held-out
targets, in the field of that phase and without noise. For the torque arm they are today's
8 centre-out targets (0, 45, ... degrees); for the muscle arm the muscle-reach recipe's 8
held-out far targets (22.5 degrees off the axes), with the go cue at the middle of its
range and no catch trial. Training draws its targets at random from the disc, so no probe
target is ever a training target (``metrics.json`` records the nearest one drawn in the
null, field and washout phases). Measured: the **lateral deviation** (the perpendicular
distance of the hand from the straight start-target line where it is largest, signed:
positive to the left of the movement, i.e. counter-clockwise) and the **angle at peak
speed** (of the hand velocity from the target direction, counter-clockwise positive), each
averaged over the 8 reaches. With ``c > 0`` the field pushes the hand clockwise of its
velocity.

**Force-channel probes** (``plants.tasks.ForceChannel``; error-clamp trials, Scheidt et al.
2000, J Neurophysiol 84:853): at the end of the null phase and of the field phase the same 8
reaches are made in a channel along each start-target line (6000 N/m, 50 N s/m; the field
off), which holds the hand on the line, and the lateral force the controller presses
against the wall (stiffness x deviation + damping x lateral velocity) is recorded at every
step. It is compared with the force the field predicts at the channel trial's own hand
velocity, the force that would cancel ``K p_dot`` (``c`` times the speed, to the left):
the **adaptation index** is the least-squares slope, through the origin, of the measured
force on that predicted force over all steps and reaches (0: no compensation, 1: full),
the adaptation coefficient of Smith, Ghazizadeh & Shadmehr 2006 (PLoS Biol 4:e179), who
regress the channel-trial force profile on the ideal one. Also reported: the fraction of
the measured force's variance the slope explains (``r2``), and the late-field index after
subtracting each reach's null-phase channel force (a baseline that removes the lateral
force the controller makes without a field, e.g. for a curved path).

Writes to ``DIR``: ``metrics.json`` (per phase: deviation, angle at peak speed, final
error; the channel probes' adaptation index, r2, peak forces and largest deviation from
the line, per reach and mean force profiles; the per-batch series; the null run's
summary; wall time), ``hand_paths.png`` (the 8 reaches in the four phases),
``lateral_deviation.png`` (deviation and angle at peak speed per batch over the whole
experiment), ``channel_force.png`` (the channel probes' lateral force against the field's
predicted force, over time), ``channel_force_targets.png`` (the same per held-out target,
with the null phase's channel force) and the null run folder ``DIR/null``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

#: the recipe of each plant
RECIPES = {"torque": "arm-reach", "muscle": "muscle-reach"}
#: the probes' directions: the first target's angle (rad) from the +x axis; the muscle
#: arm's are the muscle-reach recipe's held-out far targets
PROBE_OFFSET = {"torque": 0.0, "muscle": np.pi / 8}
PLANT_NAMES = {"torque": "torque-driven two-link arm", "muscle": "six-muscle arm"}


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--plant", choices=tuple(RECIPES), default="torque",
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


def probe_batch(task, distance: float = 0.10, n: int = 8, offset: float = 0.0):
    """``n`` reaches of ``distance`` (m) from the task's start posture in directions
    ``offset + 2 pi k / n`` (rad), as a :class:`plants.tasks.TaskBatch`, and their goals
    ``[n, 2]``. A task with a go cue (``DelayedReach``) gets it at the middle of its range,
    and no catch trial; another task gets its target at the last step."""
    from plants.tasks import TaskBatch

    angles = offset + np.arange(n) * 2 * np.pi / n
    goals = task.start + distance * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if not hasattr(task, "episodes"):
        start = task.sample(n, seed=0)
        targets = np.full_like(start.targets, np.nan)
        targets[:, -1] = goals
        return TaskBatch(start.x0, targets), goals
    go = np.full(n, (task._go[0] + task._go[1]) // 2)
    return TaskBatch(task.sample(n, seed=0).x0, *task.episodes(goals, go)), goals


def adaptation_index(force: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """The least-squares slope through the origin of ``force`` on ``predicted`` (arrays of
    one shape, N), over all their entries, and the fraction of the variance of ``force``
    about zero that the fit explains (1 - residual / total sum of squares).

    The adaptation coefficient of force-channel studies (Smith, Ghazizadeh & Shadmehr 2006,
    PLoS Biol 4:e179): 0 when the force has no component like the field's, 1 when it is
    the force that cancels the field. ``predicted`` must not be all zeros."""
    force, predicted = np.asarray(force, float), np.asarray(predicted, float)
    if force.shape != predicted.shape:
        raise ValueError(f"force and predicted must have one shape, got {force.shape} and "
                         f"{predicted.shape}")
    pp = float((predicted * predicted).sum())
    if not pp > 0:
        raise ValueError("predicted must not be all zeros (a field and a moving hand)")
    slope = float((force * predicted).sum() / pp)
    ff = float((force * force).sum())
    r2 = 1.0 - float(((force - slope * predicted) ** 2).sum()) / ff if ff > 0 else 0.0
    return slope, r2


def channel_probes(make_loop, plant, probe, goals: np.ndarray, curl: float) -> dict:
    """The probe reaches, each in a force channel along its start-target line
    (:class:`plants.tasks.ForceChannel`, the field off).

    Parameters
    ----------
    make_loop : callable
        ``make_loop(plant)``: the trained closed loop on another plant.
    plant : TwoLinkArm or MuscleArm
        The arm without a field; each reach gets ``ForceChannel(...).plant(plant)``.
    probe : plants.tasks.TaskBatch
        The reaches (``n`` of them).
    goals : ndarray ``[n, 2]``
        Their targets: each channel runs from the start hand position to its goal.
    curl : float
        The field ``K = [[0, c], [-c, 0]]`` (N s/m) whose compensation is looked for.

    Returns
    -------
    dict
        ``force``, ``predicted`` and ``deviation``, each ``[n, T + 1]``: the lateral force
        the hand presses against the channel (N, + = left of the movement), the force that
        would cancel the field at the same hand velocities, and the distance from the line
        (m); ``adaptation_index`` and ``r2`` (:func:`adaptation_index` over all steps and
        reaches); per reach indices; mean peak forces; the largest deviation.
    """
    from plants.tasks import ForceChannel, TaskBatch

    K = np.array([[0.0, curl], [-curl, 0.0]])
    force, predicted, dev = [], [], []
    for i in range(goals.shape[0]):
        one = TaskBatch(probe.x0[i:i + 1], probe.targets[i:i + 1],
                        None if probe.inputs is None else probe.inputs[i:i + 1])
        start = plant.hand_position(probe.x0[i:i + 1])[0]
        channel = ForceChannel(start, goals[i])
        loop = make_loop(channel.plant(plant))
        X = loop.rollout(one, noise=False, cost=False).states
        d, _, f = channel.lateral(plant, X)
        force.append(f[0])
        predicted.append(channel.field_force(K, plant, X)[0])
        dev.append(d[0])
    force, predicted, dev = np.array(force), np.array(predicted), np.array(dev)
    index, r2 = adaptation_index(force, predicted)
    return {"force": force, "predicted": predicted, "deviation": dev,
            "adaptation_index": index, "r2": r2,
            "per_reach_index": [adaptation_index(f, p)[0]
                                for f, p in zip(force, predicted, strict=True)],
            "peak_force_N": float(np.abs(force).max(axis=1).mean()),
            "peak_predicted_force_N": float(np.abs(predicted).max(axis=1).mean()),
            "max_abs_deviation_m": float(np.abs(dev).max())}


def loop_on(base, plant, rng):
    """The trained closed loop ``base`` (its network, task, senses, cues and control
    scale) on another ``plant``, drawing its noise from ``rng``; the network, and so the
    weights, are shared with ``base``."""
    from hfcontrol.closed_loop import ClosedLoop

    return ClosedLoop(plant, base.task, base.net, feedback=base.feedback, sensors=base.senses,
                      inputs=base.inputs, control_scale=base.control_scale, dtype=base.dtype,
                      rng=rng)


def main(argv=None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()  # before the import: loading the kernels counts
    from hfcontrol import figures, runs
    from hfcontrol import optimizers as opt
    from hfcontrol.controller import Controller
    from hfcontrol.persistence import atomic_write_text
    from hfcontrol.training import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.quick and sys.stderr.isatty()
    null_run = runs.train_run(RECIPES[args.plant], out / "null", seed=args.seed,
                              updates=args.null_updates,
                              options={"batch": 16} if args.quick else None,
                              progress=progress, started=started)
    trained = Controller.load(out / "null" / "controller.npz")
    base = trained.loop
    arms = {"null": base.plant, "field": base.plant.replace(curl=args.curl)}
    rng = np.random.default_rng(1_000_000 + args.seed)  # the adaptation's own draws

    def make_loop(plant):
        return loop_on(base, plant, rng)

    loops = {name: make_loop(arm) for name, arm in arms.items()}
    probe, goals = probe_batch(base.task, offset=PROBE_OFFSET[args.plant])
    batch = int(runs.load_config(out / "null")["recipe"]["batch"])  # the recipe's
    nearest = [np.inf]  # the nearest training target to a probe target (m)

    def draw(k, task):
        b = task.sample(batch, rng=rng)
        drawn = b.targets[:, -1]
        nearest[0] = min(nearest[0], float(np.linalg.norm(drawn[:, None] - goals[None],
                                                          axis=2).min()))
        return (b,)
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
        train(loop, optimizer, lambda k, task=loop.task: draw(k, task),
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
    # the late field's channel force less each reach's null-phase channel force
    corrected = adaptation_index(channels["field"]["force"] - channels["null"]["force"],
                                 channels["field"]["predicted"])
    probes = {name: {k: v for k, v in channels[key].items()
                     if k not in ("force", "predicted", "deviation")}
              | {"force_N": np.round(channels[key]["force"], 5).tolist(),
                 "predicted_force_N": np.round(channels[key]["predicted"], 5).tolist(),
                 "mean_force_N": channels[key]["force"].mean(axis=0).tolist(),
                 "mean_predicted_force_N": channels[key]["predicted"].mean(axis=0).tolist()}
              for name, key in (("null", "null"), ("late_field", "field"))}
    probes["late_field"]["baseline_corrected_index"] = corrected[0]
    probes["late_field"]["baseline_corrected_r2"] = corrected[1]
    probes["stiffness_N_per_m"], probes["damping_Ns_per_m"] = 6000.0, 50.0
    metrics = {"plant": args.plant, "recipe": RECIPES[args.plant],
               "curl_Ns_per_m": args.curl, "seed": args.seed, "phases": phases,
               "channel_probes": probes,
               "probe_targets": {"goals_m": goals.tolist(), "distance_m": 0.10,
                                 "nearest_training_target_m": nearest[0]},
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
                       == -np.sign(phases["early_field"]["deviation_m"])),
                   "channel_index_late_exceeds_null":
                       channels["field"]["adaptation_index"]
                       > channels["null"]["adaptation_index"] + 0.2},
               "wall_s": train_wall}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, default=bool))
    start = loops["null"].task.start
    figures.plot_hand_paths({"null field (end)": snapshots["null"][-1]["paths"],
                             "early field (1st batch)": snapshots["field"][0]["paths"],
                             "late field (adapted)": snapshots["field"][-1]["paths"],
                             "washout (1st batch)": snapshots["washout"][0]["paths"]},
                            goals, start, out / "hand_paths.png",
                            title=f"Curl field {args.curl:g} N s/m, {PLANT_NAMES[args.plant]}: "
                                  f"held-out reaches of 10 cm")
    _plot_series(series, out / "lateral_deviation.png", args.curl)
    _plot_channel(channels, dt, out / "channel_force.png", args.curl, args.plant)
    _plot_channel_targets(channels, goals - start, dt, out / "channel_force_targets.png",
                          args.curl, args.plant)
    p = phases
    ci = {k: channels[k]["adaptation_index"] for k in channels}
    print(f"curl field {args.curl:g} N s/m: lateral deviation (mean of 8 reaches, + = "
          f"counter-clockwise) null {1000 * p['null']['deviation_m']:+.1f} mm, early field "
          f"{1000 * p['early_field']['deviation_m']:+.1f} mm, late field "
          f"{1000 * p['late_field']['deviation_m']:+.1f} mm, washout "
          f"{1000 * p['washout_first']['deviation_m']:+.1f} mm; force-channel adaptation "
          f"index null {ci['null']:.2f}, late field {ci['field']:.2f} (less the null "
          f"channel force: {corrected[0]:.2f}); {train_wall:.0f} s; "
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
            ax.plot(t, c["predicted"][i], color="C3", lw=0.6, alpha=0.35, ls="--")
        ax.plot(t, c["force"].mean(axis=0), color="C0", lw=2,
                label="force pressed on the channel (mean of 8)")
        ax.plot(t, c["predicted"].mean(axis=0), color="C3", lw=2, ls="--",
                label=f"force that cancels the field (c = {curl:g} N s/m)")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{title}: adaptation index {c['adaptation_index']:.2f}", fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("lateral force (N, + = left of the movement)")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Force-channel probes, {PLANT_NAMES[plant]}: 8 held-out reaches of 10 cm")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_channel_targets(channels, offsets, dt, path, curl, plant) -> None:
    """One panel per probe target: the late field's channel force against the force the
    field predicts, and the null phase's channel force."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = offsets.shape[0]
    cols = min(4, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.0 * cols, 2.5 * rows + 0.6))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True)).ravel()
    late, null = channels["field"], channels["null"]
    t = np.arange(late["force"].shape[1]) * dt
    for i, ax in enumerate(axes[:n]):
        ax.plot(t, null["force"][i], color="0.6", lw=1, label="null phase")
        ax.plot(t, late["force"][i], color="C0", lw=1.5, label="late field")
        ax.plot(t, late["predicted"][i], color="C3", lw=1.2, ls="--",
                label="predicted (cancels the field)")
        ax.axhline(0, color="k", lw=0.5)
        angle = np.degrees(np.arctan2(offsets[i, 1], offsets[i, 0])) % 360
        ax.set_title(f"target at {angle:.1f} deg: index {late['per_reach_index'][i]:.2f}",
                     fontsize=9)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * cols:]:
        ax.set_xlabel("time (s)")
    for ax in axes[::cols]:
        ax.set_ylabel("lateral force (N)")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Force channels per held-out target, {PLANT_NAMES[plant]} (curl {curl:g} "
                 f"N s/m; + = left of the movement)")
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
    fig.suptitle("8 held-out centre-out reaches of 10 cm per batch (mean; + = counter-clockwise)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
