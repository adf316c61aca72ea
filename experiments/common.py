"""What every experiment script shares: arguments, MNIST loading, writing results."""

import argparse
import json
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


def load_mnist(args: argparse.Namespace) -> tuple[tuple, tuple, int]:
    """``(train, test, epochs)``; with ``--smoke``, 2,000 / 500 samples and one epoch."""
    train, test = fn.data.load_mnist(root=args.data_dir)
    if args.smoke:
        return (train[0][:2000], train[1][:2000]), (test[0][:500], test[1][:500]), 1
    return train, test, args.epochs


def write_results(name: str, result: dict, history: fn.train.History, smoke: bool) -> None:
    """Writes ``results/<name>.json`` (with the backend) and the curves ``<name>.png``."""
    name = f"{name}_smoke" if smoke else name
    result = {**result, "backend": jax.default_backend(), "smoke": smoke}
    result["history"] = dict(history)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    history.plot(RESULTS / f"{name}.png")
