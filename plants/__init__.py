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

from ._cache_guard import guard as _guard

_guard()  # before any kernel is loaded from its cache: clear those built from old sources

from . import envs, tasks  # noqa: E402
from ._spec import from_spec, to_spec  # noqa: E402
from .arms import PlanarArm, ThreeLinkArm, TwoLinkArm  # noqa: E402
from .cartpole import CartPole  # noqa: E402
from .gym_dynamics import GymDynamics  # noqa: E402
from .linear import LinearPlant  # noqa: E402
from .muscle_arm import MuscleArm  # noqa: E402
from .pendulum import Pendulum  # noqa: E402
from .point_mass import PointMass  # noqa: E402
from .protocol import ArmDynamics, CompiledDynamics, Dynamics, MechanicalDynamics  # noqa: E402

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
