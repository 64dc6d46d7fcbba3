"""experiments/optimizer_comparison.py runs as a user runs it (``--quick``)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "optimizer_comparison.py"
METHODS = ("hf-exact", "hf-data", "adam", "sgd")


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_optimizer_comparison_quick(tmp_path):
    proc = _run("--out", str(tmp_path), "--quick")
    assert proc.returncode == 0, proc.stderr
    assert "optimizer comparison:" in proc.stdout.strip().splitlines()[-1]
    assert (tmp_path / "optimizer_comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    budget = metrics["settings"]["budget_s"]
    assert metrics["settings"]["seeds"] == [0, 1, 2]
    assert set(metrics["summary"]) == set(metrics["runs"]) == set(METHODS)
    for seed in range(3):
        # every method starts from the same weights: the same held-out error at update 0
        start = {m: metrics["runs"][m][seed]["curve"]["heldout"][0] for m in METHODS}
        assert len(set(start.values())) == 1, start
        assert 0.01 < start["adam"] < 1.0  # an untrained controller misses by cm
    for method in METHODS:
        runs = metrics["runs"][method]
        assert [r["seed"] for r in runs] == [0, 1, 2]
        for r in runs:
            curve = r["curve"]
            assert curve["update"][0] == 0 and curve["time"][0] == 0
            assert np.all(np.diff(curve["update"]) > 0) and np.all(np.diff(curve["time"]) > 0)
            assert curve["update"][-1] == r["updates"] >= 1
            # the same training budget for all, measured without the evaluations
            assert budget <= r["train_time_s"] < budget + 5
            assert all(np.isfinite(curve["heldout"]))
            for name, level in (("1cm", 0.01), ("5mm", 0.005)):
                below = [t for t, e in zip(curve["time"], curve["heldout"], strict=True)
                         if e < level]
                hit = r["reached"][name]
                assert (hit is None) == (not below)
                if below:
                    assert hit["time_s"] == below[0]
        summary = metrics["summary"][method]
        assert summary["median_final_heldout_m"] == pytest.approx(
            np.median([r["final_heldout_m"] for r in runs]))
    # the first-order methods run many more (cheaper) updates in the same time
    assert np.median(metrics["summary"]["adam"]["updates"]) > \
        np.median(metrics["summary"]["hf-exact"]["updates"])


@pytest.mark.parametrize("flags", [["--bogus"], ["--budget", "-1"], ["--methods", "hf,lbfgs"],
                                   ["--seeds", "0"], ["--adam-lr", "nan"]])
def test_a_bad_flag_exits_2(flags, tmp_path):
    proc = _run("--out", str(tmp_path), *flags)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr
