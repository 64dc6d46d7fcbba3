"""The integrators and batched loops shared by every plant kernel, and their exact Jacobians.

A plant supplies three compiled functions (see :mod:`plants._kernels`):

``consts(params) -> c``
    Its constants, read once per call (a tuple of floats, or ``params`` itself).
``rhs(c, z, u, dz, pw)``
    ``dz = f(z, u)``: the continuous-time right-hand side.
``rhs_jac(c, z, u, dz, F, G, pw)``
    ``dz`` and its partials ``F = df/dz`` (n x n) and ``G = df/du`` (n x m).

``pw`` is the plant's own scratch. Each plant's kernel in :mod:`plants._kernels` calls
:func:`rollout_rows` and :func:`jacobian_rows` with those functions and its sizes ``n``,
``m`` (constants for the fixed-size plants, so that the compiler unrolls the loops); Numba
compiles one copy of each per plant, into which the plant's right-hand side is inlined.
So a plant's kernels hold only its own model and compile on its first use. (A function
passed as an argument does not stop the caching: only Python-level callers passing one
would.) The small per-step helpers are inlined at the Numba IR level.

One step, for each of ``substeps`` substeps of length ``h = dt / substeps`` with the
(clipped) control held constant:

* Euler: ``z' = z + h f(z, u)``
* semi-implicit (symplectic) Euler: ``v' = clip(v + h a(q, v, u))``, ``q' = q + h v'``
* RK4: the classical fourth-order Runge-Kutta scheme

then velocities are clipped to ``v_max`` (semi-implicit: before the position update) and
joint stops applied (a coordinate past its limit is set to the limit and its velocity, if
still moving outward, to zero: an inelastic stop). The Jacobian is the chain rule through
exactly these operations; a clipped quantity has zero derivative. The discrete map
``z' = f(z, u)`` of :class:`plants.LinearPlant` has batch-major kernels of its own
(:mod:`plants._dyn_linear`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._layout import (
    H_DT,
    H_INTEG,
    H_NQ,
    H_POS,
    H_QHI,
    H_QLO,
    H_SUB,
    H_UHI,
    H_ULO,
    H_VEL,
    H_VMAX,
    HOT_INLINE,
    HOT_INTERNAL,
    RK4,
    SEMI_IMPLICIT,
    integrator_workspace,
)


@njit(**HOT_INLINE)
def settings(p):
    """``(integ, substeps, h, vclip, stops)``; the clip/stop passes only where a limit is finite."""
    integ = int(p[H_INTEG])
    S = int(p[H_SUB])
    h = p[H_DT] / S
    vclip = False
    stops = False
    for i in range(int(p[H_NQ])):
        if np.isfinite(p[int(p[H_VMAX]) + i]):
            vclip = True
        if np.isfinite(p[int(p[H_QLO]) + i]) or np.isfinite(p[int(p[H_QHI]) + i]):
            stops = True
    return integ, S, h, vclip, stops


@njit(**HOT_INLINE)
def views(ws, n, m):
    """The integrators' scratch, as views of ``ws``.

    Vectors ``z, k, acc, tmp, rowsrc`` (n) and ``u, umask`` (m); the right-hand side's
    partials ``F`` (n x n) and ``G`` (n x m); a stack ``J`` (6, n, n + m) of the Jacobian
    pass's matrices; then ``pw``, the plant's own scratch.
    """
    z = ws[0:n]
    k = ws[n:2 * n]
    acc = ws[2 * n:3 * n]
    tmp = ws[3 * n:4 * n]
    rowsrc = ws[4 * n:5 * n]
    o = 5 * n
    u = ws[o:o + m]
    umask = ws[o + m:o + 2 * m]
    o += 2 * m
    F = ws[o:o + n * n].reshape((n, n))
    o += n * n
    G = ws[o:o + n * m].reshape((n, m))
    o += n * m
    J = ws[o:o + 6 * n * (n + m)].reshape((6, n, n + m))
    pw = ws[integrator_workspace(n, m):]
    return z, k, acc, tmp, rowsrc, u, umask, F, G, J, pw


@njit(**HOT_INLINE)
def load_control(p, urow, u, umask, m):
    """``u = clip(urow)`` to the control limits, ``umask[j] = 0`` where clipped, else 1
    (the caller has checked that the controls are finite)."""
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    for j in range(m):
        a = urow[j]
        umask[j] = 1.0
        if a > p[hi + j]:
            a = p[hi + j]
            umask[j] = 0.0
        elif a < p[lo + j]:
            a = p[lo + j]
            umask[j] = 0.0
        u[j] = a


@njit(**HOT_INLINE)
def load_state(xrow, z, n):
    """``z = xrow`` (the caller has checked that it is finite)."""
    for i in range(n):
        z[i] = xrow[i]


@njit(**HOT_INLINE)
def clip_velocities(p, z, D, jac):
    """Clip each velocity to ``[-v_max, v_max]``; zero its row of ``D`` where clipped."""
    vo = int(p[H_VMAX])
    vi = int(p[H_VEL])
    for i in range(int(p[H_NQ])):
        kv = int(p[vi + i])
        vm = p[vo + i]
        if z[kv] > vm or z[kv] < -vm:
            z[kv] = vm if z[kv] > 0 else -vm
            if jac:
                D[kv, :] = 0.0


@njit(**HOT_INLINE)
def joint_stops(p, z, D, jac):
    """Inelastic stops: see the module docstring; zero the rows of ``D`` that were set."""
    lo = int(p[H_QLO])
    hi = int(p[H_QHI])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    for i in range(int(p[H_NQ])):
        kq = int(p[pi + i])
        kv = int(p[vi + i])
        q = z[kq]
        if q > p[hi + i] or q < p[lo + i]:
            up = q > p[hi + i]
            z[kq] = p[hi + i] if up else p[lo + i]
            if jac:
                D[kq, :] = 0.0
            if (up and z[kv] > 0.0) or ((not up) and z[kv] < 0.0):
                z[kv] = 0.0
                if jac:
                    D[kv, :] = 0.0


@njit(**HOT_INLINE)
def _all_finite(a):
    for i in range(a.shape[0]):
        if not np.isfinite(a[i]):
            return False
    return True


@njit(**HOT_INLINE)
def all_finite(a):
    """Whether every entry of a contiguous float64 array is finite, in one vectorised pass:
    an OR over the entries' IEEE exponent fields being all ones (inf or NaN) -- an integer
    reduction, which LLVM vectorises (a floating-point one it would not, without
    reassociation)."""
    bits = a.reshape(a.size).view(np.int64)
    bad = 0
    for i in range(bits.size):
        bad |= ((bits[i] >> 52) & 0x7FF) == 0x7FF
    return bad == 0


@njit(**HOT_INTERNAL)
def first_bad_sample(X):
    """The first sample ``b`` whose rows ``X[b]`` (any shape) are not all finite, or -1 (one
    vectorised pass over everything, the samples searched only when one is not)."""
    if all_finite(X):
        return -1
    Xf = X.reshape((X.shape[0], -1))
    for b in range(X.shape[0]):
        if not _all_finite(Xf[b]):
            return b
    return -1


@njit(**HOT_INTERNAL)
def first_bad_input(X0, U):
    """The first sample whose state ``X0[b]`` or controls ``U[b]`` (any shape) are not finite;
    -1 if all are (checked in one pass, the samples searched only when one is not)."""
    if all_finite(X0) and all_finite(U):
        return -1
    Uf = U.reshape((U.shape[0], -1))
    for b in range(X0.shape[0]):
        if not (_all_finite(X0[b]) and _all_finite(Uf[b])):
            return b
    return -1


@njit(**HOT_INTERNAL)
def rollout_rows(consts, rhs, p, X0, U, W, noisy, X, o0, ws, n, m):
    """Roll out every sample: ``X[b, o0 + t] = x_t`` for ``t`` from ``1 - o0`` to ``T``.

    ``o0 = 1`` stores the initial state too (a rollout), ``o0 = 0`` only the ``T`` new
    states (``step`` is the case ``T = 1``). With ``noisy``, ``W[b, t]`` is added to each new
    state. Returns the first sample with a non-finite input (the inputs are checked before
    anything is computed), else ``-2 - b`` for the first sample ``b`` whose trajectory is not
    finite, else -1 (the outputs of a failed call are not to be used).
    """
    c = consts(p)
    integ, S, h, vclip, stops = settings(p)
    z, k, acc, tmp, rowsrc, u, umask, F, G, J, pw = views(ws, n, m)
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    vo = int(p[H_VMAX])
    ns = 4 if integ == RK4 else 1
    T = U.shape[1]
    bad = first_bad_input(X0, U)
    if bad >= 0:
        return bad
    for b in range(X0.shape[0]):
        load_state(X0[b], z, n)
        if o0 == 1:
            for i in range(n):
                X[b, 0, i] = z[i]
        for t in range(T):
            load_control(p, U[b, t], u, umask, m)
            for _ in range(S):
                for st in range(ns):  # one call site of rhs keeps the compiled code small
                    rhs(c, z if st == 0 else tmp, u, k, pw)
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
                    if vclip:
                        clip_velocities(p, z, F, False)
                elif integ == SEMI_IMPLICIT:
                    for i in range(nq):
                        kv = int(p[vi + i])
                        kq = int(p[pi + i])
                        vn = z[kv] + k[kv] * h
                        vm = p[vo + i]
                        if vn > vm:
                            vn = vm
                        elif vn < -vm:
                            vn = -vm
                        z[kv] = vn
                        z[kq] = z[kq] + vn * h
                else:
                    for i in range(n):
                        z[i] += h * k[i]
                    if vclip:
                        clip_velocities(p, z, F, False)
                if stops:
                    joint_stops(p, z, F, False)
            if noisy:
                for i in range(n):
                    z[i] += W[b, t, i]
            for i in range(n):
                X[b, t + o0, i] = z[i]
    # every stored state is checked (a clip or a stop could make a later state finite
    # again); X[:, 0], when stored, is X0, finite
    bad = first_bad_sample(X)
    return -1 if bad < 0 else -2 - bad


@njit(**HOT_INTERNAL)
def jacobian_rows(consts, rhs_jac, p, X, U, A, B, ws, n, m):
    """``A[b] = d x_next / d x``, ``B[b] = d x_next / d u`` at ``(X[b], U[b])``.

    Derivatives by ``y = (z, u)`` are kept as ``n x (n + m)`` matrices ``[d/dz | d/du]``. Per
    substep ``D = d z_s+1 / d(z_s, u)``, composed as ``Q <- D_z Q + [0 | D_u]``. For RK4 the
    stage derivatives ``k_i = f(z_i, u)``, ``z_i+1 = z + c_i k_i`` give
    ``dk_i/dy = [F_i | G_i] + c_i-1 F_i dk_i-1/dy``. A position row of ``F`` (``qdot = v``)
    is the unit row of its velocity, so its row of ``F_i dk_i-1/dy`` is a copy, not a
    product (``rowsrc``: the velocity index of each position row, else -1).

    The matrices are indexed flat, ``[i * cols + j]`` with the sizes ``n`` and ``m`` known
    to the compiler: through 2-D views, whose strides are run-time values, every access
    pays the index arithmetic (this took about a quarter of the Jacobian's time).

    Returns the first sample with a non-finite input, else ``-2 - b`` for the first sample
    whose Jacobians are not finite, else -1 (as :func:`rollout_rows`).
    """
    c = consts(p)
    integ, S, h, vclip, stops = settings(p)
    z, k, acc, tmp, rowsrc, u, umask, F, G, J, pw = views(ws, n, m)
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    vo = int(p[H_VMAX])
    nm = n + m
    size = n * nm
    Ff = F.reshape(n * n)
    Gf = G.reshape(n * m)
    Jf = J.reshape(6 * size)
    D2 = J[3]  # D as a matrix, for the clipping and stop helpers
    for i in range(n):
        rowsrc[i] = -1.0
    for i in range(nq):
        rowsrc[int(p[pi + i])] = p[vi + i]
    ns = 4 if integ == RK4 else 1
    sb = 2 * size  # sum of the weighted stage derivatives
    db = 3 * size  # D
    qb = 4 * size  # Q
    tb = 5 * size  # a temporary
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    for b in range(X.shape[0]):
        load_state(X[b], z, n)
        load_control(p, U[b], u, umask, m)
        for s in range(S):
            # Jf[0:size], Jf[size:2 size]: previous / current stage derivative (swapped)
            prev = 0
            for st in range(ns):
                rhs_jac(c, z if st == 0 else tmp, u, k, F, G, pw)
                if integ != RK4:
                    break
                if st == 0:
                    for i in range(n):
                        acc[i] = k[i]
                        for j in range(n):
                            v = Ff[i * n + j]
                            Jf[i * nm + j] = v
                            Jf[sb + i * nm + j] = v
                        for j in range(m):
                            v = Gf[i * m + j]
                            Jf[i * nm + n + j] = v
                            Jf[sb + i * nm + n + j] = v
                else:
                    cprev = h if st == 3 else 0.5 * h
                    wgt = 1.0 if st == 3 else 2.0
                    pb = prev * size
                    cb = size - pb
                    for i in range(n):
                        acc[i] += wgt * k[i]
                        ci = cb + i * nm
                        src = int(rowsrc[i])
                        if src >= 0:
                            # a position row: F's row is the unit row of ``src``, G's is 0
                            for j in range(nm):
                                Jf[ci + j] = cprev * Jf[pb + src * nm + j]
                            Jf[ci + src] += 1.0
                        else:
                            for j in range(nm):
                                fk = 0.0
                                for t in range(n):
                                    fk += Ff[i * n + t] * Jf[pb + t * nm + j]
                                Jf[ci + j] = cprev * fk
                            for j in range(n):
                                Jf[ci + j] += Ff[i * n + j]
                            for j in range(m):
                                Jf[ci + n + j] += Gf[i * m + j]
                        for j in range(nm):
                            Jf[sb + i * nm + j] += wgt * Jf[ci + j]
                    prev = 1 - prev
                if st < 3:
                    cn = h if st == 2 else 0.5 * h
                    for i in range(n):
                        tmp[i] = z[i] + cn * k[i]
            if integ == RK4:
                for i in range(n):
                    z[i] += h / 6.0 * acc[i]
                    for j in range(nm):
                        Jf[db + i * nm + j] = h / 6.0 * Jf[sb + i * nm + j] + (1.0 if i == j else 0.0)
                if vclip:
                    clip_velocities(p, z, D2, True)
            elif integ == SEMI_IMPLICIT:
                for i in range(n):
                    for j in range(nm):
                        Jf[db + i * nm + j] = 1.0 if i == j else 0.0
                for i in range(nq):
                    kv = int(p[vi + i])
                    kq = int(p[pi + i])
                    vn = z[kv] + k[kv] * h
                    vm = p[vo + i]
                    clipped = vn > vm or vn < -vm
                    if vn > vm:
                        vn = vm
                    elif vn < -vm:
                        vn = -vm
                    z[kv] = vn
                    z[kq] = z[kq] + vn * h
                    for j in range(nm):
                        if clipped:
                            a = 0.0
                        else:
                            a = Jf[db + kv * nm + j] + h * (Ff[kv * n + j] if j < n
                                                             else Gf[kv * m + j - n])
                        Jf[db + kv * nm + j] = a
                        Jf[db + kq * nm + j] += h * a
            else:
                for i in range(n):
                    z[i] += h * k[i]
                    for j in range(n):
                        Jf[db + i * nm + j] = h * Ff[i * n + j] + (1.0 if i == j else 0.0)
                    for j in range(m):
                        Jf[db + i * nm + n + j] = h * Gf[i * m + j]
                if vclip:
                    clip_velocities(p, z, D2, True)
            if stops:
                joint_stops(p, z, D2, True)
            if s == 0:
                for i in range(size):
                    Jf[qb + i] = Jf[db + i]
            else:  # Q <- D_z Q + [0 | D_u]
                for i in range(n):
                    for j in range(nm):
                        t = Jf[db + i * nm + j] if j >= n else 0.0
                        for r in range(n):
                            t += Jf[db + i * nm + r] * Jf[qb + r * nm + j]
                        Jf[tb + i * nm + j] = t
                for i in range(size):
                    Jf[qb + i] = Jf[tb + i]
        for i in range(n):
            for j in range(n):
                A[b, i, j] = Jf[qb + i * nm + j]
            for j in range(m):
                v = Jf[qb + i * nm + n + j]
                # a clipped control's column is 0 (checked for finiteness all the same)
                B[b, i, j] = v if umask[j] != 0.0 else v * 0.0
    ba = first_bad_sample(A)
    bb = first_bad_sample(B)
    bad = ba if bb < 0 else (bb if ba < 0 else min(ba, bb))
    return -1 if bad < 0 else -2 - bad
