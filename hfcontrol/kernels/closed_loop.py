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

import numpy as np
from numba import njit

from plants import _kernels as pk

from ._blas import _gemm, _helper, _mm, _view
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
def _observe(X, j, B, n, S, angles, noise, t, E, n_in, k):
    """``E[t, :, k:] = [S x_j, cos x_a, sin x_a] + noise[t]``."""
    p_lin = S.shape[0]
    na = angles.shape[0]
    p = p_lin + 2 * na
    for b in range(B):
        xo = j * B * n + b * n
        eo = t * B * n_in + b * n_in + k
        no = t * B * p + b * p
        for i in range(p_lin):
            acc = 0.0
            for q in range(n):
                acc += S[i, q] * X[xo + q]
            E[eo + i] = acc + noise[no + i]
        for i in range(na):
            v = X[xo + angles[i]]
            E[eo + p_lin + i] = np.cos(v) + noise[no + p_lin + i]
            E[eo + p_lin + na + i] = np.sin(v) + noise[no + p_lin + na + i]


@_helper
def _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay, fixed, deriv,
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
        _observe(X, max(t - delay, 0), B, n, S, angles, noise, t, E, n_in, k)
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
def rollout_pendulum(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay, fixed,
                     deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the pendulum: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_pendulum(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                               dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_cartpole(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay, fixed,
                     deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the cart-pole: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_cartpole(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                               dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_two_link(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay, fixed,
                     deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the two-link arm: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_two_link(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                               dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_three_link(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay, fixed,
                       deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the three-link arm: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_three_link(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                                 dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_chain(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay, fixed,
                  deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with a planar chain of any length: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_chain(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                            dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_linear(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay, fixed,
                   deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with a linear plant: returns -1, or the first step whose control or next
    state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_linear(pp, _view(X, t * B * n, (B, n)), _view(U, t * B * m, (B, 1, m)),
                             dummy, False, _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_muscle_arm(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                       fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the muscle arm: returns -1, or the first step whose control or
    next state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
            return t
        if pk.rollout_muscle_arm(pp, _view(X, t * B * n, (B, n)),
                                 _view(U, t * B * m, (B, 1, m)), dummy, False,
                                 _view(X, (t + 1) * B * n, (B, 1, n)), 0, ws) != -1:
            return t
    return -1


@njit(cache=True, nogil=True)
def rollout_point_mass(pp, ws, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                       fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a, dummy):
    """The closed loop with the point mass: returns -1, or the first step whose control or
    next state is not finite."""
    for t in range(T):
        if not _network_step(t, W, offs, codes, prm, scale, goals, noise, S, angles, delay,
                             fixed, deriv, B, T, n, m, k, H, X, U, E, Sa, FD, GD, z, y, a):
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


@njit(cache=True, nogil=True)
def backward(W, V, offs, codes, scale, exact, gv, delay, B, T, n, m, k, H, E, Sa, FD, GD,
             A, Bm, Jo, hx, hu, gx, gu, RX, RU, RS, DZ, DY, lam, adj, t1, tp, gtmp, out):
    """The gradient (``gv`` false: errors ``gx``/``gu`` on the states and controls, already
    divided by the batch) or ``G V`` (``gv`` true: the R-forward pass of ``V``, then the
    errors ``hx R{x}`` and ``hu R{u}``) back-propagated through plant, observation and
    network into ``out`` (float64, the size of ``W``).

    ``A [T, B, n, n]``, ``Bm [T, B, n, m]``: the plant's step Jacobians; ``Jo [T + 1, B, p,
    n]``: the observation's Jacobian at each state; ``hx [T + 1, B, n, n]``: the cost's
    curvature in each state, divided by the batch; ``hu``: that of each control entry.
    ``exact``: follow the feedback path (else the observations are data). Work buffers:
    ``RX [T + 1, B, n]``, ``RU [T, B, m]``, ``RS``/``DZ [T, B, H]``, ``DY [T, B, m]``,
    ``lam``/``t1`` ``[B, n]``, ``adj [T + 1, B, n]``, ``tp [B, p]`` and ``gtmp`` (the
    largest weight matrix; network dtype), all flat.
    """
    n_in = E.size // (T * B)
    p = n_in - k
    dt = E.dtype.type
    w_in_obs = _blk(W, offs[O_IN] + k * H, p, H)
    w_out = _blk(W, offs[O_OUT], H, m)
    w_rec = _blk(W, offs[O_REC], H, H)
    TB = T * B
    E2 = _blk(E, 0, TB, n_in)
    S2 = _blk(Sa, 0, TB, H)
    for i in range(out.size):
        out[i] = 0.0
    if gv:
        v_in = _blk(V, offs[O_IN], n_in, H)
        vb_in = V[offs[O_IN + 1]:offs[O_IN + 2]]
        v_out = _blk(V, offs[O_OUT], H, m)
        vb_out = V[offs[O_OUT + 1]:offs[O_OUT + 2]]
        v_rec = _blk(V, offs[O_REC], H, H)
        vb_rec = V[offs[O_REC + 1]:offs[O_REC + 2]]
        # everything the direction adds that does not depend on the recursion, in three
        # products over all steps: R{z} gets e V_in (+ s_{t-1} V_rec), R{y} gets s V_out
        rz = _blk(RS, 0, TB, H)
        _gemm(E2, False, v_in, False, rz, False)
        if T > 1:
            _gemm(_blk(Sa, 0, TB - B, H), False, v_rec, False, _blk(RS, B * H, TB - B, H), True)
        ry = _blk(DY, 0, TB, m)
        _gemm(S2, False, v_out, False, ry, False)
        for i in range(RX.size):
            RX[i] = 0.0
        tpo = _blk(tp, 0, B, p)
        for t in range(T):
            rzt = _blk(RS, t * B * H, B, H)
            for b in range(B):
                for h in range(H):
                    rzt[b, h] += vb_in[h] + (0.0 if t > 0 else vb_rec[h])
            j = t - delay
            if exact and j >= 0 and p > 0:
                for b in range(B):
                    for i in range(p):
                        acc = 0.0
                        jo = ((j * B + b) * p + i) * n
                        for q in range(n):
                            acc += Jo[jo + q] * RX[(j * B + b) * n + q]
                        tpo[b, i] = dt(acc)
                _gemm(tpo, False, w_in_obs, False, rzt, True)
            if t > 0:
                _gemm(_blk(RS, (t - 1) * B * H, B, H), False, w_rec, False, rzt, True)
            # R{s_t} = f'(z_t) R{z_t}, in place
            fdt = FD[t * B * H:(t + 1) * B * H]
            rzf = RS[t * B * H:(t + 1) * B * H]
            for i in range(B * H):
                rzf[i] = fdt[i] * rzf[i]
            ryt = _blk(DY, t * B * m, B, m)
            _gemm(rzt, False, w_out, False, ryt, True)
            for b in range(B):
                for i in range(m):
                    o = (t * B + b) * m + i
                    RU[o] = scale[i] * np.float64(GD[o] * (ryt[b, i] + vb_out[i]))
                xo = (t * B + b) * n
                for i in range(n):
                    acc = 0.0
                    ao = ((t * B + b) * n + i) * n
                    for q in range(n):
                        acc += A[ao + q] * RX[xo + q]
                    bo = ((t * B + b) * n + i) * m
                    for q in range(m):
                        acc += Bm[bo + q] * RU[(t * B + b) * m + q]
                    RX[xo + B * n + i] = acc
    # backward, from the last step
    for i in range(adj.size):
        adj[i] = 0.0
    for b in range(B):
        for i in range(n):
            o = (T * B + b) * n + i
            if gv:
                acc = 0.0
                for q in range(n):
                    acc += hx[o * n + q] * RX[(T * B + b) * n + q]
                lam[b * n + i] = acc
            else:
                lam[b * n + i] = gx[o]
    for t in range(T - 1, -1, -1):
        dyt = _blk(DY, t * B * m, B, m)
        for b in range(B):
            for i in range(m):
                o = (t * B + b) * m + i
                du = hu * RU[o] if gv else gu[o]
                bo = (t * B + b) * n * m + i
                for q in range(n):
                    du += Bm[bo + q * m] * lam[b * n + q]
                dyt[b, i] = GD[o] * dt(scale[i] * du)
        dzt = _blk(DZ, t * B * H, B, H)
        _gemm(dyt, False, w_out, True, dzt, False)
        if t < T - 1:
            _gemm(_blk(DZ, (t + 1) * B * H, B, H), False, w_rec, True, dzt, True)
        fdt = FD[t * B * H:(t + 1) * B * H]
        dzf = DZ[t * B * H:(t + 1) * B * H]
        for i in range(B * H):
            dzf[i] = fdt[i] * dzf[i]
        j = t - delay
        if exact and j >= 0 and p > 0:
            tpo = _blk(tp, 0, B, p)
            _gemm(dzt, False, w_in_obs, True, tpo, False)
            for b in range(B):
                for q in range(n):
                    acc = 0.0
                    for i in range(p):
                        acc += Jo[((j * B + b) * p + i) * n + q] * tpo[b, i]
                    adj[(j * B + b) * n + q] += acc
        # lam <- e_x(t) + adj(t) + A_t^T lam
        for b in range(B):
            for q in range(n):
                acc = 0.0
                for i in range(n):
                    acc += A[((t * B + b) * n + i) * n + q] * lam[b * n + i]
                o = (t * B + b) * n + q
                if gv:
                    e = 0.0
                    for i in range(n):
                        e += hx[o * n + i] * RX[(t * B + b) * n + i]
                else:
                    e = gx[o]
                t1[b * n + q] = acc + adj[o] + e
        for i in range(B * n):
            lam[i] = t1[i]
    # weight gradients: one product over all steps each
    DZ2 = _blk(DZ, 0, TB, H)
    DY2 = _blk(DY, 0, TB, m)
    g_in = _blk(out, offs[O_IN], n_in, H)
    g_out = _blk(out, offs[O_OUT], H, m)
    g_rec = _blk(out, offs[O_REC], H, H)
    _acc_product(E2, DZ2, g_in, gtmp)
    _acc_product(S2, DY2, g_out, gtmp)
    if T > 1:
        _acc_product(_blk(Sa, 0, TB - B, H), _blk(DZ, B * H, TB - B, H), g_rec, gtmp)
    for r in range(TB):
        for h in range(H):
            out[offs[O_IN + 1] + h] += DZ2[r, h]
        for i in range(m):
            out[offs[O_OUT + 1] + i] += DY2[r, i]
    for b in range(B):
        for h in range(H):
            out[offs[O_REC + 1] + h] += DZ2[b, h]


@_helper
def _acc_product(a, d, out, tmp):
    """``out += a.T @ d`` (``out`` float64; ``a``, ``d`` and the work buffer ``tmp`` of
    the network's dtype): one BLAS product over all rows."""
    p, q = out.shape
    t = _blk(tmp, 0, p, q)
    _mm(a, True, d, False, t, False)
    for i in range(p):
        for j in range(q):
            out[i, j] += t[i, j]


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
        # backward work buffers
        p = loop.observation.size
        self.RX = np.empty((T + 1) * B * n)
        self.RU = np.empty(T * B * m)
        self.RS = np.empty(T * B * H, dt)
        self.DZ = np.empty(T * B * H, dt)
        self.DY = np.empty(T * B * m, dt)
        self.lam = np.empty(B * n)
        self.adj = np.empty((T + 1) * B * n)
        self.t1 = np.empty(B * n)
        self.tp = np.empty(max(B * p, 1), dt)
        self.gtmp = np.empty(max(n_in * H, H * H, H * m), dt)

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
        obs = loop.observation
        with _kernel_blas_threads(1):  # its products are small: threads only cost
            return int(self.rollout_kernel(
                loop.plant.kernel_params, self.ws, W, self.offs, self.codes, self.prm,
                loop.control_scale, goals_tm, noise_tm, obs.S, obs.angles, loop.delay,
                fixed is not None, deriv, B, T, n, loop.m, loop.k, loop.net.shape[1], self.X,
                self.U, self.E, self.S, self.FD, self.GD, self.z, self.y, self.a, self.dummy))

    def states(self) -> np.ndarray:
        """``X [T + 1, B, n]`` of the last run (a view)."""
        return self.X.reshape(self.T + 1, self.B, self.loop.n)

    def controls(self) -> np.ndarray:
        """``U [T, B, m]`` of the last run (a view)."""
        return self.U.reshape(self.T, self.B, self.loop.m)

    def backward(self, W, V, derivs: dict, gv: bool) -> np.ndarray:
        """The gradient (``gv`` false) or ``G V`` at the rollout whose buffers ``derivs``
        holds (see :func:`backward`); float64, the size of ``W``."""
        out = np.empty(W.size)
        with _kernel_blas_threads(1):
            self._backward(W, V, derivs, gv, out)
        return out

    def _backward(self, W, V, derivs, gv, out):
        loop = self.loop
        backward(W, W if V is None else V, self.offs, self.codes, loop.control_scale,
                 loop.feedback == "exact", gv, loop.delay, self.B, self.T, loop.n, loop.m,
                 loop.k, loop.net.shape[1], derivs["E"], derivs["S"], derivs["FD"],
                 derivs["GD"], derivs["A"], derivs["Bm"], derivs["Jo"], derivs["hx"],
                 derivs["hu"], derivs["gx"], derivs["gu"], self.RX, self.RU, self.RS, self.DZ,
                 self.DY, self.lam, self.adj, self.t1, self.tp, self.gtmp, out)
