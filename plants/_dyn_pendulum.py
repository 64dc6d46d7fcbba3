"""Compiled right-hand side of the pendulum (uniform rod about one end, theta = 0 upright).

    theta_ddot = 3 g / (2 l) sin(theta) + 3 / (m l^2) (u + tau_field)

which is Gymnasium ``Pendulum-v1``'s update written as an ODE. The end-point field acts on
the tip ``p = (-l sin theta, l cos theta)``, with ``J = dp/dtheta = (-l cos, -l sin)``::

    F = F0 + K J theta_dot,      tau_field = J . F

Section: ``[field block (7), g, m, l, 3 g / (2 l), 3 / (m l^2)]``. Calling convention of
``rhs``/``rhs_jac``: :mod:`plants._integrate`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._layout import FIELD_LEN, H_PLANT, HOT_INTERNAL


@njit(**HOT_INTERNAL)
def consts(p):
    """``(field on, F0x, F0y, K00, K01, K10, K11, l, 3 g / (2 l), 3 / (m l^2))``."""
    o = int(p[H_PLANT])
    f = FIELD_LEN
    return (p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4], p[o + 5], p[o + 6],
            p[o + f + 2], p[o + f + 3], p[o + f + 4])


@njit(**HOT_INTERNAL)
def rhs(c, z, u, dz, pw):
    """``dz = [theta_dot, theta_ddot]``."""
    on, f0x, f0y, k00, k01, k10, k11, l, c1, kt = c
    th = z[0]
    om = z[1]
    s = np.sin(th)
    tau = u[0]
    if on != 0.0:
        co = np.cos(th)
        jx = -l * co
        jy = -l * s
        fx = f0x + (k00 * jx + k01 * jy) * om
        fy = f0y + (k10 * jx + k11 * jy) * om
        tau += jx * fx + jy * fy
    dz[0] = om
    dz[1] = c1 * s + kt * tau


@njit(**HOT_INTERNAL)
def rhs_jac(c, z, u, dz, F, G, pw):
    """:func:`rhs` and its exact partials."""
    on, f0x, f0y, k00, k01, k10, k11, l, c1, kt = c
    th = z[0]
    om = z[1]
    s = np.sin(th)
    co = np.cos(th)
    tau = u[0]
    dtau_th = 0.0
    dtau_om = 0.0
    if on != 0.0:
        jx = -l * co
        jy = -l * s
        djx = l * s  # dJ / dtheta
        djy = -l * co
        kjx = k00 * jx + k01 * jy  # K J
        kjy = k10 * jx + k11 * jy
        fx = f0x + kjx * om
        fy = f0y + kjy * om
        tau += jx * fx + jy * fy
        # d(J . F)/dtheta = dJ . F + J . K dJ theta_dot;  d(J . F)/dtheta_dot = J . K J
        dtau_th = djx * fx + djy * fy + (jx * (k00 * djx + k01 * djy)
                                         + jy * (k10 * djx + k11 * djy)) * om
        dtau_om = jx * kjx + jy * kjy
    dz[0] = om
    dz[1] = c1 * s + kt * tau
    F[0, 0] = 0.0
    F[0, 1] = 1.0
    F[1, 0] = c1 * co + kt * dtau_th
    F[1, 1] = kt * dtau_om
    G[0, 0] = 0.0
    G[1, 0] = kt
