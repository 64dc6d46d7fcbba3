"""Batch-major passes of the muscle arm: steps, rollouts and step Jacobians over chunks of
samples (:mod:`plants._chunked`'s layout: row ``r`` of a quantity for sample ``b`` at
``w[o + r * CHUNK + b]``), so that the loops over the samples vectorise.

The per-sample model (:mod:`plants._dyn_muscle`) branches on the sign of each muscle's
velocity (concentric or eccentric), on ``u > a`` (activation or deactivation) and on the
regions of the force-length and passive curves; with random excitations these branches are
mispredicted often. Here every branch is a select: both sides are computed and one is
taken (with ``error_model="numpy"`` a quotient of the side not taken may be infinite; it is
never used). The results differ from the per-sample pass only by rounding (the tests
compare the two).

* :func:`arm_stage_plain`: the right-hand side of the arm without gravity or field, the
  stage function of :func:`plants._chunked.rollout_chunks` (steps and rollouts: Euler or
  RK4, any substeps, joint stops, clamped activations);
* :func:`arm_jacobian_chunks`: ``A = d x_next / d x`` and ``B = d x_next / d u`` of one
  explicit Euler step (the default integration; one substep, no velocity clip, no
  gravity or field), written straight into the outputs from the few partials that are not
  structurally zero, with the rows that the joint stops and the activation clamps set to
  zero. At batch 1024 writing the 160 entries of each sample's ``A`` and ``B`` (1.3 MB)
  is about a third of its time, the muscles' partials most of the rest.
"""

from __future__ import annotations

from numba import njit

from . import _dyn_two_link as two_link
from ._chunked import CHUNK, MIN_BATCH, chunk_workspace, rollout_stage_offsets, sincos_row
from ._dyn_muscle import (
    _AREL,
    _BA0,
    _BREL,
    _ECC,
    _FLMIN,
    _FLW2,
    _KPE,
    _PESLACK,
    _QCRIT,
    _SAS,
    ARM_MUSCLE_HEAD,
    ARM_PER_MUSCLE,
    ARM_SKELETON_LEN,
    eccentric_partials,
)
from ._integrate import first_bad_input, first_bad_sample, settings
from ._layout import (
    EULER,
    H_NQ,
    H_PLANT,
    H_POS,
    H_QHI,
    H_QLO,
    H_UHI,
    H_ULO,
    H_VEL,
    H_WS,
    HOT_INLINE,
    HOT_INTERNAL,
)


@njit(**HOT_INTERNAL)
def params(p):
    """The batch-major pass reads its constants from ``params`` directly."""
    return p


@njit(**HOT_INLINE)
def hill_select(a, L, Ld, fmax, inv_l0, lse, inv_vmax):
    """:func:`plants._dyn_muscle.hill`'s force without its partials, written with selects
    instead of branches (both force-velocity branches are computed, one quotient taken), so
    that a loop over samples that calls it vectorises; the same operations as ``hill``'s,
    in its order."""
    l = L - lse
    l = l if l > 0.0 else 0.0
    ln = l * inv_l0
    vn = Ld * inv_vmax
    st = ln - _PESLACK
    st = st if st > 0.0 else 0.0
    fpe = _KPE * st * st
    fl = 1.0 - (ln - 1.0) * (ln - 1.0) / _FLW2
    fl = _FLMIN if fl < _FLMIN else fl
    ar = _AREL * fl if ln > 1.0 else _AREL
    sq = 1.0 - 0.9 * (a - _QCRIT) / (_BA0 - _QCRIT)
    br = _BREL * sq * sq if a < _QCRIT else _BREL
    fa = fl * a
    # concentric (vn < 0): num / den
    num_c = vn * a * ar + fa * br
    den_c = br - vn
    # eccentric: :func:`plants._dyn_muscle.hill`'s single-division form
    dpb = _SAS * br - 2.0 * a * (fl + ar)
    tm = 0.5 * fa
    p3 = -_ECC * fa
    num_e = br * tm * (p3 - _SAS * vn + tm) + vn * dpb * (_SAS * vn - p3)
    den_e = vn * dpb - tm * br
    con = vn < 0.0
    f = (num_c if con else num_e) / (den_c if con else den_e)
    f = f if f > 0.0 else 0.0
    return fmax * (f + fpe)


@njit(**HOT_INTERNAL, error_model="numpy")
def arm_stage_plain(p, w):
    """The muscle arm's right-hand side without gravity or field
    (:func:`plants._dyn_muscle.arm_eval` with ``forces`` off) for a chunk of samples, the
    stage function of :func:`plants._chunked.rollout_chunks` (``p``: the parameter array;
    sizes 10 and 6 written in, so that the offsets are constants).

    Muscle by muscle, a loop over the samples computes the lengths, moment arms, the
    force (:func:`hill_select`) and the activation rate, with selects for every branch, and
    adds the torques; then the skeleton's loop (:func:`plants._dyn_two_link.skeleton_chunk`,
    with the muscles' torques). Every loop vectorises. It differs from ``arm_eval`` only by
    rounding: the vectorised ``sincos``, one division for ``M^-1`` and the activation
    rate's quotient taken directly."""
    zo, ko, uo, wo = rollout_stage_offsets(10, 6)
    sk = two_link.consts(p)
    mo = int(p[H_PLANT]) + ARM_SKELETON_LEN
    ta = p[mo + 1]
    itd = p[mo + 2]
    am = p[mo + 3]
    a31 = p[mo + 4]
    a32 = p[mo + 5]
    CH = CHUNK
    t1o = wo
    t2o = wo + CH
    so = wo + 2 * CH  # sin q2, then cos q2
    for b in range(CH):
        w[t1o + b] = 0.0
        w[t2o + b] = 0.0
    for i in range(6):
        o = mo + ARM_MUSCLE_HEAD + ARM_PER_MUSCLE * i
        fmax = p[o]
        il0 = p[o + 1]
        lse = p[o + 2]
        ivmax = p[o + 3]
        a0 = p[o + 4]
        a1s = p[o + 5]
        a1e = p[o + 6]
        a2s = p[o + 7]
        a2e = p[o + 8]
        ao = zo + (4 + i) * CH
        ko_i = ko + (4 + i) * CH
        uo_i = uo + i * CH
        for b in range(CH):
            d1 = w[zo + b] - a31
            d2 = w[zo + CH + b] - a32
            r1 = a1s + 2.0 * a2s * d1
            r2 = a1e + 2.0 * a2e * d2
            L = a0 + (a1s + a2s * d1) * d1 + (a1e + a2e * d2) * d2
            Ld = r1 * w[zo + 2 * CH + b] + r2 * w[zo + 3 * CH + b]
            ai = w[ao + b]
            ai = am if ai < am else (1.0 if ai > 1.0 else ai)
            ui = w[uo_i + b]
            ui = am if ui < am else ui
            Fm = hill_select(ai, L, Ld, fmax, il0, lse, ivmax)
            w[t1o + b] -= Fm * r1
            w[t2o + b] -= Fm * r2
            t = 0.5 + 1.5 * ai
            du = ui - ai
            w[ko_i + b] = du / (ta * t) if ui > ai else du * t * itd
    two_link.skeleton_chunk(sk, w, zo, t1o, ko, so)


#: reciprocals of the model's constant divisors (a division costs several multiplications,
#: and without fast-math the compiler keeps a division by a constant)
_IFLW2 = 1.0 / _FLW2
_IQ = 1.0 / (_BA0 - _QCRIT)


@njit(**HOT_INLINE)
def hill_select_jac(a, L, Ld, fmax, inv_l0, lse, inv_vmax):
    """:func:`plants._dyn_muscle.hill` with its partials, ``(F, F_a, F_L, F_Ld)``, written
    with selects (both force-velocity branches and their partials are computed); ``hill``'s
    operations in its order, except that each branch takes one reciprocal of its
    denominator (and of ``br`` and ``dp``) where ``hill`` divides several times: four
    divisions where the two branches' divisions would be eleven."""
    l = L - lse
    lpos = l > 0.0
    l = l if lpos else 0.0
    ln = l * inv_l0
    vn = Ld * inv_vmax
    st = ln - _PESLACK
    stp = st > 0.0
    fpe = _KPE * st * st if stp else 0.0
    fpe_l = 2.0 * _KPE * st * inv_l0 if stp else 0.0
    fl = 1.0 - (ln - 1.0) * (ln - 1.0) * _IFLW2
    fl_l = -2.0 * (ln - 1.0) * _IFLW2 * inv_l0
    floor = fl < _FLMIN
    fl = _FLMIN if floor else fl
    fl_l = 0.0 if floor else fl_l
    long = ln > 1.0
    ar = _AREL * fl if long else _AREL
    ar_l = _AREL * fl_l if long else 0.0
    low = a < _QCRIT
    sq = 1.0 - 0.9 * (a - _QCRIT) * _IQ
    br = _BREL * sq * sq if low else _BREL
    br_a = _BREL * 2.0 * sq * (-0.9 * _IQ) if low else 0.0
    fa = fl * a
    # concentric
    num = vn * a * ar + fa * br
    iden = 1.0 / (br - vn)
    fc = num * iden
    fc_a = (vn * ar + fl * br + fa * br_a - fc * br_a) * iden
    fc_l = (vn * a * ar_l + a * fl_l * br) * iden
    fc_v = (a * ar + fc) * iden
    # eccentric
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
    idene = 1.0 / (p1 + vn)
    nume = -p1 * p3 + p1 * _SAS * vn + p2 - p3 * vn + _SAS * vn * vn
    fe = nume * idene
    fe_a, fe_l, fe_v = eccentric_partials(a, fl, fl_l, s0_a, s0_l, tm, idp, p1, p3, vn, fe,
                                          idene)
    con = vn < 0.0
    f = fc if con else fe
    f_a = fc_a if con else fe_a
    f_l = fc_l if con else fe_l
    f_v = fc_v if con else fe_v
    neg = f < 0.0  # hill: only the passive force (its slope in L kept)
    F = fmax * fpe if neg else fmax * (f + fpe)
    F_a = 0.0 if neg else fmax * f_a
    F_L = fmax * fpe_l if neg else (fmax * (f_l + fpe_l) if lpos else 0.0)
    F_v = 0.0 if neg else fmax * f_v * inv_vmax
    return F, F_a, F_L, F_v


@njit(**HOT_INLINE)
def jacobian_applies(p, nb):
    """Whether :func:`arm_jacobian_chunks` covers these settings and a batch of ``nb``:
    explicit Euler, one substep, no velocity clip (joint stops allowed)."""
    integ, S, h, vclip, stops = settings(p)
    return nb >= MIN_BATCH and integ == EULER and S == 1 and not vclip


@njit(**HOT_INTERNAL, error_model="numpy", fastmath={"contract"})
def arm_jacobian_chunks(p, X, U, A, B, ws):
    """``A[b] = d x_next / d x``, ``B[b] = d x_next / d u`` of one Euler step of the muscle
    arm without gravity or field, the arguments and return value of
    :func:`plants._dyn_muscle.muscle_jacobians`, for the cases of :func:`jacobian_applies`.

    With ``f = [v, qddot, adot]``: ``A = I + h df/dx``, ``B = h df/du``. The rows of the
    positions are unit rows (times ``h``); those of the accelerations are
    ``M^-1 (dr/dy - dM/dy qddot)`` with the muscles' torque partials
    ``d tau / d(q, v)`` and ``d tau / d a`` (:func:`plants._dyn_muscle.arm_eval`'s chain
    rule); an activation's row has its diagonal ``1 + h d adot / d a`` and its excitation's
    ``h d adot / d u``; every other entry is zero. A row is zeroed where the step's joint
    stop or activation clamp acts, an excitation's column where the excitation is clipped.
    Compiled with fused multiply-adds (``fastmath={"contract"}``, nothing else of fast
    math): 4 % faster here; it differs from the per-sample pass only by rounding.
    """
    CH = CHUNK
    n = 10
    m = 6
    sk = two_link.consts(p)
    integ, S, h, vclip, stops = settings(p)
    mo = int(p[H_PLANT]) + ARM_SKELETON_LEN
    ta = p[mo + 1]
    itd = p[mo + 2]
    am = p[mo + 3]
    a31 = p[mo + 4]
    a32 = p[mo + 5]
    ulo = int(p[H_ULO])
    uhi = int(p[H_UHI])
    w = ws[int(p[H_WS]) - chunk_workspace(n, m):]
    # rows of the chunk scratch
    oz = 0                 # state (10)
    ou = oz + n * CH       # clipped excitations (6)
    om = ou + m * CH       # their clip mask (6)
    ok = om + m * CH       # f (10)
    ot = ok + n * CH       # tau (2)
    oq = ot + 2 * CH       # d tau / d(q, v): q11, q12, q21, q22, w11, w12, w22 (7)
    op1 = oq + 7 * CH      # d tau1 / d a_i (6)
    op2 = op1 + m * CH     # d tau2 / d a_i (6)
    ora = op2 + m * CH     # d adot_i / d a_i (6)
    oru = ora + m * CH     # d adot_i / d u_i (6)
    osc = oru + m * CH     # sin, cos q2 (2)
    oa = osc + 2 * CH      # the acceleration rows of df/dx: 2 x 10
    oke = oa + 20 * CH     # row kept (1) or zeroed (0) by a stop or clamp (10)
    ochk = oke + n * CH    # 0 * (h x the entries computed), summed over chunks (1)
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    nb = X.shape[0]
    # ``0 * h * x`` summed over every computed partial ``x`` (ochk, per lane): 0 if the
    # entries of A and B that are not constants (the others are finite) are all finite, NaN
    # otherwise; only then are A and B searched for the first bad sample (a pass over 1.3 MB
    # at batch 1024, a fifth of the Jacobians' time if always made). A partial of a row that
    # a stop or clamp zeroes is counted too: a false alarm only costs the search.
    for b in range(CH):
        w[ochk + b] = 0.0
    for c0 in range(0, nb, CH):
        nc = min(CH, nb - c0)
        for b in range(nc):
            for i in range(n):
                w[oz + i * CH + b] = X[c0 + b, i]
            for j in range(m):
                w[ou + j * CH + b] = U[c0 + b, j]
        for i in range(n):
            for b in range(nc, CH):
                w[oz + i * CH + b] = 0.0
        for j in range(m):
            lo = p[ulo + j]
            hi = p[uhi + j]
            for b in range(CH):
                x = w[ou + j * CH + b] if b < nc else 0.0
                w[ou + j * CH + b] = min(max(x, lo), hi)
                w[om + j * CH + b] = 1.0 if lo <= x <= hi else 0.0
        for r in range(9):  # tau and its partials by (q, v) accumulate over the muscles
            for b in range(CH):
                w[ot + r * CH + b] = 0.0
        for i in range(m):
            o = mo + ARM_MUSCLE_HEAD + ARM_PER_MUSCLE * i
            fmax = p[o]
            il0 = p[o + 1]
            lse = p[o + 2]
            ivmax = p[o + 3]
            a0 = p[o + 4]
            a1s = p[o + 5]
            a1e = p[o + 6]
            a2s = p[o + 7]
            a2e = p[o + 8]
            for b in range(CH):
                d1 = w[oz + b] - a31
                d2 = w[oz + CH + b] - a32
                v1 = w[oz + 2 * CH + b]
                v2 = w[oz + 3 * CH + b]
                r1 = a1s + 2.0 * a2s * d1
                r2 = a1e + 2.0 * a2e * d2
                L = a0 + (a1s + a2s * d1) * d1 + (a1e + a2e * d2) * d2
                Ld = r1 * v1 + r2 * v2
                ai = w[oz + (4 + i) * CH + b]
                amask = 1.0 if am <= ai <= 1.0 else 0.0
                ai = am if ai < am else (1.0 if ai > 1.0 else ai)
                ui = w[ou + i * CH + b]
                umask = 0.0 if ui < am else 1.0
                ui = am if ui < am else ui
                Fm, Fa, FL, Fv = hill_select_jac(ai, L, Ld, fmax, il0, lse, ivmax)
                w[ot + b] -= Fm * r1
                w[ot + CH + b] -= Fm * r2
                dq1 = FL * r1 + Fv * 2.0 * a2s * v1
                dq2 = FL * r2 + Fv * 2.0 * a2e * v2
                w[oq + b] -= dq1 * r1 + Fm * 2.0 * a2s
                w[oq + CH + b] -= dq2 * r1
                w[oq + 2 * CH + b] -= dq1 * r2
                w[oq + 3 * CH + b] -= dq2 * r2 + Fm * 2.0 * a2e
                w[oq + 4 * CH + b] -= Fv * r1 * r1
                w[oq + 5 * CH + b] -= Fv * r1 * r2
                w[oq + 6 * CH + b] -= Fv * r2 * r2
                w[op1 + i * CH + b] = -Fa * r1 * amask
                w[op2 + i * CH + b] = -Fa * r2 * amask
                # activation (plants._dyn_muscle.activation), both branches
                t = 0.5 + 1.5 * ai
                inv = 1.0 / (ta * t)
                rup = (ui - ai) * inv
                g = t * itd
                up = ui > ai
                w[ok + (4 + i) * CH + b] = rup if up else (ui - ai) * g
                w[ora + i * CH + b] = (-inv - 1.5 * rup * ta * inv if up
                                       else -g + 1.5 * (ui - ai) * itd) * amask
                w[oru + i * CH + b] = (inv if up else g) * umask
        sincos_row(w, oz + CH, osc)
        for b in range(CH):
            s2 = w[osc + b]
            c2 = w[osc + CH + b]
            v1 = w[oz + 2 * CH + b]
            v2 = w[oz + 3 * CH + b]
            r1, r2, a12, a13, a14, a22, a23, a24 = two_link._residual(
                sk, s2, c2, v1, v2, w[ot + b], w[ot + CH + b])
            acc1, acc2, i11, i12, i22, a12, a22 = two_link._accelerations(
                sk, s2, c2, r1, r2, a12, a22)
            w[ok + b] = v1
            w[ok + CH + b] = v2
            w[ok + 2 * CH + b] = acc1
            w[ok + 3 * CH + b] = acc2
            # d tau / d(q1, q2, v1, v2), rows tau1 and tau2
            q11 = w[oq + b]
            q12 = w[oq + CH + b]
            q21 = w[oq + 2 * CH + b]
            q22 = w[oq + 3 * CH + b]
            w11 = w[oq + 4 * CH + b]
            w12 = w[oq + 5 * CH + b]
            w22 = w[oq + 6 * CH + b]
            for r in range(2):
                g0 = i11 if r == 0 else i12
                g1 = i12 if r == 0 else i22
                f0 = g0 * 0.0 + g1 * 0.0  # no gravity or field: nothing depends on q1
                f1 = g0 * a12 + g1 * a22
                f2 = g0 * a13 + g1 * a23
                f3 = g0 * a14 + g1 * a24
                ro = oa + 10 * r * CH
                w[ro + b] = f0 + g0 * q11 + g1 * q21
                w[ro + CH + b] = f1 + g0 * q12 + g1 * q22
                w[ro + 2 * CH + b] = f2 + g0 * w11 + g1 * w12
                w[ro + 3 * CH + b] = f3 + g0 * w12 + g1 * w22
                for i in range(m):
                    w[ro + (4 + i) * CH + b] = (g0 * w[op1 + i * CH + b]
                                                + g1 * w[op2 + i * CH + b])
        # which rows the step's stops and clamps zero (the state after the step decides)
        for i in range(n):
            for b in range(CH):
                w[oke + i * CH + b] = 1.0
        if stops:
            qlo = int(p[H_QLO])
            qhi = int(p[H_QHI])
            pos = int(p[H_POS])
            vel = int(p[H_VEL])
            for j in range(int(p[H_NQ])):
                kq = int(p[pos + j])
                kv = int(p[vel + j])
                lo = p[qlo + j]
                hi = p[qhi + j]
                for b in range(CH):
                    qn = w[oz + kq * CH + b] + h * w[ok + kq * CH + b]
                    vn = w[oz + kv * CH + b] + h * w[ok + kv * CH + b]
                    upq = qn > hi
                    dnq = qn < lo
                    if upq or dnq:
                        w[oke + kq * CH + b] = 0.0
                    if (upq and vn > 0.0) or (dnq and vn < 0.0):
                        w[oke + kv * CH + b] = 0.0
        for i in range(4, n):
            for b in range(CH):
                an = w[oz + i * CH + b] + h * w[ok + i * CH + b]
                if an < am or an > 1.0:
                    w[oke + i * CH + b] = 0.0
        for r in range(20):  # the acceleration rows
            for b in range(CH):
                w[ochk + b] += h * w[oa + r * CH + b] * 0.0
        for r in range(2 * m):  # the activation rates' partials (ora, then oru)
            for b in range(CH):
                w[ochk + b] += h * w[ora + r * CH + b] * 0.0
        for b in range(nc):
            k0 = w[oke + b]
            k1 = w[oke + CH + b]
            Ab = A[c0 + b]  # the sample's blocks: constant indices below
            Bb = B[c0 + b]
            for j in range(n):
                Ab[0, j] = 0.0
                Ab[1, j] = 0.0
            for j in range(m):
                Bb[0, j] = 0.0
                Bb[1, j] = 0.0
                Bb[2, j] = 0.0
                Bb[3, j] = 0.0
            Ab[0, 0] = k0
            Ab[0, 2] = h * k0
            Ab[1, 1] = k1
            Ab[1, 3] = h * k1
            for r in range(2):
                keep = w[oke + (2 + r) * CH + b] != 0.0
                ro = oa + 10 * r * CH
                for j in range(n):
                    v = h * w[ro + j * CH + b] + (1.0 if j == 2 + r else 0.0)
                    Ab[2 + r, j] = v if keep else 0.0
            for i in range(m):
                keep = w[oke + (4 + i) * CH + b] != 0.0
                for j in range(n):
                    Ab[4 + i, j] = 0.0
                for j in range(m):
                    Bb[4 + i, j] = 0.0
                if keep:
                    Ab[4 + i, 4 + i] = h * w[ora + i * CH + b] + 1.0
                    v = h * w[oru + i * CH + b]
                    Bb[4 + i, i] = v if w[om + i * CH + b] != 0.0 else v * 0.0
    chk = 0.0
    for b in range(CH):
        chk += w[ochk + b]
    if chk == 0.0:
        return -1
    # a written entry is not finite (``chk`` is NaN): find the first such sample
    ba = first_bad_sample(A)
    bb = first_bad_sample(B)
    bad = ba if bb < 0 else (bb if ba < 0 else min(ba, bb))
    return -1 if bad < 0 else -2 - bad
