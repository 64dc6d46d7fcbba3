"""The arm-reach closed loop written in JAX, for the benchmark's comparison column.

The same loop as ``hfcontrol.recipes.arm_reach`` (exact feedback, no delay, no noise):
the network senses ``[goal, x_t]``, its linear output is the joint torque, the two-link
arm (closed-form dynamics, RK4, its constants read from the plant) steps. The Gauss-Newton
product is the route a Feedbax or JAX user would take: ``G v = J^T H J v`` by ``jax.jvp``
of the weighted residuals, then ``jax.vjp``, under ``jax.jit``. :func:`arm_reach_gv`
checks its rollout against ``hfcontrol``'s before returning.
"""

from __future__ import annotations

import numpy as np


def arm_reach_gv(loop, batch):  # pragma: no cover - needs JAX
    """``(gv, rollout)``: jitted ``v -> G v`` at ``loop``'s weights on ``batch``, and
    ``W -> (X, U)``."""
    import jax
    import jax.numpy as jnp

    from plants.arms import link_coefficients

    arm, task = loop.plant, loop.task
    p = arm.parameters
    n_mat, _ = link_coefficients(p["masses"], p["lengths"], p["com"], p["inertias"])
    n11, n21, n22 = float(n_mat[0, 0]), float(n_mat[1, 0]), float(n_mat[1, 1])
    visc = jnp.asarray(p["viscosity"], jnp.float32)
    l1, l2 = (float(v) for v in p["lengths"])
    dt = float(arm.dt)
    net = loop.net
    shapes = {c: net.get_weights(net.W, c) for c in ((0, 1), (1, 2), (1, 1))}

    def unpack(W):
        out = []
        for conn, (w, _) in shapes.items():
            start, mid, end = net.offsets[conn]
            out += [W[start:mid].reshape(w.shape), W[mid:end]]
        return out

    def rhs(x, u):
        q2, v1, v2 = x[:, 1], x[:, 2], x[:, 3]
        c2, s2 = jnp.cos(q2), jnp.sin(q2)
        m11 = n11 + n22 + 2 * n21 * c2
        m12 = n22 + n21 * c2
        h1 = -n21 * s2 * (2 * v1 * v2 + v2 * v2)
        h2 = n21 * s2 * v1 * v1
        v = x[:, 2:]
        f = u - jnp.stack([h1, h2], axis=1) - v @ visc.T
        det = m11 * n22 - m12 * m12
        a1 = (n22 * f[:, 0] - m12 * f[:, 1]) / det
        a2 = (m11 * f[:, 1] - m12 * f[:, 0]) / det
        return jnp.concatenate([v, jnp.stack([a1, a2], axis=1)], axis=1)

    def plant_step(x, u):
        k1 = rhs(x, u)
        k2 = rhs(x + 0.5 * dt * k1, u)
        k3 = rhs(x + 0.5 * dt * k2, u)
        k4 = rhs(x + dt * k3, u)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    goals = jnp.asarray(loop._task_inputs(batch.targets)[:, 0], jnp.float32)
    x0 = jnp.asarray(batch.x0, jnp.float32)
    T = batch.targets.shape[1]
    scale = jnp.asarray(loop.control_scale, jnp.float32)

    def rollout(W):
        w_in, b_in, w_out, b_out, w_rec, b_rec = unpack(W)

        def step(carry, t):
            x, s = carry
            z = jnp.concatenate([goals, x], axis=1) @ w_in + b_in
            z = z + jnp.where(t > 0, s @ w_rec, b_rec)
            s = jnp.tanh(z)
            u = scale * (s @ w_out + b_out)
            x_next = plant_step(x, u)
            return (x_next, s), (x_next, u)

        s0 = jnp.zeros((x0.shape[0], w_rec.shape[0]), jnp.float32)
        _, (X, U) = jax.lax.scan(step, (x0, s0), jnp.arange(T))
        return jnp.concatenate([x0[None], X], axis=0).transpose(1, 0, 2), U.transpose(1, 0, 2)

    wts = task.weights
    goal_last = jnp.asarray(batch.targets[:, -1], jnp.float32)
    B = x0.shape[0]

    def residuals(W):
        X, U = rollout(W)
        q1, q2 = X[:, -1, 0], X[:, -1, 1]
        hand = jnp.stack([l1 * jnp.cos(q1) + l2 * jnp.cos(q1 + q2),
                          l1 * jnp.sin(q1) + l2 * jnp.sin(q1 + q2)], axis=1)
        jx1 = -l1 * jnp.sin(q1) - l2 * jnp.sin(q1 + q2)
        jx2 = -l2 * jnp.sin(q1 + q2)
        jy1 = l1 * jnp.cos(q1) + l2 * jnp.cos(q1 + q2)
        jy2 = l2 * jnp.cos(q1 + q2)
        vel = jnp.stack([jx1 * X[:, -1, 2] + jx2 * X[:, -1, 3],
                         jy1 * X[:, -1, 2] + jy2 * X[:, -1, 3]], axis=1)
        return jnp.concatenate([
            np.sqrt(wts.final_error / B) * (hand - goal_last).ravel(),
            np.sqrt(wts.final_velocity / B) * vel.ravel(),
            np.sqrt(wts.effort * dt / B) * U.ravel()])

    W0 = jnp.asarray(loop.W, jnp.float32)

    @jax.jit
    def gv(v):
        _, jv = jax.jvp(residuals, (W0,), (v,))
        _, vjp = jax.vjp(residuals, W0)
        return 2 * vjp(jv)[0]

    X, _ = jax.jit(rollout)(W0)
    ours = loop.rollout(batch, noise=False).states
    err = float(np.max(np.abs(np.asarray(X) - ours)))
    if err > 1e-3:
        raise RuntimeError(f"the JAX loop does not reproduce hfcontrol's rollout (max state "
                           f"difference {err:.2e})")
    return gv, jax.jit(rollout)
