"""Drawing the environments with matplotlib (imported here, on first use, never by
``import plants``).

``"rgb_array"`` draws on an Agg canvas (no display needed) and returns ``(H, W, 3)``
uint8 frames; ``"human"`` draws in a window of matplotlib's interactive backend and waits
one step's time. Each family's :meth:`Layout.drawing` creates its artists once and
returns an ``update`` function that moves them, so a frame costs one canvas draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The figure's resolution (dots per inch); a layout's ``frame_size`` is in pixels.
DPI = 100


def _interactive_pyplot():
    """``matplotlib.pyplot`` with an interactive backend, or a clear error."""
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.backends import BackendFilter, backend_registry

    backend = matplotlib.get_backend().lower()
    if backend in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE):
        raise RuntimeError(
            f'render_mode="human" needs a display and an interactive matplotlib backend, but '
            f"matplotlib is using the non-interactive {backend!r} backend (no display found, "
            f'or MPLBACKEND set so). Use render_mode="rgb_array" (and plants.envs.record for '
            f"a video), or run with a display (e.g. MPLBACKEND=TkAgg).")
    return plt


class Renderer:
    """One figure for one environment; ``frame(x, goal, time)`` draws the state."""

    def __init__(self, layout: Any, mode: str, fps: float) -> None:
        self.mode = mode
        self.fps = float(fps)
        w, h = getattr(layout, "frame_size", (400, 400))
        if mode == "human":
            self._plt = _interactive_pyplot()
            self.fig = self._plt.figure(figsize=(w / DPI, h / DPI), dpi=DPI)
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            self._plt = None
            self.fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
            FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0))
        self.ax.set_aspect("equal")
        self.ax.set_axis_off()
        self._update = layout.drawing(self.ax)
        self._time = self.ax.text(0.02, 0.97, "", transform=self.ax.transAxes, va="top",
                                  fontsize=9, color="0.3")
        if mode == "human":
            self._plt.show(block=False)

    def frame(self, x: np.ndarray, goal: np.ndarray, time: float) -> np.ndarray | None:
        """Draw the state ``x`` with its ``goal`` at ``time`` (s): an RGB frame
        ``(H, W, 3)`` uint8 for ``"rgb_array"``, ``None`` (after showing it) for ``"human"``."""
        self._update(np.asarray(x, dtype=float), np.asarray(goal, dtype=float))
        self._time.set_text(f"t = {time:.2f} s")
        canvas = self.fig.canvas
        if self.mode == "human":
            canvas.draw_idle()
            canvas.start_event_loop(1.0 / self.fps)
            return None
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()

    def close(self) -> None:
        """Release the figure (safe to call more than once)."""
        if self._plt is not None and self.fig is not None:
            self._plt.close(self.fig)
        self.fig = None
        self._plt = None
