"""Numba-compiled forward pass, gradient and Gauss-Newton product for FFNet and RNNet.

The network is described to the kernels as plain arrays (see ``../shared/DESIGN.md``):

* ``meta[l]`` (int64, one row per layer): ``n`` units, recurrent flag, nonlinearity code,
  stateful flag, and the recurrent connection's ``(start, mid, end)`` offsets into ``W``
  (zeros for a layer without recurrence);
* ``prm[l]`` (float64): the nonlinearity's parameters (``ReLU.max``; SoftLIF's
  ``sigma, tau_rc, tau_ref, amp``) and, in column 4, ``Continuous.coeff``;
* ``conns[c]`` (int64): ``pre, post, start, mid, end`` of every feedforward connection.

Activations, derivatives, R-activations and loss terms live in flat buffers with one
block per layer; within a layer's block the batch is stored partition by partition (see
:class:`Runner`), each partition time-major, ``[T, Bp, n]`` (:func:`_part_offsets`), so
that a partition's rows of a step, or of a block of steps, are one contiguous matrix. A
feedforward net is the case ``T = 1``, i.e. ``[B, n]``.

Each kernel call works on one partition, over blocks of ``chunk`` steps and, inside a
block, over all layers (connections only go from lower to higher layers and a recurrent
layer only feeds itself): the products that do not depend on the recurrence (input
projections, back-propagated deltas, weight gradients) are one BLAS call per block, and
only a layer's own recurrence (``a[t-1] @ W_rec``, the filter state of a ``Continuous``
layer) runs step by step -- in compiled code. The R-activations of layers without a loss
and all the deltas live only in block-local buffers (:func:`_layout`).

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
* views of the flat buffers made by :func:`_block`/:func:`_steps` (through the
  :func:`_view` intrinsic): every ``reshape`` costs numba tens of milliseconds to compile
  where it is written, a call of a helper a few;
* no array-to-array slice assignment (``x[:] = y`` compiles numba's formatting of its
  shape-mismatch error message, several seconds): explicit loops instead;
* a shallow call graph: each caller re-optimises the code of everything it calls, so the
  forward pass is one function (compiled twice, see :func:`_forward`) and the gradient and
  ``G v`` share one kernel.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, register_jitable
from numba.np import linalg
from numba.np.arrayobj import populate_array

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
@intrinsic
def _view(typingctx, src, off, shape):
    """A C-contiguous view of shape ``shape`` (a tuple of 1 to 3 ints) of the contiguous
    array ``src``, starting at its flat element ``off``; the caller guarantees that it
    fits (:func:`_block` checks).

    numba's ``reshape`` of a slice costs 20-40 ns (it computes and checks strides in
    general code), which the per-step loops paid several times a step; this costs ~1 ns.
    """
    if not isinstance(src, types.Array) or src.layout != "C":
        raise TypingError("_view needs a C-contiguous array (it ignores strides)")
    ndim = len(shape)
    ret = types.Array(src.dtype, ndim, "C")
    sig = ret(src, off, shape)

    def codegen(context, builder, sig, args):
        srcty, _, shapety = sig.args
        arr = linalg.make_array(srcty)(context, builder, args[0])
        out = linalg.make_array(sig.return_type)(context, builder)
        intp = context.get_value_type(types.intp)
        dims = [context.cast(builder, v, t, types.intp)
                for v, t in zip(cgutils.unpack_tuple(builder, args[2]), shapety, strict=True)]
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
            context.get_data_type(srcty.dtype)))
        strides = [itemsize]
        for d in dims[:0:-1]:
            strides.insert(0, builder.mul(strides[0], d))
        start = context.cast(builder, args[1], sig.args[1], types.intp)
        populate_array(out, data=builder.gep(arr.data, [start]),
                       shape=cgutils.pack_array(builder, dims, ty=intp),
                       strides=cgutils.pack_array(builder, strides, ty=intp),
                       itemsize=itemsize, meminfo=arr.meminfo, parent=arr.parent)
        return impl_ret_borrowed(context, builder, sig.return_type, out._getvalue())

    return sig, codegen


@_helper
def _block(buf, off, rows, n):
    """Rows ``[rows, n]`` of a flat buffer starting at ``off`` (a contiguous view)."""
    if off < 0 or rows < 0 or n < 0 or off + rows * n > buf.size:
        raise IndexError("block outside its buffer")
    return _view(buf, off, (rows, n))


@_helper
def _rows(buf, base, t, nt, Bp, n):
    """Steps ``t .. t + nt - 1`` of one partition's ``[T, Bp, n]`` block of a layer at
    ``base`` (see :func:`_part_offsets`), as a contiguous ``[nt * Bp, n]`` view."""
    return _block(buf, base + t * Bp * n, nt * Bp, n)


@_helper
def _part_offsets(meta, T, B, b0):
    """Where one partition's block of each layer starts in a flat activation buffer.

    The buffers hold one block per layer (``T * B * n`` elements), and within it the
    partitions' time-major ``[T, Bp, n]`` blocks one after the other, the partition that
    starts at sample ``b0`` at ``T * b0 * n``. (A feedforward net, ``T = 1``, is simply
    ``[B, n]``.)
    """
    L = meta.shape[0]
    po = _offsets(meta, T * B)
    for l in range(L):
        po[l] += T * b0 * meta[l, M_N]
    return po


@_helper
def _steps(x, nt, rows):
    """A ``[nt * rows, n]`` block as ``[nt, rows, n]``: one ``[rows, n]`` matrix per step."""
    if nt * rows != x.shape[0]:
        raise IndexError("steps do not match the block")
    return _view(x, 0, (nt, rows, x.shape[1]))


@_helper
def _flat(x):
    """A contiguous array as a 1-D view."""
    return _view(x, 0, (x.size,))


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
def _gemm(typingctx, a, ta, b, tb, c, acc):
    """``c = op(a) @ op(b)``, or ``c += op(a) @ op(b)`` if ``acc``, by one BLAS call;
    ``op(x)`` is ``x.T`` if its flag is set.

    ``gemv`` when ``c`` is a single row or column, else ``gemm``, accumulating through
    BLAS's ``beta`` (no temporary). ``a``, ``b``, ``c`` are C-contiguous 2-D arrays of one
    float dtype; the caller guarantees that the shapes agree and that no dimension is 0.
    """
    sig = types.none(a, types.boolean, b, types.boolean, c, types.boolean)

    def codegen(context, builder, sig, args):
        linalg.ensure_blas()
        arrays = [linalg.make_array(t)(context, builder, v)
                  for t, v in zip(sig.args[0:5:2], args[0:5:2], strict=True)]
        (a0, a1), (b0, b1), (m, n) = [cgutils.unpack_tuple(builder, x.shape) for x in arrays]
        pa, pb, pc = [builder.bitcast(x.data, linalg.ll_void_p) for x in arrays]
        ta, tb, acc = args[1], args[3], args[5]
        dtype = sig.args[0].dtype
        char, ptr, intp = linalg.ll_char, linalg.ll_void_p, linalg.intp_t
        kind = ir.Constant(char, ord(linalg.get_blas_kind(dtype)))
        one, zero = [builder.bitcast(linalg.make_constant_slot(context, builder, dtype, v), ptr)
                     for v in (1.0, 0.0)]
        beta = builder.select(acc, one, zero)
        t_, n_ = [ir.Constant(char, ord(x)) for x in "tn"]
        gemv = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.IntType(32), [char, char, intp, intp, ptr, ptr, intp, ptr, ptr, ptr]),
            "numba_xxgemv")
        gemm = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.IntType(32), [char, char, char, intp, intp, intp, ptr, ptr, intp, ptr, intp,
                             ptr, ptr, intp]), "numba_xxgemm")
        k = builder.select(ta, a0, a1)
        with builder.if_else(builder.icmp_signed("==", n, ir.Constant(intp, 1))) as (
                column, other):
            with column:  # op(a) @ vector
                res = builder.call(gemv, (kind, builder.select(ta, n_, t_), a1, a0, one, pa, a1,
                                          pb, beta, pc))
                linalg.check_blas_return(context, builder, res)
            with other:
                with builder.if_else(builder.icmp_signed("==", m, ir.Constant(intp, 1))) as (
                        row, matrix):
                    with row:  # vector @ op(b)
                        res = builder.call(gemv, (kind, builder.select(tb, t_, n_), b1, b0,
                                                  one, pb, b1, pa, beta, pc))
                        linalg.check_blas_return(context, builder, res)
                    with matrix:  # column-major BLAS: c.T = op(b).T @ op(a).T
                        res = builder.call(gemm, (kind, builder.select(tb, t_, n_),
                                                  builder.select(ta, t_, n_), n, m, k, one,
                                                  pb, b1, pa, a1, beta, pc, n))
                        linalg.check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return sig, codegen


#: OpenBLAS (measured here, one thread) has a fast path for small products, up to about
#: 2^20 multiply-adds; above it, a product with a narrow side (at most SKINNY columns or
#: inner dimension) runs 1.5 to 3 times slower ([512, 256] @ [256, 10]: 49 against 72
#: GFLOP/s), and a weight gradient ``a.T @ d`` over many rows slows down too ([256, 2048]
#: @ [2048, 256]: 58 against 94 GFLOP/s at 512 rows). :func:`_mm` splits such products.
SMALL_MACS = 1 << 20
SKINNY = 32
GRADIENT_ROWS = 512


@_helper
def _row_range(a, start, stop):
    """Rows ``start .. stop - 1`` of a C-contiguous 2-D array (a view)."""
    return _view(a, start * a.shape[1], (stop - start, a.shape[1]))


@_helper
def _mm(a, ta, b, tb, c, acc):
    """``c (+)= op(a) @ op(b)`` (see :func:`_gemm`), for any shapes, empty ones included,
    in pieces along the rows where OpenBLAS is faster that way (see ``SMALL_MACS``)."""
    rows, cols = c.shape
    inner = a.shape[0] if ta else a.shape[1]
    if rows == 0 or cols == 0:
        return
    if inner == 0:
        if not acc:
            c[:] = 0.0
        return
    if ta and not tb:
        # a reduction over the rows of a and b (a weight gradient)
        step = GRADIENT_ROWS
        if min(rows, cols) < SKINNY:
            step = max(64, SMALL_MACS // (rows * cols))
        if inner > step:
            for start in range(0, inner, step):
                stop = min(inner, start + step)
                _gemm(_row_range(a, start, stop), True, _row_range(b, start, stop), False, c,
                      acc or start > 0)
            return
    elif not ta and min(cols, inner) < SKINNY and rows * cols * inner > SMALL_MACS:
        # independent rows of a and c
        step = max(64, SMALL_MACS // (cols * inner))
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            _gemm(_row_range(a, start, stop), False, b, tb, _row_range(c, start, stop), acc)
        return
    _gemm(a, ta, b, tb, c, acc)


@_helper
def _affine(a, w, b, c, acc, tmp, ones):
    """``c (+)= a @ w + b`` (see :func:`_product` and :func:`_add_bias`)."""
    _product(a, w, c, acc, tmp)
    _add_bias(c, b, ones)


@_helper
def _product(a, w, c, acc, tmp):
    """``c (+)= a @ w`` by BLAS. With ``beta = 1`` OpenBLAS is twice as slow for a few
    columns as with ``beta = 0`` (measured here: [3200, 16] @ [16, 2], 34 against 17 us),
    so such a product is accumulated through ``tmp`` (at least ``c.size`` elements)."""
    rows, cols = c.shape
    if acc and cols <= 4 and rows > 0 and a.shape[1] > 0:
        t = _block(tmp, 0, rows, cols)
        _mm(a, False, w, False, t, False)
        _add_flat(_flat(c), _flat(t))
    else:
        _mm(a, False, w, False, c, acc)


@_helper
def _add_flat(x, y):
    """``x += y`` over contiguous 1-D arrays (one long loop, vectorised)."""
    for i in range(x.size):
        x[i] += y[i]


@_helper
def _add_bias(x, b, ones):
    """``x += b`` on every row: a loop over long rows, the rank-1 BLAS product ``ones @ b``
    for short ones, where the loop would pay the vectoriser's per-row set-up, several
    times the cost of the row itself."""
    rows, cols = x.shape
    if rows == 0 or cols == 0:
        return
    if cols >= 64:
        for r in range(rows):
            xr = x[r]
            for j in range(cols):
                xr[j] += b[j]
    else:
        _gemm(_block(ones, 0, rows, 1), False, b.reshape((1, cols)), False, x, True)


@_helper
def _add_colsum(d, out, ones):
    """``out += `` the column sums of ``d`` (``d.T @ ones`` by BLAS)."""
    rows, cols = d.shape
    if rows > 0 and cols > 0:
        _gemm(d, True, _block(ones, 0, rows, 1), False, out.reshape((cols, 1)), True)


@intrinsic
def _bits_to_float32(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits`` (a free reinterpretation, which
    LLVM vectorises)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


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


@register_jitable(cache=True, error_model="numpy")
def _logistic_row32(x, a, d, deriv):
    """float32 logistic of a flat array, branch-free so that LLVM vectorises it (numba
    has no vector ``expf``): ``e = exp(-|x|)`` by Cody-Waite range reduction, the Cephes
    ``expf`` polynomial (Moshier 1989; within 1 ulp) and ``2^k`` built from its IEEE bits
    (in two factors, so that ``k`` down to -150 stays normal); then ``1 / (1 + e)`` or
    ``e / (1 + e)``, accurate in both tails. About 1 ns per element against 5 ns for
    the scalar ``expf``."""
    one = np.float32(1.0)
    for i in range(x.shape[0]):
        v = x[i]
        y = -abs(v)
        y = y if y > np.float32(-103.0) else np.float32(-103.0)
        k = np.floor(y * np.float32(1.44269504088896341) + np.float32(0.5))
        r = y - k * np.float32(0.693359375)
        r = r + k * np.float32(2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        p = p * (r * r) + r + one
        ki = np.int32(k)
        k1 = ki >> 1
        e = (p * _bits_to_float32((k1 + np.int32(127)) << 23)
             * _bits_to_float32((ki - k1 + np.int32(127)) << 23))
        s = one / (one + e)
        r = s if v >= 0 else e * s
        a[i] = r if v == v else v  # NaN stays NaN (the clamp above would hide it)
    if deriv:
        for i in range(x.shape[0]):
            d[i] = a[i] * (one - a[i])


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
        r = p * xc / q
        a[j] = r if v == v else v  # NaN stays NaN (the clamps above would hide it)
    if deriv:
        one = np.float32(1.0)
        for j in range(x.shape[0]):
            d[j] = one - a[j] * a[j]


@njit(cache=True)
def _elementwise(code, p, x, a, d, deriv):
    """``a = f(x)`` and, if ``deriv``, ``d = f'(x)`` for an element-wise nonlinearity, over
    contiguous 2-D arrays (``d`` is not touched when ``deriv`` is false). Element-wise codes
    run as one loop over the whole block; Softmax row by row."""
    if code == SOFTMAX:
        # row-wise; its Jacobian is applied from the activations
        rows, n = x.shape
        for r in range(rows):
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
        return
    xf, af, df = _flat(x), _flat(a), _flat(d)
    one = a.dtype.type(1.0)
    if code == TANH and a.itemsize == 4:
        _tanh_row32(xf, af, df, deriv)
    elif code == LOGISTIC and a.itemsize == 4:
        _logistic_row32(xf, af, df, deriv)
    elif code == LINEAR:
        for i in range(xf.size):
            af[i] = xf[i]
        if deriv:
            for i in range(xf.size):
                df[i] = one
    elif code == TANH:
        for i in range(xf.size):
            af[i] = _tanh(xf[i])
        if deriv:
            for i in range(xf.size):
                df[i] = one - af[i] * af[i]
    elif code == LOGISTIC:
        for i in range(xf.size):
            af[i] = _logistic(xf[i])
        if deriv:
            for i in range(xf.size):
                df[i] = af[i] * (one - af[i])
    elif code == RELU:
        top = p[0]
        for i in range(xf.size):
            v = xf[i]
            af[i] = v if v > 0 and v < top else (0.0 if v <= 0 else top)
        if deriv:
            for i in range(xf.size):
                v = xf[i]
                df[i] = one if v > 0 and v < top else 0.0
    elif code == GAUSSIAN:
        for i in range(xf.size):
            v = xf[i]
            e = np.exp(-v * v)
            af[i] = e
            if deriv:
                df[i] = -2 * v * e
    else:  # SOFTLIF
        for i in range(xf.size):
            v, dv = _softlif(p, np.float64(xf[i]))
            af[i] = v
            if deriv:
                df[i] = dv


@_helper
def _jac(code, a, d, v, out):
    """``out = J v`` (= ``J^T v``: all Jacobians here are symmetric) over contiguous 2-D
    arrays; ``out`` may be ``v``."""
    if code == SOFTMAX:
        rows, n = v.shape
        for r in range(rows):
            s = 0.0
            for j in range(n):
                s += a[r, j] * v[r, j]
            for j in range(n):
                out[r, j] = a[r, j] * (v[r, j] - s)
    else:
        df, vf, of = _flat(d), _flat(v), _flat(out)
        for i in range(of.size):
            of[i] = df[i] * vf[i]


@_helper
def _incoming(Wv, meta, conns, l, po, acts, t0, nt, Bp, x, acc, tmp, ones):
    """``x (+)= sum_pre a_pre @ Wv_(pre, l) + b_(pre, l)`` over the connections into layer
    ``l`` for the steps ``t0 .. t0 + nt - 1`` of a partition (``Wv``: the weights, or a
    direction in weight space); returns whether ``x`` now holds a sum."""
    n = meta[l, M_N]
    for c in range(conns.shape[0]):
        if conns[c, 1] != l:
            continue
        pre = conns[c, 0]
        npre = meta[pre, M_N]
        _affine(_rows(acts, po[pre], t0, nt, Bp, npre), _block(Wv, conns[c, 2], npre, n),
                Wv[conns[c, 3]:conns[c, 4]], x, acc, tmp, ones)
        acc = True
    return acc


# ---------------------------------------------------------------------- forward
def _forward(W, meta, prm, conns, T, B, b0, Bp, chunk, inputs, acts, ds, deriv, init_act,
             init_state, xbuf, f, df):
    """Fill ``acts`` (and, if ``deriv``, ``ds``) of every layer, for the samples
    ``b0 .. b0 + Bp - 1`` (a partition of the batch; see :class:`Runner`), from ``inputs``,
    flat, in the same partition-major layout as the buffers.

    Time is processed in blocks of ``chunk`` steps, and every layer of a block before the
    next block, so that the block stays in cache: the layer's feedforward products for the
    whole block first, as single BLAS calls, then its recurrence step by step.
    ``init_act``/``init_state`` are flat buffers with one ``[B, n]`` block per layer (zeros
    where unused). For stateful layers ``ds`` holds ``base'(s)``. ``xbuf`` is a work buffer
    laid out by :func:`_layout` (the forward pass uses its block, ``carry``, ``tmp`` and
    ``ones`` regions); ``ds`` is not touched (it may be ``acts``) when ``deriv`` is false.
    ``f``/``df`` are the user's element-wise kernels for the layers of code USER, or None.

    One body, compiled twice: :func:`forward` (``f = df = None``, all layers built-in) is
    cached on disk; :func:`forward_user` takes the user's kernels and is compiled again in
    every process, as numba cannot cache a function that receives jitted functions.
    """
    L = meta.shape[0]
    inp = _flat(inputs)
    # the filter state of stateful layers (``state``) is carried from block to block
    po, ioff, soff, _, state, _, tmp, ones = _regions(meta, T, B, b0, Bp, chunk, xbuf, False)
    for l in range(L):
        if meta[l, M_STATEFUL] != 0:
            s = _block(state, soff[l], Bp, meta[l, M_N])
            s0 = _block(init_state, ioff[l] + b0 * meta[l, M_N], Bp, meta[l, M_N])
            for r in range(Bp):
                for j in range(meta[l, M_N]):
                    s[r, j] = s0[r, j]
    for t0 in range(0, T, chunk):
        nt = min(chunk, T - t0)
        for l in range(L):
            n = meta[l, M_N]
            code = meta[l, M_CODE]
            rec = meta[l, M_REC] != 0
            stateful = meta[l, M_STATEFUL] != 0
            a_b = _rows(acts, po[l], t0, nt, Bp, n)
            d_b = _rows(ds, po[l], t0, nt, Bp, n) if deriv else a_b
            if l == 0 and not rec:
                x = _rows(inp, T * b0 * n, t0, nt, Bp, n)  # read only
            else:
                x = _block(xbuf, 0, nt * Bp, n)
                if l == 0:
                    xf = _flat(x)
                    x_in = inp[T * b0 * n + t0 * Bp * n:T * b0 * n + (t0 + nt) * Bp * n]
                    for i in range(xf.size):
                        xf[i] = x_in[i]
            if not _incoming(W, meta, conns, l, po, acts, t0, nt, Bp, x, l == 0, tmp, ones):
                x[:] = 0.0
            if not rec and not stateful:
                # the whole block at once
                _activate(code, prm[l], x, a_b, d_b, deriv, f, df)
                continue
            nr = n if rec else 0
            wr = _block(W, meta[l, M_RSTART], nr, nr)
            coeff = acts.dtype.type(prm[l, 4])
            s = _block(state, soff[l], Bp if stateful else 0, n)
            x3 = _steps(x, nt, Bp)
            a3 = _steps(a_b, nt, Bp)
            d3 = _steps(d_b, nt, Bp)
            for i in range(nt):
                t = t0 + i
                xt = x3[i]
                if rec:
                    if t > 0:
                        _gemm(_rows(acts, po[l], t - 1, 1, Bp, n), False, wr, False,
                              xt, True)
                    else:
                        _mm(_block(init_act, ioff[l] + b0 * n, Bp, n), False, wr, False, xt,
                            True)
                        _add_bias(xt, W[meta[l, M_RMID]:meta[l, M_REND]], ones)
                if stateful:
                    sf, xf = _flat(s), _flat(xt)
                    for k in range(sf.size):
                        sf[k] = sf[k] + coeff * (xf[k] - sf[k])
                    xt = s
                _activate(code, prm[l], xt, a3[i], d3[i], deriv, f, df)


@_helper
def _activate(code, p, x, a, d, deriv, f, df):
    """``a = f(x)`` (and ``d = f'(x)``) by the built-in element-wise kernel or, for code
    USER, the user's. ``f is None`` (the cached :func:`forward`) is decided at compile
    time: numba prunes the user's branch, so no function value reaches the cached kernel."""
    if f is None or code != USER:
        _elementwise(code, p, x, a, d, deriv)
    else:
        for r in range(x.shape[0]):
            for j in range(x.shape[1]):
                a[r, j] = f(x[r, j])
            if deriv:
                for j in range(x.shape[1]):
                    d[r, j] = df(x[r, j], a[r, j])


forward = njit(cache=True, nogil=True)(_forward)
forward_user = njit(nogil=True)(_forward)


@_helper
def _regions(meta, T, B, b0, Bp, chunk, scratch, zero_carry):
    """Offsets and scratch regions of one partition's pass: ``(po, ioff, soff, lo, carry,
    jt, tmp, ones)`` -- the partition's layer offsets (:func:`_part_offsets`), those of the
    ``[B, n]`` initial blocks and of ``[Bp, n]`` per-layer blocks, and the regions of
    :func:`_layout` (``ones`` filled; the stateful layers' ``carry`` zeroed if
    ``zero_carry``)."""
    L = meta.shape[0]
    soff = _offsets(meta, Bp)
    lo, c0, j0, tmp0, ones0 = _layout(meta, chunk, Bp)
    carry = scratch[c0:c0 + soff[L]]
    if zero_carry:
        for l in range(L):
            if meta[l, M_STATEFUL] != 0:
                carry[soff[l]:soff[l + 1]] = 0.0
    return (_part_offsets(meta, T, B, b0), _offsets(meta, B), soff, lo, carry,
            scratch[j0:j0 + soff[L]], scratch[tmp0:tmp0 + chunk * Bp * 4],
            _ones(scratch, ones0, chunk * Bp))


# ---------------------------------------------------------------------- backward and G v
@_helper
def _transpose_weights(W, meta, conns, WT):
    """``WT`` holds the transpose of every weight matrix at its place in ``W`` (a ``[post,
    pre]`` block where ``W`` has ``[pre, post]``): the backward products ``delta @ W.T`` are
    then plain products, which BLAS does faster for small matrices."""
    for c in range(conns.shape[0]):
        npre, npost = meta[conns[c, 0], M_N], meta[conns[c, 1], M_N]
        src = _block(W, conns[c, 2], npre, npost)
        dst = _block(WT, conns[c, 2], npost, npre)
        for i in range(npre):
            for j in range(npost):
                dst[j, i] = src[i, j]
    for l in range(meta.shape[0]):
        if meta[l, M_REC] != 0:
            n = meta[l, M_N]
            src = _block(W, meta[l, M_RSTART], n, n)
            dst = _block(WT, meta[l, M_RSTART], n, n)
            for i in range(n):
                for j in range(n):
                    dst[j, i] = src[i, j]


@_helper
def _layout(meta, chunk, Bp):
    """Where things live in a partition's ``scratch`` buffer (:class:`Runner` allocates it):

    ``[0, lo[0])``          a block of one layer's steps, ``chunk * Bp * max(n)``;
    ``[lo[l], lo[l + 1])``  layer ``l``'s block-local buffer of ``chunk + 1`` steps;
    ``carry``               per-layer ``[Bp, n]`` values carried from block to block
                            (filter state, its R{} or its dE/ds), ``Bp * sum(n)``;
    ``jt``                  per-layer ``[Bp, n]`` Jacobian products, ``Bp * sum(n)``;
    ``tmp``                 a product with at most 4 columns, ``chunk * Bp * 4``;
    ``ones``                ``chunk * Bp`` ones, for bias products;
    then, at the very end, the transposed weights (``W.size``).

    Returns ``lo`` (``L + 1`` entries), ``carry``, ``jt``, ``tmp`` and ``ones``.
    """
    L = meta.shape[0]
    width = 0
    total = 0
    for l in range(L):
        width = max(width, meta[l, M_N])
        total += meta[l, M_N]
    lo = np.empty(L + 1, np.int64)
    lo[0] = chunk * Bp * width
    for l in range(L):
        lo[l + 1] = lo[l] + (chunk + 1) * Bp * meta[l, M_N]
    carry = lo[L]
    jt = carry + Bp * total
    tmp = jt + Bp * total
    return lo, carry, jt, tmp, tmp + chunk * Bp * 4


@_helper
def _ones(scratch, start, size):
    """The ``ones`` region of ``scratch``, filled."""
    ones = _flat(_block(scratch, start, size, 1))
    for i in range(size):
        ones[i] = 1.0
    return ones


@_helper
def _rsteps(ra, scratch, present, po, lo, l, t, nt, t0, Bp, n):
    """R{a} of layer ``l`` at steps ``t .. t + nt - 1`` of the block starting at ``t0``:
    in ``ra`` for a layer with a loss (the curvature is injected from it later), else in
    the layer's block-local buffer, whose slot ``t - t0 + 1`` holds step ``t`` (slot 0:
    the last step of the previous block)."""
    if present[l]:
        return _rows(ra, po[l], t, nt, Bp, n)
    return _block(scratch, lo[l] + (t - t0 + 1) * Bp * n, nt * Bp, n)


@_helper
def _copy_slot(buf, src, dst, size):
    for i in range(size):
        buf[dst + i] = buf[src + i]


@_helper
def _r_forward(W, V, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, present, init_act, low,
               end, ra, scratch, tv):
    """R{a} (directional derivative of every activation along ``V``) for steps
    ``low .. end - 1`` of one partition, the state entering step ``low`` held fixed (a
    truncation window; ``0, T`` for the whole sequence). Written into ``ra`` for the layers
    with a loss (``present``); the others' live only while their block is computed.

    Blocks of steps outside, layers inside, as in :func:`_forward`. ``scratch`` holds the
    block of R{x} (``chunk * Bp * max(n)``), the block-local buffers (``(chunk + 1) * Bp *
    sum(n)``) and the R{s} of stateful layers (``Bp * sum(n)``); ``tv`` is ``Bp * max(n)``.
    """
    L = meta.shape[0]
    # R{s} of stateful layers (``state``), carried from block to block
    po, ioff, soff, lo, state, _, tmp, ones = _regions(meta, T, B, b0, Bp, chunk, scratch,
                                                       True)
    for t0 in range(low, end, chunk):
        nt = min(chunk, end - t0)
        for l in range(1, L):
            n = meta[l, M_N]
            code = meta[l, M_CODE]
            rec = meta[l, M_REC] != 0
            stateful = meta[l, M_STATEFUL] != 0
            nr = n if rec else 0
            rx = _block(scratch, 0, nt * Bp, n)
            first = True
            if rec:
                # the recurrent weights' direction for the whole block: a[t - 1] @ V_rec
                vr = _block(V, meta[l, M_RSTART], nr, nr)
                if t0 > 0:
                    _mm(_rows(acts, po[l], t0 - 1, nt, Bp, n), False, vr, False, rx, False)
                else:
                    _affine(_block(init_act, ioff[l] + b0 * n, Bp, n), vr,
                            V[meta[l, M_RMID]:meta[l, M_REND]], _block(scratch, 0, Bp, n),
                            False, tmp, ones)
                    if nt > 1:
                        _mm(_rows(acts, po[l], 0, nt - 1, Bp, n), False, vr, False,
                              _block(scratch, Bp * n, (nt - 1) * Bp, n), False)
                first = False
            if not _incoming(V, meta, conns, l, po, acts, t0, nt, Bp, rx, not first, tmp, ones):
                rx[:] = 0.0  # a layer with no inputs at all
            for c in range(conns.shape[0]):
                pre = conns[c, 0]
                if conns[c, 1] == l and pre > 0:
                    npre = meta[pre, M_N]
                    _product(_rsteps(ra, scratch, present, po, lo, pre, t0, nt, t0, Bp, npre),
                             _block(W, conns[c, 2], npre, n), rx, True, tmp)
            a_b = _rows(acts, po[l], t0, nt, Bp, n)
            d_b = _rows(ds, po[l], t0, nt, Bp, n)
            r_b = _rsteps(ra, scratch, present, po, lo, l, t0, nt, t0, Bp, n)
            if not rec and not stateful:
                _jac(code, a_b, d_b, rx, r_b)
                continue
            wr = _block(W, meta[l, M_RSTART], nr, nr)
            coeff = acts.dtype.type(prm[l, 4])
            keep = acts.dtype.type(1.0) - coeff
            rs = _block(state, soff[l], Bp if stateful else 0, n)
            fuse = rec and not stateful and code != SOFTMAX
            tvb = _block(tv, 0, Bp, n)
            rx3 = _steps(rx, nt, Bp)
            a3 = _steps(a_b, nt, Bp)
            d3 = _steps(d_b, nt, Bp)
            r3 = _steps(r_b, nt, Bp)
            for i in range(nt):
                t = t0 + i
                xt = rx3[i]
                if rec and t > low:
                    prev = _rsteps(ra, scratch, present, po, lo, l, t - 1, 1, t0, Bp, n)
                    if fuse:
                        # R{a}[t] = f'(x) * (R{x} + R{a}[t-1] @ W_rec), in one pass
                        _gemm(prev, False, wr, False, tvb, False)
                        rf, df, xf, tf = _flat(r3[i]), _flat(d3[i]), _flat(xt), _flat(tvb)
                        for k in range(rf.size):
                            rf[k] = df[k] * (xf[k] + tf[k])
                        continue
                    _gemm(prev, False, wr, False, xt, True)
                if stateful:
                    sf, xf = _flat(rs), _flat(xt)
                    for k in range(sf.size):
                        sf[k] = coeff * xf[k] + keep * sf[k]
                    _jac(code, a3[i], d3[i], rs, r3[i])
                else:
                    _jac(code, a3[i], d3[i], xt, r3[i])
        # the last step of the block becomes slot 0 of the next one
        for l in range(1, L):
            if meta[l, M_REC] != 0 and not present[l]:
                size = Bp * meta[l, M_N]
                _copy_slot(scratch, lo[l] + nt * size, lo[l], size)


@_helper
def _backward_window(WT, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, c, d2, scale,
                     curvature, present, init_act, low, first, end, out, scratch, tv):
    """Back-propagate one window ``(low, first_injected, end)`` of one partition and add
    its weight gradient to ``out``; ``WT`` holds the transposed weights
    (:func:`_transpose_weights`).

    ``c`` (or, if ``curvature``, ``d2 * c * scale``) is injected into the layers where
    ``present[l]`` is set, from step ``first_injected`` on. Blocks of ``chunk`` steps are
    processed from the last, and in each the layers from the top: the deltas coming down
    from higher layers (one BLAS call per block), the recurrence step by step, then the
    gradient of the weights into the layer, while the block is still in cache. The deltas
    live in block-local buffers (slot ``t - t0`` holds step ``t``, slot ``nt`` the first
    step of the block after); ``scratch`` is laid out as in :func:`_r_forward`, plus
    ``Bp * sum(n)`` for the Jacobian products of stateful layers.
    """
    L = meta.shape[0]
    # dE/ds of stateful layers (``carry``), carried from block to block, and a Jacobian
    # product (``jtv``)
    po, ioff, soff, lo, carry, jtv, tmp, ones = _regions(meta, T, B, b0, Bp, chunk, scratch,
                                                         True)
    t1 = end
    while t1 > low:
        t0 = max(low, t1 - chunk)
        nt = t1 - t0
        for l in range(L - 1, 0, -1):
            n = meta[l, M_N]
            code = meta[l, M_CODE]
            rec = meta[l, M_REC] != 0
            stateful = meta[l, M_STATEFUL] != 0
            e = _block(scratch, lo[l], nt * Bp, n)
            filled = False
            if present[l]:
                # the error of the block's steps from ``first`` on; zero before
                ef = scratch[lo[l]:lo[l] + nt * Bp * n]
                cf = c[po[l] + t0 * Bp * n:po[l] + (t0 + nt) * Bp * n]
                df = d2[po[l] + t0 * Bp * n:po[l] + (t0 + nt) * Bp * n]
                skip = min(nt, max(0, first - t0)) * Bp * n
                ef[:skip] = 0.0
                # loops from 0 over slices: numba's negative-index check on ``skip + i``
                # would stop LLVM from vectorising them
                ef, cf, df = ef[skip:], cf[skip:], df[skip:]
                if curvature:
                    for i in range(ef.size):
                        ef[i] = df[i] * cf[i] * scale
                else:
                    for i in range(ef.size):
                        ef[i] = cf[i]
                filled = True
            for k in range(conns.shape[0]):
                if conns[k, 0] != l:
                    continue
                post = conns[k, 1]
                npost = meta[post, M_N]
                _product(_block(scratch, lo[post], nt * Bp, npost),
                         _block(WT, conns[k, 2], npost, n), e, filled, tmp)
                filled = True
            if not filled:
                e[:] = 0.0
            a_b = _rows(acts, po[l], t0, nt, Bp, n)
            d_b = _rows(ds, po[l], t0, nt, Bp, n)
            if not rec and not stateful:
                _jac(code, a_b, d_b, e, e)
            else:
                nr = n if rec else 0
                wrt = _block(WT, meta[l, M_RSTART], nr, nr)
                coeff = acts.dtype.type(prm[l, 4])
                keep = acts.dtype.type(1.0) - coeff
                ns = n if stateful else 0
                cr = _block(carry, soff[l], Bp, ns)
                jt = _block(jtv, soff[l], Bp, ns)
                fuse = rec and not stateful and code != SOFTMAX
                tvb = _block(tv, 0, Bp, n)
                e3 = _steps(_block(scratch, lo[l], (nt + 1) * Bp, n), nt + 1, Bp)
                a3 = _steps(a_b, nt, Bp)
                d3 = _steps(d_b, nt, Bp)
                for i in range(nt - 1, -1, -1):
                    t = t0 + i
                    et = e3[i]
                    if rec and t < end - 1:
                        if fuse:
                            # dx[t] = f'(x) * (e[t] + dx[t+1] @ W_rec.T), in one pass
                            _gemm(e3[i + 1], False, wrt, False, tvb, False)
                            ef, df, tf = _flat(et), _flat(d3[i]), _flat(tvb)
                            for k in range(ef.size):
                                ef[k] = df[k] * (ef[k] + tf[k])
                            continue
                        _gemm(e3[i + 1], False, wrt, False, et, True)
                    if stateful:
                        _jac(code, a3[i], d3[i], et, jt)
                        ef, jf, cf = _flat(et), _flat(jt), _flat(cr)
                        for k in range(ef.size):
                            dsv = jf[k] + cf[k]
                            ef[k] = coeff * dsv
                            cf[k] = keep * dsv
                    else:
                        _jac(code, a3[i], d3[i], et, et)
            # gradient of the weights into layer l from this block
            for k in range(conns.shape[0]):
                if conns[k, 1] != l:
                    continue
                pre = conns[k, 0]
                npre = meta[pre, M_N]
                _mm(_rows(acts, po[pre], t0, nt, Bp, npre), True, e, False,
                    _block(out, conns[k, 2], npre, n), True)
                _add_colsum(e, out[conns[k, 3]:conns[k, 4]], ones)
            if rec:
                gw = _block(out, meta[l, M_RSTART], n, n)
                if t0 > 0:
                    _mm(_rows(acts, po[l], t0 - 1, nt, Bp, n), True, e, False, gw, True)
                else:
                    e0 = _block(scratch, lo[l], Bp, n)
                    _mm(_block(init_act, ioff[l] + b0 * n, Bp, n), True, e0, False, gw, True)
                    _add_colsum(e0, out[meta[l, M_RMID]:meta[l, M_REND]], ones)
                    if nt > 1:
                        _mm(_rows(acts, po[l], 0, nt - 1, Bp, n), True,
                              _block(scratch, lo[l] + Bp * n, (nt - 1) * Bp, n), False, gw,
                              True)
        # the first step of the block becomes the step after the next (earlier) block
        nxt = t0 - max(low, t0 - chunk)
        for l in range(1, L):
            if meta[l, M_REC] != 0:
                size = Bp * meta[l, M_N]
                _copy_slot(scratch, lo[l], lo[l] + nxt * size, size)
        t1 = t0


@njit(cache=True, nogil=True)
def backward(W, V, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, c, d2, scale, gv, present,
             init_act, windows, out, ra, scratch, tv):
    """Back-propagation through the whole net (truncated BPTT) for the samples
    ``b0 .. b0 + Bp - 1`` into ``out``: their gradient or, if ``gv``, their Gauss-Newton
    product.

    * ``gv`` false: the gradient of ``sum(c * a)`` with respect to ``W``, ``c`` in the
      kernels' layout for the layers where ``present[l]`` is set (``V``, ``d2``, ``ra``
      unused);
    * ``gv`` true: ``G V`` -- R-forward pass of ``V``, the curvature ``d2 * R{a} * scale``
      injected where ``present[l]`` is set, backward (``c`` unused). With truncation
      ``G = sum_w J_w^T H J_w`` over the windows, ``J_w`` the Jacobian of the window's
      activations with the state entering the window held fixed (the same truncation as
      the gradient's; the NumPy reference defines it the same way).

    ``windows`` rows are ``(low, first_injected, end)``. ``ra`` is a buffer shaped like
    ``acts`` (only the blocks of the layers with a loss are used), ``scratch`` one laid out
    by :func:`_layout`, with the transposed weights in its last ``W.size`` elements, and
    ``tv`` one of ``Bp * max(n)``. The gradient and ``G v`` are one kernel so that the
    backward pass, the largest code here, is compiled once.
    """
    out[:] = 0.0
    WT = scratch[scratch.size - W.size:]
    _transpose_weights(W, meta, conns, WT)
    for iw in range(windows.shape[0]):
        low, first, end = windows[iw, 0], windows[iw, 1], windows[iw, 2]
        if gv:
            _r_forward(W, V, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, present,
                       init_act, low, end, ra, scratch, tv)
        _backward_window(WT, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, ra if gv else c,
                         d2, scale, gv, present, init_act, low, first, end, out, scratch, tv)


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
        if np.ndim(coeff) != 0:
            return None  # per-unit time constants: the NumPy path
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
        self.n_params = int(net.n_params)
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


#: Threads the kernels use (partitions of a batch run concurrently); see set_num_threads.
_THREADS = [max(1, int(os.environ.get("NUMBA_NUM_THREADS") or (os.cpu_count() or 1)))]
#: Below this many multiply-adds of one forward pass per thread, a batch is not split:
#: starting a thread costs tens of microseconds.
MIN_MACS_PER_THREAD = 4_000_000
#: Fewest samples in a partition.
MIN_PARTITION = 8
#: Activation buffers a Runner keeps for reuse (see Runner._buffer).
POOL_SIZE = 4
#: Elements of one layer's block of steps that a single-partition pass keeps in cache.
BLOCK_ELEMENTS = 3 << 15  # rnn-large, rnn-integrator: 3 steps a block (measured best of 1-4)

_POOL: list = []
_POOL_LOCK = threading.Lock()


def _free_refs() -> int:
    """``sys.getrefcount`` of a pooled buffer that nothing else refers to, measured with the
    same loop as :meth:`Runner._buffer` (it depends on the interpreter: CPython 3.14 no
    longer counts the loop variable, earlier versions do)."""
    pool = [np.empty(1)]
    for buf in pool:
        return sys.getrefcount(buf)
    return 0


_FREE_REFS = _free_refs()


def _run_all(calls) -> None:
    """Run zero-argument callables concurrently: the first in this thread, the others in
    a persistent pool (the kernels release the GIL). Returns only when all have finished,
    and then raises the first exception any of them raised."""
    if len(calls) == 1:
        calls[0]()
        return
    with _POOL_LOCK:
        if not _POOL or _POOL[0]._max_workers < len(calls) - 1:
            if _POOL:
                _POOL.pop().shutdown(wait=True)
            _POOL.append(ThreadPoolExecutor(max_workers=len(calls) - 1,
                                            thread_name_prefix="hfcontrol-kernel"))
        futures = [_POOL[0].submit(call) for call in calls[1:]]
    try:
        calls[0]()
    finally:
        # never return while a partition may still be writing the shared buffers
        wait(futures)
    for future in futures:
        future.result()


class LayerArrays(Sequence):
    """The activations of every layer, ``[B, T, n]``, of a batch split over threads.

    A split batch is stored partition by partition, so a layer's ``[B, T, n]`` array is
    not a view of the kernels' buffer: each is gathered on first use (the losses read
    only the layers they need, usually the output) and then kept.
    """

    def __init__(self, runner: Runner, buf: np.ndarray):
        self._runner, self._buf = runner, buf
        self._layers: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._runner.plan.sizes)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        l = range(len(self))[index]  # IndexError outside, negative indices from the end
        if l not in self._layers:
            self._layers[l] = self._runner.gather(self._buf, l)
        return self._layers[l]

    def __repr__(self) -> str:
        return f"LayerArrays({len(self)} layers, batch split over {len(self._runner.parts)} threads)"


class Runner:
    """The kernels for one network description and batch shape ``(T, B)``.

    The batch is split into up to :func:`set_num_threads` partitions of consecutive
    samples when the work pays for the threads; each partition runs the whole forward
    pass, gradient or ``G v`` for its samples on its own thread (the recurrence of
    different samples is independent, so the threads never wait for each other), with
    single-threaded BLAS. The buffers hold each partition's samples together (time-major
    within the partition), so a partition is processed in blocks of steps small enough to
    stay in cache (all ``T`` steps for small problems). The gradients of the partitions are
    summed. Problems too small for threads run in the calling thread and leave BLAS's
    thread setting alone.
    """

    def __init__(self, plan: Plan, T: int, B: int, dtype):
        self.plan, self.T, self.B, self.dtype = plan, T, B, np.dtype(dtype)
        self.threads = _THREADS[0]
        sizes = np.asarray(plan.sizes, np.int64)
        macs = T * B * (sum(int(sizes[p] * sizes[q]) for p, q, *_ in plan.conns)
                        + int(np.sum(sizes[plan.meta[:, M_REC] != 0] ** 2)))
        parts = int(min(self.threads, macs // MIN_MACS_PER_THREAD, B // MIN_PARTITION))
        parts = max(1, parts)
        self.small = macs < MIN_MACS_PER_THREAD
        bounds = [B * p // parts for p in range(parts + 1)]
        self.parts = [(bounds[p], bounds[p + 1] - bounds[p]) for p in range(parts)]
        width = int(sizes.max())
        # blocks of steps: all T when a partition's layer is small, else as many steps as
        # keep a layer's block within BLOCK_ELEMENTS (one step at least)
        self.chunk = [T if T * bp * width <= 2 * BLOCK_ELEMENTS
                      else max(1, min(T, BLOCK_ELEMENTS // (bp * width)))
                      for _, bp in self.parts]
        # a block of steps of one layer, block-local buffers of every layer, per-layer
        # [Bp, n] carries (see the kernels)
        n_params = int(plan.n_params)
        self.scratch = [np.empty(chunk * bp * (width + 5) + (chunk + 3) * bp * int(sizes.sum())
                                 + n_params, self.dtype)
                        for chunk, (_, bp) in zip(self.chunk, self.parts, strict=True)]
        self.tv = [np.empty(bp * width, self.dtype) for _, bp in self.parts]
        self.total = int(plan.offsets(T * B)[-1])
        self._pool: list[np.ndarray] = []
        self._partials: np.ndarray | None = None

    def _run(self, call) -> None:
        """``call(p, b0, bp)`` for every partition ``p`` (samples ``b0 .. b0 + bp - 1``),
        concurrently, with single-threaded BLAS (left as it is for a problem too small for
        threads anywhere: its products are below OpenBLAS's own threading threshold, and the
        switch would cost a microsecond a call)."""
        if self.small:
            call(0, 0, self.B)
            return
        with _kernel_blas_threads(1):
            if len(self.parts) == 1:
                call(0, 0, self.B)
            else:
                _run_all([functools.partial(call, p, b0, bp)
                          for p, (b0, bp) in enumerate(self.parts)])

    def _partition_views(self, buf, l: int):
        """``(b0, bp, view [T, bp, n])`` of every partition's block of layer ``l``."""
        n = self.plan.sizes[l]
        base = int(self.plan.offsets(self.T * self.B)[l])
        for b0, bp in self.parts:
            start = base + self.T * b0 * n
            yield b0, bp, buf[start:start + self.T * bp * n].reshape(self.T, bp, n)

    def _to_kernel(self, arr, view, b0: int, bp: int) -> None:
        """Copy samples ``b0 .. b0 + bp - 1`` of a ``[B, T, n]`` (or ``[B, n]``) array into
        a partition's ``[T, bp, n]`` view."""
        part = arr[b0:b0 + bp]
        view[:] = part.transpose(1, 0, 2) if part.ndim == 3 else part[None]

    def pack(self, layers) -> tuple[np.ndarray, np.ndarray]:
        """Per-layer arrays (``None`` allowed; ``[B, T, n]`` or ``[B, n]``) into one flat
        buffer in the kernels' layout, and the mask of the layers present."""
        buf = np.zeros(self.total, self.dtype)
        present = np.zeros(len(self.plan.sizes), np.int64)
        for l, arr in enumerate(layers):
            if arr is None:
                continue
            present[l] = 1
            for b0, bp, view in self._partition_views(buf, l):
                self._to_kernel(arr, view, b0, bp)
        return buf, present

    def kernel_inputs(self, inputs) -> np.ndarray:
        """The inputs ``[B, T, n0]`` (or ``[B, n0]``) in the kernels' layout, flat."""
        if inputs.ndim == 2 and inputs.flags.c_contiguous and inputs.flags.writeable:
            return inputs.reshape(-1)  # a feedforward batch is already [B, n0]
        buf = np.empty(self.T * self.B * self.plan.sizes[0], self.dtype)
        for b0, bp in self.parts:
            n = self.plan.sizes[0]
            view = buf[self.T * b0 * n:self.T * (b0 + bp) * n].reshape(self.T, bp, n)
            self._to_kernel(inputs, view, b0, bp)
        return buf

    def unpack(self, buf, recurrent: bool):
        """Per-layer ``[B, T, n]`` (recurrent) or ``[B, n]`` activations of a flat buffer:
        views, except for a batch split over threads, whose layers are gathered from the
        partitions on first use (:class:`LayerArrays`)."""
        if len(self.parts) > 1 and self.T > 1:
            return LayerArrays(self, buf)
        offs = self.plan.offsets(self.T * self.B)
        out = []
        for l, n in enumerate(self.plan.sizes):
            view = buf[offs[l]:offs[l + 1]].reshape(self.T, self.B, n)
            out.append(view.transpose(1, 0, 2) if recurrent else view[0])
        return out

    def gather(self, buf, l: int) -> np.ndarray:
        """Layer ``l`` of a flat buffer as a ``[B, T, n]`` array (a copy)."""
        out = np.empty((self.B, self.T, self.plan.sizes[l]), self.dtype)
        for b0, bp, view in self._partition_views(buf, l):
            out[b0:b0 + bp] = view.transpose(1, 0, 2)
        return out

    def _buffer(self) -> np.ndarray:
        """A flat buffer for activations or derivatives, reused when nothing refers to it
        any more (not a cached minibatch, nor an array returned to the caller, nor a view
        of one). Fresh memory is slow here: its first touch page-faults, at 6 ms per 40 MB,
        and several times slower still when the partitions' threads fault concurrently."""
        for buf in self._pool:
            if sys.getrefcount(buf) <= _FREE_REFS:
                return buf
        buf = np.empty(self.total, self.dtype)
        if len(self._pool) < POOL_SIZE:
            self._pool.append(buf)
        return buf

    def forward(self, W, inputs, init_act, init_state, deriv: bool = True):
        """Compiled forward pass of ``inputs`` (``[B, T, n0]`` or ``[B, n0]``); returns flat
        ``(acts, ds)`` buffers (``ds`` is None unless ``deriv``); ``init_act``/``init_state``
        come from :func:`init_block`."""
        plan, T, B = self.plan, self.T, self.B
        acts = self._buffer()
        ds = self._buffer() if deriv else acts
        inputs_k = self.kernel_inputs(inputs)
        user = plan.user

        def part(p, b0, bp):
            if user is None:
                forward(W, plan.meta, plan.prm, plan.conns, T, B, b0, bp, self.chunk[p],
                        inputs_k, acts, ds, deriv, init_act, init_state, self.scratch[p], None,
                        None)
            else:
                forward_user(W, plan.meta, plan.prm, plan.conns, T, B, b0, bp, self.chunk[p],
                             inputs_k, acts, ds, deriv, init_act, init_state, self.scratch[p],
                             *user)

        self._run(part)
        return acts, (ds if deriv else None)

    def backward(self, W, V, acts, ds, c, d2, scale, gv: bool, present, init_act, windows,
                 ra) -> np.ndarray:
        """The gradient (``gv`` false) or ``G V`` (see :func:`backward`), summed over the
        partitions."""
        plan, T, B = self.plan, self.T, self.B
        if len(self.parts) == 1:
            outs = np.empty((1, W.size), W.dtype)  # its row is returned: always fresh
        else:
            # the partitions' sums, never returned: kept (fresh memory page-faults)
            if self._partials is None or self._partials.shape[1] != W.size:
                self._partials = np.empty((len(self.parts), W.size), W.dtype)
            outs = self._partials

        def part(p, b0, bp):
            backward(W, V, plan.meta, plan.prm, plan.conns, T, B, b0, bp, self.chunk[p], acts, ds,
                     c, d2, scale, gv, present, init_act, windows, outs[p], ra,
                     self.scratch[p], self.tv[p])

        self._run(part)
        return outs[0] if len(self.parts) == 1 else outs.sum(axis=0)


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
    """Set the threads of the compiled kernels and, where it can be controlled, of BLAS.

    The kernels run up to ``n`` partitions of a batch concurrently (:class:`Runner`), each
    with single-threaded BLAS. BLAS's own threads (NumPy's, used by the reference path, and
    the library the kernels call, outside the kernels) are set through ``threadpoolctl`` when
    it is installed, otherwise through OpenBLAS's ``set_num_threads``.

    Returns the settings in effect: ``kernels`` and ``blas`` (-1 when BLAS cannot be
    controlled from here -- set ``OPENBLAS_NUM_THREADS`` before starting Python).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer number of threads, got {n!r}")
    _THREADS[0] = int(n)
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
    return {"kernels": _THREADS[0], "blas": blas}


def get_num_threads() -> int:
    """Threads of the compiled kernels (see :func:`set_num_threads`)."""
    return _THREADS[0]


def thread_info() -> dict[str, int]:
    """Threads of the compiled kernels and of BLAS (-1 if unknown)."""
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
    return {"kernels": _THREADS[0], "blas": blas}
