"""Batch, stochastic and mini-batch gradient descent on one model: MNIST logistic regression.

The same convex model (`fn.models.mlp([10])`: Flatten, Dense(10), softmax
cross-entropy; 7,850 parameters) is trained by plain `fn.optim.sgd` through
`fn.train.fit` with three batch sizes: the whole training set (batch gradient
descent, one update per epoch), 64 (mini-batch) and 1 (stochastic gradient
descent, one update per example). Bottou, Curtis & Nocedal (2018,
"Optimization Methods for Large-Scale Machine Learning", section 3.3) give
the trade-off measured here: a full batch spends a whole pass over the data
on one exact step, batch 1 takes many cheap but noisy steps that the
hardware runs one at a time.

Settings (stated, not inherited): 12,800 training images (the first 12,800
of the 54,000 left after `common.load_mnist` holds out 6,000 as the
validation split, keyed by the seed), all 6,000 validation images, the
10,000 test images touched once at the end. Epoch budgets: 200 (full batch,
so 200 updates), 20 (batch 64, 4,000 updates) and 5 (batch 1, 64,000
updates). Each batch size gets its learning rate from a sweep on the
validation split (seed ``--seed``): rates lie on the grid 10^(k/2), each
sweep starts at the three values in ``GRIDS`` and extends by one grid step
while the best rate sits at an edge (at most twice); the rate with the
lowest validation loss at its best epoch wins. Two more seeds run at that
rate (the seed sets the initialisation and the shuffles): numbers are mean
± std over 3 seeds, each run's model the epoch of lowest validation loss.

Measured per batch size: validation loss per epoch (computed after training
from a copy of the parameters taken at each epoch's end, so the clock sees
training only); wall time per epoch on this machine (epoch 1, which holds
the compilation, is counted as a typical later epoch; the compile time is
reported apart); updates per second; the epoch, update count and wall time
at which the validation loss first reaches ``TARGET_LOSS`` (at epoch
resolution); final validation and test loss and accuracy. The noise of a
minibatch gradient is measured too: with per-example gradients ``g_i`` of
2,000 training images and their mean ``g``, the expected squared error of a
batch-``B`` gradient (drawn with replacement) relative to the signal is
``E‖g_B - g‖² / ‖g‖² = mean_i ‖g_i - g‖² / (B ‖g‖²)``, at initialisation and
at the trained batch-64 model.

    python experiments/gradient_descent.py [--data-dir DIR] [--epochs N] [--smoke]

``--epochs`` is the batch-64 budget (the others: ``--full-batch-epochs``,
``--sgd-epochs``). ``--smoke``: 1,600 training and 200 validation images, one
learning rate and one seed per batch size, 5/1/1 epochs. Full run: 108 s
(89 s of CPU time) on 2 shared CPU cores. Writes
experiments/results/gradient_descent.{json,png}.
"""

import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from common import RESULTS, arguments, load_mnist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

LOSS = fn.losses.sparse_cross_entropy
TRAIN_SIZE = 12_800  # 200 minibatches of 64: no smaller last step to compile
TARGET_LOSS = 0.35  # reached by all three in a trial run; the best final loss is about 0.30
NOISE_EXAMPLES = 2_000
GRIDS = {  # the first three learning rates 10^(k/2) of each sweep, by k
    "full batch": (-1, 0, 1),  # 0.32, 1, 3.2
    "batch 64": (-2, -1, 0),  # 0.1, 0.32, 1
    "batch 1": (-5, -4, -3),  # 0.0032, 0.01, 0.032
}


class Snapshots(fn.train.Callback):
    """Keeps each epoch's end time and a copy of its parameters (validated after training)."""

    def on_train_begin(self, ts: fn.train.TrainState) -> None:
        self.params = [jax.tree.map(jnp.copy, ts.params)]
        self.seconds: list[float] = []
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, ts: fn.train.TrainState, logs) -> bool:
        self.seconds.append(time.perf_counter() - self.start)
        self.params.append(jax.tree.map(jnp.copy, ts.params))  # the engine donates ts
        return False


def train(net, state, data, validation_loss, batch_size, learning_rate, epochs, seed) -> dict:
    """One run; its validation curve (index 0: initialisation) and its clock."""
    snapshots = Snapshots()
    try:
        ts, history = fn.train.fit(
            net,
            LOSS,
            fn.optim.sgd(learning_rate),
            data,
            epochs=epochs,
            batch_size=batch_size,
            key=jax.random.key(seed),
            metrics=("loss",),
            callbacks=[snapshots],
            progress=False,
        )
    except FloatingPointError:
        return {"learning_rate": learning_rate, "seed": seed, "diverged": True, "best": None}
    n = len(data[1])
    durations = np.diff([0.0, *snapshots.seconds])
    compile_seconds = 0.0
    if epochs > 1:  # epoch 1 also compiled the step: count it as a typical epoch
        typical = float(np.median(durations[1:]))
        compile_seconds, durations[0] = float(durations[0] - typical), typical
    val_loss = [validation_loss(p, state) for p in snapshots.params]
    best = int(np.argmin(val_loss[1:])) + 1
    updates_per_epoch = -(-n // (batch_size or n))
    seconds = np.cumsum(durations)
    return {
        "learning_rate": learning_rate,
        "seed": seed,
        "diverged": False,
        "best": val_loss[best],
        "selected_epoch": best,
        "selected_params": snapshots.params[best],
        "val_loss_per_epoch": val_loss,
        "train_loss_per_epoch": history["loss"],
        "seconds_per_epoch": float(np.mean(durations)),
        "seconds": [0.0, *seconds.tolist()],
        "compile_seconds": round(compile_seconds, 2),
        "updates_per_epoch": updates_per_epoch,
        "updates_per_second": updates_per_epoch * epochs / float(seconds[-1]),
    }


def rate(k: int) -> float:
    return float(10 ** (k / 2))


def score(run: dict) -> float:
    return math.inf if run["diverged"] else run["best"]


def learning_rate_sweep(attempt, first: tuple[int, ...], smoke: bool) -> tuple[list[dict], bool]:
    """Runs ``attempt(k)`` at rates 10^(k/2) from ``first``, extended past a winning edge."""
    tried = {k: attempt(k) for k in (first[1:2] if smoke else first)}
    for _ in range(0 if smoke else 2):
        best = min(tried, key=lambda k: score(tried[k]))
        if best not in (min(tried), max(tried)):
            break
        k = best - 1 if best == min(tried) else best + 1
        tried[k] = attempt(k)
    best = min(tried, key=lambda k: score(tried[k]))
    return [tried[k] for k in sorted(tried)], not smoke and best in (min(tried), max(tried))


def reach(run: dict, target: float) -> dict:
    """Epoch, updates and seconds at which the validation loss first reaches ``target``."""
    hits = [e for e, loss in enumerate(run["val_loss_per_epoch"]) if loss <= target]
    if not hits:
        return {"epoch": None, "updates": None, "seconds": None}
    epoch = hits[0]
    return {
        "epoch": epoch,
        "updates": epoch * run["updates_per_epoch"],
        "seconds": run["seconds"][epoch],
    }


def gradient_noise(net, state, params, x, y) -> dict:
    """``E‖g_B - g‖² / ‖g‖²`` for batches of 1 and 64, from per-example gradients."""

    def example_loss(p, xi, yi):
        return LOSS(net.apply(p, state, xi[None])[0], yi[None])

    grads = jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, x, y)
    flat = jnp.concatenate([g.reshape(len(y), -1) for g in jax.tree.leaves(grads)], axis=1)
    mean = flat.mean(axis=0)
    spread = float(jnp.mean(jnp.sum((flat - mean) ** 2, axis=1)))
    signal = float(jnp.sum(mean**2))
    return {f"batch {b}": spread / (b * signal) for b in (1, 64)}


def mean_std(values: list) -> dict:
    found = [v for v in values if v is not None]
    if len(found) < len(values):
        return {"mean": None, "std": None, "reached": f"{len(found)} of {len(values)} seeds"}
    return {"mean": float(np.mean(found)), "std": float(np.std(found))}


def plot(methods: dict, noise_ratios: dict, path) -> None:
    figure = Figure(figsize=(12, 9))
    FigureCanvasAgg(figure)
    (by_epoch, by_time), (sweep, noise) = figure.subplots(2, 2)
    for name, method in methods.items():
        curves = np.array([r["val_loss_per_epoch"] for r in method["runs"]])
        clock = np.array([r["seconds"] for r in method["runs"]]).mean(axis=0)
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        epochs = np.arange(len(mean))
        for axes, x in ((by_epoch, epochs), (by_time, clock)):
            axes.plot(x[1:], mean[1:], marker="." if len(x) < 30 else None, label=name)
            axes.fill_between(x[1:], (mean - std)[1:], (mean + std)[1:], alpha=0.25)
        rates = [r["learning_rate"] for r in method["sweep"]]
        best = [np.nan if r["diverged"] else r["best"] for r in method["sweep"]]
        sweep.semilogx(rates, best, marker="o", label=name)
    top = max(r["val_loss_per_epoch"][1] for m in methods.values() for r in m["runs"])
    for axes in (by_epoch, by_time):
        axes.axhline(TARGET_LOSS, color="grey", linestyle=":", label=f"target {TARGET_LOSS}")
        axes.set_xscale("log")
        axes.tick_params(which="minor", labelbottom=False)
        axes.set_ylim(top=min(top, 1.0) * 1.05)
    seeds = len(next(iter(methods.values()))["runs"])
    by_epoch.set(
        title=f"validation loss (mean ± std, {seeds} seeds)", xlabel="epoch", ylabel="loss"
    )
    by_time.set(title="validation loss vs training time", xlabel="seconds (compile excluded)")
    sweep.set(title="learning-rate sweep: best validation loss", xlabel="learning rate")
    width = 0.35
    for i, (where, ratios) in enumerate(noise_ratios.items()):
        noise.bar(
            np.arange(2) + i * width, [ratios["batch 1"], ratios["batch 64"]], width, label=where
        )
    noise.set_xticks(np.arange(2) + width / 2, ["batch 1", "batch 64"])
    noise.set_yscale("log")
    noise.axhline(1.0, color="grey", linestyle=":")
    noise.set(title="minibatch gradient noise E‖g_B − g‖² / ‖g‖²")
    for axes in (by_epoch, by_time, sweep, noise):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = arguments(__doc__, epochs=20)
    parser.add_argument("--full-batch-epochs", type=int, default=200)
    parser.add_argument("--sgd-epochs", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    (x, y), validation, test, epochs = load_mnist(args)
    n = 1_600 if args.smoke else TRAIN_SIZE
    data = (x[:n], y[:n])
    budgets = {"full batch": args.full_batch_epochs, "batch 64": epochs, "batch 1": args.sgd_epochs}
    batch_sizes = {"full batch": None, "batch 64": 64, "batch 1": 1}
    seeds = [args.seed, args.seed + 1, args.seed + 2]
    if args.smoke:
        budgets = {"full batch": 5, "batch 64": 1, "batch 1": 1}
        seeds = [args.seed]

    net = fn.models.mlp([10])
    state = fn.train.init(net, fn.optim.sgd(0.1), jax.random.key(0), (1, 28, 28, 1)).state
    loss_on = jax.jit(lambda p, s, x, y: LOSS(net.apply(p, s, x)[0], y))  # data as arguments
    val_x, val_y = jnp.asarray(validation[0]), jnp.asarray(validation[1])
    noise_x, noise_y = data[0][:NOISE_EXAMPLES], data[1][:NOISE_EXAMPLES]

    def validation_loss(params, layer_state) -> float:
        return float(loss_on(params, layer_state, val_x, val_y))

    def run(name: str, learning_rate: float, seed: int) -> dict:
        batch_size, epochs_of_run = batch_sizes[name], budgets[name]
        result = train(net, state, data, validation_loss, batch_size, learning_rate,
                       epochs_of_run, seed)  # fmt: skip
        shown = "diverged" if result["diverged"] else f"{result['best']:.4f}"
        print(f"{name:10s} lr {learning_rate:<7.3g} seed {seed}: best validation loss {shown}")
        return result

    methods = {}
    for name in budgets:
        sweep, at_edge = learning_rate_sweep(
            lambda k, name=name: run(name, rate(k), args.seed), GRIDS[name], args.smoke
        )
        chosen = min(sweep, key=score)
        chosen_rate = chosen["learning_rate"]
        runs = [chosen] + [run(name, chosen_rate, seed) for seed in seeds[1:]]
        diverged = [r["seed"] for r in runs if r["diverged"]]  # kept out of the statistics
        runs = [r for r in runs if not r["diverged"]]
        methods[name] = {
            "batch_size": batch_sizes[name] or len(data[1]),
            "epochs": budgets[name],
            "learning_rate": chosen_rate,
            "sweep": sweep,
            "runs": runs,
            "diverged_seeds": diverged,
            "rate_at_grid_edge": at_edge,
        }
    initial = fn.train.init(net, fn.optim.sgd(0.1), jax.random.key(args.seed), (1, 28, 28, 1))
    trained = methods["batch 64"]["runs"][0]["selected_params"]
    noise = {
        "at initialisation": gradient_noise(net, state, initial.params, noise_x, noise_y),
        "at the trained batch-64 model": gradient_noise(net, state, trained, noise_x, noise_y),
    }

    summary = {}
    for name, method in methods.items():  # the test set, touched once per final model
        finals = []
        for r in method["runs"]:
            ts = initial._replace(params=r.pop("selected_params"))
            val = fn.train.evaluate(net, ts, validation, loss_fn=LOSS)
            result = fn.train.evaluate(net, ts, test, loss_fn=LOSS)
            finals.append({"val": val, "test": result, "target": reach(r, TARGET_LOSS)})
        for r in method["sweep"]:
            r.pop("selected_params", None)
        summary[name] = {
            "learning_rate": method["learning_rate"],
            "updates_per_second": mean_std([r["updates_per_second"] for r in method["runs"]]),
            "seconds_per_epoch": mean_std([r["seconds_per_epoch"] for r in method["runs"]]),
            "compile_seconds": mean_std([r["compile_seconds"] for r in method["runs"]]),
            **{
                f"{what}_to_target": mean_std([f["target"][what] for f in finals])
                for what in ("epoch", "updates", "seconds")
            },
            "selected_epoch": mean_std([r["selected_epoch"] for r in method["runs"]]),
            **{
                f"{split}_{metric}": mean_std([f[split][metric] for f in finals])
                for split in ("val", "test")
                for metric in ("loss", "accuracy")
            },
        }
        s = summary[name]
        print(
            f"{name:10s} lr {method['learning_rate']:g}: "
            f"{s['updates_per_second']['mean']:.0f} updates/s, "
            f"{s['seconds_per_epoch']['mean']:.3f} s/epoch, target after "
            f"{s['seconds_to_target']['mean'] or math.nan:.2f} s, test accuracy "
            f"{s['test_accuracy']['mean']:.2%} ± {s['test_accuracy']['std']:.2%}"
        )

    name = "gradient_descent_smoke" if args.smoke else "gradient_descent"
    RESULTS.mkdir(exist_ok=True)
    report = {
        "experiment": "batch, stochastic and mini-batch gradient descent on MNIST",
        "model": "fn.models.mlp([10]) (softmax regression, 7,850 params), fn.optim.sgd(lr)",
        "train_examples": len(data[1]),
        "val_examples": len(validation[1]),
        "test_examples": len(test[1]),
        "target_val_loss": TARGET_LOSS,
        "anchors": {
            "test_accuracy": "softmax regression on all 60,000 MNIST images: about 92% "
            "(LeCun et al. 1998 list 88% for a linear classifier trained on squared error)",
            "trade-off": "Bottou, Curtis & Nocedal 2018, SIAM Review 60(2), section 3.3",
        },
        "seeds": seeds,
        # the headline model (the fields every MNIST experiment reports): batch 64, seed mean
        "headline": "batch 64, mean over the seeds",
        "val_accuracy": summary["batch 64"]["val_accuracy"]["mean"],
        "test_accuracy": summary["batch 64"]["test_accuracy"]["mean"],
        "selected_epoch": summary["batch 64"]["selected_epoch"]["mean"],
        "summary": summary,
        "gradient_noise": noise,
        "methods": methods,
        "seconds": round(time.perf_counter() - start, 1),
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    plot(methods, noise, RESULTS / f"{name}.png")
    print(f"{report['seconds']:.0f} s in all")


if __name__ == "__main__":
    main()
