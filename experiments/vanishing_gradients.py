"""Vanishing gradients, seen and cured: the adding problem and a 20-layer MLP.

Part 1, the adding problem (Hochreiter & Schmidhuber 1997): each input is a
sequence of ``--length`` (default 100) steps of two features, a random value
in [0, 1) and a marker that is 1 at exactly two steps, both in the first half
(the first among the first 10 steps), as in the original task, so the answer
must be carried over at least half the sequence. The target is the sum of the
two marked values. Always answering 1.0 (the mean)
scores an MSE of 1/6 ≈ 0.167: that is chance. A SimpleRNN, an LSTM and a GRU
(hidden 64, then Dense(1); the LSTM's forget bias ``log(length/2 - 1)``, see
below) train with the same budget: Adam after
`fn.optim.clip_by_global_norm(1.0)`, learning rate 1e-3 decayed by cosine to
1e-5, batch 100, 20,000 sequences of which 2,000 are held out for validation,
``--epochs`` (default 30) epochs; "solved" means a test MSE below 0.01 (the
test set, 2,000 fresh sequences, is evaluated once, at the end). The per-time-step gradient norms
``‖∂L/∂x_t‖`` (`fn.diagnostics`) are plotted at initialisation and after training.

Part 2, depth: a 20-hidden-layer MLP (width 64) on the bundled 8x8 digits,
sigmoid with Glorot init versus ReLU with He init, both trained by SGD with
momentum 0.9 (learning rate 0.01, batch 64, 40 epochs); the plots show each
layer's weight-gradient norm at initialisation and the validation accuracy
per epoch (10% of the training images held out; the epoch with the best
validation number is kept, and the test set is evaluated once, at the end).

    python experiments/vanishing_gradients.py [--length T] [--epochs N] [--smoke]

Writes experiments/results/vanishing_gradients.json, vanishing_gradients_rnn.png
(curves and gradient norms per time step) and vanishing_gradients_mlp.png.
"""

import argparse
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

RESULTS = Path(__file__).parent / "results"
CHANCE_MSE = 1.0 / 6.0


def adding_problem(key: jax.Array, n: int, length: int) -> tuple[jax.Array, jax.Array]:
    """``x`` (n, length, 2): values and markers; ``y`` (n, 1): the sum of the marked values."""
    value_key, first_key, second_key = jax.random.split(key, 3)
    values = jax.random.uniform(value_key, (n, length))
    early = min(10, length // 4)
    first = jax.random.randint(first_key, (n,), 0, early)
    second = jax.random.randint(second_key, (n,), early, length // 2)
    steps = jnp.arange(length)
    markers = (steps == first[:, None]) | (steps == second[:, None])
    x = jnp.stack([values, markers.astype(jnp.float32)], axis=-1)
    return x, jnp.sum(values * markers, axis=1, keepdims=True)


def recurrent_runs(args: argparse.Namespace) -> tuple[dict, dict]:
    train, validation = fn.data.split(
        adding_problem(jax.random.key(1), args.train_size, args.length), 0.1, jax.random.key(3)
    )
    test = adding_problem(jax.random.key(2), 2000, args.length)
    probe = (validation[0][:256], validation[1][:256])
    steps = args.epochs * -(-len(train[1]) // 100)
    optimizer = fn.optim.chain(
        fn.optim.clip_by_global_norm(1.0),
        fn.optim.adam(fn.optim.cosine_decay_schedule(1e-3, steps, alpha=0.01)),
    )
    results, norms = {}, {}
    # The LSTM's forget gate starts open enough to remember ~length/2 steps: sigmoid(b_f) =
    # 1 - 2/length (a constant "chrono" initialisation, Tallec & Ollivier 2018). With the
    # default b_f = 1 (a memory of ~4 steps) it stayed at chance over this budget.
    memory = functools.partial(fn.LSTM, forget_bias=float(np.log(args.length / 2 - 1)))
    for name, rnn in (("SimpleRNN", fn.SimpleRNN), ("LSTM", memory), ("GRU", fn.GRU)):
        net = fn.Sequential(rnn=rnn(64), head=fn.Dense(1))
        per_step = jax.jit(
            functools.partial(fn.diagnostics.time_step_gradient_norms, net, loss_fn=fn.losses.mse)
        )
        start = time.perf_counter()
        first = fn.train.init(net, optimizer, jax.random.key(args.seed), probe[0].shape)
        best = fn.train.EarlyStopping("val_loss", patience=args.epochs)  # keeps the best epoch
        ts, history = fn.train.fit(
            net, fn.losses.mse, optimizer, train, epochs=args.epochs, batch_size=100,
            ts=first, val_data=validation, metrics=("loss",), callbacks=[best], progress=False,
        )  # fmt: skip
        test_mse = fn.train.evaluate(net, ts, test, loss_fn=fn.losses.mse, metrics=("loss",))[
            "loss"
        ]
        results[name] = {
            "test_mse": test_mse,
            "solved": test_mse < 0.01,
            "selected_epoch": best.best_epoch,
            "val_mse_per_epoch": history["val_loss"],
            "train_seconds": round(time.perf_counter() - start, 1),
        }
        norms[name] = {
            "init": np.asarray(per_step(first.params, first.state, *probe)).tolist(),
            "trained": np.asarray(per_step(ts.params, ts.state, *probe)).tolist(),
        }
        print(f"{name:9s} test MSE {test_mse:.4f} (chance {CHANCE_MSE:.3f})")
    return results, norms


def deep_mlp(activation, w_init, depth: int = 20, width: int = 64) -> fn.Layer:
    layers = {"flatten": fn.Flatten()}
    for i in range(depth):
        layers[f"dense{i}"] = fn.Dense(width, w_init=w_init)
        layers[f"act{i}"] = activation
    layers[f"dense{depth}"] = fn.Dense(10, w_init=w_init)
    return fn.Sequential(**layers)


def depth_runs(args: argparse.Namespace) -> dict:
    train, test = fn.data.load_digits()
    train, validation = fn.data.split(train, 0.1, jax.random.key(3))
    results = {}
    nets = {
        "sigmoid, Glorot init": deep_mlp(fn.sigmoid, fn.initializers.glorot_normal(), args.depth),
        "ReLU, He init": deep_mlp(fn.relu, fn.initializers.he_normal(), args.depth),
    }
    for name, net in nets.items():
        optimizer = fn.optim.sgd(0.01, momentum=0.9)
        first = fn.train.init(net, optimizer, jax.random.key(args.seed), (64, 8, 8, 1))
        norms = fn.diagnostics.layer_gradient_norms(
            net, first.params, first.state, *validation, loss_fn=fn.losses.sparse_cross_entropy
        )
        best = fn.train.EarlyStopping("val_accuracy", patience=args.mlp_epochs)
        ts, history = fn.train.fit(
            net, fn.losses.sparse_cross_entropy, optimizer, train,
            epochs=args.mlp_epochs, batch_size=64, ts=first, val_data=validation,
            callbacks=[best], progress=False,
        )  # fmt: skip
        accuracy = fn.train.evaluate(net, ts, test, loss_fn=fn.losses.sparse_cross_entropy)[
            "accuracy"
        ]
        results[name] = {
            "weight_gradient_norms_at_init": {
                k: float(v) for k, v in norms.items() if k.endswith("/w")
            },
            "test_accuracy": accuracy,
            "selected_epoch": best.best_epoch,
            "val_accuracy_per_epoch": history["val_accuracy"],
        }
        print(f"{name}: test accuracy {accuracy:.2%}")
    return results


def plot_rnn(results: dict, norms: dict, path: Path) -> None:
    figure = Figure(figsize=(15, 4))
    FigureCanvasAgg(figure)
    curves, at_init, trained = figure.subplots(1, 3)
    for name, result in results.items():
        epochs = range(1, len(result["val_mse_per_epoch"]) + 1)
        curves.plot(epochs, result["val_mse_per_epoch"], marker=".", label=name)
        at_init.semilogy(norms[name]["init"], label=name)
        trained.semilogy(norms[name]["trained"], label=name)
    curves.axhline(CHANCE_MSE, color="grey", linestyle=":", label="chance (1/6)")
    curves.set(title="adding problem: validation MSE", xlabel="epoch", ylabel="MSE")
    at_init.set(title="‖∂L/∂x_t‖ at initialisation", xlabel="time step t")
    trained.set(title="‖∂L/∂x_t‖ after training", xlabel="time step t")
    for axes in (curves, at_init, trained):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def plot_mlp(results: dict, path: Path) -> None:
    figure = Figure(figsize=(11, 4))
    FigureCanvasAgg(figure)
    norms, accuracy = figure.subplots(1, 2)
    for name, result in results.items():
        values = list(result["weight_gradient_norms_at_init"].values())
        norms.semilogy(range(len(values)), values, marker=".", label=name)
        curve = result["val_accuracy_per_epoch"]
        accuracy.plot(range(1, len(curve) + 1), curve, marker=".", label=name)
    hidden = len(values) - 1
    norms.set(title=f"{hidden}-hidden-layer MLP: ‖∂L/∂W‖ per layer at init", xlabel="layer")
    accuracy.set(title="digits validation accuracy (SGD + momentum)", xlabel="epoch")
    for axes in (norms, accuracy):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--mlp-epochs", type=int, default=40)
    parser.add_argument("--depth", type=int, default=20, help="hidden layers of the deep MLPs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    args = parser.parse_args()
    if args.smoke:
        args.length, args.epochs, args.train_size, args.mlp_epochs, args.depth = 20, 1, 500, 1, 3

    start = time.perf_counter()
    rnn_results, norms = recurrent_runs(args)
    mlp_results = depth_runs(args)
    name = "vanishing_gradients_smoke" if args.smoke else "vanishing_gradients"
    RESULTS.mkdir(exist_ok=True)
    summary = {
        "adding_problem": {"length": args.length, "chance_mse": CHANCE_MSE, **rnn_results},
        "gradient_norms_per_time_step": norms,
        "deep_mlp": mlp_results,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - start, 1),
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=1))
    plot_rnn(rnn_results, norms, RESULTS / f"{name}_rnn.png")
    plot_mlp(mlp_results, RESULTS / f"{name}_mlp.png")


if __name__ == "__main__":
    main()
