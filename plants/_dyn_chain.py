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

from ._dyn_common import field_torque, field_torque_jac, ldl_inplace, ldl_solve
from ._layout import FIELD_LEN, H_PLANT, HOT, HOT_INLINE


def chain_workspace(N: int) -> int:
    """Scratch (float64 elements) used by the chain kernels."""
    return 8 * N + 10 * N * N + 16


@njit(**HOT_INLINE)
def _hand_jacobian(p, lo, N, w, oc, os_, oJ, odJ, with_dJ):
    """Hand Jacobian (2 x N at ``w[oJ:]``) and, if asked, ``dJ/dq_k`` at ``w[odJ + 2Nk:]``."""
    for i in range(N):
        jx = 0.0
        jy = 0.0
        for a in range(i, N):
            jx -= p[lo + a] * w[os_ + a]
            jy += p[lo + a] * w[oc + a]
        w[oJ + i] = jx
        w[oJ + N + i] = jy
    if with_dJ:
        for k in range(N):
            for i in range(N):
                st = i if i > k else k
                dx = 0.0
                dy = 0.0
                for a in range(st, N):
                    dx -= p[lo + a] * w[oc + a]
                    dy -= p[lo + a] * w[os_ + a]
                w[odJ + 2 * N * k + i] = dx
                w[odJ + 2 * N * k + N + i] = dy


@njit(**HOT_INLINE)
def _chain_eval(p, w, oz, ow, N, off):
    """Cholesky factor of M at ``w[ow + 2N:]``, accelerations at ``w[ow + 2N + N^2:]``."""
    po = off + FIELD_LEN
    npair = int(p[po + 1])
    lo = po + 2
    go = lo + N
    bo = go + N
    mo = bo + N * N
    pairo = mo + N * N
    oc = ow
    os_ = ow + N
    oM = ow + 2 * N
    oa = ow + 2 * N + N * N
    oJ = oa + N
    oF = oJ + 2 * N
    opt = ow + 8 * N + 8 * N * N
    absolute = p[go] != 0.0 or p[off] != 0.0  # gravity or field needs absolute angles
    if absolute:
        ang = 0.0
        for a in range(N):
            ang += w[oz + a]
            w[oc + a] = np.cos(ang)
            w[os_ + a] = np.sin(ang)
    for i in range(N):
        r = w[i]
        for j in range(N):
            w[oM + i * N + j] = p[mo + i * N + j]
            r -= p[bo + i * N + j] * w[oz + N + j]
        if absolute:
            for a in range(i, N):
                r -= p[go + a] * w[oc + a]
        w[oa + i] = r
    for q in range(npair):
        qo = pairo + q * (2 + N * N)
        a = int(p[qo])
        b = int(p[qo + 1])
        mc = qo + 2
        if absolute:
            cd = w[oc + a] * w[oc + b] + w[os_ + a] * w[os_ + b]
            sd = w[os_ + a] * w[oc + b] - w[oc + a] * w[os_ + b]
        else:
            dl = 0.0
            for r in range(b + 1, a + 1):
                dl += w[oz + r]
            cd = np.cos(dl)
            sd = np.sin(dl)
        w[opt + 2 * q] = cd
        w[opt + 2 * q + 1] = sd
        dd = 0.0
        for r in range(b + 1, a + 1):
            dd += w[oz + N + r]
        sp = 0.0
        for i in range(N):
            wi = 0.0
            for j in range(N):
                wi += p[mc + i * N + j] * w[oz + N + j]
                w[oM + i * N + j] += cd * p[mc + i * N + j]
            sp += w[oz + N + i] * wi
            w[oa + i] += sd * dd * wi
        for i in range(b + 1, a + 1):
            w[oa + i] -= 0.5 * sd * sp
    if p[off] != 0.0:
        _hand_jacobian(p, lo, N, w, oc, os_, oJ, 0, False)
        field_torque(p, off, w, oJ, N, w, oz + N, oa, oF)
    ldl_inplace(w, oM, N)
    ldl_solve(w, oM, N, oa, 1)


@njit(**HOT)
def deriv_chain(p, w, oz, odz, ow):
    """``dz = [qdot, qddot]`` for the planar chain.

    ``N`` = 2 and 3 are passed as constants so the compiler unrolls the small loops; the
    code is the same generic code for every ``N``.
    """
    N = int(p[int(p[H_PLANT]) + FIELD_LEN])
    if N == 2:
        _deriv_chain_n(p, w, oz, odz, ow, 2)
    elif N == 3:
        _deriv_chain_n(p, w, oz, odz, ow, 3)
    else:
        _deriv_chain_n(p, w, oz, odz, ow, N)


@njit(**HOT_INLINE)
def _deriv_chain_n(p, w, oz, odz, ow, N):
    off = int(p[H_PLANT])
    _chain_eval(p, w, oz, ow, N, off)
    oa = ow + 2 * N + N * N
    for i in range(N):
        w[odz + i] = w[oz + N + i]
        w[odz + N + i] = w[oa + i]


@njit(**HOT)
def deriv_jac_chain(p, w, oz, odz, oF, oG, ow):
    """Value and exact partials of :func:`deriv_chain`.

    ``dqddot/dq_k = M^-1 (dr/dq_k - dM/dq_k qddot)``, ``dqddot/dqdot = M^-1 dr/dqdot``,
    ``dqddot/dtau = M^-1`` with ``r = tau + J^T F - h - B qdot - G``.
    """
    N = int(p[int(p[H_PLANT]) + FIELD_LEN])
    if N == 2:
        _deriv_jac_chain_n(p, w, oz, odz, oF, oG, ow, 2)
    elif N == 3:
        _deriv_jac_chain_n(p, w, oz, odz, oF, oG, ow, 3)
    else:
        _deriv_jac_chain_n(p, w, oz, odz, oF, oG, ow, N)


@njit(**HOT_INLINE)
def _deriv_jac_chain_n(p, w, oz, odz, oF, oG, ow, N):
    off = int(p[H_PLANT])
    _chain_eval(p, w, oz, ow, N, off)
    po = off + FIELD_LEN
    npair = int(p[po + 1])
    lo = po + 2
    go = lo + N
    bo = go + N
    mo = bo + N * N
    pairo = mo + N * N
    oc = ow
    os_ = ow + N
    oL = ow + 2 * N
    oa = ow + 2 * N + N * N
    oJ = oa + N
    oFf = oJ + 2 * N
    oX = oFf + 2
    N3 = 3 * N
    odtq = oX + 3 * N * N
    odtv = odtq + N * N
    owp = odtv + N * N
    oma = owp + N
    odJ = oma + N
    # right-hand sides X = [dr/dq - dM/dq acc | dr/dqdot | I]   (N x 3N)
    opt = ow + 8 * N + 8 * N * N
    grav = p[go] != 0.0
    for i in range(N):
        for k in range(N):
            gs = 0.0
            if grav:
                st = i if i > k else k
                for a in range(st, N):
                    gs += p[go + a] * w[os_ + a]
            w[oX + i * N3 + k] = gs
            w[oX + i * N3 + N + k] = -p[bo + i * N + k]
            w[oX + i * N3 + 2 * N + k] = 1.0 if i == k else 0.0
    for q in range(npair):
        qo = pairo + q * (2 + N * N)
        a = int(p[qo])
        b = int(p[qo + 1])
        mc = qo + 2
        cd = w[opt + 2 * q]
        sd = w[opt + 2 * q + 1]
        dd = 0.0
        for r in range(b + 1, a + 1):
            dd += w[oz + N + r]
        sp = 0.0
        for i in range(N):
            wi = 0.0
            mi = 0.0
            for j in range(N):
                wi += p[mc + i * N + j] * w[oz + N + j]
                mi += p[mc + i * N + j] * w[oa + j]
            w[owp + i] = wi
            w[oma + i] = mi
            sp += w[oz + N + i] * wi
        for i in range(N):
            di = 1.0 if (b < i <= a) else 0.0
            hq = cd * (dd * w[owp + i] - 0.5 * di * sp) + sd * w[oma + i]
            for k in range(b + 1, a + 1):
                w[oX + i * N3 + k] += hq
            for m in range(N):
                dm = 1.0 if (b < m <= a) else 0.0
                w[oX + i * N3 + N + m] += sd * (dm * w[owp + i] + dd * p[mc + i * N + m]
                                                - di * w[owp + m])
    if p[off] != 0.0:
        for i in range(2 * N * N):
            w[odtq + i] = 0.0
        _hand_jacobian(p, lo, N, w, oc, os_, oJ, odJ, True)
        field_torque_jac(p, off, w, oJ, odJ, N, w, oz + N, oFf, odtq, odtv)
        for i in range(N):
            for k in range(N):
                w[oX + i * N3 + k] += w[odtq + i * N + k]
                w[oX + i * N3 + N + k] += w[odtv + i * N + k]
    ldl_solve(w, oL, N, oX, N3)
    for i in range(N):
        w[odz + i] = w[oz + N + i]
        w[odz + N + i] = w[oa + i]
        for k in range(2 * N):
            w[oF + i * 2 * N + k] = 1.0 if k == N + i else 0.0
            w[oF + (N + i) * 2 * N + k] = w[oX + i * N3 + k]
        for k in range(N):
            w[oG + i * N + k] = 0.0
            w[oG + (N + i) * N + k] = w[oX + i * N3 + 2 * N + k]


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
    ang = 0.0
    e = 0.0
    for a in range(N):
        ang += z[a]
        ws[a] = np.cos(ang)
        ws[N + a] = np.sin(ang)
        e += p[go + a] * ws[N + a]
    t = 0.0
    for i in range(N):
        for j in range(N):
            t += v[i] * p[mo + i * N + j] * v[j]
    for q in range(npair):
        qo = pairo + q * (2 + N * N)
        a = int(p[qo])
        b = int(p[qo + 1])
        cd = ws[a] * ws[b] + ws[N + a] * ws[N + b]
        for i in range(N):
            for j in range(N):
                t += cd * v[i] * p[qo + 2 + i * N + j] * v[j]
    return e + 0.5 * t
