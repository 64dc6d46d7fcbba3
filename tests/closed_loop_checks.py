"""Shared checks for the closed-loop tests."""

from __future__ import annotations

import numpy as np
import pytest


def assert_compiled_matches_reference(compiled, reference, rel: float) -> None:
    """The compiled and NumPy closed loops (the same minibatch cached) agree on the error at
    ``W`` and at a step from it, on the gradient and on ``G v``, within ``rel`` relative to
    the reference's largest entry."""
    assert compiled.backend == "numba" and reference.backend == "numpy"
    v = np.random.default_rng(0).standard_normal(compiled.n_params)
    assert compiled.error() == pytest.approx(reference.error(), rel=rel)
    assert compiled.error(compiled.W + 0.01 * v) == pytest.approx(
        reference.error(reference.W + 0.01 * v), rel=rel)
    for a, b in ((compiled.calc_grad(), reference.calc_grad()),
                 (compiled.calc_G(v), reference.calc_G(v))):
        assert np.max(np.abs(a - b)) <= rel * np.max(np.abs(b))
