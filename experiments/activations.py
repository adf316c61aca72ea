"""Eleven activation functions in the same 10-layer MLP on Fashion-MNIST.

Every activation of `fn.activations` that a hidden layer can use — sigmoid,
tanh, ReLU, leaky ReLU (slope 0.01), ELU, SELU (Klambauer et al. 2017), GELU
(exact, Hendrycks & Gimpel 2016), swish (beta 1, Ramachandran et al. 2017),
softplus, softsign and the binary step trained through a straight-through
estimator (`fn.activations.binary_step_ste`, Bengio et al. 2013) — runs in
the same net, `fn.models.mlp([100] * 10 + [10], activation=f)`: 10 hidden
layers of 100 units, then 10 logits.

Settings (stated, not inherited): the same initialisation for every
activation, the library default (every Dense: LeCun normal weights, variance
1/fan_in, and zero biases; the same seed, so every net starts from the same
weights). This is the init SELU was designed for; ReLU would prefer He's
(variance 2/fan_in). Adam with a constant learning rate chosen per activation
from {3e-4, 1e-3, 3e-3}, batch 125, 3 epochs; cross-entropy loss.
Data (2 CPU cores): 6,000 of the 60,000 training images are held out by
`fn.data.split` (keyed by the seed) as the validation split, and the first
20,000 of the remaining 54,000 are the training set. Selection: the learning
rate and the epoch of the best validation accuracy; the test set (10,000
images) is evaluated once per activation, for the selected net. One seed.

Diagnostics, on a probe batch of 1,000 validation images:

- the gradient norm ``‖∂L/∂W_l‖`` of every Dense layer at initialisation
  (`fn.diagnostics.layer_gradient_norms`), the first layer's in the JSON;
- dead units (ReLU family and the step: ReLU, leaky ReLU, ELU, SELU, GELU,
  swish, softplus, binary step): the fraction of a layer's units whose
  pre-activation ``z`` is ≤ 0 on every probe image (never active), at
  initialisation and for the selected net. A ReLU unit so placed passes no
  gradient at all; a step unit outputs 0 on every image (its straight-through
  gradient still flows); the others sit on their flat side (leaky ReLU: slope
  0.01);
- saturation (the bounded family: sigmoid, tanh, softsign): the share of
  (unit, image) pairs whose output is within 5% of the output range of a
  bound (``σ < 0.05`` or ``> 0.95``; ``|tanh|, |softsign| > 0.9``), and the
  fraction of units so saturated on every probe image.

    python experiments/activations.py --data-dir DIR [--seed S] [--epochs E] [--smoke]

Writes experiments/results/activations.json, activations.png (accuracy and
gradient norms) and activations_units.png (dead and saturated units per layer).
"""

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from common import RESULTS, write_summary
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

ACTIVATIONS = {
    "sigmoid": fn.sigmoid,
    "tanh": fn.tanh,
    "relu": fn.relu,
    "leaky_relu": fn.leaky_relu,
    "elu": fn.elu,
    "selu": fn.selu,
    "gelu": fn.gelu,
    "swish": fn.swish,
    "softplus": fn.softplus,
    "softsign": fn.softsign,
    "binary_step_ste": fn.activations.binary_step_ste,
}
#: The bounded family and the outputs within 5% of the range of a bound.
SATURATED = {
    "sigmoid": lambda y: (y < 0.05) | (y > 0.95),
    "tanh": lambda y: jnp.abs(y) > 0.9,
    "softsign": lambda y: jnp.abs(y) > 0.9,
}
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
BATCH = 125  # divides 20,000, 6,000 and 10,000: one compiled shape per split


def load(args: argparse.Namespace):
    """``(train, validation, test)``: 6,000 held out for validation, 20,000 trained on."""
    train, test = fn.data.load_fashion_mnist(root=args.data_dir, download=False)
    train, validation = fn.data.split(train, 0.1, jax.random.key(args.seed))
    if args.smoke:
        return (
            (train[0][:1000], train[1][:1000]),
            (validation[0][:500], validation[1][:500]),
            (test[0][:500], test[1][:500]),
        )
    return (train[0][: args.train_size], train[1][: args.train_size]), validation, test


def pre_activations(params, state, activation, x: jax.Array, depth: int, width: int) -> list:
    """``z_l`` ``(batch, width)`` of each hidden layer: the net cut just before its l-th activation.

    `fn.models.mlp` of the first ``l + 1`` sizes is that cut (its last Dense
    has no activation after it) and reads its layers' params from the full net's.
    """
    return [
        fn.models.mlp([width] * (layer + 1), activation).apply(params, state, x)[0]
        for layer in range(depth)
    ]


def unit_statistics(name: str, activation, params, state, x, depth: int, width: int) -> dict:
    """Per hidden layer: dead units (ReLU family) or saturated units (bounded family)."""
    zs = pre_activations(params, state, activation, x, depth, width)
    if name in SATURATED:
        saturated = [SATURATED[name](activation(z)) for z in zs]
        return {
            "saturated_units": [float(jnp.mean(jnp.all(s, axis=0))) for s in saturated],
            "saturated_share": [float(jnp.mean(s)) for s in saturated],
        }
    return {"dead_units": [float(jnp.mean(jnp.all(z <= 0, axis=0))) for z in zs]}


def run_activation(args, name: str, data) -> dict:
    """The learning-rate sweep, selection on validation, the test set once, the diagnostics."""
    (train, validation, test), activation = data, ACTIVATIONS[name]
    net = fn.models.mlp([args.width] * args.depth + [10], activation)
    probe = (validation[0][: args.probe], validation[1][: args.probe])
    loss = fn.losses.sparse_cross_entropy
    runs = {}
    for lr in args.learning_rates:
        optimizer = fn.optim.adam(lr)
        first = fn.train.init(net, optimizer, jax.random.key(args.seed), (BATCH, 28, 28, 1))
        best = fn.train.EarlyStopping("val_accuracy", patience=args.epochs, restore_best=True)
        start = time.perf_counter()
        ts, history = fn.train.fit(
            net, loss, optimizer, train, epochs=args.epochs, batch_size=BATCH, ts=first,
            val_data=validation, callbacks=[best], progress=False,
        )  # fmt: skip
        runs[lr] = (ts, best, history, time.perf_counter() - start)
    lr = max(runs, key=lambda r: runs[r][1].best)
    ts, best, history, seconds = runs[lr]
    tested = fn.train.evaluate(net, ts, test, loss_fn=loss, batch_size=BATCH)  # once
    norms = fn.diagnostics.layer_gradient_norms(
        net, first.params, first.state, *probe, loss_fn=loss
    )  # at initialisation: the same for every learning rate
    weight_norms = [float(v) for k, v in norms.items() if k.endswith("/w")]
    shape = (args.depth, args.width)
    result = {
        "learning_rate": lr,
        "val_accuracy_per_learning_rate": {str(r): runs[r][1].best for r in runs},
        "selected_epoch": best.best_epoch,
        "val_accuracy": best.best,
        "test_accuracy": tested["accuracy"],
        "test_loss": tested["loss"],
        "first_layer_gradient_norm_at_init": weight_norms[0],
        "weight_gradient_norms_at_init": weight_norms,
        "units_at_init": unit_statistics(
            name, activation, first.params, first.state, probe[0], *shape
        ),
        "units_trained": unit_statistics(name, activation, ts.params, ts.state, probe[0], *shape),
        "val_accuracy_per_epoch": history["val_accuracy"],
        "train_loss_per_epoch": history["loss"],
        "train_seconds_selected_run": round(seconds, 1),
    }
    print(
        f"{name:16s} lr {lr:g}: validation {best.best:.2%} (epoch {best.best_epoch}), "
        f"test {tested['accuracy']:.2%}, ‖∂L/∂W_1‖ at init {weight_norms[0]:.2e}"
    )
    return result


def color(name: str) -> str:
    """The same colour for an activation in every panel."""
    i = list(ACTIVATIONS).index(name)
    return f"C{i}" if i < 10 else "black"


def plot_summary(results: dict, title: str, path: Path) -> None:
    figure = Figure(figsize=(16, 5), layout="constrained")
    FigureCanvasAgg(figure)
    accuracy, first, per_layer = figure.subplots(1, 3, width_ratios=[3, 3, 4])
    names = list(results)
    positions = np.arange(len(names))
    values = [results[n]["test_accuracy"] for n in names]
    bars = accuracy.bar(positions, values, color=[color(n) for n in names])
    accuracy.bar_label(bars, labels=[f"{v:.1%}" for v in values], fontsize=8)
    accuracy.axhline(0.1, color="grey", linestyle=":", label="chance (10%)")
    accuracy.set(ylim=(0, 1.05), ylabel="test accuracy (selected lr and epoch)", title=title)
    norms = [results[n]["first_layer_gradient_norm_at_init"] for n in names]
    first.bar(positions, norms, color=[color(n) for n in names])
    first.set(yscale="log", title="‖∂L/∂W_1‖ at initialisation (probe batch)")
    for axes in (accuracy, first):
        axes.set_xticks(positions, names, rotation=60, ha="right", fontsize=8)
        axes.grid(alpha=0.3, axis="y")
    accuracy.legend(loc="upper right", fontsize=8)
    for name in names:
        norms = results[name]["weight_gradient_norms_at_init"]
        layers = range(1, len(norms) + 1)
        per_layer.semilogy(layers, norms, marker=".", color=color(name), label=name)
    per_layer.set(title="‖∂L/∂W_l‖ per Dense layer at initialisation", xlabel="Dense layer l")
    per_layer.set_xticks(layers)
    per_layer.grid(alpha=0.3)
    per_layer.legend(fontsize=7, ncol=2)
    figure.savefig(path, dpi=100)


def plot_units(results: dict, probe: int, path: Path) -> None:
    figure = Figure(figsize=(14, 8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2, sharex=True)
    rows = (  # (solid line, dotted line, title)
        ("dead_units", None, f"dead units: z ≤ 0 on all {probe} probe images"),
        ("saturated_share", "saturated_units", "outputs within 5% of a bound"),
    )
    for row, (solid, dotted, title) in enumerate(rows):
        for column, when in enumerate(("units_at_init", "units_trained")):
            ax = axes[row, column]
            for name, result in results.items():
                if solid not in result[when]:
                    continue
                layers = range(1, len(result[when][solid]) + 1)
                ax.plot(layers, result[when][solid], marker=".", color=color(name), label=name)
                if dotted:
                    ax.plot(layers, result[when][dotted], ":", color=color(name))
            state = "at initialisation" if column == 0 else "trained (selected net)"
            ax.set(title=f"{title}, {state}", ylim=(-0.03, 1.03), xticks=layers)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        axes[row, 0].set_ylabel(
            "fraction of the layer's units" if row == 0
            else f"share of (unit, image) pairs\n(dotted: units saturated on all {probe})"
        )  # fmt: skip
    for ax in axes[1]:
        ax.set_xlabel("hidden layer")
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="root holding fashion-mnist/")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--smoke", action="store_true", help="tanh and ReLU, 1,000 images, 3 layers, 1 epoch"
    )
    args = parser.parse_args()
    args.depth, args.width, args.train_size, args.probe = 10, 100, 20_000, 1000
    args.learning_rates = LEARNING_RATES
    args.activations = list(ACTIVATIONS)
    if args.smoke:
        args.depth, args.width, args.epochs, args.probe = 3, 32, 1, 250
        args.learning_rates, args.activations = (1e-3,), ["tanh", "relu"]

    start, cpu = time.perf_counter(), time.process_time()
    data = load(args)
    results = {name: run_activation(args, name, data) for name in args.activations}
    name = "activations_smoke" if args.smoke else "activations"
    RESULTS.mkdir(exist_ok=True)
    title = f"Fashion-MNIST, {args.depth} x {args.width} MLP"
    plot_summary(results, title, RESULTS / f"{name}.png")
    plot_units(results, args.probe, RESULTS / f"{name}_units.png")
    summary = {
        "experiment": "activations in a 10-layer MLP on Fashion-MNIST",
        "net": f"fn.models.mlp([{args.width}] * {args.depth} + [10], activation)",
        "init": "library default for every Dense: LeCun normal weights, zero biases",
        "references": {
            "fashion_mnist": "Xiao et al. 2017 benchmark: MLPClassifier up to 87.7% test accuracy",
            "relu": "Nair & Hinton 2010; Glorot et al. 2011 (sparse, non-saturating)",
            "selu": "Klambauer et al. 2017 (self-normalising with LeCun normal init)",
            "sigmoid_depth": "Glorot & Bengio 2010 (saturation and vanishing gradients)",
            "straight_through": "Bengio et al. 2013",
        },
        "activations": results,
        "train_examples": len(data[0][1]),
        "validation_examples": len(data[1][1]),
        "test_examples": len(data[2][1]),
        "probe_examples": args.probe,
        "epochs": args.epochs,
        "batch_size": BATCH,
        "optimizer": "adam, constant learning rate",
        "learning_rates_swept": list(args.learning_rates),
        "seed": args.seed,
    }
    write_summary(name, summary, start, cpu, args.smoke)


if __name__ == "__main__":
    main()
