"""A task's cost as weighted squares of differentiable outputs, with its exact derivatives.

The tasks of :mod:`plants.tasks` charge, per episode (``CostWeights``)::

    J = final_error    * err_last                       (the last step with a target)
      + tracking       * mean over targeted steps of err_t
      + final_velocity * |v(x_T)|^2
      + effort         * dt * sum_t |u_t|^2,     err_t = sum_i w_i (y_i(x_t) - target_t,i)^2

with ``y = task.outputs``, ``v = task.velocity`` and output weights ``w``. Every term is
a weighted square of a smooth output of a state or a control, so the Gauss-Newton
matrix of the closed loop, ``G = J^T H J``, uses the exact curvature ``H`` of these
squares: per state ``x_t`` the ``n x n`` matrix ``Jy^T diag(2 w omega_t) Jy`` (plus
``2 final_velocity Jv^T Jv`` at the end), and per control ``2 effort dt`` times the
identity. :class:`TaskCost` evaluates the cost, its gradient with respect to every
state and control, and these curvatures, vectorised over the batch and the steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TaskCost", "CostTerms"]


@dataclass
class CostTerms:
    """The cost of a batch of episodes and its derivatives (see :class:`TaskCost`)."""

    value: np.ndarray  #: per-episode cost ``[B]``
    gx: np.ndarray | None = None  #: d J / d x_t, ``[B, T + 1, n]``
    hx: np.ndarray | None = None  #: curvature of J in x_t, ``[B, T + 1, n, n]``
    gu: np.ndarray | None = None  #: d J / d u_t, ``[B, T, m]``
    hu: float = 0.0  #: curvature of J in each control entry (a multiple of the identity)


class TaskCost:
    """The cost of ``task`` (a :mod:`plants.tasks` task) on states and controls.

    Parameters
    ----------
    task : plants.tasks.Task
        Needs ``weights``, ``outputs``/``outputs_jacobian``, ``velocity``/
        ``velocity_jacobian`` and ``plant.dt``.
    """

    def __init__(self, task):
        for attr in ("weights", "outputs", "outputs_jacobian", "velocity", "velocity_jacobian",
                     "step_weights", "output_weights"):
            if not hasattr(task, attr):
                raise TypeError(f"task must be a plants.tasks task with {attr}; "
                                f"{type(task).__name__} has none")
        self.task = task
        self.weights = task.weights
        self.dt = float(task.plant.dt)

    def evaluate(self, X: np.ndarray, U: np.ndarray, targets: np.ndarray,
                 derivatives: bool = True) -> CostTerms:
        """The cost of states ``X[B, T+1, n]`` and controls ``U[B, T, m]`` against
        ``targets[B, T, k]`` (NaN: no target), and, if ``derivatives``, its gradient and
        curvature with respect to every state and control."""
        wts = self.weights
        B, T1, n = X.shape
        T = T1 - 1
        omega = self.task.step_weights(targets)  # the weight of each step's error
        # the outputs and their Jacobians only where a step's error counts (for a reach,
        # the last step alone)
        idx = np.flatnonzero(omega.reshape(-1) > 0)
        after = X[:, 1:].reshape(B * T, n)[idx]
        w = np.asarray(self.task.output_weights, dtype=np.float64)
        r = self.task.outputs(after) - targets.reshape(B * T, -1)[idx]  # [active, k]
        err = np.zeros(B * T)
        err[idx] = (w * r * r).sum(axis=1)
        value = (omega * err.reshape(B, T)).sum(axis=1) \
            + wts.effort * self.dt * (U * U).sum(axis=(1, 2))
        v = None
        if wts.final_velocity:
            v = self.task.velocity(X[:, T])
            value = value + wts.final_velocity * (v * v).sum(axis=1)
        if not derivatives:
            return CostTerms(value)
        gx = np.zeros((B, T1, n))
        hx = np.zeros((B, T1, n, n))
        if idx.size:
            Jy = self.task.outputs_jacobian(after)  # [active, k, n]
            scale = 2 * omega.reshape(-1)[idx, None] * w  # [active, k]
            b, t = np.divmod(idx, T)  # episode and step of each active error; state t + 1
            gx[b, t + 1] = np.einsum("akn,ak->an", Jy, scale * r)
            hx[b, t + 1] = np.einsum("akn,ak,akm->anm", Jy, scale, Jy)
        if v is not None:
            Jv = self.task.velocity_jacobian(X[:, T])
            gx[:, T] += 2 * wts.final_velocity * np.einsum("bqn,bq->bn", Jv, v)
            hx[:, T] += 2 * wts.final_velocity * np.einsum("bqn,bqm->bnm", Jv, Jv)
        return CostTerms(value, gx, hx, 2 * wts.effort * self.dt * U, 2 * wts.effort * self.dt)
