"""A network's parameters: the layer sizes and connections, their place in the flat
vector ``W``, and weight initialisation.

Every connection ``(pre, post)`` owns a block of ``W``: a ``[pre_units, post_units]``
weight matrix (row-major) followed by a ``[post_units]`` bias, in the order the
network lists its connections (feedforward connections by ``pre``, then ``post``;
recurrent connections ``(l, l)`` after them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Conn", "DEFAULT_W_INIT", "SPARSE_FAN_IN", "check_shape", "check_conns", "layout",
           "init_spec", "init_weights", "is_index"]

Conn = tuple[int, int]

DEFAULT_W_INIT = {"init_type": "sparse", "coeff": 1.0, "biases": 0.0}
SPARSE_FAN_IN = 15  # Martens (2010): each unit gets 15 non-zero incoming weights


def is_index(value) -> bool:
    """True for an integer (Python or NumPy) that is not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_shape(shape) -> list[int]:
    """Layer sizes as a list of positive ints (at least an input and an output layer)."""
    try:
        sizes = [int(s) for s in shape]
    except TypeError as exc:
        raise TypeError(f"shape must be a sequence of layer sizes, got {shape!r}") from exc
    if len(sizes) < 2:
        raise ValueError(f"shape must list at least an input and an output layer, got {shape}")
    if any(s < 1 for s in sizes) or any(s != float(x) for s, x in zip(sizes, shape, strict=True)):
        raise ValueError(f"shape must contain positive integers, got {list(shape)}")
    return sizes


def check_conns(conns: Mapping[int, Sequence[int]] | None, n_layers: int) -> dict[int, list[int]]:
    """Feedforward connections ``{pre: [post, ...]}``, checked and sorted (default: a chain).

    Each goes from a lower to a higher layer, none is listed twice, and every layer but
    the input receives one.
    """
    if conns is None:
        return {i: [i + 1] for i in range(n_layers - 1)}
    if not isinstance(conns, Mapping):
        raise TypeError(f"conns must be a dict {{pre: [post, ...]}}, got {conns!r}")
    out: dict[int, list[int]] = {}
    for pre, posts in conns.items():
        if not is_index(pre):
            raise TypeError(f"conns: keys must be integer layer indices (pre-synaptic "
                            f"layers), got {pre!r}")
        pre = int(pre)
        if not isinstance(posts, Sequence) or isinstance(posts, str):
            raise TypeError(f"conns[{pre}] must be a list of post-synaptic layers, "
                            f"got {posts!r}")
        for post in posts:
            if not is_index(post):
                raise TypeError(f"conns[{pre}] must list integer layer indices, got "
                                f"{post!r}")
            post = int(post)
            if not (0 <= pre < n_layers and 0 <= post < n_layers):
                raise ValueError(f"conns: connection {pre} -> {post} names a layer outside "
                                 f"0..{n_layers - 1}")
            if post <= pre:
                raise ValueError(f"conns: connection {pre} -> {post} goes backward or to "
                                 f"itself; connections must go from a lower to a higher "
                                 f"layer (use RNNet rec_layers for recurrence)")
            out.setdefault(pre, [])
            if post in out[pre]:
                raise ValueError(f"conns: connection {pre} -> {post} is listed twice")
            out[pre].append(post)
    for posts in out.values():
        posts.sort()
    for layer in range(1, n_layers):
        if not any(layer in posts for posts in out.values()):
            raise ValueError(f"conns: layer {layer} receives no connection")
    return dict(sorted(out.items()))


def layout(shape: Sequence[int], conns: Sequence[Conn]
           ) -> tuple[dict[Conn, tuple[int, int, int]], int]:
    """``(offsets, n_params)``: each connection's ``(start, mid, end)`` in ``W`` (weights
    ``start:mid``, bias ``mid:end``), in the order of ``conns``, and the total size."""
    offsets: dict[Conn, tuple[int, int, int]] = {}
    offset = 0
    for pre, post in conns:
        n_w = shape[pre] * shape[post]
        offsets[(pre, post)] = (offset, offset + n_w, offset + n_w + shape[post])
        offset += n_w + shape[post]
    return offsets, offset


def init_spec(params_spec: Mapping[str, Any] | None, name: str) -> tuple[str, float, float]:
    """``(init_type, coeff, biases)`` of a weight-initialisation dict, checked."""
    spec = dict(DEFAULT_W_INIT)
    if params_spec is not None:
        if not isinstance(params_spec, Mapping):
            raise TypeError(f"{name} must be a dict with keys {sorted(DEFAULT_W_INIT)}, "
                            f"got {params_spec!r}")
        unknown = set(params_spec) - set(DEFAULT_W_INIT)
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)}; expected "
                             f"{sorted(DEFAULT_W_INIT)}")
        spec.update(params_spec)
    init_type = spec["init_type"]
    if init_type not in ("sparse", "uniform", "gaussian"):
        raise ValueError(f"{name}: init_type must be 'sparse', 'uniform' or 'gaussian', "
                         f"got {init_type!r}")
    values = []
    for key in ("coeff", "biases"):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer
                                                    | np.floating):
            raise TypeError(f"{name}: {key} must be a real number, got {value!r}")
        if not np.isfinite(value):
            raise ValueError(f"{name}: {key} must be finite, got {value!r}")
        values.append(float(value))
    return init_type, values[0], values[1]


def init_weights(W: np.ndarray, conns: Sequence[Conn],
                 get_weights: Callable[[np.ndarray, Conn], tuple[np.ndarray, np.ndarray]],
                 params_spec: Mapping[str, Any] | None, rng: np.random.Generator,
                 name: str) -> np.ndarray:
    """Initialise the weights and biases of ``conns`` in ``W``, in place, from ``params_spec``.

    ``"sparse"`` is Martens' per-unit initialisation: each unit gets ``SPARSE_FAN_IN``
    non-zero N(0, coeff^2) weights drawn from all its incoming connections in ``conns``
    together (all of them if it has fewer inputs); ``"uniform"`` is U(-coeff, coeff) /
    sqrt(fan-in) and ``"gaussian"`` N(0, coeff^2) / sqrt(fan-in), with the fan-in of
    each connection. Biases are set to ``biases``.
    """
    init_type, coeff, biases = init_spec(params_spec, name)
    if init_type == "sparse":
        by_post: dict[int, list[Conn]] = {}
        for conn in conns:
            by_post.setdefault(conn[1], []).append(conn)
        for group in by_post.values():
            blocks = [get_weights(W, conn)[0] for conn in group]
            starts = np.cumsum([0] + [w.shape[0] for w in blocks])
            fan_in = int(starts[-1])
            for j in range(blocks[0].shape[1]):
                rows = rng.choice(fan_in, size=min(SPARSE_FAN_IN, fan_in), replace=False)
                values = coeff * rng.standard_normal(len(rows))
                which = np.searchsorted(starts, rows, side="right") - 1
                for block, row, value in zip(which, rows, values, strict=True):
                    blocks[block][row - starts[block], j] = value
    for conn in conns:
        w, b = get_weights(W, conn)
        fan_in = w.shape[0]
        if init_type == "uniform":
            w[:] = coeff * rng.uniform(-1, 1, w.shape) / np.sqrt(fan_in)
        elif init_type == "gaussian":
            w[:] = coeff * rng.standard_normal(w.shape) / np.sqrt(fan_in)
        b[:] = biases
    return W
