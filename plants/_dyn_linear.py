"""Compiled right-hand side of the linear plant ``f(x, u) = A x + B(x) u``.

``B(x)[i, j] = B0[i, j] + Bg[i, j] * tanh(x[k[i, j]])`` where ``k[i, j] = -1`` means no
state dependence. Section layout: ``[A (n*n), B0 (n*m), Bg (n*m), k (n*m)]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._layout import H_M, H_N, H_PLANT, HOT


@njit(**HOT)
def deriv_linear(p, w, oz, odz, ow):
    """``dz = A z + B(z) u`` (``u`` at ``w[0:m]``)."""
    n = int(p[H_N])
    m = int(p[H_M])
    a0 = int(p[H_PLANT])
    b0 = a0 + n * n
    g0 = b0 + n * m
    k0 = g0 + n * m
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += p[a0 + i * n + j] * w[oz + j]
        for j in range(m):
            b = p[b0 + i * m + j]
            k = int(p[k0 + i * m + j])
            if k >= 0:
                b += p[g0 + i * m + j] * np.tanh(w[oz + k])
            s += b * w[j]
        w[odz + i] = s


@njit(**HOT)
def deriv_jac_linear(p, w, oz, odz, oF, oG, ow):
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
            w[oF + i * n + j] = a
            s += a * w[oz + j]
        for j in range(m):
            b = p[b0 + i * m + j]
            k = int(p[k0 + i * m + j])
            if k >= 0:
                t = np.tanh(w[oz + k])
                g = p[g0 + i * m + j]
                b += g * t
                w[oF + i * n + k] += g * (1.0 - t * t) * w[j]
            w[oG + i * m + j] = b
            s += b * w[j]
        w[odz + i] = s
