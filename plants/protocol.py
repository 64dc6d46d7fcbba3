"""The dynamics protocols: what ``hfcontrol`` (or any user) needs from a plant.

Any object with the members of :class:`Dynamics` can be put in a closed loop. Richer plants
add members described by the protocols that extend it:

* :class:`MechanicalDynamics` - a mechanical plant with ``energy(x)`` (kinetic plus
  potential); the pendulum, the cart-pole and the arms;
* :class:`ArmDynamics` - a planar arm with forward kinematics of the hand and its Jacobian;
  :class:`plants.TwoLinkArm` and :class:`plants.ThreeLinkArm`;
* :class:`CompiledDynamics` - the flat description used by the compiled kernels in
  :mod:`plants._kernels`; every built-in plant.

All are ``typing.runtime_checkable``: ``isinstance(plant, ArmDynamics)`` tests that the
members are present (not their signatures).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Dynamics(Protocol):
    """A discrete-time plant ``x_{t+1} = step(x_t, u_t)`` acting on batches.

    Attributes
    ----------
    state_dim : int
        ``n``, the length of a state vector.
    control_dim : int
        ``m``, the length of a control vector.
    dt : float
        Duration of one step in seconds.
    control_low, control_high : ndarray, shape (m,)
        Control limits; controls outside are clipped as part of the model
        (``-inf``/``inf`` when unlimited).
    parameters : Mapping[str, Any]
        The model parameters by name (the "parameter record").

    Methods
    -------
    step(x, u) -> x_next
        ``x[B, n]``, ``u[B, m]`` to ``x_next[B, n]``.
    rollout(x0, U) -> X
        ``x0[B, n]``, ``U[B, T, m]`` to ``X[B, T + 1, n]`` with ``X[:, 0] = x0``, in one
        compiled call.
    jacobians(x, u) -> (A, B)
        ``A[B, n, n] = d x_next / d x`` and ``B[B, n, m] = d x_next / d u``: the exact
        derivative of the discrete step (integrator included), of its deterministic part.
    """

    state_dim: int
    control_dim: int
    dt: float
    control_low: np.ndarray
    control_high: np.ndarray

    @property
    def parameters(self) -> Mapping[str, Any]: ...

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray: ...

    def rollout(self, x0: np.ndarray, U: np.ndarray) -> np.ndarray: ...

    def jacobians(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class CompiledDynamics(Dynamics, Protocol):
    """A :class:`Dynamics` that the compiled kernels can step without Python.

    Attributes
    ----------
    kernel_code : int
        Plant code (``kernel_params[0]``); it selects the compiled kernels.
    kernel_params : ndarray, float64, 1-D
        Flat parameter array (layout in :mod:`plants._layout`); ``kernel_params[1]`` is the
        integrator code and ``kernel_params[2]`` the number of substeps.
    kernels : (rollout, jacobians)
        The plant's compiled kernels, callable from other compiled code by name
        (signatures in :mod:`plants._kernels`).
    workspace_size : int
        Length of the float64 scratch array the kernels take.
    """

    kernel_code: int
    kernel_params: np.ndarray

    @property
    def kernels(self) -> tuple: ...

    @property
    def workspace_size(self) -> int: ...


@runtime_checkable
class MechanicalDynamics(Dynamics, Protocol):
    """A :class:`Dynamics` that is a mechanical system with an energy.

    Methods
    -------
    energy(x) -> E
        Kinetic plus potential energy (J) of each state of a batch ``x[B, n]``, shape
        ``[B]``. Without viscosity, torque, force fields or noise the continuous-time model
        conserves it, which is what the plants' energy-drift tests check. Where the
        potential's zero lies is each plant's choice (documented with the plant), so only
        differences of energy are meaningful.
    """

    def energy(self, x: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ArmDynamics(MechanicalDynamics, Protocol):
    """A :class:`MechanicalDynamics` that is a planar arm of ``n_links`` revolute joints.

    The state is ``[q..., qdot...]`` (``n = 2 n_links``): joint angles in radians, each
    relative to the previous link (the first from the x axis), then joint velocities in
    rad/s; the control is the joint torques (N m). The shoulder is at the origin.

    Attributes
    ----------
    n_links : int
        Number of links (and joints) ``N``.

    Methods
    -------
    hand_position(x) -> p
        Forward kinematics: the hand (end point) position ``p[B, 2]`` in metres for
        ``x[B, 2N]``.
    hand_jacobian(x) -> J
        ``J[B, 2, N] = d hand_position / d q``; the hand velocity is ``J qdot`` and an
        end-point force ``F`` acts on the joints as ``J^T F``.
    hand_velocity(x) -> v
        ``J(q) qdot``, shape ``[B, 2]`` (m/s).
    """

    n_links: int

    def hand_position(self, x: np.ndarray) -> np.ndarray: ...

    def hand_jacobian(self, x: np.ndarray) -> np.ndarray: ...

    def hand_velocity(self, x: np.ndarray) -> np.ndarray: ...
