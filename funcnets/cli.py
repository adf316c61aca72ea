"""The ``funcnets`` command: ``funcnets train``, ``funcnets summary`` and ``funcnets rl cartpole``.

``funcnets rl cartpole`` trains policy-gradient agents (REINFORCE with a
baseline, or A2C) on `fn.rl.CartPole`, many seeds in one compiled call, and
reports how many solve it (see `funcnets.rl.cli`).

``funcnets train`` with no arguments trains an MLP on the bundled 8x8 digits in
seconds. ``--model`` picks a classifier (mlp, lenet5, resnet20/32/44/56 and
their plain twins plain20/...) trained on images and labels, or a model of
the images alone (autoencoder, vae, rbm, gan), whose metrics are its own
(reconstruction error, ELBO, ...). Each run owns one directory, ``--out`` (default
``runs/<model>-<dataset>-<time>``)::

    config.json      the run's configuration (model, dataset, optimizer, lr,
                     batch_size, hidden, seed, val_fraction, precision) and total epochs,
                     written before the first epoch; its status ("running",
                     "interrupted", "failed", "finished"), and once finished
                     the final validation and test metrics
    checkpoints/     epoch-0007-<run id>.ckpt: the TrainState after each epoch,
                     written atomically; the newest --keep-checkpoints are kept
    history.json     per-epoch metrics (loss, accuracy, val_loss, ...),
                     rewritten after every epoch
    checkpoint.ckpt  the final TrainState                     (once finished)
    curves.png       loss and accuracy curves of every epoch  (once finished)
    last-good.ckpt   the last good TrainState, for inspection (after a non-finite loss)

Precision: ``--precision bf16`` computes in bfloat16 and ``fp16`` in float16
with dynamic loss scaling (`fn.precision`); parameters, optimizer state,
normalisation, softmax and the loss stay float32 either way.

The data: ``--val-fraction`` of the training set (drawn with a key derived
from ``--seed``, so a resumed run validates on the same examples) is held out,
and its metrics are logged after every epoch. The test set is evaluated once,
at the end, for the final numbers.

Resuming: ``--resume RUN_DIR`` continues a run (interrupted, failed or
finished) in its own directory from its newest per-epoch checkpoint, or from
the start if it had none. Its config.json says what is resumed: flags that
differ from it are refused, naming each difference, and flags left out take
the run's values. The checkpoints keep the run id, and history.json keeps the
first E epochs (E: the checkpoint's epoch) and appends the new ones, so every
epoch appears once. ``--epochs N`` is always the run's TOTAL number of
epochs, so repeating an interrupted command with ``--resume RUN_DIR`` ends at
epoch N with the state an uninterrupted run would have had, bit for bit; a
larger N extends a finished run. ``--resume CHECKPOINT_FILE`` continues from
that file: in the run it belongs to (the directory holding config.json, or
its parent for a file in checkpoints/), or, for a file of no run, as a new run
configured by the flags (or by the file's own metadata). With ``--out``
naming another directory, a resume starts a new run there from the
checkpoint, with the source run's configuration and history, and leaves the
source run untouched.

Failures: Ctrl-C stops with status 130 (the checkpoint of the last completed
epoch is on disk). A non-finite loss stops with status 1, saving the last
good state as last-good.ckpt. A bad argument exits with status 2, a usage
line and one error line, before any training: unknown or out-of-range values,
a model that does not fit the dataset, an ``--out`` that cannot be written or
already holds another run, a resume that conflicts with the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from funcnets import checkpoint, data, losses, models, optim, precision, rl, summary, train
from funcnets.layers.base import Layer
from funcnets.models.trainable import Trainable

Split = tuple[np.ndarray, np.ndarray]
CONFIG, HISTORY, FINAL, LAST_GOOD, CHECKPOINTS = (
    "config.json", "history.json", "checkpoint.ckpt", "last-good.ckpt", "checkpoints",
)  # fmt: skip
# fold_in tags of the seed's key: the data, the validation split, an unsupervised model's evaluation
_DATA_STREAM, _VALIDATION_STREAM, _EVALUATION_STREAM = 0x44415441, 0x56414C44, 0x4556414C


@dataclass(frozen=True)
class Dataset:
    """What the command knows about a dataset: how to load it and how to train on it."""

    load: Callable[[jax.Array, Path | None], tuple[Split, Split]]  # (key, data_dir)
    examples: int  # in the training set
    input_shape: tuple[int, ...]
    classes: int
    images: bool
    epochs: int  # default number of epochs
    hidden: tuple[int, ...]  # default MLP hidden widths


def _synthetic(make: Callable[..., tuple[jax.Array, jax.Array]]) -> Callable:
    """A loader of 600 training and 600 test points from a key-driven generator."""

    def load(key: jax.Array, data_dir: Path | None) -> tuple[Split, Split]:
        (xtr, ytr), (xte, yte) = (make(jax.random.fold_in(key, i), n=600) for i in (1, 2))
        return (np.asarray(xtr), np.asarray(ytr)), (np.asarray(xte), np.asarray(yte))

    return load


def _points(make: Callable, classes: int, epochs: int) -> Dataset:
    return Dataset(_synthetic(make), 600, (2,), classes, False, epochs, (64, 64))


def _mnist(load: Callable) -> Dataset:
    return Dataset(lambda key, root: load(root=root), 60000, (28, 28, 1), 10, True, 10, (256, 128))


DATASETS: dict[str, Dataset] = {
    "digits": Dataset(lambda key, root: data.load_digits(), 1437, (8, 8, 1), 10, True, 30,
                      (256, 128)),
    "xor": _points(data.xor, classes=2, epochs=200),
    "spirals": _points(data.spirals, classes=3, epochs=200),
    "moons": _points(data.moons, classes=2, epochs=100),
    "mnist": _mnist(data.load_mnist),
    "fashion-mnist": _mnist(data.load_fashion_mnist),
}  # fmt: skip


@dataclass(frozen=True)
class Model:
    """A model the command builds: from a dataset's entry and the MLP widths.

    A classifier is a `Layer` trained by `fn.train.fit` on (image, label)
    pairs; any other model is a `fn.models.Trainable` (an autoencoder, a VAE,
    a GAN, an RBM) trained by `fn.train.run` over its own step on the images
    alone, and scored by its own ``evaluate``.
    """

    build: Callable[[Dataset, Sequence[int] | None], Layer | Trainable]
    fits: Callable[[Dataset], bool]
    needs: str  # what ``fits`` asks of a dataset, in words
    widths: bool  # whether --hidden applies
    classifier: bool = True


def _mnist_sized(d: Dataset) -> bool:
    return d.images and d.input_shape == (28, 28, 1)


def _images(d: Dataset) -> bool:
    return d.images


def _generative(build: Callable[[Dataset], Trainable], fits: Callable[[Dataset], bool],
                needs: str) -> Model:  # fmt: skip
    return Model(lambda d, hidden: build(d), fits, needs, widths=False, classifier=False)


def _resnet(depth: int, plain: bool) -> Model:
    return Model(lambda d, hidden: models.resnet(depth, d.classes, plain=plain), _images,
                 "images", widths=False)  # fmt: skip


MODELS: dict[str, Model] = {
    "mlp": Model(lambda d, hidden: models.mlp([*(hidden or d.hidden), d.classes]),
                 lambda d: True, "any inputs", widths=True),
    "lenet5": Model(lambda d, hidden: models.lenet5(d.classes), _mnist_sized, "28x28x1 images",
                    widths=False),
    **{f"{'plain' if plain else 'resnet'}{depth}": _resnet(depth, plain)
       for plain in (False, True) for depth in (20, 32, 44, 56)},
    # the experiments' models (experiments/mnist_*.py), trained with the command's optimizer
    "autoencoder": _generative(lambda d: models.autoencoder(d.input_shape, 30, (1000, 500, 250)),
                               _images, "images"),
    "vae": _generative(lambda d: models.vae(50, (500, 500)), _images, "images"),
    "rbm": _generative(lambda d: models.rbm(math.prod(d.input_shape), 500), _images, "images"),
    "gan": _generative(lambda d: models.dcgan_mnist(), _mnist_sized, "28x28x1 images"),
}  # fmt: skip
OPTIMIZERS = (
    "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "adamax", "nadam", "amsgrad", "lion",
)  # fmt: skip
DEFAULT_LR = {"sgd": 0.05, "adagrad": 0.05, "adadelta": 1.0, "lion": 1e-4}
#: The configuration that makes a run what it is; a resume may not change it.
IDENTITY = ("model", "dataset", "optimizer", "lr", "batch_size", "hidden", "seed", "val_fraction",
            "precision")  # fmt: skip
#: ``--precision`` choices: `fn.precision.POLICIES`; fp16 adds dynamic loss scaling.
PRECISIONS = tuple(precision.POLICIES)
#: Defaults of the rest; the dataset's is the first in DATASETS that fits the model.
DEFAULTS = {"model": "mlp", "dataset": None, "optimizer": "adam", "batch_size": 64, "seed": 0,
            "val_fraction": 0.1, "precision": "float32"}  # fmt: skip


class UsageError(Exception):
    """A bad argument: reported as a usage line and one error line, status 2."""


# -- argument types -----------------------------------------------------------------------------


def _shown(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:37]}..."


def count(text: str) -> int:
    """A positive int that fits in int32 (epochs, batch size, checkpoints kept)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value < 2**31:
        raise argparse.ArgumentTypeError(
            f"must be an integer from 1 to {2**31 - 1}, got {_shown(text)}"
        )
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {_shown(text)}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {_shown(text)}")
    return value


def seed(text: str) -> int:
    """An int in [0, 2**64): any 64-bit seed, each giving a different key (see `seed_key`)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(
            f"must be an integer from 0 to 2**64-1 = {2**64 - 1}, got {_shown(text)}"
        )
    return value


def widths(text: str) -> list[int]:
    try:
        values = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated widths like 256,128, got {_shown(text)!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive widths, got {_shown(text)!r}"
        )
    return values


def seed_key(value: int) -> jax.Array:
    """``jax.random.key(value)`` for any 64-bit seed.

    Without x64, jax keeps only a seed's low 32 bits (seeds 0 and 2**32 would
    give the same run); seeds from 2**32 up fold their high bits in.
    """
    key = jax.random.key(value & 0xFFFFFFFF)
    return key if value < 2**32 else jax.random.fold_in(key, value >> 32)


# -- the parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funcnets", description="Train and inspect funcnets models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,summary,rl}")

    tr = commands.add_parser(
        "train", help="train a model; checkpoints, history and curves go to a run directory",
        usage="funcnets train [--model M] [--dataset D] [--epochs N] [--optimizer O] [--lr LR] ...",
        description=(__doc__ or "\n\n").split("\n\n", 1)[1],  # None under python -OO
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    # The run's configuration flags default to None: on --resume, a flag left out means "as
    # the run was", and a flag given must agree with the run.
    tr.add_argument("--model", choices=MODELS, help="default: mlp")
    tr.add_argument("--dataset", choices=DATASETS,
                    help="default: digits (mnist for lenet5)")  # fmt: skip
    tr.add_argument("--epochs", type=count, metavar="N",
                    help="the run's total epochs, also on --resume (default: per dataset, or "
                         "the resumed run's)")  # fmt: skip
    tr.add_argument("--batch-size", type=count, help="default: 64")
    tr.add_argument("--optimizer", choices=OPTIMIZERS, help="default: adam")
    tr.add_argument("--lr", type=positive_float, help="learning rate (default: per optimizer)")
    tr.add_argument("--hidden", type=widths, help="MLP hidden widths, e.g. 256,128")
    tr.add_argument("--seed", type=seed, help="0 to 2**64-1 (default: 0)")
    tr.add_argument("--val-fraction", type=fraction, metavar="F",
                    help="share of the training set held out for validation, 0 for none "
                         "(default: 0.1)")  # fmt: skip
    tr.add_argument("--precision", choices=PRECISIONS,
                    help="arithmetic: float32, bf16 (bfloat16) or fp16 (float16, with loss "
                         "scaling); parameters stay float32 (default: float32)")  # fmt: skip
    tr.add_argument("--out", type=Path, metavar="RUN_DIR",
                    help="the run directory, new or empty "
                         "(default: runs/<model>-<dataset>-<time>)")  # fmt: skip
    tr.add_argument("--resume", type=Path, metavar="RUN_DIR|CHECKPOINT_FILE",
                    help="continue a run, or a checkpoint (see above)")  # fmt: skip
    tr.add_argument("--keep-checkpoints", type=count, default=3, metavar="K",
                    help="per-epoch checkpoints kept (default: 3)")  # fmt: skip
    tr.add_argument("--data-dir", type=Path, help="where MNIST files are cached ($FUNCNETS_DATA)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    tr.set_defaults(command_parser=tr)

    su = commands.add_parser(
        "summary", help="print a model's layers, shapes and parameter counts",
        usage="funcnets summary [--model M] [--dataset D] [--hidden W,W]",
    )  # fmt: skip
    su.add_argument("--model", choices=MODELS, default="mlp")
    su.add_argument("--dataset", choices=DATASETS, help="default: the first that fits the model")
    su.add_argument("--hidden", type=widths)
    su.set_defaults(command_parser=su)

    reinforcement = commands.add_parser("rl", help="reinforcement learning in pure JAX")
    environments = reinforcement.add_subparsers(dest="environment", required=True)
    cartpole = environments.add_parser(
        "cartpole", help="train agents on CartPole-v1 (fn.rl.CartPole), many seeds at once",
        usage="funcnets rl cartpole [--algorithm {reinforce,a2c}] [--seeds N] [--out DIR] ...",
    )  # fmt: skip
    rl.add_cartpole_arguments(cartpole)
    cartpole.set_defaults(command_parser=cartpole)
    return parser


# -- configuration ------------------------------------------------------------------------------


def check_fits(model: str, dataset: str | None, hidden: Sequence[int] | None) -> str:
    """The dataset (the first that fits, if None); a UsageError if ``model`` cannot train on it."""
    spec = MODELS[model]
    fitting = [name for name, d in DATASETS.items() if spec.fits(d)]
    if hidden is not None and not spec.widths:
        raise UsageError(f"--hidden: --model {model} has no hidden widths to set (mlp has)")
    if dataset is None:
        return fitting[0]
    if not spec.fits(DATASETS[dataset]):
        info = DATASETS[dataset]
        shape = "x".join(map(str, info.input_shape))
        has = f"{shape} images" if info.images else f"points of {shape} features"
        raise UsageError(
            f"--model {model} needs {spec.needs}, i.e. --dataset {' or '.join(fitting)}; "
            f"{dataset} has {has}"
        )
    return dataset


def _flag(name: str, value: Any) -> str:
    shown = ",".join(map(str, value)) if isinstance(value, list) else value
    return f"--{name.replace('_', '-')} {'(none)' if shown is None else shown}"


def resolve_config(args: argparse.Namespace, saved: dict | None, source: str) -> dict[str, Any]:
    """The run's configuration: ``saved`` (checked against the flags given), or flags + defaults."""
    given = {name: getattr(args, name) for name in IDENTITY if getattr(args, name) is not None}
    if saved is not None:
        differs = [
            f"{_flag(name, saved[name])}, not {_flag(name, value)}"
            for name, value in given.items()
            if value != saved[name]
        ]
        if differs:
            raise UsageError(
                f"--resume: {source} was trained with {'; '.join(differs)} (leave these flags "
                "out to continue it, or start a new run without --resume)"
            )
        return dict(saved)
    config = {**DEFAULTS, **given}
    config["dataset"] = check_fits(config["model"], config["dataset"], given.get("hidden"))
    info = DATASETS[config["dataset"]]
    held, examples = round(config["val_fraction"] * info.examples), info.examples
    if config["val_fraction"] and not 0 < held < examples:
        raise UsageError(
            f"--val-fraction {config['val_fraction']} of the {examples} training examples of "
            f"{config['dataset']} leaves no {'validation' if held == 0 else 'training'} examples"
        )
    if not MODELS[config["model"]].classifier and config["precision"] != "float32":
        raise UsageError(
            f"--precision {config['precision']}: --model {config['model']} trains in float32 "
            "only (the precision policies apply to classifiers)"
        )
    if config.get("lr") is None:
        config["lr"] = DEFAULT_LR.get(config["optimizer"], 1e-3)
    if MODELS[config["model"]].widths:
        config["hidden"] = list(given.get("hidden") or info.hidden)
    else:
        config["hidden"] = None
    return {name: config[name] for name in IDENTITY}


def saved_config(record: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The identity part of a config.json or checkpoint metadata, checked."""
    record = {"precision": "float32", **record}  # runs from before --precision were float32
    missing = [name for name in IDENTITY if name not in record]
    if missing:
        raise UsageError(
            f"--resume: {where} holds no funcnets train configuration (no {', '.join(missing)})"
        )
    config = {name: record[name] for name in IDENTITY}
    tables = (("model", MODELS), ("dataset", DATASETS), ("optimizer", OPTIMIZERS),
              ("precision", PRECISIONS))  # fmt: skip
    for name, table in tables:
        if config[name] not in table:
            raise UsageError(f"--resume: {where} names an unknown {name} {config[name]!r}")
    return config


# -- the run directory --------------------------------------------------------------------------


def write_json(path: Path, value: Any) -> None:
    """Writes ``value`` as JSON to ``path`` atomically (a temp file renamed onto it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def read_record(run_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads((run_dir / CONFIG).read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume: cannot read {run_dir / CONFIG}: {error}") from None
    if not isinstance(record, dict):
        raise UsageError(f"--resume: {run_dir / CONFIG} is not a run configuration")
    return record


def describe(run_dir: Path) -> str:
    """What a non-empty directory holds, in words."""
    try:
        record = json.loads((run_dir / CONFIG).read_text())
        status, done, total = record["status"], record["epochs_done"], record["epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return "other files"
    what = {"interrupted": "an interrupted", "running": "an unfinished"}.get(status, f"a {status}")
    return f"{what} run (epoch {done} of {total})"


def check_new_out(out: Path) -> None:
    """A UsageError unless ``out`` is a new or empty directory (never overwrite a run)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(
            f"--out: {out} already holds {describe(out)}; choose a new directory, or continue "
            f"that run with --resume {out}"
        )


def default_out(config: Mapping[str, Any]) -> Path:
    base = Path("runs") / f"{config['model']}-{config['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def prepare_out(out: Path) -> list[Path]:
    """Creates ``out`` (if needed) and proves it writable; returns the directories it made."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} is a file, not a directory")
    created = [d for d in (out, *out.parents) if not d.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"funcnets")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(f"--out: cannot write the run directory {out}: {reason}") from None
    return created


@dataclass
class Plan:
    """What a ``funcnets train`` command will do, settled before any data is loaded."""

    config: dict[str, Any]  # the run's identity (IDENTITY keys)
    epochs: int  # the run's total
    out: Path
    start: Path | None = None  # the checkpoint to continue from
    start_meta: dict[str, Any] | None = None
    source: Path | None = None  # the run directory resumed (history.json comes from there)
    continuing: bool = False  # whether ``out`` is the resumed run's own directory
    seconds: float = 0.0  # training time spent on the run before
    data_dir: Path | None = None  # the resumed run's --data-dir


def _metadata(path: Path) -> dict[str, Any]:
    try:
        return checkpoint.read_metadata(path)
    except (checkpoint.CheckpointError, OSError) as error:
        raise UsageError(f"--resume: {error}".replace("\n", " ")) from None


def locate(path: Path) -> tuple[Path | None, Path | None]:
    """``(run directory, checkpoint to continue from)`` named by ``--resume``; each may be None."""
    if path.is_dir():
        if not (path / CONFIG).is_file():
            raise UsageError(f"--resume: {path} is not a run directory (it has no {CONFIG})")
        return path, train.Checkpoint.latest(path / CHECKPOINTS)
    if not path.is_file():
        raise UsageError(f"--resume: no run directory or checkpoint file at {path}")
    owners = [path.parent] + ([path.parent.parent] if path.parent.name == CHECKPOINTS else [])
    return next((d for d in owners if (d / CONFIG).is_file()), None), path


def plan_train(args: argparse.Namespace) -> Plan:
    """Settles the configuration, the directory and the starting point; UsageError if unsound."""
    if args.resume is None:
        config = resolve_config(args, None, "")
        out = args.out or default_out(config)
        check_new_out(out)
        return Plan(config, args.epochs or DATASETS[config["dataset"]].epochs, out)
    source, start = locate(args.resume)
    meta = _metadata(start) if start is not None else {}
    if meta.get("mid_epoch"):
        raise UsageError(
            f"--resume: {start} is a state from inside epoch {meta.get('epoch', 0) + 1}, kept for "
            "inspection; resume the run directory to continue from its last completed epoch"
        )
    record: dict[str, Any] = {}
    if source is not None:
        record = read_record(source)
        saved: dict | None = saved_config(record, str(source / CONFIG))
        what = f"the run in {source}"
    elif isinstance(meta.get("config"), dict):
        saved, what = saved_config(meta["config"], f"{start}'s metadata"), str(start)
    else:
        saved, what = None, str(start)
    config = resolve_config(args, saved, what)
    out = args.out or source or default_out(config)
    continuing = source is not None and out.resolve() == source.resolve()
    if not continuing:
        check_new_out(out)
    epochs = args.epochs or record.get("epochs") or DATASETS[config["dataset"]].epochs
    seconds = float(record.get("train_seconds") or 0.0) if continuing else 0.0
    data_dir = Path(record["data_dir"]) if isinstance(record.get("data_dir"), str) else None
    return Plan(config, epochs, out, start, meta, source, continuing, seconds, data_dir)


# -- training -----------------------------------------------------------------------------------


class HistoryFile(train.Callback):
    """Keeps the whole run's history (``before`` plus this session's epochs) in a JSON file.

    Rewritten atomically after every epoch. It runs before the `Checkpoint`
    callback, so history.json is never behind the newest checkpoint, and a
    resume's ``History.first(ts.epoch)`` drops any epoch it is ahead by.
    """

    def __init__(self, path: Path, before: train.History) -> None:
        self.path, self.history, self.epochs_done = path, before, 0

    def on_epoch_end(self, epoch: int, ts: train.TrainState, logs: Mapping[str, float]) -> bool:
        self.history.append(logs)
        write_json(self.path, dict(self.history))
        self.epochs_done = epoch
        return False


def load_data(
    config: Mapping[str, Any], data_dir: Path | None
) -> tuple[Split, Split | None, Split]:
    """``(train, validation or None, test)`` numpy arrays; the split is fixed by the seed."""
    key = seed_key(config["seed"])
    (xtr, ytr), test = DATASETS[config["dataset"]].load(
        jax.random.fold_in(key, _DATA_STREAM), data_dir
    )
    fraction = config["val_fraction"]
    if not fraction:
        return (xtr, ytr), None, test
    train_part, val_part = data.split((xtr, ytr), fraction,
                                      jax.random.fold_in(key, _VALIDATION_STREAM))  # fmt: skip
    return train_part, val_part, test


class Classifier:
    """How the command trains and scores a `Layer`: `fit` on (image, label), accuracy and loss."""

    def __init__(self, net: Layer, optimizer: Any, arithmetic: str) -> None:
        self.net, self.optimizer = in_precision(arithmetic, net, optimizer)

    def init(self, key: jax.Array, shape: tuple[int, ...]) -> train.TrainState:
        return train.init(self.net, self.optimizer, key, shape)

    def run_epochs(
        self, ts: train.TrainState, splits: tuple, epochs: int, batch_size: int,
        callbacks: list, progress: bool,
    ) -> train.TrainState:  # fmt: skip
        train_set, val_set, _ = splits
        ts, _ = train.fit(
            self.net, losses.sparse_cross_entropy, self.optimizer, train_set, epochs=epochs,
            batch_size=batch_size, ts=ts, val_data=val_set, callbacks=callbacks,
            progress=progress,
        )  # fmt: skip
        return ts

    def evaluate(self, ts: train.TrainState, split: Split) -> dict[str, float]:
        """Loss and accuracy on ``split`` (in one batch for every dataset here but MNIST's)."""
        batch = min(len(split[1]), 1000)
        return train.evaluate(
            self.net, ts, split, loss_fn=losses.sparse_cross_entropy, batch_size=batch
        )

    @staticmethod
    def line(name: str, result: Mapping[str, float]) -> str:
        return f"{name} accuracy {result['accuracy']:.2%}  {name} loss {result['loss']:.4f}"


class Unsupervised:
    """How the command trains and scores a `Trainable`: `run` over its step on the images alone."""

    def __init__(self, model: Trainable, optimizer: Any, key: jax.Array) -> None:
        self.model, self.optimizer = model, optimizer
        self.key = jax.random.fold_in(key, _EVALUATION_STREAM)  # the same for every evaluation

    def init(self, key: jax.Array, shape: tuple[int, ...]) -> train.TrainState:
        return self.model.init(key, shape, self.optimizer)

    def run_epochs(
        self, ts: train.TrainState, splits: tuple, epochs: int, batch_size: int,
        callbacks: list, progress: bool,
    ) -> train.TrainState:  # fmt: skip
        train_set, val_set, _ = splits

        def validate(ts: train.TrainState) -> dict[str, float]:
            return {f"val_{name}": v for name, v in self.evaluate(ts, val_set).items()}

        ts, _ = train.run(
            self.model.step(self.optimizer), ts, train_set[0], epochs=epochs,
            batch_size=batch_size, callbacks=callbacks, progress=progress,
            validate=None if val_set is None else validate,
        )  # fmt: skip
        return ts

    def evaluate(self, ts: train.TrainState, split: Split) -> dict[str, float]:
        return self.model.evaluate(ts, jax.numpy.asarray(split[0]), self.key)

    @staticmethod
    def line(name: str, result: Mapping[str, float]) -> str:
        return "  ".join(f"{name} {metric} {value:.4g}" for metric, value in result.items())


def make_job(config: Mapping[str, Any]) -> Classifier | Unsupervised:
    """The model of ``config`` with its optimizer, and how the command trains and scores it."""
    built = MODELS[config["model"]].build(DATASETS[config["dataset"]], config["hidden"])
    optimizer = getattr(optim, config["optimizer"])(config["lr"])
    if isinstance(built, Layer):
        return Classifier(built, optimizer, config["precision"])
    return Unsupervised(built, optimizer, seed_key(config["seed"]))


def in_precision(name: str, net: Layer, optimizer: Any) -> tuple[Layer, Any]:
    """``net`` under the ``--precision`` policy, and ``optimizer``; fp16 scales the loss."""
    if name == "float32":
        return net, optimizer
    if name == "fp16":
        optimizer = precision.dynamic_loss_scale(optimizer)
    return precision.with_policy(net, name), optimizer


def starting_state(plan: Plan, job: Classifier | Unsupervised) -> train.TrainState:
    """A fresh `TrainState` from the seed, or the checkpoint resumed, checked against the config."""
    config = plan.config
    shape = (config["batch_size"], *DATASETS[config["dataset"]].input_shape)
    fresh = lambda: job.init(seed_key(config["seed"]), shape)
    if plan.start is None:
        return fresh()
    # Checked against the shapes, dtypes and container types of a fresh state (not computed).
    stored = (plan.start_meta or {}).get("config")
    expected = dict(config)
    if isinstance(stored, dict) and "precision" not in stored and config["precision"] == "float32":
        del expected["precision"]  # a run from before --precision (float32)
    expect = None if stored is None else {"config": expected}
    ts = checkpoint.load(plan.start, like=jax.eval_shape(fresh), expect=expect)
    if int(ts.epoch) > plan.epochs:
        raise UsageError(
            f"--epochs {plan.epochs}: {plan.start} has already trained {int(ts.epoch)} epochs "
            "(--epochs is the run's total)"
        )
    print(f"resuming {plan.out} from {plan.start} (epoch {int(ts.epoch)}, step {int(ts.step)})")
    return ts


class RunFile:
    """The run's config.json: its configuration, written first, then its status as it changes."""

    def __init__(self, plan: Plan, ts: train.TrainState, data_dir: Path | None) -> None:
        self.path, self.seconds_before = plan.out / CONFIG, plan.seconds
        self.record = {**plan.config, "epochs": plan.epochs, "status": "running",
                       "epochs_done": int(ts.epoch), "step": int(ts.step),
                       "train_seconds": round(plan.seconds, 3),
                       "resumed_from": None if plan.start is None else str(plan.start),
                       "data_dir": None if data_dir is None else str(data_dir)}  # fmt: skip
        write_json(self.path, self.record)
        self.start = time.perf_counter()

    def update(self, status: str, epochs_done: int, **fields: Any) -> float:
        """Records the run's status; returns its training time so far, in seconds."""
        seconds = self.seconds_before + time.perf_counter() - self.start
        self.record.update(status=status, epochs_done=epochs_done,
                           train_seconds=round(seconds, 3), **fields)  # fmt: skip
        write_json(self.path, self.record)
        return seconds


def run_train(args: argparse.Namespace) -> int:
    plan = plan_train(args)
    config, out = plan.config, plan.out
    created = prepare_out(out)
    try:
        job = make_job(config)
        ts = starting_state(plan, job)
        train_set, val_set, test_set = load_data(config, args.data_dir or plan.data_dir)
    except BaseException:  # nothing trained: leave no trace
        for directory in created:
            if any(directory.iterdir()):
                break
            directory.rmdir()
        raise

    before = train.History()
    if plan.source is not None and (plan.source / HISTORY).is_file():
        before = train.History.from_json(plan.source / HISTORY).first(int(ts.epoch))
    run = RunFile(plan, ts, args.data_dir or plan.data_dir)
    write_json(out / HISTORY, dict(before))
    history = HistoryFile(out / HISTORY, before)
    saver = train.Checkpoint(
        out / CHECKPOINTS, keep=args.keep_checkpoints, metadata={"config": config}
    )
    try:
        ts = job.run_epochs(ts, (train_set, val_set, test_set), plan.epochs - int(ts.epoch),
                       config["batch_size"], [history, saver], not args.no_progress)  # fmt: skip
    except KeyboardInterrupt:
        latest = train.Checkpoint.latest(out / CHECKPOINTS)
        done = int(checkpoint.read_metadata(latest)["epoch"]) if latest else 0
        run.update("interrupted", done)
        saved = f"epoch {done}'s checkpoint is {latest}" if latest else "no epoch was completed"
        print(f"funcnets: interrupted; {saved}. Continue with: funcnets train --resume {out}",
              file=sys.stderr)  # fmt: skip
        return 130
    except FloatingPointError as error:
        good, saved = getattr(error, "ts", None), ""
        if good is not None:
            meta = {"config": config, "epoch": int(good.epoch), "step": int(good.step),
                    "mid_epoch": True}  # fmt: skip
            checkpoint.save(out / LAST_GOOD, good, metadata=meta)
            saved = (
                f"\nfuncnets: the last good state (step {int(good.step)}) is in {out / LAST_GOOD}"
            )
        run.update("failed", history.epochs_done or int(ts.epoch), error=str(error))
        print(f"funcnets: error: {error}{saved}", file=sys.stderr)
        return 1

    result = job.evaluate(ts, test_set)  # the test set's only use
    val = None
    if val_set is not None:  # the last epoch's validation, logged on this very state
        logged = history.history
        val = {k[4:]: v[-1] for k, v in logged.items() if k.startswith("val_") and v}
        if logged.epochs != int(ts.epoch) or not val:  # a history with epochs missing
            val = job.evaluate(ts, val_set)
    meta = {"config": config, "epoch": int(ts.epoch), "step": int(ts.step)}
    checkpoint.save(out / FINAL, ts, metadata=meta)
    if history.history.epochs:
        history.history.plot(out / "curves.png")
    seconds = run.update("finished", int(ts.epoch), step=int(ts.step), validation=val, test=result)
    shown = [] if val is None else [job.line("validation", val)]
    print(
        "  ".join([*shown, job.line("test", result)])
        + f"  ({int(ts.epoch)} epochs, {seconds:.1f} s)  ->  {out}/"
    )
    return 0


def run_summary(args: argparse.Namespace) -> int:
    dataset = check_fits(args.model, args.dataset, args.hidden)
    if not MODELS[args.model].classifier:
        raise UsageError(f"--model {args.model} is not one network; summary shows classifiers")
    info = DATASETS[dataset]
    net = MODELS[args.model].build(info, args.hidden)
    assert isinstance(net, Layer)  # a classifier
    print(summary(net, (1, *info.input_shape)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``funcnets`` command (also ``python -m funcnets``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # argparse has printed the usage and the error (or the help)
        return exit.code if isinstance(exit.code, int) else 2
    try:
        if args.command == "rl":
            return rl.run_cartpole_command(args)
        return run_train(args) if args.command == "train" else run_summary(args)
    except UsageError as error:
        command = args.command_parser
        command.print_usage(sys.stderr)
        print(f"{command.prog}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, OSError, FloatingPointError) as error:
        print(f"funcnets: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("funcnets: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
