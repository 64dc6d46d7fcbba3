"""Optimisers: Hessian-free (truncated Newton with Gauss-Newton curvature) and SGD.

An optimiser is attached to a network (``net.optimizer = opt`` or
``net.run_epochs(..., optimizer=opt)``), which sets ``opt.net``. Each call of
:meth:`Optimizer.compute_update` returns a weight update for the minibatch the
network has cached; the network adds it to its weights.
"""

from __future__ import annotations

import math

import numpy as np

from .loss_funcs import without_structural_damping

__all__ = ["Optimizer", "HessianFree", "SGD"]


class Optimizer:
    """Base class for optimisers.

    Attributes
    ----------
    net : FFNet or RNNet
        The network being optimised; set when the optimiser is attached.
    """

    def __init__(self):
        self.net = None

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
        return {}

    def _require_net(self):
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a network: set "
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
                           iters: int = 250) -> list[tuple[int, np.ndarray]]:
        """Approximately solve ``(G + damping I) delta = -grad`` by conjugate gradient.

        Parameters
        ----------
        init_delta : ndarray
            Starting point.
        grad : ndarray
            Gradient of the error.
        iters : int
            Maximum number of iterations.

        Returns
        -------
        list of (int, ndarray)
            Iterates stored at geometrically spaced iterations, each with its
            iteration number; the last pair is the final solution. Empty when
            the first direction already has non-positive curvature. Meeting
            non-positive (or non-finite) curvature sets :attr:`cg_breakdown`.
        """
        net = self._require_net()
        dtype = grad.dtype
        damping = self.damping
        x = init_delta.astype(dtype, copy=True)
        residual = -grad - net.calc_G(x, damping=damping)
        direction = residual.copy()
        rr = float(residual @ residual)
        stored: list[tuple[int, np.ndarray]] = []
        phis: list[float] = []
        next_store = 1
        i = 0
        self.cg_breakdown = False
        for i in range(1, int(iters) + 1):
            g_dir = net.calc_G(direction, damping=damping)
            curvature = float(direction @ g_dir)
            if not (np.isfinite(curvature) and curvature > 0):
                self.cg_breakdown = True
                i -= 1
                break
            alpha = rr / curvature
            x += dtype.type(alpha) * direction
            residual -= dtype.type(alpha) * g_dir
            rr_new = float(residual @ residual)
            direction = residual + dtype.type(rr_new / rr) * direction if rr > 0 else residual
            rr = rr_new
            # quadratic model phi(x) = 0.5 x.(A x) + g.x, with A x = -g - residual
            phis.append(0.5 * float(x @ (grad.astype(np.float64) - residual)))
            if i >= next_store:
                stored.append((i, x.copy()))
                next_store = max(i + 1, math.ceil(next_store * self.store_ratio))
            k = max(10, i // 10)
            if i > k and phis[-1] < 0 and (phis[-1] - phis[-1 - k]) / phis[-1] < k * self.cg_tolerance:
                break
            if rr == 0:
                break
        if i > 0 and (not stored or stored[-1][0] != i):
            stored.append((i, x.copy()))
        return stored

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
            net.dtype.type(self.warm_start) * self.init_delta
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
        with without_structural_damping(net.loss):
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
                    trial = trial_error(net.dtype.type(step) * best_delta)
                if trial <= err + self.armijo_c * step * g_delta:
                    l_rate, new_err = step, trial
                    break
        update = (l_rate * best_delta).astype(net.dtype) if l_rate > 0 else zero
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
        self.last = {"damping": self.damping, "cg_iters": cg_iters, "cg_used": cg_used,
                     "l_rate": l_rate, "rho": rho}
        if self.plotting:
            for key, value in self.last.items():
                self.plots[key].append(value)

    def stats(self) -> dict[str, float]:
        return dict(self.last)


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
        return (-self.l_rate * grad).astype(net.dtype)

    def stats(self) -> dict[str, float]:
        return {"l_rate": self.l_rate}
