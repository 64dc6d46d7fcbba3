"""Compiled helpers shared by the plant models: small dense solves and end-point force fields."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def cholesky_inplace(M, n):
    """Overwrite the lower triangle of the SPD matrix ``M[:n, :n]`` with its Cholesky factor."""
    for j in range(n):
        s = M[j, j]
        for k in range(j):
            s -= M[j, k] * M[j, k]
        d = np.sqrt(s)
        M[j, j] = d
        for i in range(j + 1, n):
            t = M[i, j]
            for k in range(j):
                t -= M[i, k] * M[j, k]
            M[i, j] = t / d


@njit(cache=True)
def cholesky_solve_vec(L, b, n):
    """Solve ``L L^T x = b`` in place in ``b`` (``L`` from :func:`cholesky_inplace`)."""
    for i in range(n):
        t = b[i]
        for k in range(i):
            t -= L[i, k] * b[k]
        b[i] = t / L[i, i]
    for i in range(n - 1, -1, -1):
        t = b[i]
        for k in range(i + 1, n):
            t -= L[k, i] * b[k]
        b[i] = t / L[i, i]


@njit(cache=True)
def cholesky_solve_cols(L, X, n, ncol):
    """Solve ``L L^T Y = X[:, :ncol]`` in place, column by column."""
    for c in range(ncol):
        for i in range(n):
            t = X[i, c]
            for k in range(i):
                t -= L[i, k] * X[k, c]
            X[i, c] = t / L[i, i]
        for i in range(n - 1, -1, -1):
            t = X[i, c]
            for k in range(i + 1, n):
                t -= L[k, i] * X[k, c]
            X[i, c] = t / L[i, i]


@njit(cache=True)
def field_force(p, off, J, nq, v, F):
    """End-point force ``F = F0 + K J v`` (2,) from the field block at ``p[off:]``."""
    pdx = 0.0
    pdy = 0.0
    for i in range(nq):
        pdx += J[0, i] * v[i]
        pdy += J[1, i] * v[i]
    F[0] = p[off + 1] + p[off + 3] * pdx + p[off + 4] * pdy
    F[1] = p[off + 2] + p[off + 5] * pdx + p[off + 6] * pdy


@njit(cache=True)
def field_torque(p, off, J, nq, v, tau, F):
    """Add the generalised force ``J^T F`` of the field to ``tau`` (no-op if the field is off)."""
    if p[off] == 0.0:
        return
    field_force(p, off, J, nq, v, F)
    for i in range(nq):
        tau[i] += J[0, i] * F[0] + J[1, i] * F[1]


@njit(cache=True)
def field_torque_jac(p, off, J, dJ, nq, v, F, dtq, dtv):
    """Add d(J^T F)/dq to ``dtq`` and d(J^T F)/dv to ``dtv``.

    ``dJ[k]`` is dJ/dq_k (shape ``[nq, 2, nq]``). With ``F = F0 + K J v``::

        d(J^T F)/dq_k = dJ_k^T F + J^T K dJ_k v,      d(J^T F)/dv = J^T K J.
    """
    if p[off] == 0.0:
        return
    field_force(p, off, J, nq, v, F)
    k00 = p[off + 3]
    k01 = p[off + 4]
    k10 = p[off + 5]
    k11 = p[off + 6]
    for k in range(nq):
        gx = 0.0
        gy = 0.0
        for i in range(nq):
            gx += dJ[k, 0, i] * v[i]
            gy += dJ[k, 1, i] * v[i]
        fx = k00 * gx + k01 * gy
        fy = k10 * gx + k11 * gy
        for i in range(nq):
            dtq[i, k] += dJ[k, 0, i] * F[0] + dJ[k, 1, i] * F[1] + J[0, i] * fx + J[1, i] * fy
    for j in range(nq):
        kx = k00 * J[0, j] + k01 * J[1, j]
        ky = k10 * J[0, j] + k11 * J[1, j]
        for i in range(nq):
            dtv[i, j] += J[0, i] * kx + J[1, i] * ky
