"""Simulated plants for training neural controllers (never imports ``hfcontrol``).

Public API: the protocols :class:`Dynamics`, :class:`MechanicalDynamics` (adds ``energy``),
:class:`ArmDynamics` (adds the hand's kinematics) and :class:`CompiledDynamics`; the plants
:class:`LinearPlant`, :class:`Pendulum`, :class:`CartPole`, :class:`TwoLinkArm`,
:class:`ThreeLinkArm`, the muscle-driven :class:`MuscleArm` and :class:`PointMass` (force- or
muscle-driven; the muscles: :mod:`plants.muscles`); :mod:`plants.tasks`; and
:func:`to_spec`/:func:`from_spec`, which describe a built-in plant or task as JSON and
rebuild it; :mod:`plants.envs`, every task as a Gymnasium environment (registered under
``plants/`` on import) with a native vector environment; and :class:`GymDynamics`, a
Gymnasium environment as a :class:`Dynamics`.
Each plant's compiled kernels (``plant.kernels``; :mod:`plants._kernels`) step batches or
single samples and give their Jacobians from other compiled code; see ``docs/plants.md``.
"""

from . import envs, tasks
from ._spec import from_spec, to_spec
from .arms import PlanarArm, ThreeLinkArm, TwoLinkArm
from .cartpole import CartPole
from .gym_dynamics import GymDynamics
from .linear import LinearPlant
from .muscle_arm import MuscleArm
from .pendulum import Pendulum
from .point_mass import PointMass
from .protocol import ArmDynamics, CompiledDynamics, Dynamics, MechanicalDynamics

__all__ = [
    "ArmDynamics",
    "CartPole",
    "CompiledDynamics",
    "Dynamics",
    "GymDynamics",
    "LinearPlant",
    "MechanicalDynamics",
    "MuscleArm",
    "Pendulum",
    "PlanarArm",
    "PointMass",
    "ThreeLinkArm",
    "TwoLinkArm",
    "envs",
    "from_spec",
    "tasks",
    "to_spec",
]
