"""Compiled right-hand side of the linear plant ``f(x, u) = A x + B(x) u``.

``B(x)[i, j] = B0[i, j] + Bg[i, j] * tanh(x[k[i, j]])`` where ``k[i, j] = -1`` means no
state dependence. Section layout: ``[A (n*n), B0 (n*m), Bg (n*m), k (n*m)]``. Calling
convention: :mod:`plants._integrate`. The discrete map also has a batch-major rollout,
:func:`map_rollout`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._integrate import first_bad_input
from ._layout import H_PLANT, H_UHI, H_ULO, HOT_INTERNAL


@njit(**HOT_INTERNAL)
def consts(p):
    """The linear plant reads its matrices from ``params`` directly."""
    return p


@njit(**HOT_INTERNAL)
def rhs(p, z, u, dz, pw):
    """``dz = A z + B(z) u``."""
    n = z.shape[0]
    m = u.shape[0]
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


@njit(**HOT_INTERNAL)
def rhs_jac(p, z, u, dz, F, G, pw):
    """Value and exact partials ``F = A + sum_j dB[:, j]/dz u_j``, ``G = B(z)``."""
    n = z.shape[0]
    m = u.shape[0]
    a0 = int(p[H_PLANT])
    b0 = a0 + n * n
    g0 = b0 + n * m
    k0 = g0 + n * m
    for i in range(n):
        s = 0.0
        for j in range(n):
            a = p[a0 + i * n + j]
            F[i, j] = a
            s += a * z[j]
        for j in range(m):
            b = p[b0 + i * m + j]
            k = int(p[k0 + i * m + j])
            if k >= 0:
                t = np.tanh(z[k])
                g = p[g0 + i * m + j]
                b += g * t
                F[i, k] += g * (1.0 - t * t) * u[j]
            G[i, j] = b
            s += b * u[j]
        dz[i] = s


_CHUNK = 64  # samples advanced together through all steps (their states stay in L1)


@njit(**HOT_INTERNAL)
def map_rollout(p, X0, U, W, noisy, X, o0):
    """The discrete map's rollout (arguments and result as ``rollout_rows``), batch-major.

    Each step updates one state coordinate of a chunk of samples at a time, so that the
    inner loops run over samples instead of over the few states and controls of one
    sample (which is what makes the per-sample loop slow for a plant this cheap). The sums are
    taken in the order of :func:`rhs`, so the results are bitwise those of the per-sample
    path.
    """
    bad = first_bad_input(X0, U)
    if bad >= 0:
        return bad
    nb = X0.shape[0]
    T = U.shape[1]
    n = X0.shape[1]
    m = U.shape[2]
    a0 = int(p[H_PLANT])
    b0 = a0 + n * n
    g0 = b0 + n * m
    k0 = g0 + n * m
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    if o0 == 1:
        for b in range(nb):
            for i in range(n):
                X[b, 0, i] = X0[b, i]
    for c0 in range(0, nb, _CHUNK):
        c1 = min(c0 + _CHUNK, nb)
        for t in range(T):
            S = X0[c0:c1] if t + o0 == 0 else X[c0:c1, t + o0 - 1, :]
            D = X[c0:c1, t + o0, :]
            Ut = U[c0:c1, t, :]
            nc = c1 - c0
            for i in range(n):
                for b in range(nc):
                    D[b, i] = 0.0
                for j in range(n):
                    a = p[a0 + i * n + j]
                    for b in range(nc):
                        D[b, i] += a * S[b, j]
                for j in range(m):
                    c = p[b0 + i * m + j]
                    g = p[g0 + i * m + j]
                    k = int(p[k0 + i * m + j])
                    ulo = p[lo + j]
                    uhi = p[hi + j]
                    if k >= 0:
                        for b in range(nc):
                            u = min(max(Ut[b, j], ulo), uhi)
                            D[b, i] += (c + g * np.tanh(S[b, k])) * u
                    else:
                        for b in range(nc):
                            D[b, i] += c * min(max(Ut[b, j], ulo), uhi)
            if noisy:
                for b in range(nc):
                    for i in range(n):
                        D[b, i] += W[c0 + b, t, i]
    for b in range(nb):
        for t in range(o0, T + o0):
            for i in range(n):
                if not np.isfinite(X[b, t, i]):
                    return -2 - b
    return -1


@njit(**HOT_INTERNAL)
def map_jacobians(p, X, U, A, B):
    """Jacobians of the discrete map (arguments and result as ``jacobian_rows``):
    ``A[b] = A + sum_j dB/dx u_j`` and ``B[b] = B(x)``, zero columns where ``u`` is clipped.

    The same numbers as :func:`rhs_jac` (through the per-sample path), without its loop
    over one sample's entries.
    """
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    nb = X.shape[0]
    n = X.shape[1]
    m = U.shape[1]
    a0 = int(p[H_PLANT])
    b0 = a0 + n * n
    g0 = b0 + n * m
    k0 = g0 + n * m
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    for b in range(nb):
        for i in range(n):
            for j in range(n):
                A[b, i, j] = p[a0 + i * n + j]
    for i in range(n):
        for j in range(m):
            c = p[b0 + i * m + j]
            g = p[g0 + i * m + j]
            k = int(p[k0 + i * m + j])
            ulo = p[lo + j]
            uhi = p[hi + j]
            for b in range(nb):
                u = U[b, j]
                free = ulo <= u <= uhi
                if k >= 0:
                    t = np.tanh(X[b, k])
                    if free:
                        A[b, i, k] += g * (1.0 - t * t) * u
                    elif u > uhi:
                        A[b, i, k] += g * (1.0 - t * t) * uhi
                    else:
                        A[b, i, k] += g * (1.0 - t * t) * ulo
                    B[b, i, j] = (c + g * t) if free else 0.0
                else:
                    B[b, i, j] = c if free else 0.0
    for b in range(nb):
        for i in range(n):
            for j in range(n):
                if not np.isfinite(A[b, i, j]):
                    return -2 - b
    return -1
