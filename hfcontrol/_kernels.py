"""Numba-compiled forward pass, gradient and Gauss-Newton product for FFNet and RNNet.

The network is described to the kernels as plain arrays (see ``../shared/DESIGN.md``):

* ``meta[l]`` (int64, one row per layer): ``n`` units, recurrent flag, nonlinearity code,
  stateful flag, and the recurrent connection's ``(start, mid, end)`` offsets into ``W``
  (zeros for a layer without recurrence);
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

Three kernels are called from Python: :func:`forward`, :func:`backward` (gradient and
``G v``) and, for a user's element-wise nonlinearity, :func:`forward_user`. They and their
helpers are module-level functions that call each other by name and branch on integer
nonlinearity codes, so that the on-disk cache is reused across processes. Losses are not
compiled: they have no time loop and are evaluated by vectorised NumPy over whole arrays.

Compile time (a first call compiles every kernel of a dtype) is kept down by:

* helpers decorated with :data:`_helper` (``register_jitable``): numba types a call to them
  with the arguments' non-literal types first, so a helper is compiled once per dtype
  whatever constants (``True``, ``0``) its callers pass -- an ``@njit`` function is
  compiled again for every combination of literal arguments -- and it gets no Python
  wrapper, which only the kernels called from Python need;
* matrix products by :func:`_gemm`, a direct BLAS call taking transposition flags, instead
  of ``np.dot`` on transposed views (one specialisation per combination of layouts);
* views of the flat buffers made by :func:`_block`/:func:`_steps`: every ``reshape`` costs
  numba tens of milliseconds to compile where it is written, a call of a helper a few;
* no array-to-array slice assignment (``x[:] = y`` compiles numba's formatting of its
  shape-mismatch error message, several seconds): explicit loops instead;
* a shallow call graph: each caller re-optimises the code of everything it calls, so the
  forward pass is one function (compiled twice, see :func:`_forward`) and the gradient and
  ``G v`` share one kernel.
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

#: Decorator of the functions called only from compiled code (see the module docstring);
#: cached on disk too, for :func:`forward_user`, which is compiled in every process.
_helper = register_jitable(cache=True)


# ---------------------------------------------------------------------- small helpers
@_helper
def _block(buf, off, rows, n):
    """Rows ``[rows, n]`` of a flat buffer starting at ``off`` (a contiguous view)."""
    return buf[off:off + rows * n].reshape((rows, n))


@_helper
def _steps(x, nt, rows):
    """A ``[nt * rows, n]`` block as ``[nt, rows, n]``: one ``[rows, n]`` matrix per step."""
    return x.reshape((nt, rows, x.shape[1]))


@_helper
def _flat(x):
    """A contiguous array as a 1-D view."""
    return x.reshape(x.size)


@_helper
def _offsets(meta, rows):
    """Offsets of the layers' ``[rows, n]`` blocks in a flat buffer (``L + 1`` entries)."""
    L = meta.shape[0]
    offs = np.empty(L + 1, np.int64)
    offs[0] = 0
    for l in range(L):
        offs[l + 1] = offs[l] + rows * meta[l, M_N]
    return offs


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


@_helper
def _mm(a, ta, b, tb, c, acc, tmp):
    """``c += op(a) @ op(b)`` if ``acc`` else ``c = op(a) @ op(b)`` (see :func:`_gemm`).

    ``tmp`` is a flat work buffer of at least ``c.size`` elements for the product when
    accumulating, so that nothing is allocated (large fresh allocations page-fault).
    """
    rows, cols = c.shape
    if rows == 0 or cols == 0:
        return
    if (a.shape[0] if ta else a.shape[1]) == 0:
        if not acc:
            c[:] = 0.0
        return
    if not acc:
        _gemm(a, ta, b, tb, c)
        return
    t = _block(tmp, 0, rows, cols)
    _gemm(a, ta, b, tb, t)
    for r in range(rows):
        for j in range(cols):
            c[r, j] += t[r, j]


@_helper
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


@_helper
def _add_bias(x, b):
    for r in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[r, j] += b[j]


@_helper
def _colsum(d, out):
    out[:] = 0.0
    for r in range(d.shape[0]):
        for j in range(d.shape[1]):
            out[j] += d[r, j]


# ---------------------------------------------------------------------- nonlinearities
@_helper
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


@_helper
def _logistic(x):
    """Logistic function in float64, accurate in both tails (no ``1 + tanh`` cancellation)."""
    v = np.float64(x)
    if v >= 0:
        return 1.0 / (1.0 + np.exp(-v))
    e = np.exp(v)
    return e / (1.0 + e)


@_helper
def _logistic32(x):
    """:func:`_logistic` in float32 (``expf``: about twice as fast as ``exp``), a few
    float32 ulp from exact in both tails."""
    v = np.float32(x)
    one = np.float32(1.0)
    if v >= 0:
        return one / (one + np.exp(-v))
    e = np.exp(v)
    return e / (one + e)


@_helper
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


@register_jitable(cache=True, error_model="numpy")
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
    one = a.dtype.type(1.0)
    if code == TANH and a.itemsize == 4:
        # the whole (contiguous) block in one vectorised loop
        _tanh_row32(_flat(x), _flat(a), _flat(d), deriv)
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


@_helper
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


# ---------------------------------------------------------------------- forward
def _forward(W, meta, prm, conns, T, B, inputs, acts, ds, deriv, init_act, init_state, xbuf,
             tmp, f, df):
    """Fill ``acts`` (and, if ``deriv``, ``ds``) of every layer from time-major
    ``inputs [T * B, n0]``.

    ``init_act``/``init_state`` are flat buffers with one ``[B, n]`` block per layer
    (zeros where unused). For stateful layers ``ds`` holds ``base'(s)``. ``xbuf`` and
    ``tmp`` are work buffers of at least ``T * B * max(n)`` elements; ``ds`` is not
    touched (it may be ``acts``) when ``deriv`` is false. ``f``/``df`` are the user's
    element-wise kernels for the layers of code USER, or None.

    One body, compiled twice: :func:`forward` (``f = df = None``, all layers built-in) is
    cached on disk; :func:`forward_user` takes the user's kernels and is compiled again in
    every process, as numba cannot cache a function that receives jitted functions.
    """
    L = meta.shape[0]
    offs = _offsets(meta, T * B)
    ioff = _offsets(meta, B)
    for l in range(L):
        n = meta[l, M_N]
        a_l = _block(acts, offs[l], T * B, n)
        d_l = _block(ds, offs[l], T * B, n) if deriv else a_l
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
            _affine(_block(acts, offs[pre], T * B, npre), _block(W, conns[c, 2], npre, n),
                    W[conns[c, 3]:conns[c, 4]], x, not first, tmp)
            first = False
        if first and l > 0:
            x[:] = 0.0
        # a layer without recurrence or state is a single step of T * B rows
        nt, rows = (T, B) if rec or stateful else (1, T * B)
        x3 = _steps(x, nt, rows)
        a3 = _steps(a_l, nt, rows)
        d3 = _steps(d_l, nt, rows)
        nr = n if rec else 0
        wr = _block(W, meta[l, M_RSTART], nr, nr)
        br = W[meta[l, M_RMID]:meta[l, M_REND]]
        coeff = acts.dtype.type(prm[l, 4])
        s = _block(init_state, ioff[l], B, n).copy() if stateful else x3[0]
        for t in range(nt):
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
                xt = s
            at = a3[t]
            dt = d3[t]
            # ``f is None`` (the cached :func:`forward`) is decided at compile time: numba
            # prunes the user's branch, so no function value reaches the cached kernel
            if f is None or code != USER:
                _elementwise(code, prm[l], xt, at, dt, deriv)
            else:
                for r in range(rows):
                    for j in range(n):
                        at[r, j] = f(xt[r, j])
                    if deriv:
                        for j in range(n):
                            dt[r, j] = df(xt[r, j], at[r, j])


forward = njit(cache=True)(_forward)
forward_user = njit(_forward)


# ---------------------------------------------------------------------- backward and G v
@_helper
def _backward_window(W, meta, prm, conns, T, B, acts, ds, c, d2, scale, curvature, present,
                     low, first, end, single, dx, dxw, tmp):
    """Back-propagate one window ``(low, first_injected, end)`` of ``c`` (or, if
    ``curvature``, of ``d2 * c * scale``) injected into the layers where ``present[l]`` is
    set from step ``first_injected`` on; add its dE/dx into ``dx``."""
    L = meta.shape[0]
    offs = _offsets(meta, T * B)
    nt = end - low
    rows = nt * B
    for l in range(L - 1, 0, -1):
        n = meta[l, M_N]
        start = offs[l] + low * B * n
        stop = offs[l] + end * B * n
        e = _block(dxw, start, rows, n)
        filled = False
        if present[l]:
            inject = offs[l] + first * B * n
            dxw[start:inject] = 0.0
            if curvature:
                for i in range(inject, stop):
                    dxw[i] = d2[i] * c[i] * scale
            else:
                for i in range(inject, stop):
                    dxw[i] = c[i]
            filled = True
        for k in range(conns.shape[0]):
            if conns[k, 0] != l:
                continue
            post = conns[k, 1]
            npost = meta[post, M_N]
            _mm(_block(dxw, offs[post] + low * B * npost, rows, npost), False,
                _block(W, conns[k, 2], n, npost), True, e, filled, tmp)
            filled = True
        if not filled:
            e[:] = 0.0
        code = meta[l, M_CODE]
        rec = meta[l, M_REC] != 0
        stateful = meta[l, M_STATEFUL] != 0
        a_w = _block(acts, start, rows, n)
        d_w = _block(ds, start, rows, n)
        if not rec and not stateful:
            _jac(code, a_w, d_w, e, e)
        else:
            e3 = _steps(e, nt, B)
            a3 = _steps(a_w, nt, B)
            d3 = _steps(d_w, nt, B)
            nr = n if rec else 0
            wr = _block(W, meta[l, M_RSTART], nr, nr)
            coeff = acts.dtype.type(prm[l, 4])
            keep = acts.dtype.type(1.0) - coeff
            carry = np.empty((B, n), acts.dtype)
            carry[:] = 0.0
            jt = np.empty((B, n), acts.dtype)
            fuse = rec and not stateful and code != SOFTMAX
            tv = _block(tmp, 0, B, n)
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
            for i in range(start, stop):
                dx[i] += dxw[i]


@_helper
def _weight_gradient(meta, conns, T, B, acts, dx, init_act, offs, ioff, grad, tmp):
    """``grad`` of every weight and bias from the layers' dE/dx ``dx``."""
    for c in range(conns.shape[0]):
        pre, post = conns[c, 0], conns[c, 1]
        npre, npost = meta[pre, M_N], meta[post, M_N]
        d = _block(dx, offs[post], T * B, npost)
        _mm(_block(acts, offs[pre], T * B, npre), True, d, False,
            _block(grad, conns[c, 2], npre, npost), False, tmp)
        _colsum(d, grad[conns[c, 3]:conns[c, 4]])
    for l in range(1, meta.shape[0]):
        if meta[l, M_REC] == 0:
            continue
        n = meta[l, M_N]
        gw = _block(grad, meta[l, M_RSTART], n, n)
        d0 = _block(dx, offs[l], B, n)
        _mm(_block(init_act, ioff[l], B, n), True, d0, False, gw, False, tmp)
        if T > 1:
            _mm(_block(acts, offs[l], (T - 1) * B, n), True,
                _block(dx, offs[l] + B * n, (T - 1) * B, n), False, gw, True, tmp)
        _colsum(d0, grad[meta[l, M_RMID]:meta[l, M_REND]])


@_helper
def _r_forward(W, V, meta, prm, conns, T, B, acts, ds, init_act, low, end, ra, scratch, tmp):
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
        start = offs[l] + low * B * n
        rx = _block(scratch, 0, rows, n)
        code = meta[l, M_CODE]
        rec = meta[l, M_REC] != 0
        stateful = meta[l, M_STATEFUL] != 0
        first = True
        if rec:
            # the recurrent weights' direction, for all steps at once, written first
            # (the largest product: no temporary)
            vr = _block(V, meta[l, M_RSTART], n, n)
            if nt > 1:
                _mm(_block(acts, start, (nt - 1) * B, n), False, vr, False,
                    _block(scratch, B * n, (nt - 1) * B, n), False, tmp)
            rx0 = _block(scratch, 0, B, n)
            if low == 0:
                _affine(_block(init_act, ioff[l], B, n), vr, V[meta[l, M_RMID]:meta[l, M_REND]],
                        rx0, False, tmp)
            else:
                _mm(_block(acts, start - B * n, B, n), False, vr, False, rx0, False, tmp)
            first = False
        for c in range(conns.shape[0]):
            if conns[c, 1] != l:
                continue
            pre = conns[c, 0]
            npre = meta[pre, M_N]
            _affine(_block(acts, offs[pre] + low * B * npre, rows, npre),
                    _block(V, conns[c, 2], npre, n), V[conns[c, 3]:conns[c, 4]], rx, not first,
                    tmp)
            first = False
            if pre > 0:
                _mm(_block(ra, offs[pre] + low * B * npre, rows, npre), False,
                    _block(W, conns[c, 2], npre, n), False, rx, True, tmp)
        a_l = _block(acts, start, rows, n)
        d_l = _block(ds, start, rows, n)
        r_l = _block(ra, start, rows, n)
        if not rec and not stateful:
            _jac(code, a_l, d_l, rx, r_l)
            continue
        nr = n if rec else 0
        wr = _block(W, meta[l, M_RSTART], nr, nr)
        rx3 = _steps(rx, nt, B)
        a3 = _steps(a_l, nt, B)
        d3 = _steps(d_l, nt, B)
        r3 = _steps(r_l, nt, B)
        coeff = acts.dtype.type(prm[l, 4])
        keep = acts.dtype.type(1.0) - coeff
        rs = np.empty((B, n), acts.dtype)
        rs[:] = 0.0
        fuse = rec and not stateful and code != SOFTMAX
        tv = _block(tmp, 0, B, n)
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
def backward(W, V, meta, prm, conns, T, B, acts, ds, c, d2, scale, gv, present, init_act,
             windows, out, ra, dx, dxw, scratch, tmp):
    """Back-propagation through the whole net (truncated BPTT) into ``out``: the gradient
    or, if ``gv``, the Gauss-Newton product.

    * ``gv`` false: the gradient of ``sum(c * a)`` with respect to ``W``, ``c`` time-major
      for the layers where ``present[l]`` is set (``V``, ``d2``, ``ra``, ``scratch``
      unused);
    * ``gv`` true: ``G V`` -- R-forward pass of ``V`` into ``ra``, the curvature
      ``d2 * R{a} * scale`` injected where ``present[l]`` is set, backward (``c`` unused).
      With truncation ``G = sum_w J_w^T H J_w`` over the windows, ``J_w`` the Jacobian of
      the window's activations with the state entering the window held fixed (the same
      truncation as the gradient's; the NumPy reference defines it the same way).

    ``windows`` rows are ``(low, first_injected, end)``. ``dx`` and ``dxw`` are work buffers
    shaped like ``acts`` (the same array when there is a single window), ``scratch`` and
    ``tmp`` ones of at least ``T * B * max(n)`` elements. The gradient and ``G v`` are one
    kernel so that the backward pass, the largest code here, is compiled once.
    """
    offs = _offsets(meta, T * B)
    ioff = _offsets(meta, B)
    single = windows.shape[0] == 1
    if not single:
        dx[:] = 0.0
    for iw in range(windows.shape[0]):
        low, first, end = windows[iw, 0], windows[iw, 1], windows[iw, 2]
        if gv:
            _r_forward(W, V, meta, prm, conns, T, B, acts, ds, init_act, low, end, ra, scratch,
                       tmp)
        _backward_window(W, meta, prm, conns, T, B, acts, ds, ra if gv else c, d2, scale, gv,
                         present, low, first, end, single, dx, dxw, tmp)
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
                    acts if ds is None else ds, deriv, init_act, init_state, *work, None, None)
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
