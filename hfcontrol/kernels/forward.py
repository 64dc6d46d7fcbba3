"""The compiled forward pass, and the layout of a partition's work buffer.

The network is described to the kernels as plain arrays (:class:`~.plan.Plan`):

* ``meta[l]`` (int64, one row per layer): ``n`` units, recurrent flag, nonlinearity code,
  stateful flag, and the recurrent connection's ``(start, mid, end)`` offsets into ``W``
  (zeros for a layer without recurrence);
* ``prm[l]`` (float64): the nonlinearity's parameters (``ReLU.max``; SoftLIF's
  ``sigma, tau_rc, tau_ref, amp``) and, from column ``P_COEFF`` on, one ``Continuous``
  filter coefficient ``dt / tau`` per unit;
* ``conns[c]`` (int64): ``pre, post, start, mid, end`` of every feedforward connection.

Activations, derivatives, R-activations and loss terms live in flat buffers with one
block per layer; within a layer's block the batch is stored partition by partition (see
:class:`~.runner.Runner`), each partition time-major, ``[T, Bp, n]``
(:func:`~._blas._part_offsets`), so that a partition's rows of a step, or of a block of
steps, are one contiguous matrix. A feedforward net is the case ``T = 1``, i.e. ``[B, n]``.

Each kernel call works on one partition, over blocks of ``chunk`` steps and, inside a
block, over all layers (connections only go from lower to higher layers and a recurrent
layer only feeds itself): the products that do not depend on the recurrence (input
projections, back-propagated deltas, weight gradients) are one BLAS call per block, and
only a layer's own recurrence (``a[t-1] @ W_rec``, the filter state of a ``Continuous``
layer) runs step by step -- in compiled code.

The kernels called from Python (:func:`forward` here, :func:`~.curvature.backward`, and
for a user's element-wise nonlinearity :func:`forward_user`) are module-level functions
that call each other by name and branch on integer codes, so that the on-disk cache is
reused across processes. The call graph is kept shallow (each caller re-optimises the
code of everything it calls): the forward pass is one function, compiled twice (see
:func:`_forward`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._blas import (
    _add_bias,
    _affine,
    _block,
    _flat,
    _gemm,
    _helper,
    _mm,
    _offsets,
    _part_offsets,
    _rows,
    _steps,
)
from .activations import _activate
from .plan import M_CODE, M_N, M_REC, M_REND, M_RMID, M_RSTART, M_STATEFUL, P_COEFF


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


def _forward(W, meta, prm, conns, T, B, b0, Bp, chunk, inputs, acts, ds, deriv, init_act,
             init_state, xbuf, f, df):
    """Fill ``acts`` (and, if ``deriv``, ``ds``) of every layer, for the samples
    ``b0 .. b0 + Bp - 1`` (a partition of the batch; see :class:`~.runner.Runner`), from ``inputs``,
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
            coeff = prm[l, P_COEFF:P_COEFF + n]
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
                    _filter(s, xt, coeff)
                    xt = s
                _activate(code, prm[l], xt, a3[i], d3[i], deriv, f, df)


forward = njit(cache=True, nogil=True)(_forward)
forward_user = njit(nogil=True)(_forward)


@_helper
def _filter(s, x, coeff):
    """``s += coeff * (x - s)`` over ``[Bp, n]`` blocks, one coefficient per unit (the
    float64 ``coeff[n]``, taken in the buffers' dtype); one flat loop (``j``: the unit)."""
    sf, xf = _flat(s), _flat(x)
    n = coeff.size
    j = 0
    for k in range(sf.size):
        c = sf.dtype.type(coeff[j])
        sf[k] = sf[k] + c * (xf[k] - sf[k])
        j = j + 1 if j + 1 < n else 0


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


@_helper
def _layout(meta, chunk, Bp):
    """Where things live in a partition's ``scratch`` buffer (:class:`~.runner.Runner` allocates it):

    ``[0, lo[0])``          a block of one layer's steps, ``chunk * Bp * max(n)``;
    ``[lo[l], lo[l + 1])``  layer ``l``'s block-local buffer of ``chunk + 1`` steps;
    ``carry``               per-layer ``[Bp, n]`` values carried from block to block
                            (filter state, its R{} or its dE/ds), ``Bp * sum(n)``;
    ``jt``                  per-layer ``[Bp, n]`` Jacobian products, ``Bp * sum(n)``;
    ``tmp``                 a product with at most 4 columns, ``chunk * Bp * 4``;
    ``ones``                ``chunk * Bp`` ones, for bias products;

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
def _copy_slot(buf, src, dst, size):
    for i in range(size):
        buf[dst + i] = buf[src + i]


