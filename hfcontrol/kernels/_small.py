"""Small matrix products in hand-written vector loops, for the compiled kernels.

At control sizes a product is tiny (the per-step recurrence of a 16-unit RNN over 32
samples, ``[32, 16] @ [16, 16]``, is 8 192 multiply-adds) and a BLAS call costs more in
fixed overhead (argument checks, packing of the operands) than in arithmetic: measured
here (Zen 3, one thread, float32), OpenBLAS's ``sgemm`` takes 0.55 us for it and the
loop below 0.17 us. numba cannot write that loop itself: LLVM's loop vectoriser
unrolls the inner loop of a plain triple loop to 32 floats or more, so a 16-wide row
runs in its scalar remainder, behind run-time alias checks (3.2 us). So
:func:`_small_gemm` emits the loop in LLVM IR directly, as an internal function of the
module that calls it (one per dtype, however many call sites):

* ``c[i, j0:j0 + V]`` for a block of rows ``i`` is accumulated in registers over ``k``:
  one vector load of ``b[k, j0:j0 + V]``, a broadcast of ``op(a)[i, k]`` and one
  multiply-add per row (``llvm.fmuladd``, an FMA where the CPU has one);
* ``V`` is a 64-byte LLVM vector (16 float32, 8 float64), which LLVM splits into the
  target's registers: one AVX-512 register, two AVX2 ones, four SSE ones. The rows per
  block are chosen from the target's register width, so that the accumulators fill
  about eight hardware registers (enough independent multiply-adds to cover their
  latency): 4 rows with AVX2, 8 with AVX-512. Nothing depends on one vector width;
* the ``N % V`` remaining columns take one narrower block for each power of two in their
  count (a 2-column output layer: one 2-wide block), with more rows per block, so no
  element is read outside its array and no masked load is needed; the rows left over
  likewise (6 rows: a block of 4, then one of 2);
* a product of fewer rows than a block (a bias gradient ``ones.T @ delta``: one row)
  unrolls its ``k`` loop over several sets of accumulators, summed at the end, so that
  its multiply-adds do not wait for each other. Larger products sum every row in the
  same order, whichever block it falls in: a row's result does not depend on how many
  rows the product has (a batch split over threads gives the same activations);
* the result is ``c = init + op(a) @ b`` (``init``: zero, ``c`` itself or another array),
  optionally times an element-wise ``d`` as it is stored: the fused step of a recurrent
  layer's R-forward and backward passes, ``f'(x) * (x_in + prev @ W)``, with no temporary.

``op(a)`` is ``a`` or ``a.T`` (a weight gradient ``a.T @ delta``): only the scalar loads
of ``a`` change. ``b`` is never transposed (the kernels keep transposed weights where
they need them).

numba caches the compiled code with the target's CPU name and features, so a kernel
built for one vector width is never loaded on a machine with another.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np import linalg

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
#: Bytes of the LLVM vector a block of columns is accumulated in.
VECTOR_BYTES = 64
#: Hardware vector registers the accumulators of a block aim to fill.
ACCUMULATOR_REGISTERS = 8
#: Independent multiply-add chains per column block at least: a block of fewer rows
#: unrolls its ``k`` loop over several sets of accumulators.
CHAINS = 4


def _register_bytes(context) -> int:
    """Bytes of the target's vector registers (from the features numba compiles for)."""
    features = getattr(context.codegen(), "_tm_features", "") or ""
    if "+avx512f" in features:
        return 64
    if "+avx" in features:
        return 32
    return 16


def _vector_name(T, width: int) -> str:
    return f"v{width}{'f32' if isinstance(T, ir.FloatType) else 'f64'}"


def _small_gemm_function(module, T, register_bytes: int):
    """The IR function ``(a, sai, sak, b, ldb, c, ldc, M, N, K, init, has_init, d,
    has_d)``: ``c[M, N] = [d *] ([init +] op(a) @ b)``, where ``op(a)[i, k] = a[i * sai +
    k * sak]``, ``b[k, j] = b[k * ldb + j]`` and ``c``, ``init`` and ``d`` share the row
    stride ``ldc``. Defined once per module and dtype."""
    size = 4 if isinstance(T, ir.FloatType) else 8
    V = VECTOR_BYTES // size
    name = f"hfcontrol_small_gemm_{_vector_name(T, 1)}_{register_bytes}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    Tp = T.as_pointer()
    bit = ir.IntType(1)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [
        Tp, _I64, _I64, Tp, _I64, Tp, _I64, _I64, _I64, _I64, Tp, bit, Tp, bit]), name)
    fn.linkage = "internal"
    for arg in fn.args[0], fn.args[3]:  # op(a) and b never overlap c (init may be c)
        arg.add_attribute("noalias")
    a, sai, sak, b, ldb, c, ldc, M, N, K, init, has_init, d, has_d = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))

    def splat(x, vt):
        lanes = vt.count
        v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, _I32(0))
        return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                                      ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes))

    def load(ptr, vt):
        value = builder.load(builder.bitcast(ptr, vt.as_pointer()))
        value.align = size  # rows start anywhere: unaligned vector loads
        return value

    def store(value, ptr, vt):
        builder.store(value, builder.bitcast(ptr, vt.as_pointer())).align = size

    def block(i0, rows, j0, width, sets):
        """``rows`` rows from ``i0``, columns ``j0 .. j0 + width - 1``, the ``k`` loop
        unrolled over ``sets`` sets of accumulators (summed at the end)."""
        vt = ir.VectorType(T, width)
        fma = cgutils.get_or_insert_function(module, ir.FunctionType(vt, [vt, vt, vt]),
                                             f"llvm.fmuladd.{_vector_name(T, width)}")
        # registers, by SROA: accs[u][r] for unrolled step u and row r
        accs = [[cgutils.alloca_once(builder, vt) for _ in range(rows)] for _ in range(sets)]
        offs = [builder.add(builder.mul(builder.add(i0, _I64(r)), ldc), j0) for r in range(rows)]
        with builder.if_else(has_init) as (given, zero):
            with given:
                for r in range(rows):
                    builder.store(load(builder.gep(init, [offs[r]]), vt), accs[0][r])
            with zero:
                for r in range(rows):
                    builder.store(ir.Constant(vt, None), accs[0][r])
        for u in range(1, sets):
            for r in range(rows):
                builder.store(ir.Constant(vt, None), accs[u][r])
        arow = [builder.mul(builder.add(i0, _I64(r)), sai) for r in range(rows)]

        def step(k, acc):
            bv = load(builder.gep(b, [builder.add(builder.mul(k, ldb), j0)]), vt)
            ko = builder.mul(k, sak)
            for r in range(rows):
                av = splat(builder.load(builder.gep(a, [builder.add(arow[r], ko)])), vt)
                builder.store(builder.call(fma, [av, bv, builder.load(acc[r])]), acc[r])

        whole = _I64(0)
        if sets > 1:
            whole = builder.mul(builder.sdiv(K, _I64(sets)), _I64(sets))
            with cgutils.for_range(builder, builder.sdiv(K, _I64(sets))) as loop:
                k0 = builder.mul(loop.index, _I64(sets))
                for u in range(sets):
                    step(builder.add(k0, _I64(u)), accs[u])
        with cgutils.for_range(builder, K, start=whole) as loop:
            step(loop.index, accs[0])
        total = []
        for r in range(rows):
            value = builder.load(accs[0][r])
            for u in range(1, sets):
                value = builder.fadd(value, builder.load(accs[u][r]))
            total.append(value)
        with builder.if_else(has_d) as (scaled, plain):
            with scaled:
                for r in range(rows):
                    store(builder.fmul(load(builder.gep(d, [offs[r]]), vt), total[r]),
                          builder.gep(c, [offs[r]]), vt)
            with plain:
                for r in range(rows):
                    store(total[r], builder.gep(c, [offs[r]]), vt)

    def all_rows(j0, width):
        """Every row, columns ``j0 .. j0 + width - 1``: blocks of ``rows`` rows, then one
        block for each power of two in the count of the rows left. A product of fewer
        rows than a block unrolls the ``k`` loop of its blocks over ``CHAINS // rows``
        sets of accumulators, so that enough independent multiply-adds are in flight; a
        larger one does not, so that every row of it is summed in the same order
        whatever its block (a batch's results do not depend on how it is split)."""
        registers = max(1, width * size // register_bytes)
        rows = max(1, ACCUMULATOR_REGISTERS // registers)

        def leftover(i, split):
            part = rows // 2
            while part >= 1:
                has = builder.icmp_signed("!=", builder.and_(builder.sub(M, i), _I64(part)),
                                          _I64(0))
                with builder.if_then(has):
                    block(i, part, j0, width, max(1, CHAINS // part) if split else 1)
                i = builder.select(has, builder.add(i, _I64(part)), i)
                part //= 2

        with builder.if_else(builder.icmp_signed(">=", M, _I64(rows))) as (large, small):
            with large:
                whole = builder.mul(builder.sdiv(M, _I64(rows)), _I64(rows))
                with cgutils.for_range_slice(builder, _I64(0), whole, _I64(rows)) as (i0, _):
                    block(i0, rows, j0, width, 1)
                leftover(whole, False)
            with small:
                leftover(_I64(0), True)

    full = builder.mul(builder.sdiv(N, _I64(V)), _I64(V))
    with cgutils.for_range_slice(builder, _I64(0), full, _I64(V)) as (j0, _):
        all_rows(j0, V)
    # the N % V columns left: one block for each power of two in their count
    j, width = full, V // 2
    while width >= 1:
        has = builder.icmp_signed("!=", builder.and_(builder.sub(N, j), _I64(width)), _I64(0))
        with builder.if_then(has):
            all_rows(j, width)
        j = builder.select(has, builder.add(j, _I64(width)), j)
        width //= 2
    builder.ret_void()
    return fn


@intrinsic
def _small_gemm(typingctx, a, ta, b, c, init, has_init, d, has_d):
    """``c = [d *] ([init +] op(a) @ b)`` by the vector loops of this module; ``op(a)`` is
    ``a.T`` if ``ta``; ``init`` is added if ``has_init`` (it may be ``c``) and the result
    multiplied element-wise by ``d`` if ``has_d``. All are C-contiguous 2-D arrays of one
    float dtype; the caller guarantees the shapes (``init`` and ``d`` shaped like ``c``;
    ``d`` not ``c``). Any dimension may be 0."""
    arrays = (a, b, c, init, d)
    if not all(isinstance(x, types.Array) and x.ndim == 2 and x.layout == "C"
               for x in arrays):
        raise TypingError("_small_gemm needs C-contiguous 2-D arrays")
    if len({x.dtype for x in arrays}) != 1 or a.dtype not in (types.float32, types.float64):
        raise TypingError("_small_gemm needs arrays of one float dtype")
    sig = types.none(a, types.boolean, b, c, init, types.boolean, d, types.boolean)

    def codegen(context, builder, sig, args):
        A, B, C, I, D = [linalg.make_array(t)(context, builder, v) for t, v in zip(
            (sig.args[i] for i in (0, 2, 3, 4, 6)), (args[i] for i in (0, 2, 3, 4, 6)),
            strict=True)]
        T = context.get_data_type(sig.args[0].dtype)
        fn = _small_gemm_function(builder.module, T, _register_bytes(context))
        a0, a1 = cgutils.unpack_tuple(builder, A.shape)
        ldb = cgutils.unpack_tuple(builder, B.shape)[1]
        m, n = cgutils.unpack_tuple(builder, C.shape)
        ta = args[1]
        builder.call(fn, [A.data, builder.select(ta, _I64(1), a1),
                          builder.select(ta, a1, _I64(1)), B.data, ldb, C.data, n, m, n,
                          builder.select(ta, a0, a1), I.data, args[5], D.data, args[7]])
        return context.get_dummy_value()

    return sig, codegen
