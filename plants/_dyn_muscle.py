"""Compiled muscle-driven plants: the Hill muscle with its partials, the muscle arm and the
point mass, and the integrator loops that clamp the activations.

The muscle model and its smoothness are described in :mod:`plants.muscles`. The state of
a muscle plant ends with its ``na`` activations; the loops here are those of
:func:`plants._integrate.rollout_rows` / :func:`~plants._integrate.jacobian_rows` (Euler or
RK4, substeps, velocity clip, joint stops) plus one more operation after each substep:
every activation is clamped to ``[a_min, 1]``, and its row of the step's derivative is set
to zero where the clamp acts. A plant's right-hand side has the signature
``eval(p, z, u, dz, F, G, jac, pw, ...)`` (``p`` the parameter array): ``dz = f(z, u)``
and, if ``jac`` (a constant at each call site), ``F = df/dz`` and ``G = df/du`` (every entry
written).

Sections (after the header of :mod:`plants._layout`):

* muscle arm: the two-link arm's section (:mod:`plants._dyn_two_link`, 26 numbers), then
  ``[n_muscles, tau_act, 1 / tau_deact, a_min, a3_1, a3_2]`` and per muscle
  ``[F_max, 1 / l0, l_se, 1 / v_max, a0, a1_1, a1_2, a2_1, a2_2]`` (moment arm
  ``r_j = a1_j + 2 a2_j (q_j - a3_j)``, length ``L = a0 + sum_j (a1_j + a2_j d_j) d_j``).
* point mass: the field block (7), ``[mass, n_muscles, tau_act, 1 / tau_deact, a_min]`` and
  per muscle ``[F_max, anchor_x, anchor_y]`` (``n_muscles = 0``: force-driven).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _dyn_two_link as two_link
from ._integrate import (
    clip_velocities,
    first_bad_input,
    first_bad_sample,
    joint_stops,
    load_control,
    load_state,
    settings,
    views,
)
from ._layout import FIELD_LEN, H_PLANT, HOT_INLINE, HOT_INTERNAL, RK4

#: numbers of the two-link section that precede the muscle block of the arm
ARM_SKELETON_LEN = FIELD_LEN + 19
ARM_MUSCLE_HEAD = 6
ARM_PER_MUSCLE = 9
PM_HEAD = FIELD_LEN + 5
PM_PER_MUSCLE = 3

# Kistemaker et al. (2010) constants, as plants.muscles (repeated as literals: module
# globals would be frozen into the cache all the same, but literals keep this file
# self-contained for the cache guard's reading)
_FLW2 = 0.66 * 0.66
_FLMIN = 0.01
_AREL = 0.41
_BREL = 5.2
_QCRIT = 0.3
_BA0 = 0.005
_SAS = 0.001
_ECC = 1.5
_PESLACK = 1.4
_KPE = 1.0 / ((1.66 - 1.4) * (1.66 - 1.4))


@njit(**HOT_INLINE)
def activation(a, u, ta, itd):
    """``(da/dt, d/da, d/du)`` for clamped activation ``a`` and excitation ``u``
    (``itd = 1 / tau_deact``)."""
    t = 0.5 + 1.5 * a
    if u > a:
        inv = 1.0 / (ta * t)
        r = (u - a) * inv
        return r, -inv - 1.5 * r * ta * inv, inv
    g = t * itd
    return (u - a) * g, -g + 1.5 * (u - a) * itd, g


@njit(**HOT_INLINE)
def hill(a, L, Ld, fmax, inv_l0, lse, inv_vmax, jac):
    """Force ``F`` (N) of the rigid-tendon Hill muscle and, if ``jac``, its partials by the
    activation ``a``, the musculotendon length ``L`` and its rate ``Ld``:
    ``(F, F_a, F_L, F_Ld)`` (see :mod:`plants.muscles` for the equations; ``inv_l0 = 1 /
    l0``, ``inv_vmax = 1 / v_max``)."""
    l = L - lse
    lpos = l > 0.0
    if not lpos:
        l = 0.0
    ln = l * inv_l0
    vn = Ld * inv_vmax
    # passive element
    st = ln - _PESLACK
    fpe = 0.0
    fpe_l = 0.0
    if st > 0.0:
        fpe = _KPE * st * st
        fpe_l = 2.0 * _KPE * st * inv_l0
    # force-length
    fl = 1.0 - (ln - 1.0) * (ln - 1.0) / _FLW2
    fl_l = -2.0 * (ln - 1.0) / _FLW2 * inv_l0
    if fl < _FLMIN:
        fl = _FLMIN
        fl_l = 0.0
    if ln > 1.0:
        ar = _AREL * fl
        ar_l = _AREL * fl_l
    else:
        ar = _AREL
        ar_l = 0.0
    if a < _QCRIT:
        sq = 1.0 - 0.9 * (a - _QCRIT) / (_BA0 - _QCRIT)
        br = _BREL * sq * sq
        br_a = _BREL * 2.0 * sq * (-0.9 / (_BA0 - _QCRIT))
    else:
        br = _BREL
        br_a = 0.0
    fa = fl * a
    if vn < 0.0:  # concentric
        num = vn * a * ar + fa * br
        den = br - vn
        f = num / den
        if f < 0.0:
            return fmax * fpe, 0.0, fmax * fpe_l, 0.0
        if not jac:
            return fmax * (f + fpe), 0.0, 0.0, 0.0
        num_a = vn * ar + fl * br + fa * br_a
        num_l = vn * a * ar_l + a * fl_l * br
        num_v = a * ar
        f_a = (num_a - f * br_a) / den
        f_l = num_l / den
        f_v = (num_v + f) / den
    else:  # eccentric
        if not jac:
            # the same quotient with p1, p2 and s0's denominators multiplied out: one
            # division (dpb = (s - 2 s0) Bq)
            dpb = _SAS * br - 2.0 * a * (fl + ar)
            tm = 0.5 * fa
            p3 = -_ECC * fa
            num = br * tm * (p3 - _SAS * vn + tm) + vn * dpb * (_SAS * vn - p3)
            f = num / (vn * dpb - tm * br)
            if f < 0.0:
                return fmax * fpe, 0.0, 0.0, 0.0
            return fmax * (f + fpe), 0.0, 0.0, 0.0
        ib = 1.0 / br
        s0 = a * (fl + ar) * ib
        s0_a = (fl + ar) * ib - s0 * br_a * ib
        s0_l = a * (fl_l + ar_l) * ib
        dp = _SAS - 2.0 * s0
        idp = 1.0 / dp
        tm = 0.5 * fa
        p1 = -tm * idp
        p2 = tm * tm * idp
        p3 = -_ECC * fa
        den = p1 + vn
        num = -p1 * p3 + p1 * _SAS * vn + p2 - p3 * vn + _SAS * vn * vn
        f = num / den
        if f < 0.0:
            return fmax * fpe, 0.0, fmax * fpe_l, 0.0
        if not jac:
            return fmax * (f + fpe), 0.0, 0.0, 0.0
        f_a, f_l, f_v = eccentric_partials(a, fl, fl_l, s0_a, s0_l, tm, idp, p1, p3, vn, f,
                                           1.0 / den)
    F_L = fmax * (f_l + fpe_l) if lpos else 0.0
    return fmax * (f + fpe), fmax * f_a, F_L, fmax * f_v * inv_vmax


@njit(**HOT_INLINE)
def eccentric_partials(a, fl, fl_l, s0_a, s0_l, tm, idp, p1, p3, vn, f, iden):
    """``(f_a, f_l, f_v)``: the partials by activation, normalised length and velocity of
    the eccentric force ``f = num / den`` (``iden = 1 / den``), from the partials of its
    parts ``tm = fa / 2``, ``dp`` (``idp = 1 / dp``), ``p1 = -tm / dp``, ``p2 = tm^2 / dp``
    and ``p3``. The per-sample and the batch-major passes share it."""
    tm_a = 0.5 * fl
    tm_l = 0.5 * a * fl_l
    dp_a = -2.0 * s0_a
    dp_l = -2.0 * s0_l
    p1_a = -(tm_a - tm * dp_a * idp) * idp
    p1_l = -(tm_l - tm * dp_l * idp) * idp
    p2_a = (2.0 * tm * tm_a - tm * tm * dp_a * idp) * idp
    p2_l = (2.0 * tm * tm_l - tm * tm * dp_l * idp) * idp
    p3_a = -_ECC * fl
    p3_l = -_ECC * a * fl_l
    num_a = -(p1_a * p3 + p1 * p3_a) + p1_a * _SAS * vn + p2_a - p3_a * vn
    num_l = -(p1_l * p3 + p1 * p3_l) + p1_l * _SAS * vn + p2_l - p3_l * vn
    num_v = p1 * _SAS - p3 + 2.0 * _SAS * vn
    return (num_a - f * p1_a) * iden, (num_l - f * p1_l) * iden, (num_v - f) * iden


# -- the muscle arm -------------------------------------------------------------------------
@njit(**HOT_INTERNAL)
def arm_consts(p):
    """``(two-link constants, offset of the muscle block)``."""
    return two_link.consts(p), int(p[H_PLANT]) + ARM_SKELETON_LEN


@njit(**HOT_INLINE)
def arm_floor(p):
    """The activation floor ``a_min`` of the muscle arm."""
    return p[int(p[H_PLANT]) + ARM_SKELETON_LEN + 3]


@njit(**HOT_INLINE)
def arm_eval(prm, z, u, dz, F, G, jac, pw, forces):
    """The muscle arm's right-hand side (``prm`` is the parameter array; ``forces``: the
    arm has gravity or an end-point field), this module's convention. ``pw`` holds
    ``tau (2), F4 (16), G4 (8), dtau/da (12)``."""
    sk, mo = arm_consts(prm)
    ta = prm[mo + 1]
    itd = prm[mo + 2]
    am = prm[mo + 3]
    d1 = z[0] - prm[mo + 4]
    d2 = z[1] - prm[mo + 5]
    v1 = z[2]
    v2 = z[3]
    t1 = 0.0
    t2 = 0.0
    q11 = 0.0
    q12 = 0.0
    q21 = 0.0
    q22 = 0.0
    w11 = 0.0
    w12 = 0.0
    w22 = 0.0
    for i in range(6):
        o = mo + ARM_MUSCLE_HEAD + ARM_PER_MUSCLE * i
        fmax = prm[o]
        il0 = prm[o + 1]
        lse = prm[o + 2]
        ivmax = prm[o + 3]
        a0 = prm[o + 4]
        a1s = prm[o + 5]
        a1e = prm[o + 6]
        a2s = prm[o + 7]
        a2e = prm[o + 8]
        r1 = a1s + 2.0 * a2s * d1
        r2 = a1e + 2.0 * a2e * d2
        L = a0 + (a1s + a2s * d1) * d1 + (a1e + a2e * d2) * d2
        Ld = r1 * v1 + r2 * v2
        ai = z[4 + i]
        amask = 1.0
        if ai < am:
            ai = am
            amask = 0.0
        elif ai > 1.0:
            ai = 1.0
            amask = 0.0
        ui = u[i]
        umask = 1.0
        if ui < am:
            ui = am
            umask = 0.0
        Fm, Fa, FL, Fv = hill(ai, L, Ld, fmax, il0, lse, ivmax, jac)
        t1 -= Fm * r1
        t2 -= Fm * r2
        rate, ra, ru = activation(ai, ui, ta, itd)
        dz[4 + i] = rate
        if jac:
            dq1 = FL * r1 + Fv * 2.0 * a2s * v1
            dq2 = FL * r2 + Fv * 2.0 * a2e * v2
            q11 -= dq1 * r1 + Fm * 2.0 * a2s
            q12 -= dq2 * r1
            q21 -= dq1 * r2
            q22 -= dq2 * r2 + Fm * 2.0 * a2e
            w11 -= Fv * r1 * r1
            w12 -= Fv * r1 * r2
            w22 -= Fv * r2 * r2
            pw[26 + i] = -Fa * r1 * amask
            pw[32 + i] = -Fa * r2 * amask
            for j in range(10):
                F[4 + i, j] = 0.0
            F[4 + i, 4 + i] = ra * amask
            for j in range(6):
                G[4 + i, j] = 0.0
            G[4 + i, i] = ru * umask
    tau = pw[0:2]
    tau[0] = t1
    tau[1] = t2
    if not jac:
        if forces:
            two_link._rhs(sk, z, tau, dz, True)
        else:
            two_link._rhs(sk, z, tau, dz, False)
        return
    F4 = pw[2:18].reshape((4, 4))
    G4 = pw[18:26].reshape((4, 2))
    if forces:
        two_link.rhs_jac(sk, z, tau, dz, F4, G4, pw)
    else:
        two_link.rhs_jac_plain(sk, z, tau, dz, F4, G4, pw)
    # d tau / d (q1, q2, v1, v2)
    T00, T01, T02, T03 = q11, q12, w11, w12
    T10, T11, T12, T13 = q21, q22, w12, w22
    for r in range(4):
        g0 = G4[r, 0]
        g1 = G4[r, 1]
        F[r, 0] = F4[r, 0] + g0 * T00 + g1 * T10
        F[r, 1] = F4[r, 1] + g0 * T01 + g1 * T11
        F[r, 2] = F4[r, 2] + g0 * T02 + g1 * T12
        F[r, 3] = F4[r, 3] + g0 * T03 + g1 * T13
        for i in range(6):
            F[r, 4 + i] = g0 * pw[26 + i] + g1 * pw[32 + i]
        for j in range(6):
            G[r, j] = 0.0


ARM_WORKSPACE = 40


@njit(**HOT_INLINE)
def arm_plain(c):
    """Whether the arm has neither gravity nor an end-point field."""
    return two_link.plain(c[0])


# -- the point mass -------------------------------------------------------------------------
@njit(**HOT_INTERNAL)
def pm_consts(p):
    """``(field block (7), mass, n_muscles, tau_act, tau_deact, a_min, muscle offset)``."""
    o = int(p[H_PLANT])
    f = o + FIELD_LEN
    return (p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4], p[o + 5], p[o + 6],
            p[f], p[f + 1], p[f + 2], p[f + 3], p[f + 4], float(f + 5))


@njit(**HOT_INLINE)
def pm_floor(p):
    """The activation floor ``a_min`` of the point mass."""
    return p[int(p[H_PLANT]) + FIELD_LEN + 4]


@njit(**HOT_INLINE)
def pm_muscles(p):
    """Number of muscles of the point mass (0: force-driven)."""
    return int(p[int(p[H_PLANT]) + FIELD_LEN + 1])


@njit(**HOT_INTERNAL)
def pm_rhs(c, z, u, dz, pw):
    """Force-driven point mass, :mod:`plants._integrate`'s convention:
    ``dz = [v, (u + F0 + K v) / mass]``."""
    on, f0x, f0y, k00, k01, k10, k11, mass = c[:8]
    v1 = z[2]
    v2 = z[3]
    im = 1.0 / mass
    dz[0] = v1
    dz[1] = v2
    dz[2] = (u[0] + f0x + k00 * v1 + k01 * v2) * im
    dz[3] = (u[1] + f0y + k10 * v1 + k11 * v2) * im


@njit(**HOT_INTERNAL)
def pm_rhs_jac(c, z, u, dz, F, G, pw):
    """:func:`pm_rhs` and its partials."""
    on, f0x, f0y, k00, k01, k10, k11, mass = c[:8]
    pm_rhs(c, z, u, dz, pw)
    im = 1.0 / mass
    for i in range(4):
        for j in range(4):
            F[i, j] = 0.0
        G[i, 0] = 0.0
        G[i, 1] = 0.0
    F[0, 2] = 1.0
    F[1, 3] = 1.0
    F[2, 2] = k00 * im
    F[2, 3] = k01 * im
    F[3, 2] = k10 * im
    F[3, 3] = k11 * im
    G[2, 0] = im
    G[3, 1] = im


@njit(**HOT_INLINE)
def pm_muscle_eval(prm, z, u, dz, F, G, jac, pw):
    """Point mass pulled by ``n_muscles`` ReLU muscles (force ``a F_max`` along the line
    to each anchor), the convention of this module."""
    on, f0x, f0y, k00, k01, k10, k11, mass, nmf, ta, itd, am, mof = pm_consts(prm)
    nm = int(nmf)
    mo = int(mof)
    n = 4 + nm
    x = z[0]
    y = z[1]
    v1 = z[2]
    v2 = z[3]
    im = 1.0 / mass
    fx = f0x + k00 * v1 + k01 * v2
    fy = f0y + k10 * v1 + k11 * v2
    if jac:
        for i in range(n):
            for j in range(n):
                F[i, j] = 0.0
            for j in range(nm):
                G[i, j] = 0.0
        F[0, 2] = 1.0
        F[1, 3] = 1.0
        F[2, 2] = k00 * im
        F[2, 3] = k01 * im
        F[3, 2] = k10 * im
        F[3, 3] = k11 * im
    for i in range(nm):
        o = mo + PM_PER_MUSCLE * i
        fmax = prm[o]
        dx = x - prm[o + 1]
        dy = y - prm[o + 2]
        ln = np.sqrt(dx * dx + dy * dy)
        ex = dx / ln
        ey = dy / ln
        ai = z[4 + i]
        amask = 1.0
        if ai < am:
            ai = am
            amask = 0.0
        elif ai > 1.0:
            ai = 1.0
            amask = 0.0
        ui = u[i]
        umask = 1.0
        if ui < am:
            ui = am
            umask = 0.0
        Fm = ai * fmax
        fx -= Fm * ex
        fy -= Fm * ey
        rate, ra, ru = activation(ai, ui, ta, itd)
        dz[4 + i] = rate
        if jac:
            # d(-F e)/dp = -F (I - e e^T) / len
            g = Fm / ln * im
            F[2, 0] -= g * (1.0 - ex * ex)
            F[2, 1] -= g * (-ex * ey)
            F[3, 0] -= g * (-ex * ey)
            F[3, 1] -= g * (1.0 - ey * ey)
            F[2, 4 + i] = -fmax * ex * amask * im
            F[3, 4 + i] = -fmax * ey * amask * im
            F[4 + i, 4 + i] = ra * amask
            G[4 + i, i] = ru * umask
    dz[0] = v1
    dz[1] = v2
    dz[2] = fx * im
    dz[3] = fy * im


# -- integrator loops with clamped activations ----------------------------------------------
@njit(**HOT_INLINE)
def _clamp_activations(z, D, jac, n, na, amin):
    for i in range(n - na, n):
        if z[i] < amin or z[i] > 1.0:
            z[i] = amin if z[i] < amin else 1.0
            if jac:
                D[i, :] = 0.0


@njit(**HOT_INLINE)
def _eval(kind, p, z, u, dz, F, G, jac, pw, forces):
    """The right-hand side of plant ``kind`` (0: muscle arm, with gravity and field if
    ``forces``; 1: muscle-driven point mass), called directly rather than passed as a
    function, so that it is inlined (as a call per stage the arm's steps took 1.7x longer)."""
    if kind == 0:
        arm_eval(p, z, u, dz, F, G, jac, pw, forces)
    else:
        pm_muscle_eval(p, z, u, dz, F, G, jac, pw)


@njit(**HOT_INLINE)
def muscle_rollout(kind, p, X0, U, W, noisy, X, o0, ws, n, m, na, amin, forces):
    """As :func:`plants._integrate.rollout_rows` (same arguments and return value; Euler or
    RK4) for plant ``kind`` (:func:`_eval`), with the activations (the last ``na`` states)
    clamped to ``[amin, 1]`` after each substep."""
    integ, S, h, vclip, stops = settings(p)
    z, k, acc, tmp, rowsrc, u, umask, F, G, J, pw = views(ws, n, m)
    T = U.shape[1]
    bad = first_bad_input(X0, U)
    if bad >= 0:
        return bad
    ns = 4 if integ == RK4 else 1
    for b in range(X0.shape[0]):
        load_state(X0[b], z, n)
        if o0 == 1:
            for i in range(n):
                X[b, 0, i] = z[i]
        for t in range(T):
            load_control(p, U[b, t], u, umask, m)
            for _ in range(S):
                for st in range(ns):
                    _eval(kind, p, z if st == 0 else tmp, u, k, F, G, False, pw, forces)
                    if integ == RK4:
                        if st == 0:
                            for i in range(n):
                                acc[i] = k[i]
                        else:
                            wgt = 1.0 if st == 3 else 2.0
                            for i in range(n):
                                acc[i] += wgt * k[i]
                        if st < 3:
                            cn = h if st == 2 else 0.5 * h
                            for i in range(n):
                                tmp[i] = z[i] + cn * k[i]
                if integ == RK4:
                    for i in range(n):
                        z[i] += h / 6.0 * acc[i]
                else:
                    for i in range(n):
                        z[i] += h * k[i]
                if vclip:
                    clip_velocities(p, z, F, False)
                if stops:
                    joint_stops(p, z, F, False)
                _clamp_activations(z, F, False, n, na, amin)
            if noisy:
                for i in range(n):
                    z[i] += W[b, t, i]
            for i in range(n):
                X[b, t + o0, i] = z[i]
    bad = first_bad_sample(X)
    return -1 if bad < 0 else -2 - bad


@njit(**HOT_INLINE)
def muscle_jacobians(kind, p, X, U, A, B, ws, n, m, na, amin, forces):
    """As :func:`plants._integrate.jacobian_rows` for :func:`muscle_rollout`'s step: the chain
    rule through the stages (``dk_i/dy = [F_i | G_i] + c_i-1 F_i dk_i-1/dy``, ``y = (z, u)``),
    the substeps (``Q <- D_z Q + [0 | D_u]``), the clips, stops and activation clamps
    (plant ``kind`` as :func:`muscle_rollout`)."""
    integ, S, h, vclip, stops = settings(p)
    z, k, acc, tmp, rowsrc, u, umask, F, G, J, pw = views(ws, n, m)
    nm = n + m
    K0 = J[0]
    K1 = J[1]
    Sm = J[2]
    D = J[3]
    Q = J[4]
    Tm = J[5]
    ns = 4 if integ == RK4 else 1
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    if integ != RK4 and S == 1:
        # one Euler step: A = I + h F and B = h G straight into the outputs, with the
        # rows that the clips, stops and clamps set to zero (``flag``, a column the
        # helpers zero where they act); no D or Q copies
        flag = acc.reshape((n, 1))
        for b in range(X.shape[0]):
            load_state(X[b], z, n)
            load_control(p, U[b], u, umask, m)
            _eval(kind, p, z, u, k, F, G, True, pw, forces)
            for i in range(n):
                z[i] += h * k[i]
                flag[i, 0] = 1.0
            if vclip:
                clip_velocities(p, z, flag, True)
            if stops:
                joint_stops(p, z, flag, True)
            _clamp_activations(z, flag, True, n, na, amin)
            for i in range(n):
                keep = flag[i, 0] != 0.0
                for j in range(n):
                    v = h * F[i, j] + (1.0 if i == j else 0.0)
                    A[b, i, j] = v if keep else 0.0
                for j in range(m):
                    v = h * G[i, j] if keep else 0.0
                    B[b, i, j] = v if umask[j] != 0.0 else v * 0.0
        ba = first_bad_sample(A)
        bb = first_bad_sample(B)
        bad = ba if bb < 0 else (bb if ba < 0 else min(ba, bb))
        return -1 if bad < 0 else -2 - bad
    for b in range(X.shape[0]):
        load_state(X[b], z, n)
        load_control(p, U[b], u, umask, m)
        for s in range(S):
            if integ == RK4:
                for st in range(ns):
                    Kc = K0 if st % 2 == 0 else K1
                    Kp = K1 if st % 2 == 0 else K0
                    _eval(kind, p, z if st == 0 else tmp, u, k, F, G, True, pw, forces)
                    cp = h if st == 3 else 0.5 * h
                    for i in range(n):
                        for j in range(nm):
                            v = F[i, j] if j < n else G[i, j - n]
                            if st > 0:
                                for r in range(n):
                                    v += cp * F[i, r] * Kp[r, j]
                            Kc[i, j] = v
                    wgt = 1.0 if (st == 0 or st == 3) else 2.0
                    for i in range(n):
                        if st == 0:
                            acc[i] = k[i]
                        else:
                            acc[i] += wgt * k[i]
                        for j in range(nm):
                            if st == 0:
                                Sm[i, j] = Kc[i, j]
                            else:
                                Sm[i, j] += wgt * Kc[i, j]
                    if st < 3:
                        cn = h if st == 2 else 0.5 * h
                        for i in range(n):
                            tmp[i] = z[i] + cn * k[i]
                for i in range(n):
                    z[i] += h / 6.0 * acc[i]
                    for j in range(nm):
                        D[i, j] = h / 6.0 * Sm[i, j] + (1.0 if i == j else 0.0)
            else:
                _eval(kind, p, z, u, k, F, G, True, pw, forces)
                for i in range(n):
                    z[i] += h * k[i]
                    for j in range(n):
                        D[i, j] = h * F[i, j] + (1.0 if i == j else 0.0)
                    for j in range(m):
                        D[i, n + j] = h * G[i, j]
            if vclip:
                clip_velocities(p, z, D, True)
            if stops:
                joint_stops(p, z, D, True)
            _clamp_activations(z, D, True, n, na, amin)
            if s == 0:
                for i in range(n):
                    for j in range(nm):
                        Q[i, j] = D[i, j]
            else:
                for i in range(n):
                    for j in range(nm):
                        v = D[i, j] if j >= n else 0.0
                        for r in range(n):
                            v += D[i, r] * Q[r, j]
                        Tm[i, j] = v
                for i in range(n):
                    for j in range(nm):
                        Q[i, j] = Tm[i, j]
        for i in range(n):
            for j in range(n):
                A[b, i, j] = Q[i, j]
            for j in range(m):
                v = Q[i, n + j]
                B[b, i, j] = v if umask[j] != 0.0 else v * 0.0
    ba = first_bad_sample(A)
    bb = first_bad_sample(B)
    bad = ba if bb < 0 else (bb if ba < 0 else min(ba, bb))
    return -1 if bad < 0 else -2 - bad
