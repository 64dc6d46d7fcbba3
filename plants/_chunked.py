"""Batch-major Jacobian pass: :func:`plants._integrate.jacobian_rows` over chunks of samples.

:func:`~plants._integrate.jacobian_rows` walks one sample at a time, and its loops run over
that sample's few states and controls: too short to vectorise. :func:`jacobian_chunks`
takes chunks of ``CHUNK`` samples through the same operations together. Every quantity is
held coordinate-major in the scratch, row ``r`` of a quantity at offset ``o`` for sample
``b`` at ``w[o + r * CHUNK + b]``, so the innermost loops run over samples, contiguously,
and vectorise. Because the rows are a compile-time multiple of ``CHUNK`` apart (every
offset is a constant: see :func:`layout`), the compiler can tell that they do not overlap.

A plant supplies the stage function ``stage_jac(c, rhs_jac, w, ws, n, m)``. For the
``CHUNK`` samples of a chunk it computes the right-hand side ``k = f(z, u)`` and its partials
``F = df/dz`` (``n x n``, row-major rows) and ``G = df/du`` (``n x m``), from the stage
state and the clipped controls, at the offsets of :func:`layout` in the chunk scratch
``w``. There are two kinds:

* a plant with a vectorisable right-hand side writes a loop over the samples of its own,
  such as :func:`plants._dyn_two_link.stage_jac_plain`;
* :func:`per_sample_stage_jac` adapts a per-sample ``rhs_jac`` of the convention in
  :mod:`plants._integrate`. It copies each sample in and out, so only the Jacobian
  pass's own matrix algebra vectorises.

The pass covers the integrators Euler and RK4, with any number of substeps and with
velocity clipping. It does not cover semi-implicit Euler or joint stops, which go through
:func:`~plants._integrate.jacobian_rows`. The algebra is that of ``jacobian_rows``,
operation for operation, so the two agree to rounding (the tests check this).
"""

from __future__ import annotations

from numba import njit

from ._integrate import first_bad_input, first_bad_sample, settings, views
from ._layout import (
    EULER,
    H_NQ,
    H_POS,
    H_UHI,
    H_ULO,
    H_VEL,
    H_VMAX,
    H_WS,
    HOT_INLINE,
    HOT_INTERNAL,
    RK4,
)

#: Samples per chunk: one vector register of float64 holds 8 of them (AVX-512) or 4 (AVX2).
#: 32 keeps a three-link chunk's matrices (about 100 kB) in the L2 cache.
CHUNK = 32
#: Smaller batches go through the per-sample pass (a chunk's fixed costs would dominate).
MIN_BATCH = 8


@njit(**HOT_INLINE)
def chunk_workspace(n, m):
    """Scratch (float64 elements) of :func:`jacobian_chunks`.

    It holds the vectors ``z``, the stage state, ``k`` and the RK4 sum (each ``n``), the
    clipped controls and their mask (each ``m``), ``F`` and ``G``, and six ``n x (n + m)``
    matrices, all for ``CHUNK`` samples. The plants that use the pass add it to their own
    scratch, and it sits at the end of the workspace.
    """
    return CHUNK * (4 * n + 2 * m + n * n + n * m + 6 * n * (n + m))


@njit(**HOT_INLINE)
def applies(p, nb):
    """Whether :func:`jacobian_chunks` covers this plant's settings and a batch of ``nb``."""
    integ, S, h, vclip, stops = settings(p)
    return nb >= MIN_BATCH and not stops and (integ == RK4 or integ == EULER)


@njit(**HOT_INLINE)
def layout(n, m):
    """Offsets in the chunk scratch (see :func:`chunk_workspace`): ``(z, stage state, k,
    RK4 sum, clipped controls, control mask, F, G, stage derivatives (two), their weighted
    sum, D, Q, a temporary)``, and the size of one ``n x (n + m)`` matrix. With ``n`` and
    ``m`` constants, so are they."""
    CH = CHUNK
    size = n * (n + m) * CH
    oz = 0
    ot = oz + n * CH
    ok = ot + n * CH
    oa = ok + n * CH
    ou = oa + n * CH
    om = ou + m * CH
    of = om + m * CH
    og = of + n * n * CH
    oj = og + n * m * CH
    osum = oj + 2 * size
    od = osum + size
    oq = od + size
    otmp = oq + size
    return oz, ot, ok, oa, ou, om, of, og, oj, osum, od, oq, otmp, size


@njit(**HOT_INTERNAL)
def per_sample_stage_jac(c, rhs_jac, w, ws, n, m):
    """The stage function for a per-sample ``rhs_jac``: each sample is copied into the
    per-sample scratch of :func:`plants._integrate.views`, and its results are copied out."""
    z, k, acc, tmp, rowsrc, u, umask, F, G, J, pw = views(ws, n, m)
    oz, ot, ok, oa, ou, om, of, og, oj, osum, od, oq, otmp, size = layout(n, m)
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
def _rk4_stage(w, rowsrc, pb, cb, cprev, wgt, n, m):
    """RK4 stage ``i > 0``: ``dk_i/dy = [F_i | G_i] + c_i-1 F_i dk_i-1/dy`` from the previous
    stage derivative at ``pb`` into ``cb``; the weighted sums of ``k`` and of ``dk/dy``
    updated. Called with constant ``pb`` and ``cb``: with an offset known only at run time
    the compiler would need a run-time overlap check per pair of rows, more than it makes,
    and would not vectorise."""
    oz, ot, ok, oa, ou, om, of, og, oj, osum, od, oq, otmp, size = layout(n, m)
    CH = CHUNK
    nm = n + m
    for i in range(n):
        for b in range(CH):
            w[oa + i * CH + b] += wgt * w[ok + i * CH + b]
        src = int(rowsrc[i])
        if src >= 0:
            # a position row: F's row is the unit row of ``src``, G's is 0
            for j in range(nm):
                d = cb + (i * nm + j) * CH
                e = pb + (src * nm + j) * CH
                one = 1.0 if j == src else 0.0
                for b in range(CH):
                    w[d + b] = cprev * w[e + b] + one
        else:
            for j in range(nm):
                d = cb + (i * nm + j) * CH
                own = of + (i * n + j) * CH if j < n else og + (i * m + j - n) * CH
                for b in range(CH):
                    fk = 0.0
                    for t in range(n):
                        fk += w[of + (i * n + t) * CH + b] * w[pb + (t * nm + j) * CH + b]
                    w[d + b] = cprev * fk + w[own + b]
        for j in range(nm):
            d = osum + (i * nm + j) * CH
            e = cb + (i * nm + j) * CH
            for b in range(CH):
                w[d + b] += wgt * w[e + b]


@njit(**HOT_INLINE, error_model="numpy")
def jacobian_chunks(consts, stage_jac, rhs_jac, p, X, U, A, B, ws, n, m):
    """``A[b] = d x_next / d x`` and ``B[b] = d x_next / d u``, as
    :func:`plants._integrate.jacobian_rows` (same arguments and return value, with the
    plant's stage function ``stage_jac`` in addition), for the cases of :func:`applies`.
    Inlined into each plant's kernel, so that ``n`` and ``m``, and with them every offset
    in the scratch, are constants there."""
    c = consts(p)
    integ, S, h, vclip, stops = settings(p)
    rowsrc = views(ws, n, m)[4]
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    vo = int(p[H_VMAX])
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    for i in range(n):
        rowsrc[i] = -1.0
    for i in range(nq):
        rowsrc[int(p[pi + i])] = p[vi + i]
    CH = CHUNK
    nm = n + m
    w = ws[int(p[H_WS]) - chunk_workspace(n, m):]
    oz, ot, ok, oa, ou, om, of, og, oj, osum, od, oq, otmp, size = layout(n, m)
    ns = 4 if integ == RK4 else 1
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    nb = X.shape[0]
    for c0 in range(0, nb, CH):
        nc = min(CH, nb - c0)
        # a short last chunk is padded with zeros: every loop below runs over exactly CH
        # samples, a constant trip count (no remainder loops), and the padding is not stored
        for i in range(n):
            for b in range(CH):
                w[oz + i * CH + b] = X[c0 + b, i] if b < nc else 0.0
        for j in range(m):
            ulo = p[lo + j]
            uhi = p[hi + j]
            for b in range(CH):
                a = U[c0 + b, j] if b < nc else 0.0
                w[ou + j * CH + b] = min(max(a, ulo), uhi)
                w[om + j * CH + b] = 1.0 if ulo <= a <= uhi else 0.0
        for s in range(S):
            for st in range(ns):
                if st == 0:  # the stage function reads the stage state
                    for i in range(n * CH):
                        w[ot + i] = w[oz + i]
                stage_jac(c, rhs_jac, w, ws, n, m)
                if integ != RK4:
                    break
                if st == 0:
                    for i in range(n):
                        for b in range(CH):
                            w[oa + i * CH + b] = w[ok + i * CH + b]
                        for j in range(nm):
                            src = of + (i * n + j) * CH if j < n else og + (i * m + j - n) * CH
                            d0 = oj + (i * nm + j) * CH
                            d1 = osum + (i * nm + j) * CH
                            for b in range(CH):
                                v = w[src + b]
                                w[d0 + b] = v
                                w[d1 + b] = v
                elif st == 1:  # constant offsets at each call site: see _rk4_stage
                    _rk4_stage(w, rowsrc, oj, oj + size, 0.5 * h, 2.0, n, m)
                elif st == 2:
                    _rk4_stage(w, rowsrc, oj + size, oj, 0.5 * h, 2.0, n, m)
                else:
                    _rk4_stage(w, rowsrc, oj, oj + size, h, 1.0, n, m)
                if st < 3:
                    cn = h if st == 2 else 0.5 * h
                    for i in range(n):
                        for b in range(CH):
                            w[ot + i * CH + b] = w[oz + i * CH + b] + cn * w[ok + i * CH + b]
            if integ == RK4:
                for i in range(n):
                    for b in range(CH):
                        w[oz + i * CH + b] += h / 6.0 * w[oa + i * CH + b]
                    for j in range(nm):
                        d = od + (i * nm + j) * CH
                        e = osum + (i * nm + j) * CH
                        one = 1.0 if i == j else 0.0
                        for b in range(CH):
                            w[d + b] = h / 6.0 * w[e + b] + one
            else:
                for i in range(n):
                    for b in range(CH):
                        w[oz + i * CH + b] += h * w[ok + i * CH + b]
                    for j in range(nm):
                        d = od + (i * nm + j) * CH
                        e = of + (i * n + j) * CH if j < n else og + (i * m + j - n) * CH
                        one = 1.0 if i == j else 0.0
                        for b in range(CH):
                            w[d + b] = h * w[e + b] + one
            if vclip:  # as clip_velocities: a clipped velocity's row of D is 0
                for iq in range(nq):
                    kv = int(p[vi + iq])
                    vm = p[vo + iq]
                    for b in range(CH):
                        v = w[oz + kv * CH + b]
                        out = v > vm or v < -vm
                        w[ot + b] = 0.0 if out else 1.0  # the stage state is free here
                        w[oz + kv * CH + b] = (vm if v > 0 else -vm) if out else v
                    for j in range(nm):
                        d = od + (kv * nm + j) * CH
                        for b in range(CH):
                            w[d + b] = w[d + b] if w[ot + b] != 0.0 else 0.0
            if s == 0:
                if S > 1:
                    for i in range(size):
                        w[oq + i] = w[od + i]
            else:  # Q <- D_z Q + [0 | D_u]
                for i in range(n):
                    for j in range(nm):
                        d = otmp + (i * nm + j) * CH
                        du = od + (i * nm + j) * CH
                        for b in range(CH):
                            t = w[du + b] if j >= n else 0.0
                            for r in range(n):
                                t += w[od + (i * nm + r) * CH + b] * w[oq + (r * nm + j) * CH + b]
                            w[d + b] = t
                for i in range(size):
                    w[oq + i] = w[otmp + i]
        qf = od if S == 1 else oq
        for b in range(nc):
            for i in range(n):
                for j in range(n):
                    A[c0 + b, i, j] = w[qf + (i * nm + j) * CH + b]
                for j in range(m):
                    v = w[qf + (i * nm + n + j) * CH + b]
                    # a clipped control's column is 0 (checked for finiteness all the same)
                    B[c0 + b, i, j] = v if w[om + j * CH + b] != 0.0 else v * 0.0
    ba = first_bad_sample(A)
    bb = first_bad_sample(B)
    bad = ba if bb < 0 else (bb if ba < 0 else min(ba, bb))
    return -1 if bad < 0 else -2 - bad
