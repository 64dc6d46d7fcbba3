"""The ``hfcontrol`` console script and run folders, used as a user uses them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hfcontrol import cli, recipes, runs

SCRIPT = Path(sys.executable).with_name("hfcontrol")


def hfcontrol(*args, cwd=None):
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "hfcontrol.cli"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_help_lists_the_subcommands():
    proc = hfcontrol("--help")
    assert proc.returncode == 0
    for command in ("train", "evaluate", "plot", "demo", "bench", "tasks", "sweep"):
        assert command in proc.stdout


def test_train_evaluate_plot_a_run_folder(tmp_path):
    out = tmp_path / "run"
    proc = hfcontrol("train", "--updates", 2, "--out", out, "--set", "batch=8")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("arm-reach: held-out final hand error")
    for name in ("controller.npz", "config.json", "history.json", "metrics.json",
                 "curve.json", "hand_paths.png", "learning_curve.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["updates"] == 2 and metrics["heldout_final_error_m"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "arm-reach" and config["options"] == {"batch": 8}

    proc = hfcontrol("evaluate", out)
    assert proc.returncode == 0, proc.stderr
    # evaluating the saved controller again gives the figure written after training
    again = json.loads((out / "metrics.json").read_text())
    assert again["heldout_final_error_m"] == pytest.approx(metrics["heldout_final_error_m"])
    (out / "hand_paths.png").unlink()
    proc = hfcontrol("plot", out)
    assert proc.returncode == 0 and (out / "hand_paths.png").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--updates", "0"], "positive integer"),
    (["train", "--bogus"], "unrecognized arguments"),
    (["train", "no-such-task"], "invalid choice"),
    (["train", "--set", "nope=1", "--updates", "1"], "unknown option 'nope'"),
    (["train", "--set", "delay=-1", "--updates", "1"], "delay"),
    (["train", "--resume"], "--resume needs --out"),
    (["evaluate", "/no/such/run"], "not a run folder"),
    (["sweep", "/no/such/sweep.toml"], "does not exist"),
])
def test_a_bad_argument_exits_2_with_a_message(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_flag_exits_2_without_a_traceback(tmp_path):
    proc = hfcontrol("train", "--updates", "-3", "--out", tmp_path)
    assert proc.returncode == 2
    assert "--updates" in proc.stderr and "Traceback" not in proc.stderr


def test_tasks_lists_every_recipe(capsys):
    assert cli.main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in recipes.RECIPES:
        assert name in out


def test_resume_after_an_interruption_gives_the_uninterrupted_run(tmp_path, monkeypatch):
    options = {"batch": 8, "hidden": 8}
    whole = runs.train_run("arm-reach", tmp_path / "whole", updates=5, options=options,
                           progress=False, plots=False, checkpoint_every=2)

    real_train = runs.train

    def interrupted_train(*args, callbacks=(), **kwargs):
        def stop(state):
            if state.update == 2:  # during the 4th update's bookkeeping: after 3 updates
                raise KeyboardInterrupt
        return real_train(*args, callbacks=[*callbacks, stop], **kwargs)

    monkeypatch.setattr(runs, "train", interrupted_train)
    with pytest.raises(KeyboardInterrupt):
        runs.train_run("arm-reach", tmp_path / "cut", updates=5, options=options,
                       progress=False, plots=False, checkpoint_every=2)
    monkeypatch.setattr(runs, "train", real_train)
    with pytest.raises(runs.RunError, match="seed"):
        runs.train_run(out=tmp_path / "cut", seed=1, resume=True, progress=False)
    resumed = runs.train_run(out=tmp_path / "cut", resume=True, progress=False, plots=False,
                             checkpoint_every=2)
    a = json.loads((tmp_path / "whole" / "history.json").read_text())
    b = json.loads((tmp_path / "cut" / "history.json").read_text())
    for key in a:
        if key != "time":
            assert a[key] == b[key], key
    from hfcontrol import Controller
    Wa = Controller.load(tmp_path / "whole" / "controller.npz").loop.W
    Wb = Controller.load(tmp_path / "cut" / "controller.npz").loop.W
    np.testing.assert_array_equal(Wa, Wb)
    assert resumed["heldout_final_error_m"] == whole["heldout_final_error_m"]


def test_a_schedule_is_cut_to_the_updates_asked_for():
    recipe = recipes.arm_reach(hidden=4)
    loop = recipe.loop
    recipe.phases = [recipes.Phase(loop, recipe.train_batches, 3, "a"),
                     recipes.Phase(loop, recipe.train_batches, 4, "b")]
    assert [p.updates for p in recipe.schedule()] == [3, 4]
    assert [p.updates for p in recipe.schedule(5)] == [3, 2]
    assert [p.updates for p in recipe.schedule(2)] == [2]
    assert [p.updates for p in recipe.schedule(9)] == [3, 6]
    with pytest.raises(ValueError, match="updates"):
        recipe.schedule(0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        recipe.optimizer("lbfgs")


def test_sweep_on_a_local_ray(tmp_path):
    pytest.importorskip("ray")
    config = tmp_path / "sweep.toml"
    # two trials: one trains, one has a bad option and fails without stopping the other
    config.write_text('task = "arm-reach"\nupdates = 2\nseeds = [0]\n'
                      '[options]\nbatch = 8\n[grid]\nhidden = [4, -1]\n')
    proc = hfcontrol("sweep", config, "--out", tmp_path / "sweep", "--num-cpus", 2,
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 2 trials done, 1 failed" in proc.stdout
    rows = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    ok, failed = rows
    assert ok["status"] == "ok" and ok["heldout_final_error_m"] > 0
    assert failed["status"] == "failed" and "hidden must be a positive" in failed["error"]
    assert (tmp_path / "sweep" / "trials" / ok["trial"] / "controller.npz").exists()
    assert (tmp_path / "sweep" / "summary.png").stat().st_size > 0
    assert "status" in (tmp_path / "sweep" / "summary.csv").read_text().splitlines()[0]


def test_a_bad_sweep_file_is_named(tmp_path):
    from hfcontrol.sweep import load_sweep, trials

    path = tmp_path / "s.toml"
    path.write_text('task = "arm-reach"\nseeds = [0, 1]\n[grid]\nhidden = [8, 16]\n')
    spec = load_sweep(path)
    assert [t["name"] for t in trials(spec)] == [
        "arm-reach-hf-hidden8-seed0", "arm-reach-hf-hidden8-seed1",
        "arm-reach-hf-hidden16-seed0", "arm-reach-hf-hidden16-seed1"]
    for text, message in [('seeds = [0]\n', "'task' is required"),
                          ('task = "x"\n', "unknown task"),
                          ('task = "arm-reach"\n[grid]\nwings = [1]\n', "no option(s) wings"),
                          ('task = "arm-reach"\nseeds = [-1]\n', "seeds must be"),
                          ('task = "arm-reach"\n[grid]\nhidden = 8\n', "non-empty list"),
                          ('task = "arm-reach"\nspeed = 1\n', "unknown key(s) speed"),
                          ('task = [\n', "not valid TOML")]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_sweep(path)


def test_train_the_pendulum_recipe_with_screening(tmp_path):
    out = tmp_path / "pendulum"
    proc = hfcontrol("train", "pendulum-swingup", "--updates", 2, "--out", out,
                     "--set", "batch=8", "--set", "curvature=4", "--set", "screen=2",
                     "--hidden", 8)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("pendulum-swingup: ")
    metrics = json.loads((out / "metrics.json").read_text())
    # two initialisations of the first phase, cut to 2 updates each
    assert metrics["updates"] == 4 and len(metrics["screening"]) == 2
    history = json.loads((out / "history.json").read_text())
    assert history["candidate"] == [0, 0, 1, 1] and history["phase"] == [0, 0, 0, 0]
    # the candidate kept has the best validation return, and the controller saved is at
    # it: recompute Pendulum-v1's return from its own rollout of the validation starts
    from hfcontrol.recipes.pendulum import VALIDATION_SEED
    from plants.tasks import wrap_angle

    scores = [c["score"] for c in metrics["screening"]]
    assert metrics["candidate_kept"] == int(np.argmin(scores))
    controller = hf_controller(out)
    run = controller.rollout(controller.task.sample(64, seed=VALIDATION_SEED))
    X, U = run.states, run.controls[..., 0]
    returns = -(wrap_angle(X[:, :-1, 0]) ** 2 + 0.1 * X[:, :-1, 1] ** 2 + 0.001 * U**2).sum(1)
    assert -returns.mean() == pytest.approx(min(scores), rel=1e-9)
    for name in ("phase_portrait.png", "trajectories.png", "learning_curve.png"):
        assert (out / name).stat().st_size > 0
    proc = hfcontrol("evaluate", out)
    assert proc.returncode == 0, proc.stderr
    again = json.loads((out / "metrics.json").read_text())
    assert again["heldout_mean_return"] == pytest.approx(metrics["heldout_mean_return"])
    (out / "trajectories.png").unlink()
    proc = hfcontrol("plot", out)
    assert proc.returncode == 0 and (out / "trajectories.png").exists()


def hf_controller(run_dir):
    from hfcontrol import Controller

    return Controller.load(run_dir / "controller.npz")


def test_a_screened_run_resumes_as_the_uninterrupted_one(tmp_path, monkeypatch):
    options = {"batch": 4, "curvature": 2, "hidden": 4, "screen": 2,
               "phases": [[10, 5.0, 2], [10, 0.0, 2]]}
    kwargs = {"options": options, "progress": False, "plots": False, "checkpoint_every": 1}
    runs.train_run("pendulum-swingup", tmp_path / "whole", **kwargs)
    real_train = runs.train
    calls = []

    def interrupted_train(*args, callbacks=(), **kw):
        calls.append(1)

        def stop(state):
            if len(calls) == 2 and state.update == 0:  # the second candidate's first update
                raise KeyboardInterrupt
        return real_train(*args, callbacks=[*callbacks, stop], **kw)

    monkeypatch.setattr(runs, "train", interrupted_train)
    with pytest.raises(KeyboardInterrupt):
        runs.train_run("pendulum-swingup", tmp_path / "cut", **kwargs)
    monkeypatch.setattr(runs, "train", real_train)
    runs.train_run(out=tmp_path / "cut", resume=True, progress=False, plots=False,
                   checkpoint_every=1)
    a = json.loads((tmp_path / "whole" / "history.json").read_text())
    b = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert len(a["epoch"]) == 6 and a["candidate"] == [0, 0, 1, 1] + 2 * [a["candidate"][-1]]
    for key in a:
        if key != "time":
            assert a[key] == b[key], key
    np.testing.assert_array_equal(hf_controller(tmp_path / "whole").loop.W,
                                  hf_controller(tmp_path / "cut").loop.W)
