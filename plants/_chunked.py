"""Batch-major passes over chunks of samples: the Jacobians of
:func:`plants._integrate.jacobian_rows` (:func:`jacobian_chunks`) and the steps and
rollouts of :func:`plants._integrate.rollout_rows` (:func:`rollout_chunks`).

:func:`~plants._integrate.jacobian_rows` walks one sample at a time, and its loops run over
that sample's few states and controls: too short to vectorise. :func:`jacobian_chunks`
takes chunks of ``CHUNK`` samples through the same operations together. Every quantity is
held coordinate-major in the scratch, row ``r`` of a quantity at offset ``o`` for sample
``b`` at ``w[o + r * CHUNK + b]``, so the innermost loops run over samples, contiguously,
and vectorise.

A plant supplies the stage function ``stage_jac(c, w, ws)``. For the
``CHUNK`` samples of a chunk it computes the right-hand side ``k = f(z, u)`` and its partials
``F = df/dz`` (``n x n``, row-major rows) and ``G = df/du`` (``n x m``), from the stage
state and the clipped controls, at the offsets of :func:`layout` in the chunk scratch
``w``. There are two kinds:

* a plant with a vectorisable right-hand side writes a loop over the samples of its own,
  such as :func:`plants._dyn_two_link.stage_jac_plain`;
* a plant without one calls :func:`per_sample_stage_jac` with its per-sample ``rhs_jac``
  (the convention of :mod:`plants._integrate`), such as
  :func:`plants._dyn_chain.stage_jac3_plain`. It copies each sample in and out, so only
  the Jacobian pass's own matrix algebra vectorises.

(The stage function is a plant's own function rather than ``per_sample_stage_jac`` with
``rhs_jac`` passed along: a function passed through two calls reaches the compiled code as
a pointer, and Numba does not cache such code.)

The pass covers the common settings: Euler or RK4 with one substep, no velocity clip and
no joint stops (the defaults of the arms and the cart-pole). Other settings go through
:func:`~plants._integrate.jacobian_rows`: every case the pass covers costs compile time
(it is compiled into each plant's kernel with the sizes as constants, about 7 s per
plant as it is). The algebra is that of ``jacobian_rows``, operation for operation, so the
two agree to rounding (the tests check this).

:func:`rollout_chunks` does the same for steps and rollouts, with a plant's stage function
``stage(c, w)`` that writes only ``k = f(z, u)`` (offsets: :func:`rollout_stage_offsets`),
each a loop over the samples that vectorises: :func:`plants._dyn_two_link.stage_plain`,
:func:`plants._dyn_chain.stage3_plain`, :func:`plants._dyn_cartpole.stage_plain`. A
chunk's states stay coordinate-major through all the steps of ``U``. It covers more
settings than the Jacobian pass, since the integrator's update is a few loops over the
chunk: Euler, semi-implicit Euler and RK4 with any number of substeps, as long as there is
no velocity clip and no joint stop (:func:`rollout_applies`; the arms and the cart-pole
have neither by default). The two passes differ only in the rounding of the
right-hand side (the vectorised ``sincos``, a reciprocal where the per-sample code
divides, and for the three-link arm fused multiply-adds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._dyn_pendulum import sincos
from ._integrate import first_bad_input, first_bad_sample, settings, views
from ._layout import (
    EULER,
    H_DT,
    H_INTEG,
    H_NQ,
    H_POS,
    H_QHI,
    H_QLO,
    H_UHI,
    H_ULO,
    H_VEL,
    H_WS,
    HOT_INLINE,
    RK4,
    SEMI_IMPLICIT,
)

#: Samples per chunk. Measured at batch 1024 (kernel minima over 41 interleaved rounds,
#: microseconds, two-link RK4 / three-link RK4 / cart-pole Euler): 32: 69 / 953 / 31;
#: 64: 76 / 1038 / 25; 128: 100 / 1213 / 24. Longer loops over samples pay their set-up
#: less often, until the matrices outgrow the cache (the three-link arm's take 75 kB at 32).
#: For :func:`rollout_chunks` 32, 64 and 128 gave the same step times within the noise of
#: the shared machine (minima at batch 1024, ns per sample, same order: 32 / 104 / 11 at 64,
#: 33 / 118 / 13 at 128, 32 / 129 / 11 at 32); 32 pads small batches least.
CHUNK = 32
#: Smaller batches go through the per-sample pass: a short last chunk is padded to CHUNK
#: samples, so a batch of a few samples would cost a whole chunk.
MIN_BATCH = 16


@njit(**HOT_INLINE)
def chunk_workspace(n, m):
    """Scratch (float64 elements) of :func:`jacobian_chunks`.

    It holds the vectors ``z``, the stage state and ``k`` (each ``n``), the
    clipped controls and their mask (each ``m``), ``F`` and ``G``, and four ``n x (n + m)``
    matrices, all for ``CHUNK`` samples. The plants that use the pass add it to their own
    scratch, and it sits at the end of the workspace. :func:`rollout_chunks` uses the same
    region (:func:`rollout_layout`; smaller, but the larger of the two is reserved).
    """
    return CHUNK * max(3 * n + 2 * m + n * n + n * m + 4 * n * (n + m), 6 * n + m)


@njit(**HOT_INLINE)
def applies(p, nb):
    """Whether :func:`jacobian_chunks` covers this plant's settings (Euler or RK4, one
    substep, no velocity clip, no joint stops) and a batch of ``nb``."""
    integ, S, h, vclip, stops = settings(p)
    return (nb >= MIN_BATCH and S == 1 and not vclip and not stops
            and (integ == RK4 or integ == EULER))


@njit(**HOT_INLINE)
def rollout_applies(p, nb):
    """Whether :func:`rollout_chunks` covers this plant's settings (Euler, semi-implicit
    Euler or RK4, any substeps, no velocity clip, no joint stops) and a batch of ``nb``."""
    integ, S, h, vclip, stops = settings(p)
    return (nb >= MIN_BATCH and not vclip and not stops
            and (integ == RK4 or integ == EULER or integ == SEMI_IMPLICIT))


@njit(**HOT_INLINE)
def rollout_applies_clamped(p, nb):
    """Whether :func:`rollout_chunks` with clamped activations (``na > 0``: the muscle
    plants) covers this plant's settings and a batch of ``nb``: Euler or RK4, any substeps,
    joint stops allowed, no velocity clip."""
    integ, S, h, vclip, stops = settings(p)
    return nb >= MIN_BATCH and not vclip and (integ == RK4 or integ == EULER)


@njit(**HOT_INLINE)
def layout(n, m):
    """Offsets in the chunk scratch (see :func:`chunk_workspace`): ``(z, stage state, k,
    clipped controls, control mask, F, G, stage derivatives (two), their weighted
    sum, D)``, and the size of one ``n x (n + m)`` matrix. With ``n`` and ``m``
    constants, so are they."""
    CH = CHUNK
    size = n * (n + m) * CH
    oz = 0
    ot = oz + n * CH
    ok = ot + n * CH
    ou = ok + n * CH
    om = ou + m * CH
    of = om + m * CH
    og = of + n * n * CH
    oj = og + n * m * CH
    osum = oj + 2 * size
    od = osum + size
    return oz, ot, ok, ou, om, of, og, oj, osum, od, size


@njit(**HOT_INLINE)
def stage_offsets(n, m):
    """Where a stage function reads and writes: ``(stage state, k, clipped controls, F,
    G)``, constants for constant ``n`` and ``m``."""
    oz, ot, ok, ou, om, of, og, oj, osum, od, size = layout(n, m)
    return ot, ok, ou, of, og


@njit(**HOT_INLINE)
def rollout_layout(n, m):
    """Offsets in the chunk scratch of :func:`rollout_chunks`: ``(z, stage state, k, the
    weighted sum of RK4's k, clipped controls, the stage function's own scratch)``; that
    last holds ``2 n`` rows. Constants for constant ``n`` and ``m``."""
    CH = CHUNK
    oz = 0
    ot = oz + n * CH
    ok = ot + n * CH
    oa = ok + n * CH
    ou = oa + n * CH
    ow = ou + m * CH
    return oz, ot, ok, oa, ou, ow


@njit(**HOT_INLINE)
def rollout_stage_offsets(n, m):
    """Where a stage function of :func:`rollout_chunks` reads and writes: ``(stage state,
    k, clipped controls, own scratch of 2 n rows)``."""
    oz, ot, ok, oa, ou, ow = rollout_layout(n, m)
    return ot, ok, ou, ow


@njit(**HOT_INLINE, error_model="numpy")
def sincos_row(w, src, dst):
    """``w[dst + b] = sin(w[src + b])`` and ``w[dst + CHUNK + b] = cos(w[src + b])`` for a
    chunk: :func:`plants._dyn_pendulum.sincos`, vectorised, then ``np.sin``/``np.cos``
    again for the angles beyond its range (``|x| > 1e6``), if any."""
    CH = CHUNK
    big = 0
    for b in range(CH):
        x = w[src + b]
        sn, cs = sincos(x)
        big |= abs(x) > 1e6
        w[dst + b] = sn
        w[dst + CH + b] = cs
    if big:
        for b in range(CH):
            x = w[src + b]
            if abs(x) > 1e6:
                w[dst + b] = np.sin(x)
                w[dst + CH + b] = np.cos(x)


@njit(**HOT_INLINE)
def per_sample_stage_jac(c, rhs_jac, w, ws, n, m):
    """A stage function's body for a per-sample ``rhs_jac`` and sizes ``n``, ``m``: each
    sample is copied into the per-sample scratch of :func:`plants._integrate.views`, and
    its results are copied out."""
    z, k, acc, tmp, rowsrc, u, umask, F, G, J, pw = views(ws, n, m)
    oz, ot, ok, ou, om, of, og, oj, osum, od, size = layout(n, m)
    CH = CHUNK
    for b in range(CH):
        for i in range(n):
            z[i] = w[ot + i * CH + b]
        for j in range(m):
            u[j] = w[ou + j * CH + b]
        rhs_jac(c, z, u, k, F, G, pw)
        for i in range(n):
            w[ok + i * CH + b] = k[i]
            for j in range(n):
                w[of + (i * n + j) * CH + b] = F[i, j]
            for j in range(m):
                w[og + (i * m + j) * CH + b] = G[i, j]


@njit(**HOT_INLINE)
def _copy(w, d, e, cnt):
    """``w[d:d + cnt] = w[e:e + cnt]``."""
    for k in range(cnt):
        w[d + k] = w[e + k]


@njit(**HOT_INLINE)
def _set_scaled(w, d, e, a, cnt):
    """``w[d:d + cnt] = a * w[e:e + cnt]``."""
    for k in range(cnt):
        w[d + k] = a * w[e + k]


@njit(**HOT_INLINE)
def _add_scaled(w, d, e, a, cnt):
    """``w[d:d + cnt] += a * w[e:e + cnt]``."""
    for k in range(cnt):
        w[d + k] += a * w[e + k]


@njit(**HOT_INLINE)
def _add_one(w, d):
    """``w[d:d + CHUNK] += 1`` (a diagonal entry of an identity added)."""
    for b in range(CHUNK):
        w[d + b] += 1.0


@njit(**HOT_INLINE)
def _rk4_stage(w, rowsrc, pb, cb, cprev, wgt, n, m):
    """RK4 stage ``i > 0``: ``dk_i/dy = [F_i | G_i] + c_i-1 F_i dk_i-1/dy`` from the previous
    stage derivative at ``pb`` into ``cb`` (the sum over ``t`` in the order of
    ``jacobian_rows``), and added with weight ``wgt`` to the sum of the ``dk/dy``.

    Called with constant ``pb`` and ``cb``, so that every offset is a constant: with
    offsets known only at run time the compiler would need an overlap check per pair of
    rows that a loop touches, more than it is willing to make for the inner product, and
    would not vectorise it (measured: 1.7x slower)."""
    oz, ot, ok, ou, om, of, og, oj, osum, od, size = layout(n, m)
    CH = CHUNK
    nm = n + m
    row = nm * CH
    for i in range(n):
        src = int(rowsrc[i])
        d = cb + i * row
        if src >= 0:
            # a position row: F's row is the unit row of ``src``, G's is 0
            _set_scaled(w, d, pb + src * row, cprev, row)
            _add_one(w, d + src * CH)
        else:
            for j in range(nm):
                own = of + (i * n + j) * CH if j < n else og + (i * m + j - n) * CH
                for b in range(CH):
                    fk = 0.0
                    for t in range(n):
                        fk += w[of + (i * n + t) * CH + b] * w[pb + (t * nm + j) * CH + b]
                    w[d + j * CH + b] = cprev * fk + w[own + b]
        _add_scaled(w, osum + i * row, d, wgt, row)


@njit(**HOT_INLINE, error_model="numpy")
def jacobian_chunks(consts, stage_jac, p, X, U, A, B, ws, n, m):
    """``A[b] = d x_next / d x`` and ``B[b] = d x_next / d u``, as
    :func:`plants._integrate.jacobian_rows` (the same arguments and return value, with the
    plant's stage function ``stage_jac`` in place of ``rhs_jac``), for the cases of
    :func:`applies`.

    Inlined into each plant's kernel, so that ``n`` and ``m``, and with them every offset
    in the scratch, are constants there (see :func:`_rk4_stage`). The price is compile
    time: about 7 s per plant, which is why the pass covers only the common settings.
    """
    c = consts(p)
    integ = int(p[H_INTEG])
    h = p[H_DT]
    rowsrc = views(ws, n, m)[4]
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    for i in range(n):
        rowsrc[i] = -1.0
    for i in range(nq):
        rowsrc[int(p[pi + i])] = p[vi + i]
    CH = CHUNK
    nm = n + m
    row = nm * CH
    w = ws[int(p[H_WS]) - chunk_workspace(n, m):]
    oz, ot, ok, ou, om, of, og, oj, osum, od, size = layout(n, m)
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    nb = X.shape[0]
    for c0 in range(0, nb, CH):
        nc = min(CH, nb - c0)
        # a short last chunk is padded with zeros: every loop runs over exactly CH samples,
        # a constant trip count, and the padding is not stored
        for i in range(n):
            for b in range(CH):
                w[ot + i * CH + b] = X[c0 + b, i] if b < nc else 0.0
        for j in range(m):
            ulo = p[lo + j]
            uhi = p[hi + j]
            for b in range(CH):
                a = U[c0 + b, j] if b < nc else 0.0
                w[ou + j * CH + b] = min(max(a, ulo), uhi)
                w[om + j * CH + b] = 1.0 if ulo <= a <= uhi else 0.0
        if integ == RK4:
            _copy(w, oz, ot, n * CH)
            stage_jac(c, w, ws)
            for i in range(n):
                _copy(w, oj + i * row, of + i * n * CH, n * CH)
                _copy(w, oj + i * row + n * CH, og + i * m * CH, m * CH)
            _copy(w, osum, oj, size)
            for st in range(1, 4):
                cn = h if st == 3 else 0.5 * h
                for k in range(n * CH):
                    w[ot + k] = w[oz + k] + cn * w[ok + k]
                stage_jac(c, w, ws)
                # the previous and current stage derivatives alternate between oj and
                # oj + size; constant offsets at each call (see _rk4_stage)
                if st == 2:
                    _rk4_stage(w, rowsrc, oj + size, oj, 0.5 * h, 2.0, n, m)
                elif st == 1:
                    _rk4_stage(w, rowsrc, oj, oj + size, 0.5 * h, 2.0, n, m)
                else:
                    _rk4_stage(w, rowsrc, oj, oj + size, h, 1.0, n, m)
            _set_scaled(w, od, osum, h / 6.0, size)
        else:  # Euler
            stage_jac(c, w, ws)
            for i in range(n):
                _set_scaled(w, od + i * row, of + i * n * CH, h, n * CH)
                _set_scaled(w, od + i * row + n * CH, og + i * m * CH, h, m * CH)
        for i in range(n):
            _add_one(w, od + (i * nm + i) * CH)
        for b in range(nc):
            for i in range(n):
                for j in range(n):
                    A[c0 + b, i, j] = w[od + (i * nm + j) * CH + b]
                for j in range(m):
                    v = w[od + (i * nm + n + j) * CH + b]
                    # a clipped control's column is 0 (checked for finiteness all the same)
                    B[c0 + b, i, j] = v if w[om + j * CH + b] != 0.0 else v * 0.0
    ba = first_bad_sample(A)
    bb = first_bad_sample(B)
    bad = ba if bb < 0 else (bb if ba < 0 else min(ba, bb))
    return -1 if bad < 0 else -2 - bad


@njit(**HOT_INLINE)
def _to_chunk(w, o, src, c0, nc, k):
    """``w[o + i * CHUNK + b] = src[c0 + b, i]`` for ``b < nc``, zeros for ``nc <= b <
    CHUNK``. Sample by sample with ``k`` a constant: interleaved vector loads (a loop per
    coordinate would load element by element)."""
    CH = CHUNK
    for b in range(nc):
        for i in range(k):
            w[o + i * CH + b] = src[c0 + b, i]
    for i in range(k):
        for b in range(nc, CH):
            w[o + i * CH + b] = 0.0


@njit(**HOT_INLINE)
def _chunk_stops(p, w, oz, nq):
    """:func:`plants._integrate.joint_stops` for the chunk's states at ``oz`` (selects, so
    that the loop over the samples vectorises)."""
    CH = CHUNK
    lo = int(p[H_QLO])
    hi = int(p[H_QHI])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    for i in range(nq):
        dq = oz + int(p[pi + i]) * CH
        dv = oz + int(p[vi + i]) * CH
        qlo = p[lo + i]
        qhi = p[hi + i]
        for b in range(CH):
            q = w[dq + b]
            v = w[dv + b]
            up = q > qhi
            down = q < qlo
            w[dq + b] = qhi if up else (qlo if down else q)
            w[dv + b] = 0.0 if (up and v > 0.0) or (down and v < 0.0) else v


@njit(**HOT_INLINE)
def _chunk_clamp(w, o, cnt, amin):
    """``w[o:o + cnt] = clip(w[o:o + cnt], amin, 1)`` (the activations)."""
    for k in range(cnt):
        a = w[o + k]
        w[o + k] = amin if a < amin else (1.0 if a > 1.0 else a)


@njit(**HOT_INLINE, error_model="numpy")
def rollout_chunks(consts, stage, p, X0, U, W, noisy, X, o0, ws, n, m, na, amin):
    """Steps or a rollout, as :func:`plants._integrate.rollout_rows` (the same arguments
    and return value, with the plant's stage function ``stage(c, w)`` in place of
    ``rhs``), for the cases of :func:`rollout_applies`.

    With ``na > 0`` (a constant: the muscle plants), as
    :func:`plants._dyn_muscle.muscle_rollout` instead: after each substep the joint stops
    act (if any) and the last ``na`` states, the activations, are clamped to
    ``[amin, 1]``; for the cases of :func:`rollout_applies_clamped`.

    Chunks of ``CHUNK`` samples go through all the steps of ``U`` together, coordinate-major
    in the scratch, a short last chunk padded with zero states and controls (not stored).
    Per step the controls are clipped (``min``/``max``: the inputs are finite), then the
    integrator's stages run over the chunk in the order of operations of
    ``rollout_rows``, so that the two differ only by the rounding of the plant's
    right-hand side. Inlined into each plant's kernel, with ``n`` and ``m`` constants
    there (see :func:`jacobian_chunks`).
    """
    c = consts(p)
    integ, S, h, vclip, stops = settings(p)
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    ns = 4 if integ == RK4 else 1
    CH = CHUNK
    NC = n * CH
    w = ws[int(p[H_WS]) - chunk_workspace(n, m):]
    oz, ot, ok, oa, ou, ow = rollout_layout(n, m)
    bad = first_bad_input(X0, U)
    if bad >= 0:
        return bad
    nb = X0.shape[0]
    T = U.shape[1]
    if o0 == 1:
        for b in range(nb):
            for i in range(n):
                X[b, 0, i] = X0[b, i]
    for c0 in range(0, nb, CH):
        nc = min(CH, nb - c0)
        _to_chunk(w, oz, X0, c0, nc, n)
        for t in range(T):
            for b in range(nc):
                for j in range(m):
                    w[ou + j * CH + b] = U[c0 + b, t, j]
            for j in range(m):
                ulo = p[lo + j]
                uhi = p[hi + j]
                for b in range(CH):
                    a = w[ou + j * CH + b] if b < nc else 0.0
                    w[ou + j * CH + b] = min(max(a, ulo), uhi)
            for _ in range(S):
                for st in range(ns):  # one call site of the stage function
                    if st == 0:
                        _copy(w, ot, oz, NC)
                    stage(c, w)
                    if integ == RK4:
                        if st == 0:
                            _copy(w, oa, ok, NC)
                        else:
                            _add_scaled(w, oa, ok, 1.0 if st == 3 else 2.0, NC)
                        if st < 3:
                            cn = h if st == 2 else 0.5 * h
                            for k in range(NC):
                                w[ot + k] = w[oz + k] + cn * w[ok + k]
                if integ == RK4:
                    _add_scaled(w, oz, oa, h / 6.0, NC)
                elif integ == SEMI_IMPLICIT:
                    # the velocity first, then its position with the new velocity (the
                    # velocities are not clipped: rollout_applies)
                    for i in range(nq):
                        dv = oz + int(p[vi + i]) * CH
                        dq = oz + int(p[pi + i]) * CH
                        kv = ok + int(p[vi + i]) * CH
                        for b in range(CH):
                            vn = w[dv + b] + w[kv + b] * h
                            w[dv + b] = vn
                            w[dq + b] = w[dq + b] + vn * h
                else:
                    _add_scaled(w, oz, ok, h, NC)
                if na > 0:
                    if stops:
                        _chunk_stops(p, w, oz, nq)
                    _chunk_clamp(w, oz + (n - na) * CH, na * CH, amin)
            if noisy:
                for b in range(nc):
                    for i in range(n):
                        w[oz + i * CH + b] += W[c0 + b, t, i]
            for b in range(nc):
                for i in range(n):
                    X[c0 + b, t + o0, i] = w[oz + i * CH + b]
    bad = first_bad_sample(X)
    return -1 if bad < 0 else -2 - bad
