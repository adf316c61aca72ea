"""Every experiment script runs end to end in its --smoke mode, so none of them rots."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem != "common")
#: The real data set each script reads (given --data-dir); the others need none.
DATA = {
    "mnist_lenet5": "mnist",
    "sequential_mnist_lstm": "mnist",
    "mnist_vae": "mnist",
    "mnist_autoencoder": "mnist",
    "mnist_clustering": "mnist",
    "mnist_gan": "mnist",
    "mnist_rbm": "mnist",
    "gradient_descent": "mnist",
    "optimizers": "mnist",
    "regularization": "mnist",
    "activations": "fashion-mnist",
    "fashion_resnet": "fashion-mnist",
}
#: Classifiers report the selected epoch's validation accuracy and the test accuracy.
CLASSIFIERS = {"mnist_lenet5", "sequential_mnist_lstm"}
#: Smoke runs of 10-42 s of CPU each (2026-11-26, mostly XLA compiling): in the slow set, so
#: that the default run stays under 10 minutes on 2 cores; the others run by default.
HEAVY = {
    "vanishing_gradients", "fashion_resnet", "mnist_autoencoder", "mnist_gan", "mnist_vae",
    "mnist_clustering", "regularization", "universal_approximation", "mnist_lenet5",
    "optimizers", "mnist_rbm", "perceptron_xor", "linear_svm",
}  # fmt: skip


def test_every_experiment_is_listed_here():
    assert set(EXPERIMENTS) >= set(DATA) | HEAVY | {"vanishing_gradients", "perceptron_xor"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in EXPERIMENTS]
)
def test_smoke_run_writes_its_results(name, real_data):
    args = [sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--smoke"]
    if name in DATA:
        if not (real_data / DATA[name]).is_dir():
            pytest.skip(f"no {DATA[name]} files under {real_data}")
        args += ["--data-dir", str(real_data)]
    start = time.time()
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    path = ROOT / "experiments" / "results" / f"{name}_smoke.json"
    assert path.stat().st_mtime >= start - 1
    written = json.loads(path.read_text())
    assert written["smoke"] is True
    if name in CLASSIFIERS:
        assert {"val_accuracy", "test_accuracy", "selected_epoch"} <= set(written)
