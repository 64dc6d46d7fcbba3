"""Simulated plants for training neural controllers (never imports ``hfcontrol``).

Public API: the :class:`Dynamics` protocol, :class:`LinearPlant`, :class:`Pendulum`,
:class:`CartPole`, :class:`TwoLinkArm`, :class:`ThreeLinkArm` and :mod:`plants.tasks`.
Each plant's compiled kernels (``plant.kernels``; :mod:`plants._kernels`) step batches or
single samples and give their Jacobians from other compiled code; see ``docs/plants.md``.
"""

from . import tasks
from .arms import PlanarArm, ThreeLinkArm, TwoLinkArm
from .cartpole import CartPole
from .linear import LinearPlant
from .pendulum import Pendulum
from .protocol import CompiledDynamics, Dynamics

__all__ = [
    "CartPole",
    "CompiledDynamics",
    "Dynamics",
    "LinearPlant",
    "Pendulum",
    "PlanarArm",
    "ThreeLinkArm",
    "TwoLinkArm",
    "tasks",
]
