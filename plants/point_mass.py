r"""A planar point mass driven by a force or by four muscles (MotorNet's ``ReluPointMass24``).

Force-driven (``muscles=False``): state ``[x, y, xdot, ydot]``, control the force ``[Fx,
Fy]`` (N, clipped to ``[-max_force, max_force]`` if given)::

    m pddot = u + F0 + K pdot

With muscles (``muscles=True``, the default): state ``[x, y, xdot, ydot, a_1 .. a_4]``,
control the four excitations in ``[0, 1]``; muscle ``i`` pulls the mass towards its
anchor ``c_i`` with the force ``a_i F_max`` of MotorNet's ``ReluMuscle`` (no force-length
or force-velocity relation)::

    m pddot = -sum_i a_i F_max (p - c_i) / |p - c_i| + F0 + K pdot

and the activations follow the dynamics of :mod:`plants.muscles` (``tau_act = 15 ms``,
``tau_deact = 50 ms``, floor 0). Defaults from MotorNet's ``ReluPointMass24``
(``motornet/effector.py``) and ``PointMass`` skeleton (``motornet/skeleton.py``): mass 1 kg,
``F_max = 500`` N, anchors at ``(2, 2), (-2, 2), (2, -2), (-2, -2)`` m (upper right, upper
left, lower right, lower left), position bounds ``[-1, 1]`` m on each axis (inelastic stops),
explicit Euler, ``dt = 10 ms``. The muscle length is ``|p - c_i|`` and its velocity
``(p - c_i) . pdot / |p - c_i|``.
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from . import muscles as M
from ._base import PlantBase, mechanical_section
from ._layout import POINT_MASS

_ANCHORS = ((2.0, 2.0), (-2.0, 2.0), (2.0, -2.0), (-2.0, -2.0))


class PointMass(PlantBase):
    """Planar point mass, force- or muscle-driven (see the module docstring).

    Parameters
    ----------
    mass : float
        kg, > 0; default 1.
    muscles : bool
        Four ReLU muscles (default) or a direct force.
    max_isometric_force : float or array_like (4,)
        Muscle force at full activation (N), > 0; default 500.
    anchors : array_like (4, 2)
        Muscle anchors (m); no anchor may be inside the position bounds.
    tau_activation, tau_deactivation, min_activation :
        Activation dynamics (s, s, floor in [0, 1)); default 0.015, 0.05, 0.
    max_force : float or None
        Force-driven only: symmetric force limit (N); default None (unlimited).
    dt, integrator, substeps :
        Default 0.01 s, "euler" (or "rk4"; force-driven also "semi_implicit"), 1.
    joint_limits : (low, high) or None
        Position bounds (m); default ``(-1, 1)`` on both axes.
    max_speed, constant_force, curl, field, control_noise, process_noise, rng, seed :
        As the other plants (the end-point force acts on the mass).
    """

    def __init__(self, *, mass: float = 1.0, muscles: bool = True,
                 max_isometric_force=500.0, anchors=_ANCHORS,
                 tau_activation: float = 0.015, tau_deactivation: float = 0.05,
                 min_activation: float = 0.0, max_force=None, dt: float = 0.01,
                 integrator: str = "euler", substeps: int = 1, joint_limits=(-1.0, 1.0),
                 max_speed=None, constant_force=(0.0, 0.0), curl: float = 0.0, field=None,
                 control_noise=0.0, process_noise=0.0, rng=None, seed=None) -> None:
        self._remember(locals())
        self.mass = V.positive(mass, "mass")
        if not isinstance(muscles, bool | np.bool_):
            raise TypeError(f"muscles must be True or False, got {muscles!r}")
        self.muscles = bool(muscles)
        field_blk = mechanical_section(constant_force, curl, field)
        if joint_limits is None:
            lo, hi = np.full(2, -np.inf), np.full(2, np.inf)
        else:
            if not isinstance(joint_limits, (tuple, list)) or len(joint_limits) != 2:
                raise TypeError("joint_limits must be a pair (low, high) of numbers or "
                                f"length-2 vectors, got {joint_limits!r}")
            lo, hi = V.limits(joint_limits[0], joint_limits[1], "joint_limits", 2)
        if self.muscles:
            if max_force is not None:
                raise ValueError("max_force applies to the force-driven point mass "
                                 "(muscles=False); the muscles' force is max_isometric_force")
            k = 4
            fmax = M.per_muscle(max_isometric_force, "max_isometric_force", k)
            anc = V.as_finite_array(anchors, "anchors", (k, 2))
            # (unbounded: the mass may reach an anchor, where the step is not finite and
            # raises the plants' non-finite error)
            inside = np.all((anc >= lo) & (anc <= hi), axis=1) & bool(
                np.isfinite(lo).all() and np.isfinite(hi).all())
            if inside.any():
                raise ValueError(f"anchors must lie outside the position bounds (a muscle "
                                 f"pulling through its anchor has no direction), got anchor "
                                 f"{int(np.flatnonzero(inside)[0])} at "
                                 f"{anc[int(np.flatnonzero(inside)[0])]}")
            ta, td, am = M.activation_times(tau_activation, tau_deactivation, min_activation)
            section = np.concatenate([field_blk, [self.mass, k, ta, 1.0 / td, am],
                                      np.concatenate([fmax[:, None], anc], axis=1).ravel()])
            ulo, uhi = np.zeros(k), np.ones(k)
            n, m, allowed = 8, k, ("euler", "rk4")
            self.max_isometric_force, self.anchors = fmax, anc
            self.tau_activation, self.tau_deactivation, self.min_activation = ta, td, am
            params = dict(mass=self.mass, max_isometric_force=fmax, anchors=anc,
                          tau_activation=ta, tau_deactivation=td, min_activation=am)
        else:
            k = 0
            section = np.concatenate([field_blk, [self.mass, 0, 1.0, 1.0, 0.0]])
            if max_force is not None:
                max_force = V.noise_std(max_force, "max_force", 2)
                if np.any(max_force <= 0):
                    raise ValueError(f"max_force must be > 0, got {max_force}")
            ulo, uhi = V.limits(None, max_force, "max_force", 2)
            n, m, allowed = 4, 2, ("euler", "semi_implicit", "rk4")
            params = dict(mass=self.mass, max_force=max_force)
        self._setup(code=POINT_MASS, integrator=integrator, allowed_integrators=allowed,
                    substeps=substeps, dt=dt, n=n, m=m, pos_index=[0, 1], vel_index=[2, 3],
                    control_low=ulo, control_high=uhi, max_speed=max_speed,
                    joint_limits=joint_limits, section=section, plant_workspace=0,
                    parameters=params, control_noise=control_noise,
                    process_noise=process_noise, rng=rng, seed=seed)

    def _x(self, x, name: str = "x") -> np.ndarray:
        return V.as_finite_array(x, name, (None, self.state_dim))

    def position(self, x) -> np.ndarray:
        """Position ``[B, 2]`` (m)."""
        return self._x(x)[:, :2]

    def velocity(self, x) -> np.ndarray:
        """Velocity ``[B, 2]`` (m/s)."""
        return self._x(x)[:, 2:4]

    def energy(self, x) -> np.ndarray:
        """Kinetic energy ``m |pdot|^2 / 2`` ``[B]`` (J)."""
        v = self._x(x)[:, 2:4]
        return 0.5 * self.mass * (v**2).sum(axis=1)

    def _need_muscles(self):
        if not self.muscles:
            raise ValueError("this point mass is force-driven (muscles=False): it has no "
                             "muscles")

    def muscle_lengths(self, x) -> np.ndarray:
        """Muscle lengths ``|p - c_i|`` ``[B, 4]`` (m)."""
        self._need_muscles()
        d = self._x(x)[:, None, :2] - self.anchors
        return np.sqrt((d**2).sum(axis=2))

    def muscle_velocities(self, x) -> np.ndarray:
        """Muscle velocities ``(p - c_i) . pdot / |p - c_i|`` ``[B, 4]`` (m/s)."""
        x = self._x(x)
        d = x[:, None, :2] - self.anchors
        return (d * x[:, None, 2:4]).sum(axis=2) / self.muscle_lengths(x)

    def muscle_forces(self, x) -> np.ndarray:
        """Muscle forces ``a_i F_max`` ``[B, 4]`` (N), activations clamped to ``[a_min, 1]``."""
        self._need_muscles()
        a = np.clip(self._x(x)[:, 4:], self.min_activation, 1.0)
        return a * self.max_isometric_force

    def numpy_step(self, x, u) -> np.ndarray:
        """One step in plain NumPy (same integrator, stops and clamps; no noise)."""
        x = self._x(x)
        u = np.clip(V.as_finite_array(u, "u", (x.shape[0], self.control_dim)),
                    self.control_low, self.control_high)
        kw = self._init_kwargs
        f0 = np.asarray(kw.get("constant_force", (0.0, 0.0)), dtype=float)
        if kw.get("field") is not None:
            K = np.asarray(kw["field"], dtype=float)
        else:
            cu = float(kw.get("curl", 0.0))
            K = np.array([[0.0, cu], [-cu, 0.0]])

        def rhs(z):
            v = z[:, 2:4]
            f = f0 + v @ K.T
            if self.muscles:
                d = z[:, None, :2] - self.anchors
                e = d / np.sqrt((d**2).sum(axis=2, keepdims=True))
                f = f - (self.muscle_forces(z)[:, :, None] * e).sum(axis=1)
                da = M.activation_rate(z[:, 4:], u, self.tau_activation,
                                       self.tau_deactivation, self.min_activation)
                return np.concatenate([v, f / self.mass, da], axis=1)
            return np.concatenate([v, (u + f) / self.mass], axis=1)

        h = self.dt / self.substeps
        z = x.copy()
        for _ in range(self.substeps):
            k1 = rhs(z)
            if self.integrator == "rk4":
                k2 = rhs(z + 0.5 * h * k1)
                k3 = rhs(z + 0.5 * h * k2)
                k4 = rhs(z + h * k3)
                z = z + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
            elif self.integrator == "semi_implicit":
                z[:, 2:4] = np.clip(z[:, 2:4] + h * k1[:, 2:4], -self.velocity_limit,
                                    self.velocity_limit)
                z[:, :2] = z[:, :2] + h * z[:, 2:4]
            else:
                z = z + h * k1
            z[:, 2:4] = np.clip(z[:, 2:4], -self.velocity_limit, self.velocity_limit)
            lo, hi = self.joint_low, self.joint_high
            below, above = z[:, :2] < lo, z[:, :2] > hi
            z[:, :2] = np.clip(z[:, :2], lo, hi)
            z[:, 2:4] = np.where((below & (z[:, 2:4] < 0)) | (above & (z[:, 2:4] > 0)), 0.0,
                                 z[:, 2:4])
            if self.muscles:
                z[:, 4:] = np.clip(z[:, 4:], self.min_activation, 1.0)
        return z
