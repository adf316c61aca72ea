"""Regularization on 1,000 MNIST images: L1, L2, dropout, early stopping, augmentation, all.

With 1,000 training images a 784-256-256-10 MLP (269,322 parameters)
memorises its training set within about ten epochs while its validation
accuracy stalls: the gap between the two is the overfitting each
regularizer should close. Every model is trained by `fn.train.fit` with the
same budget: Adam (learning rate 1e-3), batch 50, ``--epochs`` (default 30)
epochs, softmax cross-entropy. The regularizers (Goodfellow, Bengio &
Courville 2016, chapter 7):

- none;
- L1: ``penalty=lambda p: lam * fn.losses.l1_penalty(p)`` (``lam Σ|w|``,
  every parameter, biases included; Tibshirani 1996);
- L2: ``penalty=lambda p: lam * fn.losses.l2_penalty(p)`` (``lam/2 Σ w²``;
  Krogh & Hertz 1992; under Adam its gradient is rescaled like the data
  gradient, so it is not decoupled weight decay, Loshchilov & Hutter 2019);
- dropout after each hidden layer, rate p (`fn.models.mlp(..., dropout=p)`;
  Srivastava et al. 2014);
- early stopping: `fn.train.EarlyStopping("val_loss", patience=10,
  restore_best=True)` (Prechelt 1998), the model of lowest validation loss
  before the patience runs out. Training is deterministic, so it is read off
  the runs without regularization (the callback watches them, `Watch`) rather
  than trained again;
- augmentation: a random translation by up to ``pad`` pixels
  (``augment=lambda key, x: fn.data.random_crop(key, x, padding=pad)`` in
  fit, drawn afresh in every step);
- all combined: L1, L2, dropout, augmentation and early stopping (which
  stops this run), each at the strength chosen for it alone.

Data (settings stated, not inherited): the first 1,000 of the 54,000
training images left after `common.load_mnist` holds out 6,000 as the
validation split (keyed by the seed); the first 2,000 of those validate
every epoch; the 10,000 test images are evaluated once per final model, at
the end. Strengths are chosen on the validation split with seed ``--seed``
from the grids in ``GRIDS`` (L1 1e-6, 1e-5, 1e-4; L2 1e-4, 1e-3, 1e-2;
dropout 0.25, 0.5, 0.75; translations of 1, 2, 3 pixels; a winner at a
grid's edge is flagged in the JSON); the criterion is the validation
accuracy of the model the configuration reports (its last epoch). Each
configuration then runs with 3 seeds (initialisation, shuffles, dropout
masks and translations). Reported per configuration, mean ± std over the
seeds: training accuracy and loss (the 1,000 images, evaluated without
dropout or augmentation), validation accuracy and loss, test accuracy, the
gap train - validation accuracy and validation - training loss; curves of
training and validation accuracy per epoch.

    python experiments/regularization.py [--data-dir DIR] [--epochs N] [--smoke]

``--smoke``: 1,000 training and 200 validation images, `mlp([32, 10])`, the
middle strength of each grid, one seed, 3 epochs (patience 1). Full run:
166 s (125 s of CPU time) on 2 shared CPU cores. Writes
experiments/results/regularization.{json,png}.
"""

import json
import time

import jax
import numpy as np
from common import RESULTS, arguments, load_mnist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

LOSS = fn.losses.sparse_cross_entropy
TRAIN_SIZE, VAL_SIZE, BATCH = 1_000, 2_000, 50
CONFIGS = ["none", "L1", "L2", "dropout", "early stopping", "augmentation", "all combined"]
GRIDS = {  # the strengths tried for each regularizer alone
    "L1": (1e-6, 1e-5, 1e-4),
    "L2": (1e-4, 1e-3, 1e-2),
    "dropout": (0.25, 0.5, 0.75),
    "augmentation": (1, 2, 3),
}


class TrainAccuracy(fn.train.Callback):
    """The training set's accuracy and loss after each epoch, without dropout or augmentation."""

    def __init__(self, net: fn.Layer, data: tuple) -> None:
        self.net, self.data = net, data

    def on_train_begin(self, ts: fn.train.TrainState) -> None:
        self.accuracy: list[float] = []
        self.loss: list[float] = []

    def on_epoch_end(self, epoch: int, ts: fn.train.TrainState, logs) -> bool:
        scores = fn.train.evaluate(
            self.net, ts, self.data, loss_fn=LOSS, batch_size=len(self.data[1])
        )
        self.accuracy.append(scores["accuracy"])
        self.loss.append(scores["loss"])
        return False


class Watch(fn.train.Callback):
    """Runs an `fn.train.EarlyStopping` beside training without letting it stop the run.

    Training is deterministic, so the epochs up to the stop and the state it
    keeps are those of a run that did stop: the early-stopped model is read
    off a run that goes on to the full budget.
    """

    def __init__(self, stopper: fn.train.EarlyStopping) -> None:
        self.stopper = stopper

    def on_train_begin(self, ts: fn.train.TrainState) -> None:
        self.stopper.on_train_begin(ts)
        self.stopped = False

    def on_epoch_end(self, epoch: int, ts: fn.train.TrainState, logs) -> bool:
        if not self.stopped:
            self.stopped = self.stopper.on_epoch_end(epoch, ts, logs)
        return False


def record(seed, net, ts, tracker, history, selected: int, epochs_run: int) -> dict:
    """A run's curves up to ``epochs_run`` and its numbers at epoch ``selected``."""
    return {
        "seed": seed,
        "selected_epoch": selected,
        "epochs_run": epochs_run,
        "train_accuracy_per_epoch": tracker.accuracy[:epochs_run],
        "train_loss_per_epoch": tracker.loss[:epochs_run],
        "val_accuracy_per_epoch": history["val_accuracy"][:epochs_run],
        "val_loss_per_epoch": history["val_loss"][:epochs_run],
        "train_accuracy": tracker.accuracy[selected - 1],
        "train_loss": tracker.loss[selected - 1],
        "val_accuracy": history["val_accuracy"][selected - 1],
        "val_loss": history["val_loss"][selected - 1],
        "ts": ts,
        "net": net,
    }


def train(settings: dict, data, validation, epochs, patience, seed, nets, watch=False) -> dict:
    """One run of a configuration ``settings`` (strengths by name).

    With ``watch``, the run also holds ``"early stopping"``: the model
    `fn.train.EarlyStopping` (on ``val_loss``, ``patience``) would have kept.
    """
    terms = []
    if "L1" in settings:
        terms.append(lambda p, lam=settings["L1"]: lam * fn.losses.l1_penalty(p))
    if "L2" in settings:
        terms.append(lambda p, lam=settings["L2"]: lam * fn.losses.l2_penalty(p))
    penalty = (lambda p: sum(term(p) for term in terms)) if terms else None
    augment = None
    if "augmentation" in settings:
        pad = settings["augmentation"]
        augment = lambda key, x: fn.data.random_crop(key, x, padding=pad)  # noqa: E731
    net = nets(settings.get("dropout", 0.0))
    tracker = TrainAccuracy(net, data)
    stopper = fn.train.EarlyStopping("val_loss", patience=patience, restore_best=True)
    callbacks: list[fn.train.Callback] = [tracker]
    if settings.get("early stopping"):
        callbacks.append(stopper)
    elif watch:
        callbacks.append(Watch(stopper))
    ts, history = fn.train.fit(
        net,
        LOSS,
        fn.optim.adam(1e-3),
        data,
        epochs=epochs,
        batch_size=BATCH,
        key=jax.random.key(seed),
        val_data=validation,
        penalty=penalty,
        augment=augment,
        callbacks=callbacks,
        progress=False,
    )
    ran = len(history["val_accuracy"])
    if settings.get("early stopping"):
        return record(seed, net, ts, tracker, history, stopper.best_epoch, ran)
    result = record(seed, net, ts, tracker, history, ran, ran)
    if watch:
        stop = stopper.stopped_epoch or ran
        result["early stopping"] = record(
            seed, net, stopper.best_ts, tracker, history, stopper.best_epoch, stop
        )
    return result


def choose(name: str, data, validation, epochs, patience, seed, nets, smoke) -> tuple:
    """The strength of regularizer ``name`` with the best validation accuracy, and its run."""
    tried = {}
    for value in GRIDS[name][1:2] if smoke else GRIDS[name]:
        tried[value] = train({name: value}, data, validation, epochs, patience, seed, nets)
        print(f"{name:12s} {value:<9.3g} validation accuracy {tried[value]['val_accuracy']:.2%}")
    best = max(tried, key=lambda v: tried[v]["val_accuracy"])
    sweep = [
        {"strength": v, "val_accuracy": r["val_accuracy"], "val_loss": r["val_loss"]}
        for v, r in tried.items()
    ]
    at_edge = not smoke and best in (GRIDS[name][0], GRIDS[name][-1])
    return best, tried[best], sweep, at_edge


def mean_std(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def curve(runs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per epoch over runs that may have stopped at different epochs."""
    length = max(len(r[key]) for r in runs)
    values = np.full((len(runs), length), np.nan)
    for i, r in enumerate(runs):
        values[i, : len(r[key])] = r[key]
    return np.nanmean(values, axis=0), np.nanstd(values, axis=0)


def plot(results: dict, path) -> None:
    figure = Figure(figsize=(16, 13))
    FigureCanvasAgg(figure)
    panels = figure.subplots(3, 3).ravel()
    finals = [r["val_accuracy"] for result in results.values() for r in result["runs"]]
    bottom = min(0.8, min(finals) - 0.05)
    for axes, (name, result) in zip(panels, results.items()):
        train_mean, _ = curve(result["runs"], "train_accuracy_per_epoch")
        val_mean, val_std = curve(result["runs"], "val_accuracy_per_epoch")
        epochs = np.arange(1, len(val_mean) + 1)
        axes.plot(epochs, train_mean, label="train (clean)")
        axes.plot(epochs, val_mean, "--", label="validation")
        axes.fill_between(epochs, val_mean, train_mean, alpha=0.15, label="gap")
        axes.fill_between(epochs, val_mean - val_std, val_mean + val_std, alpha=0.3)
        table = result["table"]
        if "early stopping" in result["settings"]:
            axes.axvline(table["selected_epoch"]["mean"], color="grey", linestyle=":",
                         label="selected epoch (mean)")  # fmt: skip
        axes.set(
            title=f"{name}: gap {table['gap']['mean']:.1%}, test "
            f"{table['test_accuracy']['mean']:.1%}",
            xlabel="epoch",
            ylim=(bottom, 1.005),
        )
        panels[7].plot(epochs, train_mean - val_mean, label=name)
    panels[7].set(title="gap: train − validation accuracy", xlabel="epoch")
    names = list(results)
    width = 0.27
    for i, split in enumerate(("train_accuracy", "val_accuracy", "test_accuracy")):
        means = [results[n]["table"][split]["mean"] for n in names]
        stds = [results[n]["table"][split]["std"] for n in names]
        panels[8].bar(
            np.arange(len(names)) + (i - 1) * width,
            means,
            width,
            yerr=stds,
            label=split.removesuffix("_accuracy"),
        )
    panels[8].set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
    panels[8].set(title="accuracy of the reported models", ylim=(bottom, 1.005))
    for axes in panels:
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:  # the smoke run leaves panels empty
            axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    args = arguments(__doc__, epochs=30).parse_args()
    start = time.perf_counter()
    (x, y), validation, test, epochs = load_mnist(args)
    data = (x[:TRAIN_SIZE], y[:TRAIN_SIZE])
    validation = (validation[0][:VAL_SIZE], validation[1][:VAL_SIZE])
    sizes = [32, 10] if args.smoke else [256, 256, 10]
    epochs, patience = (3, 1) if args.smoke else (epochs, 10)
    seeds = [args.seed] if args.smoke else [args.seed, args.seed + 1, args.seed + 2]
    built: dict[float, fn.Layer] = {}

    def nets(dropout: float) -> fn.Layer:  # one Layer per rate: its evaluation compiles once
        return built.setdefault(dropout, fn.models.mlp(sizes, dropout=dropout))

    chosen, first_runs, sweeps = {}, {}, {}
    for name in GRIDS:
        value, run, sweep, at_edge = choose(
            name, data, validation, epochs, patience, args.seed, nets, args.smoke
        )
        chosen[name], first_runs[name] = value, run
        sweeps[name] = {"grid": sweep, "chosen": value, "at_grid_edge": at_edge}
    settings = {
        "none": {},
        "L1": {"L1": chosen["L1"]},
        "L2": {"L2": chosen["L2"]},
        "dropout": {"dropout": chosen["dropout"]},
        "early stopping": {"early stopping": True, "read off": "the runs of none"},
        "augmentation": {"augmentation": chosen["augmentation"]},
        "all combined": {**chosen, "early stopping": True},
    }
    results = {}
    for name in CONFIGS:
        if name == "early stopping":  # read off the runs without regularization
            runs = [r.pop("early stopping") for r in results["none"]["runs"]]
        else:
            runs = [first_runs[name]] if name in first_runs else []
            for seed in seeds[len(runs) :]:
                runs.append(
                    train(settings[name], data, validation, epochs, patience, seed, nets,
                          watch=name == "none")
                )  # fmt: skip
        results[name] = {"settings": settings[name], "runs": runs}
        print(
            f"{name:15s} validation accuracy "
            f"{np.mean([r['val_accuracy'] for r in runs]):.2%} over {len(runs)} seeds"
        )

    for name, result in results.items():  # the test set, touched once per final model
        for r in result["runs"]:
            r["test_accuracy"] = fn.train.evaluate(r.pop("net"), r.pop("ts"), test)["accuracy"]
        runs = result["runs"]
        result["table"] = {
            split: mean_std([r[split] for r in runs])
            for split in (
                "train_accuracy",
                "val_accuracy",
                "test_accuracy",
                "train_loss",
                "val_loss",
            )
        }
        result["table"]["gap"] = mean_std([r["train_accuracy"] - r["val_accuracy"] for r in runs])
        result["table"]["loss_gap"] = mean_std([r["val_loss"] - r["train_loss"] for r in runs])
        result["table"]["selected_epoch"] = mean_std([r["selected_epoch"] for r in runs])
        t = result["table"]
        print(
            f"{name:15s} train {t['train_accuracy']['mean']:.2%}  validation "
            f"{t['val_accuracy']['mean']:.2%} ± {t['val_accuracy']['std']:.2%}  test "
            f"{t['test_accuracy']['mean']:.2%} ± {t['test_accuracy']['std']:.2%}  gap "
            f"{t['gap']['mean']:.2%}"
        )

    name = "regularization_smoke" if args.smoke else "regularization"
    RESULTS.mkdir(exist_ok=True)
    best = max(results, key=lambda n: results[n]["table"]["val_accuracy"]["mean"])
    report = {
        "experiment": "regularization of an MLP on 1,000 MNIST training images",
        "model": f"fn.models.mlp({sizes}), Adam 1e-3, batch {BATCH}",
        "train_examples": len(data[1]),
        "val_examples": len(validation[1]),
        "test_examples": len(test[1]),
        "epochs": epochs,
        "early_stopping_patience": patience,
        "seeds": seeds,
        # the headline model (the fields every MNIST experiment reports): the configuration
        # of highest mean validation accuracy, mean over its seeds
        "headline": f"{best}, mean over the seeds",
        "val_accuracy": results[best]["table"]["val_accuracy"]["mean"],
        "test_accuracy": results[best]["table"]["test_accuracy"]["mean"],
        "selected_epoch": results[best]["table"]["selected_epoch"]["mean"],
        "anchor": "an MLP trained on all 60,000 MNIST images reaches about 98.4% test "
        "accuracy (800 hidden units, cross-entropy; Simard et al. 2003); with 1,000 images "
        "expect about 88-92%",
        "sweeps": sweeps,
        "table": {n: r["table"] for n, r in results.items()},
        "configs": results,
        "seconds": round(time.perf_counter() - start, 1),
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    plot(results, RESULTS / f"{name}.png")
    print(f"{report['seconds']:.0f} s in all")


if __name__ == "__main__":
    main()
