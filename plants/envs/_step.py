"""The environments' per-step work, compiled: one step kernel per family.

A step of ``B`` copies (see :class:`plants.envs._core.Episodes`) is one call of its family's
kernel, ``step_arm``, ``step_pendulum`` or ``step_cartpole``, which

1. checks that every action is finite (nothing changes otherwise: :data:`BAD_ACTION`),
   clips the actions to [-1, 1] and scales them to the plant's controls;
2. steps every copy with the plant's own compiled kernel, called by name
   (:mod:`plants._kernels`; its return code is returned if the step fails, the state
   unchanged);
3. per copy: the observation features of the new state (velocities the plant does not limit
   clipped to the observation bounds), the reward (minus the task's cost of the step, see
   :mod:`plants.envs._core`), the step count and the truncation flag, and the float32
   observation.

The plant kernels are reached by name, never passed as arguments: a cached function that
receives a jitted function compiles again in every process (see :mod:`plants._kernels`).
:func:`begin` starts episodes (the targets with NaN replaced by 0, their step weights and the
goals); ``features_<family>`` computes the features after a reset. Each family's features
are one inlined function shared by its two kernels.

Arguments shared by the kernels (all C-contiguous; float64 unless said):

``prm, ws``   the plant's kernel parameters and scratch
``a[B, m]``   the normalised actions; ``u[B, 1, m]`` receives the controls
``x[B, n]``   the states; ``xn[B, 1, n]`` scratch for the new ones
``t[B]``      int64 steps taken in each copy's episode
``c[B, T]``   the step weights (:meth:`plants.tasks.Task.step_weights`); ``tg[B, T, k]``
              the targets, 0 where there is none; ``g[B, k]`` the goals
``cfg``       ``[effort * dt, final_velocity, T, 1 / T, max_steps, family constants...]``
              (the arm's link lengths)
``wout[k]``   the task's output weights; ``scale[m]`` the action scale
``lo, hi[p]`` the observation bounds; ``f[B, p]`` the features (the goal columns
              included), ``obs[B, p]`` float32, ``rew[B]``, ``trunc[B]`` (bool) out
``count[1]``  int64 out: the number of copies truncated by this step
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._kernels import rollout_cartpole, rollout_pendulum, rollout_three_link, rollout_two_link
from .._layout import HOT, HOT_INLINE, TWO_LINK

__all__ = ["BAD_ACTION", "begin", "features_arm", "features_cartpole", "features_pendulum",
           "step_arm", "step_cartpole", "step_pendulum"]

#: Returned by a step kernel when an action is not finite (nothing was stepped).
BAD_ACTION = -(2**62)

# cfg entries
EFFORT_DT, FINAL_VELOCITY, HORIZON, INV_HORIZON, MAX_STEPS, FAMILY = 0, 1, 2, 3, 4, 5


@njit(**HOT)
def begin(rows, x0, targets, tracking, final_error, x, t, c, tg, g):
    """Start episodes in copies ``rows``: state ``x0[r]``, step count 0, and from
    ``targets[r]`` (``[T, k]``, NaN: no target at that step) the step weights ``c``, the
    targets ``tg`` with 0 for NaN and the goal ``g``, the target of the last targeted step
    (0 without any). The weights are :meth:`plants.tasks.Task.step_weights`'s:
    ``tracking / n_targeted`` at each targeted step, plus ``final_error`` at the last."""
    T = targets.shape[1]
    k = targets.shape[2]
    n = x0.shape[1]
    for r in range(rows.shape[0]):
        b = rows[r]
        for i in range(n):
            x[b, i] = x0[r, i]
        t[b] = 0
        cnt = 0
        last = -1
        for s in range(T):
            has = True
            for i in range(k):
                v = targets[r, s, i]
                if v != v:
                    has = False
            if has:
                cnt += 1
                last = s
        for s in range(T):
            has = True
            for i in range(k):
                v = targets[r, s, i]
                if v != v:
                    has = False
            w = 0.0
            if has:
                if tracking != 0.0:
                    w = tracking / cnt
                if final_error != 0.0 and s == last:
                    w += final_error
            c[b, s] = w
            for i in range(k):
                tg[b, s, i] = targets[r, s, i] if has else 0.0
        for i in range(k):
            g[b, i] = targets[r, last, i] if last >= 0 else 0.0


@njit(**HOT_INLINE)
def _load(a, scale, u):
    """``u = clip(a, -1, 1) * scale``, or False (``u`` untouched) if an action is not finite."""
    B, m = a.shape
    for b in range(B):
        for j in range(m):
            if not np.isfinite(a[b, j]):
                return False
    for b in range(B):
        for j in range(m):
            u[b, 0, j] = max(min(a[b, j], 1.0), -1.0) * scale[j]
    return True


@njit(**HOT_INLINE)
def _clip(v, lo, hi):
    return max(min(v, hi), lo)


@njit(**HOT_INLINE)
def _effort(u, b):
    s = 0.0
    for j in range(u.shape[2]):
        s += u[b, 0, j] * u[b, 0, j]
    return s


@njit(**HOT_INLINE)
def _error(y, o, tg, wout, b, s):
    """``sum_i w_i (y[b, o + i] - tg[b, s, i])^2``."""
    e = 0.0
    for i in range(wout.shape[0]):
        d = y[b, o + i] - tg[b, s, i]
        e += wout[i] * (d * d)
    return e


@njit(**HOT_INLINE)
def _finish(b, tb, cost, t, c, cfg, f, obs, rew, trunc):
    """Step count, reward, truncation and float32 observation of copy ``b``; returns
    whether it was truncated."""
    t[b] = tb + 1
    rew[b] = -cost
    out = tb + 1 >= cfg[MAX_STEPS]
    trunc[b] = out
    for j in range(f.shape[1]):
        obs[b, j] = f[b, j]
    return out


# -- the arms: [cos q (N), sin q (N), q_dot (N), hand (2), goal (2), t / T] ----------------
@njit(**HOT_INLINE)
def _arm_features(x, b, tb, g, cfg, lo, hi, f):
    N = x.shape[1] // 2
    px = 0.0
    py = 0.0
    phi = 0.0
    for i in range(N):
        q = x[b, i]
        f[b, i] = np.cos(q)
        f[b, N + i] = np.sin(q)
        f[b, 2 * N + i] = _clip(x[b, N + i], lo[2 * N + i], hi[2 * N + i])
        phi += q
        px += np.cos(phi) * cfg[FAMILY + i]
        py += np.sin(phi) * cfg[FAMILY + i]
    f[b, 3 * N] = px
    f[b, 3 * N + 1] = py
    f[b, 3 * N + 2] = g[b, 0]
    f[b, 3 * N + 3] = g[b, 1]
    f[b, 3 * N + 4] = tb * cfg[INV_HORIZON]


@njit(**HOT_INLINE)
def _hand_speed2(x, b, cfg):
    """``|J(q) q_dot|^2``: the hand velocity is ``sum_a l_a phidot_a (-sin phi_a, cos phi_a)``
    with ``phi_a = q_1 + ... + q_a``."""
    N = x.shape[1] // 2
    vx = 0.0
    vy = 0.0
    phi = 0.0
    w = 0.0
    for i in range(N):
        phi += x[b, i]
        w += x[b, N + i]
        lw = cfg[FAMILY + i] * w
        vx -= lw * np.sin(phi)
        vy += lw * np.cos(phi)
    return vx * vx + vy * vy


@njit(**HOT)
def features_arm(rows, x, t, g, cfg, lo, hi, f):
    """The arms' features of copies ``rows``."""
    for r in range(rows.shape[0]):
        b = rows[r]
        _arm_features(x, b, t[b], g, cfg, lo, hi, f)


@njit(**HOT, error_model="numpy")
def step_arm(prm, ws, a, x, xn, u, t, c, tg, g, cfg, wout, scale, lo, hi, f, obs, rew, trunc,
             count):
    """One step of the arms' copies (two or three links); see the module docstring."""
    if not _load(a, scale, u):
        return BAD_ACTION
    if int(prm[0]) == TWO_LINK:
        bad = rollout_two_link(prm, x, u, u, False, xn, 0, ws)
    else:
        bad = rollout_three_link(prm, x, u, u, False, xn, 0, ws)
    if bad != -1:
        return bad
    N = x.shape[1] // 2
    effort_dt, fv, last = cfg[EFFORT_DT], cfg[FINAL_VELOCITY], int(cfg[HORIZON]) - 1
    nt = 0
    for b in range(x.shape[0]):
        for i in range(2 * N):
            x[b, i] = xn[b, 0, i]
        tb = t[b]
        _arm_features(x, b, tb + 1, g, cfg, lo, hi, f)
        cost = _effort(u, b) * effort_dt
        cb = c[b, tb]
        if cb != 0.0:
            cost += cb * _error(f, 3 * N, tg, wout, b, tb)  # the outputs: the hand
        if fv != 0.0 and tb == last:
            cost += fv * _hand_speed2(x, b, cfg)
        nt += _finish(b, tb, cost, t, c, cfg, f, obs, rew, trunc)
    count[0] = nt
    return -1


# -- the pendulum: [cos theta, sin theta, theta_dot, goal (3)] -----------------------------
@njit(**HOT_INLINE)
def _pendulum_features(x, b, g, f):
    f[b, 0] = np.cos(x[b, 0])
    f[b, 1] = np.sin(x[b, 0])
    f[b, 2] = x[b, 1]
    for i in range(3):
        f[b, 3 + i] = g[b, i]


@njit(**HOT)
def features_pendulum(rows, x, t, g, cfg, lo, hi, f):
    """The pendulum's features of copies ``rows``."""
    for r in range(rows.shape[0]):
        _pendulum_features(x, rows[r], g, f)


@njit(**HOT, error_model="numpy")
def step_pendulum(prm, ws, a, x, xn, u, t, c, tg, g, cfg, wout, scale, lo, hi, f, obs, rew,
                  trunc, count):
    """One step of the pendulum's copies; see the module docstring."""
    if not _load(a, scale, u):
        return BAD_ACTION
    bad = rollout_pendulum(prm, x, u, u, False, xn, 0, ws)
    if bad != -1:
        return bad
    effort_dt, fv, last = cfg[EFFORT_DT], cfg[FINAL_VELOCITY], int(cfg[HORIZON]) - 1
    nt = 0
    for b in range(x.shape[0]):
        x[b, 0] = xn[b, 0, 0]
        x[b, 1] = xn[b, 0, 1]
        tb = t[b]
        _pendulum_features(x, b, g, f)
        cost = _effort(u, b) * effort_dt
        cb = c[b, tb]
        if cb != 0.0:
            cost += cb * _error(f, 0, tg, wout, b, tb)  # the outputs: (cos, sin, theta_dot)
        if fv != 0.0 and tb == last:
            cost += fv * (x[b, 1] * x[b, 1])
        nt += _finish(b, tb, cost, t, c, cfg, f, obs, rew, trunc)
    count[0] = nt
    return -1


# -- the cart-pole: [x, x_dot, cos theta, sin theta, theta_dot, goal (4)] ------------------
@njit(**HOT_INLINE)
def _cartpole_features(x, b, g, lo, hi, f):
    f[b, 0] = x[b, 0]
    f[b, 1] = _clip(x[b, 1], lo[1], hi[1])
    f[b, 2] = np.cos(x[b, 2])
    f[b, 3] = np.sin(x[b, 2])
    f[b, 4] = _clip(x[b, 3], lo[4], hi[4])
    for i in range(4):
        f[b, 5 + i] = g[b, i]


@njit(**HOT)
def features_cartpole(rows, x, t, g, cfg, lo, hi, f):
    """The cart-pole's features of copies ``rows``."""
    for r in range(rows.shape[0]):
        _cartpole_features(x, rows[r], g, lo, hi, f)


@njit(**HOT, error_model="numpy")
def step_cartpole(prm, ws, a, x, xn, u, t, c, tg, g, cfg, wout, scale, lo, hi, f, obs, rew,
                  trunc, count):
    """One step of the cart-pole's copies; see the module docstring."""
    if not _load(a, scale, u):
        return BAD_ACTION
    bad = rollout_cartpole(prm, x, u, u, False, xn, 0, ws)
    if bad != -1:
        return bad
    effort_dt, fv, last = cfg[EFFORT_DT], cfg[FINAL_VELOCITY], int(cfg[HORIZON]) - 1
    nt = 0
    for b in range(x.shape[0]):
        for i in range(4):
            x[b, i] = xn[b, 0, i]
        tb = t[b]
        _cartpole_features(x, b, g, lo, hi, f)
        cost = _effort(u, b) * effort_dt
        cb = c[b, tb]
        if cb != 0.0:
            cost += cb * _error(x, 0, tg, wout, b, tb)  # the outputs: the state
        if fv != 0.0 and tb == last:
            cost += fv * (x[b, 1] * x[b, 1] + x[b, 3] * x[b, 3])  # (x_dot, theta_dot)
        nt += _finish(b, tb, cost, t, c, cfg, f, obs, rew, trunc)
    count[0] = nt
    return -1
