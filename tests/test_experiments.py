"""Every experiment script runs end to end in its --smoke mode, so none of them rots."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem != "common")
NEEDS_MNIST = {"mnist_lenet5", "sequential_mnist_lstm"}


def test_every_experiment_is_listed_here():
    assert set(EXPERIMENTS) >= {"mnist_lenet5", "sequential_mnist_lstm", "vanishing_gradients"}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_run_writes_its_results(name, real_data):
    args = [sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--smoke"]
    if name in NEEDS_MNIST:
        if not (real_data / "mnist").is_dir():
            pytest.skip(f"no MNIST files under {real_data}")
        args += ["--data-dir", str(real_data)]
    start = time.time()
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    path = ROOT / "experiments" / "results" / f"{name}_smoke.json"
    assert path.stat().st_mtime >= start - 1
    written = json.loads(path.read_text())
    if name in NEEDS_MNIST:
        assert {"val_accuracy", "test_accuracy", "selected_epoch"} <= set(written)
