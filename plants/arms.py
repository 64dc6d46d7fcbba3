r"""Planar arms: rigid serial chains of 2 or 3 links driven by joint torques.

Equations of motion (state ``[q..., qdot...]``, relative joint angles in radians)::

    M(q) qddot + C(q, qdot) qdot + B qdot + G(q) = tau + J(q)^T F_field

``q1`` is the shoulder angle from the x axis, ``q2`` the elbow angle relative to link 1,
``q3`` the wrist angle relative to link 2. With absolute link angles
``phi_a = q_1 + ... + q_a``, link lengths ``l_a``, masses ``m_a``, CoM distances ``s_a``
from the proximal joint and inertias ``i_a`` *about the proximal joint*, the kinetic energy
is ``1/2 phidot^T N(phi) phidot`` with::

    N_aa = i_a + l_a^2 sum_{k > a} m_k
    N_ab = l_b (m_a s_a + l_a sum_{k > a} m_k) cos(phi_a - phi_b)      (a > b)

and ``M = T^T N T`` (``T`` lower-triangular ones, ``phidot = T qdot``). For two links this
is Todorov's form::

    M = [[i1 + i2 + m2 l1^2 + 2 m2 l1 s2 cos q2,  i2 + m2 l1 s2 cos q2],
         [i2 + m2 l1 s2 cos q2,                   i2                  ]]

Gravity (optional, along -y: a vertical-plane arm) derives from
``V = g sum_a (m_a s_a + l_a sum_{k > a} m_k) sin(phi_a)``. The hand is at
``sum_a l_a (cos phi_a, sin phi_a)``.

Parameter sources
-----------------
* TwoLinkArm: Li, W. & Todorov, E. (2004), "Iterative linear quadratic regulator design for
  nonlinear biological movement systems", Proc. 1st ICINCO; Todorov, E. & Li, W. (2005), "A
  generalized iterative LQG method for locally-optimal feedback control of constrained
  nonlinear stochastic systems", Proc. ACC: masses 1.4, 1.0 kg; lengths 0.30, 0.33 m; CoM
  0.11, 0.16 m; inertias 0.025, 0.045 kg m^2; joint viscosity
  ``[[0.05, 0.025], [0.025, 0.05]]`` N m s/rad, as given by the independent
  re-implementations of that arm listed in docs/plants.md (a minority take a forearm of
  1.1 kg; the paper's parameter section itself was not checked here). Until this version
  the defaults had a 1.1 kg forearm and a viscosity of ``[[0.5, 0.1], [0.1, 0.5]]``; pass
  ``masses=`` and ``viscosity=`` to use other values.
* ThreeLinkArm: Winter, D. A. (2009), *Biomechanics and Motor Control of Human Movement*,
  4th ed., Wiley, Table 4.1 (Dempster's segment mass fractions 0.028/0.016/0.006 of body
  mass; CoM at 0.436/0.430/0.506 of segment length from the proximal joint; radius of
  gyration about the proximal joint 0.542/0.526/0.587 of segment length) and Fig. 4.1
  (Drillis & Contini segment lengths 0.186/0.146/0.108 of body height: shoulder-elbow,
  elbow-wrist, wrist-fingertip), for a 70 kg, 1.75 m adult by default. Inertia about the
  proximal joint = mass * (radius of gyration)^2.

  The hand's length is 0.108 H, wrist to fingertip: the hand position is the fingertip of
  the straight hand. Winter's hand CoM and radius-of-gyration fractions are relative to a
  shorter segment, wrist axis to knuckle II of the middle finger, for which neither source
  gives a fraction of height; they are applied to 0.108 H, which puts the hand's CoM and
  inertia somewhat further out than Dempster's data (docs/plants.md quantifies this). Pass
  ``com=`` and ``inertias=`` to override.

  The joint viscosity ``[[0.5, 0.1, 0], [0.1, 0.5, 0.05], [0, 0.05, 0.1]]`` N m s/rad is an
  assumption, not a measured quantity and not from Winter (its shoulder-elbow block is ten
  times Li & Todorov's two-joint values).
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from ._base import PlantBase, mechanical_section, position_field_section
from ._chunked import chunk_workspace
from ._dyn_chain import chain_workspace
from ._layout import CHAIN, THREE_LINK, TWO_LINK

#: Winter (2009) Table 4.1 / Fig. 4.1 fractions: (mass/body mass, CoM/segment length from
#: proximal, radius of gyration about proximal/segment length, segment length/height). The
#: hand's CoM and radius fractions are Table 4.1's, relative to wrist-knuckle II; they are
#: applied to the Fig. 4.1 wrist-fingertip length (see the module docstring).
WINTER_ARM = {
    "upper_arm": (0.028, 0.436, 0.542, 0.186),
    "forearm": (0.016, 0.430, 0.526, 0.146),
    "hand": (0.006, 0.506, 0.587, 0.108),
}


def link_coefficients(masses, lengths, com, inertias, g=0.0):
    """Constants of the chain's kinetic and potential energy in absolute link angles.

    Returns ``(n, gc)``: ``n[a, b]`` (symmetric, ``N x N``) with ``N_ab(phi) =
    n[a, b] cos(phi_a - phi_b)`` the inertia matrix of the module docstring, and ``gc`` with
    ``V = sum_a gc[a] sin(phi_a)``.
    """
    N = len(masses)
    beyond = np.array([masses[a + 1:].sum() for a in range(N)])
    n = np.diag(inertias + lengths**2 * beyond)
    for a in range(N):
        for b in range(a):
            n[a, b] = n[b, a] = lengths[b] * (masses[a] * com[a] + lengths[a] * beyond[a])
    gc = g * (masses * com + lengths * beyond)
    return n, gc


def chain_mass_terms(masses, lengths, com, inertias, g):
    """Constant matrices of ``M(q) = M0 + sum_p cos(delta_p) Mc_p`` and gravity coefficients.

    Returns ``(M0, pairs, gc)`` with ``pairs`` a list of ``(a, b, Mc)`` for ``a > b`` and
    ``delta_p = phi_a - phi_b``: the joint-angle form ``M = T^T N T`` of
    :func:`link_coefficients` (``T`` lower-triangular ones).
    """
    n, gc = link_coefficients(masses, lengths, com, inertias, g)
    N = len(masses)
    T = np.tril(np.ones((N, N)))
    M0 = T.T @ np.diag(np.diag(n)) @ T
    pairs = []
    for a in range(N):
        for b in range(a):
            E = np.zeros((N, N))
            E[a, b] = E[b, a] = n[a, b]
            pairs.append((a, b, T.T @ E @ T))
    return M0, pairs, gc


class PlanarArm(PlantBase):
    """A planar ``N``-link arm (use :class:`TwoLinkArm` or :class:`ThreeLinkArm`).

    Parameters
    ----------
    masses, lengths, com, inertias : array_like, shape (N,)
        Link masses (kg), lengths (m), CoM distances from the proximal joint (m), and
        inertias about the proximal joint (kg m^2); need ``0 <= com <= length`` and
        ``inertia >= mass com^2`` (parallel-axis theorem).
    viscosity : array_like, shape (N, N)
        Joint viscosity ``B`` (N m s/rad), symmetric positive semi-definite.
    gravity : bool or float
        False (horizontal plane, default), True (9.81 m/s^2 along -y) or a value.
    max_torque : float or array_like (N,) or None
        Symmetric torque limit (N m); default ``None`` (unlimited).
    dt, integrator, substeps :
        Default 0.01 s, "rk4", 1.
    constant_force, curl, field :
        Hand force ``F = constant_force + K p_dot`` (N), applied as ``J(q)^T F``; a curl
        field is ``K = [[0, curl], [-curl, 0]]`` N s/m.
    position_field, field_origin :
        Two links only: a position-dependent hand force ``P (p - p0)`` added to ``F``,
        ``P = position_field`` (2 x 2, N/m; default none) and ``p0 = field_origin`` (m;
        default the shoulder). A force channel (:func:`plants.tasks.force_channel`) is a
        stiff spring and damper across the straight start-target line.
    joint_limits : (low, high), optional
        Joint stops (rad), numbers or length-N vectors.
    max_speed : float or (N,) or None
        Joint velocity clip (rad/s); default none.
    control_noise, process_noise, rng, seed :
        Additive Gaussian noise and its generator.
    """

    def __init__(self, *, masses, lengths, com, inertias, viscosity, gravity=False,
                 max_torque=None, dt: float = 0.01, integrator: str = "rk4",
                 substeps: int = 1, constant_force=(0.0, 0.0), curl: float = 0.0,
                 field=None, position_field=None, field_origin=(0.0, 0.0), joint_limits=None,
                 max_speed=None, control_noise=0.0, process_noise=0.0, rng=None,
                 seed=None) -> None:
        self._remember(locals())
        masses = V.as_finite_array(masses, "masses", (None,))
        N = masses.shape[0]
        spring = position_field_section(position_field, field_origin)
        if N != 2 and np.any(spring[:4] != 0.0):
            raise ValueError(f"position_field is implemented for two links only, not {N}")
        lengths = V.as_finite_array(lengths, "lengths", (N,))
        com = V.as_finite_array(com, "com", (N,))
        inertias = V.as_finite_array(inertias, "inertias", (N,))
        visc = V.as_finite_array(viscosity, "viscosity", (N, N))
        if np.any(masses <= 0):
            raise ValueError(f"masses must be > 0, got {masses}")
        if np.any(lengths <= 0):
            raise ValueError(f"lengths must be > 0, got {lengths}")
        if np.any(com < 0) or np.any(com > lengths):
            raise ValueError(f"com must satisfy 0 <= com <= lengths, got com={com}, "
                             f"lengths={lengths}")
        if np.any(inertias < masses * com**2 * (1 - 1e-12)):
            raise ValueError("inertias (about the proximal joint) must be >= masses * com**2 "
                             f"(parallel-axis theorem), got {inertias} < {masses * com**2}")
        sym = 0.5 * (visc + visc.T)
        if not np.allclose(visc, visc.T) or np.linalg.eigvalsh(sym).min() < -1e-12:
            raise ValueError(f"viscosity must be symmetric positive semi-definite, got {visc}")
        if isinstance(gravity, bool | np.bool_):
            g = 9.81 if gravity else 0.0
        else:
            g = V.nonnegative(gravity, "gravity")
        if max_torque is not None:
            max_torque = V.noise_std(max_torque, "max_torque", N)
            if np.any(max_torque <= 0):
                raise ValueError(f"max_torque must be > 0, got {max_torque}")
        lo, hi = V.limits(None, max_torque, "max_torque", N)
        self.n_links = N
        self.masses, self.lengths, self.com, self.inertias = masses, lengths, com, inertias
        self.viscosity, self.g = visc, g
        coeff, self._gravity_coeff = link_coefficients(masses, lengths, com, inertias, g)
        section = np.concatenate([mechanical_section(constant_force, curl, field), [N],
                                  lengths, self._gravity_coeff, visc.ravel(), coeff.ravel()])
        if N == 2:  # the closed-form kernel's position field (_dyn_two_link)
            section = np.concatenate([section, spring])
            if np.any(spring[:4] != 0.0):
                section[0] = 1.0  # the field block's "on"
        # two links: the closed-form kernel (the chain's equations written out); three: the
        # chain compiled for N = 3
        code = {2: TWO_LINK, 3: THREE_LINK}.get(N, CHAIN)
        self._setup(code=code, integrator=integrator,
                    allowed_integrators=("euler", "semi_implicit", "rk4"), substeps=substeps,
                    dt=dt, n=2 * N, m=N, pos_index=list(range(N)),
                    vel_index=list(range(N, 2 * N)), control_low=lo, control_high=hi,
                    max_speed=max_speed, joint_limits=joint_limits, section=section,
                    plant_workspace=chain_workspace(N) + (chunk_workspace(2 * N, N)
                                                          if N <= 3 else 0),
                    parameters=dict(masses=masses, lengths=lengths, com=com,
                                    inertias=inertias, viscosity=visc, gravity=g,
                                    max_torque=max_torque),
                    control_noise=control_noise, process_noise=process_noise,
                    rng=rng, seed=seed)

    # -- kinematics -----------------------------------------------------------------------
    def _q(self, x, name="x") -> np.ndarray:
        x = V.as_finite_array(x, name, (None, self.state_dim))
        return x[:, : self.n_links]

    def joint_positions(self, x) -> np.ndarray:
        """Forward kinematics of every joint: ``[B, N + 1, 2]`` (shoulder at the origin)."""
        phi = np.cumsum(self._q(x), axis=1)
        seg = self.lengths * np.stack([np.cos(phi), np.sin(phi)], axis=2).transpose(0, 2, 1)
        pts = np.concatenate([np.zeros((phi.shape[0], 2, 1)), np.cumsum(seg, axis=2)], axis=2)
        return pts.transpose(0, 2, 1)

    def hand_position(self, x) -> np.ndarray:
        """Hand position ``sum_a l_a (cos phi_a, sin phi_a)`` for ``x[B, 2N]``: ``[B, 2]``."""
        return self.joint_positions(x)[:, -1, :]

    def hand_jacobian(self, x) -> np.ndarray:
        """``J = d hand / d q``, shape ``[B, 2, N]``."""
        phi = np.cumsum(self._q(x), axis=1)
        jx = -np.cumsum((self.lengths * np.sin(phi))[:, ::-1], axis=1)[:, ::-1]
        jy = np.cumsum((self.lengths * np.cos(phi))[:, ::-1], axis=1)[:, ::-1]
        return np.stack([jx, jy], axis=1)

    def hand_velocity(self, x) -> np.ndarray:
        """``J(q) qdot``, shape ``[B, 2]``."""
        x = V.as_finite_array(x, "x", (None, self.state_dim))
        return np.einsum("bij,bj->bi", self.hand_jacobian(x), x[:, self.n_links:])

    def hand_velocity_jacobian(self, x: np.ndarray) -> np.ndarray:
        """``d (J(q) qdot) / d x`` for states ``x[B, 2N]``, shape ``[B, 2, 2N]``.

        With ``phi_a = q_1 + ... + q_a`` the hand velocity is
        ``sum_a l_a phidot_a (-sin phi_a, cos phi_a)``, and ``phi_a`` depends on ``q_k`` for
        ``k <= a`` only, so::

            d v / d q_k    = -sum_{a >= k} l_a phidot_a (cos phi_a, sin phi_a)
            d v / d qdot_k = J(q)[:, k]

        (the first block is the derivative of the hand Jacobian along ``qdot``).
        """
        x = V.as_finite_array(x, "x", (None, self.state_dim))
        N = self.n_links
        phi = np.cumsum(x[:, :N], axis=1)
        w = self.lengths * np.cumsum(x[:, N:], axis=1)  # l_a phidot_a
        dq_x = -np.cumsum((w * np.cos(phi))[:, ::-1], axis=1)[:, ::-1]
        dq_y = -np.cumsum((w * np.sin(phi))[:, ::-1], axis=1)[:, ::-1]
        return np.concatenate([np.stack([dq_x, dq_y], axis=1), self.hand_jacobian(x)], axis=2)

    def energy(self, x) -> np.ndarray:
        """Kinetic plus potential energy ``1/2 qdot^T M(q) qdot + V(q)`` for ``x[B, 2N]``."""
        x = V.as_finite_array(x, "x", (None, self.state_dim))
        v = x[:, self.n_links:]
        kinetic = 0.5 * np.einsum("bi,bij,bj->b", v, self.mass_matrix(x), v)
        return kinetic + np.sin(np.cumsum(x[:, :self.n_links], axis=1)) @ self._gravity_coeff

    def mass_matrix(self, x) -> np.ndarray:
        """``M(q)`` for states ``x[B, 2N]``, shape ``[B, N, N]``."""
        q = self._q(x)
        phi = np.cumsum(q, axis=1)
        M0, pairs, _ = chain_mass_terms(self.masses, self.lengths, self.com, self.inertias, 0.0)
        M = np.broadcast_to(M0, (q.shape[0], *M0.shape)).copy()
        for a, b, Mc in pairs:
            M += np.cos(phi[:, a] - phi[:, b])[:, None, None] * Mc
        return M

    def _ik2(self, p, l1, l2, elbow_up):
        d2 = (p**2).sum(axis=1)
        c2 = (d2 - l1**2 - l2**2) / (2 * l1 * l2)
        if np.any(c2 > 1 + 1e-12) or np.any(c2 < -1 - 1e-12):
            bad = int(np.flatnonzero((c2 > 1 + 1e-12) | (c2 < -1 - 1e-12))[0])
            raise ValueError(f"target {bad} at distance {np.sqrt(d2[bad]):.4g} m is outside the "
                             f"reachable annulus [{abs(l1 - l2):.4g}, {l1 + l2:.4g}] m")
        q2 = np.arccos(np.clip(c2, -1.0, 1.0))
        if elbow_up:
            q2 = -q2
        q1 = np.arctan2(p[:, 1], p[:, 0]) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
        return q1, q2


class TwoLinkArm(PlanarArm):
    """Todorov's planar shoulder-elbow arm (Li & Todorov 2004), state ``[q1, q2, q1dot, q2dot]``.

    All keyword arguments of :class:`PlanarArm`; defaults (Li & Todorov 2004, ICINCO, and the
    independent re-implementations listed in docs/plants.md): masses (1.4, 1.0) kg, lengths
    (0.30, 0.33) m, com (0.11, 0.16) m, inertias (0.025, 0.045) kg m^2 about the joints,
    viscosity ``[[0.05, 0.025], [0.025, 0.05]]`` N m s/rad, horizontal plane (no gravity).
    """

    def __init__(self, *, masses=(1.4, 1.0), lengths=(0.30, 0.33), com=(0.11, 0.16),
                 inertias=(0.025, 0.045), viscosity=((0.05, 0.025), (0.025, 0.05)),
                 **kwargs) -> None:
        self._remember(locals())
        super().__init__(masses=masses, lengths=lengths, com=com, inertias=inertias,
                         viscosity=viscosity, **kwargs)

    def inverse_kinematics(self, p, *, elbow_up: bool = False) -> np.ndarray:
        """Joint angles ``q[B, 2]`` placing the hand at ``p[B, 2]``.

        ``elbow_up=False`` (default) gives ``q2 >= 0`` (a human right arm flexed at the
        elbow). Raises ``ValueError`` for an unreachable target.
        """
        p = V.as_finite_array(p, "p", (None, 2))
        q1, q2 = self._ik2(p, self.lengths[0], self.lengths[1], elbow_up)
        return np.stack([q1, q2], axis=1)


class ThreeLinkArm(PlanarArm):
    """Planar shoulder-elbow-wrist arm with Winter's (2009) anthropometric parameters.

    ``ThreeLinkArm(body_mass=70.0, height=1.75, **kwargs)`` derives masses, lengths, com
    and inertias (about the proximal joints) from :data:`WINTER_ARM`; any of them may be
    overridden by keyword. Other keywords as in :class:`PlanarArm`.
    """

    def __init__(self, *, body_mass: float = 70.0, height: float = 1.75, masses=None,
                 lengths=None, com=None, inertias=None,
                 viscosity=((0.5, 0.1, 0.0), (0.1, 0.5, 0.05), (0.0, 0.05, 0.1)),
                 **kwargs) -> None:
        self._remember(locals())
        body_mass = V.positive(body_mass, "body_mass")
        height = V.positive(height, "height")
        frac = np.array(list(WINTER_ARM.values()))
        L = frac[:, 3] * height
        mass = frac[:, 0] * body_mass
        self.body_mass, self.height = body_mass, height
        super().__init__(masses=mass if masses is None else masses,
                         lengths=L if lengths is None else lengths,
                         com=frac[:, 1] * L if com is None else com,
                         inertias=mass * (frac[:, 2] * L) ** 2 if inertias is None else inertias,
                         viscosity=viscosity, **kwargs)

    def inverse_kinematics(self, p, *, orientation=None, elbow_up: bool = False) -> np.ndarray:
        """Joint angles ``q[B, 3]`` with the hand at ``p[B, 2]`` and hand angle ``orientation``.

        The arm is redundant, so the absolute hand angle ``q1 + q2 + q3`` is given
        (radians, scalar or ``[B]``); by default it points radially away from the shoulder
        (``atan2(p_y, p_x)``). The wrist is placed at ``p - l3 (cos o, sin o)`` and the
        shoulder-elbow pair solved analytically.
        """
        p = V.as_finite_array(p, "p", (None, 2))
        if orientation is None:
            o = np.arctan2(p[:, 1], p[:, 0])
        else:
            o = V._vec(orientation, "orientation", p.shape[0])
            if not np.isfinite(o).all():
                raise ValueError(f"orientation must be finite, got {o}")
        w = p - self.lengths[2] * np.stack([np.cos(o), np.sin(o)], axis=1)
        q1, q2 = self._ik2(w, self.lengths[0], self.lengths[1], elbow_up)
        return np.stack([q1, q2, o - q1 - q2], axis=1)
