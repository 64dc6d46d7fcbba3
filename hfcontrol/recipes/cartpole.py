"""Cart-pole recipes: balancing the pole upright with the cart centred."""

from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from .. import figures
from .. import optimizers as opt
from ..closed_loop import ClosedLoop
from ..rnnet import RNNet
from ._base import Phase, Recipe, check_seed

__all__ = ["cartpole_balance", "balanced", "TRACK", "MAX_ANGLE"]

#: Half-length of the track (m), as ``plants/CartPoleBalance-v0`` and CartPole-v1 (whose
#: episodes end when the cart passes it).
TRACK = 2.4
#: CartPole-v1's failure angle, 12 degrees (its episodes end beyond it).
MAX_ANGLE = 12 * 2 * np.pi / 360


def balanced(states: np.ndarray) -> np.ndarray:
    """Per episode ``states [B, T + 1, 4]``: the pole within 12 degrees of upright and the
    cart within the track (``|x| < 2.4`` m) at every step (CartPole-v1's criterion)."""
    ok = (np.abs(states[:, :, 2]) < MAX_ANGLE) & (np.abs(states[:, :, 0]) < TRACK)
    return ok.all(axis=1)


def _heldout(spread: float, horizon: int):
    """The 3^4 = 81 starts with every coordinate in ``{-spread, 0, spread}`` (the corners
    of the training distribution's box are its hardest starts)."""
    from plants.tasks import TaskBatch

    x0 = np.array(list(product((-spread, 0.0, spread), repeat=4)))
    return TaskBatch(x0, np.zeros((x0.shape[0], horizon, 4)))


def cartpole_balance(seed: int = 0, *, hidden: int = 32, batch: int = 32,
                     updates: int = 120, spread: float = 0.1, feedback: str = "exact",
                     dtype: Any = np.float64) -> Recipe:
    """Balancing the cart-pole (CartPole-v1's constants, a continuous force within 10 N,
    a track of 2.4 m with end stops, dt 20 ms) for 10 s.

    The network senses the state (x, x_dot, theta, theta_dot) and outputs the force through
    a tanh (times 10 N); the cost is ``plants.tasks.Balance``'s (the squared state at every
    step and at the end, and a little effort). Starts are drawn from ``[-spread,
    spread]^4`` (0.1, twice CartPole-v1's reset range). A curriculum over the horizon: a
    third of the updates on 2 s episodes, the rest on 5 s. Held out: the 81 starts of the
    grid ``{-spread, 0, spread}^4``, run for 10 s (500 steps); success is CartPole-v1's
    criterion (pole within 12 degrees, cart on the track, at every step). The weights
    kept are the best on 64 validation starts drawn with a seed of their own.
    """
    import plants
    from plants.tasks import Balance

    seed = check_seed(seed)
    options = {"hidden": hidden, "batch": batch, "updates": updates, "spread": spread,
               "feedback": feedback, "dtype": np.dtype(dtype).name}
    if isinstance(updates, bool) or not isinstance(updates, int | np.integer) or updates < 2:
        raise ValueError(f"updates must be an integer >= 2 (two phases), got {updates!r}")
    if not np.isfinite(spread) or not 0 < spread < 0.5:
        raise ValueError(f"spread must be in (0, 0.5) (a start range, m, m/s, rad, rad/s), "
                         f"got {spread!r}")
    cart = plants.CartPole(joint_limits=((-TRACK, -np.inf), (TRACK, np.inf)))
    rng = np.random.default_rng(seed)
    net = RNNet([4, hidden, 1], layers=["Linear", "Tanh", "Tanh"], rng=rng, dtype=dtype,
                W_init_params={"init_type": "gaussian", "coeff": 1.0},
                W_rec_params={"init_type": "gaussian", "coeff": 0.5})
    sensing = {"feedback": feedback, "inputs": "none", "control_scale": 10.0, "rng": rng}
    full = Balance(cart, horizon=500, spread=spread)
    loop = ClosedLoop(cart, full, net, **sensing)
    heldout = _heldout(spread, full.horizon)
    first = max(1, updates // 3)
    phases = []
    for horizon, n, label in ((100, first, "2 s"), (250, updates - first, "5 s")):
        task = Balance(cart, horizon=horizon, spread=spread)
        phase_loop = ClosedLoop(cart, task, net, **sensing)
        phases.append(Phase(phase_loop, lambda k, task=task: (task.sample(batch, rng=rng),),
                            n, label))

    def evaluate(controller) -> dict[str, Any]:
        run = controller.rollout(heldout)
        ok = balanced(run.states)
        final = run.states[:, -1]
        return {"heldout_success_rate": float(ok.mean()),
                "heldout_failure_rate": float(1.0 - ok.mean()),
                "heldout_cost": float(run.cost.mean()),
                "heldout_final_abs_theta_rad": float(np.abs(final[:, 2]).mean()),
                "heldout_final_abs_x_m": float(np.abs(final[:, 0]).mean()),
                "heldout_max_abs_theta_rad": float(np.abs(run.states[:, :, 2]).max())}

    def summary(m) -> str:
        return (f"held-out success {100 * m['heldout_success_rate']:.0f} % of 81 starts "
                f"(10 s), final |theta| {m['heldout_final_abs_theta_rad']:.2g} rad, "
                f"|x| {100 * m['heldout_final_abs_x_m']:.2g} cm")

    def plot(controller, out: Path) -> list[Path]:
        run = controller.rollout(heldout)
        pick = np.linspace(0, heldout.x0.shape[0] - 1, 12).astype(int)
        paths = [out / "phase_portrait.png", out / "trajectories.png"]
        figures.plot_phase_portrait(run.states[pick, :, 2], run.states[pick, :, 3], paths[0],
                                    title="Pole, 12 held-out starts (o)", wrap=False)
        t = np.arange(run.states.shape[1]) * cart.dt
        figures.plot_state_trajectories(
            t, run.states[pick][:, :, [0, 2]], run.controls[pick], paths[1],
            ("cart x (m)", "pole angle (rad)"), "force (N)",
            title="Cart-pole, 12 held-out starts")
        return paths

    return Recipe("cartpole-balance", loop, lambda: opt.HessianFree(CG_iter=60, init_damping=1.0),
                  phases[0].batches, heldout, updates, rng, phases=phases,
                  validation=full.sample(64, seed=10_000 + seed), headline="heldout_failure_rate",
                  evaluate=evaluate, summary=summary, plot=plot, options=options,
                  info={"batch": batch})
