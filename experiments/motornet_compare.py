"""Our ``plants.MuscleArm`` against MotorNet's ``RigidTendonArm26``: the same initial states,
the same excitation sequences, 1 s, hand paths compared (a benchmark, not a test).

MotorNet needs torch, so it runs in a venv of its own (default ``results/motornet-venv``,
made on first use: ``python -m venv`` then ``pip install torch==2.13.0 motornet==0.3.0``,
about 2.5 min on the 2-core machine; there pip takes ``torch-2.13.0+cpu`` from the local
wheel directory it is configured with (``find-links``), elsewhere torch 2.13.0 from the
package index, and MotorNet, gymnasium and matplotlib from the index) and in a subprocess
of that venv (``experiments/_motornet_worker.py``), the arrays passing through ``.npz``
files. Nothing here imports torch.

The excitations are those of eight 10 cm centre-out reaches from shoulder 45 deg, elbow
90 deg: a joint-space PD law tracking a 0.5 s minimum-jerk path, its torques mapped onto
the flexor or extensor of each joint above a 5 % co-contraction (biarticulars at 5 %),
computed once on our arm and then played open-loop, unchanged, into both arms. They stay
well away from the joint stops (the script checks and reports the margin).

Both arms are MotorNet's defaults (explicit Euler, dt = 10 ms, Thelen's activation ODE
with 15/50 ms, Kistemaker's rigid-tendon Hill muscle, no joint damping, stops at shoulder
[0, 135] deg and elbow [0, 155] deg). Reported, per run:

* ``ours - MotorNet``: the largest hand-position difference over the reaches and the 1 s,
  MotorNet in float32 (its default) and in float64;
* ``MotorNet's scheme (NumPy) - MotorNet``: our muscle and skeleton functions stepped with
  MotorNet's order of updates (below): if this is at rounding level, the bookkeeping is
  the whole difference;
* the same two arms at dt = 1 ms (the excitations held 10 steps each): the difference of a
  discretisation shrinks with dt, a difference of models would not;
* each arm's distance from the converged solution of the continuous model (our arm with
  RK4 and 100 substeps of 0.1 ms), over the 1 s and for one step from each state of the
  reaches (the local error of the two orders of updates).

MotorNet's order of updates (``Effector.integration_step``, ``RigidTendonHillMuscle.
_integrate``, motornet 0.3.0): the muscle force is part of its state and is computed after
the activation update from the geometry *before* the skeleton step, so the force that
drives step ``k`` is ``F(a_k, L(q_{k-1}), L_dot(q_{k-1}, q_dot_{k-1}))`` with moment arms
``r(q_k)``. Ours evaluates everything at the current state,
``F(a_k, L(q_k), L_dot(q_k, q_dot_k))`` (plain explicit Euler of ``dx/dt = f(x, u)``).

Usage::

    .venv/bin/python experiments/motornet_compare.py [--venv results/motornet-venv] \\
        [--out results/motornet_compare.json] \\
        [--figure docs/figures/motornet_compare_hand_paths.png]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import plants
from hfcontrol.figures import _figure, _save
from hfcontrol.persistence import atomic_write_text
from plants import muscles as M

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_motornet_worker.py"
#: What the venv gets: torch first (pip takes a CPU wheel from the machine's wheel
#: directory or the index), then MotorNet (which pulls gymnasium and matplotlib).
REQUIREMENTS = ("torch==2.13.0", "motornet==0.3.0")


def ensure_venv(venv: Path) -> Path:
    """The Python of ``venv``, made and given :data:`REQUIREMENTS` if MotorNet is missing."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import motornet"],
                                          capture_output=True).returncode == 0:
        return python
    if not python.exists():
        print(f"creating {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(python), "-m", "pip", "install", *REQUIREMENTS]
    print("installing:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return python


def reach_excitations(arm: plants.MuscleArm, seconds: float = 1.0, n_targets: int = 8,
                      distance: float = 0.10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial states ``x0[B, 10]``, excitations ``U[B, T, 6]`` and targets ``[B, 2]`` of
    centre-out reaches (module docstring): a PD law on a minimum-jerk joint path, run in
    closed loop on ``arm`` once."""
    task = plants.tasks.Reach(arm, targets="centre_out", n_targets=n_targets,
                              distance=distance)
    goals = task.goals(n_targets, None)
    q_goal = arm.inverse_kinematics(goals)
    x0 = task.sample(n_targets, seed=0).x0  # at rest at the posture (nothing random)
    x, q0 = x0.copy(), x0[:, :2].copy()
    T = int(round(seconds / arm.dt))
    kp, kd, gain, base, move = 40.0, 4.0, 1.0 / 30.0, 0.05, 0.5  # N m/rad, N m s/rad, 1/(N m), -, s
    U = np.zeros((n_targets, T, 6))
    for t in range(T):
        s = min(t * arm.dt / move, 1.0)
        q_des = q0 + (q_goal - q0) * (10 * s**3 - 15 * s**4 + 6 * s**5)
        tau = kp * (q_des - x[:, :2]) - kd * x[:, 2:4]
        u = np.full((n_targets, 6), base)
        u[:, [0, 2]] += gain * np.maximum(tau, 0.0)   # pectoralis, brachioradialis: flexors
        u[:, [1, 3]] += gain * np.maximum(-tau, 0.0)  # deltoid, triceps lateral: extensors
        U[:, t] = np.clip(u, 0.0, 1.0)
        x = arm.step(x, U[:, t])
    return x0, U, goals


def run_motornet(python: Path, joint0: np.ndarray, U: np.ndarray, dtype: str,
                 timestep: float) -> dict:
    """MotorNet's ``RigidTendonArm26`` from ``joint0[B, 4]`` through ``U[B, T, 6]``, in a
    subprocess of the venv's ``python``; the worker's arrays (see its docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, joint0=joint0, excitation=U, dtype=np.array(dtype),
                 timestep=np.array(timestep))
        subprocess.run([str(python), str(WORKER), str(src), str(dst)], check=True)
        with np.load(dst) as data:
            return {k: data[k] for k in data.files}


def _lagged_force(arm: plants.MuscleArm, a: np.ndarray, x_geometry: np.ndarray) -> np.ndarray:
    """MotorNet's muscle force: activations ``a[B, 6]`` with the musculotendon lengths and
    velocities of the states ``x_geometry[B, 10]`` (the state before the step)."""
    return M.hill_force(np.clip(a, arm.min_activation, 1.0),
                        arm.musculotendon_lengths(x_geometry),
                        arm.muscle_velocities(x_geometry), arm.max_isometric_force,
                        arm.optimal_fibre_length, arm.tendon_slack_length)


def _motornet_step(arm: plants.MuscleArm, x: np.ndarray, force: np.ndarray,
                   u: np.ndarray) -> np.ndarray:
    """One explicit Euler step of ``x[B, 10]`` driven by the muscle forces ``force[B, 6]``
    (instead of the forces at ``x``): :meth:`plants.MuscleArm.numpy_rhs` corrected by the
    torque of ``force`` minus the forces at ``x``, then MotorNet's joint stops (``<=``,
    ``>=``) and activation clamp."""
    u = np.clip(u, 0.0, 1.0)
    k = arm.numpy_rhs(x, u)
    dtau = -np.einsum("bji,bi->bj", arm.moment_arms(x), force - arm.muscle_forces(x))
    k[:, 2:4] += np.linalg.solve(arm.mass_matrix(x), dtau[:, :, None])[:, :, 0]
    z = x + arm.dt * k
    lo, hi = arm.joint_low, arm.joint_high
    stop = ((z[:, :2] <= lo) & (z[:, 2:4] < 0)) | ((z[:, :2] >= hi) & (z[:, 2:4] > 0))
    z[:, 2:4] = np.where(stop, 0.0, z[:, 2:4])
    z[:, :2] = np.clip(z[:, :2], lo, hi)
    z[:, 4:] = np.clip(z[:, 4:], arm.min_activation, 1.0)
    return z


def motornet_scheme(arm: plants.MuscleArm, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Our arm's functions stepped in MotorNet's order (module docstring): states
    ``[B, T + 1, 10]``. The force is carried from step to step: after each step, the new
    activation with the geometry of the state before it."""
    x = np.array(x0, dtype=float)
    force = arm.muscle_forces(x)  # MotorNet's reset: the force at the initial state
    out = [x.copy()]
    for t in range(U.shape[1]):
        z = _motornet_step(arm, x, force, U[:, t])
        force = _lagged_force(arm, z[:, 4:], x)
        x = z
        out.append(x.copy())
    return np.stack(out, axis=1)


def one_step_errors(arm: plants.MuscleArm, exact: plants.MuscleArm, X: np.ndarray,
                    U: np.ndarray) -> tuple[float, float]:
    """Mean joint-velocity error (rad/s) of one step from each state of ``X[B, T + 1, 10]``
    (controls ``U``) against the ``exact`` arm's step: ``(ours, MotorNet's order)``, the
    latter with the force of the state's activation and the previous state's geometry."""
    ours, theirs = [], []
    for t in range(1, U.shape[1]):
        x, u = X[:, t], U[:, t]
        ref = exact.step(x, u)[:, 2:4]
        ours.append(np.abs(arm.step(x, u)[:, 2:4] - ref))
        force = _lagged_force(arm, x[:, 4:], X[:, t - 1])
        theirs.append(np.abs(_motornet_step(arm, x, force, u)[:, 2:4] - ref))
    return float(np.mean(ours)), float(np.mean(theirs))


def hand_paths(arm: plants.MuscleArm, X: np.ndarray) -> np.ndarray:
    """Hand positions ``[B, T + 1, 2]`` of states ``X[B, T + 1, 10]``."""
    B, T1, n = X.shape
    return arm.hand_position(X.reshape(B * T1, n)).reshape(B, T1, 2)


def gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hand-position distance ``[B, T + 1]`` (m)."""
    return np.linalg.norm(a - b, axis=-1)


def plot(t: np.ndarray, ours: np.ndarray, theirs: np.ndarray, goals: np.ndarray,
         curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike) -> None:
    """Hand paths (ours solid, MotorNet dashed) and the gaps against time."""
    fig = _figure(10.5, 4.4)
    ax, bx = fig.subplots(1, 2)
    start = ours[0, 0]
    for i in range(len(goals)):
        c = f"C{i % 10}"
        ax.plot(100 * (ours[i, :, 0] - start[0]), 100 * (ours[i, :, 1] - start[1]), "-",
                color=c, lw=2.2, alpha=0.6, label="plants.MuscleArm" if i == 0 else None)
        ax.plot(100 * (theirs[i, :, 0] - start[0]), 100 * (theirs[i, :, 1] - start[1]), "--",
                color="k", lw=0.9, label="MotorNet RigidTendonArm26" if i == 0 else None)
        ax.plot(100 * (goals[i, 0] - start[0]), 100 * (goals[i, 1] - start[1]), "o", color=c,
                mfc="none", ms=9)
    ax.plot(0, 0, "k+", ms=10)
    ax.set_aspect("equal")
    ax.set_xlabel("x (cm)")
    ax.set_ylabel("y (cm)")
    ax.set_title("hand paths, same excitations (dt 10 ms)")
    ax.legend(loc="lower left", fontsize=8)
    styles = (("C3", "-"), ("C0", "-"), ("C2", "-"), ("C3", ":"), ("k", ":"))
    for (label, (tt, g)), (c, ls) in zip(curves.items(), styles, strict=False):
        bx.plot(tt, 1e3 * g.max(axis=0), color=c, ls=ls, label=label)
    bx.axhline(1.0, color="0.5", ls=":", lw=1)
    bx.set_yscale("log")
    bx.set_xlim(t[0], t[-1])
    bx.set_xlabel("time (s)")
    bx.set_ylabel("largest hand-position gap over the reaches (mm)")
    bx.legend(fontsize=8)
    bx.set_title("where the gap comes from")
    _save(fig, path, None)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default="results/motornet-venv")
    ap.add_argument("--out", default="results/motornet_compare.json")
    ap.add_argument("--figure", default="docs/figures/motornet_compare_hand_paths.png")
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args(argv)
    python = ensure_venv(Path(args.venv))

    arm = plants.MuscleArm()
    x0, U, goals = reach_excitations(arm, args.seconds)
    X = arm.rollout(x0, U)
    ours = hand_paths(arm, X)
    margin = float(np.rad2deg(min((X[:, :, :2] - arm.joint_low).min(),
                                  (arm.joint_high - X[:, :, :2]).min())))
    mn32 = run_motornet(python, x0[:, :4], U, "float32", arm.dt)
    mn64 = run_motornet(python, x0[:, :4], U, "float64", arm.dt)
    scheme = hand_paths(arm, motornet_scheme(arm, x0, U))

    # the same at dt = 1 ms: the excitations held for 10 steps
    k = 10
    fine = plants.MuscleArm(dt=arm.dt / k)
    Uf = np.repeat(U, k, axis=1)
    ours_f = hand_paths(fine, fine.rollout(x0, Uf))
    mn_f = run_motornet(python, x0[:, :4], Uf, "float64", fine.dt)
    # the continuous model: RK4, 100 substeps per 10 ms
    ref_arm = plants.MuscleArm(integrator="rk4", substeps=100)
    ref = hand_paths(ref_arm, ref_arm.rollout(x0, U))

    step_ours, step_theirs = one_step_errors(arm, ref_arm, X, U)

    t = np.arange(U.shape[1] + 1) * arm.dt
    tf = np.arange(Uf.shape[1] + 1) * fine.dt
    g = {"ours_vs_motornet_float32": gap(ours, mn32["hand"]),
         "ours_vs_motornet_float64": gap(ours, mn64["hand"]),
         "motornet_scheme_numpy_vs_motornet_float64": gap(scheme, mn64["hand"]),
         "ours_vs_motornet_dt_1ms": gap(ours_f, mn_f["hand"]),
         "ours_vs_continuous": gap(ours, ref),
         "motornet_vs_continuous": gap(mn64["hand"], ref),
         "ours_dt_1ms_vs_continuous": gap(ours_f[:, ::k], ref),
         "motornet_dt_1ms_vs_continuous": gap(mn_f["hand"][:, ::k], ref)}
    res = {"max_gap_m": {name: float(v.max()) for name, v in g.items()},
           "gap_at_end_m": {name: float(v[:, -1].max()) for name, v in g.items()},
           "reaches": len(goals), "seconds": args.seconds, "dt": arm.dt,
           "joint_stop_margin_deg": margin,
           "max_excitation": float(U.max()),
           "peak_joint_speed_rad_s": float(np.abs(X[:, :, 2:4]).max()),
           "one_step_velocity_error_rad_s": {"ours": step_ours,
                                             "motornet_order": step_theirs},
           "motornet": str(mn32["version"]), "floor_m": 1e-3}
    print(f"{len(goals)} reaches of 10 cm, {args.seconds:g} s, dt {arm.dt * 1e3:g} ms "
          f"({res['motornet']}); joints stay {margin:.1f} deg from their stops, peak "
          f"excitation {res['max_excitation']:.2f}, peak joint speed "
          f"{res['peak_joint_speed_rad_s']:.2f} rad/s\n")
    print(f"{'largest hand-position gap':48s} {'over 1 s':>10s} {'at 1 s':>10s}")
    for name in g:
        print(f"{name:48s} {1e3 * res['max_gap_m'][name]:8.4f}mm "
              f"{1e3 * res['gap_at_end_m'][name]:8.4f}mm")
    print(f"\none step from each state of our reaches against the continuous model's 10 ms: "
          f"mean joint-velocity error {step_ours:.3g} rad/s (ours), {step_theirs:.3g} rad/s "
          f"(MotorNet's order)")
    print(f"floor: agree within 1 mm over 1 s -> "
          f"{'met' if res['max_gap_m']['ours_vs_motornet_float32'] <= 1e-3 else 'NOT met'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(res, indent=1))
    if args.figure:
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        plot(t, ours, mn32["hand"], goals,
             {"ours - MotorNet (dt 10 ms)": (t, g["ours_vs_motornet_float32"]),
              "ours - MotorNet (dt 1 ms)": (tf, g["ours_vs_motornet_dt_1ms"]),
              "MotorNet's update order in NumPy - MotorNet": (
                  t, np.maximum(g["motornet_scheme_numpy_vs_motornet_float64"], 1e-9)),
              "ours - continuous model (dt 10 ms)": (t, g["ours_vs_continuous"]),
              "MotorNet - continuous model": (t, g["motornet_vs_continuous"])},
             args.figure)
    return res


if __name__ == "__main__":
    main()
