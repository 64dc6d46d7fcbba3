"""Compiled closed loop: a recurrent controller stepping a built-in plant, and the exact
gradient and Gauss-Newton product through the feedback path.

The network is the closed loop's (see :mod:`hfcontrol.closed_loop` for the recursions):
input layer ``e_t = [goal_t, o_t]``, one recurrent hidden layer ``s_t = f(z_t)``, an
output layer ``a_t = g(s_t W_out + b_out)`` and controls ``u_t = c * a_t``. Every array
is time-major and flat: a quantity of ``q`` entries per sample at step ``t`` is the
contiguous ``[B, q]`` block at ``t * B * q``. Network quantities have the network's dtype;
states, controls and their derivatives are float64, as the plants are.

* ``rollout_<plant>`` (one per built-in plant, each calling that plant's compiled step
  kernel by name from :mod:`plants._kernels`, so that it is cached on disk and compiles
  only its plant) runs the loop forward: observations, network step, plant step. It
  returns -1, or the first step whose control or next state is not finite.
* :func:`backward` (one for all plants: it needs only the plant's step Jacobians, cached
  along the rollout) gives the gradient of the cost, or ``G V``: the R-forward pass of a
  direction ``V`` through network, plant and observation, the cost's curvature applied,
  then the backward pass. The products that do not depend on the recursion (a step's
  input projections, every weight gradient) are single BLAS calls over all steps; only
  the recurrence and the feedback run step by step.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

from plants import _kernels as pk

from ._blas import _flat, _fused_step, _gemm, _helper, _view
from .activations import _elementwise
from .runner import _kernel_blas_threads

# offsets into W: (start, mid, end) of the input (0, 1), output (1, 2) and recurrent
# (1, 1) connections
O_IN, O_OUT, O_REC = 0, 3, 6


@_helper
def _blk(buf, off, rows, cols):
    """Rows ``[rows, cols]`` of a flat buffer starting at ``off`` (a view)."""
    return _view(buf, off, (rows, cols))


@_helper
def _observe(X, t, B, n, obs, noise, E, n_in, k):
    """``E[t, :, k:] = o + noise[t]``, row ``i`` of ``o = L x + Rc cos(A x) + Rs sin(A x) + c``
    read at ``x_{max(t - rdel_i, 0)}`` (angle ``a`` at ``x_{max(t - adel_a, 0)}``; an
    angle and the rows that weigh it share a channel, so a delay). ``obs``: ``(L, A, Rc,
    Rs, c, rdel, adel, trig)``, ``trig`` a work row of ``2 r``."""
    L, A, Rc, Rs, oc, rdel, adel, trig = obs
    p = L.shape[0]
    r = A.shape[0]
    for b in range(B):
        for a in range(r):
            xo = max(t - adel[a], 0) * B * n + b * n
            acc = 0.0
            for q in range(n):
                acc += A[a, q] * X[xo + q]
            trig[a] = np.cos(acc)
            trig[r + a] = np.sin(acc)
        eo = t * B * n_in + b * n_in + k
        no = t * B * p + b * p
        for i in range(p):
            xo = max(t - rdel[i], 0) * B * n + b * n
            acc = oc[i] + noise[no + i]
            for q in range(n):
                acc += L[i, q] * X[xo + q]
            for a in range(r):
                acc += Rc[i, a] * trig[a] + Rs[i, a] * trig[r + a]
            E[eo + i] = acc


@_helper
def _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed, deriv,
                  B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
    """Step ``t`` of the loop up to the plant: the network input (unless ``fixed``: the
    inputs ``E`` are given, ``feedback="data"``), the network, and the controls ``U[t]``.
    Returns False if a control is not finite."""
    n_in = E.size // (T * B)
    w_in = _blk(W, offs[O_IN], n_in, H)
    b_in = W[offs[O_IN + 1]:offs[O_IN + 2]]
    w_out = _blk(W, offs[O_OUT], H, m)
    b_out = W[offs[O_OUT + 1]:offs[O_OUT + 2]]
    w_rec = _blk(W, offs[O_REC], H, H)
    b_rec = W[offs[O_REC + 1]:offs[O_REC + 2]]
    z2 = _blk(z, 0, B, H)
    y2 = _blk(y, 0, B, m)
    a2 = _blk(a, 0, B, m)
    if not fixed:
        for b in range(B):
            for i in range(k):
                E[t * B * n_in + b * n_in + i] = goals[t * B * k + b * k + i]
        _observe(X, t, B, n, obs, noise, E, n_in, k)
    _gemm(_blk(E, t * B * n_in, B, n_in), False, w_in, False, z2, False)
    if t > 0:
        _gemm(_blk(Sa, (t - 1) * B * H, B, H), False, w_rec, False, z2, True)
    for b in range(B):
        for h in range(H):
            z2[b, h] += b_in[h] + (0.0 if t > 0 else b_rec[h])
    s_t = _blk(Sa, t * B * H, B, H)
    _elementwise(codes[0], prm[0], z2, s_t, _blk(FD, t * B * H, B, H) if deriv else z2,
                 deriv)
    _gemm(s_t, False, w_out, False, y2, False)
    for b in range(B):
        for i in range(m):
            y2[b, i] += b_out[i]
    _elementwise(codes[1], prm[1], y2, a2, _blk(GD, t * B * m, B, m) if deriv else y2, deriv)
    finite = True
    for b in range(B):
        for i in range(m):
            u = scale[i] * np.float64(a2[b, i])
            U[t * B * m + b * m + i] = u
            if not np.isfinite(u):
                finite = False
    return finite


# One entry point per plant: the time loop, calling the plant's compiled step by name (a
# function passed as an argument would make numba compile a first-class function type).
# A plant kernel returns -1 when the step is finite.
@njit(cache=True, nogil=True)
def rollout_pendulum(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                     deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the pendulum: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_pendulum(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                               dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_cartpole(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                     deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the cart-pole: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_cartpole(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                               dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_two_link(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                     deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the two-link arm: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_two_link(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                               dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_three_link(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                       deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the three-link arm: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_three_link(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                                 dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_chain(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                  deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with a planar chain of any length: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_chain(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                            dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_linear(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                   deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with a linear plant: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_linear(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                             dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_muscle_arm(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                       deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the muscle arm: returns -1, or the first step whose control or
    next state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_muscle_arm(pp, _view(X, t * B * n, (B, n)),
                                 _view(U, t * B * m, (B, 1, m)), dummy, False,
                                 _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_point_mass(pp, ws, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                       deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the point mass: returns -1, or the first step whose control or
    next state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, obs, fixed,
                             deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_point_mass(pp, _view(X, t * B * n, (B, n)),
                                 _view(U, t * B * m, (B, 1, m)), dummy, False,
                                 _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


#: The closed-loop rollout for each plant's step kernel.
ROLLOUTS = {
    pk.rollout_pendulum: rollout_pendulum,
    pk.rollout_cartpole: rollout_cartpole,
    pk.rollout_two_link: rollout_two_link,
    pk.rollout_three_link: rollout_three_link,
    pk.rollout_chain: rollout_chain,
    pk.rollout_linear: rollout_linear,
    pk.rollout_muscle_arm: rollout_muscle_arm,
    pk.rollout_point_mass: rollout_point_mass,
}


@_helper
def _row(buf, off, size):
    """``size`` consecutive elements of a flat buffer from ``off`` (a 1-D view)."""
    return _view(buf, off, (size,))


@_helper
def _plant_r_step(A, Bm, RX, RU, t, n, m, B, b0, Bp):
    """``R{x}_{t+1} = A_t R{x}_t + B_t R{u}_t`` for the partition's samples, vectorised
    over them (the plant side is batch-minor: one row of ``B`` samples per entry)."""
    for i in range(n):
        nxt = _row(RX, ((t + 1) * n + i) * B + b0, Bp)
        for b in range(Bp):
            nxt[b] = 0.0
        for q in range(n):
            a = _row(A, ((t * n + i) * n + q) * B + b0, Bp)
            x = _row(RX, (t * n + q) * B + b0, Bp)
            for b in range(Bp):
                nxt[b] += a[b] * x[b]
        for q in range(m):
            bm = _row(Bm, ((t * n + i) * m + q) * B + b0, Bp)
            u = _row(RU, (t * m + q) * B + b0, Bp)
            for b in range(Bp):
                nxt[b] += bm[b] * u[b]


@_helper
def _obs_r(Jo, RX, t, rdel, p, n, B, b0, Bp, acc, tpo):
    """``R{o}`` of what the network senses at step ``t``, row ``i`` being ``Jo_j R{x}_j`` at
    ``j = t - rdel_i`` (zero where ``j < 0``: the row reads ``x_0``, fixed), into ``tpo
    [p, Bp]`` (the network's dtype), vectorised over the samples; ``acc``: a float64 work
    row of ``Bp``."""
    for i in range(p):
        for b in range(Bp):
            acc[b] = 0.0
        j = t - rdel[i]
        for q in range(n if j >= 0 else 0):
            jo = _row(Jo, ((j * p + i) * n + q) * B + b0, Bp)
            x = _row(RX, (j * n + q) * B + b0, Bp)
            for b in range(Bp):
                acc[b] += jo[b] * x[b]
        out = tpo[i]
        for b in range(Bp):
            out[b] = acc[b]


@_helper
def _ones_row(ones, w_row, c):
    """``c[r, :] = w_row`` on every row (``ones [rows, 1] @ w_row [1, cols]``)."""
    _gemm(ones, False, w_row, False, c, False)


@njit(cache=True, nogil=True)
def backward(W, V, w_outT, w_recT, w_obsT, offs, scale, exact, gv, rdel, B, T, n, m, k, H,
             b0, Bp, E, Sa, FD, GD, A, Bm, Jo, hx, hu, gx, gu, RX, RU, RS, DZ, lam, adj, xb,
             yb, tp, tpt, ones, vbias, tmp, gbuf, out):
    """The gradient (``gv`` false: errors ``gx``/``gu`` on the states and controls, already
    divided by the batch) or ``G V`` (``gv`` true: the R-forward pass of ``V``, then the
    errors ``hx R{x}`` and ``hu R{u}``) back-propagated through plant, observation and
    network, for the samples ``b0 .. b0 + Bp - 1`` (a partition of the batch), into
    ``out`` (float64, the size of ``W``). ``rdel [p]``: each observation row's delay
    (steps): row ``i`` at step ``t`` sensed ``x_{t - rdel_i}``.

    Layouts (flat, time-major): the network side is batch-major, a step's ``[B, q]``
    block of ``E``, ``Sa``, ``FD`` (``f'(z)``), ``GD`` (``g'(y)``), ``RS`` and ``DZ`` at
    ``t * B * q`` (a partition's rows contiguous in it), so that its products are small
    matrix products over the partition's rows; the plant side is batch-minor, one row of
    ``B`` samples per entry, so that the plant's per-sample algebra (``n`` and ``m`` are
    a handful) is vectorised over the samples: ``A [T, n, n, B]``, ``Bm [T, n, m, B]``
    (the plant's step Jacobians), ``Jo [T + 1, p, n, B]`` (the observation's), ``hx
    [T + 1, n, n, B]`` (the cost's curvature in the states, divided by the batch), ``gx
    [T + 1, n, B]``, ``gu [T, m, B]``, ``RX [T + 1, n, B]``, ``RU [T, m, B]``, ``lam
    [n, B]``, ``adj [T + 1, n, B]`` (float64). ``hu``: the cost's curvature in each
    control entry, divided by the batch. ``w_outT``, ``w_recT``, ``w_obsT``: transposed
    copies of ``W_out``, ``W_rec`` and the observation rows of ``W_in`` (the backward
    products are then plain ones). ``exact``: follow the feedback path (else the
    observations are data).

    Per step, everything is a small product over the partition's rows while the step's
    blocks are in cache (:func:`~._blas._gemm`, :func:`~._blas._fused_step`), the
    recurrent step fused with ``f'(z)``; the weight gradients are accumulated step by
    step too (into ``gbuf``, the network's dtype, laid out as ``W``), instead of one
    product over all steps at the end, which streams its operands through the cache once
    per block of the result. Partition work buffers: ``xb [max(n, m), Bp]`` (float64),
    ``yb [Bp, m]``, ``tp [Bp, p]``, ``tpt [p, Bp]``, ``ones [Bp, 1]`` (filled),
    ``vbias [3, H]`` and ``tmp`` (``Bp * H``; the network's dtype).
    """
    n_in = E.size // (T * B)
    p = n_in - k
    dt = E.dtype.type
    dmin = rdel.min() if p > 0 else 0  # no row senses anything that moves before this step
    w_obs = _blk(W, offs[O_IN] + k * H, p, H)
    w_out = _blk(W, offs[O_OUT], H, m)
    w_rec = _blk(W, offs[O_REC], H, H)
    g_in = _blk(gbuf, offs[O_IN], n_in, H)
    gb_in = _blk(gbuf, offs[O_IN + 1], 1, H)
    g_out = _blk(gbuf, offs[O_OUT], H, m)
    gb_out = _blk(gbuf, offs[O_OUT + 1], 1, m)
    g_rec = _blk(gbuf, offs[O_REC], H, H)
    gb_rec = _blk(gbuf, offs[O_REC + 1], 1, H)
    for i in range(gbuf.size):
        gbuf[i] = 0.0
    tpo = _blk(tpt, 0, p, Bp)
    yt = _blk(yb, 0, Bp, m)
    if gv:
        v_in = _blk(V, offs[O_IN], n_in, H)
        v_out = _blk(V, offs[O_OUT], H, m)
        v_rec = _blk(V, offs[O_REC], H, H)
        # the direction's biases as rows: b_in + b_rec (step 0), b_in, b_out
        for h in range(H):
            vbias[h] = V[offs[O_IN + 1] + h] + V[offs[O_REC + 1] + h]
            vbias[H + h] = V[offs[O_IN + 1] + h]
        for i in range(m):
            vbias[2 * H + i] = V[offs[O_OUT + 1] + i]
        for q in range(n):
            x0 = _row(RX, q * B + b0, Bp)
            for b in range(Bp):
                x0[b] = 0.0
        for t in range(T):
            # R{z_t} = e_t V_in + b_V + s_{t-1} V_rec + R{o_t} W_obs, then
            # R{s_t} = f'(z_t) (R{z_t} + R{s_{t-1}} W_rec)
            rzt = _blk(RS, (t * B + b0) * H, Bp, H)
            _ones_row(ones, _blk(vbias, 0 if t == 0 else H, 1, H), rzt)
            _gemm(_blk(E, (t * B + b0) * n_in, Bp, n_in), False, v_in, False, rzt, True)
            if t > 0:
                _gemm(_blk(Sa, ((t - 1) * B + b0) * H, Bp, H), False, v_rec, False, rzt, True)
            if exact and p > 0 and t >= dmin:
                _obs_r(Jo, RX, t, rdel, p, n, B, b0, Bp, _row(xb, 0, Bp), tpo)
                _gemm(tpo, True, w_obs, False, rzt, True)
            fdt = _blk(FD, (t * B + b0) * H, Bp, H)
            if t > 0:
                _fused_step(_blk(RS, ((t - 1) * B + b0) * H, Bp, H), w_rec, rzt, fdt, rzt, tmp)
            else:
                rf, df = _flat(rzt), _flat(fdt)
                for i in range(rf.size):
                    rf[i] = df[i] * rf[i]
            # R{y_t} = b_V_out + s_t V_out + R{s_t} W_out; R{u_t} = c g'(y_t) R{y_t}
            _ones_row(ones, _blk(vbias, 2 * H, 1, m), yt)
            _gemm(_blk(Sa, (t * B + b0) * H, Bp, H), False, v_out, False, yt, True)
            _gemm(rzt, False, w_out, False, yt, True)
            gd = _blk(GD, (t * B + b0) * m, Bp, m)
            for i in range(m):
                ru = _row(RU, (t * m + i) * B + b0, Bp)
                for b in range(Bp):
                    ru[b] = scale[i] * np.float64(gd[b, i] * yt[b, i])
            _plant_r_step(A, Bm, RX, RU, t, n, m, B, b0, Bp)
    # backward, from the last step: lam = dE/dx_{t+1}, adj = the observations' share
    for q in range(n):
        lq = _row(lam, q * B + b0, Bp)
        for b in range(Bp):
            if gv:
                acc = 0.0
                for i in range(n):
                    acc += hx[((T * n + q) * n + i) * B + b0 + b] * RX[(T * n + i) * B + b0 + b]
                lq[b] = acc
            else:
                lq[b] = gx[(T * n + q) * B + b0 + b]
        for t in range(T + 1):
            aq = _row(adj, (t * n + q) * B + b0, Bp)
            for b in range(Bp):
                aq[b] = 0.0
    for t in range(T - 1, -1, -1):
        # dE/dy_t = g'(y_t) c (hu R{u_t} or gu_t + B_t^T lam)
        for i in range(m):
            du = _row(xb, i * Bp, Bp)
            src = _row(RU if gv else gu, (t * m + i) * B + b0, Bp)
            f = hu if gv else 1.0
            for b in range(Bp):
                du[b] = f * src[b]
            for q in range(n):
                bm = _row(Bm, ((t * n + q) * m + i) * B + b0, Bp)
                lq = _row(lam, q * B + b0, Bp)
                for b in range(Bp):
                    du[b] += bm[b] * lq[b]
        gd = _blk(GD, (t * B + b0) * m, Bp, m)
        for b in range(Bp):
            for i in range(m):
                yt[b, i] = gd[b, i] * dt(scale[i] * xb[i * Bp + b])
        # dE/dz_t = f'(z_t) (dy_t W_out^T + dz_{t+1} W_rec^T)
        dzt = _blk(DZ, (t * B + b0) * H, Bp, H)
        _gemm(yt, False, w_outT, False, dzt, False)
        fdt = _blk(FD, (t * B + b0) * H, Bp, H)
        if t < T - 1:
            _fused_step(_blk(DZ, ((t + 1) * B + b0) * H, Bp, H), w_recT, dzt, fdt, dzt, tmp)
        else:
            zf, df = _flat(dzt), _flat(fdt)
            for i in range(zf.size):
                zf[i] = df[i] * zf[i]
        # the weight gradients of this step, while its blocks are in cache
        st = _blk(Sa, (t * B + b0) * H, Bp, H)
        _gemm(st, True, yt, False, g_out, True)
        _gemm(ones, True, yt, False, gb_out, True)
        _gemm(_blk(E, (t * B + b0) * n_in, Bp, n_in), True, dzt, False, g_in, True)
        _gemm(ones, True, dzt, False, gb_in, True)
        if t > 0:
            _gemm(_blk(Sa, ((t - 1) * B + b0) * H, Bp, H), True, dzt, False, g_rec, True)
        else:
            _gemm(ones, True, dzt, False, gb_rec, True)
        # row i sensed x_j (j = t - rdel_i): it passes (dz_t W_obs^T)_i back to x_j
        if exact and p > 0 and t >= dmin:
            tpb = _blk(tp, 0, Bp, p)
            _gemm(dzt, False, w_obsT, False, tpb, False)
            for i in range(p):
                ti = tpo[i]
                for b in range(Bp):
                    ti[b] = tpb[b, i]
            for i in range(p):
                j = t - rdel[i]
                if j < 0:
                    continue
                ti = tpo[i]
                for q in range(n):
                    aq = _row(adj, (j * n + q) * B + b0, Bp)
                    jo = _row(Jo, ((j * p + i) * n + q) * B + b0, Bp)
                    for b in range(Bp):
                        aq[b] += jo[b] * np.float64(ti[b])
        # lam <- e_x(t) + adj(t) + A_t^T lam
        for q in range(n):
            nq = _row(xb, q * Bp, Bp)
            aq = _row(adj, (t * n + q) * B + b0, Bp)
            if gv:
                for b in range(Bp):
                    nq[b] = aq[b]
                for i in range(n):
                    hq = _row(hx, ((t * n + q) * n + i) * B + b0, Bp)
                    xi = _row(RX, (t * n + i) * B + b0, Bp)
                    for b in range(Bp):
                        nq[b] += hq[b] * xi[b]
            else:
                gq = _row(gx, (t * n + q) * B + b0, Bp)
                for b in range(Bp):
                    nq[b] = aq[b] + gq[b]
            for i in range(n):
                ai = _row(A, ((t * n + i) * n + q) * B + b0, Bp)
                li = _row(lam, i * B + b0, Bp)
                for b in range(Bp):
                    nq[b] += ai[b] * li[b]
        for q in range(n):
            nq = _row(xb, q * Bp, Bp)
            lq = _row(lam, q * B + b0, Bp)
            for b in range(Bp):
                lq[b] = nq[b]
    for i in range(out.size):
        out[i] = gbuf[i]


# ====================================================================== Python glue
class CompiledLoop:
    """The compiled closed loop of a :class:`~hfcontrol.closed_loop.ClosedLoop` for one
    batch shape ``(B, T)``: its work buffers, and one call per rollout, gradient or ``G v``.

    Built by :meth:`for_loop`, which returns None when the loop cannot be compiled (a
    plant without compiled kernels, or a nonlinearity without one).
    """

    def __init__(self, loop, rollout, codes, prm, B: int, T: int):
        self.loop, self.rollout_kernel = loop, rollout
        self.codes, self.prm = codes, prm
        self.B, self.T = B, T
        n, m, H = loop.n, loop.m, loop.net.shape[1]
        n_in, dt = loop.n_inputs, loop.dtype
        self.X = np.empty((T + 1) * B * n)
        self.U = np.empty(T * B * m)
        self.E = np.empty(T * B * n_in, dt)
        self.S = np.empty(T * B * H, dt)
        self.FD = np.empty(T * B * H, dt)
        self.GD = np.empty(T * B * m, dt)
        self.z = np.empty(B * H, dt)
        self.y = np.empty(B * m, dt)
        self.a = np.empty(B * m, dt)
        self.dummy = np.empty((1, 1, 1))
        self.zero_noise: np.ndarray | None = None
        net = loop.net
        self.offs = np.array([*net.offsets[(0, 1)], *net.offsets[(1, 2)], *net.offsets[(1, 1)]],
                             np.int64)
        self.ws = np.empty(loop.plant.workspace_size)
        # what _observe needs: the stacked map, each row's and angle's delay, a work row
        obs, senses = loop.observation, loop.senses
        self.obs = (obs.L, obs.A, obs.Rc, obs.Rs, obs.c, senses.row_delays,
                    senses.angle_delays, np.empty(max(2 * obs.A.shape[0], 1)))
        # backward work buffers (float64 on the plant side, batch-minor; see backward)
        p = loop.observation.size
        self.RX = np.empty((T + 1) * B * n)
        self.RU = np.empty(T * B * m)
        self.RS = np.empty(T * B * H, dt)
        self.DZ = np.empty(T * B * H, dt)
        self.lam = np.empty(B * n)
        self.adj = np.empty((T + 1) * B * n)
        self.parts = _partitions(B, T, H, n_in, m)
        self.work = [_PartitionBuffers(bp, n, m, p, H, net.n_params, dt)
                     for _, bp in self.parts]

    @classmethod
    def for_loop(cls, loop, B: int, T: int) -> CompiledLoop | None:
        """A compiled loop for ``loop`` at batch shape ``(B, T)``, or None."""
        spec = cls.spec(loop)
        return None if spec is None else cls(loop, *spec, B, T)

    @staticmethod
    def spec(loop) -> tuple | None:
        """``(rollout kernel, nonlinearity codes, their parameters)`` of ``loop``, or None
        if it cannot be compiled."""
        from .plan import SOFTMAX, USER, layer_params

        kernels = getattr(loop.plant, "kernels", None)
        rollout = ROLLOUTS.get(kernels[0]) if kernels is not None else None
        if rollout is None:
            return None
        codes, prm = np.zeros(2, np.int64), np.zeros((2, 4))
        for i, layer in enumerate(loop.net.layers[1:]):
            spec = layer_params(layer)
            if spec is None or spec[1] or len(spec[2]) != 4:
                return None
            codes[i], prm[i] = spec[0], spec[2]
        if np.isin(codes, [SOFTMAX, USER]).any():
            return None
        return rollout, codes, prm

    def run(self, W, x0, goals, noise, fixed=None, deriv: bool = True) -> int:
        """Roll out from ``x0 [B, n]`` with task inputs ``goals [B, T, k]`` and observation
        noise ``noise [B, T, p]`` (None: none) (or with the network inputs ``fixed
        [T * B * n_in]``, time-major); returns -1 or the step where the loop blew up."""
        loop, B, T = self.loop, self.B, self.T
        n = loop.n
        self.X[:B * n] = x0.reshape(-1)
        if fixed is not None:
            self.E[:] = fixed
        goals_tm = np.ascontiguousarray(goals.transpose(1, 0, 2), loop.dtype).reshape(-1)
        if noise is None:
            if self.zero_noise is None:
                self.zero_noise = np.zeros(T * B * loop.observation.size)
            noise_tm = self.zero_noise
        else:
            noise_tm = np.ascontiguousarray(noise.transpose(1, 0, 2), np.float64).reshape(-1)
        with _kernel_blas_threads(1):  # its products are small: threads only cost
            return int(self.rollout_kernel(
                loop.plant.kernel_params, self.ws, W, self.offs, self.codes, self.prm,
                loop.control_scale, goals_tm, noise_tm, self.obs, fixed is not None, deriv, B,
                T, n, loop.m, loop.k, loop.net.shape[1], self.X,
                self.U, self.E, self.S, self.FD, self.GD, self.z, self.y, self.a, self.dummy))

    def states(self) -> np.ndarray:
        """``X [T + 1, B, n]`` of the last run (a view)."""
        return self.X.reshape(self.T + 1, self.B, self.loop.n)

    def controls(self) -> np.ndarray:
        """``U [T, B, m]`` of the last run (a view)."""
        return self.U.reshape(self.T, self.B, self.loop.m)

    def derivatives(self, W, A, Bm, Jo, terms) -> dict:
        """What :meth:`backward` needs at a rollout at ``W`` (the last :meth:`run`), in the
        kernel's layouts: copies of the network's buffers (a trial rollout reuses them),
        the plant's step Jacobians ``A [T * B, n, n]``, ``Bm [T * B, n, m]`` (time-major
        rows), the observation's Jacobian ``Jo [T + 1, B, p, n]`` and the cost's
        derivatives ``terms`` (sample-major, :class:`~hfcontrol.task_cost.CostTerms`)
        batch-minor and divided by the batch, and the transposed weight matrices."""
        loop, B, T = self.loop, self.B, self.T
        n, m, k, H = loop.n, loop.m, loop.k, loop.net.shape[1]

        def minor(a, axes):  # a copy with the batch axis last, flat
            return np.ascontiguousarray(np.transpose(a, axes), np.float64).reshape(-1)

        def transposed(start, rows, cols):
            return np.ascontiguousarray(W[start:start + rows * cols].reshape(rows, cols).T)

        p = loop.observation.size
        return {"E": self.E.copy(), "S": self.S.copy(), "FD": self.FD.copy(),
                "GD": self.GD.copy(),
                "A": minor(A.reshape(T, B, n, n), (0, 2, 3, 1)),
                "Bm": minor(Bm.reshape(T, B, n, m), (0, 2, 3, 1)),
                "Jo": minor(Jo, (0, 2, 3, 1)),
                "hx": minor(terms.hx / B, (1, 2, 3, 0)), "hu": float(terms.hu) / B,
                "gx": minor(terms.gx / B, (1, 2, 0)), "gu": minor(terms.gu / B, (1, 2, 0)),
                "w_outT": transposed(self.offs[O_OUT], H, m),
                "w_recT": transposed(self.offs[O_REC], H, H),
                "w_obsT": transposed(self.offs[O_IN] + k * H, p, H)}

    def backward(self, W, V, derivs: dict, gv: bool) -> np.ndarray:
        """The gradient (``gv`` false) or ``G V`` at the rollout whose :meth:`derivatives`
        are ``derivs`` (see :func:`backward`); float64, the size of ``W``. The batch's
        partitions run at once on the kernels' threads, each with single-threaded BLAS."""
        from .runner import _run_all

        calls = [functools.partial(self._backward, W, V, derivs, gv, b0, bp, work)
                 for (b0, bp), work in zip(self.parts, self.work, strict=True)]
        with _kernel_blas_threads(1):
            _run_all(calls)
        out = self.work[0].out
        for work in self.work[1:]:
            out = out + work.out
        return out.copy() if len(self.work) == 1 else out

    def _backward(self, W, V, d, gv, b0, bp, w):
        loop = self.loop
        backward(W, W if V is None else V, d["w_outT"], d["w_recT"], d["w_obsT"], self.offs,
                 loop.control_scale, loop.feedback == "exact", gv, loop.senses.row_delays,
                 self.B, self.T,
                 loop.n, loop.m, loop.k, loop.net.shape[1], b0, bp, d["E"], d["S"], d["FD"],
                 d["GD"], d["A"], d["Bm"], d["Jo"], d["hx"], d["hu"], d["gx"], d["gu"],
                 self.RX, self.RU, self.RS, self.DZ, self.lam, self.adj, w.xb, w.yb, w.tp,
                 w.tpt, w.ones, w.vbias, w.tmp, w.gbuf, w.out)


#: A gradient or ``G v`` of the closed loop is split over threads when each partition
#: has at least this many multiply-adds of the network's forward pass (the networks'
#: threshold, :data:`~.runner.MIN_MACS_PER_THREAD`) and PARTITION_SAMPLES samples. The
#: arm-reach problem (batch 64) stays on one thread: measured on the shared 2-core
#: machine under load, its ``G v`` in two partitions took a median of 4.5 ms against
#: 1.7 ms on one thread (a partition that loses its core holds up the call); twice the
#: batch is split.
MIN_MACS_PER_THREAD = 4_000_000
PARTITION_SAMPLES = 16


def _partitions(B: int, T: int, H: int, n_in: int, m: int) -> list[tuple[int, int]]:
    """``(b0, Bp)`` of the partitions of a batch of ``B`` samples for :meth:`CompiledLoop.backward`."""
    from .runner import get_num_threads

    macs = T * B * (n_in * H + H * H + H * m)
    parts = max(1, min(get_num_threads(), macs // MIN_MACS_PER_THREAD,
                       B // PARTITION_SAMPLES))
    bounds = [B * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - bounds[i]) for i in range(parts)]


class _PartitionBuffers:
    """The work buffers of one partition of :func:`backward` (``Bp`` samples)."""

    def __init__(self, Bp: int, n: int, m: int, p: int, H: int, n_params: int, dtype):
        self.xb = np.empty(max(n, m, 1) * Bp)
        self.yb = np.empty(Bp * m, dtype)
        self.tp = np.empty(max(Bp * p, 1), dtype)
        self.tpt = np.empty(max(Bp * p, 1), dtype)
        self.ones = np.ones((Bp, 1), dtype)
        self.vbias = np.empty(2 * H + m, dtype)
        self.tmp = np.empty(Bp * H, dtype)
        self.gbuf = np.empty(n_params, dtype)
        self.out = np.empty(n_params)
