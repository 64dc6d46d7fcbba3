"""Compiled plant kernels: one pair per built-in plant, for batches or single samples.

Each built-in plant has two small cached kernels, built from the shared integrator loops
of :mod:`plants._integrate` and the plant's right-hand side (``plants/_dyn_*.py``):

``rollout_<plant>(params, X0, U, W, noisy, X, o0, ws)``
    ``X[:, o0 + t]`` for every step of ``U[B, T, m]`` from ``X0[B, n]`` (``o0 = 1``: a
    rollout that stores ``X0`` too; ``o0 = 0``, ``T = 1``: one step). ``W[B, T, n]`` is
    added to each new state when ``noisy`` (pass any 3-D float64 array otherwise).
``jacobians_<plant>(params, X, U, A, B, ws)``
    ``A[b] = d x_next / d x`` (n, n) and ``B[b] = d x_next / d u`` (n, m) at ``(X[b], U[b])``:
    the exact derivative of the discrete step (integrator, substeps, control clipping,
    velocity clipping and joint stops included).

``<plant>`` is ``pendulum``, ``cartpole``, ``two_link``, ``three_link``, ``chain`` (any number
of links), ``linear``, ``muscle_arm`` or ``point_mass``; ``plant.kernels`` names a plant's
pair. Both return -1, the first sample with a non-finite input, or ``-2 - b`` for the first sample ``b`` whose
result is not finite. All arrays are C-contiguous float64; ``ws`` is a scratch array of
``plant.workspace_size`` elements, and nothing is allocated.

Other compiled code (a network's time loop) calls them by name, for a whole batch at a
time step or for one sample through ``(1, n)``-shaped views (``x.reshape((1, n))``). Pass
``params`` as an *argument*: captured as a global or closure constant, Numba would freeze
it and compile the kernels again instead of loading them from the cache. Every compiled
function holds its own copy of the machine code it calls, so a function that dispatches
over all the plants compiles all of them (about a minute); one that calls one plant's
kernels compiles in seconds.
"""

from __future__ import annotations

from numba import njit

from . import _dyn_cartpole as cartpole
from . import _dyn_chain as chain
from . import _dyn_linear as linear
from . import _dyn_muscle as muscle
from . import _dyn_pendulum as pendulum
from . import _dyn_two_link as two_link
from ._chunked import applies as chunked
from ._chunked import (
    jacobian_chunks,
    rollout_applies,
    rollout_applies_clamped,
    rollout_chunks,
)
from ._integrate import jacobian_rows, rollout_rows
from ._layout import (
    CARTPOLE,
    CHAIN,
    DISCRETE,
    H_INTEG,
    H_M,
    H_N,
    HOT,
    LINEAR,
    MUSCLE_ARM,
    PENDULUM,
    POINT_MASS,
    THREE_LINK,
    TWO_LINK,
)


@njit(**HOT)
def rollout_pendulum(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of the pendulum; see the module docstring. (Gymnasium's update, the
    default, runs batch-major: :func:`plants._dyn_pendulum.fast_rollout`.)"""
    if pendulum.fast_path(p):
        return pendulum.fast_rollout(p, X0, U, W, noisy, X, o0, ws)
    return rollout_rows(pendulum.consts, pendulum.rhs, p, X0, U, W, noisy, X, o0, ws, 2, 1)


@njit(**HOT)
def jacobians_pendulum(p, X, U, A, B, ws):
    """Jacobians of the step of the pendulum; see the module docstring. (Gymnasium's update,
    the default, in closed form over the batch: :func:`plants._dyn_pendulum.fast_jacobians`.)"""
    if pendulum.fast_path(p):
        return pendulum.fast_jacobians(p, X, U, A, B, ws)
    return jacobian_rows(pendulum.consts, pendulum.rhs_jac, p, X, U, A, B, ws, 2, 1)


@njit(**HOT)
def rollout_cartpole(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of the cart-pole; see the module docstring. (Batches without a
    force field run batch-major, :func:`plants._chunked.rollout_chunks`, where the
    settings allow.)"""
    if rollout_applies(p, X0.shape[0]) and cartpole.plain(p):
        return rollout_chunks(cartpole.consts, cartpole.stage_plain, p, X0, U, W, noisy, X, o0,
                              ws, 4, 1, 0, 0.0)
    return rollout_rows(cartpole.consts, cartpole.rhs, p, X0, U, W, noisy, X, o0, ws, 4, 1)


@njit(**HOT)
def jacobians_cartpole(p, X, U, A, B, ws):
    """Jacobians of the step of the cart-pole; see the module docstring."""
    if chunked(p, X.shape[0]) and cartpole.plain(p):
        return jacobian_chunks(cartpole.consts, cartpole.stage_jac_plain, p, X, U, A, B, ws, 4,
                               1)
    return jacobian_rows(cartpole.consts, cartpole.rhs_jac, p, X, U, A, B, ws, 4, 1)


@njit(**HOT)
def rollout_two_link(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of the closed-form two-link arm; see the module docstring. (Its
    common case, no gravity and no field, runs a right-hand side compiled without them;
    both run batch-major where the settings allow: :func:`plants._chunked.rollout_chunks`.)"""
    if two_link.plain(two_link.consts(p)):
        if rollout_applies(p, X0.shape[0]):
            return rollout_chunks(two_link.consts, two_link.stage_plain, p, X0, U, W, noisy, X,
                                  o0, ws, 4, 2, 0, 0.0)
        return rollout_rows(two_link.consts, two_link.rhs_plain, p, X0, U, W, noisy, X, o0, ws,
                            4, 2)
    if rollout_applies(p, X0.shape[0]):
        return rollout_chunks(two_link.consts, two_link.stage_forces, p, X0, U, W, noisy, X, o0,
                              ws, 4, 2, 0, 0.0)
    return rollout_rows(two_link.consts, two_link.rhs, p, X0, U, W, noisy, X, o0, ws, 4, 2)


@njit(**HOT)
def jacobians_two_link(p, X, U, A, B, ws):
    """Jacobians of the step of the closed-form two-link arm; see the module docstring.
    (Batches without gravity or force field run batch-major, :mod:`plants._chunked`, where
    the integrator allows.)"""
    if two_link.plain(two_link.consts(p)):
        if chunked(p, X.shape[0]):
            return jacobian_chunks(two_link.consts, two_link.stage_jac_plain, p, X, U, A, B,
                                   ws, 4, 2)
        return jacobian_rows(two_link.consts, two_link.rhs_jac_plain, p, X, U, A, B, ws, 4, 2)
    return jacobian_rows(two_link.consts, two_link.rhs_jac, p, X, U, A, B, ws, 4, 2)


@njit(**HOT)
def rollout_chain(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of a planar chain of any length; see the module docstring."""
    return rollout_rows(chain.consts, chain.rhs, p, X0, U, W, noisy, X, o0, ws, int(p[H_N]), int(p[H_M]))


@njit(**HOT)
def jacobians_chain(p, X, U, A, B, ws):
    """Jacobians of the step of a planar chain of any length; see the module docstring."""
    return jacobian_rows(chain.consts, chain.rhs_jac, p, X, U, A, B, ws, int(p[H_N]), int(p[H_M]))


@njit(**HOT)
def rollout_linear(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of a linear plant; see the module docstring."""
    if int(p[H_INTEG]) == DISCRETE:
        return linear.map_rollout(p, X0, U, W, noisy, X, o0, ws)
    return rollout_rows(linear.consts, linear.rhs, p, X0, U, W, noisy, X, o0, ws, int(p[H_N]), int(p[H_M]))


@njit(**HOT)
def jacobians_linear(p, X, U, A, B, ws):
    """Jacobians of the step of a linear plant; see the module docstring."""
    if int(p[H_INTEG]) == DISCRETE:
        return linear.map_jacobians(p, X, U, A, B, ws)
    return jacobian_rows(linear.consts, linear.rhs_jac, p, X, U, A, B, ws, int(p[H_N]), int(p[H_M]))


@njit(**HOT)
def rollout_three_link(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of a three-link chain; see the module docstring. (Batches without a
    force field run batch-major, :func:`plants._chunked.rollout_chunks`, where the
    settings allow.)"""
    if rollout_applies(p, X0.shape[0]) and chain.plain(p):
        return rollout_chunks(chain.consts, chain.stage3_plain, p, X0, U, W, noisy, X, o0, ws,
                              6, 3, 0, 0.0)
    return rollout_rows(chain.consts, chain.rhs3, p, X0, U, W, noisy, X, o0, ws, 6, 3)


@njit(**HOT)
def jacobians_three_link(p, X, U, A, B, ws):
    """Jacobians of the step of a three-link chain; see the module docstring. (Batches without
    a force field run batch-major, :mod:`plants._chunked`, where the integrator allows.)"""
    if chain.plain(p):
        if chunked(p, X.shape[0]):
            return jacobian_chunks(chain.consts, chain.stage_jac3_plain, p, X, U, A, B, ws, 6,
                                   3)
        return jacobian_rows(chain.consts, chain.rhs_jac3_plain, p, X, U, A, B, ws, 6, 3)
    return jacobian_rows(chain.consts, chain.rhs_jac3, p, X, U, A, B, ws, 6, 3)


@njit(**HOT)
def rollout_muscle_arm(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of the muscle arm (:mod:`plants._dyn_muscle`); see the module
    docstring. (Without gravity or a field, batches run batch-major where the settings
    allow: :func:`plants._chunked.rollout_chunks` with
    :func:`plants._dyn_muscle.arm_stage_plain`.)"""
    if muscle.arm_plain(muscle.arm_consts(p)) and rollout_applies_clamped(p, X0.shape[0]):
        return rollout_chunks(muscle.params, muscle.arm_stage_plain, p, X0, U, W, noisy, X, o0,
                              ws, 10, 6, 6, muscle.arm_floor(p))
    return muscle.muscle_rollout(0, p, X0, U, W, noisy, X, o0, ws, 10, 6, 6,
                                 muscle.arm_floor(p), not muscle.arm_plain(muscle.arm_consts(p)))


@njit(**HOT)
def jacobians_muscle_arm(p, X, U, A, B, ws):
    """Jacobians of the step of the muscle arm; see the module docstring."""
    return muscle.muscle_jacobians(0, p, X, U, A, B, ws, 10, 6, 6, muscle.arm_floor(p),
                                   not muscle.arm_plain(muscle.arm_consts(p)))


@njit(**HOT)
def rollout_point_mass(p, X0, U, W, noisy, X, o0, ws):
    """Rollout or step of the point mass, force-driven or with four muscles; see the module
    docstring."""
    if muscle.pm_muscles(p) == 4:
        return muscle.muscle_rollout(1, p, X0, U, W, noisy, X, o0, ws, 8, 4, 4,
                                     muscle.pm_floor(p), False)
    return rollout_rows(muscle.pm_consts, muscle.pm_rhs, p, X0, U, W, noisy, X, o0, ws, 4, 2)


@njit(**HOT)
def jacobians_point_mass(p, X, U, A, B, ws):
    """Jacobians of the step of the point mass; see the module docstring."""
    if muscle.pm_muscles(p) == 4:
        return muscle.muscle_jacobians(1, p, X, U, A, B, ws, 8, 4, 4, muscle.pm_floor(p),
                                       False)
    return jacobian_rows(muscle.pm_consts, muscle.pm_rhs_jac, p, X, U, A, B, ws, 4, 2)


_KERNELS = {
    PENDULUM: (rollout_pendulum, jacobians_pendulum),
    CARTPOLE: (rollout_cartpole, jacobians_cartpole),
    TWO_LINK: (rollout_two_link, jacobians_two_link),
    CHAIN: (rollout_chain, jacobians_chain),
    THREE_LINK: (rollout_three_link, jacobians_three_link),
    LINEAR: (rollout_linear, jacobians_linear),
    MUSCLE_ARM: (rollout_muscle_arm, jacobians_muscle_arm),
    POINT_MASS: (rollout_point_mass, jacobians_point_mass),
}


def kernels_for(code: int):
    """The ``(rollout, jacobians)`` kernels of the plant with this code."""
    return _KERNELS[code]
