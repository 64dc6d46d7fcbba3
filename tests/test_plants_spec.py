"""Plants and tasks described as JSON and rebuilt: the same model, the same episodes."""

import json

import numpy as np
import pytest

import plants
from plants.tasks import Balance, CostWeights, Hold, PendulumV1, Reach, StateTarget, SwingUp, Track

OBJECTS = [
    lambda: plants.TwoLinkArm(curl=5.0, integrator="euler"),
    lambda: plants.ThreeLinkArm(gravity=True),
    lambda: plants.LinearPlant.demo(control_limit=0.5),
    lambda: Reach(plants.TwoLinkArm(), horizon=20, distance=0.08,
                  weights=CostWeights(1.0, 1e-3, 0.2, 0.0, output_weights=(1.0, 2.0))),
    lambda: Hold(plants.TwoLinkArm(), force=(1.0, -2.0)),
    lambda: Track(plants.ThreeLinkArm()),
    lambda: SwingUp(plants.Pendulum(), horizon=50),
    lambda: PendulumV1(plants.Pendulum(max_torque=1.5)),
    lambda: Balance(plants.CartPole()),
    lambda: StateTarget.demo(),
]


@pytest.mark.parametrize("make", OBJECTS)
def test_a_spec_rebuilds_the_same_plant_or_task(make):
    obj = make()
    spec = plants.to_spec(obj)
    back = plants.from_spec(json.loads(json.dumps(spec)))
    assert type(back) is type(obj) and plants.to_spec(back) == spec
    plant, rebuilt = getattr(obj, "plant", obj), getattr(back, "plant", back)
    np.testing.assert_array_equal(plant.kernel_params, rebuilt.kernel_params)
    if hasattr(obj, "sample"):
        a, b = obj.sample(3, seed=1), back.sample(3, seed=1)
        np.testing.assert_array_equal(a.x0, b.x0)
        np.testing.assert_array_equal(a.targets, b.targets)
        assert back.weights == obj.weights


def test_only_built_in_objects_have_specs():
    class Mine:
        state_dim = 1

    with pytest.raises(TypeError, match="only built-in plants and tasks have specs"):
        plants.to_spec(Mine())
    with pytest.raises(ValueError, match="unknown class 'Mine'"):
        plants.from_spec({"class": "Mine", "kwargs": {}})
    with pytest.raises(TypeError, match="spec must be a dict"):
        plants.from_spec(["Pendulum"])
