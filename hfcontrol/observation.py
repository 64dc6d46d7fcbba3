"""What a controller senses of the plant: a differentiable map of the state.

An :class:`Observation` is ``o(x) = [S x, cos x_a, sin x_a for a in angles]``: a linear
part (a matrix ``S``, often a selection of state entries) and, for angles, their cosine
and sine, so that a controller sees a periodic angle smoothly (the pendulum's
``(cos theta, sin theta, theta_dot)``). Both parts have exact Jacobians, and both are
compiled into the closed loop's kernels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Observation"]


class Observation:
    """``o(x) = [S x, cos x_a, sin x_a ...]`` for a state of ``n`` entries.

    Parameters
    ----------
    n : int
        The state's length.
    linear : "state", sequence of int, ndarray [p, n], or None
        The linear part: the whole state (default), the state entries with these
        indices, or a matrix ``S``; None for none.
    angles : sequence of int
        State entries observed as ``(cos, sin)`` pairs (after the linear part, all the
        cosines, then all the sines).
    """

    def __init__(self, n: int, linear: Any = "state", angles: Sequence[int] = ()):
        self.n = int(n)
        if isinstance(linear, str):
            if linear != "state":
                raise ValueError(f"observation: linear must be 'state', a list of state "
                                 f"indices, a matrix [p, {n}] or None, got {linear!r}")
            S = np.eye(self.n)
        elif linear is None:
            S = np.zeros((0, self.n))
        else:
            arr = np.asarray(linear)
            if arr.ndim == 1 and arr.dtype.kind in "iu":
                S = np.eye(self.n)[self._indices(arr, "linear")]
            elif arr.ndim == 2 and arr.dtype.kind in "fiu":
                if arr.shape[1] != self.n:
                    raise ValueError(f"observation: a linear map must have shape [p, {self.n}] "
                                     f"(the state has {self.n} entries), got {arr.shape}")
                if not np.isfinite(arr).all():
                    raise ValueError("observation: the linear map must be finite")
                S = arr.astype(np.float64)
            else:
                raise TypeError(f"observation: linear must be 'state', a list of integer state "
                                f"indices or a matrix [p, {self.n}], got {linear!r}")
        self.S = np.ascontiguousarray(S, dtype=np.float64)
        self.angles = self._indices(np.asarray(list(angles), dtype=np.int64), "angles")
        self.size = self.S.shape[0] + 2 * self.angles.size
        if self.size == 0:
            raise ValueError("observation: observes nothing (no linear part and no angles)")

    def _indices(self, idx: np.ndarray, name: str) -> np.ndarray:
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise ValueError(f"observation: {name} indices must lie in 0..{self.n - 1}, "
                             f"got {idx.tolist()}")
        return idx.astype(np.int64)

    @classmethod
    def from_spec(cls, spec: Any, n: int) -> Observation:
        """An observation from ``"state"``, a list of indices, a matrix, a mapping
        ``{"linear": ..., "angles": [...]}`` or an :class:`Observation`."""
        if isinstance(spec, Observation):
            if spec.n != n:
                raise ValueError(f"observation is for a state of {spec.n} entries, the plant's "
                                 f"has {n}")
            return spec
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"linear", "angles"}
            if unknown:
                raise ValueError(f"observation: unknown keys {sorted(unknown)}; expected "
                                 f"'linear' and 'angles'")
            return cls(n, spec.get("linear"), spec.get("angles", ()))
        return cls(n, spec)

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description (inverse of :meth:`from_spec`)."""
        return {"linear": self.S.tolist(), "angles": self.angles.tolist()}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``o(x)`` for states ``x[..., n]``: shape ``[..., size]``."""
        a = x[..., self.angles]
        return np.concatenate([x @ self.S.T, np.cos(a), np.sin(a)], axis=-1)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """``d o / d x`` for states ``x[..., n]``: shape ``[..., size, n]``."""
        lead = x.shape[:-1]
        out = np.zeros(lead + (self.size, self.n))
        p = self.S.shape[0]
        out[..., :p, :] = self.S
        k = self.angles.size
        a = x[..., self.angles]
        rows = np.arange(k)
        out[..., p + rows, self.angles] = -np.sin(a)
        out[..., p + k + rows, self.angles] = np.cos(a)
        return out

    def __repr__(self) -> str:
        return f"Observation(n={self.n}, linear={self.S.shape[0]} rows, angles={self.angles.tolist()})"
