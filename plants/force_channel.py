r"""Force-channel (error-clamp) trials: a stiff spring and damper across the straight line
from the start to the target clamps the hand's lateral motion, and the lateral force the
controller pushes against the channel wall is measured.

With ``e`` the unit vector from the start ``s`` to the target and ``n`` its left normal
(``e`` turned 90 degrees counter-clockwise), the channel acts on the hand at ``p`` with::

    F_channel = -(k d + b d_dot) n,     d = n . (p - s),   d_dot = n . p_dot

(stiffness ``k``, N/m; damping ``b``, N s/m). It is the arm's end-point force with
``position_field = -k n n^T``, ``field = -b n n^T`` and ``field_origin = s``
(:class:`plants.TwoLinkArm`, :class:`plants.MuscleArm`), so the channel runs in the compiled
kernels with their exact Jacobians. The force the controller produces against the channel
is the opposite of the channel's: ``f = k d + b d_dot`` along ``n`` (positive to the left of
the movement), the quantity force-channel studies record at the handle.

The channel's direction depends on the target, and a plant's field is one parameter set:
each direction gets its own plant (:meth:`ForceChannel.plant`), one closed loop per
direction in an evaluation. Other force fields are off in the channel, as in error-clamp
trials, which replace the field on the trials they probe.

Values: force-channel studies render the wall as a stiff spring with a damper (Scheidt,
Reinkensmeyer, Conditt, Rymer & Mussa-Ivaldi 2000, J Neurophysiol 84:853; Smith,
Ghazizadeh & Shadmehr 2006, PLoS Biol 4:e179), with stiffnesses of a few kN/m and dampings
of tens of N s/m; the defaults here, 6000 N/m and 50 N s/m, are in that range (the papers'
exact values were not checked for this module). Kinarm's force-channel example (after
Scheidt et al. 2000) notes that the viscosity across the channel is needed for stability.

Discretisation: explicit Euler keeps the channel's spring and damper on a mass ``m``
stable only for sub-steps ``h < b / k`` (whatever ``m``: ``|1 + h lambda| < 1`` for the
roots ``lambda`` of ``m s^2 + b s + k``), 8.3 ms for the defaults, shorter than the arms'
10 ms step. :meth:`ForceChannel.plant` therefore splits each step into sub-steps of at most
``b / (2 k)`` (RK4's stability region contains Euler's, so the same bound serves it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validation as V

__all__ = ["ForceChannel"]


@dataclass(frozen=True)
class ForceChannel:
    """A force channel from ``start`` to ``target`` (hand positions, m).

    Parameters
    ----------
    start, target : array_like (2,)
        The straight line the channel holds the hand on; they must differ.
    stiffness : float
        Spring constant across the channel (N/m), > 0; default 6000.
    damping : float
        Damping across the channel (N s/m), > 0; default 50.
    """

    start: np.ndarray
    target: np.ndarray
    stiffness: float = 6000.0
    damping: float = 50.0

    def __post_init__(self):
        s = V.as_finite_array(self.start, "start", (2,))
        t = V.as_finite_array(self.target, "target", (2,))
        if not np.linalg.norm(t - s) > 0.0:
            raise ValueError(f"target must differ from start, got both {s}")
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "target", t)
        object.__setattr__(self, "stiffness", V.positive(self.stiffness, "stiffness"))
        object.__setattr__(self, "damping", V.positive(self.damping, "damping"))

    @property
    def direction(self) -> np.ndarray:
        """Unit vector from the start to the target."""
        e = self.target - self.start
        return e / np.linalg.norm(e)

    @property
    def normal(self) -> np.ndarray:
        """Unit left normal of the channel (the direction turned 90 degrees
        counter-clockwise): positive deviations and forces point this way."""
        e = self.direction
        return np.array([-e[1], e[0]])

    def substeps(self, plant) -> int:
        """Sub-steps per step of ``plant`` that keep the channel stable: the plant's own,
        raised until a sub-step is at most ``damping / (2 stiffness)`` (module docstring)."""
        h_max = self.damping / (2.0 * self.stiffness)
        return max(int(plant.substeps), math.ceil(plant.dt / h_max - 1e-9))

    def plant(self, plant, *, substeps: int | None = None):
        """``plant`` (a :class:`plants.TwoLinkArm` or :class:`plants.MuscleArm`) with the
        channel as its only end-point force (other fields off), with ``substeps`` sub-steps
        per step (default :meth:`substeps`)."""
        if not hasattr(plant, "hand_position") or getattr(plant, "n_links", 0) != 2:
            raise TypeError(f"plant must be a two-link arm (TwoLinkArm or MuscleArm), got "
                            f"{type(plant).__name__}")
        nn = np.outer(self.normal, self.normal)
        S = self.substeps(plant) if substeps is None else V.integer(substeps, "substeps")
        return plant.replace(constant_force=(0.0, 0.0), curl=0.0, field=-self.damping * nn,
                             position_field=-self.stiffness * nn, field_origin=self.start,
                             substeps=S)

    def lateral(self, plant, X: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lateral deviation (m), lateral velocity (m/s) and the force the hand pushes
        against the channel (N) for states ``X[B, T, n]`` of ``plant``; each ``[B, T]``,
        positive along :attr:`normal`. The force is ``stiffness d + damping d_dot``."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 3 or X.shape[2] != plant.state_dim:
            raise ValueError(f"X must have shape [B, T, {plant.state_dim}], got {X.shape}")
        flat = X.reshape(-1, X.shape[2])
        n = self.normal
        d = ((plant.hand_position(flat) - self.start) @ n).reshape(X.shape[:2])
        dd = (plant.hand_velocity(flat) @ n).reshape(X.shape[:2])
        return d, dd, self.stiffness * d + self.damping * dd

    def field_force(self, curl_matrix: ArrayLike, plant, X: ArrayLike) -> np.ndarray:
        """The lateral force (N, along :attr:`normal`) a controller must push with to cancel
        the velocity field ``F = K p_dot`` (``curl_matrix``: ``K``, 2 x 2, N s/m) at the
        hand velocities of states ``X[B, T, n]``: ``-n . K p_dot``, ``[B, T]``. In a
        channel the hand moves along it, and this is the force an adapted controller
        would be expected to press against the wall."""
        K = V.as_finite_array(curl_matrix, "curl_matrix", (2, 2))
        X = np.asarray(X, dtype=float)
        if X.ndim != 3 or X.shape[2] != plant.state_dim:
            raise ValueError(f"X must have shape [B, T, {plant.state_dim}], got {X.shape}")
        v = plant.hand_velocity(X.reshape(-1, X.shape[2]))
        return -((v @ K.T) @ self.normal).reshape(X.shape[:2])
