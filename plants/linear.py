"""Linear plant with an optional state-dependent input matrix.

    x_{t+1} = A x_t + B(x_t) u_t                      (integrator="discrete", the default)
    dx/dt   = A x + B(x) u                            (integrator="euler" or "rk4")

with ``B(x)[i, j] = B[i, j] + B_tanh[i, j] * tanh(x[B_tanh_index[i, j]])``; an index of -1
means "no state dependence" for that entry. This family covers the project's demo plant
(:meth:`LinearPlant.demo`).
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from ._base import PlantBase
from ._dyn_linear import map_workspace
from ._layout import LINEAR


class LinearPlant(PlantBase):
    """``x' = A x + B(x) u`` as a discrete map (default) or as an ODE.

    Parameters
    ----------
    A : array_like, shape (n, n)
        State matrix.
    B : array_like, shape (n, m)
        Constant part of the input matrix.
    B_tanh : array_like, shape (n, m), optional
        Gains of the state-dependent part of ``B(x)``; default zeros.
    B_tanh_index : array_like of int, shape (n, m), optional
        State index whose ``tanh`` multiplies ``B_tanh[i, j]``; -1 for none. Required with
        ``B_tanh``.
    dt : float
        Step duration (for the discrete map it only labels time).
    integrator : {"discrete", "euler", "rk4"}
        "discrete" applies the map; the others integrate the ODE over ``dt``.
    substeps : int
        Substeps per step (must be 1 for "discrete").
    control_limit : float or array_like (m,), optional
        Symmetric control limit ``|u_j| <= control_limit``; default unlimited.
    control_noise, process_noise : float or array_like
        Standard deviations of additive Gaussian noise (see :mod:`plants._base`).
    rng, seed : numpy Generator or int, optional
        Source of the noise.
    """

    def __init__(self, A, B, *, B_tanh=None, B_tanh_index=None, dt: float = 1.0,
                 integrator: str = "discrete", substeps: int = 1, control_limit=None,
                 control_noise=0.0, process_noise=0.0, rng=None, seed=None) -> None:
        self._remember(locals())
        A = V.as_finite_array(A, "A", (None, None))
        n = A.shape[0]
        if A.shape != (n, n) or n == 0:
            raise ValueError(f"A must be square with n >= 1, got shape {A.shape}")
        B = V.as_finite_array(B, "B", (n, None))
        m = B.shape[1]
        if m == 0:
            raise ValueError("B must have at least one column (control_dim >= 1)")
        if (B_tanh is None) != (B_tanh_index is None):
            raise ValueError("B_tanh and B_tanh_index must be given together")
        if B_tanh is None:
            G = np.zeros((n, m))
            idx = -np.ones((n, m))
        else:
            G = V.as_finite_array(B_tanh, "B_tanh", (n, m))
            idx_raw = np.asarray(B_tanh_index)
            if not np.issubdtype(idx_raw.dtype, np.integer):
                raise TypeError(f"B_tanh_index must be an integer array, got dtype {idx_raw.dtype}")
            if idx_raw.shape != (n, m):
                raise ValueError(f"B_tanh_index must have shape ({n}, {m}), got {idx_raw.shape}")
            if np.any(idx_raw < -1) or np.any(idx_raw >= n):
                raise ValueError(f"B_tanh_index entries must be -1 or in [0, {n}), got {idx_raw}")
            idx = idx_raw.astype(float)
        if integrator == "semi_implicit":
            raise ValueError("integrator 'semi_implicit' needs a mechanical plant; use "
                             "'discrete', 'euler' or 'rk4' for LinearPlant")
        if integrator == "discrete" and substeps != 1:
            raise ValueError(f"substeps must be 1 for the discrete map, got {substeps!r}")
        lo, hi = V.limits(None, control_limit, "control_limit", m)
        self.A, self.B, self.B_tanh, self.B_tanh_index = A, B, G, idx.astype(int)
        section = np.concatenate([A.ravel(), B.ravel(), G.ravel(), idx.ravel()])
        self._setup(code=LINEAR, integrator=integrator, allowed_integrators=("discrete", "euler", "rk4"),
                    substeps=substeps, dt=dt, n=n, m=m, pos_index=[], vel_index=[],
                    control_low=lo, control_high=hi, max_speed=None, joint_limits=None,
                    section=section, plant_workspace=map_workspace(n, m),
                    parameters=dict(A=A, B=B, B_tanh=G, B_tanh_index=idx.astype(int)),
                    control_noise=control_noise, process_noise=process_noise,
                    rng=rng, seed=seed)

    @classmethod
    def demo(cls, **kwargs) -> LinearPlant:
        """The reference package's demo plant: state ``[p, v]`` (position, velocity), control dim 2::

            p' = p + 0.2 v
            v' = v + tanh(p) u_1

        The reference package writes it for row vectors, ``s' = s A_row + u B_row(s)`` with
        ``A_row = [[1, 0], [0.2, 1]]`` and ``B_row(s) = [[0, 0], [0, tanh(p)]]``. This class uses
        column vectors, ``x' = A x + B(x) u``, so ``A`` is the transpose,
        ``A = [[1, 0.2], [0, 1]]``, and ``B(x) = [[0, 0], [0, tanh(p)]]`` (symmetric, so the same).
        ``u_0`` has no effect. Keyword arguments are passed to the constructor.
        """
        return cls(np.array([[1.0, 0.2], [0.0, 1.0]]), np.zeros((2, 2)),
                   B_tanh=np.array([[0.0, 0.0], [0.0, 1.0]]),
                   B_tanh_index=np.array([[-1, -1], [-1, 0]]), **kwargs)

    def input_matrix(self, x) -> np.ndarray:
        """``B(x)`` for a batch ``x[B, n]``, shape ``[B, n, m]``."""
        x = V.as_finite_array(x, "x", (None, self.state_dim))
        has = self.B_tanh_index >= 0
        t = np.tanh(x[:, np.where(has, self.B_tanh_index, 0)])
        return self.B + np.where(has, self.B_tanh, 0.0) * t
