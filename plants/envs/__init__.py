"""The plants' tasks as Gymnasium environments, registered under the ``plants/`` namespace.

``import plants`` registers them, so that ``gymnasium.make("plants/ArmReach-v0")`` works;
each also has a native batched vector environment (``vector_entry_point``), made with
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``, which steps
all copies in one compiled call.

=============================  ==============================  =========================  =======
id                             environment                     task                       horizon
=============================  ==============================  =========================  =======
``plants/ArmReach-v0``         :class:`ArmReachEnv`            ``Reach`` (two-link arm)   50
``plants/Arm3Reach-v0``        :class:`ArmReachEnv`            ``Reach`` (three-link)     50
``plants/ArmHold-v0``          :class:`ArmHoldEnv`             ``Hold`` (two-link arm)    100
``plants/MuscleArmReach-v0``   :class:`MuscleArmReachEnv`      ``Reach`` (six-muscle arm) 50
``plants/PendulumSwingUp-v0``  :class:`PendulumSwingUpEnv`     ``PendulumV1``             200
``plants/CartPoleBalance-v0``  :class:`CartPoleBalanceEnv`     ``Balance``                500
=============================  ==============================  =========================  =======

Rewards are minus the task's per-step cost (see :mod:`plants.envs._core`), so an episode's
return is ``-task.cost`` of it; actions are normalised to [-1, 1]. :func:`record` saves an
episode as a video. :class:`DelayedSenses` (and :class:`DelayedSensesVector`) delay and
add noise to named blocks of an env's observation (:mod:`plants.envs.senses`). Rendering
uses matplotlib, imported on first use only.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from ._core import Layout, PlantEnv, PlantVectorEnv
from .arm import ArmHoldEnv, ArmHoldVectorEnv, ArmReachEnv, ArmReachVectorEnv
from .cartpole import CartPoleBalanceEnv, CartPoleBalanceVectorEnv
from .muscle_arm import MuscleArmReachEnv, MuscleArmReachVectorEnv
from .pendulum import PendulumSwingUpEnv, PendulumSwingUpVectorEnv
from .senses import DelayedSenses, DelayedSensesVector, SenseChannel
from .video import record

__all__ = ["ENV_IDS", "ArmHoldEnv", "ArmHoldVectorEnv", "ArmReachEnv", "ArmReachVectorEnv",
           "CartPoleBalanceEnv", "CartPoleBalanceVectorEnv", "DelayedSenses",
           "DelayedSensesVector", "Layout", "MuscleArmReachEnv",
           "MuscleArmReachVectorEnv", "PendulumSwingUpEnv", "PendulumSwingUpVectorEnv",
           "PlantEnv", "PlantVectorEnv", "SenseChannel", "record"]

_HERE = "plants.envs"

#: id -> (single env, vector env, constructor keyword arguments, episode length)
_ENVS = {
    "plants/ArmReach-v0": ("arm:ArmReachEnv", "arm:ArmReachVectorEnv", {"n_links": 2}, 50),
    "plants/Arm3Reach-v0": ("arm:ArmReachEnv", "arm:ArmReachVectorEnv", {"n_links": 3}, 50),
    "plants/ArmHold-v0": ("arm:ArmHoldEnv", "arm:ArmHoldVectorEnv", {"n_links": 2}, 100),
    "plants/MuscleArmReach-v0": ("muscle_arm:MuscleArmReachEnv",
                                 "muscle_arm:MuscleArmReachVectorEnv", {}, 50),
    "plants/PendulumSwingUp-v0": ("pendulum:PendulumSwingUpEnv",
                                  "pendulum:PendulumSwingUpVectorEnv", {}, 200),
    "plants/CartPoleBalance-v0": ("cartpole:CartPoleBalanceEnv",
                                  "cartpole:CartPoleBalanceVectorEnv", {}, 500),
}

#: The registered ids.
ENV_IDS = tuple(_ENVS)

for _id, (_single, _vector, _kwargs, _steps) in _ENVS.items():
    if _id not in registry:  # importing twice (e.g. a reload) registers once
        _mod, _cls = _single.split(":")
        _vmod, _vcls = _vector.split(":")
        register(id=_id, entry_point=f"{_HERE}.{_mod}:{_cls}",
                 vector_entry_point=f"{_HERE}.{_vmod}:{_vcls}", kwargs=dict(_kwargs),
                 max_episode_steps=_steps)
