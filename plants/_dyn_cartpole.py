"""Compiled right-hand side of the cart-pole (Gymnasium ``CartPole-v1`` equations).

State ``[x, x_dot, theta, theta_dot]``, theta = 0 upright, ``l`` = half pole length::

    temp        = (F + Q_x + m_p l theta_dot^2 sin theta) / (m_c + m_p)
    theta_ddot  = (g sin theta - cos theta temp + Q_theta / (m_p l))
                  / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
    x_ddot      = temp - m_p l theta_ddot cos theta / (m_c + m_p)

(Barto, Sutton & Anderson 1983; Florian 2007, frictionless), where ``Q = J^T F_field`` is the
generalised force of an end-point field ``F_field = F0 + K p_dot`` acting on the pole tip
``p = (x + 2 l sin theta, 2 l cos theta)``, ``J = dp/d(x, theta) = [[1, 2 l cos], [0, -2 l sin]]``.
Section: ``[field block (7), g, m_c, m_p, l]``. Calling convention: :mod:`plants._integrate`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._chunked import CHUNK, rollout_stage_offsets, sincos_row, stage_offsets
from ._layout import FIELD_LEN, H_PLANT, HOT_INTERNAL


@njit(**HOT_INTERNAL)
def consts(p):
    """``(field on, F0x, F0y, K00, K01, K10, K11, g, m_c, m_p, l)``."""
    o = int(p[H_PLANT])
    f = FIELD_LEN
    return (p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4], p[o + 5], p[o + 6],
            p[o + f], p[o + f + 1], p[o + f + 2], p[o + f + 3])


@njit(**HOT_INTERNAL)
def rhs(c, z, u, dz, pw):
    """``dz = [x_dot, x_ddot, theta_dot, theta_ddot]``."""
    on, f0x, f0y, k00, k01, k10, k11, g, mc, mp, l = c
    xd = z[1]
    om = z[3]
    co = np.cos(z[2])
    s = np.sin(z[2])
    qx = u[0]
    qt = 0.0
    if on != 0.0:
        px = xd + 2.0 * l * co * om  # tip velocity J q_dot
        py = -2.0 * l * s * om
        fx = f0x + k00 * px + k01 * py
        fy = f0y + k10 * px + k11 * py
        qx += fx
        qt = 2.0 * l * (co * fx - s * fy)
    mt = mc + mp
    pml = mp * l
    temp = (qx + pml * om * om * s) / mt
    thacc = (g * s - co * temp + qt / pml) / (l * (4.0 / 3.0 - mp * co * co / mt))
    dz[0] = xd
    dz[1] = temp - pml * thacc * co / mt
    dz[2] = om
    dz[3] = thacc


@njit(**HOT_INTERNAL)
def rhs_jac(c, z, u, dz, F, G, pw):
    """:func:`rhs` and its exact partials."""
    on, f0x, f0y, k00, k01, k10, k11, g, mc, mp, l = c
    xd = z[1]
    om = z[3]
    co = np.cos(z[2])
    s = np.sin(z[2])
    qx = u[0]
    qt = 0.0
    # partials of the generalised forces (Q_x, Q_theta) by (x_dot, theta, theta_dot)
    dqx_xd = dqx_th = dqx_om = 0.0
    dqt_xd = dqt_th = dqt_om = 0.0
    if on != 0.0:
        l2 = 2.0 * l
        px = xd + l2 * co * om
        py = -l2 * s * om
        fx = f0x + k00 * px + k01 * py
        fy = f0y + k10 * px + k11 * py
        qx += fx
        qt = l2 * (co * fx - s * fy)
        # d p_dot: by x_dot (1, 0); by theta (-2l sin om, -2l cos om); by theta_dot (J column 2)
        for y in range(3):
            if y == 0:
                dpx, dpy = 1.0, 0.0
            elif y == 1:
                dpx, dpy = -l2 * s * om, -l2 * co * om
            else:
                dpx, dpy = l2 * co, -l2 * s
            dfx = k00 * dpx + k01 * dpy
            dfy = k10 * dpx + k11 * dpy
            dqt = l2 * (co * dfx - s * dfy)
            if y == 1:
                dqt += l2 * (-s * fx - co * fy)
            if y == 0:
                dqx_xd, dqt_xd = dfx, dqt
            elif y == 1:
                dqx_th, dqt_th = dfx, dqt
            else:
                dqx_om, dqt_om = dfx, dqt
    mt = mc + mp
    pml = mp * l
    temp = (qx + pml * om * om * s) / mt
    den = l * (4.0 / 3.0 - mp * co * co / mt)
    thacc = (g * s - co * temp + qt / pml) / den
    dz[0] = xd
    dz[1] = temp - pml * thacc * co / mt
    dz[2] = om
    dz[3] = thacc
    for i in range(4):
        F[0, i] = 1.0 if i == 1 else 0.0
        F[2, i] = 1.0 if i == 3 else 0.0
    F[1, 0] = 0.0
    F[3, 0] = 0.0
    # variables y: x_dot, theta, theta_dot, u (x itself does not enter)
    for y in range(4):
        if y == 0:
            dfin, dqt = dqx_xd, dqt_xd
        elif y == 1:
            dfin, dqt = dqx_th, dqt_th
        elif y == 2:
            dfin, dqt = dqx_om, dqt_om
        else:
            dfin, dqt = 1.0, 0.0
        dtemp = dfin / mt
        dnum = dqt / pml
        dden = 0.0
        if y == 1:
            dtemp += pml * om * om * co / mt
            dnum += g * co + s * temp
            dden = l * 2.0 * mp * co * s / mt
        elif y == 2:
            dtemp += 2.0 * pml * om * s / mt
        dnum -= co * dtemp
        dth = (dnum - thacc * dden) / den
        dx = dtemp - pml / mt * co * dth
        if y == 1:
            dx += pml / mt * s * thacc
        if y == 3:
            G[0, 0] = 0.0
            G[1, 0] = dx
            G[2, 0] = 0.0
            G[3, 0] = dth
        else:
            F[1, y + 1] = dx
            F[3, y + 1] = dth


@njit(**HOT_INTERNAL)
def plain(p):
    """Whether the cart-pole's force field is off (the case of :func:`stage_jac_plain`)."""
    return p[int(p[H_PLANT])] == 0.0


@njit(**HOT_INTERNAL, error_model="numpy")
def stage_jac_plain(c, w, ws):
    """:func:`rhs_jac` without a force field, for a chunk of samples: the stage function
    of :func:`plants._chunked.jacobian_chunks` (``ws`` is not used; the sizes are written
    in, so that the offsets are constants). The same operations as :func:`rhs_jac` with
    the field's terms zero; the loop over the samples vectorises (the trigonometry:
    :func:`plants._chunked.sincos_row`)."""
    on, f0x, f0y, k00, k01, k10, k11, g, mc, mp, l = c
    zo, ko, uo, fo, go = stage_offsets(4, 1)
    CH = CHUNK
    mt = mc + mp
    pml = mp * l
    sincos_row(w, zo + 2 * CH, fo)  # into F's first rows (constant: set at the end)
    for b in range(CH):
        s = w[fo + b]
        co = w[fo + CH + b]
        xd = w[zo + CH + b]
        om = w[zo + 3 * CH + b]
        temp = (w[uo + b] + pml * om * om * s) / mt
        den = l * (4.0 / 3.0 - mp * co * co / mt)
        thacc = (g * s - co * temp) / den
        # by theta
        dtemp = pml * om * om * co / mt
        dnum = g * co + s * temp - co * dtemp
        dden = l * 2.0 * mp * co * s / mt
        dth_th = (dnum - thacc * dden) / den
        dx_th = dtemp - pml / mt * co * dth_th + pml / mt * s * thacc
        # by theta_dot
        dtemp = 2.0 * pml * om * s / mt
        dth_om = (-co * dtemp) / den
        dx_om = dtemp - pml / mt * co * dth_om
        # by u
        dtemp = 1.0 / mt
        dth_u = (-co * dtemp) / den
        dx_u = dtemp - pml / mt * co * dth_u
        w[ko + b] = xd
        w[ko + CH + b] = temp - pml * thacc * co / mt
        w[ko + 2 * CH + b] = om
        w[ko + 3 * CH + b] = thacc
        for e in range(16):
            w[fo + e * CH + b] = 1.0 if e == 1 or e == 11 else 0.0
        w[fo + 6 * CH + b] = dx_th
        w[fo + 7 * CH + b] = dx_om
        w[fo + 14 * CH + b] = dth_th
        w[fo + 15 * CH + b] = dth_om
        w[go + b] = 0.0
        w[go + CH + b] = dx_u
        w[go + 2 * CH + b] = 0.0
        w[go + 3 * CH + b] = dth_u


@njit(**HOT_INTERNAL, error_model="numpy")
def stage_plain(c, w):
    """:func:`rhs` without a force field for a chunk of samples, the stage function of
    :func:`plants._chunked.rollout_chunks` (the sizes are written in, so that the offsets
    are constants). The loop over the samples vectorises (the trigonometry:
    :func:`plants._chunked.sincos_row`); it multiplies by ``1 / (m_c + m_p)`` where
    :func:`rhs` divides (a division costs about fifteen multiplications)."""
    on, f0x, f0y, k00, k01, k10, k11, g, mc, mp, l = c
    zo, ko, uo, wo = rollout_stage_offsets(4, 1)
    CH = CHUNK
    imt = 1.0 / (mc + mp)
    pml = mp * l
    sincos_row(w, zo + 2 * CH, wo)
    for b in range(CH):
        s = w[wo + b]
        co = w[wo + CH + b]
        xd = w[zo + CH + b]
        om = w[zo + 3 * CH + b]
        temp = (w[uo + b] + pml * om * om * s) * imt
        thacc = (g * s - co * temp) / (l * (4.0 / 3.0 - mp * co * co * imt))
        w[ko + b] = xd
        w[ko + CH + b] = temp - pml * thacc * co * imt
        w[ko + 2 * CH + b] = om
        w[ko + 3 * CH + b] = thacc
