"""Compiled per-sample step and Jacobian kernels, and batched loops over them.

Public per-sample kernels (callable from other ``@njit`` code, e.g. a network's time loop):

``step_sample(code, params, x, u, out)``
    One full step ``out = x_next``. Allocates its own scratch.
``step_sample_ws(code, params, x, u, out, ws)``
    Same with caller-provided scratch ``ws`` (``int(params[15])`` float64 elements).
    Preferred inside loops: it allocates nothing.
``jacobians_sample(code, params, x, u, A_out, B_out)`` / ``jacobians_sample_ws(..., ws)``
    ``A_out = dx_next/dx`` (n, n) and ``B_out = dx_next/du`` (n, m): the exact derivative of
    the discrete step (integrator, substeps, control clipping, velocity clipping and joint
    stops included). Returns nothing; also writes nothing else.

``code`` is the plant code (``params[0]``); the parameter layout is in :mod:`plants._layout`.
Pass ``code`` and ``params`` to your compiled function as *arguments*: if they are captured
as globals or closure constants, Numba types them as literals/frozen constants and compiles
all the plant kernels again for those types (tens of seconds), instead of loading them from
the cache.
The integrator is chosen at run time from ``params[1]`` so there is a single compiled
specialisation for every integrator and plant.

Integrators, for one substep of length ``h = dt / substeps`` with the control held constant:

* Euler: ``z' = z + h f(z, u)``
* semi-implicit (symplectic) Euler: ``v' = clip(v + h a(q, v, u))``, ``q' = q + h v'``
* RK4: the classical fourth-order Runge-Kutta scheme
* discrete (LinearPlant only): ``z' = f(z, u)``

Order of operations in a step: clip ``u`` to its limits once; for each substep integrate,
clip velocities to ``v_max`` (semi-implicit: before the position update), then apply joint
stops (a coordinate past its limit is set to the limit and its velocity, if still moving
outward, to zero; an inelastic stop).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._dyn_cartpole import deriv_cartpole, deriv_jac_cartpole
from ._dyn_chain import chain_energy, deriv_chain, deriv_jac_chain
from ._dyn_linear import deriv_jac_linear, deriv_linear
from ._dyn_pendulum import deriv_jac_pendulum, deriv_pendulum
from ._layout import (
    CARTPOLE,
    CHAIN,
    EULER,
    H_DT,
    H_INTEG,
    H_M,
    H_N,
    H_NQ,
    H_POS,
    H_QHI,
    H_QLO,
    H_SUB,
    H_UHI,
    H_ULO,
    H_VEL,
    H_VMAX,
    H_WS,
    HOT,
    HOT_INLINE,
    PENDULUM,
    RK4,
    SEMI_IMPLICIT,
    integrator_workspace,
)


@njit(**HOT_INLINE)
def deriv(code, p, w, oz, odz, ow):
    """Continuous-time right-hand side ``w[odz:] = f(w[oz:], w[0:m])`` (the map for DISCRETE)."""
    if code == CHAIN:
        deriv_chain(p, w, oz, odz, ow)
    elif code == PENDULUM:
        deriv_pendulum(p, w, oz, odz, ow)
    elif code == CARTPOLE:
        deriv_cartpole(p, w, oz, odz, ow)
    else:
        deriv_linear(p, w, oz, odz, ow)


@njit(**HOT_INLINE)
def deriv_jac(code, p, w, oz, odz, oF, oG, ow):
    """``f`` and its partials ``Fz = df/dz`` (at ``w[oF:]``), ``Fu = df/du`` (at ``w[oG:]``)."""
    if code == CHAIN:
        deriv_jac_chain(p, w, oz, odz, oF, oG, ow)
    elif code == PENDULUM:
        deriv_jac_pendulum(p, w, oz, odz, oF, oG, ow)
    elif code == CARTPOLE:
        deriv_jac_cartpole(p, w, oz, odz, oF, oG, ow)
    else:
        deriv_jac_linear(p, w, oz, odz, oF, oG, ow)


@njit(**HOT_INLINE)
def _load(p, w, x, u, m):
    """Copy the state to ``w[2m:]`` and the clipped control to ``w[0:m]`` (mask ``w[m:2m]``)."""
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    for j in range(m):
        a = u[j]
        w[m + j] = 1.0
        if a > p[hi + j]:
            a = p[hi + j]
            w[m + j] = 0.0
        elif a < p[lo + j]:
            a = p[lo + j]
            w[m + j] = 0.0
        w[j] = a
    for i in range(x.shape[0]):
        w[2 * m + i] = x[i]


@njit(**HOT_INLINE)
def _zero_row(w, oA, oB, k, n, m):
    for j in range(n):
        w[oA + k * n + j] = 0.0
    for j in range(m):
        w[oB + k * m + j] = 0.0


@njit(**HOT_INLINE)
def _clip_velocities(p, w, oz, oA, oB, n, m, jac):
    nq = int(p[H_NQ])
    vo = int(p[H_VMAX])
    vi = int(p[H_VEL])
    for i in range(nq):
        k = int(p[vi + i])
        vm = p[vo + i]
        if w[oz + k] > vm or w[oz + k] < -vm:
            w[oz + k] = vm if w[oz + k] > 0 else -vm
            if jac:
                _zero_row(w, oA, oB, k, n, m)


@njit(**HOT_INLINE)
def _joint_stops(p, w, oz, oA, oB, n, m, jac):
    nq = int(p[H_NQ])
    lo = int(p[H_QLO])
    hi = int(p[H_QHI])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    for i in range(nq):
        k = int(p[pi + i])
        kv = int(p[vi + i])
        q = w[oz + k]
        if q > p[hi + i] or q < p[lo + i]:
            up = q > p[hi + i]
            w[oz + k] = p[hi + i] if up else p[lo + i]
            if jac:
                _zero_row(w, oA, oB, k, n, m)
            if (up and w[oz + kv] > 0.0) or ((not up) and w[oz + kv] < 0.0):
                w[oz + kv] = 0.0
                if jac:
                    _zero_row(w, oA, oB, kv, n, m)


@njit(**HOT)
def _step_flat(code, p, w):
    """Advance the state at ``w[2m:2m+n]`` by one step (control already in ``w[0:m]``).

    The built-in plants' sizes are passed as constants so that the compiler can unroll the
    integrator loops and drop the other plants' branches (one source, several copies).
    """
    integ, S, h, vclip, stops = _step_config(p, False)
    if code == PENDULUM:
        _advance(PENDULUM, p, w, 2, 1, integ, S, h, vclip, stops)
    elif code == CARTPOLE:
        _advance(CARTPOLE, p, w, 4, 1, integ, S, h, vclip, stops)
    elif code == CHAIN and p[H_N] == 4.0:
        _advance(CHAIN, p, w, 4, 2, integ, S, h, vclip, stops)
    elif code == CHAIN and p[H_N] == 6.0:
        _advance(CHAIN, p, w, 6, 3, integ, S, h, vclip, stops)
    else:
        _advance(code, p, w, int(p[H_N]), int(p[H_M]), integ, S, h, vclip, stops)


@njit(**HOT_INLINE)
def _step_config(p, scan):
    """The integrator settings, read from ``params`` once per batched call.

    ``vclip`` / ``stops``: run the velocity-clipping / joint-stop passes. With ``scan`` they
    are off unless some limit is finite (an infinite limit never acts, so skipping the pass
    changes nothing); without it (one sample: the scan would cost more than it saves) they
    are on whenever the plant has position coordinates.
    """
    integ = int(p[H_INTEG])
    S = int(p[H_SUB])
    h = p[H_DT] / S
    nq = int(p[H_NQ])
    vclip = (not scan) and nq > 0
    stops = (not scan) and nq > 0
    for i in range(nq if scan else 0):
        if np.isfinite(p[int(p[H_VMAX]) + i]):
            vclip = True
        if np.isfinite(p[int(p[H_QLO]) + i]) or np.isfinite(p[int(p[H_QHI]) + i]):
            stops = True
    return integ, S, h, vclip, stops


@njit(**HOT_INLINE)
def _advance(code, p, w, n, m, integ, S, h, vclip, stops):
    """One step of the state at ``w[2m:]`` with the settings of :func:`_step_config`."""
    oz = 2 * m
    o1 = oz + n
    o2 = oz + 2 * n
    o3 = oz + 3 * n
    o4 = oz + 4 * n
    ot = oz + 5 * n
    ow = integrator_workspace(n, m)
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    vo = int(p[H_VMAX])
    ns = 4 if integ == RK4 else 1
    for _ in range(S):
        # one call site for the right-hand side keeps the compiled code small
        for st in range(ns):
            src = oz if st == 0 else ot
            dst = o1 + st * n
            deriv(code, p, w, src, dst, ow)
            if integ == RK4 and st < 3:
                c = h if st == 2 else 0.5 * h
                for i in range(n):
                    w[ot + i] = w[oz + i] + c * w[dst + i]
        if integ == RK4:
            for i in range(n):
                w[oz + i] += h / 6.0 * (w[o1 + i] + 2.0 * w[o2 + i] + 2.0 * w[o3 + i] + w[o4 + i])
            if vclip:
                _clip_velocities(p, w, oz, 0, 0, n, m, False)
        elif integ == SEMI_IMPLICIT:
            for i in range(nq):
                kv = int(p[vi + i])
                kq = int(p[pi + i])
                vn = w[oz + kv] + w[o1 + kv] * h
                vm = p[vo + i]
                if vn > vm:
                    vn = vm
                elif vn < -vm:
                    vn = -vm
                w[oz + kv] = vn
                w[oz + kq] = w[oz + kq] + vn * h
        elif integ == EULER:
            for i in range(n):
                w[oz + i] += h * w[o1 + i]
            if vclip:
                _clip_velocities(p, w, oz, 0, 0, n, m, False)
        else:
            for i in range(n):
                w[oz + i] = w[o1 + i]
        if stops:
            _joint_stops(p, w, oz, 0, 0, n, m, False)


@njit(**HOT_INLINE)
def _matmul(w, oA, oB, oC, n, k, c):
    """``C = A @ B`` for row-major blocks of ``w``: A (n x k), B (k x c), C (n x c)."""
    for i in range(n):
        for j in range(c):
            s = 0.0
            for t in range(k):
                s += w[oA + i * k + t] * w[oB + t * c + j]
            w[oC + i * c + j] = s


@njit(**HOT_INLINE)
def jac_offsets(n, m):
    """Offsets of the accumulated ``A`` (n x n) and ``B`` (n x m) left by :func:`_jac_flat`."""
    base = 2 * m + 8 * n + 6 * (n * n + n * m)
    return base, base + n * n


@njit(**HOT)
def _jac_flat(code, p, w):
    """Step the state at ``w[2m:]`` and accumulate ``A``, ``B`` at :func:`jac_offsets`.

    The two built-in arms get their sizes as constants here, as in :func:`_step_flat` (the
    other plants share the generic copy, to keep compilation time down).
    """
    integ, S, h, vclip, stops = _step_config(p, False)
    if code == CHAIN and p[H_N] == 4.0:
        _jac_advance(CHAIN, p, w, 4, 2, integ, S, h, vclip, stops)
    elif code == CHAIN and p[H_N] == 6.0:
        _jac_advance(CHAIN, p, w, 6, 3, integ, S, h, vclip, stops)
    else:
        _jac_advance(code, p, w, int(p[H_N]), int(p[H_M]), integ, S, h, vclip, stops)


@njit(**HOT_INLINE)
def _jac_advance(code, p, w, n, m, integ, S, h, vclip, stops):
    """:func:`_jac_flat` with the settings of :func:`_step_config` already read."""
    nn = n * n
    nm = n * m
    oz = 2 * m
    ok = oz + n
    oks = oz + 2 * n
    ot = oz + 3 * n
    o = 2 * m + 8 * n
    oF, oG = o, o + nn
    oKp, oLp = o + (nn + nm), o + (nn + nm) + nn
    oKc, oLc = o + 2 * (nn + nm), o + 2 * (nn + nm) + nn
    oKs, oLs = o + 3 * (nn + nm), o + 3 * (nn + nm) + nn
    oAl, oBl = o + 4 * (nn + nm), o + 4 * (nn + nm) + nn
    oT1, oT2 = o + 5 * (nn + nm), o + 5 * (nn + nm) + nn
    oA, oB = jac_offsets(n, m)
    ow = integrator_workspace(n, m)
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    vo = int(p[H_VMAX])
    ns = 4 if integ == RK4 else 1
    for s in range(S):
        for st in range(ns):
            src = oz if st == 0 else ot
            deriv_jac(code, p, w, src, ok, oF, oG, ow)
            if integ != RK4:
                break
            if st == 0:
                for i in range(n):
                    w[oks + i] = w[ok + i]
                for i in range(nn + nm):
                    w[oKs + i] = w[oF + i]
                    w[oKp + i] = w[oF + i]
            else:
                cprev = h if st == 3 else 0.5 * h
                wgt = 1.0 if st == 3 else 2.0
                _matmul(w, oF, oKp, oKc, n, n, n)
                _matmul(w, oF, oLp, oLc, n, n, m)
                for i in range(n):
                    w[oks + i] += wgt * w[ok + i]
                for i in range(nn):
                    w[oKc + i] = w[oF + i] + cprev * w[oKc + i]
                    w[oKs + i] += wgt * w[oKc + i]
                for i in range(nm):
                    w[oLc + i] = w[oG + i] + cprev * w[oLc + i]
                    w[oLs + i] += wgt * w[oLc + i]
                if st < 3:
                    for i in range(nn + nm):
                        w[oKp + i] = w[oKc + i]
            if st < 3:
                cnext = h if st == 2 else 0.5 * h
                for i in range(n):
                    w[ot + i] = w[oz + i] + cnext * w[ok + i]
        if integ == RK4:
            for i in range(n):
                w[oz + i] += h / 6.0 * w[oks + i]
                for j in range(n):
                    w[oAl + i * n + j] = h / 6.0 * w[oKs + i * n + j] + (1.0 if i == j else 0.0)
            for i in range(nm):
                w[oBl + i] = h / 6.0 * w[oLs + i]
            if vclip:
                _clip_velocities(p, w, oz, oAl, oBl, n, m, True)
        elif integ == SEMI_IMPLICIT:
            for i in range(n):
                for j in range(n):
                    w[oAl + i * n + j] = 1.0 if i == j else 0.0
            for i in range(nm):
                w[oBl + i] = 0.0
            for i in range(nq):
                kv = int(p[vi + i])
                kq = int(p[pi + i])
                vn = w[oz + kv] + w[ok + kv] * h
                vm = p[vo + i]
                clipped = vn > vm or vn < -vm
                if vn > vm:
                    vn = vm
                elif vn < -vm:
                    vn = -vm
                w[oz + kv] = vn
                w[oz + kq] = w[oz + kq] + vn * h
                for j in range(n):
                    a = 0.0 if clipped else w[oAl + kv * n + j] + h * w[oF + kv * n + j]
                    w[oAl + kv * n + j] = a
                    w[oAl + kq * n + j] += h * a
                for j in range(m):
                    b = 0.0 if clipped else h * w[oG + kv * m + j]
                    w[oBl + kv * m + j] = b
                    w[oBl + kq * m + j] += h * b
        elif integ == EULER:
            for i in range(n):
                w[oz + i] += h * w[ok + i]
                for j in range(n):
                    w[oAl + i * n + j] = h * w[oF + i * n + j] + (1.0 if i == j else 0.0)
            for i in range(nm):
                w[oBl + i] = h * w[oG + i]
            if vclip:
                _clip_velocities(p, w, oz, oAl, oBl, n, m, True)
        else:
            for i in range(n):
                w[oz + i] = w[ok + i]
            for i in range(nn + nm):
                w[oAl + i] = w[oF + i]
        if stops:
            _joint_stops(p, w, oz, oAl, oBl, n, m, True)
        if s == 0:
            for i in range(nn + nm):
                w[oA + i] = w[oAl + i]
        else:
            _matmul(w, oAl, oA, oT1, n, n, n)
            _matmul(w, oAl, oB, oT2, n, n, m)
            for i in range(nn):
                w[oA + i] = w[oT1 + i]
            for i in range(nm):
                w[oB + i] = w[oT2 + i] + w[oBl + i]
    for j in range(m):
        if w[m + j] == 0.0:
            for i in range(n):
                w[oB + i * m + j] = 0.0


@njit(cache=True)
def step_sample_ws(code, p, x, u, out, ws):
    """One step ``out = x_next`` using the scratch array ``ws``; see the module docstring."""
    m = int(p[H_M])
    _load(p, ws, x, u, m)
    _step_flat(code, p, ws)
    for i in range(out.shape[0]):
        out[i] = ws[2 * m + i]


@njit(cache=True)
def jacobians_sample_ws(code, p, x, u, A, B, ws):
    """``A = dx_next/dx``, ``B = dx_next/du`` of one step, using the scratch array ``ws``."""
    n = int(p[H_N])
    m = int(p[H_M])
    _load(p, ws, x, u, m)
    _jac_flat(code, p, ws)
    oA, oB = jac_offsets(n, m)
    for i in range(n):
        for j in range(n):
            A[i, j] = ws[oA + i * n + j]
        for j in range(m):
            B[i, j] = ws[oB + i * m + j]


@njit(cache=True)
def step_sample(code, p, x, u, out):
    """One step ``out = x_next`` (allocates scratch; use :func:`step_sample_ws` in loops)."""
    ws = np.empty(int(p[H_WS]))
    step_sample_ws(code, p, x, u, out, ws)


@njit(cache=True)
def jacobians_sample(code, p, x, u, A_out, B_out):
    """``A_out = dx_next/dx``, ``B_out = dx_next/du`` (allocates scratch)."""
    ws = np.empty(int(p[H_WS]))
    jacobians_sample_ws(code, p, x, u, A_out, B_out, ws)


@njit(cache=True)
def _first_bad(X, U):
    """Index of the first sample whose state or control is not finite, else -1."""
    for b in range(X.shape[0]):
        for i in range(X.shape[1]):
            if not np.isfinite(X[b, i]):
                return b
        for j in range(U.shape[1]):
            if not np.isfinite(U[b, j]):
                return b
    return -1


@njit(cache=True)
def _first_nonfinite(Y):
    """``-2 - b`` for the first sample ``b`` of ``Y[B, ...]`` holding a non-finite value, else -1."""
    flat = Y.reshape(Y.shape[0], -1)
    for b in range(flat.shape[0]):
        for i in range(flat.shape[1]):
            if not np.isfinite(flat[b, i]):
                return -2 - b
    return -1


@njit(**HOT_INLINE)
def _load_row(p, w, X, U, b, m):
    """:func:`_load` for row ``b`` of batched ``X``, ``U`` (no array views)."""
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    for j in range(m):
        a = U[b, j]
        w[m + j] = 1.0
        if a > p[hi + j]:
            a = p[hi + j]
            w[m + j] = 0.0
        elif a < p[lo + j]:
            a = p[lo + j]
            w[m + j] = 0.0
        w[j] = a
    for i in range(X.shape[1]):
        w[2 * m + i] = X[b, i]


@njit(**HOT)
def _jac_rows(code, p, X, U, A, B, lo, hi, ws):
    """Jacobians of rows ``lo:hi`` (scratch ``ws``); plant and settings dispatched once."""
    if code == PENDULUM:
        _jac_rows_n(PENDULUM, p, X, U, A, B, lo, hi, ws, 2, 1)
    elif code == CARTPOLE:
        _jac_rows_n(CARTPOLE, p, X, U, A, B, lo, hi, ws, 4, 1)
    elif code == CHAIN and p[H_N] == 4.0:
        _jac_rows_n(CHAIN, p, X, U, A, B, lo, hi, ws, 4, 2)
    elif code == CHAIN and p[H_N] == 6.0:
        _jac_rows_n(CHAIN, p, X, U, A, B, lo, hi, ws, 6, 3)
    else:
        _jac_rows_n(code, p, X, U, A, B, lo, hi, ws, int(p[H_N]), int(p[H_M]))


@njit(**HOT_INLINE)
def _jac_rows_n(code, p, X, U, A, B, lo, hi, ws, n, m):
    integ, S, h, vclip, stops = _step_config(p, True)
    oA, oB = jac_offsets(n, m)
    for b in range(lo, hi):
        _load_row(p, ws, X, U, b, m)
        _jac_advance(code, p, ws, n, m, integ, S, h, vclip, stops)
        for i in range(n):
            for j in range(n):
                A[b, i, j] = ws[oA + i * n + j]
            for j in range(m):
                B[b, i, j] = ws[oB + i * m + j]


@njit(**HOT)
def _rollout_rows(code, p, X0, U, W, noisy, X, o0, lo, hi, ws):
    """Roll out samples ``lo:hi``: ``X[b, o0 + t] = x_t`` for ``t`` from ``1 - o0`` to ``T``.

    ``o0 = 1`` stores the initial state too (rollout), ``o0 = 0`` only the ``T`` new states
    (``step`` is the case ``T = 1``). The plant is dispatched and the settings are read once
    per call, outside the loop over samples (as in :func:`_step_flat`, the built-in sizes
    are constants).
    """
    if code == PENDULUM:
        _rows_n(PENDULUM, p, X0, U, W, noisy, X, o0, lo, hi, ws, 2, 1)
    elif code == CARTPOLE:
        _rows_n(CARTPOLE, p, X0, U, W, noisy, X, o0, lo, hi, ws, 4, 1)
    elif code == CHAIN and p[H_N] == 4.0:
        _rows_n(CHAIN, p, X0, U, W, noisy, X, o0, lo, hi, ws, 4, 2)
    elif code == CHAIN and p[H_N] == 6.0:
        _rows_n(CHAIN, p, X0, U, W, noisy, X, o0, lo, hi, ws, 6, 3)
    else:
        _rows_n(code, p, X0, U, W, noisy, X, o0, lo, hi, ws, int(p[H_N]), int(p[H_M]))


@njit(**HOT_INLINE)
def _rows_n(code, p, X0, U, W, noisy, X, o0, lo, hi, ws, n, m):
    T = U.shape[1]
    ulo = int(p[H_ULO])
    uhi = int(p[H_UHI])
    integ, S, h, vclip, stops = _step_config(p, True)
    oz = 2 * m
    for b in range(lo, hi):
        for i in range(n):
            ws[oz + i] = X0[b, i]
        if o0 == 1:
            for i in range(n):
                X[b, 0, i] = X0[b, i]
        for t in range(T):
            for j in range(m):
                a = U[b, t, j]
                if a > p[uhi + j]:
                    a = p[uhi + j]
                elif a < p[ulo + j]:
                    a = p[ulo + j]
                ws[j] = a
            _advance(code, p, ws, n, m, integ, S, h, vclip, stops)
            if noisy:
                for i in range(n):
                    ws[oz + i] += W[b, t, i]
            for i in range(n):
                X[b, t + o0, i] = ws[oz + i]


@njit(cache=True)
def step_batch(code, p, X, U, out):
    """Batched step ``out[:, 0] = step(X, U[:, 0])`` (``U[B, 1, m]``, ``out[B, 1, n]``).

    Returns the first sample with a non-finite input (nothing computed), ``-2 - b`` for
    the first sample ``b`` whose result is not finite, or -1.
    """
    bad = _first_bad(X, U[:, 0])
    if bad >= 0:
        return bad
    ws = np.empty(int(p[H_WS]))
    _rollout_rows(code, p, X, U, U, False, out, 0, 0, X.shape[0], ws)
    return _first_nonfinite(out)


@njit(cache=True)
def jacobians_batch(code, p, X, U, A, B):
    """Batched Jacobians; returns the first non-finite input sample, ``-2 - b`` for a
    non-finite result of sample ``b``, or -1."""
    bad = _first_bad(X, U)
    if bad >= 0:
        return bad
    ws = np.empty(int(p[H_WS]))
    _jac_rows(code, p, X, U, A, B, 0, X.shape[0], ws)
    bad = _first_nonfinite(A)
    return bad if bad != -1 else _first_nonfinite(B)


@njit(cache=True)
def rollout_batch(code, p, X0, U, W, noisy, X):
    """``X[:, 0] = X0``; ``X[:, t+1] = step(X[:, t], U[:, t]) (+ W[:, t] if noisy)``.

    Returns the index of the first sample whose ``X0`` or ``U`` is not finite, ``-2 - b``
    for the first sample ``b`` whose trajectory is not finite, else -1.
    """
    Bn = X0.shape[0]
    T = U.shape[1]
    n = X0.shape[1]
    for b in range(Bn):
        for i in range(n):
            if not np.isfinite(X0[b, i]):
                return b
        for t in range(T):
            for j in range(U.shape[2]):
                if not np.isfinite(U[b, t, j]):
                    return b
    ws = np.empty(int(p[H_WS]))
    _rollout_rows(code, p, X0, U, W, noisy, X, 1, 0, Bn, ws)
    return _first_nonfinite(X)


@njit(cache=True)
def chain_energy_batch(p, X, out):
    """Energy of every state of a chain plant."""
    ws = np.empty(int(p[H_WS]))
    for b in range(X.shape[0]):
        out[b] = chain_energy(p, X[b], ws)
