"""Inverted pendulum with Gymnasium ``Pendulum-v1``'s constants and update rule by default.

A uniform rod of mass ``m`` and length ``l`` on a frictionless pivot, torque ``u`` at the
pivot, theta = 0 upright, counter-clockwise positive (Gymnasium 1.x,
``gymnasium/envs/classic_control/pendulum.py``)::

    theta_ddot = 3 g / (2 l) sin(theta) + 3 / (m l^2) u

Defaults ``g = 10, m = 1, l = 1, dt = 0.05, max_speed = 8, max_torque = 2`` and the same
semi-implicit Euler step, velocity clipped to ``[-max_speed, max_speed]`` before the angle
update. :meth:`Pendulum.continuous` gives the unclipped RK4 variant.

Energy (pivot at the origin, rod inertia ``m l^2 / 3``):
``E = m l^2 theta_dot^2 / 6 + m g (l / 2) cos(theta)``.
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from ._base import PlantBase, mechanical_section
from ._dyn_pendulum import fast_workspace
from ._layout import PENDULUM


class Pendulum(PlantBase):
    """Torque-driven pendulum, state ``[theta, theta_dot]``, control ``[torque]``.

    Parameters
    ----------
    g, m, l : float
        Gravity (m/s^2), mass (kg) and length (m); Gymnasium defaults 10, 1, 1.
    dt : float
        Step (s); default 0.05.
    integrator : {"semi_implicit", "euler", "rk4"}
        Default "semi_implicit" (Gymnasium's rule).
    substeps : int
        Substeps per step; default 1.
    max_speed : float or None
        Angular velocity clip (rad/s); default 8; ``None`` for none.
    max_torque : float or None
        Torque limit (N m); default 2; ``None`` for none.
    constant_force, curl, field :
        End-point force ``F = constant_force + K p_dot`` (N) on the tip
        ``p = (-l sin theta, l cos theta)``; ``K = [[0, curl], [-curl, 0]]`` or ``field``.
    joint_limits : (low, high), optional
        Angle stops (rad).
    control_noise, process_noise, rng, seed :
        Additive Gaussian noise and its generator.
    """

    def __init__(self, *, g: float = 10.0, m: float = 1.0, l: float = 1.0, dt: float = 0.05,
                 integrator: str = "semi_implicit", substeps: int = 1,
                 max_speed: float | None = 8.0, max_torque: float | None = 2.0,
                 constant_force=(0.0, 0.0), curl: float = 0.0, field=None,
                 joint_limits=None, control_noise=0.0, process_noise=0.0,
                 rng=None, seed=None) -> None:
        self._remember(locals())
        g = V.nonnegative(g, "g")
        m = V.positive(m, "m")
        l = V.positive(l, "l")
        if max_torque is not None:
            max_torque = V.positive(max_torque, "max_torque")
        lo, hi = V.limits(None, max_torque, "max_torque", 1)
        self.g, self.m, self.l = g, m, l
        section = np.concatenate([mechanical_section(constant_force, curl, field),
                                  [g, m, l, 3 * g / (2 * l), 3.0 / (m * l**2)]])
        self._setup(code=PENDULUM, integrator=integrator,
                    allowed_integrators=("euler", "semi_implicit", "rk4"), substeps=substeps,
                    dt=dt, n=2, m=1, pos_index=[0], vel_index=[1], control_low=lo,
                    control_high=hi, max_speed=max_speed, joint_limits=joint_limits,
                    section=section, plant_workspace=max(9, fast_workspace()),
                    parameters=dict(g=g, m=m, l=l, max_torque=max_torque),
                    control_noise=control_noise, process_noise=process_noise,
                    rng=rng, seed=seed)

    @classmethod
    def continuous(cls, *, dt: float = 0.01, substeps: int = 1, **kwargs) -> Pendulum:
        """The unclipped variant: RK4, no velocity clip, same physics."""
        kwargs.setdefault("max_speed", None)
        return cls(dt=dt, integrator="rk4", substeps=substeps, **kwargs)

    def energy(self, x) -> np.ndarray:
        """``m l^2 theta_dot^2 / 6 + m g l cos(theta) / 2`` for a batch ``x[B, 2]``."""
        x = V.as_finite_array(x, "x", (None, 2))
        return (self.m * self.l**2 * x[:, 1] ** 2 / 6.0
                + self.m * self.g * self.l / 2.0 * np.cos(x[:, 0]))

    def tip_position(self, x) -> np.ndarray:
        """Tip ``(-l sin theta, l cos theta)`` for a batch ``x[B, 2]``, shape ``[B, 2]``."""
        x = V.as_finite_array(x, "x", (None, 2))
        return np.stack([-self.l * np.sin(x[:, 0]), self.l * np.cos(x[:, 0])], axis=1)
