"""The funcnets command: the default run, the run directory, refusals, failures and resumption."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import funcnets as fn
from funcnets.cli import DATASETS, MODELS, build_parser, main, resolve_config, seed_key

# xor: 540 training examples after the 10% validation split, so 90 divides them (one compile).
TINY = ["--dataset", "xor", "--hidden", "8", "--batch-size", "90", "--no-progress"]


def funcnets(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "funcnets", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def read(path):
    return json.loads(Path(path).read_text())


def leaves(path):
    """A checkpoint's leaves as numpy arrays, keys as their key data."""
    tree = fn.checkpoint.load(path)
    return {
        name: np.asarray(jax.random.key_data(value))
        if jax.dtypes.issubdtype(getattr(value, "dtype", np.float32), jax.dtypes.prng_key)
        else np.asarray(value)
        for name, value in tree.items()
    }


def assert_usage_error(code, err, message):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 2 and lines[0].startswith("usage: funcnets"), err
    assert message in lines[1] and "Traceback" not in err, err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-epoch run on xor (tests that change it work on a copy)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_default_train_reaches_95_percent_on_digits_within_a_minute(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert time.perf_counter() - start < 60
    out = capsys.readouterr().out
    assert "test accuracy" in out and "validation accuracy" in out
    run = tmp_path / "run"
    config = read(run / "config.json")
    assert config["status"] == "finished" and config["epochs_done"] == config["epochs"] == 30
    assert {k: config[k] for k in ("model", "dataset", "optimizer", "val_fraction")} == {
        "model": "mlp", "dataset": "digits", "optimizer": "adam", "val_fraction": 0.1,
    }  # fmt: skip
    assert config["test"]["accuracy"] >= 0.95
    history = fn.train.History.from_json(run / "history.json")
    # Validation is a split held out of the training set, not the test set.
    assert history.epochs == 30
    assert history["val_accuracy"][-1] == pytest.approx(config["validation"]["accuracy"])
    assert (run / "curves.png").stat().st_size > 1000
    meta = fn.checkpoint.read_metadata(run / "checkpoint.ckpt")
    assert meta["epoch"] == 30 and meta["config"]["hidden"] == [256, 128]
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert [name[:10] for name in kept] == ["epoch-0028", "epoch-0029", "epoch-0030"]
    assert np.array_equal(leaves(run / "checkpoint.ckpt")[".params['dense0']['w']"],
                          leaves(run / "checkpoints" / kept[-1])[".params['dense0']['w']"])  # fmt: skip


def test_summary_command_uses_the_dataset_table(capsys):
    assert main(["summary", "--model", "lenet5"]) == 0
    text = capsys.readouterr().out
    assert "Total params: 61,706" in text and "(1, 28, 28, 6)" in text
    assert main(["summary", "--dataset", "spirals", "--hidden", "5"]) == 0
    assert "(1, 3)" in capsys.readouterr().out  # 3 classes, from the table


@pytest.mark.parametrize(("model", "metric"), [("vae", "elbo"), ("rbm", "reconstruction_error")])
def test_an_unsupervised_model_trains_on_the_images_alone(model, metric, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--model", model, "--dataset", "digits", "--epochs", "2", "--out", str(run)]
    assert main([*argv, "--no-progress"]) == 0
    assert f"validation {metric} " in capsys.readouterr().out
    config = read(run / "config.json")
    assert config["status"] == "finished" and config["dataset"] == "digits"
    assert np.isfinite(config["test"][metric]) and np.isfinite(config["validation"][metric])
    history = fn.train.History.from_json(run / "history.json")
    assert history.epochs == 2 and f"val_{metric}" in history and "val_accuracy" not in history
    assert history[f"val_{metric}"][-1] == pytest.approx(config["validation"][metric])
    assert fn.checkpoint.read_metadata(run / "checkpoint.ckpt")["config"]["model"] == model


def test_every_model_builds_for_the_datasets_it_fits():
    for name, spec in MODELS.items():
        for dataset in (d for d in DATASETS.values() if spec.fits(d)):
            built = spec.build(dataset, None)
            assert isinstance(built, fn.Layer) == spec.classifier, name


def test_every_dataset_has_one_table_entry_and_lenet5_fits_only_28x28_images():
    assert set(DATASETS) == {"digits", "xor", "spirals", "moons", "mnist", "fashion-mnist"}
    fits = [name for name, d in DATASETS.items() if MODELS["lenet5"].fits(d)]
    assert fits == ["mnist", "fashion-mnist"]
    (x, y), _ = fn.data.load_digits()
    assert (len(y), x.shape[1:]) == (DATASETS["digits"].examples, DATASETS["digits"].input_shape)
    parse = build_parser().parse_args
    assert resolve_config(parse(["train", "--model", "lenet5"]), None, "") == {
        "model": "lenet5", "dataset": "mnist", "optimizer": "adam", "lr": 1e-3,
        "batch_size": 64, "hidden": None, "seed": 0, "val_fraction": 0.1, "precision": "float32",
    }  # fmt: skip
    assert resolve_config(parse(["train", "--dataset", "moons"]), None, "")["hidden"] == [64, 64]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "resnet"], "argument --model: invalid choice: 'resnet'"),
        (["train", "--model", "gan", "--dataset", "digits"], "--model gan needs 28x28x1 images"),
        (["train", "--model", "vae", "--dataset", "moons"], "--model vae needs images"),
        (["train", "--model", "rbm", "--precision", "bf16"], "--model rbm trains in float32 only"),
        (["summary", "--model", "vae"], "--model vae is not one network"),
        (["train", "--lr", "-0.1"], "argument --lr: must be a positive number, got -0.1"),
        (["train", "--epochs", "0"], "argument --epochs: must be an integer from 1 to"),
        (["train", "--optimizer", "adamm"], "argument --optimizer: invalid choice: 'adamm'"),
        (["fly"], "invalid choice: 'fly'"),
        (["train", "--seed", str(2**64)], "argument --seed: must be an integer from 0 to 2**64-1"),
        (["train", "--seed", "-1"], "argument --seed: must be an integer from 0 to 2**64-1"),
        (["train", "--seed", "1" * 5000], "argument --seed: must be an integer from 0"),
        (["train", "--val-fraction", "1"], "argument --val-fraction: must be a fraction in [0, 1)"),
        (["train", "--hidden", "8,0"], "argument --hidden: must be comma-separated positive"),
        (
            ["train", "--model", "lenet5", "--dataset", "digits"],
            "--model lenet5 needs 28x28x1 images, i.e. --dataset mnist or fashion-mnist; "
            "digits has 8x8x1 images",
        ),
        (
            ["train", "--model", "lenet5", "--dataset", "moons"],
            "--model lenet5 needs 28x28x1 images, i.e. --dataset mnist or fashion-mnist",
        ),
        (["train", "--model", "lenet5", "--hidden", "8"], "--hidden: --model lenet5 has no"),
        (["summary", "--model", "lenet5", "--dataset", "digits"], "--model lenet5 needs 28x28x1"),
        (
            ["train", "--resume", "no/such/file.ckpt"],
            "--resume: no run directory or checkpoint file at no/such/file.ckpt",
        ),
        (
            ["train", "--dataset", "xor", "--val-fraction", "0.0001"],
            "--val-fraction 0.0001 of the 600 training examples of xor leaves no validation",
        ),
    ],
)
def test_bad_arguments_exit_2_with_usage_and_one_error_line(
    args, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fn.train, "fit", None)  # refused before any training
    assert_usage_error(main(args), capsys.readouterr().err, message)
    assert not any(tmp_path.iterdir())  # and nothing written (the default out is runs/...)


def test_a_bad_argument_in_a_fresh_process_exits_2_without_a_traceback(tmp_path):
    result = funcnets("train", "--seed", str(2**64), cwd=tmp_path)
    assert_usage_error(result.returncode, result.stderr, "argument --seed: must be an integer")


def test_seeds_beyond_32_bits_give_different_keys():
    data = [tuple(np.asarray(jax.random.key_data(seed_key(s))).ravel()) for s in (0, 1, 2**32, 2**64 - 1)]  # fmt: skip
    assert len(set(data)) == 4
    assert data[1] == tuple(np.asarray(jax.random.key_data(jax.random.key(1))).ravel())


@pytest.mark.parametrize("case", ["parent is a file", "out is a file", "read-only parent"])
def test_an_unwritable_out_is_refused_before_training(case, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "blocker"
    if case == "read-only parent":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        blocker.mkdir(mode=0o555)
        out, message = blocker / "run", "--out: cannot write the run directory"
    else:
        blocker.write_text("a file")
        if case == "out is a file":
            out, message = blocker, f"--out: {blocker} is a file, not a directory"
        else:
            out, message = blocker / "run", "Not a directory"
    monkeypatch.setattr(fn.train, "fit", None)
    monkeypatch.setattr("funcnets.cli.load_data", None)  # refused before even loading data
    assert_usage_error(main(["train", "--out", str(out)]), capsys.readouterr().err, message)


def test_an_out_holding_another_run_is_never_overwritten(finished_run, capsys):
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    code = main(["train", *TINY, "--epochs", "2", "--out", str(finished_run)])
    assert_usage_error(code, capsys.readouterr().err,
                       f"--out: {finished_run} already holds a finished run (epoch 2 of 2); "
                       f"choose a new directory, or continue that run with --resume")  # fmt: skip
    assert before == {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}


@pytest.mark.parametrize("target", ["run directory", "checkpoint file"])
def test_a_resume_with_a_different_optimizer_is_refused_naming_it(
    target, finished_run, monkeypatch, capsys
):
    resume = finished_run if target == "run directory" else finished_run / "checkpoint.ckpt"
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    monkeypatch.setattr(fn.train, "fit", None)
    code = main(["train", "--resume", str(resume), "--optimizer", "sgd", "--hidden", "8"])
    assert_usage_error(code, capsys.readouterr().err,
                       f"--resume: the run in {finished_run} was trained with --optimizer adam, "
                       "not --optimizer sgd (leave these flags out")  # fmt: skip
    assert before == {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}


def test_resuming_a_bare_checkpoint_with_another_model_or_optimizer_names_the_difference(
    tmp_path, capsys
):
    # A checkpoint of no run (no config.json, no metadata): the flags say what it should be,
    # and the file's leaves and container types are checked against them.
    ts = fn.train.init(fn.models.mlp([64, 64, 2]), fn.optim.adam(1e-3), jax.random.key(0), (1, 2))
    fn.checkpoint.save(tmp_path / "bare.ckpt", ts)
    common = ["train", "--dataset", "xor", "--resume", str(tmp_path / "bare.ckpt")]
    assert main([*common, "--hidden", "32", "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("funcnets: error:") and "bare.ckpt" in err and "Traceback" not in err
    assert "['dense0']['w']: shape (2, 64) in file vs (2, 32) expected" in err
    assert main([*common, "--optimizer", "lion", "--out", str(tmp_path / "b")]) == 1
    assert "ScaleByAdamState in file vs" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_non_finite_loss_saves_the_last_good_state_and_exits_1(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", *TINY, "--optimizer", "sgd", "--lr", "1e30", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("funcnets: error: non-finite loss") and "epoch 1" in err
    assert f"the last good state (step 1) is in {out / 'last-good.ckpt'}" in err
    good = leaves(out / "last-good.ckpt")
    assert good[".step"] == 1 and all(np.isfinite(v).all() for v in good.values())
    config = read(out / "config.json")
    assert config["status"] == "failed" and "non-finite" in config["error"]
    assert fn.checkpoint.read_metadata(out / "last-good.ckpt")["config"]["lr"] == 1e30
    # A mid-epoch state is for inspection, not for resuming.
    assert main(["train", "--resume", str(out / "last-good.ckpt")]) == 2
    assert "is a state from inside epoch 1, kept for inspection" in capsys.readouterr().err


def test_resume_extends_a_finished_run_to_its_new_total_and_a_fork_leaves_it_alone(
    finished_run, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    # --epochs is the run's total: 3 means one more epoch, in the same directory and run id.
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    config, history = read(run / "config.json"), read(run / "history.json")
    assert config["status"] == "finished" and config["epochs_done"] == config["epochs"] == 3
    assert len(history["loss"]) == 3
    assert history["loss"][:2] == read(finished_run / "history.json")["loss"]
    assert fn.checkpoint.read_metadata(run / "checkpoint.ckpt")["epoch"] == 3
    owners = {p.name.split("-")[2] for p in (run / "checkpoints").iterdir()}
    assert len(owners) == 1 and len(list((run / "checkpoints").iterdir())) == 3
    # A resume into another --out starts a new run directory from the checkpoint (here with
    # nothing left to train), with the run's configuration and history; the source is untouched.
    source = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    fork = tmp_path / "fork"
    resume = ["train", "--resume", str(run / "checkpoint.ckpt"), "--no-progress"]
    assert main([*resume, "--epochs", "3", "--out", str(fork)]) == 0
    assert source == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert read(fork / "history.json") == history
    assert {k: read(fork / "config.json")[k] for k in ("hidden", "batch_size", "test")} == {
        k: config[k] for k in ("hidden", "batch_size", "test")
    }
    capsys.readouterr()
    assert main([*resume, "--epochs", "2"]) == 2
    assert "has already trained 3 epochs (--epochs is the run's total)" in capsys.readouterr().err


def test_sigint_mid_run_then_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    """Fault injection: Ctrl-C after epoch 2 of 8, `--resume RUN_DIR`, compare with a straight run."""
    args = ["train", "--dataset", "digits", "--hidden", "16", "--batch-size", "1",
            "--epochs", "8", "--seed", "3", "--no-progress"]  # fmt: skip
    cut, straight = tmp_path / "cut", tmp_path / "straight"
    process = subprocess.Popen([sys.executable, "-m", "funcnets", *args, "--out", str(cut)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    # Polled from this thread alone: a watcher thread beside the reference run (which held
    # the GIL) once noticed epoch 2's checkpoint only after the run had finished.
    try:
        deadline = time.monotonic() + 120  # epochs take ~50 ms: the signal lands in epoch 3
        while process.poll() is None and time.monotonic() < deadline:  # (or soon after)
            if list((cut / "checkpoints").glob("epoch-0002-*.ckpt")):
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.002)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err
    config = read(cut / "config.json")
    done = config["epochs_done"]
    assert config["status"] == "interrupted" and 2 <= done < 8, err
    assert f"epoch {done}'s checkpoint is {cut / 'checkpoints'}" in err and "Traceback" not in err
    assert not (cut / "checkpoint.ckpt").exists()
    run_id = {p.name.split("-")[2] for p in (cut / "checkpoints").iterdir()}

    assert main([*args, "--out", str(straight)]) == 0  # the reference
    assert main([*args, "--out", str(cut), "--resume", str(cut)]) == 0  # the same command
    resumed, reference = leaves(cut / "checkpoint.ckpt"), leaves(straight / "checkpoint.ckpt")
    assert resumed.keys() == reference.keys() and ".epoch" in resumed
    for name in reference:
        assert np.array_equal(resumed[name], reference[name]), name
    history = read(cut / "history.json")
    assert all(len(values) == 8 for values in history.values())  # every epoch exactly once
    assert history == read(straight / "history.json")
    assert {p.name.split("-")[2] for p in (cut / "checkpoints").iterdir()} == run_id
    assert read(cut / "config.json")["status"] == "finished"


@pytest.mark.slow
def test_lenet5_on_mnist_one_epoch(real_data, tmp_path, capsys):
    if not (real_data / "mnist").is_dir():
        pytest.skip(f"no MNIST files under {real_data}")
    args = ["train", "--model", "lenet5", "--dataset", "mnist", "--epochs", "1"]
    assert main([*args, "--data-dir", str(real_data), "--out", str(tmp_path / "run")]) == 0
    assert read(tmp_path / "run" / "config.json")["test"]["accuracy"] > 0.9


def test_rl_cartpole_is_a_subcommand(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(
        fn.rl, "run_cartpole_command", lambda args: seen.setdefault("args", args) and 0
    )
    assert main(["rl", "cartpole", "--algorithm", "a2c", "--seeds", "3"]) == 0
    assert seen["args"].algorithm == "a2c" and seen["args"].seeds == 3
    assert main(["rl", "cartpole", "--seeds", "0"]) == 2
    assert "funcnets rl cartpole: error: argument --seeds" in capsys.readouterr().err
