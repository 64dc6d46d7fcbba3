"""Views of the flat buffers and matrix products by BLAS, for the compiled kernels.

Everything here is called only from compiled code. Compile time is kept down by:

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
  shape-mismatch error message, several seconds): explicit loops instead.

The helpers are compiled into the kernels that call them (:mod:`.forward`,
:mod:`.curvature`), and cached in those kernels' files: an edit here leaves their caches
stale, which :mod:`._cache_guard` detects when :mod:`hfcontrol.kernels` is imported.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, register_jitable
from numba.np import linalg
from numba.np.arrayobj import populate_array

from .plan import M_N

#: Decorator of the functions called only from compiled code (see the module docstring);
#: cached on disk too, for :func:`~hfcontrol.kernels.forward.forward_user`, which is
#: compiled in every process.
_helper = register_jitable(cache=True)


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
#: A weight gradient ``a.T @ d`` with a side of 2 to GEMV_SIDE columns (a net's input or
#: output layer of a few units) runs as one ``gemv`` per column of the narrow side:
#: measured here, OpenBLAS's ``sgemm`` takes several times longer for it ([480, 2].T @
#: [480, 16]: 7.2 against 1.3 us; [480, 16].T @ [480, 2]: 6.4 against 2.1 us), for
#: products up to SMALL_MACS (larger ones read ``a`` once per gemv). A side of one column
#: is a ``gemv`` in :func:`_gemm` already.
GEMV_SIDE = 4


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
        if 1 < min(rows, cols) <= GEMV_SIDE and rows * cols * inner <= SMALL_MACS:
            _reduce_by_gemv(a, b, c, acc)
            return
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
def _reduce_by_gemv(a, d, c, acc):
    """``c (+)= a.T @ d`` for a ``c`` with at most GEMV_SIDE rows or columns: one ``gemv``
    per row of ``c`` (against a column of ``a``) or per column (against a column of ``d``),
    the column copied to be contiguous and the result added to ``c`` through a temporary
    (a column of ``c`` is strided). One call site of the BLAS intrinsic: compile time."""
    inner = a.shape[0]
    rows, cols = c.shape
    by_row = rows <= GEMV_SIDE
    narrow, other = (a, d) if by_row else (d, a)
    count, size = narrow.shape[1], other.shape[1]
    step, stride = (cols, 1) if by_row else (1, cols)
    x = np.empty(inner + size, a.dtype)
    xc, y = _view(x, 0, (inner, 1)), _view(x, inner, (size, 1))
    cf = _flat(c)
    for q in range(count):
        for r in range(inner):
            x[r] = narrow[r, q]
        _gemm(other, True, xc, False, y, False)
        for i in range(size):
            k = q * step + i * stride
            cf[k] = y[i, 0] + cf[k] if acc else y[i, 0]


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


