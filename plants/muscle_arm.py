r"""The two-link arm driven by six Hill-type muscles (MotorNet's ``RigidTendonArm26``).

State ``[q1, q2, q1dot, q2dot, a_1 .. a_6]`` (rad, rad/s, activations); control: the six
excitations, clipped to ``[0, 1]`` (part of the model). The skeleton is
:class:`plants.TwoLinkArm`'s (same equations, force fields and gravity option); the joint
torques are the muscles'::

    tau_j = -sum_i F_i(a_i, L_i(q), L_dot_i) r_ij(q),      L_dot_i = sum_j r_ij qdot_j

with the rigid-tendon Hill force ``F_i`` and the activation dynamics of
:mod:`plants.muscles`, moment arms ``r_ij = dL_i/dq_j = a1_ij + 2 a2_ij (q_j - a3_j)`` and
musculotendon lengths ``L_i = a0_i + sum_j (a1_ij + a2_ij (q_j - a3_j)) (q_j - a3_j)``.

Defaults: MotorNet's ``RigidTendonArm26`` (``motornet/effector.py``, MotorNet by Codol et
al., github.com/OlivierCodol/MotorNet; its muscle ``RigidTendonHillMuscle`` implements
Kistemaker, Wong & Gribble 2010, and its moment-arm polynomials and skeleton cite Nijhof &
Kouwenhoven 2000): muscles pectoralis, deltoid, brachioradialis, triceps lateral, biceps,
triceps long (shoulder flexor/extensor, elbow flexor/extensor, biarticular
flexor/extensor); ``F_max = (838, 1207, 1422, 1549, 414, 603)`` N, optimal fibre lengths
``(0.134, 0.140, 0.092, 0.093, 0.137, 0.127)`` m, tendon slack lengths
``(0.039, 0.066, 0.172, 0.187, 0.204, 0.217)`` m, the polynomial coefficients of
:data:`plants.muscles.ARM26`, ``tau_act = 15 ms``, ``tau_deact = 50 ms``,
``a_min = 0.001``; skeleton masses (1.82, 1.43) kg, lengths (0.309, 0.333) m, centres of
mass (0.135, 0.165) m, inertias about the centres of mass (0.051, 0.057) kg m^2 (about the
joints, as this package takes them: ``I + m s^2`` = 0.08417, 0.09593 kg m^2), no joint
viscosity, joint stops at shoulder [0, 135] deg and elbow [0, 155] deg, explicit Euler with
``dt = 10 ms`` (MotorNet's integration for this effector).
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from . import muscles as M
from ._base import PlantBase
from ._chunked import chunk_workspace
from ._dyn_muscle import ARM_WORKSPACE
from ._layout import H_PLANT, MUSCLE_ARM
from .arms import TwoLinkArm

_MOTORNET_INERTIA_COM = (0.051, 0.057)
_MOTORNET_MASSES = (1.82, 1.43)
_MOTORNET_COM = (0.135, 0.165)
#: MotorNet's RigidTendonArm26 joint stops: shoulder [0, 135] deg, elbow [0, 155] deg
_MOTORNET_JOINT_LIMITS = ((0.0, 0.0), (float(np.deg2rad(135.0)), float(np.deg2rad(155.0))))
#: MotorNet's inertias about the centres of mass moved to the joints: ``I + m s^2``
_MOTORNET_INERTIA_JOINT = tuple(i + m * s**2 for i, m, s in zip(
    _MOTORNET_INERTIA_COM, _MOTORNET_MASSES, _MOTORNET_COM, strict=True))


class MuscleArm(PlantBase):
    """Two-link arm with six rigid-tendon Hill muscles (MotorNet's ``RigidTendonArm26``).

    Parameters
    ----------
    masses, lengths, com, inertias, viscosity, gravity :
        The skeleton, as :class:`plants.TwoLinkArm` (inertias about the joints); defaults
        MotorNet's (module docstring).
    max_isometric_force, optimal_fibre_length, tendon_slack_length : array_like (6,)
        Per muscle, > 0 (tendon slack length >= 0): N, m, m.
    path_a0 : array_like (6,)
        Musculotendon length at ``q = a3`` (m), > 0.
    path_a1, path_a2 : array_like (2, 6)
        Moment-arm polynomial coefficients (rows shoulder, elbow): ``r = a1 + 2 a2 (q - a3)``.
    path_a3 : array_like (2,)
        Reference joint angles of the polynomials (rad).
    tau_activation, tau_deactivation : float
        Activation time constants (s), > 0; default 0.015, 0.05.
    min_activation : float
        Activation (and effective excitation) floor, in (0, 1); default 0.001.
    dt, integrator, substeps :
        Default 0.01 s, "euler" (or "rk4"), 1.
    joint_limits : (low, high) or None
        Joint stops (rad); default ``((0, 0), (135 deg, 155 deg))``.
    max_speed, constant_force, curl, field, position_field, field_origin, control_noise, \
process_noise, rng, seed :
        As :class:`plants.TwoLinkArm` (the hand force ``F0 + K p_dot + P (p - p0)``).
    """

    n_links = 2
    muscle_names = M.ARM26_NAMES

    def __init__(self, *, masses=_MOTORNET_MASSES, lengths=(0.309, 0.333), com=_MOTORNET_COM,
                 inertias=_MOTORNET_INERTIA_JOINT,
                 viscosity=((0.0, 0.0), (0.0, 0.0)), gravity=False,
                 max_isometric_force=M.ARM26["max_isometric_force"],
                 optimal_fibre_length=M.ARM26["optimal_fibre_length"],
                 tendon_slack_length=M.ARM26["tendon_slack_length"],
                 path_a0=M.ARM26["path_a0"], path_a1=M.ARM26["path_a1"],
                 path_a2=M.ARM26["path_a2"], path_a3=M.ARM26["path_a3"],
                 tau_activation: float = 0.015, tau_deactivation: float = 0.05,
                 min_activation: float = 0.001, dt: float = 0.01, integrator: str = "euler",
                 substeps: int = 1, joint_limits=_MOTORNET_JOINT_LIMITS,
                 max_speed=None, constant_force=(0.0, 0.0), curl: float = 0.0, field=None,
                 position_field=None, field_origin=(0.0, 0.0), control_noise=0.0,
                 process_noise=0.0, rng=None, seed=None) -> None:
        self._remember(locals())
        k = 6
        fmax = M.per_muscle(max_isometric_force, "max_isometric_force", k)
        l0 = M.per_muscle(optimal_fibre_length, "optimal_fibre_length", k)
        lse = M.per_muscle(tendon_slack_length, "tendon_slack_length", k, positive=False)
        a0 = M.per_muscle(path_a0, "path_a0", k)
        a1 = V.as_finite_array(path_a1, "path_a1", (2, k))
        a2 = V.as_finite_array(path_a2, "path_a2", (2, k))
        a3 = V.as_finite_array(path_a3, "path_a3", (2,))
        ta, td, am = M.activation_times(tau_activation, tau_deactivation, min_activation)
        if am <= 0.0:
            raise ValueError(f"min_activation must be > 0 (the Hill model's eccentric branch "
                             f"is 0/0 at zero activation and velocity), got {am}")
        # the skeleton: kinematics, energy, and the first part of the kernel section
        self.skeleton = TwoLinkArm(masses=masses, lengths=lengths, com=com, inertias=inertias,
                                   viscosity=viscosity, gravity=gravity, dt=dt,
                                   constant_force=constant_force, curl=curl, field=field,
                                   position_field=position_field, field_origin=field_origin)
        sk = self.skeleton
        self.lengths, self.masses, self.com, self.inertias = (sk.lengths, sk.masses, sk.com,
                                                              sk.inertias)
        self.viscosity, self.g = sk.viscosity, sk.g
        self.max_isometric_force, self.optimal_fibre_length = fmax, l0
        self.tendon_slack_length = lse
        self.path_a0, self.path_a1, self.path_a2, self.path_a3 = a0, a1, a2, a3
        self.tau_activation, self.tau_deactivation, self.min_activation = ta, td, am
        vmax = M.VMAX_PER_L0 * l0
        skp = sk.kernel_params
        per = np.stack([fmax, 1.0 / l0, lse, 1.0 / vmax, a0, a1[0], a1[1], a2[0], a2[1]],
                       axis=1)
        section = np.concatenate([skp[int(skp[H_PLANT]):], [k, ta, 1.0 / td, am, a3[0], a3[1]],
                                  per.ravel()])
        self._setup(code=MUSCLE_ARM, integrator=integrator, allowed_integrators=("euler", "rk4"),
                    substeps=substeps, dt=dt, n=4 + k, m=k, pos_index=[0, 1], vel_index=[2, 3],
                    control_low=np.zeros(k), control_high=np.ones(k), max_speed=max_speed,
                    joint_limits=joint_limits, section=section,
                    plant_workspace=ARM_WORKSPACE + chunk_workspace(4 + k, k),
                    parameters=dict(masses=sk.masses, lengths=sk.lengths, com=sk.com,
                                    inertias=sk.inertias, viscosity=sk.viscosity, gravity=sk.g,
                                    max_isometric_force=fmax, optimal_fibre_length=l0,
                                    tendon_slack_length=lse, path_a0=a0, path_a1=a1,
                                    path_a2=a2, path_a3=a3, tau_activation=ta,
                                    tau_deactivation=td, min_activation=am),
                    control_noise=control_noise, process_noise=process_noise, rng=rng,
                    seed=seed)

    # -- states -------------------------------------------------------------------------
    def _x(self, x, name: str = "x") -> np.ndarray:
        return V.as_finite_array(x, name, (None, self.state_dim))

    def rest_state(self, q) -> np.ndarray:
        """States at rest at joint angles ``q[B, 2]``: zero velocity, activations at
        ``min_activation``; ``[B, 10]``."""
        q = V.as_finite_array(q, "q", (None, 2))
        x = np.zeros((q.shape[0], self.state_dim))
        x[:, :2] = q
        x[:, 4:] = self.min_activation
        return x

    # -- skeleton (ArmDynamics) ---------------------------------------------------------
    def hand_position(self, x) -> np.ndarray:
        """Hand position ``[B, 2]`` (m) of states ``x[B, 10]``."""
        return self.skeleton.hand_position(self._x(x)[:, :4])

    def hand_jacobian(self, x) -> np.ndarray:
        """``J = d hand / d q``, ``[B, 2, 2]``."""
        return self.skeleton.hand_jacobian(self._x(x)[:, :4])

    def hand_velocity(self, x) -> np.ndarray:
        """``J(q) qdot``, ``[B, 2]`` (m/s)."""
        return self.skeleton.hand_velocity(self._x(x)[:, :4])

    def hand_velocity_jacobian(self, x) -> np.ndarray:
        """``d (J(q) qdot) / d x``, ``[B, 2, 10]`` (zero in the activations)."""
        x = self._x(x)
        out = np.zeros((x.shape[0], 2, self.state_dim))
        out[:, :, :4] = self.skeleton.hand_velocity_jacobian(x[:, :4])
        return out

    def joint_positions(self, x) -> np.ndarray:
        """Shoulder, elbow and hand positions ``[B, 3, 2]``."""
        return self.skeleton.joint_positions(self._x(x)[:, :4])

    def mass_matrix(self, x) -> np.ndarray:
        """``M(q)``, ``[B, 2, 2]``."""
        return self.skeleton.mass_matrix(self._x(x)[:, :4])

    def energy(self, x) -> np.ndarray:
        """Kinetic plus potential energy of the skeleton ``[B]`` (J); the muscles store
        none (the passive force is not conservative here: it is part of the muscle force)."""
        return self.skeleton.energy(self._x(x)[:, :4])

    def inverse_kinematics(self, p, *, elbow_up: bool = False) -> np.ndarray:
        """Joint angles ``q[B, 2]`` placing the hand at ``p[B, 2]`` (see
        :meth:`plants.TwoLinkArm.inverse_kinematics`)."""
        return self.skeleton.inverse_kinematics(p, elbow_up=elbow_up)

    # -- muscles (outputs for sensing and plotting) --------------------------------------
    def moment_arms(self, x) -> np.ndarray:
        """``r[B, 2, 6] = dL/dq`` (m) of states ``x[B, 10]``."""
        d = self._x(x)[:, :2] - self.path_a3
        return self.path_a1[None] + 2.0 * self.path_a2[None] * d[:, :, None]

    def musculotendon_lengths(self, x) -> np.ndarray:
        """``L[B, 6]`` (m)."""
        d = (self._x(x)[:, :2] - self.path_a3)[:, :, None]
        return self.path_a0 + ((self.path_a1 + self.path_a2 * d) * d).sum(axis=1)

    def muscle_lengths(self, x) -> np.ndarray:
        """Fibre lengths ``l = max(L - l_se, 0)`` ``[B, 6]`` (m; rigid tendon). Divide by
        ``optimal_fibre_length`` for the normalised lengths."""
        return np.maximum(self.musculotendon_lengths(x) - self.tendon_slack_length, 0.0)

    def muscle_velocities(self, x) -> np.ndarray:
        """Fibre velocities ``L_dot = r^T qdot`` ``[B, 6]`` (m/s, positive lengthening)."""
        x = self._x(x)
        return np.einsum("bji,bj->bi", self.moment_arms(x), x[:, 2:4])

    def activations(self, x) -> np.ndarray:
        """The activations as the model uses them (clamped to ``[a_min, 1]``), ``[B, 6]``."""
        return np.clip(self._x(x)[:, 4:], self.min_activation, 1.0)

    def muscle_forces(self, x, *, parts: bool = False):
        """Muscle forces ``[B, 6]`` (N); with ``parts``, ``(total, active, passive)``."""
        x = self._x(x)
        out = M.hill_force(self.activations(x), self.musculotendon_lengths(x),
                           self.muscle_velocities(x), self.max_isometric_force,
                           self.optimal_fibre_length, self.tendon_slack_length, parts=True)
        return out[:3] if parts else out[0]

    def joint_torques(self, x) -> np.ndarray:
        """Muscle torques ``tau = -r F`` at the joints ``[B, 2]`` (N m)."""
        x = self._x(x)
        return -np.einsum("bji,bi->bj", self.moment_arms(x), self.muscle_forces(x))

    # -- NumPy reference step -----------------------------------------------------------
    def numpy_rhs(self, x, u) -> np.ndarray:
        """``dx/dt`` in plain NumPy for states ``x[B, 10]`` and (clipped) excitations
        ``u[B, 6]``: the reference of the compiled right-hand side."""
        sk = self.skeleton
        q, v = x[:, :2], x[:, 2:4]
        tau = self.joint_torques(x) - v @ self.viscosity.T
        s = np.sin(q[:, 1])
        n21 = sk.masses[1] * sk.lengths[0] * sk.com[1]
        h = n21 * s[:, None] * np.stack([-(2 * v[:, 0] * v[:, 1] + v[:, 1] ** 2),
                                         v[:, 0] ** 2], axis=1)
        phi = np.cumsum(q, axis=1)
        gc = sk._gravity_coeff
        grav = np.stack([gc[0] * np.cos(phi[:, 0]) + gc[1] * np.cos(phi[:, 1]),
                         gc[1] * np.cos(phi[:, 1])], axis=1)
        J = sk.hand_jacobian(x[:, :4])
        f0, K, P, p0 = self._field()
        F = (f0 + np.einsum("ij,bj->bi", K, np.einsum("bij,bj->bi", J, v))
             + (sk.hand_position(x[:, :4]) - p0) @ P.T)
        rhs = tau - h - grav + np.einsum("bji,bj->bi", J, F)
        acc = np.linalg.solve(self.mass_matrix(x), rhs[:, :, None])[:, :, 0]
        da = M.activation_rate(x[:, 4:], u, self.tau_activation, self.tau_deactivation,
                               self.min_activation)
        return np.concatenate([v, acc, da], axis=1)

    def _field(self):
        kw = self._init_kwargs
        f0 = np.asarray(kw.get("constant_force", (0.0, 0.0)), dtype=float)
        if kw.get("field") is not None:
            K = np.asarray(kw["field"], dtype=float)
        else:
            cu = float(kw.get("curl", 0.0))
            K = np.array([[0.0, cu], [-cu, 0.0]])
        P = kw.get("position_field")
        P = np.zeros((2, 2)) if P is None else np.asarray(P, dtype=float)
        return f0, K, P, np.asarray(kw.get("field_origin", (0.0, 0.0)), dtype=float)

    def numpy_step(self, x, u) -> np.ndarray:
        """One step in plain NumPy (the same integrator, substeps, joint stops and clamps
        as the compiled step; no noise): ``x[B, 10]``, ``u[B, 6]`` -> ``x_next[B, 10]``."""
        x = self._x(x)
        u = np.clip(V.as_finite_array(u, "u", (x.shape[0], self.control_dim)), 0.0, 1.0)
        h = self.dt / self.substeps
        z = x.copy()
        for _ in range(self.substeps):
            k1 = self.numpy_rhs(z, u)
            if self.integrator == "rk4":
                k2 = self.numpy_rhs(z + 0.5 * h * k1, u)
                k3 = self.numpy_rhs(z + 0.5 * h * k2, u)
                k4 = self.numpy_rhs(z + h * k3, u)
                z = z + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
            else:
                z = z + h * k1
            vmax = self.velocity_limit
            z[:, 2:4] = np.clip(z[:, 2:4], -vmax, vmax)
            lo, hi = self.joint_low, self.joint_high
            below, above = z[:, :2] < lo, z[:, :2] > hi
            z[:, :2] = np.clip(z[:, :2], lo, hi)
            z[:, 2:4] = np.where((below & (z[:, 2:4] < 0)) | (above & (z[:, 2:4] > 0)), 0.0,
                                 z[:, 2:4])
            z[:, 4:] = np.clip(z[:, 4:], self.min_activation, 1.0)
        return z
