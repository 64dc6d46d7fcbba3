"""The experiment scripts run as a user runs them (``--quick``) and write their outputs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hfcontrol as hf

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args):
    return subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_arm_reach_quick(tmp_path):
    proc = _run("arm_reach.py", "--out", str(tmp_path), "--quick", "--delay", "2",
                "--obs-noise", "0.01")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("heldout_final_error_m", "heldout_final_speed_mps", "train_wall_s",
                "learning_curve", "heldout_final_error_noisy_m"):
        assert key in metrics
    assert metrics["updates"] == 3 and len(metrics["learning_curve"]["update"]) == 3
    for name in ("hand_paths", "kinematics", "speed_profiles", "learning_curve"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    controller = hf.Controller.load(tmp_path / "controller.npz")
    assert controller.loop.delay == 2 and controller.loop.obs_noise == 0.01


def test_pendulum_swingup_quick(tmp_path):
    proc = _run("pendulum_swingup.py", "--out", str(tmp_path), "--quick")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 <= metrics["success_rate"] <= 1
    assert len(metrics["pendulum_v1_returns"]) == 10
    assert all(r < 0 for r in metrics["pendulum_v1_returns"])
    for name in ("phase_portrait", "trajectories"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert hf.Controller.load(tmp_path / "controller.npz").loop.dtype == "float64"


@pytest.mark.parametrize("script", ["arm_reach.py", "pendulum_swingup.py"])
def test_a_bad_argument_exits_2(script, tmp_path):
    proc = _run(script, "--out", str(tmp_path), "--seed", "-1")
    assert proc.returncode == 2 and "must be" in proc.stderr
