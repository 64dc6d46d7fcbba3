"""The environments' per-step work, compiled: one step kernel per family.

A step of ``B`` copies (see :class:`plants.envs._core.Episodes`) is one call of its family's
kernel, ``step_arm``, ``step_muscle_arm``, ``step_pendulum`` or ``step_cartpole``, which

1. checks that every action is finite (nothing changes otherwise: :data:`BAD_ACTION`),
   clips the actions to [-1, 1] and scales them to the plant's controls;
2. steps every copy with the plant's own compiled kernel, called by name
   (:mod:`plants._kernels`; its return code is returned if the step fails, the state
   unchanged);
3. per copy: the float32 observation of the new state (velocities the plant does not
   limit clipped to the observation bounds), the reward (minus the task's cost of the step,
   see :mod:`plants.envs._core`), the step count and the truncation flag.

The plant kernels are reached by name, never passed as arguments: a cached function that
receives a jitted function compiles again in every process (see :mod:`plants._kernels`).
:func:`begin` starts episodes (the targets with NaN replaced by 0, their step weights and the
goals); ``features_<family>`` computes the float64 features (after a reset, or when the
observations of every copy are asked for). Each family's features
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
``wout[k]``   the task's output weights; ``scale[2, m]`` the action scale (half the
              control range) and offset (its centre)
``lo, hi[p]`` the observation bounds; ``f[B, p]`` the features (the goal columns
              included), written by ``features_<family>`` only
``w``         scratch of :data:`SCRATCH` elements (a chunk of copies, coordinate-major: the
              angles and their sines and cosines, so that the trigonometry vectorises)
``rows[B]``   int64 ``0 .. B - 1``
``obs[B, p]`` float32, ``rew[B]``, ``trunc[B]`` (bool) out
``count[1]``  int64 out: the number of copies truncated by this step
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._chunked import CHUNK, sincos_row
from .._kernels import (
    rollout_cartpole,
    rollout_muscle_arm,
    rollout_pendulum,
    rollout_three_link,
    rollout_two_link,
)
from .._layout import HOT, HOT_INLINE, TWO_LINK

__all__ = ["BAD_ACTION", "SCRATCH", "begin", "features_arm", "features_cartpole",
           "features_muscle_arm", "features_pendulum", "step_arm", "step_cartpole",
           "step_muscle_arm", "step_pendulum"]

#: Returned by a step kernel when an action is not finite (nothing was stepped).
BAD_ACTION = -(2**62)

#: Size of the kernels' scratch ``w``: a chunk of ``CHUNK`` copies, coordinate-major, of at
#: most 15 rows (the three-link arm's angles and the sines and cosines of them and of the
#: absolute angles).
SCRATCH = 15 * CHUNK

# cfg entries
EFFORT_DT, FINAL_VELOCITY, HORIZON, INV_HORIZON, MAX_STEPS, FAMILY = 0, 1, 2, 3, 4, 5


@njit(**HOT)
def begin(rows, x0, targets, tracking, final_error, x, t, c, tg, g):
    """Start episodes in copies ``rows``: state ``x0[r]``, step count 0, and from
    ``targets[r]`` (``[T, k]``, NaN: no target at that step) the step weights ``c``, the
    targets ``tg`` with 0 for NaN and the goal ``g``, the target of the last targeted step
    (0 without any). The weights are :meth:`plants.tasks.Task.step_weights`'s:
    ``tracking / n_targeted`` at each targeted step, plus ``final_error`` at the last.
    One pass over the targets (``c`` marks the targeted steps), one over ``c``."""
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
                tg[b, s, i] = v
                has &= v == v
            if has:
                cnt += 1
                last = s
                c[b, s] = 1.0
            else:
                c[b, s] = 0.0
                for i in range(k):
                    tg[b, s, i] = 0.0
        w = tracking / cnt if tracking != 0.0 and cnt > 0 else 0.0
        for s in range(T):
            if c[b, s] != 0.0:
                c[b, s] = w + final_error if s == last else w
        for i in range(k):
            g[b, i] = targets[r, last, i] if last >= 0 else 0.0


@njit(**HOT_INLINE)
def _load(a, scale, u):
    """``u = clip(a, -1, 1) * scale[0] + scale[1]`` (half range and centre of the controls), or
    False (``u`` untouched) if an action is not finite."""
    B, m = a.shape
    for b in range(B):
        for j in range(m):
            if not np.isfinite(a[b, j]):
                return False
    for b in range(B):
        for j in range(m):
            u[b, 0, j] = max(min(a[b, j], 1.0), -1.0) * scale[0, j] + scale[1, j]
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
def _sq(wout, i, y, tg, b, s):
    """``w_i (y - tg[b, s, i])^2``."""
    d = y - tg[b, s, i]
    return wout[i] * (d * d)


@njit(**HOT_INLINE)
def _finish(b, tb, cost, t, cfg, rew, trunc):
    """Step count, reward and truncation of copy ``b``; returns whether it was truncated."""
    t[b] = tb + 1
    rew[b] = -cost
    out = tb + 1 >= cfg[MAX_STEPS]
    trunc[b] = out
    return out


@njit(**HOT_INLINE)
def _new_states(x, xn):
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            x[b, i] = xn[b, 0, i]


@njit(**HOT_INLINE)
def _gather(w, o, x, rows, c0, nc, i):
    """``w[o + k] = x[rows[c0 + k], i]`` for the ``nc`` copies of a chunk, zeros after."""
    for k in range(CHUNK):
        w[o + k] = x[rows[c0 + k], i] if k < nc else 0.0


# -- the arms: [cos q (N), sin q (N), q_dot (N), hand (2), goal (2), t / T] ----------------
@njit(**HOT_INLINE, error_model="numpy")
def _arm_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, N, step):
    """The features of copies ``rows`` into ``f`` (after ``t`` steps), or with ``step`` the
    observations ``obs`` after ``t + 1`` steps and the step's rewards, with ``N`` links.
    ``N`` and ``step`` are constants where this is inlined, so that every offset in the
    scratch ``w`` is too and the trigonometry vectorises
    (chunks of ``CHUNK`` copies, coordinate-major: row ``j`` of a chunk at ``w[j * CHUNK]``):
    the joint angles (rows ``0 .. N - 1``), their sines and cosines
    (:func:`plants._chunked.sincos_row`: rows ``N + 2 i`` and ``N + 2 i + 1``) and those of the
    absolute angles ``phi_i = q_1 + ... + q_i`` by the angle-addition formulas (rows
    ``3 N + 2 i`` and ``3 N + 2 i + 1``). Returns the number of copies truncated."""
    CH = CHUNK
    nr = rows.shape[0]
    effort_dt, fv, last = cfg[EFFORT_DT], cfg[FINAL_VELOCITY], int(cfg[HORIZON]) - 1
    nt = 0
    for c0 in range(0, nr, CH):
        nc = min(CH, nr - c0)
        for i in range(N):
            _gather(w, i * CH, x, rows, c0, nc, i)
        for i in range(N):
            sincos_row(w, i * CH, (N + 2 * i) * CH)
        for k in range(CH):
            sp = 0.0
            cp = 1.0
            for i in range(N):
                sq = w[(N + 2 * i) * CH + k]
                cq = w[(N + 2 * i + 1) * CH + k]
                sp, cp = sp * cq + cp * sq, cp * cq - sp * sq
                w[(3 * N + 2 * i) * CH + k] = sp
                w[(3 * N + 2 * i + 1) * CH + k] = cp
        out = obs if step else f
        for k in range(nc):
            b = rows[c0 + k]
            px = 0.0
            py = 0.0
            for i in range(N):
                out[b, i] = w[(N + 2 * i + 1) * CH + k]
                out[b, N + i] = w[(N + 2 * i) * CH + k]
                out[b, 2 * N + i] = _clip(x[b, N + i], lo[2 * N + i], hi[2 * N + i])
                px += w[(3 * N + 2 * i + 1) * CH + k] * cfg[FAMILY + i]
                py += w[(3 * N + 2 * i) * CH + k] * cfg[FAMILY + i]
            out[b, 3 * N] = px
            out[b, 3 * N + 1] = py
            out[b, 3 * N + 2] = g[b, 0]
            out[b, 3 * N + 3] = g[b, 1]
            tb = t[b]
            if not step:
                out[b, 3 * N + 4] = tb * cfg[INV_HORIZON]
                continue
            out[b, 3 * N + 4] = (tb + 1) * cfg[INV_HORIZON]
            cost = _effort(u, b) * effort_dt
            cb = c[b, tb]
            if cb != 0.0:  # the outputs: the hand
                cost += cb * (_sq(wout, 0, px, tg, b, tb) + _sq(wout, 1, py, tg, b, tb))
            if fv != 0.0 and tb == last:
                # |J(q) q_dot|^2, the hand velocity being sum_a l_a phidot_a (-sin phi_a,
                # cos phi_a)
                vx = 0.0
                vy = 0.0
                pd = 0.0
                for i in range(N):
                    pd += x[b, N + i]
                    lw = cfg[FAMILY + i] * pd
                    vx -= lw * w[(3 * N + 2 * i) * CH + k]
                    vy += lw * w[(3 * N + 2 * i + 1) * CH + k]
                cost += fv * (vx * vx + vy * vy)
            nt += _finish(b, tb, cost, t, cfg, rew, trunc)
    return nt


@njit(**HOT, error_model="numpy")
def features_arm(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc):
    """The arms' features of copies ``rows`` (the arguments of :func:`step_arm`'s pass; ``u``
    to ``wout`` and ``obs`` to ``trunc`` are not used)."""
    if x.shape[1] == 4:
        _arm_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, 2, False)
    else:
        _arm_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, 3, False)


@njit(**HOT, error_model="numpy")
def step_arm(prm, ws, a, x, xn, u, t, c, tg, g, cfg, wout, scale, lo, hi, f, w, rows, obs,
             rew, trunc, count):
    """One step of the arms' copies (two or three links); see the module docstring."""
    if not _load(a, scale, u):
        return BAD_ACTION
    if int(prm[0]) == TWO_LINK:
        bad = rollout_two_link(prm, x, u, u, False, xn, 0, ws)
    else:
        bad = rollout_three_link(prm, x, u, u, False, xn, 0, ws)
    if bad != -1:
        return bad
    _new_states(x, xn)
    if x.shape[1] == 4:
        count[0] = _arm_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc,
                             2, True)
    else:
        count[0] = _arm_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc,
                             3, True)
    return -1


# -- the muscle arm: the two-link arm's features, then the six activations ------------------
@njit(**HOT_INLINE)
def _activations(rows, x, lo, hi, out):
    """The activations ``x[b, 4:]`` of copies ``rows`` into the last columns of ``out``
    (clipped to the observation bounds; the plant keeps them in ``[a_min, 1]``)."""
    n = x.shape[1]
    p = out.shape[1]
    for r in range(rows.shape[0]):
        b = rows[r]
        for i in range(4, n):
            j = p - n + i
            out[b, j] = _clip(x[b, i], lo[j], hi[j])


@njit(**HOT, error_model="numpy")
def features_muscle_arm(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc):
    """The muscle arm's features of copies ``rows``: the two-link arm's (from the joint
    angles and velocities) then the activations (see :func:`features_arm`)."""
    _arm_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, 2, False)
    _activations(rows, x, lo, hi, f)


@njit(**HOT, error_model="numpy")
def step_muscle_arm(prm, ws, a, x, xn, u, t, c, tg, g, cfg, wout, scale, lo, hi, f, w, rows,
                    obs, rew, trunc, count):
    """One step of the muscle arm's copies (actions to excitations in [0, 1]); see the module
    docstring."""
    if not _load(a, scale, u):
        return BAD_ACTION
    bad = rollout_muscle_arm(prm, x, u, u, False, xn, 0, ws)
    if bad != -1:
        return bad
    _new_states(x, xn)
    count[0] = _arm_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, 2,
                         True)
    _activations(rows, x, lo, hi, obs)
    return -1


# -- the pendulum and the cart-pole: one angle each ------------------------------------------
@njit(**HOT_INLINE, error_model="numpy")
def _angle_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, cart, step):
    """The features of copies ``rows`` of the pendulum (``[cos theta, sin theta, theta_dot,
    goal (3)]``) or, with ``cart``, the cart-pole (``[x, x_dot, cos theta, sin theta,
    theta_dot, goal (4)]``, the velocities clipped to the bounds) into ``f``, or with ``step``
    into ``obs`` with the rewards of the step (see :func:`_arm_pass`; scratch rows: theta,
    its sine and cosine)."""
    CH = CHUNK
    nr = rows.shape[0]
    effort_dt, fv, last = cfg[EFFORT_DT], cfg[FINAL_VELOCITY], int(cfg[HORIZON]) - 1
    a = 2 if cart else 0  # theta's index in the state
    nt = 0
    for c0 in range(0, nr, CH):
        nc = min(CH, nr - c0)
        _gather(w, 0, x, rows, c0, nc, a)
        sincos_row(w, 0, CH)
        out = obs if step else f
        for k in range(nc):
            b = rows[c0 + k]
            sn = w[CH + k]
            cs = w[2 * CH + k]
            if cart:
                out[b, 0] = x[b, 0]
                out[b, 1] = _clip(x[b, 1], lo[1], hi[1])
                out[b, 2] = cs
                out[b, 3] = sn
                out[b, 4] = _clip(x[b, 3], lo[4], hi[4])
                for i in range(4):
                    out[b, 5 + i] = g[b, i]
            else:
                out[b, 0] = cs
                out[b, 1] = sn
                out[b, 2] = x[b, 1]
                for i in range(3):
                    out[b, 3 + i] = g[b, i]
            if not step:
                continue
            tb = t[b]
            cost = _effort(u, b) * effort_dt
            cb = c[b, tb]
            if cb != 0.0:
                if cart:  # the outputs: the state
                    cost += cb * (_sq(wout, 0, x[b, 0], tg, b, tb)
                                  + _sq(wout, 1, x[b, 1], tg, b, tb)
                                  + _sq(wout, 2, x[b, 2], tg, b, tb)
                                  + _sq(wout, 3, x[b, 3], tg, b, tb))
                else:  # (cos theta, sin theta, theta_dot)
                    cost += cb * (_sq(wout, 0, cs, tg, b, tb) + _sq(wout, 1, sn, tg, b, tb)
                                  + _sq(wout, 2, x[b, 1], tg, b, tb))
            if fv != 0.0 and tb == last:
                if cart:
                    cost += fv * (x[b, 1] * x[b, 1] + x[b, 3] * x[b, 3])  # (x_dot, theta_dot)
                else:
                    cost += fv * (x[b, 1] * x[b, 1])  # theta_dot
            nt += _finish(b, tb, cost, t, cfg, rew, trunc)
    return nt


@njit(**HOT, error_model="numpy")
def features_pendulum(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc):
    """The pendulum's features of copies ``rows`` (see :func:`features_arm`)."""
    _angle_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, False, False)


@njit(**HOT, error_model="numpy")
def step_pendulum(prm, ws, a, x, xn, u, t, c, tg, g, cfg, wout, scale, lo, hi, f, w, rows, obs,
                  rew, trunc, count):
    """One step of the pendulum's copies; see the module docstring."""
    if not _load(a, scale, u):
        return BAD_ACTION
    bad = rollout_pendulum(prm, x, u, u, False, xn, 0, ws)
    if bad != -1:
        return bad
    _new_states(x, xn)
    count[0] = _angle_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc,
                           False, True)
    return -1


@njit(**HOT, error_model="numpy")
def features_cartpole(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc):
    """The cart-pole's features of copies ``rows`` (see :func:`features_arm`)."""
    _angle_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc, True, False)


@njit(**HOT, error_model="numpy")
def step_cartpole(prm, ws, a, x, xn, u, t, c, tg, g, cfg, wout, scale, lo, hi, f, w, rows, obs,
                  rew, trunc, count):
    """One step of the cart-pole's copies; see the module docstring."""
    if not _load(a, scale, u):
        return BAD_ACTION
    bad = rollout_cartpole(prm, x, u, u, False, xn, 0, ws)
    if bad != -1:
        return bad
    _new_states(x, xn)
    count[0] = _angle_pass(rows, x, u, t, c, tg, g, cfg, wout, lo, hi, f, w, obs, rew, trunc,
                           True, True)
    return -1
