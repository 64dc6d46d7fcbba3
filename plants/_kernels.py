"""Compiled per-sample step and Jacobian kernels, and batched loops over them.

Public per-sample kernels (callable from other ``@njit`` code, e.g. a network's time loop):

``step_sample(code, params, x, u, out)``
    One full step ``out = x_next``. Allocates its own scratch.
``step_sample_ws(code, params, x, u, out, ws)``
    Same with caller-provided scratch ``ws`` (``int(params[15])`` float64 elements).
``jacobians_sample(code, params, x, u, A_out, B_out)`` / ``jacobians_sample_ws(..., ws)``
    ``A_out = dx_next/dx`` (n, n) and ``B_out = dx_next/du`` (n, m): the exact derivative of
    the discrete step (integrator, substeps, control clipping, velocity clipping and joint
    stops included). Returns nothing; also writes nothing else.

``code`` is the plant code (``params[0]``); the parameter layout is in :mod:`plants._layout`.
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
    PENDULUM,
    RK4,
    SEMI_IMPLICIT,
    integrator_workspace,
)


@njit(cache=True)
def deriv(code, p, z, u, dz, ws):
    """Continuous-time right-hand side ``dz = f(z, u)`` (discrete map for DISCRETE)."""
    if code == CHAIN:
        deriv_chain(p, z, u, dz, ws)
    elif code == PENDULUM:
        deriv_pendulum(p, z, u, dz, ws)
    elif code == CARTPOLE:
        deriv_cartpole(p, z, u, dz, ws)
    else:
        deriv_linear(p, z, u, dz, ws)


@njit(cache=True)
def deriv_jac(code, p, z, u, dz, Fz, Fu, ws):
    """``f(z, u)`` and its partials ``Fz = df/dz``, ``Fu = df/du``."""
    if code == CHAIN:
        deriv_jac_chain(p, z, u, dz, Fz, Fu, ws)
    elif code == PENDULUM:
        deriv_jac_pendulum(p, z, u, dz, Fz, Fu, ws)
    elif code == CARTPOLE:
        deriv_jac_cartpole(p, z, u, dz, Fz, Fu, ws)
    else:
        deriv_jac_linear(p, z, u, dz, Fz, Fu, ws)


@njit(cache=True)
def _clip_control(p, u, uc, mask, m):
    lo = int(p[H_ULO])
    hi = int(p[H_UHI])
    for j in range(m):
        a = u[j]
        mask[j] = 1.0
        if a > p[hi + j]:
            a = p[hi + j]
            mask[j] = 0.0
        elif a < p[lo + j]:
            a = p[lo + j]
            mask[j] = 0.0
        uc[j] = a


@njit(cache=True)
def _clip_velocities(p, z, Aloc, Bloc, jac):
    nq = int(p[H_NQ])
    vo = int(p[H_VMAX])
    vi = int(p[H_VEL])
    for i in range(nq):
        k = int(p[vi + i])
        vm = p[vo + i]
        if z[k] > vm or z[k] < -vm:
            z[k] = vm if z[k] > 0 else -vm
            if jac:
                Aloc[k, :] = 0.0
                Bloc[k, :] = 0.0


@njit(cache=True)
def _joint_stops(p, z, Aloc, Bloc, jac):
    nq = int(p[H_NQ])
    lo = int(p[H_QLO])
    hi = int(p[H_QHI])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    for i in range(nq):
        k = int(p[pi + i])
        kv = int(p[vi + i])
        if z[k] > p[hi + i] or z[k] < p[lo + i]:
            up = z[k] > p[hi + i]
            z[k] = p[hi + i] if up else p[lo + i]
            if jac:
                Aloc[k, :] = 0.0
                Bloc[k, :] = 0.0
            if (up and z[kv] > 0.0) or ((not up) and z[kv] < 0.0):
                z[kv] = 0.0
                if jac:
                    Aloc[kv, :] = 0.0
                    Bloc[kv, :] = 0.0


@njit(cache=True)
def step_sample_ws(code, p, x, u, out, ws):
    """One step ``out = x_next`` using the scratch array ``ws``; see the module docstring."""
    n = int(p[H_N])
    m = int(p[H_M])
    integ = int(p[H_INTEG])
    S = int(p[H_SUB])
    h = p[H_DT] / S
    uc = ws[0:m]
    _clip_control(p, u, uc, ws[m:2 * m], m)
    o = 2 * m
    z = ws[o:o + n]
    k1 = ws[o + n:o + 2 * n]
    k2 = ws[o + 2 * n:o + 3 * n]
    k3 = ws[o + 3 * n:o + 4 * n]
    k4 = ws[o + 4 * n:o + 5 * n]
    zt = ws[o + 5 * n:o + 6 * n]
    pw = ws[integrator_workspace(n, m):]
    dummy = ws[0:1].reshape((1, 1))
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    vo = int(p[H_VMAX])
    for i in range(n):
        z[i] = x[i]
    for _ in range(S):
        if integ == RK4:
            deriv(code, p, z, uc, k1, pw)
            for i in range(n):
                zt[i] = z[i] + 0.5 * h * k1[i]
            deriv(code, p, zt, uc, k2, pw)
            for i in range(n):
                zt[i] = z[i] + 0.5 * h * k2[i]
            deriv(code, p, zt, uc, k3, pw)
            for i in range(n):
                zt[i] = z[i] + h * k3[i]
            deriv(code, p, zt, uc, k4, pw)
            for i in range(n):
                z[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
            _clip_velocities(p, z, dummy, dummy, False)
        elif integ == SEMI_IMPLICIT:
            deriv(code, p, z, uc, k1, pw)
            for i in range(nq):
                kv = int(p[vi + i])
                kq = int(p[pi + i])
                vn = z[kv] + k1[kv] * h
                vm = p[vo + i]
                if vn > vm:
                    vn = vm
                elif vn < -vm:
                    vn = -vm
                z[kv] = vn
                z[kq] = z[kq] + vn * h
        elif integ == EULER:
            deriv(code, p, z, uc, k1, pw)
            for i in range(n):
                z[i] += h * k1[i]
            _clip_velocities(p, z, dummy, dummy, False)
        else:
            deriv(code, p, z, uc, k1, pw)
            for i in range(n):
                z[i] = k1[i]
        if nq > 0:
            _joint_stops(p, z, dummy, dummy, False)
    for i in range(n):
        out[i] = z[i]


@njit(cache=True)
def _matmul_into(A, B, C, n, k, c):
    """``C[:n, :c] = A[:n, :k] @ B[:k, :c]``."""
    for i in range(n):
        for j in range(c):
            s = 0.0
            for t in range(k):
                s += A[i, t] * B[t, j]
            C[i, j] = s


@njit(cache=True)
def jacobians_sample_ws(code, p, x, u, A, B, ws):
    """``A = dx_next/dx``, ``B = dx_next/du`` of one step, using the scratch array ``ws``."""
    n = int(p[H_N])
    m = int(p[H_M])
    integ = int(p[H_INTEG])
    S = int(p[H_SUB])
    h = p[H_DT] / S
    uc = ws[0:m]
    mask = ws[m:2 * m]
    _clip_control(p, u, uc, mask, m)
    o = 2 * m
    z = ws[o:o + n]
    k = ws[o + n:o + 2 * n]
    ks = ws[o + 2 * n:o + 3 * n]
    zt = ws[o + 3 * n:o + 4 * n]
    o += 8 * n
    nn = n * n
    nm = n * m
    F = ws[o:o + nn].reshape((n, n))
    G = ws[o + nn:o + nn + nm].reshape((n, m))
    o += nn + nm
    Kp = ws[o:o + nn].reshape((n, n))
    Lp = ws[o + nn:o + nn + nm].reshape((n, m))
    o += nn + nm
    Kc = ws[o:o + nn].reshape((n, n))
    Lc = ws[o + nn:o + nn + nm].reshape((n, m))
    o += nn + nm
    Ks = ws[o:o + nn].reshape((n, n))
    Ls = ws[o + nn:o + nn + nm].reshape((n, m))
    o += nn + nm
    Al = ws[o:o + nn].reshape((n, n))
    Bl = ws[o + nn:o + nn + nm].reshape((n, m))
    o += nn + nm
    T1 = ws[o:o + nn].reshape((n, n))
    T2 = ws[o + nn:o + nn + nm].reshape((n, m))
    pw = ws[integrator_workspace(n, m):]
    nq = int(p[H_NQ])
    pi = int(p[H_POS])
    vi = int(p[H_VEL])
    vo = int(p[H_VMAX])
    for i in range(n):
        z[i] = x[i]
    for s in range(S):
        if integ == RK4:
            deriv_jac(code, p, z, uc, k, F, G, pw)
            for i in range(n):
                ks[i] = k[i]
                zt[i] = z[i] + 0.5 * h * k[i]
            Ks[:, :] = F
            Ls[:, :] = G
            Kp[:, :] = F
            Lp[:, :] = G
            for stage in range(1, 4):
                cprev = h if stage == 3 else 0.5 * h
                wgt = 1.0 if stage == 3 else 2.0
                deriv_jac(code, p, zt, uc, k, F, G, pw)
                _matmul_into(F, Kp, Kc, n, n, n)
                _matmul_into(F, Lp, Lc, n, n, m)
                for i in range(n):
                    ks[i] += wgt * k[i]
                    for j in range(n):
                        Kc[i, j] = F[i, j] + cprev * Kc[i, j]
                        Ks[i, j] += wgt * Kc[i, j]
                    for j in range(m):
                        Lc[i, j] = G[i, j] + cprev * Lc[i, j]
                        Ls[i, j] += wgt * Lc[i, j]
                if stage < 3:
                    cnext = h if stage == 2 else 0.5 * h
                    for i in range(n):
                        zt[i] = z[i] + cnext * k[i]
                    Kp[:, :] = Kc
                    Lp[:, :] = Lc
            for i in range(n):
                z[i] += h / 6.0 * ks[i]
                for j in range(n):
                    Al[i, j] = h / 6.0 * Ks[i, j] + (1.0 if i == j else 0.0)
                for j in range(m):
                    Bl[i, j] = h / 6.0 * Ls[i, j]
            _clip_velocities(p, z, Al, Bl, True)
        elif integ == SEMI_IMPLICIT:
            deriv_jac(code, p, z, uc, k, F, G, pw)
            for i in range(n):
                for j in range(n):
                    Al[i, j] = 1.0 if i == j else 0.0
                for j in range(m):
                    Bl[i, j] = 0.0
            for i in range(nq):
                kv = int(p[vi + i])
                kq = int(p[pi + i])
                vn = z[kv] + k[kv] * h
                vm = p[vo + i]
                clipped = vn > vm or vn < -vm
                if vn > vm:
                    vn = vm
                elif vn < -vm:
                    vn = -vm
                z[kv] = vn
                z[kq] = z[kq] + vn * h
                for j in range(n):
                    Al[kv, j] = 0.0 if clipped else Al[kv, j] + h * F[kv, j]
                    Al[kq, j] += h * Al[kv, j]
                for j in range(m):
                    Bl[kv, j] = 0.0 if clipped else h * G[kv, j]
                    Bl[kq, j] += h * Bl[kv, j]
        elif integ == EULER:
            deriv_jac(code, p, z, uc, k, F, G, pw)
            for i in range(n):
                z[i] += h * k[i]
                for j in range(n):
                    Al[i, j] = h * F[i, j] + (1.0 if i == j else 0.0)
                for j in range(m):
                    Bl[i, j] = h * G[i, j]
            _clip_velocities(p, z, Al, Bl, True)
        else:
            deriv_jac(code, p, z, uc, k, F, G, pw)
            for i in range(n):
                z[i] = k[i]
            Al[:, :] = F
            Bl[:, :] = G
        if nq > 0:
            _joint_stops(p, z, Al, Bl, True)
        if s == 0:
            A[:, :] = Al
            B[:, :] = Bl
        else:
            _matmul_into(Al, A, T1, n, n, n)
            _matmul_into(Al, B, T2, n, n, m)
            A[:, :] = T1
            for i in range(n):
                for j in range(m):
                    B[i, j] = T2[i, j] + Bl[i, j]
    for j in range(m):
        if mask[j] == 0.0:
            for i in range(n):
                B[i, j] = 0.0


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
def step_batch(code, p, X, U, out):
    """Batched step; returns the first non-finite sample (nothing computed) or -1."""
    bad = _first_bad(X, U)
    if bad >= 0:
        return bad
    ws = np.empty(int(p[H_WS]))
    for b in range(X.shape[0]):
        step_sample_ws(code, p, X[b], U[b], out[b], ws)
    return -1


@njit(cache=True)
def jacobians_batch(code, p, X, U, A, B):
    """Batched Jacobians; returns the first non-finite sample or -1."""
    bad = _first_bad(X, U)
    if bad >= 0:
        return bad
    ws = np.empty(int(p[H_WS]))
    for b in range(X.shape[0]):
        jacobians_sample_ws(code, p, X[b], U[b], A[b], B[b], ws)
    return -1


@njit(cache=True)
def rollout_batch(code, p, X0, U, W, noisy, X):
    """``X[:, 0] = X0``; ``X[:, t+1] = step(X[:, t], U[:, t]) (+ W[:, t] if noisy)``.

    Returns the index of the first sample whose ``X0`` or ``U`` is not finite, else -1.
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
    for b in range(Bn):
        for i in range(n):
            X[b, 0, i] = X0[b, i]
        for t in range(T):
            step_sample_ws(code, p, X[b, t], U[b, t], X[b, t + 1], ws)
            if noisy:
                for i in range(n):
                    X[b, t + 1, i] += W[b, t, i]
    return -1


@njit(cache=True)
def chain_energy_batch(p, X, out):
    """Energy of every state of a chain plant."""
    ws = np.empty(int(p[H_WS]))
    for b in range(X.shape[0]):
        out[b] = chain_energy(p, X[b], ws)
