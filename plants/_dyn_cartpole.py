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
from ._layout import FIELD_LEN, H_PLANT


@njit(cache=True)
def _tip_jacobian(l, th, J, dJ):
    c = np.cos(th)
    s = np.sin(th)
    J[0, 0] = 1.0
    J[1, 0] = 0.0
    J[0, 1] = 2 * l * c
    J[1, 1] = -2 * l * s
    for a in range(2):
        for b in range(2):
            dJ[0, a, b] = 0.0
    dJ[1, 0, 0] = 0.0
    dJ[1, 1, 0] = 0.0
    dJ[1, 0, 1] = -2 * l * s
    dJ[1, 1, 1] = -2 * l * c


@njit(cache=True)
def _forces(p, off, z, u, ws, jac):
    """Generalised forces (ws[0:2]) and, if ``jac``, their partials (ws[16:20])."""
    l = p[off + FIELD_LEN + 3]
    tau = ws[0:2]
    tau[0] = u[0]
    tau[1] = 0.0
    dtq = ws[16:20].reshape((2, 2))
    dtv = ws[20:24].reshape((2, 2))
    if jac:
        dtq[:, :] = 0.0
        dtv[:, :] = 0.0
    if p[off] != 0.0:
        q = ws[24:26]
        v = ws[26:28]
        q[0] = z[0]
        q[1] = z[2]
        v[0] = z[1]
        v[1] = z[3]
        J = ws[2:6].reshape((2, 2))
        dJ = ws[6:14].reshape((2, 2, 2))
        _tip_jacobian(l, q[1], J, dJ)
        field_torque(p, off, J, 2, v, tau, ws[14:16])
        if jac:
            field_torque_jac(p, off, J, dJ, 2, v, ws[14:16], dtq, dtv)


@njit(cache=True)
def deriv_cartpole(p, z, u, dz, ws):
    """``dz = [x_dot, x_ddot, theta_dot, theta_ddot]``."""
    off = int(p[H_PLANT])
    g = p[off + FIELD_LEN]
    mc = p[off + FIELD_LEN + 1]
    mp = p[off + FIELD_LEN + 2]
    l = p[off + FIELD_LEN + 3]
    _forces(p, off, z, u, ws, False)
    mt = mc + mp
    pml = mp * l
    th = z[2]
    w = z[3]
    c = np.cos(th)
    s = np.sin(th)
    temp = (ws[0] + pml * w * w * s) / mt
    thacc = (g * s - c * temp + ws[1] / pml) / (l * (4.0 / 3.0 - mp * c * c / mt))
    dz[0] = z[1]
    dz[1] = temp - pml * thacc * c / mt
    dz[2] = w
    dz[3] = thacc


@njit(cache=True)
def deriv_jac_cartpole(p, z, u, dz, Fz, Fu, ws):
    """Value and exact partials of :func:`deriv_cartpole`."""
    off = int(p[H_PLANT])
    g = p[off + FIELD_LEN]
    mc = p[off + FIELD_LEN + 1]
    mp = p[off + FIELD_LEN + 2]
    l = p[off + FIELD_LEN + 3]
    _forces(p, off, z, u, ws, True)
    dtq = ws[16:20].reshape((2, 2))
    dtv = ws[20:24].reshape((2, 2))
    mt = mc + mp
    pml = mp * l
    th = z[2]
    w = z[3]
    c = np.cos(th)
    s = np.sin(th)
    temp = (ws[0] + pml * w * w * s) / mt
    den = l * (4.0 / 3.0 - mp * c * c / mt)
    thacc = (g * s - c * temp + ws[1] / pml) / den
    dz[0] = z[1]
    dz[1] = temp - pml * thacc * c / mt
    dz[2] = w
    dz[3] = thacc
    # variables in state order: x, x_dot, theta, theta_dot, then u
    for y in range(5):
        if y == 4:
            dfin = 1.0
            dqt = 0.0
        else:
            col = y // 2  # generalised coordinate index (x -> 0, theta -> 1)
            src = dtv if (y % 2) == 1 else dtq
            dfin = src[0, col]
            dqt = src[1, col]
        dtemp = dfin / mt
        dnum = dqt / pml
        dden = 0.0
        if y == 2:
            dtemp += pml * w * w * c / mt
            dnum += g * c + s * temp
            dden = l * 2.0 * mp * c * s / mt
        elif y == 3:
            dtemp += 2.0 * pml * w * s / mt
        dnum -= c * dtemp
        dth = (dnum - thacc * dden) / den
        dx = dtemp - pml / mt * c * dth
        if y == 2:
            dx += pml / mt * s * thacc
        if y == 4:
            Fu[0, 0] = 0.0
            Fu[1, 0] = dx
            Fu[2, 0] = 0.0
            Fu[3, 0] = dth
        else:
            Fz[0, y] = 1.0 if y == 1 else 0.0
            Fz[1, y] = dx
            Fz[2, y] = 1.0 if y == 3 else 0.0
            Fz[3, y] = dth
