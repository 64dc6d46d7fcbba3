"""Independent reference models for the plants tests (plain NumPy, written from the physics).

Nothing here calls the compiled kernels. The arm oracle builds M(q) from the link centre-of-
mass Jacobians, gets the Coriolis terms from Christoffel symbols of M and gravity from the
potential, both differentiated by complex step (exact to rounding).
"""

from __future__ import annotations

import numpy as np


def pendulum_rhs(g, m, l, u, constant_force=(0.0, 0.0), field=((0.0, 0.0), (0.0, 0.0))):
    """Lagrangian form of a uniform rod about its end, theta = 0 upright.

    T = (m l^2 / 3) theta_dot^2 / 2, V = m g (l / 2) cos theta; an end-point force
    F = F0 + K p_dot on the tip p = (-l sin theta, l cos theta) enters as J^T F with
    J = dp/dtheta.
    """
    F0 = np.asarray(constant_force, float)
    K = np.asarray(field, float)

    def f(t, z):
        th, thd = z
        J = np.array([-l * np.cos(th), -l * np.sin(th)])
        F = F0 + K @ (J * thd)
        Q = u + J @ F + m * g * (l / 2.0) * np.sin(th)  # torque + field - dV/dtheta
        return [thd, Q / (m * l**2 / 3.0)]
    return f


def cartpole_rhs(g, mc, mp, l, force, constant_force=(0.0, 0.0),
                 field=((0.0, 0.0), (0.0, 0.0))):
    """Lagrangian form: M(q) qdd = Q, q = (x, theta), pole a uniform rod of length 2 l.

    An end-point force F = F0 + K p_dot on the pole tip p = (x + 2 l sin theta, 2 l cos theta)
    adds the generalised force J^T F, J = dp/dq.
    """
    F0 = np.asarray(constant_force, float)
    K = np.asarray(field, float)

    def f(t, z):
        x, xd, th, thd = z
        M = np.array([[mc + mp, mp * l * np.cos(th)],
                      [mp * l * np.cos(th), 4.0 / 3.0 * mp * l**2]])
        J = np.array([[1.0, 2 * l * np.cos(th)], [0.0, -2 * l * np.sin(th)]])
        F = F0 + K @ (J @ np.array([xd, thd]))
        rhs = np.array([force + mp * l * np.sin(th) * thd**2, mp * g * l * np.sin(th)])
        xdd, thdd = np.linalg.solve(M, rhs + J.T @ F)
        return [xd, xdd, thd, thdd]
    return f


class ArmOracle:
    """Planar N-link arm from first principles (complex-step safe)."""

    def __init__(self, masses, lengths, com, inertias, viscosity, g=0.0,
                 constant_force=(0.0, 0.0), field=((0.0, 0.0), (0.0, 0.0))):
        self.m = np.asarray(masses, float)
        self.l = np.asarray(lengths, float)
        self.s = np.asarray(com, float)
        self.ic = np.asarray(inertias, float) - self.m * self.s**2  # about the CoM
        self.B = np.asarray(viscosity, float)
        self.g = g
        self.F0 = np.asarray(constant_force, float)
        self.K = np.asarray(field, float)
        self.N = len(self.m)

    def com_jacobians(self, q):
        phi = np.cumsum(q)
        N = self.N
        Js = []
        for k in range(N):
            J = np.zeros((2, N), dtype=q.dtype)
            for i in range(k + 1):
                for a in range(i, k + 1):
                    d = self.s[a] if a == k else self.l[a]
                    J[0, i] += -d * np.sin(phi[a])
                    J[1, i] += d * np.cos(phi[a])
            Js.append(J)
        return Js

    def mass(self, q):
        N = self.N
        M = np.zeros((N, N), dtype=q.dtype)
        for k, J in enumerate(self.com_jacobians(q)):
            w = np.array([1.0 if i <= k else 0.0 for i in range(N)])
            M = M + self.m[k] * J.T @ J + self.ic[k] * np.outer(w, w)
        return M

    def potential(self, q):
        phi = np.cumsum(q)
        y = 0.0
        V = 0.0
        for k in range(self.N):
            V = V + self.m[k] * self.g * (y + self.s[k] * np.sin(phi[k]))
            y = y + self.l[k] * np.sin(phi[k])
        return V

    def hand(self, q):
        phi = np.cumsum(q)
        return np.array([np.sum(self.l * np.cos(phi)), np.sum(self.l * np.sin(phi))])

    def _cs(self, fun, q, h=1e-30):
        """Complex-step derivatives: list over k of d fun / d q_k."""
        out = []
        for k in range(self.N):
            qc = q.astype(complex)
            qc[k] += 1j * h
            out.append(np.imag(fun(qc)) / h)
        return out

    def accel(self, q, qd, tau):
        M = self.mass(q)
        dM = self._cs(self.mass, q)
        N = self.N
        h = np.zeros(N)
        for i in range(N):
            for j in range(N):
                for k in range(N):
                    h[i] += (dM[k][i, j] - 0.5 * dM[i][j, k]) * qd[j] * qd[k]
        G = np.array(self._cs(self.potential, q))
        J = np.stack(self._cs(self.hand, q), axis=1)
        F = self.F0 + self.K @ (J @ qd)
        return np.linalg.solve(M, tau + J.T @ F - h - self.B @ qd - G)

    def kinetic(self, z):
        q, qd = z[: self.N], z[self.N:]
        return 0.5 * qd @ self.mass(q) @ qd

    def energy(self, z):
        return self.kinetic(z) + self.potential(z[: self.N])

    def rhs(self, tau):
        def f(t, z):
            q, qd = z[: self.N], z[self.N:]
            return np.concatenate([qd, self.accel(q, qd, np.asarray(tau, float))])
        return f


def central_jacobian(fun, x, h=1e-6):
    """Central finite differences of a batched map ``fun(x[B, n]) -> [B, k]``: ``[B, k, n]``.

    Each coordinate of every sample is moved by ``±h`` in one batched call per coordinate.
    """
    x = np.asarray(x, float)
    cols = []
    for j in range(x.shape[1]):
        d = np.zeros_like(x)
        d[:, j] = h
        cols.append((fun(x + d) - fun(x - d)) / (2 * h))
    return np.stack(cols, axis=2)


def relative_error(a, b):
    """``max |a - b| / max(max |b|, 1e-300)`` over the whole array (0 for empty arrays)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), 1e-300))


def hand_force_from_dynamics(field_arm, free_arm, x, u):
    """The end-point force ``[B, 2]`` that ``field_arm`` applies and ``free_arm`` does not,
    at states ``x [B, n]`` under controls ``u [B, m]``, recovered from the dynamics alone:
    one Euler sub-step with and without the force from the same state differ in joint
    velocity by ``h M^-1 J^T F``, so ``F = J^-T M (dv_field - dv_free) / h``."""
    h = field_arm.dt / field_arm.substeps
    one = {"substeps": 1, "dt": h, "integrator": "euler", "joint_limits": None}
    dv = (field_arm.replace(**one).step(x, u)[:, 2:4]
          - free_arm.replace(**one).step(x, u)[:, 2:4]) / h
    M = field_arm.mass_matrix(x)
    J = field_arm.hand_jacobian(x)
    tau = np.einsum("bij,bj->bi", M, dv)
    return np.linalg.solve(np.transpose(J, (0, 2, 1)), tau[:, :, None])[:, :, 0]
