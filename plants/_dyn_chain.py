"""Compiled rigid-body dynamics of a planar serial chain of ``N`` links (the arms).

State ``z = [q_1..q_N, v_1..v_N]`` with relative joint angles. The model is evaluated in
absolute link angles ``phi = T q`` (``phi_a = q_1 + ... + q_a``, ``T`` lower-triangular
ones), where the kinetic energy is ``1/2 phidot^T N(phi) phidot`` with
``N_ab = n_ab cos(phi_a - phi_b)`` (constant coefficients ``n``, see
:func:`plants.arms.link_coefficients`). Lagrange's equations there are::

    N(phi) phi_ddot + c = Q,    c_a = sum_b n_ab sin(phi_a - phi_b) phidot_b^2,
    Q = T^-T (tau - B v) - g + J^T F,    g_a = gc_a cos(phi_a),
    J_a = l_a (-sin phi_a, cos phi_a),   F = F0 + K J phidot

and ``qddot = T^-1 phi_ddot`` (``(T^-T y)_a = y_a - y_a+1``, ``(T^-1 y)_a = y_a - y_a-1``).
This is ``M(q) qddot + C qdot + B qdot + G(q) = tau + J(q)^T F`` with ``M = T^T N T``.

The exact partials follow from ``d phi_ddot / dy = N^-1 (dQ/dy - dc/dy - (dN/dy) phi_ddot)``
and the chain rule through ``T`` (see :func:`rhs_jac`). Section layout (shared with the
closed-form two-link kernel)::

    [field block (7), N, l[N], gc[N], B[N*N], n[N*N]]
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._chunked import CHUNK, per_sample_stage_jac, rollout_stage_offsets, sincos_row
from ._layout import FIELD_LEN, H_PLANT, HOT_INLINE, HOT_INTERNAL


def chain_workspace(N: int) -> int:
    """Scratch (float64 elements) used by the chain kernels."""
    return 8 * N + 4 * N * N


@njit(**HOT_INTERNAL)
def consts(p):
    """The chain reads its constants from ``params`` directly."""
    return p


@njit(**HOT_INLINE)
def _eval(p, z, u, pw, N, field):
    """Fill the scratch with ``cos/sin phi``, ``phidot``, ``N(phi)`` (Cholesky-factored) and
    ``phi_ddot``; return the views and the field force ``(Fx, Fy)``. ``field`` (a constant
    in each caller) says whether the force field may be on: without it, the field's code is
    not compiled in."""
    o = int(p[H_PLANT])
    lo = o + FIELD_LEN + 1
    go = lo + N
    bo = go + N
    no = bo + N * N
    cs = pw[0:N]
    sn = pw[N:2 * N]
    w = pw[2 * N:3 * N]
    acc = pw[3 * N:4 * N]
    Nm = pw[8 * N:8 * N + N * N]  # N x N, row-major (a reshape per call would cost more)
    ang = 0.0
    vel = 0.0
    for a in range(N):
        ang += z[a]
        vel += z[N + a]
        cs[a] = np.cos(ang)
        sn[a] = np.sin(ang)
        w[a] = vel
    # joint torques minus viscosity, mapped to absolute angles: Q = T^-T (tau - B v)
    for a in range(N):
        r = u[a]
        for b in range(N):
            r -= p[bo + a * N + b] * z[N + b]
        acc[a] = r
    for a in range(N - 1):
        acc[a] -= acc[a + 1]
    fx = 0.0
    fy = 0.0
    if field and p[o] != 0.0:
        px = 0.0
        py = 0.0
        for a in range(N):
            px -= p[lo + a] * sn[a] * w[a]
            py += p[lo + a] * cs[a] * w[a]
        fx = p[o + 1] + p[o + 3] * px + p[o + 4] * py
        fy = p[o + 2] + p[o + 5] * px + p[o + 6] * py
    for a in range(N):
        r = acc[a] - p[go + a] * cs[a] + p[lo + a] * (cs[a] * fy - sn[a] * fx)
        for b in range(N):
            nab = p[no + a * N + b]
            if b != a:
                r -= nab * (sn[a] * cs[b] - cs[a] * sn[b]) * w[b] * w[b]
            Nm[a * N + b] = nab * (cs[a] * cs[b] + sn[a] * sn[b])
        acc[a] = r
    _cholesky(Nm, N)
    _solve(Nm, acc, N, 0, 1)
    return cs, sn, w, acc, Nm, fx, fy


@njit(**HOT_INTERNAL)
def _cholesky(L, N):
    """In-place Cholesky factor (lower triangle) of the SPD ``N x N`` matrix ``L`` (flat),
    with the *reciprocals* of its diagonal on the diagonal: the solves then multiply, and a
    Jacobian's ``3 N`` solves do not pay ``6 N^2`` divisions (each costs ~15 products)."""
    for j in range(N):
        d = L[j * N + j]
        for k in range(j):
            d -= L[j * N + k] * L[j * N + k]
        inv = 1.0 / np.sqrt(d)
        L[j * N + j] = inv
        for i in range(j + 1, N):
            t = L[i * N + j]
            for k in range(j):
                t -= L[i * N + k] * L[j * N + k]
            L[i * N + j] = t * inv


@njit(**HOT_INTERNAL)
def _solve(L, x, N, o, stride):
    """Solve ``L L^T y = x`` in place for the vector ``x[o + i * stride]`` (``L`` from
    :func:`_cholesky`, reciprocal diagonal)."""
    for i in range(N):
        t = x[o + i * stride]
        for k in range(i):
            t -= L[i * N + k] * x[o + k * stride]
        x[o + i * stride] = t * L[i * N + i]
    for i in range(N - 1, -1, -1):
        t = x[o + i * stride]
        for k in range(i + 1, N):
            t -= L[k * N + i] * x[o + k * stride]
        x[o + i * stride] = t * L[i * N + i]


@njit(**HOT_INTERNAL)
def rhs(p, z, u, dz, pw):
    """``dz = [v, qddot]`` for any ``N``."""
    _rhs_n(p, z, u, dz, pw, z.shape[0] // 2)


@njit(**HOT_INTERNAL)
def rhs3(p, z, u, dz, pw):
    """:func:`rhs` for three links (a constant ``N`` lets the compiler unroll the loops)."""
    _rhs_n(p, z, u, dz, pw, 3)


@njit(**HOT_INTERNAL)
def rhs_jac(p, z, u, dz, F, G, pw):
    """``dz`` and its partials for any ``N``."""
    _rhs_jac_n(p, z, u, dz, F, G, pw, z.shape[0] // 2, True)


@njit(**HOT_INTERNAL)
def rhs_jac3(p, z, u, dz, F, G, pw):
    """:func:`rhs_jac` for three links."""
    _rhs_jac_n(p, z, u, dz, F, G, pw, 3, True)


@njit(**HOT_INTERNAL)
def rhs_jac3_plain(p, z, u, dz, F, G, pw):
    """:func:`rhs_jac3` for an arm without a force field (the common case): compiled
    without the field's code, which slows the rest even when it is not run."""
    _rhs_jac_n(p, z, u, dz, F, G, pw, 3, False)


@njit(**HOT_INTERNAL)
def stage_jac3_plain(c, w, ws):
    """:func:`rhs_jac3_plain` as the stage function of
    :func:`plants._chunked.jacobian_chunks`, one sample at a time."""
    per_sample_stage_jac(c, rhs_jac3_plain, w, ws, 6, 3)


@njit(**HOT_INTERNAL, error_model="numpy", fastmath={"contract"})
def stage3_plain(p, w):
    """:func:`rhs3` without a force field for a chunk of samples, the stage function of
    :func:`plants._chunked.rollout_chunks`: the operations of :func:`_eval` for ``N = 3``
    written out in scalars (the 3 x 3 Cholesky factor and its solves included), so that
    the loop over the samples vectorises (the trigonometry:
    :func:`plants._chunked.sincos_row`). The constants are read before the loop.

    Compiled with fused multiply-adds (``fastmath={"contract"}``, nothing else of fast
    math): a step of 256 arms took 22.4 us instead of 25.9 (medians of 3000 calls), and
    the results still agree with the per-sample pass to rounding (tested to 1e-13)."""
    zo, ko, uo, wo = rollout_stage_offsets(6, 3)
    CH = CHUNK
    o = int(p[H_PLANT])
    go = o + FIELD_LEN + 1 + 3
    bo = go + 3
    no = bo + 9
    g1, g2, g3 = p[go], p[go + 1], p[go + 2]
    b11, b12, b13 = p[bo], p[bo + 1], p[bo + 2]
    b21, b22, b23 = p[bo + 3], p[bo + 4], p[bo + 5]
    b31, b32, b33 = p[bo + 6], p[bo + 7], p[bo + 8]
    n11, n12, n13 = p[no], p[no + 1], p[no + 2]
    n21, n22, n23 = p[no + 3], p[no + 4], p[no + 5]
    n31, n32, n33 = p[no + 6], p[no + 7], p[no + 8]
    for b in range(CH):  # absolute angles, summed as in _eval
        a1 = w[zo + b]
        a2 = a1 + w[zo + CH + b]
        w[wo + b] = a1
        w[wo + CH + b] = a2
        w[wo + 2 * CH + b] = a2 + w[zo + 2 * CH + b]
    for a in range(3):  # sin phi_a at wo + (3 + 2 a) CH, cos phi_a one row further
        sincos_row(w, wo + a * CH, wo + (3 + 2 * a) * CH)
    for b in range(CH):
        s1 = w[wo + 3 * CH + b]
        c1 = w[wo + 4 * CH + b]
        s2 = w[wo + 5 * CH + b]
        c2 = w[wo + 6 * CH + b]
        s3 = w[wo + 7 * CH + b]
        c3 = w[wo + 8 * CH + b]
        v1 = w[zo + 3 * CH + b]
        v2 = w[zo + 4 * CH + b]
        v3 = w[zo + 5 * CH + b]
        w1 = v1
        w2 = w1 + v2
        w3 = w2 + v3
        # Q = T^-T (tau - B v)
        e1 = w[uo + b] - b11 * v1 - b12 * v2 - b13 * v3
        e2 = w[uo + CH + b] - b21 * v1 - b22 * v2 - b23 * v3
        e3 = w[uo + 2 * CH + b] - b31 * v1 - b32 * v2 - b33 * v3
        e1 -= e2
        e2 -= e3
        # cos and sin of phi_a - phi_b, as _eval forms them
        c12 = c1 * c2 + s1 * s2
        c13 = c1 * c3 + s1 * s3
        c23 = c2 * c3 + s2 * s3
        r1 = (e1 - g1 * c1 - n12 * (s1 * c2 - c1 * s2) * w2 * w2
              - n13 * (s1 * c3 - c1 * s3) * w3 * w3)
        r2 = (e2 - g2 * c2 - n21 * (s2 * c1 - c2 * s1) * w1 * w1
              - n23 * (s2 * c3 - c2 * s3) * w3 * w3)
        r3 = (e3 - g3 * c3 - n31 * (s3 * c1 - c3 * s1) * w1 * w1
              - n32 * (s3 * c2 - c3 * s2) * w2 * w2)
        # Cholesky factor of N (lower triangle; reciprocal diagonal), then the solves
        i1 = 1.0 / np.sqrt(n11 * (c1 * c1 + s1 * s1))
        l21 = n21 * c12 * i1
        l31 = n31 * c13 * i1
        i2 = 1.0 / np.sqrt(n22 * (c2 * c2 + s2 * s2) - l21 * l21)
        l32 = (n32 * c23 - l31 * l21) * i2
        i3 = 1.0 / np.sqrt(n33 * (c3 * c3 + s3 * s3) - l31 * l31 - l32 * l32)
        y1 = r1 * i1
        y2 = (r2 - l21 * y1) * i2
        y3 = (r3 - l31 * y1 - l32 * y2) * i3
        x3 = y3 * i3
        x2 = (y2 - l32 * x3) * i2
        x1 = (y1 - l21 * x2 - l31 * x3) * i1
        w[ko + b] = v1
        w[ko + CH + b] = v2
        w[ko + 2 * CH + b] = v3
        w[ko + 3 * CH + b] = x1
        w[ko + 4 * CH + b] = x2 - x1
        w[ko + 5 * CH + b] = x3 - x2


@njit(**HOT_INTERNAL)
def plain(p):
    """Whether the chain's force field is off (see :func:`rhs_jac3_plain`)."""
    return p[int(p[H_PLANT])] == 0.0


@njit(**HOT_INTERNAL)
def _rhs_n(p, z, u, dz, pw, N):
    acc = _eval(p, z, u, pw, N, True)[3]
    for a in range(N):
        dz[a] = z[N + a]
        dz[N + a] = acc[a] - (acc[a - 1] if a > 0 else 0.0)


@njit(**HOT_INLINE)
def _rhs_jac_n(p, z, u, dz, F, G, pw, N, with_field):
    """:func:`rhs` and its exact partials.

    With ``Y = [dR/dphi - (dN/dphi) phi_ddot | dR/dphidot | T^-T]`` (``R = Q - c``) and
    ``X = N^-1 Y``: ``d phi_ddot/dq = X_1 T``, ``d phi_ddot/dv = X_2 T - X_3 B`` and
    ``d phi_ddot/du = X_3``; each then mapped by ``T^-1`` to ``qddot``.
    """
    cs, sn, w, acc, L, fx, fy = _eval(p, z, u, pw, N, with_field)
    o = int(p[H_PLANT])
    lo = o + FIELD_LEN + 1
    go = lo + N
    bo = go + N
    no = bo + N * N
    M3 = 3 * N
    Y = pw[8 * N + N * N:8 * N + 4 * N * N]  # N x 3N, row-major
    kv = pw[4 * N:6 * N]  # K J_k for each link k: x part [0:N], y part [N:2N]
    kd = pw[6 * N:8 * N]  # K dJ_k/dphi_k phidot_k, the same layout
    field = with_field and p[o] != 0.0
    if field:
        k00, k01, k10, k11 = p[o + 3], p[o + 4], p[o + 5], p[o + 6]
        for k in range(N):
            jx = -p[lo + k] * sn[k]
            jy = p[lo + k] * cs[k]
            kv[k] = k00 * jx + k01 * jy
            kv[N + k] = k10 * jx + k11 * jy
            dx = -p[lo + k] * cs[k] * w[k]
            dy = -p[lo + k] * sn[k] * w[k]
            kd[k] = k00 * dx + k01 * dy
            kd[N + k] = k10 * dx + k11 * dy
    for a in range(N):
        s_acc = 0.0  # sum_b n_ab S_ab phi_ddot_b (a = k terms)
        s_cor = 0.0  # sum_b n_ab C_ab phidot_b^2
        for b in range(N):
            Y[a * M3 + 2 * N + b] = 0.0
            if b == a:
                continue
            nab = p[no + a * N + b]
            Cab = cs[a] * cs[b] + sn[a] * sn[b]
            Sab = sn[a] * cs[b] - cs[a] * sn[b]
            s_acc += nab * Sab * acc[b]
            s_cor += nab * Cab * w[b] * w[b]
            # k = b != a
            Y[a * M3 + b] = nab * Cab * w[b] * w[b] - nab * Sab * acc[b]
            Y[a * M3 + N + b] = -2.0 * nab * Sab * w[b]
        Y[a * M3 + a] = s_acc - s_cor + p[go + a] * sn[a]
        Y[a * M3 + N + a] = 0.0
        Y[a * M3 + 2 * N + a] = 1.0
        if a + 1 < N:
            Y[a * M3 + 2 * N + a + 1] = -1.0
        if field:
            jx = -p[lo + a] * sn[a]
            jy = p[lo + a] * cs[a]
            Y[a * M3 + a] += p[lo + a] * (-cs[a] * fx - sn[a] * fy)
            for k in range(N):
                Y[a * M3 + k] += jx * kd[k] + jy * kd[N + k]
                Y[a * M3 + N + k] += jx * kv[k] + jy * kv[N + k]
    for col in range(M3):  # X = N^-1 Y, column by column
        _solve(L, Y, N, col, M3)
    for a in range(N):
        # X_1 T and X_2 T: suffix sums over the columns
        for j in range(N - 2, -1, -1):
            Y[a * M3 + j] += Y[a * M3 + j + 1]
            Y[a * M3 + N + j] += Y[a * M3 + N + j + 1]
        for j in range(N):
            t = Y[a * M3 + N + j]
            for k in range(N):
                t -= Y[a * M3 + 2 * N + k] * p[bo + k * N + j]
            kv[j] = t  # scratch row for X_2 T - X_3 B
        for j in range(N):
            Y[a * M3 + N + j] = kv[j]
    for a in range(N - 1, 0, -1):  # T^-1: row differences
        for j in range(3 * N):
            Y[a * M3 + j] -= Y[(a - 1) * M3 + j]
    for a in range(N):
        dz[a] = z[N + a]
        dz[N + a] = acc[a] - (acc[a - 1] if a > 0 else 0.0)
        for j in range(2 * N):
            F[a, j] = 1.0 if j == N + a else 0.0
            F[N + a, j] = Y[a * M3 + j]
        for j in range(N):
            G[a, j] = 0.0
            G[N + a, j] = Y[a * M3 + 2 * N + j]
