"""ResNets on Fashion-MNIST (He et al. 2015): the degradation problem shown and cured, and accuracy.

Part (a), degradation (the paper's Fig. 6, on CIFAR-10): plain nets of 20 and
56 layers and the ResNets of the same depths (`resnet(depth, plain=...)`: the
same convolutions and BatchNorms, with or without the shortcuts; projection
shortcuts where the shape changes) are trained the same way for
``--degradation-epochs`` (default 4) epochs: SGD with momentum 0.9, learning
rate 0.1 decayed by cosine to 0 over the run, weight decay 1e-4 (added to the
gradient, as in the paper), batch 125 (it divides the 54,000 training images,
so an epoch is one compiled scan), no augmentation (the training error then
measures optimisation alone). The training error is the running error over
each epoch (train mode, the weights changing, as the paper plots it); the
validation error is measured after each epoch in inference mode. In the paper
plain-56 trains *worse* than plain-20 while ResNet-56 trains better than
ResNet-20: more depth helps only with the shortcuts.

Part (b), accuracy: ResNet-20 (0.27M parameters) for ``--epochs`` (default 15)
epochs: SGD with Nesterov momentum 0.9, learning rate 0.1 decayed by cosine to
0, weight decay 5e-4, batch 125, with augmentation inside the compiled step:
a random translation by up to 2 pixels (`fn.data.random_crop`, padding 2) and
a random left-right flip (`fn.data.random_flip`). The epoch of best validation
accuracy is restored (`EarlyStopping(restore_best=True)`), and the test set is
evaluated once, at the end. Anchor: the Fashion-MNIST benchmark lists
ResNet-18 (11M parameters) at 94.9% test accuracy; the aim here is >= 93%.

Both parts hold out 6,000 of the 60,000 training images as a validation split
(`fn.data.split`, by the seed). ``--precision bf16`` computes in bfloat16
around float32 parameters (`fn.precision.with_policy`); the default is float32.
With ``--smoke``: 278 training images (28 held out: two steps of 125), 250 test
images, one epoch per part, depths 8 and 14, and ResNet-8 for part (b).

    python experiments/fashion_resnet.py --data-dir DIR [--epochs N]
        [--degradation-epochs N] [--precision bf16] [--seed S] [--smoke]

Writes experiments/results/fashion_resnet.json, fashion_resnet_degradation.png
(training and validation error per epoch) and fashion_resnet_accuracy.png.
"""

import argparse
import json
import time

import jax
import numpy as np
from common import RESULTS, arguments, best_on_validation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import funcnets as fn
from funcnets.models.resnet import resnet

BATCH = 125
LOSS = fn.losses.sparse_cross_entropy
PAPER_CIFAR10 = {  # He et al. 2015: test error (%) of the ResNets (Table 6)
    "resnet-20": 8.75,
    "resnet-56": 6.97,
    "fig6": "plain-56 has higher training and test error than plain-20 throughout training",
}


class EpochClock(fn.train.Callback):
    """Seconds from the start of training to the end of each epoch (the first holds compiling)."""

    def on_train_begin(self, ts: fn.train.TrainState) -> None:
        self.start, self.seconds = time.perf_counter(), []

    def on_epoch_end(self, epoch: int, ts: fn.train.TrainState, logs) -> bool:
        self.seconds.append(round(time.perf_counter() - self.start, 2))
        return False


def load_fashion_mnist(args: argparse.Namespace) -> tuple[tuple, tuple, tuple]:
    """``(train, validation, test)``: 6,000 of the 60,000 training images held out by the seed."""
    train, test = fn.data.load_fashion_mnist(root=args.data_dir, download=args.data_dir is None)
    if args.smoke:
        train, test = (train[0][:278], train[1][:278]), (test[0][:250], test[1][:250])
    train, validation = fn.data.split(train, 0.1, jax.random.key(args.seed))
    return train, validation, test


def network(depth: int, plain: bool, precision: str) -> fn.Layer:
    net = resnet(depth, num_classes=10, plain=plain)
    return net if precision == "float32" else fn.precision.with_policy(net, precision)


def sgd(learning_rate: float, steps: int, weight_decay: float, nesterov: bool):
    """SGD with momentum 0.9, cosine decay to 0, and weight decay added to the gradient."""
    schedule = fn.optim.cosine_decay_schedule(learning_rate, steps)
    return fn.optim.chain(
        fn.optim.add_decayed_weights(weight_decay),
        fn.optim.sgd(schedule, momentum=0.9, nesterov=nesterov),
    )


def train(net, optimizer, train_data, validation, epochs, seed, augment=None, callbacks=()):
    clock = EpochClock()
    ts, history = fn.train.fit(
        net, LOSS, optimizer, train_data, epochs=epochs, batch_size=BATCH,
        key=jax.random.key(seed), val_data=validation, augment=augment,
        callbacks=[*callbacks, clock], progress=False,
    )  # fmt: skip
    return ts, history, clock.seconds


def final(runs: dict, name: str) -> float:
    """The training error of run ``name`` in its last epoch."""
    return runs[name]["train_error"][-1]


def degradation(args, train_data, validation, depths, epochs) -> tuple[dict, dict]:
    """Part (a): plain and residual nets of two depths, trained alike; their error curves."""
    steps = epochs * -(-len(train_data[1]) // BATCH)
    runs, histories = {}, {}
    for plain in (True, False):
        for depth in depths:
            name = f"{'plain' if plain else 'resnet'}-{depth}"
            net = network(depth, plain, args.precision)
            optimizer = sgd(0.1, steps, weight_decay=1e-4, nesterov=False)
            _, history, seconds = train(net, optimizer, train_data, validation, epochs, args.seed)
            histories[name] = history
            runs[name] = {
                "train_error": [round(1 - a, 5) for a in history["accuracy"]],
                "val_error": [round(1 - a, 5) for a in history["val_accuracy"]],
                "train_loss": [round(v, 5) for v in history["loss"]],
                "seconds_at_epoch_end": seconds,
            }
            print(
                f"{name}: train error {runs[name]['train_error'][-1]:.2%}, validation error "
                f"{runs[name]['val_error'][-1]:.2%} after {epochs} epochs, {seconds[-1]:.0f} s"
            )
    shallow, deep = depths
    verdict = {
        "plain_deeper_trains_worse": final(runs, f"plain-{deep}") > final(runs, f"plain-{shallow}"),
        "resnet_deeper_trains_better": final(runs, f"resnet-{deep}")
        < final(runs, f"resnet-{shallow}"),
    }
    return {"runs": runs, **verdict}, histories


def plot_degradation(histories: dict, depths, path) -> None:
    """The paper's Fig. 6: training (solid) and validation (dashed) error, plain vs residual."""
    figure = Figure(figsize=(10, 4))
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2, sharey=True)
    for axes, kind, title in zip(panels, ("plain", "resnet"), ("plain nets", "ResNets")):
        for depth, color in zip(depths, ("tab:orange", "tab:red")):
            history = histories[f"{kind}-{depth}"]
            epochs = np.arange(1, len(history["accuracy"]) + 1)
            train_error = 100 * (1 - np.asarray(history["accuracy"]))
            val_error = 100 * (1 - np.asarray(history["val_accuracy"]))
            name = f"{kind}-{depth}"
            axes.plot(epochs, train_error, "-o", ms=3, color=color, label=f"{name} train")
            axes.plot(epochs, val_error, "--o", ms=3, color=color, label=f"{name} validation")
        axes.set_title(f"Fashion-MNIST, {title}")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    panels[0].set_ylabel("error (%)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def translate_and_flip(key: jax.Array, x: jax.Array) -> jax.Array:
    crop_key, flip_key = jax.random.split(key)
    return fn.data.random_flip(flip_key, fn.data.random_crop(crop_key, x, padding=2))


def accuracy(args, train_data, validation, test, depth, epochs) -> tuple[dict, fn.train.History]:
    """Part (b): ResNet-``depth`` with augmentation, the best epoch on validation, test once."""
    net = network(depth, False, args.precision)
    optimizer = sgd(0.1, epochs * -(-len(train_data[1]) // BATCH), 5e-4, nesterov=True)
    selector = best_on_validation(epochs)
    ts, history, seconds = train(
        net, optimizer, train_data, validation, epochs, args.seed, translate_and_flip, [selector]
    )
    val = fn.train.evaluate(net, ts, validation, loss_fn=LOSS, batch_size=BATCH)
    result = fn.train.evaluate(net, ts, test, loss_fn=LOSS, batch_size=BATCH)
    print(
        f"resnet-{depth}: validation accuracy {val['accuracy']:.2%} (epoch "
        f"{selector.best_epoch} of {epochs}), test accuracy {result['accuracy']:.2%}, "
        f"{seconds[-1]:.0f} s"
    )
    numbers = {
        "model": f"resnet-{depth}",
        "params": sum(p.size for p in jax.tree.leaves(ts.params)),
        "selected_epoch": selector.best_epoch,
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "test_accuracy_anchor": "ResNet-18 94.9% (Fashion-MNIST benchmark); aim >= 93%",
        "epochs": epochs,
        "optimizer": "sgd nesterov momentum 0.9, lr 0.1 cosine to 0, weight decay 5e-4",
        "augmentation": "random_crop(padding=2), random_flip",
        "seconds_at_epoch_end": seconds,
        "history": dict(history),
    }
    return numbers, history


def main() -> None:
    parser = arguments(__doc__, epochs=None)  # default: 15, or 1 with --smoke
    parser.add_argument("--degradation-epochs", type=int, help="of part (a); default 4 (smoke 1)")
    parser.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    args = parser.parse_args()
    depths, depth_b = ((8, 14), 8) if args.smoke else ((20, 56), 20)
    epochs_a = args.degradation_epochs or (1 if args.smoke else 4)
    epochs_b = args.epochs or (1 if args.smoke else 15)

    start = time.perf_counter()
    train_data, validation, test = load_fashion_mnist(args)
    part_a, histories = degradation(args, train_data, validation, depths, epochs_a)
    seconds_a = time.perf_counter() - start
    part_b, history_b = accuracy(args, train_data, validation, test, depth_b, epochs_b)
    seconds = time.perf_counter() - start

    name = "fashion_resnet_smoke" if args.smoke else "fashion_resnet"
    result = {
        "experiment": "ResNets on Fashion-MNIST (He et al. 2015): degradation and accuracy",
        "degradation": {
            **part_a,
            "depths": list(depths),
            "epochs": epochs_a,
            "optimizer": "sgd momentum 0.9, lr 0.1 cosine to 0, weight decay 1e-4, batch 125",
            "paper_cifar10": PAPER_CIFAR10,
            "seconds": round(seconds_a, 1),
        },
        "accuracy": part_b,
        "val_accuracy": part_b["val_accuracy"],
        "test_accuracy": part_b["test_accuracy"],
        "selected_epoch": part_b["selected_epoch"],
        "train_examples": len(train_data[1]),
        "batch_size": BATCH,
        "precision": args.precision,
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "smoke": args.smoke,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    plot_degradation(histories, depths, RESULTS / f"{name}_degradation.png")
    curves = ("loss", "val_loss", "accuracy", "val_accuracy")
    fn.train.History({k: history_b[k] for k in curves}).plot(RESULTS / f"{name}_accuracy.png")
    print(f"{seconds:.0f} s in all ({seconds_a:.0f} s for part (a)); wrote {name}.json")


if __name__ == "__main__":
    main()
