"""The compiled R-forward and backward passes: gradient and Gauss-Newton product ``G v``.

One kernel, :func:`backward`, computes both (the backward pass is the largest code here,
so it is compiled once): the gradient of ``sum(c * a)``, or ``G v`` -- an R-forward pass
of ``v`` (:func:`_r_forward`), the loss curvature injected, and the same backward pass
(:func:`_backward_window`). Blocks of steps outside, layers inside, as in
:mod:`.forward`; the R-activations of layers without a loss and all the deltas live only
in block-local buffers (:func:`~.forward._layout`).

Everything that stays fixed while the conjugate-gradient iterations run is prepared once
per minibatch by :class:`~.batch.CompiledBatch`: the transposed weights (the backward
products ``delta @ W.T`` are then plain products, which BLAS does faster for small
matrices: ``[32, 16] @ [16, 16]``, 0.3 against 0.6 us) and the packed curvature of the
losses whose curvature depends only on activations and targets. A loss whose curvature
is one scalar per layer (structural damping) passes it per call in a float64 ``[L]``
array, added to the packed curvature; ``present[l]`` says which of the two a layer has
(bit flags ``HAS_ARRAY``, ``HAS_SCALAR``).
"""

from __future__ import annotations

from numba import njit

from ._blas import (
    _add_colsum,
    _affine,
    _block,
    _flat,
    _fused_step,
    _gemm,
    _helper,
    _mm,
    _product,
    _rows,
    _steps,
)
from .activations import _jac
from .forward import _copy_slot, _incoming, _regions
from .plan import M_CODE, M_N, M_REC, M_REND, M_RMID, M_RSTART, M_STATEFUL, P_COEFF, SOFTMAX

#: ``present[l]`` bits: the layer has an entry in the packed array (an error for the
#: gradient, a curvature for ``G v``) / a per-layer scalar curvature.
HAS_ARRAY = 1
HAS_SCALAR = 2


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
def _r_filter(rs, rx, coeff):
    """``R{s} = coeff * R{x} + (1 - coeff) * R{s}`` over ``[Bp, n]`` blocks, one filter
    coefficient per unit (float64 ``coeff[n]``, taken in the buffers' dtype)."""
    sf, xf = _flat(rs), _flat(rx)
    one = sf.dtype.type(1.0)
    n = coeff.size
    j = 0
    for k in range(sf.size):
        c = sf.dtype.type(coeff[j])
        sf[k] = c * xf[k] + (one - c) * sf[k]
        j = j + 1 if j + 1 < n else 0


@_helper
def _back_filter(et, jt, carry, coeff):
    """Through a filter step backwards: ``dE/ds = J^T e + carry``, then ``dE/dx = coeff *
    dE/ds`` (into ``et``) and the carry to the step before ``(1 - coeff) * dE/ds``."""
    ef, jf, cf = _flat(et), _flat(jt), _flat(carry)
    one = ef.dtype.type(1.0)
    n = coeff.size
    j = 0
    for k in range(ef.size):
        c = ef.dtype.type(coeff[j])
        dsv = jf[k] + cf[k]
        ef[k] = c * dsv
        cf[k] = (one - c) * dsv
        j = j + 1 if j + 1 < n else 0


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
            coeff = prm[l, P_COEFF:P_COEFF + n]
            rs = _block(state, soff[l], Bp if stateful else 0, n)
            fuse = rec and not stateful and code != SOFTMAX
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
                        _fused_step(prev, wr, xt, d3[i], r3[i], tv)
                        continue
                    _gemm(prev, False, wr, False, xt, True)
                if stateful:
                    _r_filter(rs, xt, coeff)
                    _jac(code, a3[i], d3[i], rs, r3[i])
                else:
                    _jac(code, a3[i], d3[i], xt, r3[i])
        # the last step of the block becomes slot 0 of the next one
        for l in range(1, L):
            if meta[l, M_REC] != 0 and not present[l]:
                size = Bp * meta[l, M_N]
                _copy_slot(scratch, lo[l] + nt * size, lo[l], size)


@_helper
def _backward_window(WT, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, c, d2, lscale,
                     scale, curvature, present, init_act, low, first, end, out, scratch, tv):
    """Back-propagate one window ``(low, first_injected, end)`` of one partition and add
    its weight gradient to ``out``; ``WT`` holds the transposed weights.

    ``c`` (or, if ``curvature``, ``(d2 + lscale[l]) * c * scale``) is injected into the
    layers where ``present[l]`` is set, from step ``first_injected`` on. Blocks of ``chunk`` steps are
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
                    # the packed curvature (zeros in a layer without, HAS_ARRAY unset)
                    # plus the layer's scalar one (zero if none)
                    s = acts.dtype.type(lscale[l])
                    for i in range(ef.size):
                        ef[i] = (df[i] + s) * cf[i] * scale
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
                coeff = prm[l, P_COEFF:P_COEFF + n]
                ns = n if stateful else 0
                cr = _block(carry, soff[l], Bp, ns)
                jt = _block(jtv, soff[l], Bp, ns)
                fuse = rec and not stateful and code != SOFTMAX
                e3 = _steps(_block(scratch, lo[l], (nt + 1) * Bp, n), nt + 1, Bp)
                a3 = _steps(a_b, nt, Bp)
                d3 = _steps(d_b, nt, Bp)
                for i in range(nt - 1, -1, -1):
                    t = t0 + i
                    et = e3[i]
                    if rec and t < end - 1:
                        if fuse:
                            # dx[t] = f'(x) * (e[t] + dx[t+1] @ W_rec.T), in one pass
                            _fused_step(e3[i + 1], wrt, et, d3[i], et, tv)
                            continue
                        _gemm(e3[i + 1], False, wrt, False, et, True)
                    if stateful:
                        _jac(code, a3[i], d3[i], et, jt)
                        _back_filter(et, jt, cr, coeff)
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
def backward(W, WT, V, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, c, lscale, scale, gv,
             present, init_act, windows, out, ra, scratch, tv):
    """Back-propagation through the whole net (truncated BPTT) for the samples
    ``b0 .. b0 + Bp - 1`` into ``out``: their gradient or, if ``gv``, their Gauss-Newton
    product.

    * ``gv`` false: the gradient of ``sum(c * a)`` with respect to ``W``, ``c`` in the
      kernels' layout for the layers where ``present[l]`` is set (``V``, ``lscale``,
      ``ra`` unused);
    * ``gv`` true: ``G V`` -- R-forward pass of ``V``, the curvature ``(c + lscale[l]) *
      R{a} * scale`` injected where ``present[l]`` is set (``c``: the packed curvature
      where ``present[l] & HAS_ARRAY``, ``lscale``: float64 per-layer scalars, zero where
      a layer has none), backward. With truncation ``G = sum_w J_w^T H J_w`` over the
      windows, ``J_w`` the Jacobian of the window's activations with the state entering
      the window held fixed (the same truncation as the gradient's; the NumPy reference
      defines it the same way).

    ``WT`` holds the transpose of every weight matrix at its place in ``W`` (a ``[post,
    pre]`` block where ``W`` has ``[pre, post]``; :func:`~.batch.transposed_weights`). ``windows`` rows are
    ``(low, first_injected, end)``. ``ra`` is a buffer shaped like ``acts`` (only the
    blocks of the layers with a loss are used), ``scratch`` one laid out by
    :func:`~.forward._layout`, and ``tv`` one of ``Bp * max(n)``. The gradient and ``G v``
    are one kernel so that the backward pass, the largest code here, is compiled once.
    """
    out[:] = 0.0
    for iw in range(windows.shape[0]):
        low, first, end = windows[iw, 0], windows[iw, 1], windows[iw, 2]
        if gv:
            _r_forward(W, V, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, present,
                       init_act, low, end, ra, scratch, tv)
        _backward_window(WT, meta, prm, conns, T, B, b0, Bp, chunk, acts, ds, ra if gv else c,
                         c, lscale, scale, gv, present, init_act, low, first, end, out,
                         scratch, tv)
