"""Compiled right-hand side of the linear plant ``f(x, u) = A x + B(x) u``.

``B(x)[i, j] = B0[i, j] + Bg[i, j] * tanh(x[k[i, j]])`` where ``k[i, j] = -1`` means no
state dependence. Section layout: ``[A (n*n), B0 (n*m), Bg (n*m), k (n*m)]``. Calling
convention: :mod:`plants._integrate`. The discrete map also has a batch-major rollout,
:func:`map_rollout`.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._integrate import all_finite, first_bad_input
from ._layout import H_PLANT, H_UHI, H_ULO, HOT, HOT_INLINE, HOT_INTERNAL


@intrinsic
def _bits_to_float64(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (free, and vectorisable)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(cache=True, _nrt=False, inline="always", error_model="numpy")
def tanh(x):
    """tanh in float64 without branches, so that loops over samples vectorise (libm's
    ``tanh`` does not; NumPy's ``np.tanh`` is SIMD, which is what a batched NumPy step
    gains from). Within a few ulp of libm, NaN in, NaN out. Inlined at the Numba IR level,
    so its caller needs ``error_model="numpy"`` too: the default's division check stops
    the vectoriser.

    ``|x| < 0.625``: ``x + x^3 P(x^2) / Q(x^2)``; above, ``1 - 2 / (e^{2|x|} + 1)`` with
    ``e^y`` by Cody-Waite reduction ``y = k ln 2 + r``, the Pade form of ``e^r`` and ``2^k``
    from its IEEE bits. Both rational approximations and their coefficients are Cephes'
    (S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989).
    """
    a = abs(x)
    # small |x|
    z = x * x
    p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3
    q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z \
        + 4.84406305325125486048e3
    small = x + x * z * p / q
    # large |x|: e^{2|x|}, capped where tanh is 1 to double precision
    y = min(2.0 * a, 44.0)
    k = np.floor(y * 1.4426950408889634074 + 0.5)
    r = y - k * 6.93145751953125e-1
    r = r - k * 1.42860682030941723212e-6
    rr = r * r
    px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
              + 9.99999999999999999910e-1)
    qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
          + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0
    e = (1.0 + 2.0 * px / (qx - px)) * _bits_to_float64((np.int64(k) + 1023) << 52)
    big = 1.0 - 2.0 / (e + 1.0)
    big = big if x >= 0 else -big
    return small if a < 0.625 else big


@njit(**HOT_INTERNAL)
def sections(p, n, m):
    """Offsets of ``A``, ``B0``, ``Bg``, ``k`` in ``params`` (the section layout above)."""
    a0 = int(p[H_PLANT])
    b0 = a0 + n * n
    g0 = b0 + n * m
    return a0, b0, g0, g0 + n * m


@njit(**HOT_INTERNAL)
def consts(p):
    """The linear plant reads its matrices from ``params`` directly."""
    return p


@njit(**HOT_INTERNAL)
def rhs(p, z, u, dz, pw):
    """``dz = A z + B(z) u``."""
    n = z.shape[0]
    m = u.shape[0]
    a0, b0, g0, k0 = sections(p, n, m)
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += p[a0 + i * n + j] * z[j]
        for j in range(m):
            b = p[b0 + i * m + j]
            k = int(p[k0 + i * m + j])
            if k >= 0:
                b += p[g0 + i * m + j] * tanh(z[k])
            s += b * u[j]
        dz[i] = s


@njit(**HOT_INTERNAL)
def rhs_jac(p, z, u, dz, F, G, pw):
    """Value and exact partials ``F = A + sum_j dB[:, j]/dz u_j``, ``G = B(z)``."""
    n = z.shape[0]
    m = u.shape[0]
    a0, b0, g0, k0 = sections(p, n, m)
    for i in range(n):
        s = 0.0
        for j in range(n):
            a = p[a0 + i * n + j]
            F[i, j] = a
            s += a * z[j]
        for j in range(m):
            b = p[b0 + i * m + j]
            k = int(p[k0 + i * m + j])
            if k >= 0:
                t = tanh(z[k])
                g = p[g0 + i * m + j]
                b += g * t
                F[i, k] += g * (1.0 - t * t) * u[j]
            G[i, j] = b
            s += b * u[j]
        dz[i] = s


@njit(**HOT_INLINE)
def _gather(src, c0, nc, dst, k):
    """``dst[i, b] = src[c0 + b, i]`` for ``i < k``, ``b < nc``, sample by sample."""
    for b in range(nc):
        for i in range(k):
            dst[i, b] = src[c0 + b, i]


@njit(**HOT_INLINE)
def _scatter(src, dst, c0, nc, k):
    """``dst[c0 + b, i] = src[i, b]`` for ``i < k``, ``b < nc``, sample by sample."""
    for b in range(nc):
        for i in range(k):
            dst[c0 + b, i] = src[i, b]


@njit(**HOT_INLINE)
def to_rows(src, c0, nc, dst, k):
    """``dst[i, b] = src[c0 + b, i]``: a chunk of samples ``src[B, k]`` into coordinate
    rows. For ``k <= 4`` the loop runs sample by sample with ``k`` a constant, which the
    compiler vectorises as interleaved loads (each a few shuffles); a loop per
    coordinate would load element by element (a quarter of the demo plant's step)."""
    if k == 1:
        _gather(src, c0, nc, dst, 1)
    elif k == 2:
        _gather(src, c0, nc, dst, 2)
    elif k == 3:
        _gather(src, c0, nc, dst, 3)
    elif k == 4:
        _gather(src, c0, nc, dst, 4)
    else:
        for i in range(k):
            for b in range(nc):
                dst[i, b] = src[c0 + b, i]


@njit(**HOT_INLINE)
def from_rows(src, dst, c0, nc, k):
    """``dst[c0 + b, i] = src[i, b]``, the inverse of :func:`to_rows`."""
    if k == 1:
        _scatter(src, dst, c0, nc, 1)
    elif k == 2:
        _scatter(src, dst, c0, nc, 2)
    elif k == 3:
        _scatter(src, dst, c0, nc, 3)
    elif k == 4:
        _scatter(src, dst, c0, nc, 4)
    else:
        for i in range(k):
            for b in range(nc):
                dst[c0 + b, i] = src[i, b]


@njit(**HOT)  # with a Python wrapper: map_workspace calls it too
def map_chunk(n, m):
    """Samples :func:`map_rollout` advances together: their states and controls fill about
    32 kB (so stay in the L1 cache), within 64-256 samples. A longer loop over samples pays
    its set-up (an overlap check, a remainder) less often: the demo plant's step at batch
    1024 took 9.2 us with chunks of 64 and 8.5 us with 256 (kernel minima, 21 rounds)."""
    return max(64, min(256, 4096 // (2 * n + m)))


@njit(**HOT_INTERNAL, error_model="numpy")
def map_rollout(p, X0, U, W, noisy, X, o0, ws):
    """The discrete map's rollout (arguments and result as ``rollout_rows``), batch-major.

    Chunks of :func:`map_chunk` samples are advanced through all steps together, their states held
    coordinate-major in ``ws`` (``[n, chunk]``, twice, and the clipped controls ``[m,
    chunk]``), so that the inner loops run over samples, contiguously: they vectorise,
    :func:`tanh` included, where a loop over one sample's few states and controls cannot.
    The sums are taken in the order of :func:`rhs`, without its terms whose coefficient
    is zero (the inputs are finite, and a state that overflows fails the call anyway).
    """
    bad = first_bad_input(X0, U)
    if bad >= 0:
        return bad
    nb = X0.shape[0]
    T = U.shape[1]
    n = X0.shape[1]
    m = U.shape[2]
    a0, b0, g0, k0 = sections(p, n, m)
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    if o0 == 1:
        for b in range(nb):
            for i in range(n):
                X[b, 0, i] = X0[b, i]
    ch = map_chunk(n, m)
    bufs = ws[:2 * n * ch].reshape((2, n, ch))
    Uc = ws[2 * n * ch:(2 * n + m) * ch].reshape((m, ch))
    for c0 in range(0, nb, ch):
        nc = min(ch, nb - c0)
        to_rows(X0, c0, nc, bufs[0], n)
        for t in range(T):
            S = bufs[t % 2]
            D = bufs[1 - t % 2]
            to_rows(U[:, t], c0, nc, Uc, m)
            for j in range(m):
                ulo = p[lo + j]
                uhi = p[hi + j]
                uj = Uc[j]
                for b in range(nc):
                    uj[b] = min(max(uj[b], ulo), uhi)
            for i in range(n):
                # terms with a zero coefficient are skipped (a loop over the chunk each)
                Di = D[i]
                for b in range(nc):
                    Di[b] = 0.0
                for j in range(n):
                    a = p[a0 + i * n + j]
                    if a != 0.0:
                        Sj = S[j]
                        for b in range(nc):
                            Di[b] += a * Sj[b]
                for j in range(m):
                    c = p[b0 + i * m + j]
                    g = p[g0 + i * m + j]
                    k = int(p[k0 + i * m + j])
                    uj = Uc[j]
                    if k >= 0 and g != 0.0:
                        Sk = S[k]
                        for b in range(nc):
                            Di[b] += (c + g * tanh(Sk[b])) * uj[b]
                    elif c != 0.0:
                        for b in range(nc):
                            Di[b] += c * uj[b]
                if noisy:
                    for b in range(nc):
                        Di[b] += W[c0 + b, t, i]
            from_rows(D, X[:, t + o0], c0, nc, n)
    if all_finite(X):  # X[:, 0] (when stored) is X0, finite
        return -1
    for b in range(nb):
        for t in range(o0, T + o0):
            for i in range(n):
                if not np.isfinite(X[b, t, i]):
                    return -2 - b
    return -1


def map_workspace(n: int, m: int) -> int:
    """Scratch (float64 elements) :func:`map_rollout` and :func:`map_jacobians` need."""
    return max(2 * n + m, n * n + n * m + n + m) * map_chunk(n, m)


@njit(**HOT_INTERNAL, error_model="numpy")
def map_jacobians(p, X, U, A, B, ws):
    """Jacobians of the discrete map (arguments and result as ``jacobian_rows``):
    ``A[b] = A + sum_j dB/dx u_j`` and ``B[b] = B(x)``, zero columns where ``u`` is clipped.

    The same numbers as :func:`rhs_jac` (through the per-sample path). Batch-major like
    :func:`map_rollout`: each chunk's Jacobians are built coordinate-major in ``ws`` (the
    loops over samples vectorise, :func:`tanh` included) and then moved out sample by
    sample (:func:`from_rows`).
    """
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    nb = X.shape[0]
    n = X.shape[1]
    m = U.shape[1]
    a0, b0, g0, k0 = sections(p, n, m)
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    ch = map_chunk(n, m)
    o = 0
    Ab = ws[o:o + n * n * ch].reshape((n * n, ch))
    o += n * n * ch
    Bb = ws[o:o + n * m * ch].reshape((n * m, ch))
    o += n * m * ch
    Xs = ws[o:o + n * ch].reshape((n, ch))
    o += n * ch
    Us = ws[o:o + m * ch].reshape((m, ch))
    A2 = A.reshape((nb, n * n))
    B2 = B.reshape((nb, n * m))
    for c0 in range(0, nb, ch):
        nc = min(ch, nb - c0)
        to_rows(X, c0, nc, Xs, n)
        to_rows(U, c0, nc, Us, m)
        for e in range(n * n):
            a = p[a0 + e]
            Ae = Ab[e]
            for b in range(nc):
                Ae[b] = a
        for i in range(n):
            for j in range(m):
                c = p[b0 + i * m + j]
                g = p[g0 + i * m + j]
                k = int(p[k0 + i * m + j])
                ulo = p[lo + j]
                uhi = p[hi + j]
                Uj = Us[j]
                Be = Bb[i * m + j]
                if k >= 0:
                    Xk = Xs[k]
                    Ae = Ab[i * n + k]
                    for b in range(nc):
                        u = Uj[b]
                        free = ulo <= u <= uhi
                        t = tanh(Xk[b])
                        Ae[b] += g * (1.0 - t * t) * min(max(u, ulo), uhi)
                        Be[b] = (c + g * t) if free else 0.0
                else:
                    for b in range(nc):
                        u = Uj[b]
                        Be[b] = c if ulo <= u <= uhi else 0.0
        from_rows(Ab, A2, c0, nc, n * n)
        from_rows(Bb, B2, c0, nc, n * m)
    if all_finite(A):
        return -1
    for b in range(nb):
        for i in range(n):
            for j in range(n):
                if not np.isfinite(A[b, i, j]):
                    return -2 - b
    return -1
    for b in range(nb):
        for i in range(n):
            for j in range(n):
                if not np.isfinite(A[b, i, j]):
                    return -2 - b
    return -1
