"""Independent reference models for the plants tests (plain NumPy, written from the physics).

Nothing here calls the compiled kernels. The arm oracle builds M(q) from the link centre-of-
mass Jacobians, gets the Coriolis terms from Christoffel symbols of M and gravity from the
potential, both differentiated by complex step (exact to rounding).
"""

from __future__ import annotations

import numpy as np


def pendulum_rhs(g, m, l, u):
    def f(t, z):
        return [z[1], 3 * g / (2 * l) * np.sin(z[0]) + 3.0 / (m * l**2) * u]
    return f


def cartpole_rhs(g, mc, mp, l, force):
    """Lagrangian form: M(q) qdd = Q, q = (x, theta), pole a uniform rod of length 2 l."""
    def f(t, z):
        x, xd, th, thd = z
        M = np.array([[mc + mp, mp * l * np.cos(th)],
                      [mp * l * np.cos(th), 4.0 / 3.0 * mp * l**2]])
        rhs = np.array([force + mp * l * np.sin(th) * thd**2, mp * g * l * np.sin(th)])
        xdd, thdd = np.linalg.solve(M, rhs)
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

    def energy(self, z):
        q, qd = z[: self.N], z[self.N:]
        return 0.5 * qd @ self.mass(q) @ qd + self.potential(q)

    def rhs(self, tau):
        def f(t, z):
            q, qd = z[: self.N], z[self.N:]
            return np.concatenate([qd, self.accel(q, qd, np.asarray(tau, float))])
        return f
