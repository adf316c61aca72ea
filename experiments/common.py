"""What every experiment script shares: arguments, MNIST loading, writing results."""

import argparse
import json
import time
from pathlib import Path

import jax

import funcnets as fn

RESULTS = Path(__file__).parent / "results"


def arguments(doc: str, epochs: int) -> argparse.ArgumentParser:
    """A parser with ``--data-dir``, ``--epochs``, ``--seed`` and ``--smoke``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, help="root holding mnist/ (default $FUNCNETS_DATA)"
    )
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="2,000 samples, 1 epoch (for CI)")
    return parser


def load_mnist(args: argparse.Namespace) -> tuple[tuple, tuple, tuple, int]:
    """``(train, validation, test, epochs)``: 6,000 of the 60,000 training images held out.

    The validation split is drawn by ``fn.data.split`` from the seed; the test set
    is for the final numbers only. With ``--smoke``: 2,000 training images (200
    held out), 500 test images and one epoch.
    """
    train, test = fn.data.load_mnist(root=args.data_dir, download=args.data_dir is None)
    epochs = args.epochs
    if args.smoke:
        train, test, epochs = (train[0][:2000], train[1][:2000]), (test[0][:500], test[1][:500]), 1
    train, validation = fn.data.split(train, 0.1, jax.random.key(args.seed))
    return train, validation, test, epochs


def best_on_validation(epochs: int) -> fn.train.EarlyStopping:
    """Model selection on the validation split: training returns the epoch of best accuracy."""
    return fn.train.EarlyStopping("val_accuracy", patience=epochs, restore_best=True)


def final_numbers(net: fn.Layer, ts: fn.train.TrainState, validation, test, selector) -> dict:
    """The selected epoch's validation numbers and, touched once here, the test numbers."""
    loss = fn.losses.sparse_cross_entropy
    val = fn.train.evaluate(net, ts, validation, loss_fn=loss)
    result = fn.train.evaluate(net, ts, test, loss_fn=loss)
    return {
        "selected_epoch": selector.best_epoch,
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
    }


def write_results(name: str, result: dict, history: fn.train.History, smoke: bool) -> None:
    """Writes ``results/<name>.json`` (with the backend) and the curves ``<name>.png``."""
    name = f"{name}_smoke" if smoke else name
    result = {**result, "backend": jax.default_backend(), "smoke": smoke}
    result["history"] = dict(history)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    history.plot(RESULTS / f"{name}.png")


def write_summary(name: str, summary: dict, start: float, cpu: float, smoke: bool) -> None:
    """Writes ``results/<name>.json`` with the wall and CPU seconds since ``start``/``cpu``.

    ``start`` and ``cpu`` are ``time.perf_counter()`` and ``time.process_time()``
    at the script's start; the backend and ``smoke`` are recorded too.
    """
    summary = {
        **summary,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "backend": jax.default_backend(),
        "smoke": smoke,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=1))
    print(f"{summary['seconds']} s ({summary['cpu_seconds']} s of CPU time)")
