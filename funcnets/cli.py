"""The ``funcnets`` command: ``funcnets train`` and ``funcnets summary``.

``funcnets train`` with no arguments trains an MLP on the bundled 8x8 digits
in seconds and writes ``runs/<name>/`` with ``checkpoint.ckpt`` (the final
`TrainState`), ``history.json``, ``curves.png`` and ``config.json``. A bad
argument exits with status 2, a usage line and one error line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from funcnets import checkpoint, data, losses, models, optim, summary, train

MODELS = ("mlp", "lenet5")
DATASETS = ("digits", "xor", "spirals", "moons", "mnist", "fashion-mnist")
OPTIMIZERS = (
    "sgd",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "amsgrad",
    "lion",
)
DEFAULT_LR = {"sgd": 0.05, "adagrad": 0.05, "adadelta": 1.0, "lion": 1e-4}
DEFAULT_EPOCHS = {
    "digits": 30,
    "xor": 200,
    "spirals": 200,
    "moons": 100,
    "mnist": 10,
    "fashion-mnist": 10,
}
INPUT_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1)}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def widths(text: str) -> list[int]:
    try:
        values = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated widths like 256,128, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive widths, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funcnets", description="Train and inspect funcnets models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,summary}")

    tr = commands.add_parser(
        "train", help="train a model and save checkpoint, history and curves",
        usage="funcnets train [--model M] [--dataset D] [--epochs N] [--optimizer O] [--lr LR] ...",
    )  # fmt: skip
    tr.add_argument("--model", choices=MODELS, default="mlp")
    tr.add_argument("--dataset", choices=DATASETS, default="digits")
    tr.add_argument("--epochs", type=positive_int, help="epochs to train (default: per dataset)")
    tr.add_argument("--batch-size", type=positive_int, default=64)
    tr.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    tr.add_argument("--lr", type=positive_float, help="learning rate (default: per optimizer)")
    tr.add_argument("--hidden", type=widths, help="MLP hidden widths, e.g. 256,128")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--out", type=Path, help="run directory (default: runs/<model>-<dataset>-<time>)"
    )
    tr.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT_FILE", help="continue from a checkpoint"
    )
    tr.add_argument("--data-dir", type=Path, help="where MNIST files are cached ($FUNCNETS_DATA)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")

    su = commands.add_parser(
        "summary", help="print a model's layers, shapes and parameter counts",
        usage="funcnets summary [--model M] [--dataset D] [--hidden W,W]",
    )  # fmt: skip
    su.add_argument("--model", choices=MODELS, default="mlp")
    su.add_argument("--dataset", choices=DATASETS, default=None)
    su.add_argument("--hidden", type=widths)
    return parser


def load_dataset(name: str, model: str, seed: int, data_dir: Path | None):
    """``((x_train, y_train), (x_test, y_test), classes)`` as numpy arrays."""
    if name == "digits":
        (xtr, ytr), (xte, yte) = data.load_digits()
    elif name in ("mnist", "fashion-mnist"):
        loader = data.load_mnist if name == "mnist" else data.load_fashion_mnist
        (xtr, ytr), (xte, yte) = loader(root=data_dir)
    else:
        make = {"xor": data.xor, "spirals": data.spirals, "moons": data.moons}[name]
        (xtr, ytr), (xte, yte) = (make(jax.random.key(seed + i), n=600) for i in (1000, 2000))
    if model == "lenet5" and xtr.shape[1:] != (28, 28, 1):
        if xtr.ndim != 4:
            raise ValueError(
                f"lenet5 needs images; dataset {name!r} has inputs of shape {xtr.shape[1:]}"
            )
        # LeNet-5's shapes are fixed for 28x28: upsample smaller images (the 8x8 digits).
        xtr, xte = (
            np.asarray(jax.image.resize(x, (len(x), 28, 28, 1), "linear")) for x in (xtr, xte)
        )
    classes = int(max(np.max(ytr), np.max(yte))) + 1
    return (np.asarray(xtr), np.asarray(ytr)), (np.asarray(xte), np.asarray(yte)), classes


def build_model(model: str, classes: int, hidden: list[int] | None, dataset: str | None):
    if model == "lenet5":
        return models.lenet5(classes)
    default = [256, 128] if dataset in (None, "digits", "mnist", "fashion-mnist") else [64, 64]
    return models.mlp([*(hidden or default), classes])


def build_optimizer(name: str, lr: float | None):
    return getattr(optim, name)(lr if lr is not None else DEFAULT_LR.get(name, 1e-3))


def run_train(args: argparse.Namespace) -> int:
    (xtr, ytr), test, classes = load_dataset(args.dataset, args.model, args.seed, args.data_dir)
    net = build_model(args.model, classes, args.hidden, args.dataset)
    optimizer = build_optimizer(args.optimizer, args.lr)
    epochs = args.epochs or DEFAULT_EPOCHS[args.dataset]
    out = args.out or Path("runs") / f"{args.model}-{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)

    ts = None
    if args.resume is not None:
        like = train.init(
            net, optimizer, jax.random.key(args.seed), (args.batch_size, *xtr.shape[1:])
        )
        ts = checkpoint.load(args.resume, like=like)
        print(f"resumed from {args.resume} at step {int(ts.step)}")
    start = time.perf_counter()
    ts, history = train.fit(
        net, losses.sparse_cross_entropy, optimizer, (xtr, ytr),
        epochs=epochs, batch_size=args.batch_size, key=jax.random.key(args.seed), ts=ts,
        val_data=test, progress=not args.no_progress,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    result = train.evaluate(net, ts, test, loss_fn=losses.sparse_cross_entropy)

    checkpoint.save(out / "checkpoint.ckpt", ts)
    history.to_json(out / "history.json")
    history.plot(out / "curves.png")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(epochs=epochs, step=int(ts.step), train_seconds=round(seconds, 3), test=result)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    print(
        f"test accuracy {result['accuracy']:.2%}  test loss {result['loss']:.4f}  "
        f"({epochs} epochs, {seconds:.1f} s)  ->  {out}/"
    )
    return 0


def run_summary(args: argparse.Namespace) -> int:
    dataset = args.dataset or ("mnist" if args.model == "lenet5" else "digits")
    shape = (28, 28, 1) if args.model == "lenet5" else INPUT_SHAPES.get(dataset, (2,))
    classes = 3 if dataset == "spirals" else 2 if dataset in ("xor", "moons") else 10
    print(summary(build_model(args.model, classes, args.hidden, dataset), (1, *shape)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``funcnets`` console script and ``python -m funcnets``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.resume is not None and not args.resume.is_file():
        parser.error(f"--resume: no checkpoint file at {args.resume}")
    try:
        return run_train(args) if args.command == "train" else run_summary(args)
    except (ValueError, OSError, FloatingPointError) as error:
        print(f"funcnets: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("funcnets: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
