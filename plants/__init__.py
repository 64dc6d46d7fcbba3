"""Simulated plants for training neural controllers (never imports ``hfcontrol``).

Public API: the protocols :class:`Dynamics`, :class:`MechanicalDynamics` (adds ``energy``),
:class:`ArmDynamics` (adds the hand's kinematics) and :class:`CompiledDynamics`; the plants
:class:`LinearPlant`, :class:`Pendulum`, :class:`CartPole`, :class:`TwoLinkArm` and
:class:`ThreeLinkArm`; :mod:`plants.tasks`; and :func:`to_spec`/:func:`from_spec`, which
describe a built-in plant or task as JSON and rebuild it.
Each plant's compiled kernels (``plant.kernels``; :mod:`plants._kernels`) step batches or
single samples and give their Jacobians from other compiled code; see ``docs/plants.md``.
"""

from . import tasks
from ._spec import from_spec, to_spec
from .arms import PlanarArm, ThreeLinkArm, TwoLinkArm
from .cartpole import CartPole
from .linear import LinearPlant
from .pendulum import Pendulum
from .protocol import ArmDynamics, CompiledDynamics, Dynamics, MechanicalDynamics

__all__ = [
    "ArmDynamics",
    "CartPole",
    "CompiledDynamics",
    "Dynamics",
    "LinearPlant",
    "MechanicalDynamics",
    "Pendulum",
    "PlanarArm",
    "ThreeLinkArm",
    "TwoLinkArm",
    "from_spec",
    "tasks",
    "to_spec",
]
