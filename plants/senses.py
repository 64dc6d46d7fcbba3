"""Sensing an arm: the default delays and noise of its senses, and delays in steps.

One home for facts that both :mod:`hfcontrol.observation` (the closed loop's channels) and
:mod:`plants.envs.senses` (the environments' delayed observations) use; sources in
``docs/plants.md`` ("Senses in a closed loop"): proprioception 20 ms (the short-latency
stretch response, Pruszynski & Scott 2012), vision 70 ms (the low end of 70-100 ms
visuomotor latencies), noise 1e-3 in the channels' units (rad and rad/s; m).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ARM_SENSES", "delay_steps"]

#: The default senses of an arm: ``(delay in seconds, noise standard deviation)`` per channel.
ARM_SENSES = {"proprioception": (0.02, 1e-3), "vision": (0.07, 1e-3)}


def delay_steps(seconds: float, dt: float, name: str) -> int:
    """``seconds`` as a whole number of steps of ``dt``.

    Raises
    ------
    ValueError
        Naming ``name``, unless ``seconds`` is a finite non-negative multiple of ``dt``
        (within 1e-6 of a step).
    """
    seconds = float(seconds)
    k = seconds / dt
    if not (np.isfinite(k) and k >= 0) or abs(k - round(k)) > 1e-6:
        raise ValueError(f"{name} must be a non-negative multiple of the plant's time step "
                         f"({dt} s), got {seconds!r} s")
    return int(round(k))
