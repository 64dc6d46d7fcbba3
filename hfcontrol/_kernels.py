"""Numba-compiled forward pass, gradient and Gauss-Newton product for FFNet and RNNet.

The network is described to the kernels as plain arrays (see ``../shared/DESIGN.md``):

* ``meta[l]`` (int64, one row per layer): ``n`` units, recurrent flag, nonlinearity code,
  stateful flag, and the recurrent connection's ``(start, mid, end)`` offsets into ``W``;
* ``prm[l]`` (float64): the nonlinearity's parameters (``ReLU.max``; SoftLIF's
  ``sigma, tau_rc, tau_ref, amp``) and, in column 4, ``Continuous.coeff``;
* ``conns[c]`` (int64): ``pre, post, start, mid, end`` of every feedforward connection.

Activations, derivatives and deltas live in flat buffers, one contiguous
time-major block ``[T, B, n]`` per layer (a feedforward net is the case ``T = 1``), so that
``acts[t]`` is a contiguous ``[B, n]`` matrix and all time steps of a layer are one
``[T * B, n]`` matrix.

Layers are computed one after the other over *all* time steps: connections only go
from lower to higher layers and a recurrent layer only feeds itself, so every
feedforward product (input projections, back-propagated deltas, weight gradients)
is one large BLAS call, and only a layer's own recurrence (``a[t-1] @ W_rec``,
the filter state of a ``Continuous`` layer) runs step by step -- in compiled code.

All functions are module-level ``@njit(cache=True)`` and call each other by name,
branching on integer nonlinearity codes, so that the on-disk cache is reused
across processes. Losses are not compiled: they have no time loop and are
evaluated by vectorised NumPy over whole arrays.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable
from numba.np import linalg

# meta columns
M_N, M_REC, M_CODE, M_STATEFUL, M_RSTART, M_RMID, M_REND = range(7)
N_META = 7
# codes (same as hfcontrol.nonlinearities); USER: a user nonlinearity with compiled
# element-wise kernels (``njit_activation``/``njit_d_activation``)
LINEAR, TANH, LOGISTIC, RELU, GAUSSIAN, SOFTMAX, SOFTLIF = range(7)
USER = 8

# ---------------------------------------------------------------------- small helpers
# Helpers that callers pass constants (True, 0) are registered with ``register_jitable``:
# numba types a call to them with non-literal argument types first, so each is compiled
# once per dtype, where an @njit function is compiled again for every combination of
# literal arguments (``_mm`` had 7 specialisations per dtype). There is no array-to-array
# slice assignment (``x[:] = y``): numba compiles the formatting of its shape-mismatch
# error message, seconds of compile time; explicit loops instead.
@register_jitable(cache=True)
def _block(buf, off, rows, n):
    """Rows ``[rows, n]`` of a flat buffer starting at ``off`` (a contiguous view)."""
    return buf[off:off + rows * n].reshape((rows, n))


# Matrix products go to BLAS even when tiny: measured here, a [32, 16] @ [16, 16] sgemm
# from compiled code takes 0.2 us, several times less than an explicit loop.
@intrinsic
def _gemm(typingctx, a, ta, b, tb, c):
    """``c = op(a) @ op(b)``, ``op(x)`` being ``x.T`` if its flag is set, by one BLAS call.

    The same call as numba's ``np.dot(op(a), op(b), c)`` (its choice of ``dot``, ``gemv`` or
    ``gemm`` and their arguments, so bit for bit the same result), without its shape checks
    and without a separate specialisation for every combination of transposed views.
    ``a``, ``b``, ``c`` are C-contiguous 2-D arrays of one float dtype; the caller
    guarantees that the shapes agree and that no dimension is 0.
    """
    sig = types.none(a, types.boolean, b, types.boolean, c)

    def codegen(context, builder, sig, args):
        linalg.ensure_blas()
        arrays = [linalg.make_array(t)(context, builder, v)
                  for t, v in zip(sig.args[::2], args[::2], strict=True)]
        (a0, a1), (b0, b1), (m, n) = [cgutils.unpack_tuple(builder, x.shape) for x in arrays]
        pa, pb, pc = [builder.bitcast(x.data, linalg.ll_void_p) for x in arrays]
        ta, tb = args[1], args[3]
        dtype = sig.args[0].dtype
        char, ptr, intp = linalg.ll_char, linalg.ll_void_p, linalg.intp_t
        kind = ir.Constant(char, ord(linalg.get_blas_kind(dtype)))
        one, zero = [builder.bitcast(linalg.make_constant_slot(context, builder, dtype, v), ptr)
                     for v in (1.0, 0.0)]
        t_, n_ = [ir.Constant(char, ord(x)) for x in "tn"]
        gemv = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.IntType(32), [char, char, intp, intp, ptr, ptr, intp, ptr, ptr, ptr]),
            "numba_xxgemv")
        gemm = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.IntType(32), [char, char, char, intp, intp, intp, ptr, ptr, intp, ptr, intp,
                             ptr, ptr, intp]), "numba_xxgemm")
        k = builder.select(ta, a0, a1)
        m_is_1 = builder.icmp_signed("==", m, ir.Constant(intp, 1))
        with builder.if_else(builder.icmp_signed("==", n, ir.Constant(intp, 1))) as (
                vector, matrix):
            with vector:
                with builder.if_else(m_is_1) as (dot, mv):
                    with dot:
                        linalg.call_xxdot(context, builder, False, dtype, k, pa, pb, pc)
                    with mv:  # op(a) @ vector
                        res = builder.call(gemv, (kind, builder.select(ta, n_, t_), a1, a0,
                                                  one, pa, a1, pb, zero, pc))
                        linalg.check_blas_return(context, builder, res)
            with matrix:
                with builder.if_else(m_is_1) as (vm, mm):
                    with vm:  # vector @ op(b)
                        res = builder.call(gemv, (kind, builder.select(tb, t_, n_), b1, b0,
                                                  one, pb, b1, pa, zero, pc))
                        linalg.check_blas_return(context, builder, res)
                    with mm:  # column-major BLAS: c.T = op(b).T @ op(a).T
                        res = builder.call(gemm, (kind, builder.select(tb, t_, n_),
                                                  builder.select(ta, t_, n_), n, m, k, one,
                                                  pb, b1, pa, a1, zero, pc, n))
                        linalg.check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return sig, codegen


@register_jitable(cache=True)
def _mm(a, ta, b, tb, c, acc, tmp):
    """``c += op(a) @ op(b)`` if ``acc`` else ``c = op(a) @ op(b)`` (see :func:`_gemm`).

    ``tmp`` is a flat work buffer of at least ``c.size`` elements for the product when
    accumulating, so that nothing is allocated (large fresh allocations page-fault).
    """
    rows, cols = c.shape
    inner = a.shape[0] if ta else a.shape[1]
    if rows == 0 or cols == 0:
        return
    if inner == 0:
        if not acc:
            c[:] = 0.0
        return
    if acc:
        t = tmp[:rows * cols].reshape((rows, cols))
        _gemm(a, ta, b, tb, t)
        for r in range(rows):
            for j in range(cols):
                c[r, j] += t[r, j]
    else:
        _gemm(a, ta, b, tb, c)


@register_jitable(cache=True)
def _affine(a, w, b, c, acc, tmp):
    """``c (+)= a @ w + b``; for a few inputs (``K <= 4``) one fused pass over ``c``
    instead of BLAS, a temporary and a separate bias pass."""
    rows, inner = a.shape
    cols = c.shape[1]
    if inner > 4:
        _mm(a, False, w, False, c, acc, tmp)
        _add_bias(c, b)
        return
    for r in range(rows):
        cr = c[r]
        if acc:
            for j in range(cols):
                cr[j] += b[j]
        else:
            for j in range(cols):
                cr[j] = b[j]
        for k in range(inner):
            ak = a[r, k]
            wk = w[k]
            for j in range(cols):  # vectorised over j
                cr[j] += ak * wk[j]


@register_jitable(cache=True)
def _cast(ref, value):
    """``value`` as a scalar of ``ref``'s dtype."""
    out = np.empty(1, ref.dtype)
    out[0] = value
    return out[0]


@njit(cache=True)
def _add_bias(x, b):
    for r in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[r, j] += b[j]


@njit(cache=True)
def _tanh(x):
    """tanh in float64 from ``exp`` (about 3x faster than libm's tanh here, as accurate).

    ``(1 - e) / (1 + e)`` with ``e = exp(-2|x|)``; near 0, where ``1 - e`` would cancel,
    ``expm1`` instead.
    """
    v = np.float64(x)
    u = abs(v)
    if u > 0.35:
        e = np.exp(-2.0 * u)
        r = (1.0 - e) / (1.0 + e)
    else:
        m = np.expm1(-2.0 * u)
        r = -m / (2.0 + m)
    return r if v >= 0 else -r


@njit(cache=True)
def _logistic(x):
    """Logistic function in float64, accurate in both tails (no ``1 + tanh`` cancellation)."""
    v = np.float64(x)
    if v >= 0:
        return 1.0 / (1.0 + np.exp(-v))
    e = np.exp(v)
    return e / (1.0 + e)


@njit(cache=True)
def _logistic32(x):
    """:func:`_logistic` in float32 (``expf``: about twice as fast as ``exp``), a few
    float32 ulp from exact in both tails."""
    v = np.float32(x)
    one = np.float32(1.0)
    if v >= 0:
        return one / (one + np.exp(-v))
    e = np.exp(v)
    return e / (one + e)


@njit(cache=True)
def _softlif(p, x):
    """SoftLIF rate and derivative (same large-|x| safeguards as the NumPy version)."""
    sigma, tau_rc, tau_ref, amp = p[0], p[1], p[2], p[3]
    y = x / sigma
    j = sigma * (max(y, 0.0) + np.log1p(np.exp(-abs(y))))
    tiny = 2.2250738585072014e-308
    if y > -30.0:
        log_j = np.log(max(j, tiny))
    else:
        log_j = y + np.log(sigma)
    log_term = max(-log_j, 0.0) + np.log1p(np.exp(-abs(log_j)))
    a = amp / (tau_ref + tau_rc * log_term)
    sig = _logistic(y)
    if y > -30.0:
        ratio = sig / max(j, tiny)
    else:
        ratio = 1.0 / sigma
    d = a * a * tau_rc / amp * ratio / (1.0 + j)
    return a, d


@njit(cache=True, error_model="numpy")
def _tanh_row32(x, a, d, deriv):
    """float32 tanh of a flat array: a rational minimax approximation (Eigen's
    ``generic_fast_tanh_float``, |x| clamped at 7.9), within 4e-7 relative of the exact
    tanh -- a few float32 ulp, like libm's ``tanhf``. Branch-free and division-checked by
    IEEE rules (``error_model="numpy"``), so LLVM vectorises it: about 0.4 ns per element
    against 6 ns for the scalar ``exp`` formula. float64 never comes here."""
    c = np.float32(7.90531110763549805)
    for j in range(x.shape[0]):
        v = x[j]
        xc = v if v < c else c
        xc = xc if xc > -c else -c
        x2 = xc * xc
        p = np.float32(-2.76076847742355e-16)
        p = p * x2 + np.float32(2.00018790482477e-13)
        p = p * x2 + np.float32(-8.60467152213735e-11)
        p = p * x2 + np.float32(5.12229709037114e-08)
        p = p * x2 + np.float32(1.48572235717979e-05)
        p = p * x2 + np.float32(6.37261928875436e-04)
        p = p * x2 + np.float32(4.89352455891786e-03)
        q = np.float32(1.19825839466702e-06)
        q = q * x2 + np.float32(1.18534705686654e-04)
        q = q * x2 + np.float32(2.26843463243900e-03)
        q = q * x2 + np.float32(4.89352518554385e-03)
        a[j] = p * xc / q
    if deriv:
        one = np.float32(1.0)
        for j in range(x.shape[0]):
            d[j] = one - a[j] * a[j]


@njit(cache=True)
def _elementwise(code, p, x, a, d, deriv):
    """``a = f(x)`` and, if ``deriv``, ``d = f'(x)`` for an element-wise nonlinearity,
    over 2-D arrays (``d`` is not touched when ``deriv`` is false)."""
    rows, n = x.shape
    one = _cast(a, 1.0)
    if code == TANH and a.itemsize == 4:
        # the whole (contiguous) block in one vectorised loop
        _tanh_row32(x.reshape(rows * n), a.reshape(rows * n), d.reshape(rows * n), deriv)
        return
    for r in range(rows):
        if code == LINEAR:
            for j in range(n):
                a[r, j] = x[r, j]
            if deriv:
                for j in range(n):
                    d[r, j] = one
        elif code == TANH:
            for j in range(n):
                a[r, j] = _tanh(x[r, j])
            if deriv:
                for j in range(n):
                    d[r, j] = 1.0 - a[r, j] * a[r, j]
        elif code == LOGISTIC:
            if a.itemsize == 4:
                for j in range(n):
                    a[r, j] = _logistic32(x[r, j])
            else:
                for j in range(n):
                    a[r, j] = _logistic(x[r, j])
            if deriv:
                for j in range(n):
                    v = a[r, j]
                    d[r, j] = v * (one - v)
        elif code == RELU:
            top = p[0]
            for j in range(n):
                v = x[r, j]
                a[r, j] = v if v > 0 and v < top else (0.0 if v <= 0 else top)
            if deriv:
                for j in range(n):
                    v = x[r, j]
                    d[r, j] = one if v > 0 and v < top else 0.0
        elif code == GAUSSIAN:
            for j in range(n):
                v = x[r, j]
                e = np.exp(-v * v)
                a[r, j] = e
                if deriv:
                    d[r, j] = -2 * v * e
        elif code == SOFTLIF:
            for j in range(n):
                v, dv = _softlif(p, np.float64(x[r, j]))
                a[r, j] = v
                if deriv:
                    d[r, j] = dv
        else:  # SOFTMAX: row-wise; its Jacobian is applied from the activations
            m = x[r, 0]
            for j in range(1, n):
                m = max(m, x[r, j])
            s = 0.0
            for j in range(n):
                e = np.exp(x[r, j] - m)
                a[r, j] = e
                s += e
            for j in range(n):
                a[r, j] = a[r, j] / s
            if deriv:
                for j in range(n):
                    d[r, j] = 0.0


@njit(cache=True)
def _jac(code, a, d, v, out):
    """``out = J v`` (= ``J^T v``: all Jacobians here are symmetric), row by row."""
    rows, n = v.shape
    if code == SOFTMAX:
        for r in range(rows):
            s = 0.0
            for j in range(n):
                s += a[r, j] * v[r, j]
            for j in range(n):
                out[r, j] = a[r, j] * (v[r, j] - s)
    else:
        for r in range(rows):
            for j in range(n):
                out[r, j] = d[r, j] * v[r, j]


@njit
def _nonlinearity(code, p, x, a, d, deriv, f, df):
    """:func:`_elementwise`, or the user's scalar kernels ``f``/``df`` for code USER.

    ``f is None`` (the built-in :func:`forward`) is decided at compile time: numba prunes
    the other branch, so no function value reaches the cached kernel.
    """
    if f is None:
        _elementwise(code, p, x, a, d, deriv)
    elif code == USER:
        for r in range(x.shape[0]):
            for j in range(x.shape[1]):
                a[r, j] = f(x[r, j])
            if deriv:
                for j in range(x.shape[1]):
                    d[r, j] = df(x[r, j], a[r, j])
    else:
        _elementwise(code, p, x, a, d, deriv)


# ---------------------------------------------------------------------- forward
@njit(cache=True)
def forward(W, meta, prm, conns, T, B, inputs, acts, ds, deriv, init_act, init_state, xbuf,
            tmp):
    """Fill ``acts`` (and, if ``deriv``, ``ds``) of every layer from time-major
    ``inputs [T * B, n0]``, all layers built-in.

    ``init_act``/``init_state`` are flat buffers with one ``[B, n]`` block per layer
    (zeros where unused). For stateful layers ``ds`` holds ``base'(s)``. ``xbuf`` and
    ``tmp`` are work buffers of at least ``T * B * max(n)`` elements; ``ds`` is not
    touched (it may be ``acts``) when ``deriv`` is false.
    """
    _forward_body(W, meta, prm, conns, T, B, inputs, acts, ds, deriv, init_act, init_state,
                  xbuf, tmp, None, None)


@njit
def forward_user(W, meta, prm, conns, T, B, inputs, acts, ds, deriv, init_act, init_state,
                 xbuf, tmp, f, df):
    """:func:`forward` with a user's compiled element-wise kernels for the layers of code
    USER.

    Not cached on disk: a function taking jitted functions as arguments is compiled
    again in every process (a few seconds), once per kernel pair and dtype.
    """
    _forward_body(W, meta, prm, conns, T, B, inputs, acts, ds, deriv, init_act, init_state,
                  xbuf, tmp, f, df)


@njit
def _forward_body(W, meta, prm, conns, T, B, inputs, acts, ds, deriv, init_act, init_state,
                  xbuf, tmp, f, df):
    """The forward pass (see :func:`forward`); ``f``/``df`` are the kernels of code USER
    (None for the built-in, cached :func:`forward`)."""
    L = meta.shape[0]
    offs = _offsets(meta, T * B)
    ioff = _offsets(meta, B)
    for l in range(L):
        n = meta[l, M_N]
        off = offs[l]
        a_l = _block(acts, off, T * B, n)
        d_l = _block(ds, off, T * B, n) if deriv else a_l
        code = meta[l, M_CODE]
        rec = meta[l, M_REC] != 0
        stateful = meta[l, M_STATEFUL] != 0
        if l == 0 and not rec:
            x = inputs  # read only
        else:
            x = _block(xbuf, 0, T * B, n)
            if l == 0:
                for r in range(T * B):
                    for j in range(n):
                        x[r, j] = inputs[r, j]
        first = True
        for c in range(conns.shape[0]):
            if conns[c, 1] != l:
                continue
            pre = conns[c, 0]
            npre = meta[pre, M_N]
            w = W[conns[c, 2]:conns[c, 3]].reshape((npre, n))
            _affine(_block(acts, offs[pre], T * B, npre), w, W[conns[c, 3]:conns[c, 4]], x,
                    not first, tmp)
            first = False
        if first and l > 0:
            x[:] = 0.0
        if not rec and not stateful:
            _nonlinearity(code, prm[l], x, a_l, d_l, deriv, f, df)
            continue
        x3 = x.reshape((T, B, n))
        a3 = a_l.reshape((T, B, n))
        d3 = d_l.reshape((T, B, n))
        if rec:
            wr = W[meta[l, M_RSTART]:meta[l, M_RMID]].reshape((n, n))
            br = W[meta[l, M_RMID]:meta[l, M_REND]]
        else:
            wr = W[0:0].reshape((0, 0))
            br = W[0:0]
        coeff = _cast(acts, prm[l, 4])
        s = _block(init_state, ioff[l], B, n).copy()
        for t in range(T):
            xt = x3[t]
            if rec:
                if t > 0:
                    _mm(a3[t - 1], False, wr, False, xt, True, tmp)
                else:
                    _mm(_block(init_act, ioff[l], B, n), False, wr, False, xt, True, tmp)
                    _add_bias(xt, br)
            if stateful:
                for r in range(B):
                    for j in range(n):
                        s[r, j] = s[r, j] + coeff * (xt[r, j] - s[r, j])
                _nonlinearity(code, prm[l], s, a3[t], d3[t], deriv, f, df)
            else:
                _nonlinearity(code, prm[l], xt, a3[t], d3[t], deriv, f, df)


# ---------------------------------------------------------------------- backward
@njit(cache=True)
def _offsets(meta, rows):
    L = meta.shape[0]
    offs = np.zeros(L + 1, np.int64)
    for l in range(L):
        offs[l + 1] = offs[l] + rows * meta[l, M_N]
    return offs


@njit(cache=True)
def backward(W, meta, prm, conns, T, B, acts, ds, dact, d2, scale, curvature, present,
             init_act, windows, grad, dx, dxw, tmp):
    """Gradient of ``sum(c * a)`` with respect to ``W`` (truncated BPTT), into ``grad``.

    ``c = dact`` (or ``d2 * dact * scale`` if ``curvature``) time-major, for the layers
    where ``present[l]`` is set; ``windows`` rows are ``(low, first_injected, end)``.
    ``dx`` and ``dxw`` are work buffers shaped like ``acts`` (the same array when there
    is a single window); ``tmp`` one of at least ``T * B * max(n)`` elements.
    """
    offs = _offsets(meta, T * B)
    ioff = _offsets(meta, B)
    single = windows.shape[0] == 1
    if not single:
        dx[:] = 0.0
    for iw in range(windows.shape[0]):
        _backward_window(W, meta, prm, conns, T, B, acts, ds, dact, d2, scale, curvature,
                         present, windows[iw, 0], windows[iw, 1], windows[iw, 2], single, dx,
                         dxw, tmp)
    _weight_gradient(meta, conns, T, B, acts, dx, init_act, offs, ioff, grad, tmp)


@register_jitable(cache=True)
def _backward_window(W, meta, prm, conns, T, B, acts, ds, dact, d2, scale, curvature, present,
                     low, first, end, single, dx, dxw, tmp):
    """Back-propagate one window ``(low, first_injected, end)``; add its dE/dx into ``dx``."""
    L = meta.shape[0]
    offs = _offsets(meta, T * B)
    nt = end - low
    for l in range(L - 1, 0, -1):
        n = meta[l, M_N]
        e = dxw[offs[l] + low * B * n:offs[l] + end * B * n].reshape((nt * B, n))
        filled = False
        if present[l]:
            flat = e.reshape(nt * B * n)
            skip = (first - low) * B * n
            flat[:skip] = 0.0
            base = offs[l] + first * B * n
            if curvature:
                for i in range(skip, nt * B * n):
                    flat[i] = d2[base + i - skip] * dact[base + i - skip] * scale
            else:
                for i in range(skip, nt * B * n):
                    flat[i] = dact[base + i - skip]
            filled = True
        for c in range(conns.shape[0]):
            if conns[c, 0] != l:
                continue
            post = conns[c, 1]
            npost = meta[post, M_N]
            w = W[conns[c, 2]:conns[c, 3]].reshape((n, npost))
            dpost = dxw[offs[post] + low * B * npost:
                        offs[post] + end * B * npost].reshape((nt * B, npost))
            _mm(dpost, False, w, True, e, filled, tmp)
            filled = True
        if not filled:
            e[:] = 0.0
        code = meta[l, M_CODE]
        rec = meta[l, M_REC] != 0
        stateful = meta[l, M_STATEFUL] != 0
        a_w = acts[offs[l] + low * B * n:offs[l] + end * B * n].reshape((nt * B, n))
        d_w = ds[offs[l] + low * B * n:offs[l] + end * B * n].reshape((nt * B, n))
        if not rec and not stateful:
            _jac(code, a_w, d_w, e, e)
        else:
            e3 = e.reshape((nt, B, n))
            a3 = a_w.reshape((nt, B, n))
            d3 = d_w.reshape((nt, B, n))
            if rec:
                wr = W[meta[l, M_RSTART]:meta[l, M_RMID]].reshape((n, n))
            else:
                wr = W[0:0].reshape((0, 0))
            coeff = _cast(acts, prm[l, 4])
            keep = _cast(acts, 1.0) - coeff
            carry = np.zeros((B, n), acts.dtype)
            jt = np.empty((B, n), acts.dtype)
            fuse = rec and not stateful and code != SOFTMAX
            tv = tmp[:B * n].reshape((B, n))
            for t in range(nt - 1, -1, -1):
                et = e3[t]
                if fuse and t < nt - 1:
                    # dx[t] = f'(x) * (e[t] + dx[t+1] @ W_rec.T), in one pass
                    _gemm(e3[t + 1], False, wr, True, tv)
                    dt = d3[t]
                    for r in range(B):
                        for j in range(n):
                            et[r, j] = dt[r, j] * (et[r, j] + tv[r, j])
                    continue
                if rec and t < nt - 1:
                    _mm(e3[t + 1], False, wr, True, et, True, tmp)
                if stateful:
                    _jac(code, a3[t], d3[t], et, jt)
                    for r in range(B):
                        for j in range(n):
                            dsv = jt[r, j] + carry[r, j]
                            et[r, j] = coeff * dsv
                            carry[r, j] = keep * dsv
                else:
                    _jac(code, a3[t], d3[t], et, et)
        if not single:
            tot = dx[offs[l] + low * B * n:offs[l] + end * B * n]
            flat = e.reshape(nt * B * n)
            for i in range(nt * B * n):
                tot[i] += flat[i]


@njit(cache=True)
def _weight_gradient(meta, conns, T, B, acts, dx, init_act, offs, ioff, grad, tmp):
    for c in range(conns.shape[0]):
        pre, post = conns[c, 0], conns[c, 1]
        npre, npost = meta[pre, M_N], meta[post, M_N]
        gw = grad[conns[c, 2]:conns[c, 3]].reshape((npre, npost))
        gb = grad[conns[c, 3]:conns[c, 4]]
        d = _block(dx, offs[post], T * B, npost)
        _mm(_block(acts, offs[pre], T * B, npre), True, d, False, gw, False, tmp)
        _colsum(d, gb)
    for l in range(1, meta.shape[0]):
        if meta[l, M_REC] == 0:
            continue
        n = meta[l, M_N]
        gw = grad[meta[l, M_RSTART]:meta[l, M_RMID]].reshape((n, n))
        gb = grad[meta[l, M_RMID]:meta[l, M_REND]]
        d0 = _block(dx, offs[l], B, n)
        _mm(_block(init_act, ioff[l], B, n), True, d0, False, gw, False, tmp)
        if T > 1:
            _mm(_block(acts, offs[l], (T - 1) * B, n), True,
                _block(dx, offs[l] + B * n, (T - 1) * B, n), False, gw, True, tmp)
        _colsum(d0, gb)


@njit(cache=True)
def _colsum(d, out):
    out[:] = 0.0
    for r in range(d.shape[0]):
        for j in range(d.shape[1]):
            out[j] += d[r, j]


# ---------------------------------------------------------------------- R-forward and G v
@njit(cache=True)
def r_forward(W, V, meta, prm, conns, T, B, acts, ds, init_act, low, end, ra, scratch, tmp):
    """Fill ``ra`` with R{a} (directional derivative of every activation along ``V``)
    for steps ``low .. end - 1``, the state entering step ``low`` held fixed (a truncation
    window; ``0, T`` for the whole sequence).

    ``scratch`` and ``tmp`` are work buffers of at least ``T * B * max(n)`` elements.
    """
    L = meta.shape[0]
    offs = _offsets(meta, T * B)
    ioff = _offsets(meta, B)
    nt = end - low
    rows = nt * B
    ra[offs[0] + low * B * meta[0, M_N]:offs[0] + end * B * meta[0, M_N]] = 0.0
    for l in range(1, L):
        n = meta[l, M_N]
        rx = scratch[:rows * n].reshape((rows, n))
        code = meta[l, M_CODE]
        rec = meta[l, M_REC] != 0
        stateful = meta[l, M_STATEFUL] != 0
        first = True
        if rec:
            # the recurrent weights' direction, for all steps at once, written first
            # (the largest product: no temporary)
            vr = V[meta[l, M_RSTART]:meta[l, M_RMID]].reshape((n, n))
            if nt > 1:
                _mm(_block(acts, offs[l] + low * B * n, (nt - 1) * B, n), False, vr, False,
                    rx[B:], False, tmp)
            if low == 0:
                _affine(_block(init_act, ioff[l], B, n), vr,
                        V[meta[l, M_RMID]:meta[l, M_REND]], rx[:B], False, tmp)
            else:
                _mm(_block(acts, offs[l] + (low - 1) * B * n, B, n), False, vr, False, rx[:B],
                    False, tmp)
            first = False
        for c in range(conns.shape[0]):
            if conns[c, 1] != l:
                continue
            pre = conns[c, 0]
            npre = meta[pre, M_N]
            vw = V[conns[c, 2]:conns[c, 3]].reshape((npre, n))
            _affine(_block(acts, offs[pre] + low * B * npre, rows, npre), vw,
                    V[conns[c, 3]:conns[c, 4]], rx, not first, tmp)
            first = False
            if pre > 0:
                w = W[conns[c, 2]:conns[c, 3]].reshape((npre, n))
                _mm(_block(ra, offs[pre] + low * B * npre, rows, npre), False, w, False, rx,
                    True, tmp)
        a_l = _block(acts, offs[l] + low * B * n, rows, n)
        d_l = _block(ds, offs[l] + low * B * n, rows, n)
        r_l = _block(ra, offs[l] + low * B * n, rows, n)
        if not rec and not stateful:
            _jac(code, a_l, d_l, rx, r_l)
            continue
        if rec:
            wr = W[meta[l, M_RSTART]:meta[l, M_RMID]].reshape((n, n))
        else:
            wr = W[0:0].reshape((0, 0))
        rx3 = rx.reshape((nt, B, n))
        a3 = a_l.reshape((nt, B, n))
        d3 = d_l.reshape((nt, B, n))
        r3 = r_l.reshape((nt, B, n))
        coeff = _cast(acts, prm[l, 4])
        keep = _cast(acts, 1.0) - coeff
        rs = np.zeros((B, n), acts.dtype)
        fuse = rec and not stateful and code != SOFTMAX
        tv = tmp[:B * n].reshape((B, n))
        for t in range(nt):
            xt = rx3[t]
            if fuse and t > 0:
                # R{a}[t] = f'(x) * (R{x} + R{a}[t-1] @ W_rec), in one pass
                _gemm(r3[t - 1], False, wr, False, tv)
                rt = r3[t]
                dt = d3[t]
                for r in range(B):
                    for j in range(n):
                        rt[r, j] = dt[r, j] * (xt[r, j] + tv[r, j])
                continue
            if rec and t > 0:
                _mm(r3[t - 1], False, wr, False, xt, True, tmp)
            if stateful:
                for r in range(B):
                    for j in range(n):
                        rs[r, j] = coeff * xt[r, j] + keep * rs[r, j]
                _jac(code, a3[t], d3[t], rs, r3[t])
            else:
                _jac(code, a3[t], d3[t], xt, r3[t])


@njit(cache=True)
def gauss_newton(W, V, meta, prm, conns, T, B, acts, ds, d2, present, scale, init_act,
                 windows, out, ra, dx, dxw, scratch, tmp):
    """``out = G V``: R-forward, curvature ``d2 * scale`` and backward in one call.

    With truncation ``G = sum_w J_w^T H J_w`` over the windows, ``J_w`` the Jacobian of
    the window's activations with the state entering the window held fixed (the same
    truncation as the gradient's; the NumPy reference defines it the same way).
    """
    offs = _offsets(meta, T * B)
    ioff = _offsets(meta, B)
    single = windows.shape[0] == 1
    if not single:
        dx[:] = 0.0
    for iw in range(windows.shape[0]):
        low, first, end = windows[iw, 0], windows[iw, 1], windows[iw, 2]
        r_forward(W, V, meta, prm, conns, T, B, acts, ds, init_act, low, end, ra, scratch,
                  tmp)
        _backward_window(W, meta, prm, conns, T, B, acts, ds, ra, d2, scale, True, present,
                         low, first, end, single, dx, dxw, tmp)
    _weight_gradient(meta, conns, T, B, acts, dx, init_act, offs, ioff, out, tmp)


# ====================================================================== Python glue
# (plain Python: builds the array description of a net and calls the kernels once per
# operation; nothing here runs per time step)

def _builtin_code(layer) -> int | None:
    """The kernel code of a built-in nonlinearity, or None if it is not compilable."""
    from . import nonlinearities as nl

    exact = {nl.Linear: 0, nl.Tanh: 1, nl.Logistic: 2, nl.ReLU: 3, nl.Gaussian: 4,
             nl.Softmax: 5, nl.SoftLIF: 6}
    return exact.get(type(layer))


def layer_params(layer) -> tuple[int, int, list[float]] | None:
    """``(code, stateful, params[5])`` of a layer, or None if it needs the NumPy path."""
    from . import nonlinearities as nl

    stateful = 0
    coeff = 0.0
    if type(layer) is nl.Continuous:
        stateful, coeff, layer = 1, layer.coeff, layer.base
    code = _builtin_code(layer)
    if code is None and _user_kernels(layer) is not None:
        code = USER
    if code is None or (stateful and code == SOFTMAX):
        return None
    p = [0.0, 0.0, 0.0, 0.0, coeff]
    if code == RELU:
        p[0] = layer.max
    elif code == SOFTLIF:
        p[:4] = [layer.sigma, layer.tau_rc, layer.tau_ref, layer.amp]
    return code, stateful, p


def _user_kernels(layer):
    """``(njit_activation, njit_d_activation)`` of a user's element-wise nonlinearity, or None."""
    f = getattr(layer, "njit_activation", None)
    df = getattr(layer, "njit_d_activation", None)
    if f is None or df is None or not layer.elementwise or layer.stateful:
        return None
    return f, df


def _user_pairs(net) -> set:
    from . import nonlinearities as nl

    pairs = set()
    for layer in net.layers:
        if type(layer) is nl.Continuous:
            layer = layer.base
        if _builtin_code(layer) is None:
            pair = _user_kernels(layer)
            if pair is not None:
                pairs.add(pair)
    return pairs


class Plan:
    """Array description of a network for the kernels (see the module docstring)."""

    def __init__(self, net):
        rec_layers = getattr(net, "rec_layers", [])
        L = net.n_layers
        self.meta = np.zeros((L, N_META), np.int64)
        self.prm = np.zeros((L, 5), np.float64)
        for l, layer in enumerate(net.layers):
            code, stateful, p = layer_params(layer)
            self.meta[l, M_N] = net.shape[l]
            self.meta[l, M_CODE] = code
            self.meta[l, M_STATEFUL] = stateful
            self.prm[l] = p
            if l in rec_layers:
                self.meta[l, M_REC] = 1
                self.meta[l, M_RSTART:M_REND + 1] = net.offsets[(l, l)]
        ff = [(pre, post) for pre, posts in net.conns.items() for post in posts]
        self.conns = np.array([[pre, post, *net.offsets[(pre, post)]] for pre, post in ff],
                              np.int64).reshape(-1, 5)
        self.sizes = list(net.shape)
        self.recurrent = bool(np.any(self.meta[:, M_REC] != 0))
        pairs = _user_pairs(net)
        self.user = next(iter(pairs)) if pairs else None
        self._offsets: dict[int, np.ndarray] = {}
        self._zeros: dict = {}

    def offsets(self, rows: int) -> np.ndarray:
        offs = self._offsets.get(rows)
        if offs is None:
            offs = np.concatenate([[0], np.cumsum(np.asarray(self.sizes, np.int64) * rows)])
            self._offsets[rows] = offs
        return offs

    def zeros(self, B: int, dtype) -> np.ndarray:
        """A shared all-zero ``[B, n]``-per-layer block (the default initial values; the
        kernels never write their ``init_act``/``init_state``)."""
        key = (B, np.dtype(dtype))
        buf = self._zeros.get(key)
        if buf is None:
            buf = np.zeros(int(self.offsets(B)[-1]), dtype)
            self._zeros[key] = buf
        return buf


def _layer_key(layer) -> tuple:
    """Everything :class:`Plan` reads from a layer: its type, numeric parameters
    (``ReLU.max``, SoftLIF's constants, ``Continuous.coeff``...), flags, user kernels and,
    for a ``Continuous``, the same of its base."""
    d = layer.__dict__
    key = (type(layer), d.get("stateful"), d.get("elementwise"),
           getattr(layer, "njit_activation", None), getattr(layer, "njit_d_activation", None),
           *[v for v in d.values() if isinstance(v, int | float | np.number)])
    base = d.get("base")
    return key if base is None else key + _layer_key(base)


def plan_for(net) -> Plan | None:
    """The net's :class:`Plan`, or None if a layer has no compiled kernel.

    Cached on the net and rebuilt when a layer is replaced or one of its parameters
    changes (:func:`_layer_key`); sizes, connections and recurrent layers are fixed
    when a network is constructed. Truncation and backend are not part of a Plan.
    """
    key = tuple([_layer_key(layer) for layer in net.layers])
    cached = net.__dict__.get("_plan_cache")
    if cached is not None and cached[0] == key:
        return cached[1]
    plan = Plan(net) if _compilable(net) else None
    net.__dict__["_plan_cache"] = (key, plan)
    return plan


def compilable(net) -> bool:
    """True if every layer of ``net`` has a compiled kernel.

    Built-in nonlinearities always do; a user's element-wise nonlinearity does if it
    has ``njit_activation(x)`` and ``njit_d_activation(x, a)`` (numba-jitted scalar
    functions), and at most one such pair is used per network.
    """
    return plan_for(net) is not None


def _compilable(net) -> bool:
    return (all(layer_params(layer) is not None for layer in net.layers)
            and len(_user_pairs(net)) <= 1)


def pack(plan: Plan, layers, T: int, B: int, dtype, batch_major: bool):
    """Per-layer arrays (``None`` allowed) into one flat time-major buffer and a presence mask."""
    offs = plan.offsets(T * B)
    buf = np.zeros(int(offs[-1]), dtype)
    present = np.zeros(len(plan.sizes), np.int64)
    for l, arr in enumerate(layers):
        if arr is None:
            continue
        present[l] = 1
        view = buf[offs[l]:offs[l + 1]].reshape(T, B, plan.sizes[l])
        view[:] = arr.transpose(1, 0, 2) if batch_major else arr.reshape(1, B, -1)
    return buf, present


def unpack(plan: Plan, buf, T: int, B: int, recurrent: bool) -> list[np.ndarray]:
    """Per-layer views ``[B, T, n]`` (recurrent) or ``[B, n]`` of a flat time-major buffer."""
    offs = plan.offsets(T * B)
    out = []
    for l, n in enumerate(plan.sizes):
        view = buf[offs[l]:offs[l + 1]].reshape(T, B, n)
        out.append(view.transpose(1, 0, 2) if recurrent else view[0])
    return out


def init_block(plan: Plan, values, B: int, dtype) -> np.ndarray:
    """Per-layer ``[B, n]`` initial values (None entries allowed) as one flat buffer
    (a shared zero block when all are None)."""
    if values is None or all(value is None for value in values):
        return plan.zeros(B, dtype)
    offs = plan.offsets(B)
    buf = np.zeros(int(offs[-1]), dtype)
    if values is not None:
        for l, value in enumerate(values):
            if value is not None:
                buf[offs[l]:offs[l + 1]] = np.asarray(value, dtype).reshape(-1)
    return buf


def run_forward(plan: Plan, W, inputs_tm, T: int, B: int, init_act, init_state,
                deriv: bool = True, work=None):
    """Compiled forward pass; returns flat ``(acts, ds)`` buffers (``ds`` is None unless
    ``deriv``).

    ``work``: optional ``(xbuf, tmp)`` work buffers of at least ``T * B * max(n)``
    elements each, reused instead of allocated.

    A recurrent forward pass runs its BLAS on one thread: between two per-step products
    the nonlinearity keeps the BLAS workers idle, and waking them again cost more than
    they saved (measured here on a loaded 2-core machine: 0.13 to 1.2 s with two threads
    for rnn-large, 0.16 s with one).
    """
    total = int(plan.offsets(T * B)[-1])
    acts = np.empty(total, W.dtype)
    ds = np.empty(total, W.dtype) if deriv else None
    need = T * B * max(plan.sizes)
    if work is None or work[0].size < need or work[1].size < need:
        work = (np.empty(need, W.dtype), np.empty(need, W.dtype))
    if not (inputs_tm.flags.c_contiguous and inputs_tm.flags.writeable):
        inputs_tm = np.array(inputs_tm, order="C")  # one array type for the kernel
    with _kernel_blas_threads(1 if T > 1 and plan.recurrent else None):
        if plan.user is None:
            forward(W, plan.meta, plan.prm, plan.conns, T, B, inputs_tm, acts,
                    acts if ds is None else ds, deriv, init_act, init_state, *work)
        else:
            forward_user(W, plan.meta, plan.prm, plan.conns, T, B, inputs_tm, acts,
                         acts if ds is None else ds, deriv, init_act, init_state, *work,
                         *plan.user)
    return acts, ds


_KERNEL_BLAS = []


def _kernel_blas_lib():
    """``(get, set)`` thread functions of the BLAS that np.dot inside @njit calls (scipy's
    OpenBLAS), or None."""
    if not _KERNEL_BLAS:
        funcs = None
        try:
            import ctypes
            import glob
            import os

            import scipy

            root = os.path.dirname(os.path.dirname(scipy.__file__))
            for path in glob.glob(os.path.join(root, "scipy.libs", "*openblas*.so*")):
                lib = ctypes.CDLL(path)
                for prefix in ("scipy_openblas_", "openblas_", "scipy_openblas64_"):
                    get = getattr(lib, prefix + "get_num_threads", None)
                    put = getattr(lib, prefix + "set_num_threads", None)
                    if get is not None and put is not None:
                        funcs = (get, put)
                        break
                if funcs:
                    break
        except Exception:  # noqa: BLE001 - thread control is an optimisation only
            funcs = None
        _KERNEL_BLAS.append(funcs)
    return _KERNEL_BLAS[0]


class _kernel_blas_threads:
    """Context manager: run the kernels' BLAS on ``n`` threads (None: leave as is)."""

    def __init__(self, n):
        self.n = n
        self.old = None

    def __enter__(self):
        lib = _kernel_blas_lib() if self.n is not None else None
        if lib is not None:
            self.old = lib[0]()
            if self.old != self.n:
                lib[1](int(self.n))
            else:
                self.old = None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            _kernel_blas_lib()[1](int(self.old))
        return False


def windows_array(windows) -> np.ndarray:
    return np.asarray(windows, np.int64).reshape(-1, 3)


def set_num_threads(n: int) -> dict[str, int]:
    """Set the threads used by Numba and, if ``threadpoolctl`` is installed, by BLAS.

    Returns the settings in effect (``numba`` and ``blas``; ``blas`` is -1 when it
    cannot be controlled from here -- set ``OPENBLAS_NUM_THREADS`` before starting Python).
    """
    import numba

    numba.set_num_threads(int(n))
    blas = -1
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(n), user_api="blas")
        blas = int(n)
    except ImportError:
        lib = _kernel_blas_lib()
        if lib is not None:
            lib[1](int(n))
            blas = int(n)
    return {"numba": numba.get_num_threads(), "blas": blas}


def thread_info() -> dict[str, int]:
    """Threads available to Numba and to BLAS (-1 if unknown)."""
    import os

    import numba

    blas = -1
    try:
        from threadpoolctl import threadpool_info

        blas = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
                   default=-1)
    except ImportError:
        lib = _kernel_blas_lib()
        if lib is not None:
            blas = int(lib[0]())
        else:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                if os.environ.get(var):
                    blas = int(os.environ[var])
                    break
    return {"numba": numba.get_num_threads(), "blas": blas}
