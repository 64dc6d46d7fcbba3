"""What a controller senses of the plant: named sensory channels, each a differentiable map
of the state with its own delay and noise.

An :class:`Observation` is the map

    ``o(x) = L x + Rc cos(A x) + Rs sin(A x) + c``

for a state ``x`` of ``n`` entries: a linear part ``L [p, n]``, ``r`` angles ``A x``
(``A [r, n]``) seen through their cosines and sines (``Rc``, ``Rs [p, r]``), and an offset
``c [p]``. It covers a selection of state entries (``L`` rows of the identity), a
pendulum's ``(cos theta, sin theta, theta_dot)`` (the form :class:`Observation` takes with
``linear`` and ``angles``), and the exact hand position of a planar arm: with link angles
``phi_a = q_1 + ... + q_a`` (``A``: rows of ones over the joint angles), the hand is
``sum_a l_a cos phi_a``, ``sum_a l_a sin phi_a`` (``Rc``, ``Rs``: the link lengths). Its
Jacobian is exact: ``L - Rc diag(sin(A x)) A + Rs diag(cos(A x)) A``.

A :class:`Channel` is a named observation with a delay (steps: the network at step ``t``
senses the channel's map of ``x_{t - delay}``, of ``x_0`` before the start) and the
standard deviation of its Gaussian noise. :class:`Senses` stacks channels into what the
network reads, row by row: each row keeps its channel's delay and noise, and the closed
loop's compiled and NumPy paths read every row at its own step.

:func:`arm_senses` builds the channels motor-control models give an arm (MotorNet's
``Environment``, Feedbax's ``MuscledArm``): proprioception (joint angles and velocities)
and vision (the hand position), with delays and noise from the literature (see its
docstring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from plants.senses import ARM_SENSES, delay_steps

__all__ = ["ARM_SENSE_DEFAULTS", "Channel", "Observation", "Senses", "arm_senses"]


def _matrix(value: Any, name: str, shape: tuple[int | None, int | None]) -> np.ndarray:
    """A finite float64 matrix of ``shape`` (None: any size)."""
    arr = np.asarray(value, dtype=np.float64) if value is not None else None
    if arr is None or arr.ndim != 2 or any(s is not None and s != a
                                           for s, a in zip(shape, arr.shape, strict=True)):
        want = "x".join("?" if s is None else str(s) for s in shape)
        got = None if arr is None else arr.shape
        raise ValueError(f"observation: {name} must be a matrix of shape [{want}], got {got}")
    if not np.isfinite(arr).all():
        raise ValueError(f"observation: {name} must be finite")
    return np.ascontiguousarray(arr)


class Observation:
    """``o(x) = L x + Rc cos(A x) + Rs sin(A x) + c`` for a state of ``n`` entries.

    The constructor builds the common form ``[S x, cos x_a, sin x_a for a in angles]``;
    :meth:`general` takes the four matrices and the offset.

    Parameters
    ----------
    n : int
        The state's length.
    linear : "state", sequence of int, ndarray [q, n], or None
        The linear rows: the whole state (default), the state entries with these indices,
        or a matrix ``S``; None for none.
    angles : sequence of int
        State entries observed as ``(cos, sin)`` pairs (after the linear rows, all the
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
                S = _matrix(arr, "linear", (None, self.n))
            else:
                raise TypeError(f"observation: linear must be 'state', a list of integer state "
                                f"indices or a matrix [p, {self.n}], got {linear!r}")
        angles = self._indices(np.asarray(list(angles), dtype=np.int64), "angles")
        q, k = S.shape[0], angles.size
        p = q + 2 * k
        L = np.zeros((p, self.n))
        L[:q] = S
        A = np.eye(self.n)[angles].reshape(k, self.n)
        Rc, Rs = np.zeros((p, k)), np.zeros((p, k))
        Rc[q + np.arange(k), np.arange(k)] = 1.0
        Rs[q + k + np.arange(k), np.arange(k)] = 1.0
        self._set(L, A, Rc, Rs, np.zeros(p))

    @classmethod
    def general(cls, L: Any, A: Any = None, Rc: Any = None, Rs: Any = None,
                c: Any = None) -> Observation:
        """``o(x) = L x + Rc cos(A x) + Rs sin(A x) + c`` from its matrices.

        Parameters
        ----------
        L : array_like [p, n]
            The linear part (zeros for none); its shape sets ``p`` and ``n``.
        A : array_like [r, n], optional
            The angles' rows (none by default).
        Rc, Rs : array_like [p, r], optional
            How each output row weighs the angles' cosines and sines (zeros by default).
        c : array_like [p], optional
            A constant offset (zeros by default).
        """
        L = _matrix(L, "L", (None, None))
        p, n = L.shape
        # no angles: None, or [] (how JSON keeps a [0, n] matrix)
        A = np.zeros((0, n)) if A is None or np.size(A) == 0 else _matrix(A, "A", (None, n))
        r = A.shape[0]
        Rc = np.zeros((p, r)) if Rc is None else _matrix(Rc, "Rc", (p, r))
        Rs = np.zeros((p, r)) if Rs is None else _matrix(Rs, "Rs", (p, r))
        c = np.zeros(p) if c is None else np.asarray(c, dtype=np.float64)
        if c.shape != (p,) or not np.isfinite(c).all():
            raise ValueError(f"observation: c must be a finite vector of {p} (the rows of L), "
                             f"got shape {c.shape}")
        self = cls.__new__(cls)
        self.n = n
        self._set(L, A, Rc, Rs, c)
        return self

    def _set(self, L, A, Rc, Rs, c) -> None:
        self.L = np.ascontiguousarray(L, dtype=np.float64)
        self.A = np.ascontiguousarray(A, dtype=np.float64)
        self.Rc = np.ascontiguousarray(Rc, dtype=np.float64)
        self.Rs = np.ascontiguousarray(Rs, dtype=np.float64)
        self.c = np.ascontiguousarray(c, dtype=np.float64)
        self.size = self.L.shape[0]
        if self.size == 0:
            raise ValueError("observation: observes nothing (no rows)")

    def _indices(self, idx: np.ndarray, name: str) -> np.ndarray:
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise ValueError(f"observation: {name} indices must lie in 0..{self.n - 1}, "
                             f"got {idx.tolist()}")
        return idx.astype(np.int64)

    @classmethod
    def from_spec(cls, spec: Any, n: int) -> Observation:
        """An observation from ``"state"``, a list of indices, a matrix, a mapping
        ``{"linear": ..., "angles": [...]}``, a mapping ``{"L": ..., "A": ..., "Rc": ...,
        "Rs": ..., "c": ...}`` (:meth:`general`) or an :class:`Observation`."""
        if isinstance(spec, Observation):
            obs = spec
        elif isinstance(spec, Mapping) and "L" in spec:
            unknown = set(spec) - {"L", "A", "Rc", "Rs", "c"}
            if unknown:
                raise ValueError(f"observation: unknown keys {sorted(unknown)}; expected 'L', "
                                 f"'A', 'Rc', 'Rs' and 'c'")
            obs = cls.general(spec["L"], spec.get("A"), spec.get("Rc"), spec.get("Rs"),
                              spec.get("c"))
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"linear", "angles"}
            if unknown:
                raise ValueError(f"observation: unknown keys {sorted(unknown)}; expected "
                                 f"'linear' and 'angles' (or 'L', 'A', 'Rc', 'Rs', 'c')")
            obs = cls(n, spec.get("linear"), spec.get("angles", ()))
        else:
            obs = cls(n, spec)
        if obs.n != n:
            raise ValueError(f"observation is for a state of {obs.n} entries, the plant's "
                             f"has {n}")
        return obs

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description (inverse of :meth:`from_spec`)."""
        return {"L": self.L.tolist(), "A": self.A.tolist(), "Rc": self.Rc.tolist(),
                "Rs": self.Rs.tolist(), "c": self.c.tolist()}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``o(x)`` for states ``x[..., n]``: shape ``[..., size]``."""
        out = x @ self.L.T + self.c
        if self.A.shape[0]:
            ang = x @ self.A.T
            out = out + np.cos(ang) @ self.Rc.T + np.sin(ang) @ self.Rs.T
        return out

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """``d o / d x`` for states ``x[..., n]``: shape ``[..., size, n]``."""
        lead = x.shape[:-1]
        out = np.broadcast_to(self.L, lead + self.L.shape).copy()
        if self.A.shape[0]:
            ang = x @ self.A.T  # [..., r]
            # d/dx Rc cos(A x) = -Rc diag(sin(A x)) A; d/dx Rs sin(A x) = Rs diag(cos(A x)) A
            w = -self.Rc * np.sin(ang)[..., None, :] + self.Rs * np.cos(ang)[..., None, :]
            out += w @ self.A
        return out

    def __repr__(self) -> str:
        return f"Observation(n={self.n}, rows={self.size}, angles={self.A.shape[0]})"


@dataclass(frozen=True)
class Channel:
    """One sense: a named observation with its delay and noise.

    Parameters
    ----------
    name : str
        The channel's name (unique in a :class:`Senses`), e.g. ``"vision"``.
    observation : Observation
        What the channel reads of the state.
    delay : int
        Steps: at step ``t`` the network senses the channel's map of ``x_{t - delay}``
        (``x_0`` before the start).
    noise : float
        Standard deviation of the Gaussian noise added to each of its rows (the
        observation's units), drawn once per cached minibatch.
    """

    name: str
    observation: Observation
    delay: int = 0
    noise: float = 0.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"sensors: a channel's name must be a non-empty string, got "
                             f"{self.name!r}")
        if not isinstance(self.observation, Observation):
            raise TypeError(f"sensors: channel {self.name!r}: observation must be an "
                            f"hfcontrol.observation.Observation, got "
                            f"{type(self.observation).__name__}")
        d = self.delay
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise ValueError(f"sensors: channel {self.name!r}: delay must be a non-negative "
                             f"integer number of steps, got {d!r}")
        object.__setattr__(self, "delay", int(d))
        try:
            noise = float(self.noise)
        except (TypeError, ValueError):
            noise = np.nan
        if not (np.isfinite(noise) and noise >= 0):
            raise ValueError(f"sensors: channel {self.name!r}: noise must be a finite standard "
                             f"deviation >= 0, got {self.noise!r}")
        object.__setattr__(self, "noise", noise)

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description (see :meth:`Senses.from_spec`)."""
        return {"name": self.name, "observation": self.observation.spec(),
                "delay": self.delay, "noise": self.noise}


class Senses:
    """Channels stacked into what the network reads: their rows in order, each row with
    its channel's delay and noise.

    The stacked map is one :class:`Observation` (:attr:`observation`), whose angles are
    grouped by channel, so that every angle belongs to one channel and is read at that
    channel's step.

    Parameters
    ----------
    channels : sequence of Channel
        At least one; names unique; all for the same state length.
    """

    def __init__(self, channels: Sequence[Channel]):
        channels = list(channels)
        if not channels:
            raise ValueError("sensors: at least one channel is needed")
        for ch in channels:
            if not isinstance(ch, Channel):
                raise TypeError(f"sensors: expected hfcontrol.observation.Channel objects, got "
                                f"{type(ch).__name__}")
        names = [ch.name for ch in channels]
        dup = sorted({name for name in names if names.count(name) > 1})
        if dup:
            raise ValueError(f"sensors: channel names must be unique, {dup} repeat")
        n = channels[0].observation.n
        if any(ch.observation.n != n for ch in channels):
            raise ValueError(f"sensors: the channels observe states of different lengths "
                             f"({[ch.observation.n for ch in channels]})")
        self.channels = tuple(channels)
        self.n = n
        obs = [ch.observation for ch in channels]
        p = [o.size for o in obs]
        r = [o.A.shape[0] for o in obs]
        P, Rn = sum(p), sum(r)
        Rc, Rs = np.zeros((P, Rn)), np.zeros((P, Rn))
        i = j = 0
        for o in obs:  # block-diagonal: channel k's rows weigh only channel k's angles
            Rc[i:i + o.size, j:j + o.A.shape[0]] = o.Rc
            Rs[i:i + o.size, j:j + o.A.shape[0]] = o.Rs
            i, j = i + o.size, j + o.A.shape[0]
        self.observation = Observation.general(
            np.concatenate([o.L for o in obs]), np.concatenate([o.A for o in obs]), Rc, Rs,
            np.concatenate([o.c for o in obs]))
        #: delay of each row ``[p]`` and of each angle ``[r]`` (steps)
        self.row_delays = np.repeat([ch.delay for ch in channels], p).astype(np.int64)
        self.angle_delays = np.repeat([ch.delay for ch in channels], r).astype(np.int64)
        #: noise standard deviation of each row ``[p]``
        self.row_noise = np.repeat([ch.noise for ch in channels], p).astype(np.float64)
        bounds = np.concatenate([[0], np.cumsum(p)])
        #: the rows of each channel, by name
        self.rows = {ch.name: slice(int(bounds[k]), int(bounds[k + 1]))
                     for k, ch in enumerate(channels)}

    @property
    def size(self) -> int:
        """Rows the network reads."""
        return self.observation.size

    @property
    def max_delay(self) -> int:
        """The longest channel delay (steps)."""
        return int(self.row_delays.max())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(ch.name for ch in self.channels)

    def __getitem__(self, name: str) -> Channel:
        for ch in self.channels:
            if ch.name == name:
                return ch
        raise KeyError(f"no channel {name!r}; the channels are {list(self.names)}")

    @classmethod
    def from_spec(cls, spec: Any, n: int) -> Senses:
        """Senses from a :class:`Senses`, or a sequence of :class:`Channel` objects or
        mappings ``{"name", "observation", "delay", "noise"}`` (``observation`` as
        :meth:`Observation.from_spec` takes it)."""
        if isinstance(spec, Senses):
            out = spec
        else:
            if isinstance(spec, str | Mapping) or not isinstance(spec, Sequence):
                raise TypeError(f"sensors must be a list of channels, got {spec!r}")
            channels = []
            for item in spec:
                if isinstance(item, Mapping):
                    unknown = set(item) - {"name", "observation", "delay", "noise"}
                    if unknown or "name" not in item or "observation" not in item:
                        raise ValueError(f"sensors: a channel mapping needs 'name' and "
                                         f"'observation' (and optionally 'delay', 'noise'), "
                                         f"got keys {sorted(item)}")
                    item = Channel(item["name"],
                                   Observation.from_spec(item["observation"], n),
                                   item.get("delay", 0), item.get("noise", 0.0))
                channels.append(item)
            out = cls(channels)
        if out.n != n:
            raise ValueError(f"sensors observe a state of {out.n} entries, the plant's has {n}")
        return out

    def spec(self) -> list[dict[str, Any]]:
        """JSON-serialisable description (inverse of :meth:`from_spec`)."""
        return [ch.spec() for ch in self.channels]

    def at(self, X: np.ndarray, t: int) -> np.ndarray:
        """What the network senses at step ``t`` of states ``X [B, T + 1, n]``, without
        noise: each channel's map of ``x_{max(t - delay, 0)}``, shape ``[B, size]``."""
        return np.concatenate([ch.observation(X[:, max(t - ch.delay, 0)])
                               for ch in self.channels], axis=-1)

    def __repr__(self) -> str:
        parts = ", ".join(f"{ch.name}: {ch.observation.size} rows, delay {ch.delay}, "
                          f"noise {ch.noise:g}" for ch in self.channels)
        return f"Senses({parts})"


#: The default senses of an arm (:func:`arm_senses`): delays in seconds, noise standard
#: deviations in the channels' units (rad and rad/s; m); from
#: :data:`plants.senses.ARM_SENSES`, which the environments' senses share.
ARM_SENSE_DEFAULTS = {f"{sense}_{what}": value
                      for sense, pair in ARM_SENSES.items()
                      for what, value in zip(("delay", "noise"), pair, strict=True)}


def arm_senses(plant: Any, *, proprioception_delay: float | None = None,
               vision_delay: float | None = None, proprioception_noise: float | None = None,
               vision_noise: float | None = None,
               channels: Sequence[str] = ("proprioception", "vision")) -> list[Channel]:
    """The senses of a planar arm (:class:`plants.TwoLinkArm`, :class:`plants.ThreeLinkArm`,
    :class:`plants.MuscleArm`): proprioception and vision, each delayed and noisy.

    * ``"proprioception"``: the joint angles and velocities (rad, rad/s), the state's first
      ``2 N`` entries. Issue 13 allows them in place of MotorNet's normalised muscle lengths
      and velocities.
    * ``"vision"``: the hand position (m), exactly: ``sum_a l_a (cos phi_a, sin phi_a)``
      with ``phi_a = q_1 + ... + q_a`` (:meth:`plants.PlanarArm.hand_position`).

    The target and go cue are not senses here: they stay the task's inputs
    (``ClosedLoop(inputs=...)``), undelayed.

    Defaults, and where they come from:

    * proprioception 20 ms: the onset of the short-latency stretch response of arm
      muscles (20-50 ms after a perturbation; Pruszynski & Scott 2012, "Optimal feedback
      control and the long-latency stretch response", Exp Brain Res 218:341-359), the
      low end of the 20-30 ms that issue 13 asks for;
    * vision 70 ms: the low end of the 70-100 ms of issue 13; muscle responses to a jump
      of the seen hand (a cursor) during a reach start at about 90 ms ("Visual feedback
      processing of the limb involves two distinct phases", J Neurosci 2019, PMC6703887);
    * noise 1e-3 for both: the values MotorNet users pass to its ``Environment``
      (``proprioception_noise``, ``vision_noise``; MotorNet's own defaults are 0, and its
      default delays are one time step, ``motornet/environment.py``,
      github.com/OlivierCodol/MotorNet; its documentation example,
      ``examples/2-states.ipynb``, uses 30 and 90 ms). Here 1e-3 is in rad and rad/s for
      proprioception, in m (1 mm) for vision.

    Parameters
    ----------
    plant : PlanarArm or MuscleArm
        Any plant with ``n_links``, link ``lengths`` and ``dt`` whose state starts with
        the joint angles and velocities.
    proprioception_delay, vision_delay : float, optional
        Seconds, whole multiples of ``plant.dt``; default :data:`ARM_SENSE_DEFAULTS`.
    proprioception_noise, vision_noise : float, optional
        Standard deviations, >= 0; default :data:`ARM_SENSE_DEFAULTS`.
    channels : sequence of str
        The channels to build, from ``"proprioception"`` and ``"vision"``.

    Returns
    -------
    list of Channel
        For ``ClosedLoop(..., sensors=...)``.
    """
    for attr in ("n_links", "lengths", "dt", "state_dim"):
        if not hasattr(plant, attr):
            raise TypeError(f"plant: arm senses need a planar arm (n_links, lengths, dt); "
                            f"{type(plant).__name__} has no {attr}")
    given = {"proprioception_delay": proprioception_delay, "vision_delay": vision_delay,
             "proprioception_noise": proprioception_noise, "vision_noise": vision_noise}
    opt = {key: ARM_SENSE_DEFAULTS[key] if value is None else value
           for key, value in given.items()}
    for key in ("proprioception_noise", "vision_noise"):
        value = opt[key]
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating) \
                or not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{key} must be a finite standard deviation >= 0, got {value!r}")
    N, n, dt = int(plant.n_links), int(plant.state_dim), float(plant.dt)
    lengths = np.asarray(plant.lengths, dtype=np.float64)
    known = ("proprioception", "vision")
    if isinstance(channels, str):
        channels = (channels,)
    for name in channels:
        if name not in known:
            raise ValueError(f"channels: unknown channel {name!r}; an arm's channels are "
                             f"{list(known)}")
    if not channels:
        raise ValueError("channels: at least one channel is needed")
    out = []
    for name in channels:
        if name == "proprioception":
            obs = Observation(n, list(range(2 * N)))
            out.append(Channel(name, obs, delay_steps(opt["proprioception_delay"], dt,
                                                 "proprioception_delay"),
                               opt["proprioception_noise"]))
        else:
            A = np.zeros((N, n))
            A[:, :N] = np.tril(np.ones((N, N)))  # phi_a = q_1 + ... + q_a
            Rc, Rs = np.zeros((2, N)), np.zeros((2, N))
            Rc[0], Rs[1] = lengths, lengths
            obs = Observation.general(np.zeros((2, n)), A, Rc, Rs)
            out.append(Channel(name, obs, delay_steps(opt["vision_delay"], dt, "vision_delay"),
                               opt["vision_noise"]))
    return out
