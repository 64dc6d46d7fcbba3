"""The training loop: minibatches, history, best weights, progress, stopping, checkpoints.

:func:`train` trains any model that follows :class:`hfcontrol.model.Model` with any
optimiser (:mod:`hfcontrol.optimizers`). It knows nothing of networks: a minibatch is
whatever ``batches(update)`` returns, passed to ``model.cache_minibatch``.
``FFNet.run_epochs`` (the reference API) is a thin layer over it.

Stopping rules are small callables composed in a list, e.g.
``stop=[stop_below(1e-4), stop_after_seconds(60)]``.

Checkpoints
-----------
With ``checkpoint=PATH`` the loop writes, atomically, every ``checkpoint_every``
updates, at the end and when interrupted (Ctrl-C), one ``.npz`` file holding the
weights, the mask, the best weights, the optimiser's state (damping, CG warm start),
the states of the random generators and the history. ``train(..., resume=True)``
continues from it: the weights and the history of a resumed run are bit for bit those
of an uninterrupted one (the ``time`` column, wall-clock, excepted), as long as every
random draw of ``batches`` and of the model comes from the generators listed in
``rngs`` (by default the model's ``rng``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .model import check_model
from .optimizers import Optimizer
from .persistence import atomic_savez

__all__ = ["train", "TrainState", "TrainResult", "stop_below", "stop_after_seconds",
           "stop_on_plateau", "HISTORY_KEYS", "load_checkpoint"]

#: Columns of the history, one entry per update.
HISTORY_KEYS = ("epoch", "train_err", "test_err", "damping", "cg_iters", "l_rate", "time")
CHECKPOINT_VERSION = 1


@dataclass
class TrainState:
    """What callbacks and stopping rules see after each update."""

    update: int  #: index of the update just done (0-based)
    model: Any
    optimizer: Optimizer
    history: dict[str, list]
    train_err: float  #: error on the update's minibatch before the update
    test_err: float  #: the evaluation after the update
    best_error: float
    elapsed: float  #: wall seconds of training so far (across resumes)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    history: dict[str, list]
    best_W: np.ndarray
    best_error: float
    #: the stopping rule that ended training (None: the number of updates ran out)
    stopped_by: Callable | None = None
    extra: dict[str, Any] = field(default_factory=dict)


StopRule = Callable[[TrainState], bool]


def stop_below(target: float) -> StopRule:
    """Stop when the evaluated error falls below ``target``."""
    target = float(target)

    def rule(state: TrainState) -> bool:
        return state.test_err < target

    rule.__name__ = f"stop_below({target:g})"
    return rule


def stop_after_seconds(seconds: float) -> StopRule:
    """Stop after ``seconds`` of training (wall time, across resumes)."""
    seconds = float(seconds)

    def rule(state: TrainState) -> bool:
        return state.elapsed >= seconds

    rule.__name__ = f"stop_after_seconds({seconds:g})"
    return rule


def stop_on_plateau(patience: int, min_delta: float = 0.0) -> StopRule:
    """Stop when the best evaluated error has not improved by more than ``min_delta``
    for ``patience`` updates (computed from the history, so it survives a resume)."""
    if int(patience) < 1:
        raise ValueError(f"patience must be a positive number of updates, got {patience!r}")
    patience = int(patience)

    def rule(state: TrainState) -> bool:
        errs = state.history["test_err"]
        if len(errs) <= patience:
            return False
        before = min(errs[:-patience])
        return not min(errs[-patience:]) < before - min_delta

    rule.__name__ = f"stop_on_plateau({patience})"
    return rule


def train(model, optimizer: Optimizer, batches: Callable[[int], tuple], *, updates: int,
          evaluate: Callable[[], float] | None = None, stop: Sequence[StopRule] = (),
          callbacks: Sequence[Callable[[TrainState], Any]] = (),
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 10,
          resume: bool = False, rngs: Sequence[np.random.Generator] | None = None,
          progress: bool = True, print_period: int | None = None,
          restore_best: bool = False) -> TrainResult:
    """Train ``model`` with ``optimizer`` for up to ``updates`` updates.

    Each update: ``model.cache_minibatch(*batches(k))``, the error on that minibatch,
    ``optimizer.compute_update()``, the update added to ``model.W`` when it is finite
    (a rejected or non-finite step leaves the weights as they were), then
    ``evaluate()``; the weights with the lowest evaluation are kept as the best.

    Parameters
    ----------
    model : Model
        Anything following :class:`hfcontrol.model.Model`.
    optimizer : Optimizer
        Attached to the model here (``optimizer.net = model``) unless it already is.
    batches : callable
        ``batches(k) -> tuple``: the arguments of ``model.cache_minibatch`` for update
        ``k``. Draw any randomness from a generator in ``rngs``.
    updates : int
        The total number of updates (a resumed run continues up to this number).
    evaluate : callable, optional
        ``() -> float``: the error recorded as ``test_err`` after each update and used
        to pick the best weights (default: ``model.error()`` on the update's minibatch
        at the new weights). It is also evaluated on the starting weights, which are
        the first candidate for the best.
    stop : list of callables
        Stopping rules, ``rule(state) -> bool``; the first that returns True ends
        training (see :func:`stop_below`, :func:`stop_after_seconds`,
        :func:`stop_on_plateau`).
    callbacks : list of callables
        ``callback(state)`` after every update (after the checkpoint is written).
    checkpoint : path, optional
        Checkpoint file (``.npz``), written every ``checkpoint_every`` updates, at the
        end, and on KeyboardInterrupt (the state after the last completed update: one
        interrupted half-way is redone when resuming).
    checkpoint_every : int
        Updates between checkpoints.
    resume : bool
        Continue from ``checkpoint`` (which must exist).
    rngs : list of numpy.random.Generator, optional
        Generators whose states the checkpoint saves (default: ``[model.rng]`` if the
        model has one).
    progress : bool
        Show a ``tqdm`` progress bar.
    print_period : int, optional
        Also print a line of figures every this many updates.
    restore_best : bool
        Put the best weights back into ``model.W`` at the end (default: leave the final
        weights, as the reference package does).

    Returns
    -------
    TrainResult
        The history (per update: ``epoch``, ``train_err``, ``test_err``, ``damping``,
        ``cg_iters``, ``l_rate``, ``time``), the best weights and their error, and the
        stopping rule that ended training.
    """
    check_model(model)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an hfcontrol.optimizers.Optimizer, got {optimizer!r}")
    if not callable(batches):
        raise TypeError(f"batches must be a callable batches(k) -> arguments of "
                        f"cache_minibatch, got {batches!r}")
    if isinstance(updates, bool) or not isinstance(updates, int | np.integer) or updates < 1:
        raise ValueError(f"updates must be a positive integer, got {updates!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int | np.integer) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH")
    if optimizer.net is not model:
        optimizer.net = model
    if rngs is None:
        rng = getattr(model, "rng", None)
        rngs = [rng] if isinstance(rng, np.random.Generator) else []
    rngs = list(rngs)
    for i, g in enumerate(rngs):
        if not isinstance(g, np.random.Generator):
            raise TypeError(f"rngs[{i}] must be a numpy.random.Generator, got {g!r}")
    default_evaluation = evaluate is None
    if default_evaluation:
        def evaluate() -> float:
            return model.error()

    if resume:
        start, history, best_W, best_error, elapsed = _restore(checkpoint, model, optimizer, rngs)
    else:
        start, elapsed = 0, 0.0
        history = {key: [] for key in HISTORY_KEYS}
        best_W, best_error = model.W.copy(), np.inf
    stopped_by = None
    snapshot = None
    bar = tqdm(total=int(updates), initial=start, disable=not progress, unit="update",
               desc=type(optimizer).__name__, dynamic_ncols=True)
    t0 = time.perf_counter() - elapsed
    try:
        if start == 0 and not default_evaluation:
            # the starting weights are the first candidate: an update that makes things
            # worse must not be "restored" as the best weights
            initial = float(evaluate())
            best_error = initial if np.isfinite(initial) else np.inf
        for k in range(start, int(updates)):
            if checkpoint is not None:
                # only written on an interrupt; it copies the history, so it is not taken
                # (an O(updates) cost per update) when there is nowhere to write it
                snapshot = _snapshot(k, model, optimizer, rngs, history, best_W, best_error,
                                     time.perf_counter() - t0)
            model.cache_minibatch(*batches(k))
            train_err = float(model.error())
            if k == 0 and default_evaluation and np.isfinite(train_err):
                best_error = train_err  # the starting weights, on the first minibatch
            update = optimizer.compute_update(
                printing=bool(print_period) and k % int(print_period) == 0)
            if update is not None and np.all(np.isfinite(update)):
                model.W = model.W + update.astype(model.W.dtype, copy=False)
            err = float(evaluate())
            if err < best_error:
                best_error, best_W = err, model.W.copy()
            stats = optimizer.stats()
            elapsed = time.perf_counter() - t0
            row = {"epoch": k, "train_err": train_err, "test_err": err,
                   "damping": float(stats.get("damping", np.nan)),
                   "cg_iters": int(stats.get("cg_iters", 0)),
                   "l_rate": float(stats.get("l_rate", np.nan)), "time": elapsed}
            for key in HISTORY_KEYS:
                history[key].append(row[key])
            # from here on the live state is the consistent one, after update k
            snapshot = (k + 1, model, optimizer, rngs, history, best_W, best_error, elapsed)
            if checkpoint is not None and ((k + 1) % int(checkpoint_every) == 0
                                           or k + 1 == int(updates)):
                _write(checkpoint, k + 1, model, optimizer, rngs, history, best_W,
                       best_error, elapsed)
            bar.update(1)
            bar.set_postfix(train=f"{train_err:.3e}", test=f"{err:.3e}", refresh=False)
            if print_period and k % int(print_period) == 0:
                bar.write(f"update {k:4d}  train {train_err:.4e}  test {err:.4e}  "
                          + "  ".join(f"{name} {v:.3g}" for name, v in stats.items()))
            state = TrainState(k, model, optimizer, history, train_err, err, best_error,
                               elapsed)
            for callback in callbacks:
                callback(state)
            stopped_by = next((rule for rule in stop if rule(state)), None)
            if stopped_by is not None:
                if checkpoint is not None and (k + 1) % int(checkpoint_every) != 0:
                    _write(checkpoint, k + 1, model, optimizer, rngs, history, best_W,
                           best_error, elapsed)
                break
    except KeyboardInterrupt:
        if checkpoint is not None and snapshot is not None:
            _write(checkpoint, *snapshot)
        raise
    finally:
        bar.close()
    if restore_best:
        model.W = best_W.copy()
    return TrainResult(history, best_W, best_error, stopped_by)


def _snapshot(k, model, optimizer, rngs, history, best_W, best_error, elapsed):
    """The state before update ``k``, written if training is interrupted during it.
    Cheap: arrays are referenced, not copied (the loop replaces them, never edits them)."""
    return (k, _Frozen(model.W, getattr(model, "mask", None)), optimizer.state_dict(),
            [g.bit_generator.state for g in rngs], {key: list(v) for key, v in history.items()},
            best_W, best_error, elapsed)


@dataclass
class _Frozen:
    """The weights and mask of a model at a snapshot."""

    W: np.ndarray
    mask: np.ndarray | None


# ---------------------------------------------------------------------- checkpoint files
def _write(path, k, model, optimizer, rngs, history, best_W, best_error, elapsed) -> None:
    """Write a checkpoint atomically. ``model`` may be a :class:`_Frozen` snapshot, and
    ``optimizer`` / ``rngs`` states already taken (a dict / list of dicts)."""
    opt_state = optimizer if isinstance(optimizer, dict) else optimizer.state_dict()
    rng_states = [g if isinstance(g, dict) else g.bit_generator.state for g in rngs]
    arrays = {"W": model.W, "best_W": best_W}
    mask = getattr(model, "mask", None)
    if mask is not None:
        arrays["mask"] = mask
    opt_json = {}
    for key, value in opt_state.items():
        if isinstance(value, np.ndarray):
            arrays[f"optimizer.{key}"] = value
        else:
            opt_json[key] = value
    meta = {"version": CHECKPOINT_VERSION, "updates_done": int(k), "history": history,
            "best_error": best_error, "elapsed": elapsed, "optimizer": opt_json,
            "optimizer_class": type(optimizer).__name__ if not isinstance(optimizer, dict)
            else None, "rngs": rng_states}
    atomic_savez(path, meta=np.array(json.dumps(meta, default=_json_default)), **arrays)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"cannot write {type(value).__name__} to a checkpoint")


def _json_arrays(value):
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.array(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _json_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_arrays(v) for v in value]
    return value


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of a checkpoint written by :func:`train`: ``W``, ``mask``, ``best_W``,
    ``best_error``, ``history``, ``updates_done``, ``elapsed``, ``optimizer`` (state dict)
    and ``rngs`` (bit-generator states)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist (nothing to resume)")
    with np.load(path, allow_pickle=False) as data:
        if "meta" not in data:
            raise ValueError(f"{path} is not a training checkpoint (no 'meta' entry)")
        meta = json.loads(str(data["meta"]))
        arrays = {k: data[k].copy() for k in data.files if k != "meta"}
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {meta.get('version')!r}, expected "
                         f"{CHECKPOINT_VERSION}")
    opt_state = _json_arrays(meta["optimizer"])
    for key, value in arrays.items():
        if key.startswith("optimizer."):
            opt_state[key[len("optimizer."):]] = value
    return {"W": arrays["W"], "mask": arrays.get("mask"), "best_W": arrays["best_W"],
            "best_error": float(meta["best_error"]), "history": meta["history"],
            "updates_done": int(meta["updates_done"]), "elapsed": float(meta["elapsed"]),
            "optimizer": opt_state, "optimizer_class": meta["optimizer_class"],
            "rngs": _json_arrays(meta["rngs"])}


def _restore(path, model, optimizer, rngs):
    saved = load_checkpoint(path)
    if saved["W"].shape != model.W.shape or saved["W"].dtype != model.W.dtype:
        raise ValueError(f"checkpoint {path}: weights of shape {saved['W'].shape} and dtype "
                         f"{saved['W'].dtype} do not fit the model's {model.W.shape} "
                         f"{model.W.dtype}")
    if saved["optimizer_class"] not in (None, type(optimizer).__name__):
        raise ValueError(f"checkpoint {path} was written by a {saved['optimizer_class']}, "
                         f"not a {type(optimizer).__name__}")
    if len(saved["rngs"]) != len(rngs):
        raise ValueError(f"checkpoint {path} holds {len(saved['rngs'])} generator states, "
                         f"but {len(rngs)} generators were given")
    model.W = saved["W"]
    if saved["mask"] is not None or getattr(model, "mask", None) is not None:
        if hasattr(model, "set_mask"):
            model.set_mask(saved["mask"])
        else:
            model.mask = saved["mask"]
    optimizer.load_state_dict(saved["optimizer"])
    for g, state in zip(rngs, saved["rngs"], strict=True):
        g.bit_generator.state = state
    history = {key: list(saved["history"][key]) for key in HISTORY_KEYS}
    return (saved["updates_done"], history, saved["best_W"], saved["best_error"],
            saved["elapsed"])
