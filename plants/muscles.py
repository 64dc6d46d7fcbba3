r"""Hill-type muscles with a rigid tendon: parameters, defaults and a NumPy reference.

The compiled model lives in :mod:`plants._dyn_muscle`; the functions here are its plain
NumPy counterpart (used for the plants' outputs, ``numpy_step`` and as the tests' oracle).

Activation dynamics (Thelen 2003, eqs. 1-2, as MotorNet's ``Muscle.activation_ode``)
---------------------------------------------------------------------------------------
Excitation ``u`` (the control) and activation ``a`` are clamped to ``[a_min, 1]``; then::

    da/dt = (u - a) / (tau_act (0.5 + 1.5 a))      if u > a   (activation)
    da/dt = (u - a) (0.5 + 1.5 a) / tau_deact       otherwise  (deactivation)

``tau_act = 15 ms``, ``tau_deact = 50 ms`` (MotorNet ``motornet/muscle.py``, class
``Muscle``; Thelen, D. G. 2003, "Adjustment of muscle mechanics model parameters to simulate
dynamic contractions in older adults", J Biomech Eng 125:70-77). At zero excitation the
activation obeys ``da/dt = -(0.5 a + 1.5 a^2) / tau_deact`` (a Bernoulli equation with the
closed form ``a(t) = a0 e^{-t/(2 tau_deact)} / (1 + 3 a0 (1 - e^{-t/(2 tau_deact)}))``; for
small ``a`` it decays with time constant ``2 tau_deact``), down to ``a_min``.

Contractile and passive forces (Kistemaker, Wong & Gribble 2010, rigid tendon)
-------------------------------------------------------------------------------
As MotorNet's ``RigidTendonHillMuscle`` (``motornet/muscle.py``), which implements the
muscle of Kistemaker, D. A., Wong, J. D. & Gribble, P. L. (2010), "The central nervous
system does not minimize energy cost in arm movements", J Neurophysiol 104:2985-2994, with
the tendon rigid. With musculotendon length ``L``, its rate ``L_dot`` (positive when
lengthening), optimal fibre length ``l0``, tendon slack length ``l_se``, slack length of the
parallel element ``l_pe = 1.4 l0`` and maximal shortening velocity ``v_max = 10 l0 / s``::

    l     = max(L - l_se, 0),      ln = l / l0,     vn = L_dot / v_max
    f_pe  = k_pe max((l - l_pe) / l0, 0)^2,          k_pe = 1 / (1.66 - 1.4)^2
    f_l   = max(1 - (ln - 1)^2 / 0.66^2, 0.01)
    A     = 0.41 f_l if ln > 1 else 0.41            (Hill's a_rel)
    Bq    = 5.2 (1 - 0.9 (a - 0.3) / (0.005 - 0.3))^2 if a < 0.3 else 5.2    (b_rel)
    s0    = a (f_l + A) / Bq                         (slope of the concentric curve at 0)
    concentric (vn < 0):  f_v = (vn a A + a f_l Bq) / (Bq - vn)
    eccentric  (vn >= 0): f_v = (-p1 p3 + p1 s vn + p2 - p3 vn + s vn^2) / (p1 + vn),
        p1 = -(a f_l / 2) / (s - 2 s0),  p2 = (a f_l / 2)^2 / (s - 2 s0),  p3 = -1.5 a f_l,
        s = 0.001
    F     = F_max (max(f_v, 0) + f_pe)

At zero activation the eccentric curve keeps the term ``s vn`` (``0.1 %`` of ``F_max`` per
``v_max`` of lengthening); otherwise a muscle without activation pulls only with its
passive element. The active force ``f_v`` already contains ``a f_l``: at ``vn = 0`` it equals ``a f_l``, so at
the optimal length (``ln = 1``, ``f_pe = 0``) an isometric muscle pulls ``a F_max``. The
eccentric branch tends to ``1.5 a f_l`` for fast lengthening and starts with twice the
concentric slope (Kistemaker et al.'s asymmetry).

Smoothness and clipping
-----------------------
The model is smooth (infinitely differentiable) inside each of the regions that its
``if``/``max`` choices cut out, and continuous across them; the step Jacobians are exact in
the interior of every region and take the derivative of the region the forward pass is in
on its boundary (a one-sided derivative). The boundaries, all of measure zero in the
state-control space, are: ``u = a`` (activation/deactivation; ``da/dt`` is 0 on both sides,
its slope in ``u`` jumps from ``(0.5 + 1.5 a)/tau_deact`` to ``1/(tau_act (0.5 + 1.5 a))``),
``vn = 0`` (the slope of ``f_v`` doubles, by design), ``ln = 1`` (``A``), ``a = 0.3``
(``Bq``), ``l = l_pe`` (``f_pe``; its derivative is continuous there). The clipping
that can actually be met: excitations outside ``[0, 1]`` are clipped to it by the plant
(its control limits) and then raised to ``a_min`` (derivative 0 below ``a_min``);
activations are clamped to ``[a_min, 1]`` before use and after every integration step
(derivative 0 where clamped: with Euler and ``dt = 10 ms`` a full excitation step from
rest overshoots 1, as in MotorNet, which clamps the same way). The floor ``f_l >= 0.01``
(``ln`` beyond ``1 +- 0.657``) is met inside RigidTendonArm26's joint range by the two
biarticular muscles at extreme postures (biceps down to 0.15 l0, triceps long to 0.27 l0);
there ``f_l`` and its derivative in the length are constant. ``f_v >= 0`` and ``l >= 0`` act
only outside any practical state (shortening faster than about ``12 v_max``, a fibre of zero
length). ``a_min > 0``
is required: at ``a = 0`` and ``vn = 0`` the eccentric branch is ``0/0``.
"""

from __future__ import annotations

import numpy as np

from . import _validation as V

#: Kistemaker et al. (2010) curve constants, as in MotorNet's ``RigidTendonHillMuscle``.
FL_WIDTH2 = 0.66**2      # f_l = 1 - (ln - 1)^2 / FL_WIDTH2
FL_MIN = 0.01            # floor of f_l
A_REL = 0.41             # Hill's a_rel (concentric curvature)
B_REL = 5.2              # Hill's b_rel at high activation
Q_CRIT = 0.3             # activation below which b_rel shrinks
B_REL_A0 = 0.005         # activation where b_rel's factor would be 0.1
S_AS = 0.001             # slope of the eccentric asymptote
ECC_MAX = 1.5            # eccentric force asymptote / isometric force
PE_SLACK = 1.4           # l_pe / l0
PE_STRAIN_AT_FMAX = 1.66  # ln where the passive force equals F_max
VMAX_PER_L0 = 10.0       # v_max / l0 (1/s)

#: Muscle names of MotorNet's ``RigidTendonArm26``, in its order.
ARM26_NAMES = ("pectoralis", "deltoid", "brachioradialis", "tricepslat", "biceps",
               "tricepslong")

#: Defaults of MotorNet's ``RigidTendonArm26`` (``motornet/effector.py``; its muscle is
#: ``RigidTendonHillMuscle``, Kistemaker et al. 2010; the geometry is the polynomial
#: "lumped-muscle" fit of Nijhof & Kouwenhoven 2000 that it cites). Moment arms
#: ``r_ij = a1_ij + 2 a2_ij (q_j - a3_j)`` (m), musculotendon length
#: ``L_i = a0_i + sum_j (a1_ij + a2_ij (q_j - a3_j)) (q_j - a3_j)`` (m); rows shoulder, elbow.
ARM26 = {
    "max_isometric_force": (838.0, 1207.0, 1422.0, 1549.0, 414.0, 603.0),
    "optimal_fibre_length": (0.134, 0.140, 0.092, 0.093, 0.137, 0.127),
    "tendon_slack_length": (0.039, 0.066, 0.172, 0.187, 0.204, 0.217),
    "path_a0": (0.151, 0.2322, 0.2859, 0.2355, 0.3329, 0.2989),
    "path_a1": ((-0.03, 0.03, 0.0, 0.0, -0.03, 0.03),
                (0.0, 0.0, -0.014, 0.025, -0.016, 0.03)),
    "path_a2": ((0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
                (0.0, 0.0, -4e-3, -2.2e-3, -5.7e-3, -3.2e-3)),
    "path_a3": (np.pi / 2, 0.0),
}


def per_muscle(value, name: str, k: int, *, positive: bool = True) -> np.ndarray:
    """A length-``k`` vector of finite per-muscle values (a number is repeated), each ``> 0``
    (or ``>= 0`` without ``positive``); errors name the argument."""
    arr = V._vec(value, name, k)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 for every muscle, got {arr}")
    if not positive and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 for every muscle, got {arr}")
    return arr


def activation_times(tau_activation, tau_deactivation, min_activation) -> tuple:
    """Validated ``(tau_act, tau_deact, a_min)``: positive time constants (s) and
    ``0 <= a_min < 1`` (the caller requires ``a_min > 0`` where its force model needs it)."""
    ta = V.positive(tau_activation, "tau_activation")
    td = V.positive(tau_deactivation, "tau_deactivation")
    am = V.scalar(min_activation, "min_activation", low=0.0, high=1.0)
    if am >= 1.0:
        raise ValueError(f"min_activation must be < 1, got {am}")
    return ta, td, am


# -- NumPy reference ------------------------------------------------------------------------
def activation_rate(a, u, tau_act: float, tau_deact: float, a_min: float) -> np.ndarray:
    """``da/dt`` of the activation dynamics (module docstring), element-wise."""
    a = np.clip(a, a_min, 1.0)
    u = np.clip(u, a_min, 1.0)
    t = 0.5 + 1.5 * a
    return np.where(u > a, (u - a) / (tau_act * t), (u - a) * t / tau_deact)


def hill_force(a, length, velocity, fmax, l0, l_se, *, parts: bool = False):
    """Muscle force ``F`` (N) of the rigid-tendon Hill model (module docstring).

    ``a`` activations (clamped by the caller), ``length`` musculotendon lengths ``L`` (m),
    ``velocity`` their rates ``L_dot`` (m/s); ``fmax``, ``l0``, ``l_se`` broadcast against
    them. With ``parts``, returns ``(F, active force f_v F_max, passive force f_pe F_max,
    fibre length l, fibre velocity)``.
    """
    l = np.maximum(length - l_se, 0.0)
    ln = l / l0
    vn = velocity / (VMAX_PER_L0 * l0)
    kpe = 1.0 / (PE_STRAIN_AT_FMAX - PE_SLACK) ** 2
    fpe = kpe * np.maximum(ln - PE_SLACK, 0.0) ** 2
    fl = np.maximum(1.0 - (ln - 1.0) ** 2 / FL_WIDTH2, FL_MIN)
    arel = np.where(ln > 1.0, A_REL * fl, A_REL)
    brel = np.where(a < Q_CRIT,
                    B_REL * (1.0 - 0.9 * (a - Q_CRIT) / (B_REL_A0 - Q_CRIT)) ** 2, B_REL)
    fa = fl * a
    s0 = a * (fl + arel) / brel
    den_p = S_AS - 2.0 * s0
    p1 = -0.5 * fa / den_p
    p2 = (0.5 * fa) ** 2 / den_p
    p3 = -ECC_MAX * fa
    con = (vn * a * arel + fa * brel) / (brel - vn)
    ecc = (-p1 * p3 + p1 * S_AS * vn + p2 - p3 * vn + S_AS * vn**2) / (p1 + vn)
    fv = np.maximum(np.where(vn < 0.0, con, ecc), 0.0)
    force = fmax * (fv + fpe)
    if parts:
        return force, fmax * fv, fmax * fpe, l, velocity
    return force
