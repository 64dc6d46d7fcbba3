"""Figures of training histories, drawn headless and saved as PNG.

Figures are drawn on a :class:`matplotlib.figure.Figure` with its own Agg canvas:
no pyplot, no display, and the session's matplotlib backend is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike,
                 title: str | None = None) -> None:
    """Save a figure of a training history returned by ``run_epochs``.

    Four panels against the update number: training and test error (log
    scale), damping (log scale), CG iterations and learning rate.

    Parameters
    ----------
    history : dict of lists
        Must contain ``train_err`` and ``test_err``; ``damping``, ``cg_iters`` and
        ``l_rate`` are drawn where present.
    path : path
        Where to write the PNG.
    title : str, optional
        Figure title.
    """
    for key in ("train_err", "test_err"):
        if key not in history:
            raise ValueError(f"history must contain {key!r} (as returned by run_epochs)")
    epochs = np.arange(len(history["train_err"]))
    fig = Figure(figsize=(9, 6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharex=True)
    ax = axes[0, 0]
    for key, label in (("train_err", "train"), ("test_err", "test")):
        values = np.asarray(history[key], dtype=float)
        # a zero error has no place on a log axis: leave that point out rather than squash the axis
        ax.semilogy(epochs, np.where(values > 0, values, np.nan), label=label)
    ax.set_ylabel("error")
    ax.legend()
    panels = [(axes[0, 1], "damping", "damping", True), (axes[1, 0], "cg_iters", "CG iterations",
              False), (axes[1, 1], "l_rate", "learning rate", False)]
    for ax, key, label, log in panels:
        values = np.asarray(history.get(key, []), dtype=float)
        if values.size and np.isfinite(values).any():
            (ax.semilogy if log and np.all(values[np.isfinite(values)] > 0) else ax.plot)(
                epochs[: values.size], values)
        ax.set_ylabel(label)
    for ax in axes[1]:
        ax.set_xlabel("update")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_signals(panels: Mapping[str, np.ndarray], path: str | os.PathLike,
                 title: str | None = None, targets: Mapping[str, np.ndarray] | None = None,
                 max_lines: int = 20) -> None:
    """Save a figure of sequences ``[batch, time]`` (or ``[batch, time, 1]``), one panel each.

    Parameters
    ----------
    panels : dict of str to ndarray
        Panel title to the sequences drawn in it, one line per batch entry (the first
        ``max_lines`` of them).
    path : path
        Where to write the PNG.
    title : str, optional
        Figure title.
    targets : dict of str to ndarray, optional
        For a panel title, target values ``[batch, time]`` (NaN where there is no target),
        drawn as markers in the colour of their sequence's line.
    max_lines : int
        Number of sequences drawn per panel.
    """
    if not panels:
        raise ValueError("panels must name at least one array of sequences")
    fig = Figure(figsize=(4.5 * len(panels), 3.5))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, values) in zip(axes, panels.items(), strict=True):
        values = np.asarray(values, dtype=float)
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        if values.ndim != 2:
            raise ValueError(f"panels[{name!r}] must have shape [batch, time], got {values.shape}")
        lines = ax.plot(values[:max_lines].T, lw=1)
        if targets is not None and name in targets:
            marks = np.asarray(targets[name], dtype=float).reshape(values.shape)[:max_lines]
            steps = np.arange(values.shape[1])
            for line, row in zip(lines, marks, strict=False):
                ax.plot(steps, row, "o", color=line.get_color(), ms=4)
        ax.set_title(name)
        ax.set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
