"""Compiled right-hand side of the two-link arm in closed form (Todorov's equations).

State ``[q1, q2, v1, v2]`` (shoulder, elbow relative to the upper arm). With the link
inertia coefficients of :func:`plants.arms.link_coefficients` (``n11, n21, n22``)::

    M(q) = [[n11 + n22 + 2 n21 cos q2,  n22 + n21 cos q2],
            [n22 + n21 cos q2,          n22            ]]
    h    = n21 sin q2 [-(2 v1 v2 + v2^2), v1^2]                 (Coriolis, centrifugal)
    G    = [gc1 cos q1 + gc2 cos(q1 + q2), gc2 cos(q1 + q2)]    (gravity along -y)
    M qddot = tau + J^T F - h - B v - G,     F = F0 + K J v + P (p - p0)

where ``J`` is the hand Jacobian and ``p`` the hand position (``P``, ``p0``: the position
field and its origin, e.g. a force channel's spring). This is the generic chain of
:mod:`plants._dyn_chain` for ``N = 2``, written out so that a step costs one ``sincos``
(two more with gravity or a field) and a 2 x 2 solve; the tests check the two against each
other. Section layout: that of the chain (20 numbers), then the position field
``[P00, P01, P10, P11, p0x, p0y]`` (which the chain does not have). Calling
convention: :mod:`plants._integrate`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._chunked import CHUNK, rollout_stage_offsets, sincos_row, stage_offsets
from ._layout import FIELD_LEN, H_PLANT, HOT_INLINE, HOT_INTERNAL


@njit(**HOT_INTERNAL)
def consts(p):
    """``(field block (7), l1, l2, gc1, gc2, B11, B12, B21, B22, n11, n21, n22, P00, P01,
    P10, P11, p0x, p0y)``."""
    o = int(p[H_PLANT])
    f = o + FIELD_LEN + 1
    return (p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4], p[o + 5], p[o + 6],
            p[f], p[f + 1], p[f + 2], p[f + 3], p[f + 4], p[f + 5], p[f + 6], p[f + 7],
            p[f + 8], p[f + 10], p[f + 11],
            p[f + 12], p[f + 13], p[f + 14], p[f + 15], p[f + 16], p[f + 17])


@njit(**HOT_INLINE)
def _hand_force(c, c1, s1, c12, s12, v1, v2):
    """The hand Jacobian's entries ``(jx1, jx2, jy1, jy2)`` and the field force
    ``F = F0 + K J v + P (p - p0)`` on the hand, ``(fx, fy)``."""
    on, f0x, f0y, k00, k01, k10, k11, l1, l2 = c[:9]
    P00, P01, P10, P11, ox, oy = c[18:24]
    jx1 = -l1 * s1 - l2 * s12
    jx2 = -l2 * s12
    jy1 = l1 * c1 + l2 * c12
    jy2 = l2 * c12
    px = jx1 * v1 + jx2 * v2
    py = jy1 * v1 + jy2 * v2
    # hand position relative to the position field's origin
    dx = jy1 - ox
    dy = -jx1 - oy
    return (jx1, jx2, jy1, jy2, f0x + k00 * px + k01 * py + P00 * dx + P01 * dy,
            f0y + k10 * px + k11 * py + P10 * dx + P11 * dy)


@njit(**HOT_INLINE)
def _rhs(c, z, u, dz, forces):
    """``dz = [v, qddot]``; the gravity and field terms only if ``forces`` (a constant in
    each caller, so that the common case compiles without them)."""
    on, f0x, f0y, k00, k01, k10, k11, l1, l2, gc1, gc2, b11, b12, b21, b22, n11, n21, n22 = \
        c[:18]
    q1 = z[0]
    q2 = z[1]
    v1 = z[2]
    v2 = z[3]
    c2 = np.cos(q2)
    s2 = np.sin(q2)
    r1 = u[0] - b11 * v1 - b12 * v2 + n21 * s2 * (2.0 * v1 * v2 + v2 * v2)
    r2 = u[1] - b21 * v1 - b22 * v2 - n21 * s2 * v1 * v1
    if forces:
        c1 = np.cos(q1)
        s1 = np.sin(q1)
        c12 = np.cos(q1 + q2)
        s12 = np.sin(q1 + q2)
        r1 -= gc1 * c1 + gc2 * c12
        r2 -= gc2 * c12
        if on != 0.0:
            jx1, jx2, jy1, jy2, fx, fy = _hand_force(c, c1, s1, c12, s12, v1, v2)
            r1 += jx1 * fx + jy1 * fy
            r2 += jx2 * fx + jy2 * fy
    m11 = n11 + n22 + 2.0 * n21 * c2
    m12 = n22 + n21 * c2
    det = m11 * n22 - m12 * m12
    dz[0] = v1
    dz[1] = v2
    dz[2] = (n22 * r1 - m12 * r2) / det
    dz[3] = (m11 * r2 - m12 * r1) / det


@njit(**HOT_INTERNAL)
def rhs(c, z, u, dz, pw):
    """``dz = [v, qddot]`` (gravity and force field included)."""
    _rhs(c, z, u, dz, True)


@njit(**HOT_INTERNAL)
def rhs_plain(c, z, u, dz, pw):
    """:func:`rhs` for an arm without gravity or force field."""
    _rhs(c, z, u, dz, False)


@njit(**HOT_INTERNAL, error_model="numpy")
def stage_plain(c, w):
    """:func:`rhs_plain` for a chunk of samples, the stage function of
    :func:`plants._chunked.rollout_chunks` (the sizes are written in, so that the offsets
    are constants). The loop over the samples vectorises: the trigonometry is
    :func:`plants._chunked.sincos_row`, and ``M^-1`` takes one division, not two."""
    zo, ko, uo, wo = rollout_stage_offsets(4, 2)
    b11, b12, b21, b22, n11, n21, n22 = c[11:18]
    CH = CHUNK
    sincos_row(w, zo + CH, wo)
    for b in range(CH):
        s2 = w[wo + b]
        c2 = w[wo + CH + b]
        v1 = w[zo + 2 * CH + b]
        v2 = w[zo + 3 * CH + b]
        r1 = w[uo + b] - b11 * v1 - b12 * v2 + n21 * s2 * (2.0 * v1 * v2 + v2 * v2)
        r2 = w[uo + CH + b] - b21 * v1 - b22 * v2 - n21 * s2 * v1 * v1
        m11 = n11 + n22 + 2.0 * n21 * c2
        m12 = n22 + n21 * c2
        inv = 1.0 / (m11 * n22 - m12 * m12)
        w[ko + b] = v1
        w[ko + CH + b] = v2
        w[ko + 2 * CH + b] = (n22 * r1 - m12 * r2) * inv
        w[ko + 3 * CH + b] = (m11 * r2 - m12 * r1) * inv


@njit(**HOT_INTERNAL, error_model="numpy")
def stage_forces(c, w):
    """:func:`rhs` (gravity and force field included) for a chunk of samples, the stage
    function of :func:`plants._chunked.rollout_chunks` for the arms that
    :func:`stage_plain` does not cover (``Hold``'s constant push, a curl field). The terms
    are :func:`_rhs`'s in its order; the three angles' sines and cosines go through
    :func:`plants._chunked.sincos_row`, so that the loop over the samples vectorises (the
    per-sample pass calls ``np.sin``/``np.cos`` six times per stage)."""
    zo, ko, uo, wo = rollout_stage_offsets(4, 2)
    on, f0x, f0y, k00, k01, k10, k11, l1, l2, gc1, gc2, b11, b12, b21, b22, n11, n21, n22 = \
        c[:18]
    P00, P01, P10, P11, ox, oy = c[18:24]
    CH = CHUNK
    # own scratch (8 rows): sin/cos q2, sin/cos q1, q1 + q2, sin/cos (q1 + q2)
    s2o, c2o, s1o, c1o, qo, s12o, c12o = wo, wo + CH, wo + 2 * CH, wo + 3 * CH, wo + 4 * CH, \
        wo + 5 * CH, wo + 6 * CH
    sincos_row(w, zo + CH, s2o)
    sincos_row(w, zo, s1o)
    for b in range(CH):
        w[qo + b] = w[zo + b] + w[zo + CH + b]
    sincos_row(w, qo, s12o)
    for b in range(CH):
        s2 = w[s2o + b]
        c2 = w[c2o + b]
        c1 = w[c1o + b]
        s1 = w[s1o + b]
        c12 = w[c12o + b]
        s12 = w[s12o + b]
        v1 = w[zo + 2 * CH + b]
        v2 = w[zo + 3 * CH + b]
        r1 = w[uo + b] - b11 * v1 - b12 * v2 + n21 * s2 * (2.0 * v1 * v2 + v2 * v2)
        r2 = w[uo + CH + b] - b21 * v1 - b22 * v2 - n21 * s2 * v1 * v1
        r1 -= gc1 * c1 + gc2 * c12
        r2 -= gc2 * c12
        # the field (``on`` is 1 here unless only gravity acts; then F = 0 adds nothing)
        jx1 = -l1 * s1 - l2 * s12
        jx2 = -l2 * s12
        jy1 = l1 * c1 + l2 * c12
        jy2 = l2 * c12
        px = jx1 * v1 + jx2 * v2
        py = jy1 * v1 + jy2 * v2
        dx = jy1 - ox
        dy = -jx1 - oy
        fx = f0x + k00 * px + k01 * py + P00 * dx + P01 * dy
        fy = f0y + k10 * px + k11 * py + P10 * dx + P11 * dy
        r1 += on * (jx1 * fx + jy1 * fy)
        r2 += on * (jx2 * fx + jy2 * fy)
        m11 = n11 + n22 + 2.0 * n21 * c2
        m12 = n22 + n21 * c2
        inv = 1.0 / (m11 * n22 - m12 * m12)
        w[ko + b] = v1
        w[ko + CH + b] = v2
        w[ko + 2 * CH + b] = (n22 * r1 - m12 * r2) * inv
        w[ko + 3 * CH + b] = (m11 * r2 - m12 * r1) * inv


@njit(**HOT_INLINE)
def plain(c):
    """Whether the arm has neither gravity nor a force field (the common case; see
    :func:`rhs_plain`)."""
    return c[0] == 0.0 and c[9] == 0.0 and c[10] == 0.0


@njit(**HOT_INTERNAL)
def _forces_jac(c, q1, q2, v1, v2):
    """Gravity and force-field terms of ``r = tau + J^T F - h - B v - G`` and their partials:
    ``(dr1, dr2, d11, d12, d13, d14, d21, d22, d23, d24)``, ``dij = d r_i / d y_j``.

    A function of its own so that :func:`rhs_jac`'s common case (horizontal plane, no
    field) is not slowed by code it does not run (measured: a third of its time).
    """
    on, f0x, f0y, k00, k01, k10, k11, l1, l2, gc1, gc2 = c[:11]
    P00, P01, P10, P11 = c[18:22]
    c1 = np.cos(q1)
    s1 = np.sin(q1)
    c12 = np.cos(q1 + q2)
    s12 = np.sin(q1 + q2)
    dr1 = -(gc1 * c1 + gc2 * c12)
    dr2 = -gc2 * c12
    d11 = gc1 * s1 + gc2 * s12
    d12 = gc2 * s12
    d21 = gc2 * s12
    d22 = gc2 * s12
    d13 = 0.0
    d14 = 0.0
    d23 = 0.0
    d24 = 0.0
    if on != 0.0:
        jx1, jx2, jy1, jy2, fx, fy = _hand_force(c, c1, s1, c12, s12, v1, v2)
        dr1 += jx1 * fx + jy1 * fy
        dr2 += jx2 * fx + jy2 * fy
        # d(J^T F)/dq_k = dJ_k^T F + J^T (K dJ_k v + P J_k), with dJ/dq2 = (jx2, jy2)
        # rotated and dJ/dq1 = (J rotated): d(-l s)/dq = -l c, d(l c)/dq = -l s; J_k is
        # column k of J (d p / d q_k)
        for kq in range(2):
            if kq == 0:
                e1x, e2x = -l1 * c1 - l2 * c12, -l2 * c12
                e1y, e2y = -l1 * s1 - l2 * s12, -l2 * s12
            else:
                e1x, e2x = -l2 * c12, -l2 * c12
                e1y, e2y = -l2 * s12, -l2 * s12
            dpx = e1x * v1 + e2x * v2
            dpy = e1y * v1 + e2y * v2
            jkx = jx1 if kq == 0 else jx2
            jky = jy1 if kq == 0 else jy2
            dfx = k00 * dpx + k01 * dpy + P00 * jkx + P01 * jky
            dfy = k10 * dpx + k11 * dpy + P10 * jkx + P11 * jky
            t1 = e1x * fx + e1y * fy + jx1 * dfx + jy1 * dfy
            t2 = e2x * fx + e2y * fy + jx2 * dfx + jy2 * dfy
            if kq == 0:
                d11 += t1
                d21 += t2
            else:
                d12 += t1
                d22 += t2
        # d(J^T F)/dv = J^T K J
        kx1 = k00 * jx1 + k01 * jy1
        ky1 = k10 * jx1 + k11 * jy1
        kx2 = k00 * jx2 + k01 * jy2
        ky2 = k10 * jx2 + k11 * jy2
        d13 = jx1 * kx1 + jy1 * ky1
        d14 = jx1 * kx2 + jy1 * ky2
        d23 = jx2 * kx1 + jy2 * ky1
        d24 = jx2 * kx2 + jy2 * ky2
    return dr1, dr2, d11, d12, d13, d14, d21, d22, d23, d24


@njit(**HOT_INLINE)
def _residual(c, s2, c2, v1, v2, u1, u2):
    """``r = tau - h - B v`` without gravity or field, and its partials by ``(q2, v1, v2)``
    (none by ``q1``): ``(r1, r2, a12, a13, a14, a22, a23, a24)``, ``aik = d r_i / d y_k``
    with ``y = (q1, q2, v1, v2)``."""
    b11, b12, b21, b22, n11, n21, n22 = c[11:18]
    cor = 2.0 * v1 * v2 + v2 * v2
    r1 = u1 - b11 * v1 - b12 * v2 + n21 * s2 * cor
    r2 = u2 - b21 * v1 - b22 * v2 - n21 * s2 * v1 * v1
    a12 = n21 * c2 * cor
    a13 = -b11 + 2.0 * n21 * s2 * v2
    a14 = -b12 + 2.0 * n21 * s2 * (v1 + v2)
    a22 = -n21 * c2 * v1 * v1
    a23 = -b21 - 2.0 * n21 * s2 * v1
    a24 = -b22
    return r1, r2, a12, a13, a14, a22, a23, a24


@njit(**HOT_INLINE)
def _accelerations(c, s2, c2, r1, r2, a12, a22):
    """``M^-1`` (``i11, i12, i22``), ``qddot = M^-1 r`` and the partials by ``q2`` with
    ``dM/dq2 qddot`` taken off: ``(acc1, acc2, i11, i12, i22, a12, a22)``."""
    n11, n21, n22 = c[15:18]
    m11 = n11 + n22 + 2.0 * n21 * c2
    m12 = n22 + n21 * c2
    inv = 1.0 / (m11 * n22 - m12 * m12)  # one division: each costs ~15 multiplications
    i11 = n22 * inv
    i12 = -m12 * inv
    i22 = m11 * inv
    acc1 = i11 * r1 + i12 * r2
    acc2 = i12 * r1 + i22 * r2
    a12 -= -n21 * s2 * (2.0 * acc1 + acc2)
    a22 -= -n21 * s2 * acc1
    return acc1, acc2, i11, i12, i22, a12, a22


@njit(**HOT_INLINE)
def _rhs_jac(c, z, u, dz, F, G, forces):
    """:func:`_rhs` and its exact partials ``dqddot/dy = M^-1 (dr/dy - dM/dy qddot)``."""
    q1 = z[0]
    q2 = z[1]
    v1 = z[2]
    v2 = z[3]
    c2 = np.cos(q2)
    s2 = np.sin(q2)
    # partials of r by (q1, q2, v1, v2): a1k of r1, a2k of r2
    r1, r2, a12, a13, a14, a22, a23, a24 = _residual(c, s2, c2, v1, v2, u[0], u[1])
    a11 = 0.0
    a21 = 0.0
    if forces:
        dr1, dr2, d11, d12, d13, d14, d21, d22, d23, d24 = _forces_jac(c, q1, q2, v1, v2)
        r1 += dr1
        r2 += dr2
        a11 += d11
        a12 += d12
        a13 += d13
        a14 += d14
        a21 += d21
        a22 += d22
        a23 += d23
        a24 += d24
    acc1, acc2, i11, i12, i22, a12, a22 = _accelerations(c, s2, c2, r1, r2, a12, a22)
    dz[0] = v1
    dz[1] = v2
    dz[2] = acc1
    dz[3] = acc2
    F[0, 0] = 0.0
    F[0, 1] = 0.0
    F[0, 2] = 1.0
    F[0, 3] = 0.0
    F[1, 0] = 0.0
    F[1, 1] = 0.0
    F[1, 2] = 0.0
    F[1, 3] = 1.0
    F[2, 0] = i11 * a11 + i12 * a21
    F[2, 1] = i11 * a12 + i12 * a22
    F[2, 2] = i11 * a13 + i12 * a23
    F[2, 3] = i11 * a14 + i12 * a24
    F[3, 0] = i12 * a11 + i22 * a21
    F[3, 1] = i12 * a12 + i22 * a22
    F[3, 2] = i12 * a13 + i22 * a23
    F[3, 3] = i12 * a14 + i22 * a24
    G[0, 0] = 0.0
    G[0, 1] = 0.0
    G[1, 0] = 0.0
    G[1, 1] = 0.0
    G[2, 0] = i11
    G[2, 1] = i12
    G[3, 0] = i12
    G[3, 1] = i22


@njit(**HOT_INTERNAL)
def rhs_jac(c, z, u, dz, F, G, pw):
    """:func:`rhs` and its exact partials (gravity and force field included)."""
    _rhs_jac(c, z, u, dz, F, G, True)


@njit(**HOT_INTERNAL)
def rhs_jac_plain(c, z, u, dz, F, G, pw):
    """:func:`rhs_jac` for an arm without gravity or force field."""
    _rhs_jac(c, z, u, dz, F, G, False)


@njit(**HOT_INTERNAL, error_model="numpy")
def stage_jac_plain(c, w, ws):
    """:func:`rhs_jac_plain` for a chunk of samples, the stage function of
    :func:`plants._chunked.jacobian_chunks` (``ws`` is not used; the sizes are written in,
    so that the offsets are constants). The loop over the samples vectorises (the
    trigonometry: :func:`plants._chunked.sincos_row`)."""
    zo, ko, uo, fo, go = stage_offsets(4, 2)
    CH = CHUNK
    sincos_row(w, zo + CH, fo)  # sin, cos q2 into F's first rows (constant: set at the end)
    for b in range(CH):
        s2 = w[fo + b]
        c2 = w[fo + CH + b]
        v1 = w[zo + 2 * CH + b]
        v2 = w[zo + 3 * CH + b]
        r1, r2, a12, a13, a14, a22, a23, a24 = _residual(c, s2, c2, v1, v2, w[uo + b],
                                                         w[uo + CH + b])
        acc1, acc2, i11, i12, i22, a12, a22 = _accelerations(c, s2, c2, r1, r2, a12, a22)
        w[ko + b] = v1
        w[ko + CH + b] = v2
        w[ko + 2 * CH + b] = acc1
        w[ko + 3 * CH + b] = acc2
        for e in range(8):  # F's position rows: the unit rows of the velocities
            w[fo + e * CH + b] = 1.0 if e == 2 or e == 7 else 0.0
        w[fo + 8 * CH + b] = 0.0
        w[fo + 9 * CH + b] = i11 * a12 + i12 * a22
        w[fo + 10 * CH + b] = i11 * a13 + i12 * a23
        w[fo + 11 * CH + b] = i11 * a14 + i12 * a24
        w[fo + 12 * CH + b] = 0.0
        w[fo + 13 * CH + b] = i12 * a12 + i22 * a22
        w[fo + 14 * CH + b] = i12 * a13 + i22 * a23
        w[fo + 15 * CH + b] = i12 * a14 + i22 * a24
        for e in range(4):
            w[go + e * CH + b] = 0.0
        w[go + 4 * CH + b] = i11
        w[go + 5 * CH + b] = i12
        w[go + 6 * CH + b] = i12
        w[go + 7 * CH + b] = i22
