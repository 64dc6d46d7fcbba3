"""Compiled right-hand side of the pendulum (uniform rod about one end, theta = 0 upright).

    theta_ddot = 3 g / (2 l) sin(theta) + 3 / (m l^2) (u + tau_field)

which is Gymnasium ``Pendulum-v1``'s update written as an ODE. The end-point field acts on
the tip ``p = (-l sin theta, l cos theta)``, with ``J = dp/dtheta = (-l cos, -l sin)``::

    F = F0 + K J theta_dot,      tau_field = J . F

Section: ``[field block (7), g, m, l, 3 g / (2 l), 3 / (m l^2)]``. Calling convention of
``rhs``/``rhs_jac``: :mod:`plants._integrate`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._integrate import first_bad_input, first_bad_sample, settings
from ._layout import FIELD_LEN, H_DT, H_PLANT, H_UHI, H_ULO, H_VMAX, HOT_INTERNAL, SEMI_IMPLICIT


@njit(**HOT_INTERNAL)
def consts(p):
    """``(field on, F0x, F0y, K00, K01, K10, K11, l, 3 g / (2 l), 3 / (m l^2))``."""
    o = int(p[H_PLANT])
    f = FIELD_LEN
    return (p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4], p[o + 5], p[o + 6],
            p[o + f + 2], p[o + f + 3], p[o + f + 4])


@njit(**HOT_INTERNAL)
def rhs(c, z, u, dz, pw):
    """``dz = [theta_dot, theta_ddot]``."""
    on, f0x, f0y, k00, k01, k10, k11, l, c1, kt = c
    th = z[0]
    om = z[1]
    s = np.sin(th)
    tau = u[0]
    if on != 0.0:
        co = np.cos(th)
        jx = -l * co
        jy = -l * s
        fx = f0x + (k00 * jx + k01 * jy) * om
        fy = f0y + (k10 * jx + k11 * jy) * om
        tau += jx * fx + jy * fy
    dz[0] = om
    dz[1] = c1 * s + kt * tau


@njit(**HOT_INTERNAL)
def rhs_jac(c, z, u, dz, F, G, pw):
    """:func:`rhs` and its exact partials."""
    on, f0x, f0y, k00, k01, k10, k11, l, c1, kt = c
    th = z[0]
    om = z[1]
    s = np.sin(th)
    co = np.cos(th)
    tau = u[0]
    dtau_th = 0.0
    dtau_om = 0.0
    if on != 0.0:
        jx = -l * co
        jy = -l * s
        djx = l * s  # dJ / dtheta
        djy = -l * co
        kjx = k00 * jx + k01 * jy  # K J
        kjy = k10 * jx + k11 * jy
        fx = f0x + kjx * om
        fy = f0y + kjy * om
        tau += jx * fx + jy * fy
        # d(J . F)/dtheta = dJ . F + J . K dJ theta_dot;  d(J . F)/dtheta_dot = J . K J
        dtau_th = djx * fx + djy * fy + (jx * (k00 * djx + k01 * djy)
                                         + jy * (k10 * djx + k11 * djy)) * om
        dtau_om = jx * kjx + jy * kjy
    dz[0] = om
    dz[1] = c1 * s + kt * tau
    F[0, 0] = 0.0
    F[0, 1] = 1.0
    F[1, 0] = c1 * co + kt * dtau_th
    F[1, 1] = kt * dtau_om
    G[0, 0] = 0.0
    G[1, 0] = kt


@njit(cache=True, _nrt=False, inline="always", error_model="numpy")
def sincos(x):
    """``(sin x, cos x)`` in float64 without branches, so that loops over samples vectorise
    (libm's scalar ``sin``/``cos`` do not; NumPy's are SIMD, which is what a batched NumPy
    step gains from). Within a few ulp of libm for ``|x| < 1e6`` (callers fall back to
    ``np.sin``/``np.cos`` beyond). Cephes' method and coefficients (S. L. Moshier, *Methods
    and Programs for Mathematical Functions*, 1989): reduction to ``[-pi/4, pi/4]`` by a
    three-part ``pi/4``, then the sine or cosine polynomial by octant."""
    a = abs(x)
    y = np.floor(a * 1.27323954473516268615)  # 4 / pi
    j = np.int64(np.int32(y))  # via int32: AVX2 converts 4 doubles to int32 at once, not int64
    odd = j & 1
    j += odd
    y += odd
    j &= 7
    z = ((a - y * 7.85398125648498535156e-1) - y * 3.77489470793079817668e-8) \
        - y * 2.69515142907905952645e-15
    zz = z * z
    ps = ((((1.58962301576546568060e-10 * zz - 2.50507477628578072866e-8) * zz
            + 2.75573136213857245213e-6) * zz - 1.98412698295895385996e-4) * zz
          + 8.33333333332211858878e-3) * zz - 1.66666666666666307295e-1
    pc = ((((-1.13585365213876817300e-11 * zz + 2.08757008419747316778e-9) * zz
             - 2.75573141792967388112e-7) * zz + 2.48015872888517045348e-5) * zz
          - 1.38888888888730564116e-3) * zz + 4.16666666666665929218e-2
    sin_z = z + z * zz * ps
    cos_z = 1.0 - 0.5 * zz + zz * zz * pc
    swap = j == 1 or j == 2 or j == 5 or j == 6
    s = cos_z if swap else sin_z
    c = sin_z if swap else cos_z
    s = -s if (x < 0) != (j > 3) else s
    c = -c if (j > 1 and j < 6) else c
    return s, c


_CHUNK = 64  # samples advanced together through all steps (their states stay in L1)


def fast_workspace() -> int:
    """Scratch (float64 elements) :func:`fast_rollout` needs."""
    return 3 * _CHUNK


@njit(**HOT_INTERNAL)
def fast_path(p):
    """Whether :func:`fast_rollout` applies: Gymnasium's update (semi-implicit Euler, one
    substep), no force field, no joint stops."""
    integ, S, h, vclip, stops = settings(p)
    return integ == SEMI_IMPLICIT and S == 1 and not stops and p[int(p[H_PLANT])] == 0.0


@njit(**HOT_INTERNAL)
def _fast_consts(p):
    """``(3 g / (2 l), 3 / (m l^2), dt, v_max, u_low, u_high)`` for the fast path."""
    c = consts(p)
    return (c[8], c[9], p[H_DT], p[int(p[H_VMAX])], p[int(p[H_ULO])], p[int(p[H_UHI])])


@njit(**HOT_INTERNAL, error_model="numpy")
def fast_rollout(p, X0, U, W, noisy, X, o0, ws):
    """The rollout of :func:`plants._integrate.rollout_rows` for the case of
    :func:`fast_path`, batch-major: chunks of samples are advanced through all steps
    together, ``theta`` and ``theta_dot`` held in ``ws``, so that the loops run over samples
    and vectorise, :func:`sincos` included. The same update, term by term: ``theta_dot' =
    clip(theta_dot + (3 g / (2 l) sin theta + 3 / (m l^2) clip(u)) dt)``, ``theta' = theta +
    theta_dot' dt``."""
    bad = first_bad_input(X0, U)
    if bad >= 0:
        return bad
    c1, kt, h, vm, ulo, uhi = _fast_consts(p)
    nb = X0.shape[0]
    T = U.shape[1]
    th = ws[0:_CHUNK]
    om = ws[_CHUNK:2 * _CHUNK]
    sn = ws[2 * _CHUNK:3 * _CHUNK]
    if o0 == 1:
        for b in range(nb):
            X[b, 0, 0] = X0[b, 0]
            X[b, 0, 1] = X0[b, 1]
    for c0 in range(0, nb, _CHUNK):
        nc = min(_CHUNK, nb - c0)
        for b in range(nc):
            th[b] = X0[c0 + b, 0]
            om[b] = X0[c0 + b, 1]
        for t in range(T):
            big = 0
            for b in range(nc):
                sn[b] = sincos(th[b])[0]
                big |= abs(th[b]) > 1e6
            if big:
                for b in range(nc):
                    if abs(th[b]) > 1e6:
                        sn[b] = np.sin(th[b])
            for b in range(nc):
                u = min(max(U[c0 + b, t, 0], ulo), uhi)
                vn = om[b] + (c1 * sn[b] + kt * u) * h
                if vn > vm:
                    vn = vm
                elif vn < -vm:
                    vn = -vm
                om[b] = vn
                th[b] = th[b] + vn * h
            if noisy:
                for b in range(nc):
                    th[b] += W[c0 + b, t, 0]
                    om[b] += W[c0 + b, t, 1]
            for b in range(nc):
                X[c0 + b, t + o0, 0] = th[b]
                X[c0 + b, t + o0, 1] = om[b]
    bad = first_bad_sample(X)
    return -1 if bad < 0 else -2 - bad


@njit(**HOT_INTERNAL, error_model="numpy")
def fast_jacobians(p, X, U, A, B, ws):
    """The Jacobians of :func:`plants._integrate.jacobian_rows` for the case of
    :func:`fast_path`, in closed form over the batch (vectorised, :func:`sincos`
    included). With ``a = dt (3 g / (2 l) cos theta)`` the velocity row is ``[a, 1 | dt
    3 / (m l^2)]`` (zero where the velocity is clipped, the control column zero where the
    control is) and the angle row is ``[1, 0 | 0] + dt`` times it."""
    bad = first_bad_input(X, U)
    if bad >= 0:
        return bad
    c1, kt, h, vm, ulo, uhi = _fast_consts(p)
    nb = X.shape[0]
    sc = ws[0:2 * _CHUNK].reshape((2, _CHUNK))
    for c0 in range(0, nb, _CHUNK):
        nc = min(_CHUNK, nb - c0)
        big = 0
        for b in range(nc):
            th = X[c0 + b, 0]
            sn, co = sincos(th)
            sc[0, b] = sn
            sc[1, b] = co
            big |= abs(th) > 1e6
        if big:
            for b in range(nc):
                if abs(X[c0 + b, 0]) > 1e6:
                    sc[0, b] = np.sin(X[c0 + b, 0])
                    sc[1, b] = np.cos(X[c0 + b, 0])
        for b in range(nc):
            u = U[c0 + b, 0]
            free = ulo <= u <= uhi
            uc = min(max(u, ulo), uhi)
            vn = X[c0 + b, 1] + (c1 * sc[0, b] + kt * uc) * h
            kept = -vm <= vn <= vm
            av = h * c1 * sc[1, b] if kept else 0.0  # d theta_dot' / d theta
            bv = 1.0 if kept else 0.0  # d theta_dot' / d theta_dot
            gv = h * kt if kept and free else 0.0  # d theta_dot' / d u
            A[c0 + b, 1, 0] = av
            A[c0 + b, 1, 1] = bv
            A[c0 + b, 0, 0] = 1.0 + h * av
            A[c0 + b, 0, 1] = h * bv
            B[c0 + b, 1, 0] = gv
            B[c0 + b, 0, 0] = h * gv
    ba = first_bad_sample(A)
    bb = first_bad_sample(B)
    bad = ba if bb < 0 else (bb if ba < 0 else min(ba, bb))
    return -1 if bad < 0 else -2 - bad
