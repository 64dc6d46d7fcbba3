"""Pendulum recipe: swinging Gymnasium's ``Pendulum-v1`` up and balancing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import figures
from .. import optimizers as opt
from ..closed_loop import ClosedLoop
from ..rnnet import RNNet
from ._base import Phase, Recipe, Screening, check_seed

__all__ = ["pendulum_swingup", "upright", "pendulum_v1_return", "selection_score", "PHASES",
           "HELDOUT_SEED", "VALIDATION_SEED"]

#: The curriculum: ``(horizon, energy_weight, updates)`` per phase. Energy shaping and
#: short episodes first, to leave the flat basin of the do-nothing policy; then
#: Pendulum-v1's own cost over its whole episode. (With batches of 256, 100 more updates
#: at 200 steps, with energy weight 1 or 0, never beat the 100-step phase on validation.)
PHASES = ((60, 5.0, 100), (100, 2.0, 100), (200, 0.0, 50))
#: Seeds of the held-out and validation starts (training draws from ``seed`` and
#: ``seed + 1000 j``).
HELDOUT_SEED, VALIDATION_SEED = 123_456, 654_321
#: ``near_upright`` starts: ``|theta| <`` this (rad)
NEAR_TOP = 0.6
#: Success: upright from this step to the end of the 200-step episode.
SETTLE = 100
_NETWORK = {"layers": ["Linear", "Tanh", "Tanh"],
            "W_init_params": {"init_type": "gaussian", "coeff": 1.0},
            "W_rec_params": {"init_type": "gaussian", "coeff": 0.5}}


def upright(states: np.ndarray, settle: int = SETTLE) -> np.ndarray:
    """Per episode of ``states [B, T + 1, 2]``: upright (``|theta| < 0.1`` rad, ``|theta_dot|
    < 0.5`` rad/s, theta wrapped) at every step from ``settle`` to the end."""
    from plants.tasks import wrap_angle

    ok = (np.abs(wrap_angle(states[:, :, 0])) < 0.1) & (np.abs(states[:, :, 1]) < 0.5)
    return ok[:, settle:].all(axis=1)


def pendulum_v1_return(states: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """Per episode: ``Pendulum-v1``'s return of a rollout (its reward charges the state
    before each step, ``states[:, :T]``, and the torque, here never beyond its limit)."""
    from plants.tasks import wrap_angle

    theta, omega = wrap_angle(states[:, :-1, 0]), states[:, :-1, 1]
    return -(theta**2 + 0.1 * omega**2 + 0.001 * controls[..., 0] ** 2).sum(axis=1)


#: An upper bound of an episode's ``-return`` (200 steps of at most ``pi^2 + 0.1 * 8^2 +
#: 0.001 * 2^2``), which makes :func:`selection_score` lexicographic.
_RETURN_BOUND = 1e4


def selection_score(states: np.ndarray, controls: np.ndarray, tolerated: int = 0) -> float:
    """Model selection on a validation batch, lower is better: the number of failures
    (:func:`upright`) beyond ``tolerated``, then minus the mean return, as one float,
    ``max(0, failures - tolerated) + (-mean return) / 1e4`` (the second term is below 1).
    With ``tolerated = 0``, the fewest failures first (the success rate swings by tens of
    percent between updates while the return changes slowly); with more, the best return
    among the weights with at most ``tolerated`` failures."""
    fails = int((~upright(states)).sum())
    return (max(0, fails - int(tolerated))
            + float(-pendulum_v1_return(states, controls).mean()) / _RETURN_BOUND)


def _check_phases(phases: Any) -> tuple[tuple[int, float, int], ...]:
    """``phases`` as a tuple of ``(horizon, energy_weight, updates)``, or a ValueError."""
    def integer(v) -> bool:
        return not isinstance(v, bool) and isinstance(v, int | np.integer) and v >= 1

    def weight(v) -> bool:
        return (not isinstance(v, bool) and isinstance(v, int | float | np.number)
                and bool(np.isfinite(v)) and v >= 0)

    try:
        ok = len(phases) > 0 and all(len(p) == 3 and integer(p[0]) and weight(p[1])
                                     and integer(p[2]) for p in phases)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError("phases must be a non-empty list of (horizon, energy_weight, "
                         "updates): positive integer horizon and updates, a finite "
                         f"energy_weight >= 0; got {phases!r}")
    return tuple((int(h), float(e), int(n)) for h, e, n in phases)


def pendulum_swingup(seed: int = 0, *, hidden: int = 32, batch: int = 256,
                     curvature: int | None = 64, phases: Any = PHASES, screen: int = 4,
                     cg_iter: int = 60, angle: str = "wrapped", gym_dynamics: bool = False,
                     recurrent: bool = False, tolerated: int = 3,
                     init: str | None = None, near_upright: float = 0.0) -> Recipe:
    """Swinging up and balancing Gymnasium's ``Pendulum-v1`` (torque limit 2 N m, below
    what lifts the pendulum directly) from its own start distribution, with its own cost.

    The plant is ``plants.Pendulum()`` (``Pendulum-v1``'s constants and update), or with
    ``gym_dynamics`` ``plants.GymDynamics(gymnasium.make("Pendulum-v1"))`` (Gymnasium's own
    step, finite-difference Jacobians; 15-17 times the time per update). The cost is
    ``plants.tasks.PendulumV1(angle=angle)``: ``theta_n^2 + 0.1 theta_dot^2 + 0.001 u^2``
    per step in squares (``"wrapped"``: Gymnasium's wrapped angle; ``"cosine"``: ``2 - 2 cos
    theta``). A ``hidden``-unit RNN senses ``(theta_dot, cos theta, sin theta)`` and outputs
    the torque through a tanh (times 2 N m, so never clipped); Hessian-free optimisation
    with exact curvature through the loop, in float64, on ``batch`` fresh episodes per
    update.

    The curriculum ``phases`` lists ``(horizon, energy_weight, updates)``: short episodes
    with energy shaping (``PendulumV1(energy_weight=...)``) first, to leave the flat basin
    of the do-nothing policy. The first phase is screened from ``screen`` initialisations
    (seeds ``seed + 1000 j``), ranked by their best validation return; the best goes on.
    The weights kept are those with the fewest failures on 64 validation starts beyond
    ``tolerated``, then the best return (:func:`selection_score`). ``curvature`` episodes of
    each batch (None: all) give the curvature products. (The large gradient batch is what
    lifts the return: warm-started from a controller at -252 on ``Pendulum-v1``, 100
    unshaped 200-step updates of 64 episodes gave -251, of 256 with 64 for the curvature
    -143.) With ``recurrent`` False the recurrent weights are zero and frozen: the network
    is a feedforward policy of the current observation. ``init`` (a saved controller's
    path) starts from its weights instead, with no screening (a warm start).
    ``near_upright`` (a fraction of ``batch``) of the starts of each batch of the phases
    without shaping are drawn near the top (``|theta| < NEAR_TOP``, ``|theta_dot| < 1``),
    where catching the pendulum beats swinging it down and up again. (Off by default: a
    quarter of the starts near the top did not teach the 32-unit network to catch, the
    return went from -145.2 to -145.9 on seed 0; a catching phase of 30-step episodes from
    near-top starts did teach it, but the swing-up then lost 40-60 of return that 50 more
    200-step updates did not win back.)

    Held out: 100 starts drawn as ``Pendulum-v1`` draws them (``theta ~ U(-pi, pi)``,
    ``theta_dot ~ U(-1, 1)``) with a seed of their own. Success: upright (``|theta| < 0.1``,
    ``|theta_dot| < 0.5``) at step 100 and to step 200. The controller is saved on
    ``plants.Pendulum`` whichever plant trained it.
    """
    import plants
    from plants.tasks import PendulumV1

    seed = check_seed(seed)
    phases = _check_phases(phases)
    for name, value, low in (("hidden", hidden, 1), ("batch", batch, 1), ("screen", screen, 1),
                             ("cg_iter", cg_iter, 1), ("tolerated", tolerated, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if curvature is not None and (isinstance(curvature, bool) or not isinstance(
            curvature, int | np.integer) or not 1 <= curvature <= batch):
        raise ValueError(f"curvature must be None or an integer in [1, batch = {batch}] (the "
                         f"curvature minibatch), got {curvature!r}")
    if isinstance(near_upright, bool) or not isinstance(near_upright, int | float | np.number) \
            or not 0 <= near_upright <= 1:
        raise ValueError(f"near_upright must be a fraction in [0, 1], got {near_upright!r}")
    for name, value in (("gym_dynamics", gym_dynamics), ("recurrent", recurrent)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    options = {"hidden": hidden, "batch": batch, "phases": [list(p) for p in phases],
               "screen": screen, "cg_iter": cg_iter, "curvature": curvature, "angle": angle,
               "gym_dynamics": gym_dynamics, "recurrent": recurrent,
               "tolerated": tolerated, "init": init, "near_upright": float(near_upright)}
    pendulum = plants.Pendulum()
    if gym_dynamics:
        import gymnasium as gym

        plant = plants.GymDynamics(gym.make("Pendulum-v1"))
    else:
        plant = pendulum
    objective = PendulumV1(plant, angle=angle)  # 200 steps: success is judged at 100-200
    heldout = objective.sample(100, seed=HELDOUT_SEED)
    validation = objective.sample(64, seed=VALIDATION_SEED)

    def network(g: np.random.Generator) -> RNNet:
        return RNNet([3, hidden, 1], rng=g, dtype=np.float64, **_NETWORK)

    rng = np.random.default_rng(seed)
    net = network(rng)
    # without recurrence: the recurrent weights (and the first step's recurrent bias) zero
    # and frozen, so the hidden layer is a function of the current observation alone
    frozen = np.zeros(net.n_params, bool)
    start, _, end = net.offsets[(1, 1)]
    frozen[start:end] = not recurrent
    mask = None if recurrent else ~frozen
    net.W = np.where(frozen, 0.0, net.W)
    if init is not None:
        from ..controller import Controller

        if not Path(init).is_file():
            raise ValueError(f"init must be a saved controller's file, got {init!r}")
        W = Controller.load(init).net.W
        if W.shape != net.W.shape:
            raise ValueError(f"init {init!r} holds {W.size} weights; a {hidden}-unit network "
                             f"has {net.W.size} (set hidden to the saved controller's)")
        if not recurrent and np.any(W[frozen]):
            raise ValueError(f"init {init!r} is a recurrent controller; recurrent=false needs "
                             "one with zero recurrent weights")
        net.W = W.astype(np.float64)
        screen = 1
    sensing = {"inputs": "none", "observation": {"linear": [1], "angles": [0]},
               "control_scale": 2.0, "dtype": np.float64, "rng": rng}

    def closed_loop(plant, task) -> ClosedLoop:
        made = ClosedLoop(plant, task, net, **sensing)
        made.set_mask(mask)
        return made

    loop = closed_loop(pendulum, PendulumV1(pendulum, angle=angle))
    evaluation = loop if plant is pendulum else closed_loop(plant, objective)
    near = int(round(near_upright * batch))

    def episodes(task) -> Any:
        """A training batch; in the phases without shaping, ``near`` of its starts redrawn
        near the top (``|theta| < 0.6``, ``|theta_dot| < 1``), where catching the pendulum
        beats swinging it down and up again."""
        drawn = task.sample(batch, rng=rng)
        if near and not task.energy_weight:
            drawn.x0[:near] = rng.uniform(-1.0, 1.0, (near, 2)) * [NEAR_TOP, 1.0]
        return drawn

    schedule = []
    for horizon, energy, n in phases:
        task = PendulumV1(plant, horizon=horizon, energy_weight=energy, angle=angle)
        schedule.append(Phase(closed_loop(plant, task),
                              lambda k, task=task: (episodes(task), curvature), n,
                              f"{horizon} steps, energy weight {energy:g}"))

    def validate() -> tuple[np.ndarray, np.ndarray]:
        run = evaluation.rollout(validation, noise=False, cost=False)
        return run.states, run.controls

    def candidate(j: int) -> None:
        g = np.random.default_rng(seed + 1000 * j)
        net.W = np.where(frozen, 0.0, network(g).W)
        rng.bit_generator.state = g.bit_generator.state

    def evaluate(controller) -> dict[str, Any]:
        run = controller.rollout(heldout)
        ok = upright(run.states)
        returns = pendulum_v1_return(run.states, run.controls)
        return {"success_rate": float(ok.mean()), "heldout_failure_rate": float(1 - ok.mean()),
                "heldout_mean_return": float(returns.mean()),
                "heldout_median_return": float(np.median(returns))}

    def summary(m) -> str:
        return (f"{100 * m['success_rate']:.0f} % of 100 held-out starts upright by step "
                f"{SETTLE} and to the end, mean return {m['heldout_mean_return']:.1f}")

    def plot(controller, out: Path) -> list[Path]:
        run = controller.rollout(heldout)
        ok = upright(run.states)[:20]
        paths = [out / "phase_portrait.png", out / "trajectories.png"]
        figures.plot_phase_portrait(run.states[:20, :, 0], run.states[:20, :, 1], paths[0],
                                    title="Pendulum, 20 held-out starts (o)")
        from plants.tasks import wrap_angle

        t = np.arange(run.states.shape[1]) * pendulum.dt
        states = np.stack([wrap_angle(run.states[:20, :, 0]), run.states[:20, :, 1]], axis=2)
        figures.plot_state_trajectories(
            t, states, run.controls[:20], paths[1], ("angle (rad, 0 upright)",
                                                     "velocity (rad/s)"), "torque (N m)",
            title="held-out starts (blue: success, red: failure)",
            colors=["C0" if good else "C3" for good in ok])
        return paths

    updates = sum(n for _, _, n in phases)
    return Recipe("pendulum-swingup", loop,
                  lambda: opt.HessianFree(CG_iter=cg_iter, init_damping=1.0),
                  schedule[0].batches, heldout, updates, rng, phases=schedule,
                  score=lambda: selection_score(*validate(), tolerated),
                  validation=validation,
                  curve=lambda: float(-pendulum_v1_return(*_run(loop, heldout)).mean()),
                  curve_label="held-out -return (Pendulum-v1)",
                  headline="heldout_failure_rate", evaluate=evaluate, summary=summary,
                  plot=plot, options=options,
                  screening=Screening(screen, candidate, lambda: float(
                      -pendulum_v1_return(*validate()).mean())),
                  info={"batch": batch, "training_plant": plant, "objective": objective})


def _run(loop: ClosedLoop, batch) -> tuple[np.ndarray, np.ndarray]:
    run = loop.rollout(batch, noise=False, cost=False)
    return run.states, run.controls
