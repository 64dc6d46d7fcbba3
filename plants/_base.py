"""Shared Python-side behaviour of the built-in plants: validation, noise, batched calls.

The deterministic model lives in the compiled kernels (:mod:`plants._kernels`). Noise is
added here, from the plant's seeded ``numpy.random.Generator``:

* control noise: ``u + sigma_u * eps`` before the model (so it is then clipped to the
  control limits like any control);
* process noise: ``x_next + sigma_x * eps`` after the step (not clipped).

``jacobians`` always describes the deterministic step.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from . import _kernels as K
from . import _validation as V
from ._layout import H_WS, field_block, pack

#: Per-thread kernel scratch arrays, by size (see PlantBase._workspace).
_SCRATCH = threading.local()


class PlantBase:
    """Common implementation of :class:`plants.protocol.CompiledDynamics`."""

    kernel_code: int
    kernel_params: np.ndarray
    state_dim: int
    control_dim: int
    dt: float
    integrator: str
    substeps: int
    control_low: np.ndarray
    control_high: np.ndarray

    # -- construction helpers -------------------------------------------------------------
    def _remember(self, loc: dict) -> None:
        """Record the outermost constructor's arguments for :meth:`replace`."""
        if not hasattr(self, "_init_kwargs"):
            kw = {k: v for k, v in loc.items() if k not in ("self", "__class__", "kwargs")}
            kw.update(loc.get("kwargs", {}))
            self._init_kwargs = kw

    def replace(self, **changes):
        """A new plant of the same class with some constructor arguments changed.

        Example: ``arm.replace(curl=15.0)``. The new plant shares this plant's random
        generator unless ``rng`` or ``seed`` is given.
        """
        kw = dict(self._init_kwargs)
        kw.update(changes)
        if "rng" not in changes and "seed" not in changes:
            kw["rng"], kw["seed"] = self.rng, None
        else:
            kw["rng"], kw["seed"] = changes.get("rng"), changes.get("seed")
        return type(self)(**kw)

    def _setup(self, *, code: int, integrator: str, allowed_integrators, substeps, dt,
               n: int, m: int, pos_index, vel_index, control_low, control_high,
               max_speed, joint_limits, section, plant_workspace: int,
               parameters: Mapping[str, Any], control_noise=0.0, process_noise=0.0,
               rng=None, seed=None) -> None:
        self.kernel_code = int(code)
        self.state_dim = int(n)
        self.control_dim = int(m)
        self.dt = V.positive(dt, "dt")
        self.substeps = V.integer(substeps, "substeps")
        self.integrator = integrator
        integ = V.integrator_code(integrator, allowed_integrators)
        nq = len(pos_index)
        if max_speed is None:
            vmax = np.full(nq, np.inf)
        else:
            vmax = V._vec(max_speed, "max_speed", nq)
            if np.any(vmax <= 0):
                raise ValueError(f"max_speed must be > 0, got {vmax}")
        if joint_limits is None:
            qlo, qhi = np.full(nq, -np.inf), np.full(nq, np.inf)
        else:
            if not isinstance(joint_limits, (tuple, list)) or len(joint_limits) != 2:
                raise TypeError("joint_limits must be a pair (low, high) of numbers or "
                                f"length-{nq} vectors, got {joint_limits!r}")
            qlo, qhi = V.limits(joint_limits[0], joint_limits[1], "joint_limits", nq)
        self.control_low = np.asarray(control_low, dtype=float).copy()
        self.control_high = np.asarray(control_high, dtype=float).copy()
        self.control_low.flags.writeable = False
        self.control_high.flags.writeable = False
        self.velocity_limit = vmax
        self.joint_low, self.joint_high = qlo, qhi
        self._control_noise = V.noise_std(control_noise, "control_noise", m)
        self._process_noise = V.noise_std(process_noise, "process_noise", n)
        self._has_cnoise = bool(np.any(self._control_noise > 0))
        self._has_pnoise = bool(np.any(self._process_noise > 0))
        self.rng = V.make_rng(rng, seed)
        self.kernel_params = pack(code, integ, self.substeps, self.dt, n, m, pos_index,
                                  vel_index, self.control_low, self.control_high, vmax,
                                  qlo, qhi, section, plant_workspace)
        self.kernel_params.flags.writeable = False
        self._workspace_size = int(self.kernel_params[H_WS])
        self._rollout_kernel, self._jacobian_kernel = K.kernels_for(self.kernel_code)
        record = dict(parameters)
        record.update(dt=self.dt, integrator=integrator, substeps=self.substeps,
                      control_low=self.control_low, control_high=self.control_high,
                      control_noise=self._control_noise, process_noise=self._process_noise)
        if nq:
            record.update(max_speed=vmax, joint_low=qlo, joint_high=qhi)
        for value in (*record.values(), vmax, qlo, qhi):
            if isinstance(value, np.ndarray):
                value.flags.writeable = False  # the compiled model holds its own copy
        self._parameters = MappingProxyType(record)

    @property
    def parameters(self) -> Mapping[str, Any]:
        """Read-only record of the model parameters by name."""
        return self._parameters

    @property
    def workspace_size(self) -> int:
        """Scratch length (float64 elements) that this plant's compiled kernels need."""
        return self._workspace_size

    def _workspace(self) -> np.ndarray:
        """Scratch for one kernel call: reused per thread and size (the kernels do not call
        back into Python, so a call ends before the thread's next one starts), which saves
        an allocation per call (about a tenth of a step at batch 1)."""
        pool = _SCRATCH.__dict__
        ws = pool.get(self._workspace_size)
        if ws is None:
            ws = pool[self._workspace_size] = np.empty(self._workspace_size)
        return ws

    @property
    def kernels(self):
        """This plant's compiled ``(rollout, jacobians)`` kernels (see :mod:`plants._kernels`)."""
        return self._rollout_kernel, self._jacobian_kernel

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={self.state_dim}, m={self.control_dim}, dt={self.dt}, "
                f"integrator={self.integrator!r}, substeps={self.substeps})")

    # -- input checking -------------------------------------------------------------------
    def _batch(self, a, name: str, width: int) -> np.ndarray:
        if (type(a) is np.ndarray and a.dtype == np.float64 and a.ndim == 2
                and a.shape[1] == width and a.flags.c_contiguous):
            return a
        return V.as_float_array(a, name, (None, width))

    def _bad(self, idx: int, xname: str, x: np.ndarray, uname: str) -> ValueError:
        if idx <= -2:
            b = -2 - idx
            return ValueError(f"the model produced a non-finite result for sample {b} "
                              f"({xname}[{b}] = {x[b]}): the state or control ({uname}) is "
                              f"beyond what it can integrate at dt = {self.dt} (smaller dt or "
                              f"more substeps, or smaller controls)")
        if not np.isfinite(x[idx]).all():
            return ValueError(f"{xname}[{idx}] must be finite, got {x[idx]}")
        return ValueError(f"{uname} for sample {idx} must be finite (no NaN or inf)")

    # -- protocol -------------------------------------------------------------------------
    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One step for a batch: ``x[B, n]``, ``u[B, m]`` -> ``x_next[B, n]``.

        Controls are clipped to ``[control_low, control_high]`` (part of the model). If the
        plant has noise, control noise is added before and process noise after the step.
        """
        x = self._batch(x, "x", self.state_dim)
        u = self._batch(u, "u", self.control_dim)
        if x.shape[0] != u.shape[0]:
            raise ValueError(f"x and u need the same batch size, got x {x.shape}, u {u.shape}")
        if self._has_cnoise:
            u = u + self._control_noise * self.rng.standard_normal(u.shape)
        B = x.shape[0]
        out = np.empty((B, 1, self.state_dim))
        U = u.reshape(B, 1, self.control_dim)
        bad = self._rollout_kernel(self.kernel_params, x, U, U, False, out, 0,
                                   self._workspace())
        if bad != -1:
            raise self._bad(bad, "x", x, "u")
        if self._has_pnoise:
            out += self._process_noise * self.rng.standard_normal(out.shape)
        return out.reshape(B, self.state_dim)

    def rollout(self, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
        """Step a whole control sequence: ``x0[B, n]``, ``U[B, T, m]`` -> ``X[B, T + 1, n]``.

        ``X[:, 0] = x0``. All ``T`` steps of all ``B`` samples run in one compiled call;
        noise (if any) is drawn up front from the plant's generator.
        """
        x0 = self._batch(x0, "x0", self.state_dim)
        if not (type(U) is np.ndarray and U.dtype == np.float64 and U.flags.c_contiguous):
            U = V.as_float_array(U, "U", (None, None, self.control_dim))
        elif U.ndim != 3 or U.shape[2] != self.control_dim:
            raise ValueError(f"U must have shape (B, T, {self.control_dim}), got {U.shape}")
        B, T = U.shape[0], U.shape[1]
        if B != x0.shape[0]:
            raise ValueError(f"x0 and U need the same batch size, got x0 {x0.shape}, U {U.shape}")
        if self._has_cnoise:
            U = U + self._control_noise * self.rng.standard_normal(U.shape)
        if self._has_pnoise:
            W = self._process_noise * self.rng.standard_normal((B, T, self.state_dim))
        else:
            W = np.empty((1, 1, 1))
        X = np.empty((B, T + 1, self.state_dim))
        bad = self._rollout_kernel(self.kernel_params, x0, U, W, self._has_pnoise, X, 1,
                                   self._workspace())
        if bad != -1:
            raise self._bad(bad, "x0", x0, "U")
        return X

    def jacobians(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact Jacobians of the deterministic discrete step.

        Returns ``A[B, n, n] = d x_next / d x`` and ``B[B, n, m] = d x_next / d u``,
        differentiating through the integrator and its substeps. Where a control is clipped
        (or a velocity clipped, or a joint at its stop) the corresponding derivative is 0.
        """
        x = self._batch(x, "x", self.state_dim)
        u = self._batch(u, "u", self.control_dim)
        if x.shape[0] != u.shape[0]:
            raise ValueError(f"x and u need the same batch size, got x {x.shape}, u {u.shape}")
        B = x.shape[0]
        A = np.empty((B, self.state_dim, self.state_dim))
        Bu = np.empty((B, self.state_dim, self.control_dim))
        bad = self._jacobian_kernel(self.kernel_params, x, u, A, Bu,
                                    self._workspace())
        if bad != -1:
            raise self._bad(bad, "x", x, "u")
        return A, Bu


def mechanical_section(constant_force, curl, field) -> np.ndarray:
    """Validate the end-point force-field options and return the kernel field block.

    The end-point force is ``F = constant_force + K p_dot`` with ``K = field`` (2 x 2,
    N s/m) or, for a curl field, ``K = [[0, curl], [-curl, 0]]``.
    """
    f0 = V.as_finite_array(constant_force, "constant_force", (2,))
    c = V.scalar(curl, "curl")
    if field is not None:
        if c != 0.0:
            raise ValueError("give either curl or field, not both")
        k = V.as_finite_array(field, "field", (2, 2))
    else:
        k = np.array([[0.0, c], [-c, 0.0]])
    return field_block(f0, k)


def position_field_section(position_field, field_origin) -> np.ndarray:
    """Validate the position-dependent end-point force and return its kernel block
    ``[P00, P01, P10, P11, p0x, p0y]``: the hand force gains ``P (p - p0)`` (N), with
    ``P = position_field`` (2 x 2, N/m; ``None``: zero) and ``p0 = field_origin`` (m).

    A force channel is ``P = -k n n^T`` with the channel's unit normal ``n`` (see
    :func:`plants.tasks.force_channel`).
    """
    P = (np.zeros((2, 2)) if position_field is None
         else V.as_finite_array(position_field, "position_field", (2, 2)))
    o = V.as_finite_array(field_origin, "field_origin", (2,))
    return np.concatenate([P.ravel(), o])
