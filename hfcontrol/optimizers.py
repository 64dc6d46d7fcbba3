"""Optimisers: Hessian-free (truncated Newton with Gauss-Newton curvature), SGD and Adam.

An optimiser works on any model that follows the contract of
:class:`hfcontrol.model.Model` (``W``, ``mask``, ``error``, ``calc_grad``, ``calc_G``)
and on nothing else. It is attached to a model (``net.optimizer = opt``, or
``net.run_epochs(..., optimizer=opt)``, or ``opt.net = model``), which sets ``opt.net``.
Each call of :meth:`Optimizer.compute_update` returns a weight update for the minibatch
the model has cached; the training loop adds it to the weights.

:func:`conjugate_gradient` is a plain function of a matrix-vector product.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .model import undamped_curvature

__all__ = ["Optimizer", "HessianFree", "SGD", "Adam", "conjugate_gradient", "CGResult"]


class CGResult(NamedTuple):
    """What :func:`conjugate_gradient` returns."""

    #: ``(iteration, x)`` pairs kept at geometrically spaced iterations; the last pair is
    #: the final solution. Empty when the first direction has non-positive curvature.
    iterates: list[tuple[int, np.ndarray]]
    #: whether CG met a direction of non-positive (or non-finite) curvature and stopped
    breakdown: bool


def conjugate_gradient(matvec: Callable[[np.ndarray], np.ndarray], grad: np.ndarray,
                       init_delta: np.ndarray | None = None, iters: int = 250, *,
                       tolerance: float = 5e-4, store_ratio: float = 1.3) -> CGResult:
    """Approximately minimise ``phi(x) = x.A x / 2 + grad.x``, i.e. solve ``A x = -grad``.

    Conjugate gradient as used by Hessian-free optimisation (Martens 2010): it stops by
    the relative-progress rule on ``phi`` (after iteration ``i``, stop when
    ``(phi_i - phi_{i-k}) / phi_i < k * tolerance`` with ``k = max(10, i // 10)``), and
    keeps iterates at geometrically spaced iterations (each about ``store_ratio`` times
    the last), for backtracking. It stops early, at the last good iterate, on a
    direction of non-positive or non-finite curvature.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` for a symmetric positive (semi-)definite ``A``; must return a new
        array (not ``v`` itself).
    grad : ndarray
        The linear term (the gradient, for Hessian-free optimisation).
    init_delta : ndarray, optional
        Starting point (default zeros).
    iters : int
        Maximum number of iterations.
    tolerance, store_ratio : float
        The stopping rule's constant and the spacing of the stored iterates.

    Returns
    -------
    CGResult
        ``(iterates, breakdown)``.
    """
    grad = np.asarray(grad)
    if grad.ndim != 1:
        raise ValueError(f"grad must be a 1-D vector, got shape {grad.shape}")
    dtype = grad.dtype
    if init_delta is None:
        x = np.zeros_like(grad)
    else:
        if np.shape(init_delta) != grad.shape:
            raise ValueError(f"init_delta must have the shape of grad {grad.shape}, got "
                             f"{np.shape(init_delta)}")
        x = np.asarray(init_delta).astype(dtype, copy=True)
    residual = -grad - matvec(x)
    direction = residual.copy()
    rr = float(residual @ residual)
    grad64 = grad.astype(np.float64)
    stored: list[tuple[int, np.ndarray]] = []
    phis: list[float] = []
    next_store = 1
    breakdown = False
    i = 0
    for i in range(1, int(iters) + 1):
        g_dir = matvec(direction)
        curvature = float(direction @ g_dir)
        if not (np.isfinite(curvature) and curvature > 0):
            breakdown = True
            i -= 1
            break
        alpha = rr / curvature
        x += dtype.type(alpha) * direction
        residual -= dtype.type(alpha) * g_dir
        rr_new = float(residual @ residual)
        direction = residual + dtype.type(rr_new / rr) * direction if rr > 0 else residual
        rr = rr_new
        # phi(x) = 0.5 x.(A x) + g.x, with A x = -g - residual
        phis.append(0.5 * float(x @ (grad64 - residual)))
        if i >= next_store:
            stored.append((i, x.copy()))
            next_store = max(i + 1, math.ceil(next_store * store_ratio))
        k = max(10, i // 10)
        if i > k and phis[-1] < 0 and (phis[-1] - phis[-1 - k]) / phis[-1] < k * tolerance:
            break
        if rr == 0:
            break
    if i > 0 and (not stored or stored[-1][0] != i):
        stored.append((i, x.copy()))
    return CGResult(stored, breakdown)


class Optimizer:
    """Base class for optimisers.

    Attributes
    ----------
    net : Model
        The model being optimised (an :class:`~hfcontrol.FFNet`, :class:`~hfcontrol.RNNet`
        or anything following :class:`hfcontrol.model.Model`); set when the optimiser is
        attached.
    """

    def __init__(self):
        self.net = None

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state between updates, for checkpoints: numbers, lists and
        arrays (``None`` allowed). :meth:`load_state_dict` restores it exactly."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state returned by :meth:`state_dict`."""
        unknown = set(state) - set(self.state_dict())
        if unknown:
            raise ValueError(f"state: unknown keys {sorted(unknown)} for {type(self).__name__}")

    def compute_update(self, printing: bool = False) -> np.ndarray:
        """Compute a weight update for the network's cached minibatch.

        Parameters
        ----------
        printing : bool
            Print details of the computation.

        Returns
        -------
        ndarray
            The update to add to ``net.W`` (all zeros when no acceptable step was found).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define compute_update()")

    def stats(self) -> dict[str, float]:
        """Figures of the last update for the training history (damping, CG iterations, ...)."""
        return dict(getattr(self, "last", {}))

    def _remember(self, **figures: float) -> None:
        """Keep the figures of this update (:meth:`stats`), and append them to ``plots``
        when plotting."""
        self.last = figures
        if getattr(self, "plotting", False):
            for key, value in figures.items():
                self.plots[key].append(value)

    def _require_net(self):
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a model: set "
                               f"net.optimizer = opt or pass it to net.run_epochs")
        return self.net


class HessianFree(Optimizer):
    """Hessian-free optimisation (Martens 2010).

    Each update solves ``(G + damping I) d = -g`` approximately by conjugate
    gradient, where ``G`` is the Gauss-Newton matrix, then:

    * warm-starts the next solve from 0.95 times this solution;
    * stops CG by Martens' relative-progress rule on the quadratic model
      (``(phi_i - phi_{i-k}) / phi_i < k * 5e-4`` with ``k = max(10, i / 10)``);
    * keeps iterates at geometrically spaced iterations (x1.3) and backtracks
      through them to the one with the lowest error;
    * adapts the Levenberg-Marquardt damping from the reduction ratio ``rho`` of
      the actual to the predicted (undamped quadratic model) change: x3/2 when
      ``rho < 1/4``, x2/3 when ``rho > 3/4``;
    * finds the step length by an Armijo backtracking line search.

    Guards: a CG direction of non-positive (or non-finite) curvature means the damped
    model is not convex there. At CG's first iteration the step is rejected (zero
    update) and the damping raised; later, CG ends at the last good iterate, which
    is still used (backtracking and line search as usual, as Martens keeps the
    iterates found so far), and the damping is raised by x3/2 whatever ``rho``
    (``cg_breakdown`` records it). A non-finite gradient or error rejects the step and
    raises the damping, so the weights are never corrupted. A direction that does not
    descend (``g . delta >= 0``) gives a zero update without a line search (no Armijo
    step can exist), and ``rho < 0`` raises the damping. A zero gradient gives a zero
    update and leaves the damping alone. Structural damping
    (:class:`~hfcontrol.loss_funcs.StructuralDamping`) is left out of the model used for ``rho``.

    Parameters
    ----------
    CG_iter : int
        Maximum number of CG iterations per update.
    init_damping : float
        Initial Tikhonov damping.
    plotting : bool
        Record per-update statistics (the network's history always holds them).

    Attributes
    ----------
    damping : float
        The current Tikhonov damping.
    cg_breakdown : bool
        Whether the last :meth:`conjugate_gradient` run met non-positive or non-finite
        curvature (and so stopped early).
    last : dict
        Figures of the last update: ``damping``, ``cg_iters``, ``cg_used`` (the
        iteration of the iterate used), ``l_rate`` and ``rho``.
    """

    warm_start = 0.95
    cg_tolerance = 5e-4
    store_ratio = 1.3
    armijo_c = 1e-2
    armijo_shrink = 0.8
    armijo_tries = 60
    damping_up = 3 / 2
    damping_down = 2 / 3
    max_damping = 1e10
    #: raising a damping of 0 gives this value, so that init_damping=0 can still adapt
    min_raised_damping = 1e-6

    def __init__(self, CG_iter: int = 250, init_damping: float = 1, plotting: bool = True):
        super().__init__()
        if not (isinstance(CG_iter, int | np.integer) and CG_iter >= 1):
            raise ValueError(f"CG_iter must be a positive integer, got {CG_iter!r}")
        if not (np.isfinite(init_damping) and init_damping >= 0):
            raise ValueError(f"init_damping must be a finite number >= 0, got {init_damping!r}")
        self.CG_iter = int(CG_iter)
        self.damping = float(init_damping)
        self.plotting = bool(plotting)
        self.init_delta: np.ndarray | None = None
        self.cg_breakdown = False
        self.last = {"damping": self.damping, "cg_iters": 0, "cg_used": 0, "l_rate": np.nan,
                     "rho": np.nan}
        self.plots: dict[str, list] = {k: [] for k in self.last}

    # ------------------------------------------------------------------ CG
    def conjugate_gradient(self, init_delta: np.ndarray, grad: np.ndarray,
                           iters: int = 250, printing: bool = False
                           ) -> list[tuple[int, np.ndarray]]:
        """Approximately solve ``(G + damping I) delta = -grad`` by conjugate gradient.

        The reference API's entry point: :func:`conjugate_gradient` on the attached
        model's damped Gauss-Newton product.

        Parameters
        ----------
        init_delta : ndarray
            Starting point.
        grad : ndarray
            Gradient of the error.
        iters : int
            Maximum number of iterations.
        printing : bool
            Print the number of iterations run and whether CG met non-positive curvature.

        Returns
        -------
        list of (int, ndarray)
            Iterates stored at geometrically spaced iterations, each with its
            iteration number; the last pair is the final solution. Empty when
            the first direction already has non-positive curvature. Meeting
            non-positive (or non-finite) curvature sets :attr:`cg_breakdown`.
        """
        model = self._require_net()
        damping = self.damping
        result = conjugate_gradient(lambda v: model.calc_G(v, damping=damping), grad,
                                    init_delta, iters, tolerance=self.cg_tolerance,
                                    store_ratio=self.store_ratio)
        self.cg_breakdown = result.breakdown
        if printing:
            last = result.iterates[-1][0] if result.iterates else 0
            print(f"  CG: {last} iterations" + (" (stopped at non-positive curvature)"
                                                if result.breakdown else ""))
        return result.iterates

    # ------------------------------------------------------------------ update
    def compute_update(self, printing: bool = False) -> np.ndarray:
        net = self._require_net()
        zero = np.zeros_like(net.W)
        grad = net.calc_grad()
        err = net.error()
        if not (np.all(np.isfinite(grad)) and np.isfinite(err)):
            return self._reject("non-finite gradient or error", zero, printing)
        if not np.any(grad):
            self._record(0, 0, 0.0, np.nan)
            if printing:
                print("  HF: zero gradient, no update")
            return zero

        init = zero if self.init_delta is None or self.init_delta.shape != zero.shape else \
            net.W.dtype.type(self.warm_start) * self.init_delta
        if net.mask is not None:
            init = init * net.mask
        self.cg_breakdown = False
        iterates = self.conjugate_gradient(init, grad, iters=self.CG_iter)
        if not iterates or not all(np.all(np.isfinite(d)) for _, d in iterates):
            self.init_delta = None
            return self._reject("CG found no direction of positive finite curvature", zero,
                                printing)
        self.init_delta = iterates[-1][1]

        # backtrack through the stored iterates while the error keeps falling; a non-finite
        # error counts as +inf, so a blown-up final iterate sends the search further back
        def trial_error(delta) -> float:
            value = net.error(net.W + delta)
            return value if np.isfinite(value) else np.inf

        best_i, best_delta = iterates[-1]
        best_err = trial_error(best_delta)
        for it, delta in reversed(iterates[:-1]):
            candidate = trial_error(delta)
            if not (candidate < best_err or not np.isfinite(best_err)):
                break
            best_i, best_delta, best_err = it, delta, candidate

        # Levenberg-Marquardt: ratio of actual to predicted reduction, predicted by the
        # undamped quadratic model (no Tikhonov term, no structural damping)
        g_delta = float(grad @ best_delta)
        with undamped_curvature(net):
            curvature = float(best_delta @ net.calc_G(best_delta, damping=0))
        predicted = g_delta + 0.5 * curvature
        rho = (best_err - err) / predicted if predicted < 0 and np.isfinite(best_err) else -np.inf
        if rho < 0.25 or self.cg_breakdown:
            # CG met non-positive curvature: the damping was too small for the damped
            # model to be convex, whatever rho says about the iterate kept
            self._raise_damping()
        elif rho > 0.75:
            self.damping *= self.damping_down

        # Armijo line search along the chosen direction; a direction that does not descend
        # (g . delta >= 0) can satisfy no Armijo condition, so it is not searched at all
        l_rate, new_err = 0.0, err
        if g_delta < 0:
            step, trial = 1.0, best_err
            for attempt in range(self.armijo_tries):
                if attempt:
                    step *= self.armijo_shrink
                    trial = trial_error(net.W.dtype.type(step) * best_delta)
                if trial <= err + self.armijo_c * step * g_delta:
                    l_rate, new_err = step, trial
                    break
        update = (l_rate * best_delta).astype(net.W.dtype) if l_rate > 0 else zero
        if not np.all(np.isfinite(update)):
            return self._reject("non-finite update", zero, printing)
        self._record(iterates[-1][0], best_i, l_rate, rho)
        if printing:
            print(f"  HF: CG iterations {iterates[-1][0]} (using {best_i}), error {err:.4e} -> "
                  f"{new_err:.4e}, rho {rho:.3g}, "
                  f"damping {self.damping:.3g}, step {l_rate:.3g}"
                  + (" (CG met non-positive curvature)" if self.cg_breakdown else ""))
        return update

    def _raise_damping(self) -> None:
        self.damping = min(max(self.damping * self.damping_up, self.min_raised_damping),
                           self.max_damping)

    def _reject(self, reason: str, zero: np.ndarray, printing: bool) -> np.ndarray:
        self._raise_damping()
        self._record(0, 0, 0.0, np.nan)
        if printing:
            print(f"  HF: step rejected ({reason}); damping raised to {self.damping:.3g}")
        return zero

    def _record(self, cg_iters: int, cg_used: int, l_rate: float, rho: float) -> None:
        """Figures of this update: CG iterations run, the iterate used, step length, rho."""
        self._remember(damping=self.damping, cg_iters=cg_iters, cg_used=cg_used,
                       l_rate=l_rate, rho=rho)

    def state_dict(self) -> dict[str, Any]:
        return {"damping": self.damping, "init_delta": self.init_delta,
                "cg_breakdown": self.cg_breakdown, "last": dict(self.last),
                "plots": {k: list(v) for k, v in self.plots.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.damping = float(state["damping"])
        delta = state["init_delta"]
        self.init_delta = None if delta is None else np.array(delta, copy=True)
        self.cg_breakdown = bool(state["cg_breakdown"])
        self.last = dict(state["last"])
        self.plots = {k: list(v) for k, v in state["plots"].items()}


class SGD(Optimizer):
    """First-order gradient descent, ``update = -l_rate * gradient``.

    Parameters
    ----------
    l_rate : float
        Learning rate.
    plotting : bool
        Record per-update statistics.
    """

    def __init__(self, l_rate: float = 1, plotting: bool = False):
        super().__init__()
        if not (np.isfinite(l_rate) and l_rate > 0):
            raise ValueError(f"l_rate must be a finite number > 0, got {l_rate!r}")
        self.l_rate = float(l_rate)
        self.plotting = bool(plotting)
        self.plots: dict[str, list] = {"l_rate": []}

    def compute_update(self, printing: bool = False) -> np.ndarray:
        net = self._require_net()
        grad = net.calc_grad()
        if not np.all(np.isfinite(grad)):
            if printing:
                print("  SGD: non-finite gradient, step skipped")
            return np.zeros_like(net.W)
        if self.plotting:
            self.plots["l_rate"].append(self.l_rate)
        if printing:
            print(f"  SGD: |gradient| {np.linalg.norm(grad):.4e}")
        return (-self.l_rate * grad).astype(net.W.dtype)

    def stats(self) -> dict[str, float]:
        return {"l_rate": self.l_rate}

    def state_dict(self) -> dict[str, Any]:
        return {"l_rate": self.l_rate, "plots": {k: list(v) for k, v in self.plots.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.l_rate = float(state["l_rate"])
        self.plots = {k: list(v) for k, v in state["plots"].items()}


def _check_number(value, name: str, low: float, high: float = math.inf, *,
                  low_open: bool = True, high_open: bool = True) -> float:
    """``value`` as a float if it is a real number in the given interval, else an error
    naming ``name`` and the interval."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (np.isfinite(value) and above and below):
        interval = (("(" if low_open else "[") + f"{low:g}, {high:g}"
                    + (")" if high_open else "]"))
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return value


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with optional clipping of the gradient's norm.

    Each update, with ``g`` the gradient on the cached minibatch (scaled down to norm
    ``clip_norm`` first when it is longer, as ``torch.nn.utils.clip_grad_norm_`` does and
    as MotorNet and Feedbax train), and ``t`` the number of updates taken::

        m = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g**2
        update = -l_rate * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon)

    (Algorithm 1 of the paper: moments start at zero, with bias correction). The moments
    are kept in float64 whatever the model's dtype. Frozen parameters (``mask`` False)
    get no update. A non-finite gradient, error or update is a rejected step: the update
    is zero and the moments and step count are left as they were, so the weights are
    never corrupted.

    Parameters
    ----------
    l_rate : float
        Step size (``alpha`` in the paper), > 0.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float
        Added to the root of the second moment, > 0.
    clip_norm : float or None
        Largest Euclidean norm of the gradient used (None: no clipping).
    plotting : bool
        Record per-update statistics in :attr:`plots`.

    Attributes
    ----------
    step : int
        Number of updates taken (rejected steps are not counted).
    m, v : ndarray or None
        First and second moment estimates (None before the first update).
    last : dict
        Figures of the last update: ``l_rate`` (0 for a rejected step), ``grad_norm``
        (before clipping), ``update_norm`` and ``clipped`` (1.0 if the gradient was
        clipped).
    """

    def __init__(self, l_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, clip_norm: float | None = None,
                 plotting: bool = False):
        super().__init__()
        self.l_rate = _check_number(l_rate, "l_rate", 0)
        self.beta1 = _check_number(beta1, "beta1", 0, 1, low_open=False)
        self.beta2 = _check_number(beta2, "beta2", 0, 1, low_open=False)
        self.epsilon = _check_number(epsilon, "epsilon", 0)
        self.clip_norm = None if clip_norm is None else _check_number(clip_norm, "clip_norm", 0)
        self.plotting = bool(plotting)
        self.reset()

    def reset(self) -> None:
        """Forget the moments and the step count (e.g. before training another model)."""
        self.step = 0
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.last = {"l_rate": np.nan, "grad_norm": np.nan, "update_norm": np.nan,
                     "clipped": 0.0}
        self.plots: dict[str, list] = {k: [] for k in self.last}

    def compute_update(self, printing: bool = False) -> np.ndarray:
        net = self._require_net()
        zero = np.zeros_like(net.W)
        if self.m is not None and self.m.shape != net.W.shape:
            raise ValueError(f"Adam's moments have {self.m.size} entries but the model has "
                             f"{net.W.size} parameters: call reset() (or use a new Adam) "
                             f"to train another model")
        grad = np.asarray(net.calc_grad(), dtype=np.float64)
        err = net.error()
        if not (np.all(np.isfinite(grad)) and np.isfinite(err)):
            return self._reject("non-finite gradient or error", zero, printing)
        grad_norm = float(np.linalg.norm(grad))
        clipped = self.clip_norm is not None and grad_norm > self.clip_norm
        if clipped:
            grad = grad * (self.clip_norm / grad_norm)
        m = grad * (1 - self.beta1) if self.m is None else \
            self.beta1 * self.m + (1 - self.beta1) * grad
        v = grad * grad * (1 - self.beta2) if self.v is None else \
            self.beta2 * self.v + (1 - self.beta2) * (grad * grad)
        t = self.step + 1
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        update = -self.l_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)
        if net.mask is not None:
            update = update * net.mask
        if not np.all(np.isfinite(update)):
            return self._reject("non-finite update", zero, printing)
        self.m, self.v, self.step = m, v, t
        update = update.astype(net.W.dtype)
        self._record(self.l_rate, grad_norm, float(np.linalg.norm(update)), clipped)
        if printing:
            print(f"  Adam: step {t}, |gradient| {grad_norm:.4e}"
                  + (f" (clipped to {self.clip_norm:g})" if clipped else "")
                  + f", |update| {self.last['update_norm']:.4e}")
        return update

    def _reject(self, reason: str, zero: np.ndarray, printing: bool) -> np.ndarray:
        self._record(0.0, np.nan, 0.0, False)
        if printing:
            print(f"  Adam: step rejected ({reason})")
        return zero

    def _record(self, l_rate: float, grad_norm: float, update_norm: float,
                clipped: bool) -> None:
        self._remember(l_rate=l_rate, grad_norm=grad_norm, update_norm=update_norm,
                       clipped=float(clipped))

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "m": self.m, "v": self.v, "last": dict(self.last),
                "plots": {k: list(v) for k, v in self.plots.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        m, v = state["m"], state["v"]
        if (m is None) != (v is None) or (m is not None and np.shape(m) != np.shape(v)):
            raise ValueError("state: Adam's moments m and v must both be None or arrays of "
                             "one shape")
        self.step = int(state["step"])
        self.m = None if m is None else np.array(m, dtype=np.float64, copy=True)
        self.v = None if v is None else np.array(v, dtype=np.float64, copy=True)
        self.last = dict(state["last"])
        self.plots = {k: list(v) for k, v in state["plots"].items()}
