"""Layer nonlinearities.

Every nonlinearity maps a layer's summed input ``x`` to its activation ``a``
and reports the derivative needed by backpropagation and the Gauss-Newton
product:

* element-wise nonlinearities (``elementwise = True``) return ``da/dx`` with the
  shape of ``x``;
* non-element-wise ones (:class:`Softmax`, :class:`Plant`, or a user's nonlinearity
  that mixes units) return the full Jacobian ``J[..., i, j] = da_i / dx_j``: the
  output unit on the second-to-last axis, the input unit on the last, so that
  ``J @ dx`` is ``da``. This is the layout of ``hessianfree``, and it matters for a
  Jacobian that is not symmetric (e.g. ``activation(x) = np.roll(x, 1, axis=-1)``
  has ``J = np.roll(np.eye(n), 1, axis=0)``);
* stateful ones (:class:`Continuous`, :class:`Plant`) return ``(ds/dx,
  ds/ds_prev, da/ds)`` stacked on a last axis of size 3: the derivatives of the
  internal state with respect to the input and to the previous state, and of the
  output with respect to the state. Element-wise ones give ``[..., units, 3]``,
  others full Jacobians ``[..., units, units, 3]``, each in the layout above.

The networks tell the two forms apart by the number of dimensions of the
derivative, as ``hessianfree`` does, so a user nonlinearity that returns a full
Jacobian works without declaring anything; declaring ``elementwise = False`` is
still good practice, since compiled kernels (user ``njit_*`` kernels) and the base
of a :class:`Continuous` must be element-wise and are checked by that flag.

Built-in nonlinearities carry a small integer ``code`` and a parameter vector
so that compiled kernels can evaluate them (see ``../shared/DESIGN.md``).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = [
    "Nonlinearity",
    "Tanh",
    "Logistic",
    "Linear",
    "ReLU",
    "Gaussian",
    "Softmax",
    "SoftLIF",
    "Continuous",
    "Plant",
    "from_spec",
    "register",
]


class Nonlinearity:
    """Base class for layer nonlinearities.

    Parameters
    ----------
    stateful : bool
        True if the nonlinearity keeps internal state between time steps; it then
        returns ``(d_input, d_state, d_output)`` stacked on a last axis of size 3
        from :meth:`d_activation` (see :class:`Continuous`).
    """

    #: whether ``d_activation`` is element-wise (same shape as the input)
    elementwise: bool = True

    def __init__(self, stateful: bool = False):
        self.stateful = bool(stateful)

    def activation(self, x: np.ndarray) -> np.ndarray:
        """Apply the nonlinearity to the summed input ``x``."""
        raise NotImplementedError(f"{type(self).__name__} does not define activation()")

    def d_activation(self, x: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Derivative of the activation, given input ``x`` and output ``a``."""
        raise NotImplementedError(f"{type(self).__name__} does not define d_activation()")

    def reset(self, init: np.ndarray | None = None) -> None:
        """Reset internal state (no-op for stateless nonlinearities)."""

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving a network (JSON-serialisable)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Tanh(Nonlinearity):
    r"""Hyperbolic tangent, :math:`f(x) = \tanh(x)`."""

    code = 1

    def activation(self, x):
        return np.tanh(x)

    def d_activation(self, x, a):
        return 1 - a * a


class Logistic(Nonlinearity):
    r"""Logistic sigmoid, :math:`f(x) = 1 / (1 + e^{-x})`."""

    code = 2

    def activation(self, x):
        # scipy's expit is accurate in both tails (1 + tanh(x/2) would cancel for x << 0)
        return expit(x)

    def d_activation(self, x, a):
        return a * (1 - a)


class Linear(Nonlinearity):
    r"""Identity, :math:`f(x) = x`."""

    code = 0

    def activation(self, x):
        return x

    def d_activation(self, x, a):
        return np.ones_like(a)


class ReLU(Nonlinearity):
    r"""Rectified linear unit, :math:`f(x) = \min(\max(x, 0), \mathrm{max})`.

    Parameters
    ----------
    max : float
        Upper bound on the activation (guards against numerical blow-up).
    """

    code = 3

    def __init__(self, max: float = 1e10):  # noqa: A002 - name fixed by the reference API
        super().__init__()
        if not max > 0:
            raise ValueError(f"ReLU: max must be > 0, got {max!r}")
        self.max = float(max)

    def activation(self, x):
        return np.clip(x, 0, self.max)

    def d_activation(self, x, a):
        return ((x > 0) & (x < self.max)).astype(a.dtype)

    def get_config(self):
        return {"max": self.max}


class Gaussian(Nonlinearity):
    r"""Gaussian bump, :math:`f(x) = e^{-x^2}`."""

    code = 4

    def activation(self, x):
        return np.exp(-x * x)

    def d_activation(self, x, a):
        return -2 * x * a


class Softmax(Nonlinearity):
    r"""Softmax over the units of a layer, :math:`f(x)_i = e^{x_i} / \sum_j e^{x_j}`.

    :meth:`d_activation` returns the full Jacobian
    :math:`J_{ij} = a_i (\delta_{ij} - a_j)` with shape ``[..., units, units]``.
    """

    code = 5
    elementwise = False

    def activation(self, x):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    def d_activation(self, x, a):
        eye = np.eye(a.shape[-1], dtype=a.dtype)
        return a[..., :, None] * (eye - a[..., None, :])


class SoftLIF(Nonlinearity):
    r"""Firing rate of a leaky integrate-and-fire neuron driven by a soft-rectified current.

    .. math::

        j = \sigma \log(1 + e^{x / \sigma}), \qquad
        f(x) = \frac{amp}{\tau_{ref} + \tau_{RC} \log(1 + 1/j)}

    (Hunsberger & Eliasmith 2015, arXiv:1510.08829). It is computed in forms
    that stay finite for any ``x``: far below threshold the rate tends to zero like
    :math:`amp\, \sigma / (\tau_{RC} |x|)`, and far above it saturates at
    :math:`amp / \tau_{ref}`.

    Parameters
    ----------
    sigma : float
        Smoothness of the threshold.
    tau_rc : float
        Membrane RC time constant (s).
    tau_ref : float
        Refractory period (s).
    amp : float
        Output scale.
    """

    code = 6

    def __init__(self, sigma: float = 1, tau_rc: float = 0.02, tau_ref: float = 0.002,
                 amp: float = 0.01):
        super().__init__()
        for name, value in (("sigma", sigma), ("tau_rc", tau_rc), ("amp", amp)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"SoftLIF: {name} must be a finite number > 0, got {value!r}")
        if not (np.isfinite(tau_ref) and tau_ref >= 0):
            raise ValueError(f"SoftLIF: tau_ref must be a finite number >= 0, got {tau_ref!r}")
        self.sigma = float(sigma)
        self.tau_rc = float(tau_rc)
        self.tau_ref = float(tau_ref)
        self.amp = float(amp)

    def _current(self, x):
        # j = sigma * softplus(x / sigma); log(1 + 1/j) = log1p(1/j) = log(1 + j) - log(j)
        y = x / self.sigma
        j = self.sigma * np.logaddexp(0, y)
        # log(j) stays finite even where j underflows: log(softplus(y)) ~ y for y << 0
        log_j = np.where(y > -30, np.log(np.maximum(j, np.finfo(j.dtype).tiny)),
                         y + x.dtype.type(math.log(self.sigma)))
        return y, j, log_j

    def activation(self, x):
        y, j, log_j = self._current(x)
        log_term = np.logaddexp(0, -log_j)  # log(1 + 1/j), finite for any j > 0
        return self.amp / (self.tau_ref + self.tau_rc * log_term)

    def d_activation(self, x, a):
        # da/dx = amp * tau_rc / (den^2 * j * (1 + j)) * dj/dx, with dj/dx = logistic(x / sigma).
        # Written as a^2 * tau_rc / amp * logistic(y) / (j (1 + j)); for y << 0, logistic(y)/j -> 1/sigma.
        y, j, log_j = self._current(x)
        sig = expit(y)
        ratio = np.where(y > -30, sig / np.maximum(j, np.finfo(j.dtype).tiny),
                         x.dtype.type(1 / self.sigma))
        return a * a * x.dtype.type(self.tau_rc / self.amp) * ratio / (1 + j)

    def get_config(self):
        return {"sigma": self.sigma, "tau_rc": self.tau_rc, "tau_ref": self.tau_ref,
                "amp": self.amp}


class Continuous(Nonlinearity):
    r"""Continuous-time version of an element-wise nonlinearity.

    The layer input is low-pass filtered into a state ``s`` (forward Euler of
    :math:`\tau\, ds/dt = x - s`) and the output is the base nonlinearity of the state:

    .. math::

        s_t = s_{t-1} + \frac{dt}{\tau}(x_t - s_{t-1}), \qquad a_t = base(s_t)

    Parameters
    ----------
    base : Nonlinearity or str
        Element-wise output nonlinearity applied to the state.
    tau : float or array_like of float
        Time constant of the input filter (same units as ``dt``): one for every unit,
        or a 1-D array of per-unit time constants, as in continuous-time RNN models
        of motor cortex (its length must then be the layer's number of units, which
        the network checks). Every entry must be finite and satisfy ``tau >= dt``.
    dt : float
        Simulation time step.

    Attributes
    ----------
    tau : float or ndarray
        A float if a scalar was given, otherwise a read-only 1-D float64 array.
    coeff : float or ndarray
        ``dt / tau``, the fraction of the way the state moves to the input each
        step (an array for per-unit time constants).

    Notes
    -----
    Compiled kernels take a scalar ``tau`` only: a network with per-unit time
    constants runs on the NumPy path.
    """

    code = 7

    def __init__(self, base: Nonlinearity | str, tau: float | np.ndarray | list[float] = 1.0,
                 dt: float = 1.0):
        super().__init__(stateful=True)
        base = from_spec(base)
        if base.stateful or not base.elementwise:
            raise ValueError(f"Continuous: base must be a stateless element-wise nonlinearity, "
                             f"got {base!r}")
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"Continuous: dt must be a finite number > 0, got {dt!r}")
        self.base = base
        self.dt = float(dt)
        self.tau = _check_tau(tau, self.dt)
        self.coeff = self.dt / self.tau
        if not isinstance(self.coeff, float):
            self.coeff.flags.writeable = False
        self.state: np.ndarray | None = None

    @property
    def units(self) -> int | None:
        """Number of per-unit time constants, or None for a single scalar ``tau``."""
        return None if isinstance(self.tau, float) else int(self.tau.size)

    def reset(self, init: np.ndarray | None = None) -> None:
        """Reset the filter state to ``init`` (zeros, sized on first use, if None)."""
        self.state = None if init is None else np.array(init, copy=True)

    def _coeff(self, dtype):
        """``coeff`` in the activations' dtype (a float32 net stays float32)."""
        if isinstance(self.coeff, float):
            return self.coeff
        return self.coeff.astype(dtype, copy=False)

    def activation(self, x):
        if self.units is not None and x.shape[-1] != self.units:
            raise ValueError(f"Continuous: tau has {self.units} per-unit time constants but the "
                             f"layer input has {x.shape[-1]} units (shape {x.shape})")
        if self.state is None:
            self.state = np.zeros_like(x)
        elif self.state.shape != x.shape:
            raise ValueError(f"Continuous: the layer input has shape {x.shape} but the filter "
                             f"state has shape {self.state.shape}; pass init of that shape")
        self.state = self.state + self._coeff(x.dtype) * (x - self.state)
        return self.base.activation(self.state)

    def d_activation(self, x, a):
        d_out = self.base.d_activation(self.state, a)
        if np.ndim(d_out) > x.ndim:
            raise ValueError(f"Continuous: base {self.base!r} returned a derivative of shape "
                             f"{np.shape(d_out)} for input {x.shape}; the base must be "
                             f"element-wise")
        coeff = self._coeff(a.dtype)
        out = np.empty(x.shape + (3,), dtype=a.dtype)
        out[..., 0] = coeff
        out[..., 1] = 1 - coeff
        out[..., 2] = d_out
        return out

    def get_config(self):
        tau = self.tau if isinstance(self.tau, float) else self.tau.tolist()
        return {"base": spec_of(self.base), "tau": tau, "dt": self.dt}

    def __repr__(self) -> str:
        tau = self.tau if isinstance(self.tau, float) else self.tau.tolist()
        return f"Continuous({self.base!r}, tau={tau!r}, dt={self.dt!r})"


def _check_tau(tau, dt: float) -> float | np.ndarray:
    """``tau`` of :class:`Continuous`: a float for a scalar, else a read-only 1-D array."""
    if isinstance(tau, bool | np.bool_):
        raise TypeError(f"Continuous: tau must be a number or a 1-D array of numbers, got "
                        f"{tau!r}")
    if np.ndim(tau) == 0:
        try:
            value = float(tau)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Continuous: tau must be a number or a 1-D array of numbers, got "
                            f"{tau!r}") from exc
        if not (np.isfinite(value) and value >= dt):
            raise ValueError(f"Continuous: tau must be a finite number >= dt ({dt}), got {tau!r}")
        return value
    try:
        values = np.array(tau, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Continuous: tau must be a number or a 1-D array of numbers, got "
                        f"{tau!r}") from exc
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"Continuous: tau must be a number or a non-empty 1-D array of "
                         f"per-unit time constants, got shape {values.shape}")
    bad = ~(np.isfinite(values) & (values >= dt) & (values > 0))
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(f"Continuous: every entry of tau must be finite, positive and >= dt "
                         f"({dt}); tau[{first}] = {float(values[first])!r}")
    values.flags.writeable = False
    return values


class Plant(Nonlinearity):
    """Base class for a plant: a stateful input source and/or output layer.

    A plant generates a network's inputs as it runs. Used as the network's input
    (``net.forward(plant)``), the network calls it once per step with the output
    of its last layer on the previous step, ``[batch, output units]``, and feeds
    what it returns as that step's input. On the first step there is no previous
    output: as in ``hessianfree``, the plant then receives zeros of that shape (or
    the output layer's ``init_activations``, if the output layer is recurrent and
    they are given), never ``None``. Used as the nonlinearity of the output
    layer, its :meth:`activation` advances the plant state ``s`` with the layer's
    summed input as the control ``u`` and returns the new output, and its
    :meth:`d_activation` returns ``[batch, units, units, 3]``: the Jacobians
    ``ds'/du``, ``ds'/ds`` and ``da/ds'`` (the layer's size is both the control and
    the state dimension).

    In this reference semantics the plant's output that is fed back as the
    next input is treated as data: derivatives follow the plant's own state from
    step to step, but not the loop back through the network's input.

    Subclasses define ``shape = (batch, time, input_units)``, :meth:`__call__`,
    :meth:`get_vecs`, :meth:`reset`, and, to serve as an output layer,
    :meth:`activation` and :meth:`d_activation`.
    """

    elementwise = False

    def __init__(self, stateful: bool = True):
        super().__init__(stateful=stateful)
        self.shape: tuple[int, int, int] | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return this step's network input, given the network's output ``x`` of the previous
        step (zeros on the first step)."""
        raise NotImplementedError(f"{type(self).__name__} does not define __call__()")

    def get_vecs(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(inputs, targets)`` generated since the last reset, ``[batch, time, units]``."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_vecs()")

    def reset(self, init: np.ndarray | None = None) -> None:
        """Reset the plant to its initial state, or to ``init`` if given."""
        raise NotImplementedError(f"{type(self).__name__} does not define reset()")


_BUILTINS: dict[str, type[Nonlinearity]] = {
    cls.__name__: cls
    for cls in (Tanh, Logistic, Linear, ReLU, Gaussian, Softmax, SoftLIF, Continuous)
}


#: user classes that networks may save and load, by ``"module.QualName"`` (see :func:`register`)
_REGISTERED: dict[str, type[Nonlinearity]] = {}


def register(cls: type[Nonlinearity]) -> type[Nonlinearity]:
    """Class decorator: let networks that use this nonlinearity (or plant) be saved and loaded.

    ``cls().get_config()`` must return the keyword arguments that rebuild an
    equivalent instance, as JSON-serialisable values. A saved network names the
    class by module and qualified name, and :meth:`hfcontrol.FFNet.load` looks it up
    among the registered classes, so the module that defines it must have been
    imported before loading (modules of ``hfcontrol`` itself are imported on demand).
    Nothing is unpickled or executed from the file.

    Parameters
    ----------
    cls : type
        A subclass of :class:`Nonlinearity`.

    Returns
    -------
    type
        ``cls`` itself.
    """
    if not (isinstance(cls, type) and issubclass(cls, Nonlinearity)):
        raise TypeError(f"register: cls must be a subclass of Nonlinearity, got {cls!r}")
    _REGISTERED[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def _registered(module: str, name: str) -> type[Nonlinearity]:
    key = f"{module}.{name}"
    if key not in _REGISTERED and (module == "hfcontrol" or module.startswith("hfcontrol.")):
        importlib.import_module(module)  # our own modules register their classes on import
    if key not in _REGISTERED:
        raise ValueError(f"unknown nonlinearity {key!r}: import the module that defines it and "
                         f"decorate the class with hfcontrol.nonlinearities.register before "
                         f"loading")
    return _REGISTERED[key]


def from_spec(spec: Nonlinearity | str | dict) -> Nonlinearity:
    """Turn a nonlinearity, its class name (``"Tanh"``) or a saved spec into a nonlinearity."""
    if isinstance(spec, Nonlinearity):
        return spec
    if isinstance(spec, str):
        if spec not in _BUILTINS:
            raise ValueError(f"unknown nonlinearity {spec!r}; expected one of {sorted(_BUILTINS)}")
        return _BUILTINS[spec]()
    if isinstance(spec, dict) and "type" in spec:
        if "module" in spec:
            return _registered(str(spec["module"]), str(spec["type"]))(**spec.get("config", {}))
        if spec["type"] not in _BUILTINS:
            raise ValueError(f"unknown nonlinearity {spec['type']!r}; expected one of "
                             f"{sorted(_BUILTINS)}")
        return _BUILTINS[spec["type"]](**spec.get("config", {}))
    raise TypeError(f"a layer nonlinearity must be a Nonlinearity instance or a name such as "
                    f"'Tanh', got {spec!r}")


def spec_of(nl: Nonlinearity) -> dict[str, Any]:
    """JSON-serialisable description of a built-in or registered nonlinearity (inverse of
    :func:`from_spec`)."""
    cls = type(nl)
    if _BUILTINS.get(cls.__name__) is cls:
        return {"type": cls.__name__, "config": nl.get_config()}
    if _REGISTERED.get(f"{cls.__module__}.{cls.__qualname__}") is cls:
        return {"type": cls.__qualname__, "module": cls.__module__, "config": nl.get_config()}
    raise TypeError(f"cannot save custom nonlinearity {nl!r}: only built-in nonlinearities "
                    f"({sorted(_BUILTINS)}) and classes registered with "
                    f"hfcontrol.nonlinearities.register can be saved")
