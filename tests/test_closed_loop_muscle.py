"""The closed loop with the muscle arm: compiled, and exact gradient and G v (float64)."""

from __future__ import annotations

import numpy as np

import plants
from hfcontrol import ClosedLoop
from plants.tasks import Reach


def test_muscle_arm_reach_runs_compiled_with_exact_derivatives():
    arm = plants.MuscleArm()
    task = Reach(arm, horizon=12)
    loop = ClosedLoop(arm, task, hidden=6, rng=np.random.default_rng(0), dtype=np.float64,
                      delay=1, control_scale=0.5)
    assert loop.backend == "numba"
    batch = task.sample(4, seed=1)
    loop.cache_minibatch(batch)
    run = loop.rollout(batch, noise=False)
    assert run.states.shape == (4, 13, 10)
    np.testing.assert_allclose(run.cost, task.cost(run.states, run.controls, batch.targets),
                               rtol=1e-12)
    assert loop.check_grad() <= 1e-5
    assert loop.check_G() <= 1e-5
