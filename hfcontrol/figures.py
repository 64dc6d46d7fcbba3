"""Figures of closed-loop controllers: hand paths, joint trajectories, speed profiles and
learning curves, drawn headless (an Agg canvas per figure, no pyplot) and saved as PNG."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_hand_paths", "plot_reach_kinematics", "plot_speed_profiles",
           "plot_learning_curves", "plot_phase_portrait", "plot_muscle_activity", "plot_arm_postures",
           "plot_state_trajectories"]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike, title: str | None,
          rect: tuple[float, float, float, float] | None = None) -> None:
    """Title, tight layout (within ``rect`` of the figure, if given) and PNG."""
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)


def plot_hand_paths(panels: Mapping[str, np.ndarray], goals: np.ndarray, start: np.ndarray,
                    path: str | os.PathLike, title: str | None = None) -> None:
    """Hand paths ``[B, T + 1, 2]`` (m) to targets ``goals [B, 2]``, one panel per entry of
    ``panels`` (e.g. untrained and trained), in centimetres from the start position."""
    fig = _figure(4.2 * len(panels), 4.4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    colours = [f"C{i % 10}" for i in range(len(goals))]
    for ax, (label, paths) in zip(axes, panels.items(), strict=True):
        for p, g, c in zip(paths, goals, colours, strict=True):
            ax.plot(100 * (p[:, 0] - start[0]), 100 * (p[:, 1] - start[1]), color=c, lw=1.5)
            ax.plot(100 * (g[0] - start[0]), 100 * (g[1] - start[1]), "o", color=c, ms=9,
                    mfc="none")
            ax.plot(100 * (p[-1, 0] - start[0]), 100 * (p[-1, 1] - start[1]), ".", color=c)
        ax.plot(0, 0, "k+", ms=10)
        ax.set_aspect("equal")
        ax.set_title(label)
        ax.set_xlabel("x (cm)")
        ax.set_ylabel("y (cm)")
    _save(fig, path, title)


def plot_reach_kinematics(t: np.ndarray, states: np.ndarray, controls: np.ndarray,
                          path: str | os.PathLike, title: str | None = None) -> None:
    """Joint angles and velocities (``states [T + 1, 2N]``) and torques (``controls [T, N]``)
    of one movement against time ``t [T + 1]`` (s)."""
    N = controls.shape[1]
    fig = _figure(11, 3.4)
    axes = fig.subplots(1, 3)
    for j in range(N):
        axes[0].plot(t, np.degrees(states[:, j]), label=f"joint {j + 1}")
        axes[1].plot(t, np.degrees(states[:, N + j]))
        axes[2].step(t[:-1], controls[:, j], where="post")
    for ax, label in zip(axes, ("angle (deg)", "velocity (deg/s)", "torque (N m)"), strict=True):
        ax.set_xlabel("time (s)")
        ax.set_ylabel(label)
    axes[0].legend()
    _save(fig, path, title)


def plot_speed_profiles(t: np.ndarray, speeds: np.ndarray, path: str | os.PathLike,
                        title: str | None = None, vline: float | None = None) -> None:
    """Hand speed ``speeds [B, T + 1]`` (m/s) against time ``t [T + 1]``: reaches of a
    well-trained controller have bell-shaped profiles. ``vline``: a time to mark (s)."""
    fig = _figure(5, 3.6)
    ax = fig.subplots()
    for i, s in enumerate(speeds):
        ax.plot(t, 100 * s, color=f"C{i % 10}", lw=1.2)
    if vline is not None:
        ax.axvline(vline, color="k", ls=":", lw=1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("hand speed (cm/s)")
    _save(fig, path, title)


def plot_muscle_activity(t: np.ndarray, excitations: np.ndarray, activations: np.ndarray,
                         names: Sequence[str], path: str | os.PathLike,
                         go_time: float | None = None, title: str | None = None) -> None:
    """Each muscle's excitation (``[T, M]``, the controls, drawn as steps) and activation
    (``[T + 1, M]``) against time ``t [T + 1]`` (s), one panel per muscle."""
    M = len(names)
    cols = min(M, 3)
    rows = -(-M // cols)
    fig = _figure(3.6 * cols, 2.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True)).ravel()
    for i, ax in enumerate(axes):
        if i >= M:
            ax.set_visible(False)
            continue
        ax.step(t[:-1], excitations[:, i], where="post", color="C0", lw=1, label="excitation")
        ax.plot(t, activations[:, i], color="C3", lw=1.5, label="activation")
        if go_time is not None:
            ax.axvline(go_time, color="k", ls=":", lw=1)
        ax.set_title(names[i], fontsize=9)
        if i % cols == 0:
            ax.set_ylabel("(0 to 1)")
        if i >= M - cols:
            ax.set_xlabel("time (s)")
    axes[0].legend(fontsize=8)
    _save(fig, path, title)


def plot_learning_curves(curves: Mapping[str, Mapping[str, Sequence[float]]],
                         path: str | os.PathLike, key: str = "heldout",
                         ylabel: str = "held-out error", title: str | None = None,
                         hline: float | Sequence[float] | None = None,
                         log_x: bool = False) -> None:
    """Learning curves against updates and against wall time, side by side.

    Parameters
    ----------
    curves : dict of str to dict of lists
        Label to a history with ``update``, ``time`` (s) and ``key``; a label may name
        several runs (e.g. seeds), as lists of lists, drawn as thin lines of one colour.
    key : str
        The error drawn (log scale).
    hline : float or sequence of floats, optional
        Horizontal reference lines (e.g. target errors).
    log_x : bool
        Log scales on both x axes (for methods whose update counts or speeds differ by
        orders of magnitude); the points at update 0 or time 0 are then left out.
    """
    # more than two labels go in a legend below the panels, where it hides no curve
    legend_rows = (len(curves) + 1) // 2 if len(curves) > 2 else 0
    height = 3.8 + 0.25 * legend_rows
    fig = _figure(10, height)
    axes = fig.subplots(1, 2, sharey=True)
    for i, (label, hist) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        runs_u, runs_t, runs_e = hist["update"], hist["time"], hist[key]
        if runs_e and np.ndim(runs_e[0]) == 0:
            runs_u, runs_t, runs_e = [runs_u], [runs_t], [runs_e]
        for j, (u, t, e) in enumerate(zip(runs_u, runs_t, runs_e, strict=True)):
            kw = {"color": colour, "lw": 1.5 if len(runs_e) == 1 else 0.9,
                  "alpha": 1.0 if len(runs_e) == 1 else 0.7, "label": label if j == 0 else None}
            u, t, e = (np.asarray(a, float) for a in (u, t, e))
            for ax, x in zip(axes, (u, t), strict=True):
                keep = x > 0 if log_x else np.ones(x.shape, bool)
                ax.semilogy(x[keep], e[keep], **kw)
    if log_x:
        for ax in axes:
            ax.set_xscale("log")
    lines = [] if hline is None else np.atleast_1d(np.asarray(hline, float))
    for ax, xlabel in zip(axes, ("update", "wall time (s)"), strict=True):
        ax.set_xlabel(xlabel)
        for level in lines:
            ax.axhline(level, color="k", ls=":", lw=1)
    axes[0].set_ylabel(ylabel)
    if legend_rows:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2,
                   fontsize="small", frameon=False)
        _save(fig, path, title, rect=(0, 0.22 * legend_rows / height, 1, 1))
    else:
        axes[0].legend(fontsize="small")
        _save(fig, path, title)


def plot_phase_portrait(angles: np.ndarray, velocities: np.ndarray, path: str | os.PathLike,
                        title: str | None = None, wrap: bool = True) -> None:
    """Trajectories in the (angle, velocity) plane, ``[B, T + 1]`` each; angles wrapped to
    (-pi, pi] unless ``wrap`` is False (the segments across the wrap are not drawn)."""
    fig = _figure(5, 4.2)
    ax = fig.subplots()
    for i, (a, v) in enumerate(zip(angles, velocities, strict=True)):
        a = np.angle(np.exp(1j * a)) if wrap else a
        a = np.where(np.abs(np.diff(a, prepend=a[0])) > np.pi, np.nan, a)
        ax.plot(a, v, color=f"C{i % 10}", lw=0.8)
        ax.plot(a[0], v[0], "o", color=f"C{i % 10}", ms=3)
    ax.set_xlabel("angle (rad)")
    ax.set_ylabel("velocity (rad/s)")
    _save(fig, path, title)


def plot_arm_postures(joints: np.ndarray, start: np.ndarray, goals: np.ndarray,
                      path: str | os.PathLike, title: str | None = None) -> None:
    """Stick figures of a planar arm: ``joints [B, N + 1, 2]`` (m; shoulder, elbow, ...,
    hand) one per reach, over the start posture ``start [N + 1, 2]`` (grey) with the
    targets ``goals [B, 2]`` as circles; the whole arm on the left, the hand region
    enlarged on the right."""
    fig = _figure(10, 4.8)
    axes = fig.subplots(1, 2)
    for k, ax in enumerate(axes):
        ax.plot(100 * start[:, 0], 100 * start[:, 1], "--o", color="k", lw=1.2, ms=3,
                label="start")
        for i, (arm, g) in enumerate(zip(joints, goals, strict=True)):
            c = f"C{i % 10}"
            ax.plot(100 * arm[:, 0], 100 * arm[:, 1], "-o", color=c, lw=1.5, ms=3)
            ax.plot(100 * g[0], 100 * g[1], "o", color=c, ms=9, mfc="none")
        ax.set_aspect("equal")
        ax.set_xlabel("x (cm)")
        ax.set_ylabel("y (cm)")
        if k == 1:  # the hand region
            pts = np.concatenate([joints[:, -2:].reshape(-1, 2), goals, start[-2:]])
            lo, hi = 100 * pts.min(axis=0) - 2, 100 * pts.max(axis=0) + 2
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_title("hand region (last link and targets)")
        else:
            ax.plot(0, 0, "ks", ms=6)
            ax.set_title("whole arm (shoulder at the origin)")
            ax.legend(loc="lower left")
    _save(fig, path, title)


def plot_state_trajectories(t: np.ndarray, states: np.ndarray, controls: np.ndarray,
                            path: str | os.PathLike, state_labels: Sequence[str],
                            control_label: str, title: str | None = None,
                            colors: Sequence[str] | None = None) -> None:
    """Chosen state coordinates ``states [B, T + 1, k]`` and the control ``controls
    [B, T, 1]`` of several episodes against time ``t [T + 1]`` (s), one panel each; one
    colour per episode (``colors``, default the colour cycle)."""
    k = states.shape[2]
    if len(state_labels) != k:
        raise ValueError(f"state_labels must have {k} entries, got {len(state_labels)}")
    if colors is not None and len(colors) != states.shape[0]:
        raise ValueError(f"colors must have one entry per episode ({states.shape[0]}), got "
                         f"{len(colors)}")
    fig = _figure(3.6 * (k + 1), 3.4)
    axes = fig.subplots(1, k + 1)
    for i in range(states.shape[0]):
        colour = f"C{i % 10}" if colors is None else colors[i]
        for j in range(k):
            axes[j].plot(t, states[i, :, j], color=colour, lw=0.9)
        axes[k].plot(t[:-1], controls[i, :, 0], color=colour, lw=0.9)
    for ax, label in zip(axes, (*state_labels, control_label), strict=True):
        ax.set_xlabel("time (s)")
        ax.set_ylabel(label)
    _save(fig, path, title)
