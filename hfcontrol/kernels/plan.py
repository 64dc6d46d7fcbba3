"""The array description of a network for the compiled kernels (:class:`Plan`).

Plain Python: it builds the arrays once per network (cached on the net, rebuilt when a
layer changes) and defines the integer constants the kernels branch on. The kernel
modules import those constants by name -- module-level ints are compile-time constants
for numba -- so this module, and :mod:`hfcontrol.nonlinearities` from which the
nonlinearity codes are read, are part of what the compiled kernels depend on
(:mod:`._cache_guard`).
"""

from __future__ import annotations

import numpy as np

from .. import nonlinearities as nl

# meta columns
M_N, M_REC, M_CODE, M_STATEFUL, M_RSTART, M_RMID, M_REND = range(7)
N_META = 7
#: prm columns: the nonlinearity's parameters, then (from P_COEFF) one ``Continuous``
#: filter coefficient per unit of the layer
P_COEFF = 4

#: The built-in nonlinearities the kernels implement, by exact type: the one table of
#: codes, read from the classes' ``code`` attributes.
BUILTIN_CODES: dict[type, int] = {cls: cls.code for cls in (
    nl.Linear, nl.Tanh, nl.Logistic, nl.ReLU, nl.Gaussian, nl.Softmax, nl.SoftLIF)}
LINEAR = nl.Linear.code
TANH = nl.Tanh.code
LOGISTIC = nl.Logistic.code
RELU = nl.ReLU.code
GAUSSIAN = nl.Gaussian.code
SOFTMAX = nl.Softmax.code
SOFTLIF = nl.SoftLIF.code
#: a user nonlinearity with compiled element-wise kernels (``njit_activation``,
#: ``njit_d_activation``); after every class code (``Continuous`` included)
USER = 1 + max(max(BUILTIN_CODES.values()), nl.Continuous.code)


def layer_params(layer, n: int | None = None) -> tuple[int, int, list[float]] | None:
    """``(code, stateful, params)`` of a layer, or None if it needs the NumPy path.

    ``params`` holds the nonlinearity's four parameters and, for a ``Continuous`` layer
    of ``n`` units, its ``n`` filter coefficients (a scalar ``coeff`` repeated, or the
    per-unit array). Raises ValueError if a ``Continuous`` layer's coefficient array does
    not have ``n`` entries.
    """
    stateful = 0
    coeff = None
    if type(layer) is nl.Continuous:
        stateful, coeff, layer = 1, layer.coeff, layer.base
    code = BUILTIN_CODES.get(type(layer))
    if code is None and _user_kernels(layer) is not None:
        code = USER
    if code is None or (stateful and code == SOFTMAX):
        return None
    p = [0.0] * P_COEFF
    if code == RELU:
        p[0] = layer.max
    elif code == SOFTLIF:
        p[:4] = [layer.sigma, layer.tau_rc, layer.tau_ref, layer.amp]
    if coeff is not None:
        coeffs = np.asarray(coeff, np.float64)
        if coeffs.ndim == 0:
            coeffs = np.full(1 if n is None else n, float(coeffs))
        elif coeffs.ndim != 1 or (n is not None and coeffs.shape[0] != n):
            raise ValueError(f"Continuous.coeff has shape {coeffs.shape}, but the layer has "
                             f"{n} units: need a scalar or one coefficient per unit")
        p += coeffs.tolist()
    return code, stateful, p


def _user_kernels(layer):
    """``(njit_activation, njit_d_activation)`` of a user's element-wise nonlinearity, or None."""
    f = getattr(layer, "njit_activation", None)
    df = getattr(layer, "njit_d_activation", None)
    if f is None or df is None or not layer.elementwise or layer.stateful:
        return None
    return f, df


def _user_pairs(net) -> set:
    pairs = set()
    for layer in net.layers:
        if type(layer) is nl.Continuous:
            layer = layer.base
        if type(layer) not in BUILTIN_CODES:
            pair = _user_kernels(layer)
            if pair is not None:
                pairs.add(pair)
    return pairs


class Plan:
    """Array description of a network for the kernels (see :mod:`.forward`).

    Parameters
    ----------
    net : FFNet or RNNet
        A network whose every layer has a compiled kernel (:func:`compilable`).

    Raises
    ------
    ValueError
        If a ``Continuous`` layer's per-unit ``coeff`` does not have one entry per unit.
    """

    def __init__(self, net):
        rec_layers = getattr(net, "rec_layers", [])
        L = net.n_layers
        self.meta = np.zeros((L, N_META), np.int64)
        rows = []
        for l, layer in enumerate(net.layers):
            try:
                code, stateful, p = layer_params(layer, int(net.shape[l]))
            except ValueError as err:
                raise ValueError(f"layer {l} ({layer!r}, {net.shape[l]} units): {err}") from None
            self.meta[l, M_N] = net.shape[l]
            self.meta[l, M_CODE] = code
            self.meta[l, M_STATEFUL] = stateful
            rows.append(p)
            if l in rec_layers:
                self.meta[l, M_REC] = 1
                self.meta[l, M_RSTART:M_REND + 1] = net.offsets[(l, l)]
        self.prm = np.zeros((L, max(len(p) for p in rows)), np.float64)
        for l, p in enumerate(rows):
            self.prm[l, :len(p)] = p
        ff = [(pre, post) for pre, posts in net.conns.items() for post in posts]
        self.conns = np.array([[pre, post, *net.offsets[(pre, post)]] for pre, post in ff],
                              np.int64).reshape(-1, 5)
        self.sizes = list(net.shape)
        self.n_params = int(net.n_params)
        self.recurrent = bool(np.any(self.meta[:, M_REC] != 0))
        pairs = _user_pairs(net)
        self.user = next(iter(pairs)) if pairs else None
        self._offsets: dict[int, np.ndarray] = {}
        self._zeros: dict = {}

    def offsets(self, rows: int) -> np.ndarray:
        """Offsets of the layers' ``[rows, n]`` blocks in a flat buffer (``L + 1`` entries)."""
        offs = self._offsets.get(rows)
        if offs is None:
            offs = np.concatenate([[0], np.cumsum(np.asarray(self.sizes, np.int64) * rows)])
            self._offsets[rows] = offs
        return offs

    def zeros(self, B: int, dtype) -> np.ndarray:
        """A shared all-zero ``[B, n]``-per-layer block (the default initial values; the
        kernels never write their ``init_act``/``init_state``)."""
        key = (B, np.dtype(dtype))
        buf = self._zeros.get(key)
        if buf is None:
            buf = np.zeros(int(self.offsets(B)[-1]), dtype)
            self._zeros[key] = buf
        return buf


def _layer_key(layer) -> tuple:
    """Everything :class:`Plan` reads from a layer: its type, numeric parameters
    (``ReLU.max``, SoftLIF's constants, ``Continuous.coeff``, a scalar or per-unit array),
    flags, user kernels and, for a ``Continuous``, the same of its base."""
    d = layer.__dict__
    key = (type(layer), d.get("stateful"), d.get("elementwise"),
           getattr(layer, "njit_activation", None), getattr(layer, "njit_d_activation", None),
           *[v for v in d.values() if isinstance(v, int | float | np.number)])
    coeff = d.get("coeff")
    if isinstance(coeff, np.ndarray):  # per-unit coefficients (not ``state``, also an array)
        key += (coeff.dtype.str, coeff.shape, coeff.tobytes())
    base = d.get("base")
    return key if base is None else key + _layer_key(base)


def plan_for(net) -> Plan | None:
    """The net's :class:`Plan`, or None if a layer has no compiled kernel.

    Cached on the net and rebuilt when a layer is replaced or one of its parameters
    changes (:func:`_layer_key`); sizes, connections and recurrent layers are fixed
    when a network is constructed. Truncation and backend are not part of a Plan.
    """
    key = tuple([_layer_key(layer) for layer in net.layers])
    cached = net.__dict__.get("_plan_cache")
    if cached is not None and cached[0] == key:
        return cached[1]
    plan = Plan(net) if _compilable(net) else None
    net.__dict__["_plan_cache"] = (key, plan)
    return plan


def compilable(net) -> bool:
    """True if every layer of ``net`` has a compiled kernel.

    Built-in nonlinearities always do; a user's element-wise nonlinearity does if it
    has ``njit_activation(x)`` and ``njit_d_activation(x, a)`` (numba-jitted scalar
    functions), and at most one such pair is used per network.
    """
    return plan_for(net) is not None


def _compilable(net) -> bool:
    return (all(layer_params(layer) is not None for layer in net.layers)
            and len(_user_pairs(net)) <= 1)


def init_block(plan: Plan, values, B: int, dtype) -> np.ndarray:
    """Per-layer ``[B, n]`` initial values (None entries allowed) as one flat buffer
    (a shared zero block when all are None)."""
    if values is None or all(value is None for value in values):
        return plan.zeros(B, dtype)
    offs = plan.offsets(B)
    buf = np.zeros(int(offs[-1]), dtype)
    for l, value in enumerate(values):
        if value is not None:
            buf[offs[l]:offs[l + 1]] = np.asarray(value, dtype).reshape(-1)
    return buf


def windows_array(windows) -> np.ndarray:
    """Truncation windows ``(low, first_injected, end)`` as an int64 ``[n, 3]`` array."""
    return np.asarray(windows, np.int64).reshape(-1, 3)
