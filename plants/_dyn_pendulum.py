"""Compiled right-hand side of the pendulum (uniform rod about one end, theta = 0 upright).

    theta_ddot = 3 g / (2 l) sin(theta) + 3 / (m l^2) (u + tau_field)

which is Gymnasium ``Pendulum-v1``'s update written as an ODE. Tip position
``p = (-l sin theta, l cos theta)``. Section: ``[field block (7), g, m, l]``.
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
    J[0, 0] = -l * c
    J[1, 0] = -l * s
    dJ[0, 0, 0] = l * s
    dJ[0, 1, 0] = -l * c


@njit(cache=True)
def deriv_pendulum(p, z, u, dz, ws):
    """``dz = [theta_dot, theta_ddot]``."""
    off = int(p[H_PLANT])
    g = p[off + FIELD_LEN]
    m = p[off + FIELD_LEN + 1]
    l = p[off + FIELD_LEN + 2]
    th = z[0]
    tau = ws[0:1]
    tau[0] = u[0]
    if p[off] != 0.0:
        J = ws[1:3].reshape((2, 1))
        dJ = ws[3:5].reshape((1, 2, 1))
        _tip_jacobian(l, th, J, dJ)
        field_torque(p, off, J, 1, z[1:2], tau, ws[5:7])
    dz[0] = z[1]
    dz[1] = 3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l**2) * tau[0]


@njit(cache=True)
def deriv_jac_pendulum(p, z, u, dz, Fz, Fu, ws):
    """Value and exact partials of :func:`deriv_pendulum`."""
    off = int(p[H_PLANT])
    g = p[off + FIELD_LEN]
    m = p[off + FIELD_LEN + 1]
    l = p[off + FIELD_LEN + 2]
    th = z[0]
    tau = ws[0:1]
    tau[0] = u[0]
    dtq = ws[7:8].reshape((1, 1))
    dtv = ws[8:9].reshape((1, 1))
    dtq[0, 0] = 0.0
    dtv[0, 0] = 0.0
    if p[off] != 0.0:
        J = ws[1:3].reshape((2, 1))
        dJ = ws[3:5].reshape((1, 2, 1))
        _tip_jacobian(l, th, J, dJ)
        field_torque(p, off, J, 1, z[1:2], tau, ws[5:7])
        field_torque_jac(p, off, J, dJ, 1, z[1:2], ws[5:7], dtq, dtv)
    k = 3.0 / (m * l**2)
    dz[0] = z[1]
    dz[1] = 3 * g / (2 * l) * np.sin(th) + k * tau[0]
    Fz[0, 0] = 0.0
    Fz[0, 1] = 1.0
    Fz[1, 0] = 3 * g / (2 * l) * np.cos(th) + k * dtq[0, 0]
    Fz[1, 1] = k * dtv[0, 0]
    Fu[0, 0] = 0.0
    Fu[1, 0] = k
