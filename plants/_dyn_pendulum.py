"""Compiled right-hand side of the pendulum (uniform rod about one end, theta = 0 upright).

    theta_ddot = 3 g / (2 l) sin(theta) + 3 / (m l^2) (u + tau_field)

which is Gymnasium ``Pendulum-v1``'s update written as an ODE. Tip position
``p = (-l sin theta, l cos theta)``. Section: ``[field block (7), g, m, l, 3 g / (2 l), 3 / (m l^2)]``.
Kernel calling convention (all plants): one flat array ``w`` holds the clipped control at
``w[0:m]``, the state at ``w[oz:]``, the output derivative at ``w[odz:]``, the partials
``Fz`` (n x n) at ``w[oF:]`` and ``Fu`` (n x m) at ``w[oG:]``, row-major, and plant scratch at
``w[ow:]``. Scratch here: ``[ow]`` torque, ``[ow+1:3]`` J, ``[ow+3:5]`` dJ, ``[ow+5:7]`` F,
``[ow+7], [ow+8]`` partials.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._dyn_common import field_torque, field_torque_jac
from ._layout import FIELD_LEN, H_PLANT, HOT, HOT_INLINE


@njit(**HOT_INLINE)
def _torque(p, off, l, w, oz, ow, jac):
    w[ow] = w[0]
    if jac:
        w[ow + 7] = 0.0
        w[ow + 8] = 0.0
    if p[off] != 0.0:
        c = np.cos(w[oz])
        s = np.sin(w[oz])
        w[ow + 1] = -l * c
        w[ow + 2] = -l * s
        w[ow + 3] = l * s
        w[ow + 4] = -l * c
        field_torque(p, off, w, ow + 1, 1, w, oz + 1, ow, ow + 5)
        if jac:
            field_torque_jac(p, off, w, ow + 1, ow + 3, 1, w, oz + 1, ow + 5, ow + 7, ow + 8)
    return w[ow]


@njit(**HOT)
def deriv_pendulum(p, w, oz, odz, ow):
    """``dz = [theta_dot, theta_ddot]``."""
    off = int(p[H_PLANT])
    l = p[off + FIELD_LEN + 2]
    th = w[oz]
    tau = _torque(p, off, l, w, oz, ow, False)
    w[odz] = w[oz + 1]
    w[odz + 1] = p[off + FIELD_LEN + 3] * np.sin(th) + p[off + FIELD_LEN + 4] * tau


@njit(**HOT)
def deriv_jac_pendulum(p, w, oz, odz, oF, oG, ow):
    """Value and exact partials of :func:`deriv_pendulum`."""
    off = int(p[H_PLANT])
    l = p[off + FIELD_LEN + 2]
    th = w[oz]
    tau = _torque(p, off, l, w, oz, ow, True)
    c1 = p[off + FIELD_LEN + 3]
    k = p[off + FIELD_LEN + 4]
    w[odz] = w[oz + 1]
    w[odz + 1] = c1 * np.sin(th) + k * tau
    w[oF] = 0.0
    w[oF + 1] = 1.0
    w[oF + 2] = c1 * np.cos(th) + k * w[ow + 7]
    w[oF + 3] = k * w[ow + 8]
    w[oG] = 0.0
    w[oG + 1] = k
