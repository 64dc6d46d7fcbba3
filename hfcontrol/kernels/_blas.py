"""Views of the flat buffers and matrix products by BLAS, for the compiled kernels.

Everything here is called only from compiled code. Compile time is kept down by:

* helpers decorated with :data:`_helper` (``register_jitable``): numba types a call to them
  with the arguments' non-literal types first, so a helper is compiled once per dtype
  whatever constants (``True``, ``0``) its callers pass -- an ``@njit`` function is
  compiled again for every combination of literal arguments -- and it gets no Python
  wrapper, which only the kernels called from Python need;
* matrix products by :func:`_gemm`: small ones in the hand-written vector loops of
  :mod:`._small`, the others by a direct BLAS call taking transposition flags
  (:func:`_blas_gemm`) instead of ``np.dot`` on transposed views (one specialisation per
  combination of layouts);
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

from ._small import _small_gemm
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


@intrinsic
def _blas_gemm(typingctx, a, ta, b, tb, c, acc):
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


#: Products of up to SMALL_MACS multiply-adds with at least SMALL_MIN_COLS columns run in
#: the vector loops of :mod:`._small`; larger ones, and single columns (a ``gemv``), in
#: BLAS. Measured here (one thread, float32), the loops beat OpenBLAS by 1.5 to 3 times
#: up to 2^20 multiply-adds: ``[32, 16] @ [16, 16]`` 0.17 against 0.55 us, ``[3200, 16] @
#: [16, 16]`` 18 against 31 us, a weight gradient ``[480, 2].T @ [480, 16]`` 1.2 against
#: 5.7 us; above, OpenBLAS's cache blocking wins (``[1500, 100].T @ [1500, 100]``: 1.2
#: against 1.7 ms), and a single column is a dot product per row, which the loops (made
#: to vectorise along the columns) do at scalar speed.
#:
#: OpenBLAS (measured here, one thread) has a fast path for small products, up to about
#: 2^20 multiply-adds; above it, a product with a narrow side (at most SKINNY columns or
#: inner dimension) runs 1.5 to 3 times slower ([512, 256] @ [256, 10]: 49 against 72
#: GFLOP/s), and a weight gradient ``a.T @ d`` over many rows slows down too ([256, 2048]
#: @ [2048, 256]: 58 against 94 GFLOP/s at 512 rows). :func:`_mm` splits such products.
SMALL_MACS = 1 << 20
SMALL_MIN_COLS = 2
SKINNY = 32
GRADIENT_ROWS = 512


@_helper
def _is_small(m, n, k):
    """Whether a ``[m, k] @ [k, n]`` product runs in the loops of :mod:`._small`."""
    return n >= SMALL_MIN_COLS and m * n * k <= SMALL_MACS


@_helper
def _gemm(a, ta, b, tb, c, acc):
    """``c = op(a) @ op(b)``, or ``c += op(a) @ op(b)`` if ``acc`` (``op(x)``: ``x.T`` if
    its flag is set): small products (:func:`_is_small`, ``b`` not transposed) in the
    loops of :mod:`._small`, the others by one BLAS call (:func:`_blas_gemm`, which needs
    every dimension non-zero). ``a``, ``b``, ``c``: C-contiguous 2-D arrays of one float
    dtype, shapes agreeing."""
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    if not tb and _is_small(m, n, k):
        _small(a, ta, b, c, acc)
    else:
        _blas_gemm(a, ta, b, tb, c, acc)


#: A weight gradient ``a.T @ d`` with at most NARROW columns (an output layer of a few
#: units) and at least four times as many rows is computed transposed, ``d.T @ a``, whose
#: rows are long vectors, then added to ``c``: measured here, ``[480, 16].T @ [480, 2]``
#: takes 1.7 us the direct way (2-wide vectors) and 0.4 us so.
NARROW = 4


@_helper
def _small(a, ta, b, c, acc):
    """``c (+)= op(a) @ b`` by the loops of :mod:`._small` (a small product)."""
    m, n = c.shape
    if ta and n <= NARROW and m >= 4 * n:
        ct = np.empty((n, m), c.dtype)
        _small_gemm(b, True, a, ct, ct, False, ct, False)
        for i in range(m):
            for j in range(n):
                c[i, j] = c[i, j] + ct[j, i] if acc else ct[j, i]
    else:
        _small_gemm(a, ta, b, c, c, acc, c, False)


@_helper
def _fused_step(a, b, x, d, c, tmp):
    """``c = d * (x + a @ b)`` element-wise (``x`` may be ``c``): a recurrent layer's step
    of the R-forward or backward pass, ``f'(z) * (input + previous @ W)``. In one pass
    of the loops of :mod:`._small` when the product is small, else by BLAS into ``tmp``
    (at least ``c.size`` elements) and one flat loop."""
    m, n = c.shape
    if _is_small(m, n, a.shape[1]):
        _small_gemm(a, False, b, c, x, True, d, True)
        return
    t = _block(tmp, 0, m, n)
    _blas_gemm(a, False, b, False, t, False)
    cf, df, xf, tf = _flat(c), _flat(d), _flat(x), _flat(t)
    for i in range(cf.size):
        cf[i] = df[i] * (xf[i] + tf[i])


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
    if not tb and _is_small(rows, cols, inner):
        _small(a, ta, b, c, acc)
        return
    if ta and not tb:
        # a reduction over the rows of a and b (a weight gradient)
        step = GRADIENT_ROWS
        if min(rows, cols) < SKINNY:
            step = max(64, SMALL_MACS // (rows * cols))
        if inner > step:
            for start in range(0, inner, step):
                stop = min(inner, start + step)
                _blas_gemm(_row_range(a, start, stop), True, _row_range(b, start, stop), False, c,
                      acc or start > 0)
            return
    elif not ta and min(cols, inner) < SKINNY and rows * cols * inner > SMALL_MACS:
        # independent rows of a and c
        step = max(64, SMALL_MACS // (cols * inner))
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            _blas_gemm(_row_range(a, start, stop), False, b, tb, _row_range(c, start, stop), acc)
        return
    _blas_gemm(a, ta, b, tb, c, acc)


@_helper
def _affine(a, w, b, c, acc, tmp, ones):
    """``c (+)= a @ w + b`` (see :func:`_product` and :func:`_add_bias`)."""
    _product(a, w, c, acc, tmp)
    _add_bias(c, b, ones)


@_helper
def _product(a, w, c, acc, tmp):
    """``c (+)= a @ w`` (:func:`_mm`). With ``beta = 1`` OpenBLAS is twice as slow for a
    few columns as with ``beta = 0`` (measured here: [3200, 16] @ [16, 2], 34 against
    17 us), so such a product, when BLAS runs it, is accumulated through ``tmp`` (at
    least ``c.size`` elements)."""
    rows, cols = c.shape
    if (acc and cols <= 4 and rows > 0 and a.shape[1] > 0
            and not _is_small(rows, cols, a.shape[1])):
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
    """``out += `` the column sums of ``d``: the row ``ones.T @ d`` (:func:`_gemm`)."""
    rows, cols = d.shape
    if rows > 0 and cols > 0:
        _gemm(_block(ones, 0, rows, 1), True, d, False, out.reshape((1, cols)), True)


