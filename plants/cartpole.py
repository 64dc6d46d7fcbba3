"""Cart-pole with a continuous force, Gymnasium ``CartPole-v1``'s constants and equations.

State ``[x, x_dot, theta, theta_dot]`` (m, m/s, rad, rad/s), theta = 0 upright; control
``[F]`` (N) on the cart, clipped to ``[-force_mag, force_mag]``. Frictionless equations of
Barto, Sutton & Anderson (1983) as implemented in Gymnasium 1.x
(``gymnasium/envs/classic_control/cartpole.py``), with ``l`` the *half* pole length::

    temp       = (F + m_p l theta_dot^2 sin theta) / (m_c + m_p)
    theta_ddot = (g sin theta - cos theta temp) / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
    x_ddot     = temp - m_p l theta_ddot cos theta / (m_c + m_p)

Defaults ``g = 9.8, m_c = 1.0, m_p = 0.1, l = 0.5, force_mag = 10, dt = 0.02``, explicit
Euler (Gymnasium's ``kinematics_integrator="euler"``). Energy (pole a uniform rod of length
``2 l``)::

    E = (m_c + m_p) x_dot^2 / 2 + m_p l cos(theta) x_dot theta_dot
        + (2/3) m_p l^2 theta_dot^2 + m_p g l cos(theta)
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from ._base import PlantBase, mechanical_section
from ._chunked import chunk_workspace
from ._layout import CARTPOLE


class CartPole(PlantBase):
    """Cart-pole, state ``[x, x_dot, theta, theta_dot]``, control ``[force]``.

    Parameters
    ----------
    gravity, masscart, masspole, length : float
        ``g`` (m/s^2), cart and pole masses (kg), half pole length (m); Gymnasium defaults
        9.8, 1.0, 0.1, 0.5.
    force_mag : float or None
        Force limit (N); default 10; ``None`` for none.
    dt, integrator, substeps :
        Default 0.02 s, "euler", 1 (Gymnasium's).
    constant_force, curl, field :
        End-point force on the pole tip ``(x + 2 l sin theta, 2 l cos theta)``.
    joint_limits : (low, high), optional
        Stops on ``(x, theta)``, e.g. a finite track ``((-2.4, -np.inf), (2.4, np.inf))``.
    max_speed : float or (2,) or None
        Clip on ``(x_dot, theta_dot)``; default none.
    control_noise, process_noise, rng, seed :
        Additive Gaussian noise and its generator.
    """

    def __init__(self, *, gravity: float = 9.8, masscart: float = 1.0, masspole: float = 0.1,
                 length: float = 0.5, force_mag: float | None = 10.0, dt: float = 0.02,
                 integrator: str = "euler", substeps: int = 1, max_speed=None,
                 constant_force=(0.0, 0.0), curl: float = 0.0, field=None,
                 joint_limits=None, control_noise=0.0, process_noise=0.0,
                 rng=None, seed=None) -> None:
        self._remember(locals())
        g = V.nonnegative(gravity, "gravity")
        mc = V.positive(masscart, "masscart")
        mp = V.positive(masspole, "masspole")
        l = V.positive(length, "length")
        if force_mag is not None:
            force_mag = V.positive(force_mag, "force_mag")
        lo, hi = V.limits(None, force_mag, "force_mag", 1)
        self.gravity, self.masscart, self.masspole, self.length = g, mc, mp, l
        section = np.concatenate([mechanical_section(constant_force, curl, field),
                                  [g, mc, mp, l]])
        self._setup(code=CARTPOLE, integrator=integrator,
                    allowed_integrators=("euler", "semi_implicit", "rk4"), substeps=substeps,
                    dt=dt, n=4, m=1, pos_index=[0, 2], vel_index=[1, 3], control_low=lo,
                    control_high=hi, max_speed=max_speed, joint_limits=joint_limits,
                    section=section, plant_workspace=28 + chunk_workspace(4, 1),
                    parameters=dict(gravity=g, masscart=mc, masspole=mp, length=l,
                                    force_mag=force_mag),
                    control_noise=control_noise, process_noise=process_noise,
                    rng=rng, seed=seed)

    def energy(self, x) -> np.ndarray:
        """Kinetic plus potential energy for a batch ``x[B, 4]``."""
        x = V.as_finite_array(x, "x", (None, 4))
        mt = self.masscart + self.masspole
        pml = self.masspole * self.length
        c = np.cos(x[:, 2])
        return (0.5 * mt * x[:, 1] ** 2 + pml * c * x[:, 1] * x[:, 3]
                + 2.0 / 3.0 * self.masspole * self.length**2 * x[:, 3] ** 2
                + pml * self.gravity * c)
