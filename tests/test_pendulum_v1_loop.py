"""The closed loop on PendulumV1(angle="wrapped"): its cost has a kink where a state crosses
theta = pi (mod 2 pi), yet away from it the gradient and G v agree with finite differences,
on both paths, over episodes whose states do cross it."""

import numpy as np
import pytest

import hfcontrol as hf
import plants
from plants.tasks import PendulumV1, TaskBatch


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_gradient_and_G_through_the_wrap(backend):
    plant = plants.Pendulum()
    task = PendulumV1(plant, horizon=25, angle="wrapped", energy_weight=0.5)
    loop = hf.ClosedLoop(plant, task, hidden=5, rng=3, dtype=np.float64, backend=backend,
                         observation={"linear": [1], "angles": [0]}, control_scale=2.0,
                         inputs="none")
    b = task.sample(6, seed=4)
    x0 = b.x0.copy()
    x0[:3] = [(np.pi - 0.05, 1.0), (-np.pi + 0.05, -1.0), (2.5, 6.0)]  # cross the wrap
    batch = TaskBatch(x0, b.targets)
    loop.cache_minibatch(batch)
    X = loop.rollout(batch, noise=False).states[:, :, 0]
    crossings = np.abs(np.diff(np.floor((X + np.pi) / (2 * np.pi)), axis=1)).sum()
    assert crossings >= 3
    # no state sits within the finite differences' reach of the kink
    assert np.abs(np.abs(task.outputs(np.stack([X.ravel(), X.ravel()], 1))[:, 0])
                  - np.pi).min() > 1e-4
    assert loop.check_grad() <= 1e-5
    assert loop.check_G() <= 1e-5
