"""Demonstrations, run as ``python -m hfcontrol.demos NAME [--out DIR] [--seed N] [--epochs N]``.

Each demo trains a network, prints its progress, and writes to ``DIR/NAME/``
a training-history figure (``history.png``), the metrics (``metrics.json``), the
history (``history.json``) and the trained network (``net.npz``, written by
``net.save``: ``hfcontrol.FFNet.load("DIR/NAME/net.npz")`` rebuilds it, the plant
demo's plant included); the ``plant`` demo also draws its trajectories.

* ``xor`` -- a 2-5-1 feedforward net learns XOR with Hessian-free optimisation.
* ``crossentropy`` -- softmax classifier of four Gaussian clusters, cross-entropy
  loss, classification error on held-out data.
* ``connections`` -- XOR again through skip connections (input straight to output).
* ``integrator`` -- a recurrent net learns to integrate its input over time.
* ``plant`` -- a recurrent controller drives a nonlinear plant to a target state.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import loss_funcs as lf
from . import nonlinearities as nl
from . import optimizers as opt
from .ffnet import FFNet, atomic_write_text
from .plotting import plot_history
from .rnnet import RNNet

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_TARGETS = np.array([[0], [1], [1], [0]], dtype=np.float32)


def _train_on_xor(net: FFNet, epochs: int | None, print_period: int | None):
    history = net.run_epochs(XOR_INPUTS, XOR_TARGETS, opt.HessianFree(CG_iter=100),
                             max_epochs=epochs or 40, target_err=1e-4,
                             print_period=print_period)
    return net, history, {"final_error": net.error(inputs=XOR_INPUTS, targets=XOR_TARGETS)}


def xor(rng: np.random.Generator, epochs: int | None = None, print_period: int | None = 10):
    """Train a 2-5-1 net on XOR; returns ``(net, history, metrics)``."""
    net = FFNet([2, 5, 1], layers=[nl.Linear(), nl.Tanh(), nl.Logistic()], rng=rng)
    return _train_on_xor(net, epochs, print_period)


def connections(rng: np.random.Generator, epochs: int | None = None,
                print_period: int | None = 10):
    """XOR through a 2-3-3-1 net with skip connections from the input to every layer."""
    net = FFNet([2, 3, 3, 1], layers=[nl.Linear(), nl.Tanh(), nl.Tanh(), nl.Logistic()],
                conns={0: [1, 2, 3], 1: [2], 2: [3]}, rng=rng)
    return _train_on_xor(net, epochs, print_period)


def crossentropy(rng: np.random.Generator, epochs: int | None = None,
                 print_period: int | None = 10):
    """Softmax classification of four 2-D Gaussian clusters with cross-entropy loss."""
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
    return net, history, {"test_classification_error": test_error,
                          "test_cross_entropy": net.error(inputs=test[0], targets=test[1])}


def integrator(rng: np.random.Generator, epochs: int | None = None,
               print_period: int | None = 10):
    """A recurrent net learns to output the running sum of its input."""
    batch, steps = 200, 20
    inputs = (0.2 * rng.standard_normal((batch, steps, 1))).astype(np.float32)
    targets = np.cumsum(inputs, axis=1)
    net = RNNet([1, 10, 1], layers=[nl.Linear(), nl.Logistic(), nl.Linear()], rng=rng,
                W_init_params={"init_type": "gaussian", "coeff": 0.5},
                W_rec_params={"init_type": "gaussian", "coeff": 0.5})
    history = net.run_epochs(inputs, targets, opt.HessianFree(CG_iter=100),
                             max_epochs=epochs or 50, print_period=print_period)
    return net, history, {"final_error": net.error(inputs=inputs, targets=targets),
                          "error_of_zero_output": float(0.5 * np.sum(targets ** 2) / batch)}


@nl.register
class DemoPlant(nl.Plant):
    r"""The demo plant: position and velocity with a state-dependent input gain.

    With state :math:`s = (p, v)` and control :math:`u = (u_0, u_1)`, in the
    row-vector form :math:`s' = s A + u B(s)` with :math:`A = [[1, 0], [0.2, 1]]`
    and :math:`B(s) = [[0, 0], [0, \tanh(p)]]`:

    .. math:: p' = p + 0.2 v, \qquad v' = v + \tanh(p)\, u_1

    The target is position 1 and velocity 0 at the last step only (NaN elsewhere).
    The plant is both the network's input (the current state) and its output
    nonlinearity (the control steps the plant; the output is the new state).
    Derivatives follow the plant's state from step to step; the state fed back
    to the network's input is treated as data.

    Parameters
    ----------
    batch : int
        Number of initial states, drawn from U(-0.5, 0.5) for each variable.
    steps : int
        Number of control steps.
    rng : numpy.random.Generator or int, optional
        Source of the initial states.
    init_states : array_like ``[batch, 2]``, optional
        The initial states themselves (then ``rng`` is not used); this is how a saved
        network restores its plant.
    """

    A = np.array([[1.0, 0.0], [0.2, 1.0]])

    def __init__(self, batch: int = 32, steps: int = 15, rng=None, init_states=None):
        super().__init__(stateful=True)
        self.shape = (int(batch), int(steps), 2)
        if init_states is None:
            self.init_states = np.random.default_rng(rng).uniform(-0.5, 0.5, (batch, 2))
        else:
            self.init_states = np.array(init_states, dtype=np.float64)
            if self.init_states.shape != (self.shape[0], 2):
                raise ValueError(f"init_states must have shape (batch, 2) = ({self.shape[0]}, 2), "
                                 f"got {self.init_states.shape}")
        self.target = np.array([1.0, 0.0])
        self.reset()

    def get_config(self) -> dict:
        return {"batch": self.shape[0], "steps": self.shape[1],
                "init_states": self.init_states.tolist()}

    def __repr__(self) -> str:
        return f"DemoPlant(batch={self.shape[0]}, steps={self.shape[1]})"

    def reset(self, init=None):
        self.state = np.array(self.init_states if init is None else init, dtype=np.float64)
        self._inputs: list[np.ndarray] = []
        self._prev_state = self.state

    def gain(self, state: np.ndarray) -> np.ndarray:
        """``B(s)`` for a batch of states, ``[batch, 2, 2]``."""
        B = np.zeros(state.shape[:-1] + (2, 2))
        B[..., 1, 1] = np.tanh(state[..., 0])
        return B

    def __call__(self, x):
        self._inputs.append(self.state.copy())
        return self.state

    def activation(self, x):
        self._prev_state = self.state
        u = np.asarray(x, dtype=np.float64)
        self.state = self.state @ self.A + np.einsum("bi,bij->bj", u, self.gain(self.state))
        return self.state.astype(x.dtype)

    def d_activation(self, x, a):
        prev = self._prev_state
        d = np.zeros(prev.shape + (2, 3))
        d[..., 0] = np.swapaxes(self.gain(prev), -1, -2)  # ds'_i/du_j = B(s)[j, i]
        d[..., 1] = self.A.T  # ds'_i/ds_j = A[j, i] + d(u B(s))_i / ds_j
        d[:, 1, 0, 1] += x[:, 1] / np.cosh(prev[:, 0]) ** 2
        d[..., 2] = np.eye(2)
        return d.astype(a.dtype)

    def get_vecs(self):
        inputs = np.stack(self._inputs, axis=1)
        targets = np.full(inputs.shape, np.nan)
        targets[:, -1] = self.target
        return inputs, targets


def plant(rng: np.random.Generator, epochs: int | None = None, print_period: int | None = 10):
    """Train a recurrent controller (2-32-2, Tanh hidden) on :class:`DemoPlant`."""
    demo_plant = DemoPlant(batch=32, steps=15, rng=rng)
    # sparse init with coeff 0.3 reached < 1e-3 within 300 updates from 11 of the seeds 0-11
    # (coeff 0.1: from 3 of the seeds 0-5)
    net = RNNet([2, 32, 2], layers=[nl.Linear(), nl.Tanh(), demo_plant], rng=rng,
                W_init_params={"coeff": 0.3}, W_rec_params={"coeff": 0.3})
    history = net.run_epochs(demo_plant, None, opt.HessianFree(CG_iter=100, init_damping=1),
                             max_epochs=epochs or 300, target_err=1e-4,
                             print_period=print_period)
    acts = net.forward(demo_plant)
    final = acts[-1][:, -1]
    metrics = {"final_step_squared_error": float(0.5 * np.sum((final - demo_plant.target) ** 2)
                                                 / final.shape[0]),
               "mean_final_position": float(final[:, 0].mean()),
               "mean_final_velocity": float(final[:, 1].mean())}
    return net, history, metrics


def plot_plant_trajectories(net: RNNet, demo_plant: DemoPlant, path: Path) -> None:
    """Position and velocity of every controlled trajectory, with the target."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    acts = net.forward(demo_plant)
    inputs, _ = demo_plant.get_vecs()
    states = np.concatenate([inputs[:, :1], acts[-1]], axis=1)
    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)  # headless, without pyplot or a change of the session's backend
    axes = fig.subplots(1, 2)
    for ax, i, label in ((axes[0], 0, "position"), (axes[1], 1, "velocity")):
        ax.plot(states[..., i].T, color="C0", alpha=0.4, lw=1)
        ax.plot(states.shape[1] - 1, demo_plant.target[i], "r*", ms=12, label="target")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle("plant demo: trained controller, 32 initial states")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


DEMOS: dict[str, Callable] = {"xor": xor, "crossentropy": crossentropy,
                              "connections": connections, "integrator": integrator,
                              "plant": plant}


def run(name: str, out: str | Path = "results", seed: int = 0, epochs: int | None = None,
        print_period: int | None = 10) -> dict:
    """Run demo ``name``, writing its figures, metrics and network under ``out/name``."""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; expected one of {sorted(DEMOS)}")
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    net, history, metrics = DEMOS[name](np.random.default_rng(seed), epochs, print_period)
    metrics.update(demo=name, seed=seed, updates=len(history["epoch"]),
                   wall_time_s=history["time"][-1])
    plot_history(history, folder / "history.png", title=f"{name} demo")
    if name == "plant":
        plot_plant_trajectories(net, net.layers[-1], folder / "trajectories.png")
    # DemoPlant is registered with nl.register, so the plant demo's network saves too
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
    args = parser.parse_args(argv)
    metrics = run(args.name, args.out, args.seed, args.epochs)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {Path(args.out) / args.name}/")
    return 0


if __name__ == "__main__":
    # run the importable module's main, so that a saved network names its plant class
    # hfcontrol.demos.DemoPlant (which FFNet.load can find), not __main__.DemoPlant
    from hfcontrol.demos import main as _main

    sys.exit(_main())
