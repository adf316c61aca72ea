"""The funcnets command: the default run, summary, resumption across processes, bad arguments."""

import json
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import funcnets as fn
from funcnets.cli import main


def funcnets(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "funcnets", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_default_train_reaches_95_percent_on_digits_within_a_minute(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert time.perf_counter() - start < 60
    assert "test accuracy" in capsys.readouterr().out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["test"]["accuracy"] >= 0.95
    history = fn.train.History.from_json(tmp_path / "run" / "history.json")
    assert history.epochs == 30 and history["val_accuracy"][-1] == pytest.approx(
        config["test"]["accuracy"]
    )
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "run" / "checkpoint.ckpt").is_file()


def test_summary_command(capsys):
    assert main(["summary", "--model", "lenet5"]) == 0
    text = capsys.readouterr().out
    assert "Total params: 61,706" in text and "(1, 28, 28, 6)" in text


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    common = ["train", "--dataset", "moons", "--batch-size", "48", "--no-progress", "--seed", "3"]
    straight = funcnets(*common, "--epochs", "4", "--out", str(tmp_path / "straight"))
    first = funcnets(*common, "--epochs", "2", "--out", str(tmp_path / "first"))
    assert straight.returncode == 0 and first.returncode == 0, straight.stderr + first.stderr
    second = funcnets(*common, "--epochs", "2", "--out", str(tmp_path / "second"),
                      "--resume", str(tmp_path / "first" / "checkpoint.ckpt"))  # fmt: skip
    assert second.returncode == 0, second.stderr
    a = fn.checkpoint.load(tmp_path / "straight" / "checkpoint.ckpt")
    b = fn.checkpoint.load(tmp_path / "second" / "checkpoint.ckpt")
    assert a.keys() == b.keys()
    for name in a:
        left, right = a[name], b[name]
        if hasattr(left, "dtype") and jax.dtypes.issubdtype(left.dtype, jax.dtypes.prng_key):
            left, right = jax.random.key_data(left), jax.random.key_data(right)
        np.testing.assert_array_equal(left, right, err_msg=name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "resnet"], "argument --model: invalid choice: 'resnet'"),
        (["train", "--lr", "-0.1"], "argument --lr: must be a positive number, got -0.1"),
        (["train", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
        (
            ["train", "--resume", "no/such/file.ckpt"],
            "--resume: no checkpoint file at no/such/file.ckpt",
        ),
        (["train", "--optimizer", "adamm"], "argument --optimizer: invalid choice: 'adamm'"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_exit_2_with_usage_and_one_error_line(args, message, tmp_path):
    result = funcnets(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("usage: funcnets"), result.stderr
    assert message in lines[1] and "Traceback" not in result.stderr


def test_resuming_with_a_different_model_names_the_leaf(tmp_path, capsys):
    main(
        [
            "train",
            "--dataset",
            "xor",
            "--epochs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "a"),
        ]
    )
    code = main(["train", "--dataset", "xor", "--epochs", "1", "--no-progress", "--hidden", "32",
                 "--resume", str(tmp_path / "a" / "checkpoint.ckpt"), "--out", str(tmp_path / "b")])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("funcnets: error:") and "checkpoint.ckpt" in err and "Traceback" not in err
    )
    assert "['dense0']['w']: shape (2, 64) in file vs (2, 32) expected" in err
