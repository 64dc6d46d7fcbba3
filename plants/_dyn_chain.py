"""Compiled rigid-body dynamics of a planar serial chain of ``N`` links (the arms).

State ``z = [q_1..q_N, qdot_1..qdot_N]`` with relative joint angles; absolute link angles
``phi_a = q_1 + ... + q_a``. The equations of motion

    M(q) qddot + C(q, qdot) qdot + B qdot + G(q) = tau + J(q)^T F_field

are evaluated with the mass matrix written as a sum over link pairs ``a > b``::

    M(q) = M0 + sum_p cos(delta_p) Mc_p,     delta_p = phi_a - phi_b = sum_{b < r <= a} q_r

(constant matrices ``M0``, ``Mc_p`` precomputed from masses, lengths, CoM distances and
inertias; see :mod:`plants.arms`). Because ``dM/dq_r = -sum_p sin(delta_p) D_pr Mc_p`` with
``D_pr = 1`` if ``b < r <= a``, the Coriolis/centrifugal vector
``h = Mdot qdot - 1/2 d(qdot^T M qdot)/dq`` is

    h_i = -sum_p sin(delta_p) [ deltadot_p (Mc_p qdot)_i - 1/2 D_pi qdot^T Mc_p qdot ],

and its partial derivatives follow in closed form. Gravity (along -y, when on) derives from
``V = sum_a gc_a sin(phi_a)``. Section layout::

    [field block (7), N, npair, l[N], gc[N], Bv[N*N], M0[N*N], (a, b, Mc[N*N]) * npair]
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._dyn_common import (
    cholesky_inplace,
    cholesky_solve_cols,
    cholesky_solve_vec,
    field_torque,
    field_torque_jac,
)
from ._layout import FIELD_LEN, H_PLANT


def chain_workspace(N: int) -> int:
    """Scratch (float64 elements) used by the chain kernels."""
    return 8 * N + 8 * N * N + 2 * N * N * N + 16


@njit(cache=True)
def _hand_jacobian(p, lo, N, c, s, J, dJ, with_dJ):
    """Hand Jacobian ``J`` (2 x N) and, if asked, ``dJ[k] = dJ/dq_k``."""
    for i in range(N):
        jx = 0.0
        jy = 0.0
        for a in range(i, N):
            jx -= p[lo + a] * s[a]
            jy += p[lo + a] * c[a]
        J[0, i] = jx
        J[1, i] = jy
    if with_dJ:
        for k in range(N):
            for i in range(N):
                st = i if i > k else k
                dx = 0.0
                dy = 0.0
                for a in range(st, N):
                    dx -= p[lo + a] * c[a]
                    dy -= p[lo + a] * s[a]
                dJ[k, 0, i] = dx
                dJ[k, 1, i] = dy


@njit(cache=True)
def _chain_eval(p, z, u, ws, N, off):
    """Fill ``M`` (Cholesky factor) and solve for accelerations; returns the work views."""
    po = off + FIELD_LEN
    npair = int(p[po + 1])
    lo = po + 2
    go = lo + N
    bo = go + N
    mo = bo + N * N
    pairo = mo + N * N
    c = ws[0:N]
    s = ws[N:2 * N]
    M = ws[2 * N:2 * N + N * N].reshape((N, N))
    acc = ws[2 * N + N * N:3 * N + N * N]
    o = 3 * N + N * N
    J = ws[o:o + 2 * N].reshape((2, N))
    o += 2 * N
    F = ws[o:o + 2]
    v = z[N:2 * N]
    ang = 0.0
    for a in range(N):
        ang += z[a]
        c[a] = np.cos(ang)
        s[a] = np.sin(ang)
    for i in range(N):
        r = u[i]
        for j in range(N):
            M[i, j] = p[mo + i * N + j]
            r -= p[bo + i * N + j] * v[j]
        g = 0.0
        for a in range(i, N):
            g += p[go + a] * c[a]
        acc[i] = r - g
    for q in range(npair):
        qo = pairo + q * (2 + N * N)
        a = int(p[qo])
        b = int(p[qo + 1])
        mc = qo + 2
        cd = c[a] * c[b] + s[a] * s[b]
        sd = s[a] * c[b] - c[a] * s[b]
        dd = 0.0
        for r in range(b + 1, a + 1):
            dd += v[r]
        sp = 0.0
        for i in range(N):
            w = 0.0
            for j in range(N):
                w += p[mc + i * N + j] * v[j]
                M[i, j] += cd * p[mc + i * N + j]
            sp += v[i] * w
            acc[i] += sd * dd * w
        for i in range(b + 1, a + 1):
            acc[i] -= 0.5 * sd * sp
    if p[off] != 0.0:
        _hand_jacobian(p, lo, N, c, s, J, J.reshape((1, 2, N)), False)
        field_torque(p, off, J, N, v, acc, F)
    cholesky_inplace(M, N)
    cholesky_solve_vec(M, acc, N)


@njit(cache=True)
def deriv_chain(p, z, u, dz, ws):
    """``dz = [qdot, qddot]`` for the planar chain."""
    off = int(p[H_PLANT])
    N = int(p[off + FIELD_LEN])
    _chain_eval(p, z, u, ws, N, off)
    o = 2 * N + N * N
    for i in range(N):
        dz[i] = z[N + i]
        dz[N + i] = ws[o + i]


@njit(cache=True)
def deriv_jac_chain(p, z, u, dz, Fz, Fu, ws):
    """Value and exact partials of :func:`deriv_chain`.

    ``dqddot/dq_k = M^-1 (dr/dq_k - dM/dq_k qddot)``, ``dqddot/dqdot = M^-1 dr/dqdot``,
    ``dqddot/dtau = M^-1`` with ``r = tau + J^T F - h - B qdot - G``.
    """
    off = int(p[H_PLANT])
    N = int(p[off + FIELD_LEN])
    _chain_eval(p, z, u, ws, N, off)
    po = off + FIELD_LEN
    npair = int(p[po + 1])
    lo = po + 2
    go = lo + N
    bo = go + N
    mo = bo + N * N
    pairo = mo + N * N
    c = ws[0:N]
    s = ws[N:2 * N]
    L = ws[2 * N:2 * N + N * N].reshape((N, N))
    acc = ws[2 * N + N * N:3 * N + N * N]
    o = 3 * N + N * N
    J = ws[o:o + 2 * N].reshape((2, N))
    o += 2 * N
    F = ws[o:o + 2]
    o += 2
    X = ws[o:o + 3 * N * N].reshape((N, 3 * N))
    o += 3 * N * N
    dtq = ws[o:o + N * N].reshape((N, N))
    o += N * N
    dtv = ws[o:o + N * N].reshape((N, N))
    o += N * N
    w = ws[o:o + N]
    o += N
    ma = ws[o:o + N]
    o += N
    dJ = ws[o:o + 2 * N * N].reshape((N, 2, N))
    v = z[N:2 * N]
    # right-hand sides: [dr/dq - dM/dq acc | dr/dqdot | I]
    for i in range(N):
        for k in range(N):
            st = i if i > k else k
            gs = 0.0
            for a in range(st, N):
                gs += p[go + a] * s[a]
            X[i, k] = gs
            X[i, N + k] = -p[bo + i * N + k]
            X[i, 2 * N + k] = 1.0 if i == k else 0.0
    for q in range(npair):
        qo = pairo + q * (2 + N * N)
        a = int(p[qo])
        b = int(p[qo + 1])
        mc = qo + 2
        cd = c[a] * c[b] + s[a] * s[b]
        sd = s[a] * c[b] - c[a] * s[b]
        dd = 0.0
        for r in range(b + 1, a + 1):
            dd += v[r]
        sp = 0.0
        for i in range(N):
            wi = 0.0
            mi = 0.0
            for j in range(N):
                wi += p[mc + i * N + j] * v[j]
                mi += p[mc + i * N + j] * acc[j]
            w[i] = wi
            ma[i] = mi
            sp += v[i] * wi
        for i in range(N):
            di = 1.0 if (b < i <= a) else 0.0
            hq = cd * (dd * w[i] - 0.5 * di * sp)
            for k in range(b + 1, a + 1):
                X[i, k] += hq + sd * ma[i]
            for m in range(N):
                dm = 1.0 if (b < m <= a) else 0.0
                X[i, N + m] += sd * (dm * w[i] + dd * p[mc + i * N + m] - di * w[m])
    if p[off] != 0.0:
        dtq[:, :] = 0.0
        dtv[:, :] = 0.0
        _hand_jacobian(p, lo, N, c, s, J, dJ, True)
        field_torque_jac(p, off, J, dJ, N, v, F, dtq, dtv)
        for i in range(N):
            for k in range(N):
                X[i, k] += dtq[i, k]
                X[i, N + k] += dtv[i, k]
    cholesky_solve_cols(L, X, N, 3 * N)
    for i in range(N):
        dz[i] = z[N + i]
        dz[N + i] = acc[i]
        for k in range(2 * N):
            Fz[i, k] = 1.0 if k == N + i else 0.0
            Fz[N + i, k] = X[i, k]
        for k in range(N):
            Fu[i, k] = 0.0
            Fu[N + i, k] = X[i, 2 * N + k]


@njit(cache=True)
def chain_energy(p, z, ws):
    """Kinetic plus potential energy ``1/2 qdot^T M qdot + sum_a gc_a sin(phi_a)``."""
    off = int(p[H_PLANT])
    N = int(p[off + FIELD_LEN])
    po = off + FIELD_LEN
    npair = int(p[po + 1])
    go = po + 2 + N
    mo = go + N + N * N
    pairo = mo + N * N
    v = z[N:2 * N]
    c = ws[0:N]
    s = ws[N:2 * N]
    ang = 0.0
    e = 0.0
    for a in range(N):
        ang += z[a]
        c[a] = np.cos(ang)
        s[a] = np.sin(ang)
        e += p[go + a] * s[a]
    t = 0.0
    for i in range(N):
        for j in range(N):
            t += v[i] * p[mo + i * N + j] * v[j]
    for q in range(npair):
        qo = pairo + q * (2 + N * N)
        a = int(p[qo])
        b = int(p[qo + 1])
        cd = c[a] * c[b] + s[a] * s[b]
        for i in range(N):
            for j in range(N):
                t += cd * v[i] * p[qo + 2 + i * N + j] * v[j]
    return e + 0.5 * t
