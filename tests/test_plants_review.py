"""Regression tests for plant argument handling found in review."""

import numpy as np
import pytest

import plants


def test_discrete_integrator_is_only_for_linear_plants():
    with pytest.raises(ValueError, match="integrator must be one of"):
        plants.Pendulum(integrator="discrete")
    with pytest.raises(ValueError, match="integrator must be one of"):
        plants.TwoLinkArm(integrator="discrete")
    assert plants.LinearPlant.demo().integrator == "discrete"


def test_replace_accepts_rng_or_seed_whichever_the_plant_was_built_with():
    noisy = plants.Pendulum(rng=np.random.default_rng(0), process_noise=0.1)
    a = noisy.replace(seed=3).step(np.zeros((1, 2)), np.zeros((1, 1)))
    b = plants.Pendulum(seed=3, process_noise=0.1).step(np.zeros((1, 2)), np.zeros((1, 1)))
    np.testing.assert_array_equal(a, b)
    plants.Pendulum(seed=1, process_noise=0.1).replace(rng=np.random.default_rng(2))


def test_parameters_are_copied_and_read_only():
    A = np.eye(2)
    plant = plants.LinearPlant(A, np.eye(2))
    A[0, 0] = 5.0
    np.testing.assert_array_equal(plant.parameters["A"], np.eye(2))
    np.testing.assert_array_equal(plant.step(np.array([[1.0, 0.0]]), np.zeros((1, 2))),
                                  [[1.0, 0.0]])
    pend = plants.Pendulum()
    with pytest.raises(ValueError, match="read-only"):
        pend.parameters["max_speed"][0] = 1.0


def test_non_finite_results_raise_instead_of_returning_nan():
    arm = plants.TwoLinkArm()
    with pytest.raises(ValueError, match="non-finite result for sample 0"):
        arm.step(np.zeros((1, 4)), np.full((1, 2), 1e308))
    unstable = plants.LinearPlant(2 * np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="non-finite result"):
        unstable.rollout(np.ones((1, 2)), np.zeros((1, 2000, 2)))


def test_boolean_arrays_are_not_numbers():
    with pytest.raises(TypeError, match="real numeric"):
        plants.Pendulum().step(np.array([[True, False]]), np.zeros((1, 1)))
    assert plants.TwoLinkArm(gravity=np.True_).parameters["gravity"] == pytest.approx(9.81)
