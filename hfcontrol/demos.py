"""Demonstrations, callable as functions or run as
``python -m hfcontrol.demos NAME [--out DIR] [--seed N] [--epochs N]``.

The functions follow the ``hessianfree`` reference package's ``demos``:
``xor(use_hf=True)``, ``crossentropy()``, ``connections()``,
``integrator(model_args=None, run_args=None, n_inputs=15, sig_len=10, plots=True)``,
``adding(T=50, plots=True)``, ``plant(plots=True)`` and
``profile(name, max_epochs=1)``. Each also takes keyword-only ``rng`` (a
Generator, a RandomState or an int seed; default 0), ``epochs`` (overrides the
number of updates), ``print_period`` and ``out``, and returns ``(net, history,
metrics)``. With ``plots=True`` figures are written, headless, to ``out/NAME/``
(``history.png`` and a figure of the trained network's signals) and never shown.

The command line writes to ``DIR/NAME/`` a training-history figure
(``history.png``), the metrics (``metrics.json``), the history (``history.json``)
and the trained network (``net.npz``, written by ``net.save``:
``hfcontrol.FFNet.load("DIR/NAME/net.npz")`` rebuilds it); the ``plant`` demo writes
its controller (``controller.npz``, read by ``hfcontrol.Controller.load``) and draws
its trajectories.

* ``xor`` -- a 2-5-1 feedforward net learns XOR with Hessian-free optimisation.
* ``crossentropy`` -- softmax classifier of four Gaussian clusters, cross-entropy
  loss, classification error on held-out data.
* ``connections`` -- XOR again through skip connections (input straight to output).
* ``integrator`` -- a recurrent net learns to integrate its input over time.
* ``adding`` -- the adding problem (Hochreiter & Schmidhuber 1997): a long
  sequence of random numbers, two of them marked; output their sum at the end.
* ``plant`` -- a recurrent controller drives a nonlinear plant to a target state, in a
  closed loop (:class:`hfcontrol.ClosedLoop`) with ``plants.LinearPlant.demo()``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import loss_funcs as lf
from . import nonlinearities as nl
from . import optimizers as opt
from ._validation import as_rng
from .ffnet import FFNet
from .persistence import atomic_write_text
from .plotting import plot_history, plot_signals
from .rnnet import RNNet

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_TARGETS = np.array([[0], [1], [1], [0]], dtype=np.float32)

Rng = np.random.Generator | np.random.RandomState | int | None
Result = tuple[FFNet, dict[str, list], dict[str, Any]]


def _legacy_rng(first, rng: Rng, name: str):
    """Accept the former calling convention ``demo(rng, epochs, print_period)``.

    A Generator or RandomState given where the reference signature has ``name`` (a flag
    or a dict) is the random source of an old-style call: it is used as ``rng`` (with a
    DeprecationWarning) and ``name`` gets the value the old call implied (None).
    """
    if isinstance(first, np.random.Generator | np.random.RandomState):
        warnings.warn(f"passing the random generator first is deprecated; the first argument "
                      f"is now {name!r} (as in hessianfree): pass rng=... by keyword",
                      DeprecationWarning, stacklevel=3)
        return None, first
    return first, rng


def _figures(name: str, out: str | Path, history: Mapping, signals: Mapping | None = None,
             targets: Mapping | None = None) -> Path:
    """Write a demo's figures (headless) to ``out/name/`` and say where."""
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    plot_history(history, folder / "history.png", title=f"{name} demo")
    if signals:
        plot_signals(signals, folder / "signals.png", title=f"{name} demo: trained network",
                     targets=targets)
    print(f"wrote figures to {folder}/")
    return folder


def _print_xor(net: FFNet, print_period: int | None) -> None:
    if print_period:
        outputs = net.forward(XOR_INPUTS)[-1]
        for x, t, y in zip(XOR_INPUTS, XOR_TARGETS, outputs, strict=True):
            print(f"input {x}  target {t}  output {y}")


def _train_on_xor(net: FFNet, epochs: int | None, print_period: int | None,
                  use_hf: bool = True):
    if use_hf:
        history = net.run_epochs(XOR_INPUTS, XOR_TARGETS, opt.HessianFree(CG_iter=100),
                                 max_epochs=epochs or 40, target_err=1e-4,
                                 print_period=print_period)
    else:
        history = net.run_epochs(XOR_INPUTS, XOR_TARGETS, opt.SGD(l_rate=1),
                                 max_epochs=epochs or 10000, target_err=1e-4,
                                 print_period=print_period and 1000)
    _print_xor(net, print_period)
    return net, history, {"final_error": net.error(inputs=XOR_INPUTS, targets=XOR_TARGETS)}


def xor(use_hf: bool = True, *, rng: Rng = 0, epochs: int | None = None,
        print_period: int | None = 10, plots: bool = False, out: str | Path = "results") -> Result:
    """Train a 2-5-1 net (Tanh hidden, Logistic output) on XOR.

    Parameters
    ----------
    use_hf : bool
        Hessian-free optimisation (up to 40 updates) if True, otherwise stochastic
        gradient descent (``SGD(l_rate=1)``, up to 10000 updates) for comparison.
    rng : Generator, RandomState or int
        Random source (default seed 0).
    epochs : int, optional
        Number of updates instead of the default.
    print_period : int or None
        Progress printing period (None: silent).
    plots : bool
        Write ``out/xor/history.png``.
    out : path
        Folder for the figures.

    Returns
    -------
    net, history, metrics
        The trained network, ``run_epochs``' history and ``{"final_error": ...}``.
    """
    use_hf, rng = _legacy_rng(use_hf, rng, "use_hf")
    net = FFNet([2, 5, 1], layers=[nl.Linear(), nl.Tanh(), nl.Logistic()], rng=as_rng(rng))
    result = _train_on_xor(net, epochs, print_period, use_hf is None or bool(use_hf))
    if plots:
        _figures("xor", out, result[1])
    return result


def connections(*, rng: Rng = 0, epochs: int | None = None, print_period: int | None = 10,
                plots: bool = False, out: str | Path = "results") -> Result:
    """XOR through a 2-3-3-1 net with skip connections from the input to every layer.

    Keyword arguments and return value as in :func:`xor`.
    """
    net = FFNet([2, 3, 3, 1], layers=[nl.Linear(), nl.Tanh(), nl.Tanh(), nl.Logistic()],
                conns={0: [1, 2, 3], 1: [2], 2: [3]}, rng=as_rng(rng))
    result = _train_on_xor(net, epochs, print_period)
    if plots:
        _figures("connections", out, result[1])
    return result


def crossentropy(*, rng: Rng = 0, epochs: int | None = None, print_period: int | None = 10,
                 plots: bool = False, out: str | Path = "results") -> Result:
    """Softmax classification of four 2-D Gaussian clusters with cross-entropy loss.

    400 training and 400 held-out points; the history's test error is the
    classification error on the held-out points. Keyword arguments as in
    :func:`xor`; the metrics are ``test_classification_error`` and ``test_cross_entropy``.
    """
    rng = as_rng(rng)
    centres = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float32)

    def sample(n):
        labels = rng.integers(0, 4, n)
        x = centres[labels] + 0.5 * rng.standard_normal((n, 2)).astype(np.float32)
        return x, np.eye(4, dtype=np.float32)[labels]

    train, test = sample(400), sample(400)
    net = FFNet([2, 10, 4], layers=[nl.Linear(), nl.Tanh(), nl.Softmax()],
                loss_type=lf.CrossEntropy(), rng=rng)
    history = net.run_epochs(*train, opt.HessianFree(CG_iter=50), max_epochs=epochs or 20,
                             test=test, test_err=lf.ClassificationError(),
                             print_period=print_period)
    test_error = lf.ClassificationError().batch_loss(net.forward(test[0]), test[1])
    if plots:
        _figures("crossentropy", out, history)
    return net, history, {"test_classification_error": test_error,
                          "test_cross_entropy": net.error(inputs=test[0], targets=test[1])}


def integrator(model_args: Mapping[str, Any] | None = None,
               run_args: Mapping[str, Any] | None = None, n_inputs: int = 15, sig_len: int = 10,
               plots: bool = True, *, rng: Rng = 0, epochs: int | None = None,
               print_period: int | None = 10, out: str | Path = "results") -> Result:
    """A recurrent net learns to output the running sum of its input.

    The inputs are ``n_inputs`` sequences of ``sig_len`` steps of N(0, 0.2^2) noise;
    the target is their cumulative sum.

    Parameters
    ----------
    model_args : dict, optional
        Keyword arguments of :class:`~hfcontrol.RNNet` that replace the default network
        (1-10-1, Logistic hidden layer, Linear output; ``rng`` is added if absent).
    run_args : dict, optional
        Keyword arguments of ``run_epochs``; ``CG_iter`` (default 100) and
        ``init_damping`` (default 1) go to the optimiser.
    n_inputs : int
        Number of training sequences.
    sig_len : int
        Number of time steps.
    plots : bool
        Write ``out/integrator/history.png`` and ``signals.png`` (inputs, targets, outputs).
    rng, epochs, print_period, out
        As in :func:`xor`.

    Returns
    -------
    net, history, metrics
        ``metrics`` has ``final_error`` and ``error_of_zero_output`` (the error of a
        network that outputs zeros, for scale).
    """
    model_args, rng = _legacy_rng(model_args, rng, "model_args")
    rng = as_rng(rng)
    n_inputs, sig_len = _positive_int(n_inputs, "n_inputs"), _positive_int(sig_len, "sig_len")
    inputs = (0.2 * rng.standard_normal((n_inputs, sig_len, 1))).astype(np.float32)
    targets = np.cumsum(inputs, axis=1)
    if model_args is None:
        net = RNNet([1, 10, 1], layers=[nl.Linear(), nl.Logistic(), nl.Linear()], rng=rng,
                    W_init_params={"init_type": "gaussian", "coeff": 0.5},
                    W_rec_params={"init_type": "gaussian", "coeff": 0.5})
    else:
        net = RNNet(**{"rng": rng, **model_args})
    run = {"max_epochs": epochs or 50, "print_period": print_period, **(run_args or {})}
    optimizer = opt.HessianFree(CG_iter=run.pop("CG_iter", 100),
                                init_damping=run.pop("init_damping", 1))
    history = net.run_epochs(inputs, targets, optimizer, **run)
    if plots:
        _figures("integrator", out, history,
                 {"inputs": inputs, "targets": targets, "outputs": net.forward(inputs)[-1]})
    return net, history, {"final_error": net.error(inputs=inputs, targets=targets),
                          "error_of_zero_output": float(0.5 * np.sum(targets ** 2) / n_inputs)}


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def adding_problem(n: int, T: int, rng: Rng = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of the adding problem (Hochreiter & Schmidhuber 1997).

    Each of the ``n`` sequences has ``T`` steps of two inputs: a U(0, 1) value and a
    marker, 1 at two steps and 0 elsewhere. As in ``hessianfree``, the first marked step
    is among the first ``T // 10`` steps and the second among steps ``T // 10`` to
    ``T // 2 - 1``. The target is the sum of the two marked values at the last step
    (NaN elsewhere: no error there).

    Returns
    -------
    inputs : ndarray ``[n, T, 2]``, float32
    targets : ndarray ``[n, T, 1]``, float32
    """
    n, T = _positive_int(n, "n"), _positive_int(T, "T")
    if T < 10:
        raise ValueError(f"T must be at least 10 (the first marker is among the first T // 10 "
                         f"steps), got {T}")
    rng = as_rng(rng)
    values = rng.uniform(0, 1, (n, T)).astype(np.float32)
    rows = np.arange(n)
    first = rng.integers(0, T // 10, n)
    second = rng.integers(T // 10, T // 2, n)
    markers = np.zeros((n, T), np.float32)
    markers[rows, first] = 1
    markers[rows, second] = 1
    targets = np.full((n, T, 1), np.nan, np.float32)
    targets[:, -1, 0] = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), targets


def adding(T: int = 50, plots: bool = True, *, rng: Rng = 0, epochs: int | None = None,
           print_period: int | None = 1, out: str | Path = "results",
           n_sequences: int = 10000, minibatch_size: int = 1024) -> Result:
    """The adding problem, a test of long-range dependencies (Martens & Sutskever 2011).

    The settings are those of ``hessianfree``'s demo: 10000 sequences (90% for training,
    10% held out), a 2-32-64-1 net (Linear, ReLU, a continuous-time ReLU layer with
    ``tau = 20`` steps that is the only recurrent one, ReLU output), initial weights with
    ``coeff = 0.25`` and the recurrent matrix scaled to spectral radius 1, structural
    damping 1e-4 on the recurrent layer, ``HessianFree(CG_iter=60, init_damping=20)``,
    minibatches of 1024 and 5 updates.

    Parameters
    ----------
    T : int
        Sequence length (at least 10).
    plots : bool
        Write ``out/adding/history.png`` and ``signals.png`` (outputs of 20 held-out
        sequences over time, their targets as markers at the last step).
    rng, epochs, print_period, out
        As in :func:`xor` (``epochs`` defaults to 5).
    n_sequences : int
        Number of sequences, training and held-out together.
    minibatch_size : int
        Training sequences per update.

    Returns
    -------
    net, history, metrics
        ``metrics``: ``test_error`` (squared error on the held-out sequences, summed over
        the output and divided by their number), ``error_of_constant_output`` (that of
        always answering 1, the mean sum), ``test_fraction_within_0.04`` (the share of
        held-out sums answered within 0.04, Hochreiter & Schmidhuber's criterion).
    """
    rng = as_rng(rng)
    n_sequences = _positive_int(n_sequences, "n_sequences")
    inputs, targets = adding_problem(n_sequences, T, rng)
    cut = int(n_sequences * 0.9)
    if cut < 1 or cut == n_sequences:
        raise ValueError(f"n_sequences must leave at least one training and one held-out "
                         f"sequence, got {n_sequences}")
    test = (inputs[cut:], targets[cut:])
    optimizer = opt.HessianFree(CG_iter=60, init_damping=20)
    net = RNNet([2, 32, 64, 1],
                layers=[nl.Linear(), nl.ReLU(), nl.Continuous(nl.ReLU(), tau=20), nl.ReLU()],
                W_init_params={"coeff": 0.25},
                loss_type=[lf.SquaredError(),
                           lf.StructuralDamping(1e-4, layers=[2], optimizer=optimizer)],
                rec_layers=[2], rng=rng)
    w_rec, _ = net.get_weights(net.W, (2, 2))  # a view: scaled in place
    w_rec *= 1.0 / np.max(np.abs(np.linalg.eigvals(w_rec)))
    history = net.run_epochs(inputs[:cut], targets[:cut], optimizer,
                             minibatch_size=min(int(minibatch_size), cut), test=test,
                             test_err=lf.SquaredError(), max_epochs=epochs or 5,
                             print_period=print_period)
    outputs = net.forward(test[0])[-1][:, -1, 0]
    answers = test[1][:, -1, 0]
    if plots:
        _figures("adding", out, history, {"outputs": net.forward(test[0][:20])[-1]},
                 {"outputs": test[1][:20]})
    return net, history, {
        "test_error": float(0.5 * np.sum((outputs - answers) ** 2) / answers.size),
        "error_of_constant_output": float(0.5 * np.sum((1 - answers) ** 2) / answers.size),
        "test_fraction_within_0.04": float(np.mean(np.abs(outputs - answers) < 0.04)),
        "T": int(T)}


def plant(plots: bool = True, *, rng: Rng = 0, epochs: int | None = None,
          print_period: int | None = 10, out: str | Path = "results",
          feedback: str = "exact") -> Result:
    """Train a recurrent controller in a closed loop with the reference package's demo plant.

    The plant is :meth:`plants.LinearPlant.demo`: state ``s = (p, v)``, control
    ``u = (u_0, u_1)``, ``p' = p + 0.2 v``, ``v' = v + tanh(p) u_1`` (in the reference's
    row form ``s' = s A + u B(s)``, ``A = [[1, 0], [0.2, 1]]``). 32 initial states are
    drawn once from U(-0.5, 0.5)^2; the target is position 1, velocity 0 at step 15
    (:meth:`plants.tasks.StateTarget.demo`). A 2-32-2 RNN senses the state and outputs
    the control (:class:`~hfcontrol.ClosedLoop`); Hessian-free optimisation, stopping at a
    final-step squared error of 1e-4.

    Parameters
    ----------
    plots : bool
        Write ``out/plant/history.png`` and ``trajectories.png``.
    rng, epochs, print_period, out
        As in :func:`xor` (``epochs`` defaults to 300).
    feedback : {"exact", "data"}
        Differentiate through the fed-back state (the default) or treat it as data, as
        the reference package does (see :class:`~hfcontrol.ClosedLoop`).

    Returns
    -------
    controller, history, metrics
        A :class:`~hfcontrol.Controller`; ``metrics``: ``final_step_squared_error``
        (half the squared distance to the target at the last step, averaged over the 32
        episodes), ``mean_final_position``, ``mean_final_velocity``, and
        ``heldout_final_step_squared_error`` on a 6 x 6 grid of initial states.
    """
    from plants.tasks import StateTarget, TaskBatch

    from .closed_loop import ClosedLoop
    from .controller import Controller
    from .training import stop_below, train

    plots, rng = _legacy_rng(plots, rng, "plots")
    rng = as_rng(rng)
    task = StateTarget.demo()
    batch = task.sample(32, rng=rng)
    loop = ClosedLoop(task.plant, task, hidden=32, feedback=feedback, inputs="none", rng=rng,
                      W_init_params={"init_type": "gaussian", "coeff": 1.0},
                      W_rec_params={"init_type": "gaussian", "coeff": 0.5})

    def final_states(episodes) -> np.ndarray:
        return loop.rollout(episodes, noise=False, cost=False).states[:, -1]

    def final_step_error(states) -> float:
        return float(0.5 * np.sum((states - task.target) ** 2) / states.shape[0])

    result = train(loop, opt.HessianFree(CG_iter=100, init_damping=1), lambda k: (batch,),
                   updates=epochs or 300, evaluate=lambda: final_step_error(final_states(batch)),
                   stop=[stop_below(1e-4)], progress=False, print_period=print_period)
    final = final_states(batch)
    grid = np.linspace(-0.45, 0.45, 6)
    x0 = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    heldout = TaskBatch(x0, task.sample(x0.shape[0], seed=0).targets)
    metrics = {"final_step_squared_error": final_step_error(final),
               "mean_final_position": float(final[:, 0].mean()),
               "mean_final_velocity": float(final[:, 1].mean()),
               "heldout_final_step_squared_error": final_step_error(final_states(heldout)),
               "feedback": feedback}
    controller = Controller(loop)
    if plots:
        folder = _figures("plant", out, result.history)
        plot_plant_trajectories(controller, batch, folder / "trajectories.png")
    return controller, result.history, metrics


def plot_plant_trajectories(controller, batch, path: Path) -> None:
    """Position and velocity of every controlled trajectory, with the target."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    states = controller.rollout(batch).states
    target = controller.task.target
    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)  # headless, without pyplot or a change of the session's backend
    axes = fig.subplots(1, 2)
    for ax, i, label in ((axes[0], 0, "position"), (axes[1], 1, "velocity")):
        ax.plot(states[..., i].T, color="C0", alpha=0.4, lw=1)
        ax.plot(states.shape[1] - 1, target[i], "r*", ms=12, label="target")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"plant demo: trained controller, {states.shape[0]} initial states")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


DEMOS: dict[str, Callable] = {"xor": xor, "crossentropy": crossentropy,
                              "connections": connections, "integrator": integrator,
                              "adding": adding, "plant": plant}

#: the command line's sizes where they differ from the function's (reference) defaults
CLI_ARGS: dict[str, dict[str, Any]] = {"integrator": {"n_inputs": 200, "sig_len": 20}}


def profile(name: str, max_epochs: int = 1, use_GPU: bool = False, cprofile: bool = True,
            *, top: int = 20) -> pstats.Stats:
    """Run demo ``name`` under cProfile and print the ``top`` entries by own time.

    Parameters
    ----------
    name : str
        One of the demos (:data:`DEMOS`), e.g. ``"integrator"``.
    max_epochs : int
        Number of updates to run.
    use_GPU : bool
        Must be False (there is no GPU path); accepted for ``hessianfree`` compatibility.
    cprofile : bool
        Must be True (the CUDA profiler of ``hessianfree`` does not apply).
    top : int
        Number of entries printed.

    Returns
    -------
    pstats.Stats
        The profile, for further sorting or printing.
    """
    if name not in DEMOS:
        raise ValueError(f"profile: unknown demo {name!r}; expected one of {sorted(DEMOS)}")
    if use_GPU:
        raise ValueError("profile: use_GPU=True is not supported (hfcontrol has no GPU path)")
    if not cprofile:
        raise ValueError("profile: cprofile=False (the CUDA profiler) is not supported; "
                         "hfcontrol profiles with cProfile")
    epochs = _positive_int(max_epochs, "max_epochs")
    kwargs: dict[str, Any] = {"epochs": epochs, "print_period": None, "plots": False}
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        DEMOS[name](**kwargs)
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(int(top))
    return stats


def run(name: str, out: str | Path = "results", seed: int = 0, epochs: int | None = None,
        print_period: int | None = 10, **options: Any) -> dict:
    """Run demo ``name``, writing its figures, metrics and network under ``out/name``
    (``options`` go to the demo function, e.g. ``feedback="data"`` for ``plant``)."""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; expected one of {sorted(DEMOS)}")
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    net, history, metrics = DEMOS[name](rng=np.random.default_rng(seed), epochs=epochs,
                                        print_period=print_period, plots=False,
                                        **CLI_ARGS.get(name, {}), **options)
    metrics.update(demo=name, seed=seed, updates=len(history["epoch"]),
                   wall_time_s=history["time"][-1])
    plot_history(history, folder / "history.png", title=f"{name} demo")
    if name == "plant":
        # the plant demo's model is a Controller (a network in a closed loop)
        plot_plant_trajectories(net, net.task.sample(32, rng=np.random.default_rng(seed)),
                                folder / "trajectories.png")
        net.save(folder / "controller.npz")
    else:
        net.save(folder / "net.npz")
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(folder / "history.json", json.dumps(history, default=float))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfcontrol.demos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(DEMOS), help="which demo to run")
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="override the number of updates")
    parser.add_argument("--feedback", choices=("exact", "data"), default=None,
                        help="plant demo only: differentiate through the fed-back state "
                             "(exact, the default) or treat it as data (the reference's way)")
    args = parser.parse_args(argv)
    if args.feedback is not None and args.name != "plant":
        parser.error("--feedback applies to the plant demo only")
    options = {} if args.feedback is None else {"feedback": args.feedback}
    metrics = run(args.name, args.out, args.seed, args.epochs, **options)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {Path(args.out) / args.name}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
