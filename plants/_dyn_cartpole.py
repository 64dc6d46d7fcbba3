"""Compiled right-hand side of the cart-pole (Gymnasium ``CartPole-v1`` equations).

State ``[x, x_dot, theta, theta_dot]``, theta = 0 upright, ``l`` = half pole length::

    temp        = (F + Q_x + m_p l theta_dot^2 sin theta) / (m_c + m_p)
    theta_ddot  = (g sin theta - cos theta temp + Q_theta / (m_p l))
                  / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
    x_ddot      = temp - m_p l theta_ddot cos theta / (m_c + m_p)

(Barto, Sutton & Anderson 1983; Florian 2007, frictionless), where ``Q = J^T F_field`` is the
generalised force of an end-point field acting on the pole tip
``p = (x + 2 l sin theta, 2 l cos theta)``. Section: ``[field block (7), g, m_c, m_p, l]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._dyn_common import field_torque, field_torque_jac
from ._layout import FIELD_LEN, H_PLANT, HOT, HOT_INLINE


@njit(**HOT_INLINE)
def _forces(p, off, w, oz, ow, jac):
    """Generalised forces at ``w[ow:ow+2]``; if ``jac`` their partials at ``w[ow+16:ow+20]`` (q)
    and ``w[ow+20:ow+24]`` (v). Scratch: J ``[ow+2:6]``, dJ ``[ow+6:14]``, F ``[ow+14:16]``,
    velocities ``(x_dot, theta_dot)`` ``[ow+24:26]``.
    """
    w[ow] = w[0]
    w[ow + 1] = 0.0
    if jac:
        for i in range(16, 24):
            w[ow + i] = 0.0
    if p[off] != 0.0:
        l = p[off + FIELD_LEN + 3]
        c = np.cos(w[oz + 2])
        s = np.sin(w[oz + 2])
        w[ow + 24] = w[oz + 1]
        w[ow + 25] = w[oz + 3]
        # J = [[1, 2l cos], [0, -2l sin]]; dJ/dx = 0; dJ/dtheta = [[0, -2l sin], [0, -2l cos]]
        w[ow + 2] = 1.0
        w[ow + 3] = 2 * l * c
        w[ow + 4] = 0.0
        w[ow + 5] = -2 * l * s
        for i in range(6, 11):
            w[ow + i] = 0.0
        w[ow + 11] = -2 * l * s
        w[ow + 12] = 0.0
        w[ow + 13] = -2 * l * c
        field_torque(p, off, w, ow + 2, 2, w, ow + 24, ow, ow + 14)
        if jac:
            field_torque_jac(p, off, w, ow + 2, ow + 6, 2, w, ow + 24, ow + 14, ow + 16,
                             ow + 20)


@njit(**HOT)
def deriv_cartpole(p, w, oz, odz, ow):
    """``dz = [x_dot, x_ddot, theta_dot, theta_ddot]``."""
    off = int(p[H_PLANT])
    g = p[off + FIELD_LEN]
    mc = p[off + FIELD_LEN + 1]
    mp = p[off + FIELD_LEN + 2]
    l = p[off + FIELD_LEN + 3]
    _forces(p, off, w, oz, ow, False)
    mt = mc + mp
    pml = mp * l
    om = w[oz + 3]
    c = np.cos(w[oz + 2])
    s = np.sin(w[oz + 2])
    temp = (w[ow] + pml * om * om * s) / mt
    thacc = (g * s - c * temp + w[ow + 1] / pml) / (l * (4.0 / 3.0 - mp * c * c / mt))
    w[odz] = w[oz + 1]
    w[odz + 1] = temp - pml * thacc * c / mt
    w[odz + 2] = om
    w[odz + 3] = thacc


@njit(**HOT)
def deriv_jac_cartpole(p, w, oz, odz, oF, oG, ow):
    """Value and exact partials of :func:`deriv_cartpole`."""
    off = int(p[H_PLANT])
    g = p[off + FIELD_LEN]
    mc = p[off + FIELD_LEN + 1]
    mp = p[off + FIELD_LEN + 2]
    l = p[off + FIELD_LEN + 3]
    _forces(p, off, w, oz, ow, True)
    mt = mc + mp
    pml = mp * l
    om = w[oz + 3]
    c = np.cos(w[oz + 2])
    s = np.sin(w[oz + 2])
    temp = (w[ow] + pml * om * om * s) / mt
    den = l * (4.0 / 3.0 - mp * c * c / mt)
    thacc = (g * s - c * temp + w[ow + 1] / pml) / den
    w[odz] = w[oz + 1]
    w[odz + 1] = temp - pml * thacc * c / mt
    w[odz + 2] = om
    w[odz + 3] = thacc
    # variables in state order: x, x_dot, theta, theta_dot, then u
    for y in range(5):
        if y == 4:
            dfin = 1.0
            dqt = 0.0
        else:
            col = y // 2  # generalised coordinate index (x -> 0, theta -> 1)
            base = ow + (20 if (y % 2) == 1 else 16)
            dfin = w[base + col]
            dqt = w[base + 2 + col]
        dtemp = dfin / mt
        dnum = dqt / pml
        dden = 0.0
        if y == 2:
            dtemp += pml * om * om * c / mt
            dnum += g * c + s * temp
            dden = l * 2.0 * mp * c * s / mt
        elif y == 3:
            dtemp += 2.0 * pml * om * s / mt
        dnum -= c * dtemp
        dth = (dnum - thacc * dden) / den
        dx = dtemp - pml / mt * c * dth
        if y == 2:
            dx += pml / mt * s * thacc
        if y == 4:
            w[oG] = 0.0
            w[oG + 1] = dx
            w[oG + 2] = 0.0
            w[oG + 3] = dth
        else:
            w[oF + y] = 1.0 if y == 1 else 0.0
            w[oF + 4 + y] = dx
            w[oF + 8 + y] = 1.0 if y == 3 else 0.0
            w[oF + 12 + y] = dth
