"""Compiled right-hand side of the linear plant ``f(x, u) = A x + B(x) u``.

``B(x)[i, j] = B0[i, j] + Bg[i, j] * tanh(x[k[i, j]])`` where ``k[i, j] = -1`` means no
state dependence. Section layout: ``[A (n*n), B0 (n*m), Bg (n*m), k (n*m)]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._layout import H_M, H_N, H_PLANT


@njit(cache=True)
def deriv_linear(p, z, u, dz, ws):
    """``dz = A z + B(z) u``."""
    n = int(p[H_N])
    m = int(p[H_M])
    a0 = int(p[H_PLANT])
    b0 = a0 + n * n
    g0 = b0 + n * m
    k0 = g0 + n * m
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += p[a0 + i * n + j] * z[j]
        for j in range(m):
            b = p[b0 + i * m + j]
            k = int(p[k0 + i * m + j])
            if k >= 0:
                b += p[g0 + i * m + j] * np.tanh(z[k])
            s += b * u[j]
        dz[i] = s


@njit(cache=True)
def deriv_jac_linear(p, z, u, dz, Fz, Fu, ws):
    """Value and exact partials ``Fz = A + sum_j dB[:, j]/dz u_j``, ``Fu = B(z)``."""
    n = int(p[H_N])
    m = int(p[H_M])
    a0 = int(p[H_PLANT])
    b0 = a0 + n * n
    g0 = b0 + n * m
    k0 = g0 + n * m
    for i in range(n):
        s = 0.0
        for j in range(n):
            a = p[a0 + i * n + j]
            Fz[i, j] = a
            s += a * z[j]
        for j in range(m):
            b = p[b0 + i * m + j]
            k = int(p[k0 + i * m + j])
            if k >= 0:
                t = np.tanh(z[k])
                g = p[g0 + i * m + j]
                b += g * t
                Fz[i, k] += g * (1.0 - t * t) * u[j]
            Fu[i, j] = b
            s += b * u[j]
        dz[i] = s
