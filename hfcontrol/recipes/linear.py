"""The reference package's demo plant as a recipe."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import optimizers as opt
from ..closed_loop import ClosedLoop
from ._base import Recipe, check_seed

__all__ = ["linear_demo"]


def linear_demo(seed: int = 0, *, hidden: int = 32, feedback: str = "exact",
                updates: int = 60, dtype: Any = np.float32) -> Recipe:
    """The reference package's demo plant (``LinearPlant.demo()``): 32 initial states from
    U(-0.5, 0.5)^2 brought to position 1, velocity 0 at step 15. The network senses the
    state (no task inputs). Held out: a 6 x 6 grid of initial states."""
    from plants.tasks import StateTarget, TaskBatch

    seed = check_seed(seed)
    options = {"hidden": hidden, "feedback": feedback, "updates": updates,
               "dtype": np.dtype(dtype).name}
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
                  lambda k: (task.sample(32, rng=rng),), heldout, updates, rng,
                  validation=task.sample(32, seed=10_000 + seed), options=options)
