"""Training recipes: for each task, the plant, the task, the network, the optimiser settings,
the minibatches and the held-out episodes that the experiments and the command line use.

A recipe is a function ``recipe(seed=0, **options) -> Recipe``; :data:`RECIPES` lists them
by name. Held-out episodes are built by hand (``TaskBatch(x0, targets)``) from a grid
that training, which draws its episodes from the task at random, never uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import optimizers as opt
from .closed_loop import ClosedLoop

__all__ = ["Recipe", "RECIPES", "get", "arm_reach", "linear_demo"]


@dataclass
class Recipe:
    """Everything needed to train and evaluate a controller on one task."""

    name: str
    loop: ClosedLoop
    #: ``make_optimizer() -> Optimizer`` (a new one per run)
    make_optimizer: Callable[[], opt.Optimizer]
    #: ``batches(k) -> (TaskBatch,)``: the training episodes of update ``k`` (fresh ones
    #: each update, drawn from ``rng``)
    batches: Callable[[int], tuple]
    #: held-out episodes, never used in training
    heldout: Any
    updates: int
    rng: np.random.Generator
    #: the curvature minibatch (see :meth:`ClosedLoop.cache_minibatch`), or None
    curvature: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def train_batches(self, k: int) -> tuple:
        """``batches(k)`` with the curvature minibatch, as ``cache_minibatch`` takes them."""
        return (*self.batches(k), self.curvature)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def arm_reach(seed: int = 0, *, hidden: int = 32, delay: int = 0, obs_noise: float = 0.0,
              batch: int = 64, updates: int = 120, feedback: str = "exact",
              dtype: Any = np.float32, distance: float = 0.12) -> Recipe:
    """Reaching with the two-link arm (Li & Todorov's parameters, dt 10 ms, 0.5 s).

    Targets are drawn anew each update, uniformly from the disc of radius ``distance``
    (12 cm) around the start hand position. The network senses the joint angles and
    velocities (delayed by ``delay`` steps, with noise of ``obs_noise``) and the target;
    its outputs are the joint torques (N m). Held out: 32 targets, 8 directions (22.5
    degrees off the axes) times 4 distances up to ``distance``.
    """
    import plants
    from plants.tasks import CostWeights, Reach, TaskBatch

    seed = _check_seed(seed)
    arm = plants.TwoLinkArm()
    task = Reach(arm, targets="disc", distance=distance,
                 weights=CostWeights(final_error=1.0, effort=1e-4, final_velocity=0.1))
    rng = np.random.default_rng(seed)
    loop = ClosedLoop(arm, task, hidden=hidden, delay=delay, obs_noise=obs_noise,
                      feedback=feedback, rng=rng, dtype=dtype)
    angles = np.repeat(np.pi / 8 + np.arange(8) * np.pi / 4, 4)
    dist = np.tile(distance * np.arange(1, 5) / 4, 8)
    goals = task.start + dist[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    start = task.sample(goals.shape[0], seed=0)
    targets = np.full_like(start.targets, np.nan)
    targets[:, -1] = goals
    heldout = TaskBatch(start.x0, targets)
    return Recipe("arm-reach", loop, lambda: opt.HessianFree(CG_iter=60, init_damping=1.0),
                  lambda k: (task.sample(batch, rng=rng),), heldout, updates, rng,
                  info={"goals": goals, "batch": batch})


def linear_demo(seed: int = 0, *, hidden: int = 32, feedback: str = "exact",
                updates: int = 60, dtype: Any = np.float32) -> Recipe:
    """The reference package's demo plant (``LinearPlant.demo()``): 32 initial states from
    U(-0.5, 0.5)^2 brought to position 1, velocity 0 at step 15. The network senses the
    state (no task inputs). Held out: a 6 x 6 grid of initial states."""
    from plants.tasks import StateTarget, TaskBatch

    seed = _check_seed(seed)
    task = StateTarget.demo()
    rng = np.random.default_rng(seed)
    loop = ClosedLoop(task.plant, task, hidden=hidden, feedback=feedback, inputs="none",
                      rng=rng, dtype=dtype,
                      W_init_params={"init_type": "gaussian", "coeff": 1.0},
                      W_rec_params={"init_type": "gaussian", "coeff": 0.5})
    grid = np.linspace(-0.45, 0.45, 6)
    x0 = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    heldout = TaskBatch(x0, task.sample(x0.shape[0], seed=0).targets)
    return Recipe("linear-demo", loop, lambda: opt.HessianFree(CG_iter=100, init_damping=1.0),
                  lambda k: (task.sample(32, rng=rng),), heldout, updates, rng)


RECIPES: dict[str, Callable[..., Recipe]] = {
    "arm-reach": arm_reach,
    "linear-demo": linear_demo,
}


def get(name: str, **options: Any) -> Recipe:
    """The recipe called ``name`` (see :data:`RECIPES`), built with ``options``."""
    if name not in RECIPES:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name](**options)
