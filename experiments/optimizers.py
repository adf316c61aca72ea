"""Nine optimizers, each at its tuned learning rate: an MNIST MLP and two 2-D landscapes.

The optimizers, all from `fn.optim` with their default hyperparameters
except the learning rate: SGD (Robbins & Monro 1951), SGD with momentum 0.9
(Polyak 1964) and with Nesterov momentum 0.9 (Nesterov 1983; Sutskever et al.
2013), Adagrad (Duchi et al. 2011), RMSprop (decay 0.9; Hinton 2012),
Adadelta (rho 0.9; Zeiler 2012), Adam (Kingma & Ba 2015), AdamW (weight
decay 1e-4; Loshchilov & Hutter 2019) and Lion (weight decay 1e-3; Chen et
al. 2023).

Part 1, MNIST (settings stated, not inherited): `fn.models.mlp([128, 10])`
(ReLU, 101,770 parameters), softmax cross-entropy, batch 100, 10 epochs on
10,000 training images (the first 10,000 of the 54,000 left after
`common.load_mnist` holds out 6,000 as the validation split, keyed by the
seed). Learning rates lie on the grid 10^(k/2); each optimizer's sweep (seed
``--seed``) starts at three neighbouring rates around a middle rate (set in
``OPTIMIZERS`` after a 2-epoch trial on the same split) and extends by one
grid step while the best rate sits at an edge (at most two extensions). The
criterion is the validation loss at the run's best epoch; two more seeds
then run at the chosen rate. Each run's model is its epoch of lowest
validation loss; the 10,000 test images are evaluated once, at the end.
Numbers are mean ± std over 3 seeds.

Part 2, 2-D landscapes: the same `fn.optim` transforms on a parameter that
is a 2-vector ``w``, from a fixed start: an ill-conditioned quadratic
``f(w) = ((u·w)² + 25 (v·w)²) / 2`` (condition number 25, minimum 0 at the
origin) whose axes ``u = (cos 30°, sin 30°)``, ``v = (-sin 30°, cos 30°)``
are turned away from the coordinate axes (axis-aligned, it is fitted by a
per-coordinate step size: in a trial, Adagrad, RMSprop and Adadelta reached
``f = 0`` to float precision), for 100 steps from ``-4u + 1.5v``; and the
Rosenbrock function ``f(w) = (1 - w1)² + 100 (w2 - w1²)²`` (minimum 0 at
(1, 1)) for 1,000 steps from (-1.2, 1).
There is no validation set: each optimizer's rate is the one of the grid
10^(k/4), 1e-5 ... 100, with the lowest final ``f`` among the rates whose
path never climbs above ``f(start)`` (a path that does counts as diverged;
without this rule the winners were rates that leap out of the window and
fall back by luck). The sweep of all nine optimizers over all rates is one
compiled, vmapped call per function.

    python experiments/optimizers.py [--data-dir DIR] [--epochs N] [--smoke]

``--smoke``: 1,800 training and 200 validation images, `mlp([32, 10])`, SGD,
momentum and Adam only (each compile of a `fit` costs about a second), one
learning rate each, one seed, one epoch; all nine in 2-D, 20/50 steps.
Full run: 177 s (136 s of CPU time) on 2 shared CPU cores. Writes
experiments/results/optimizers.json, optimizers_mnist.png (validation loss
per epoch, the sweeps) and optimizers_2d.png (trajectories and ``f`` per step).
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from common import RESULTS, arguments, load_mnist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

LOSS = fn.losses.sparse_cross_entropy
TRAIN_SIZE = 10_000
BATCH = 100  # divides the 10,000 images: no smaller last step to compile

#: name -> (factory of the learning rate, exponent k of the sweep's middle rate 10^(k/2))
OPTIMIZERS = {
    "SGD": (lambda lr: fn.optim.sgd(lr), -1),
    "momentum": (lambda lr: fn.optim.sgd(lr, momentum=0.9), -2),
    "Nesterov": (lambda lr: fn.optim.sgd(lr, momentum=0.9, nesterov=True), -2),
    "Adagrad": (lambda lr: fn.optim.adagrad(lr), -2),
    "RMSprop": (lambda lr: fn.optim.rmsprop(lr), -5),
    "Adadelta": (lambda lr: fn.optim.adadelta(lr), 1),
    "Adam": (lambda lr: fn.optim.adam(lr), -5),
    "AdamW": (lambda lr: fn.optim.adamw(lr), -5),
    "Lion": (lambda lr: fn.optim.lion(lr), -6),
}
SMOKE_OPTIMIZERS = ["SGD", "momentum", "Adam"]  # the 2-D part runs all nine


def rate(k: int) -> float:
    return float(10 ** (k / 2))


ANGLE = np.pi / 6  # the quadratic's axes, turned by 30 degrees from the coordinate axes
FLAT, STEEP = np.array([np.cos(ANGLE), np.sin(ANGLE)]), np.array([-np.sin(ANGLE), np.cos(ANGLE)])


def quadratic(w: jax.Array) -> jax.Array:
    return 0.5 * (jnp.dot(FLAT, w) ** 2 + 25.0 * jnp.dot(STEEP, w) ** 2)


def rosenbrock(w: jax.Array) -> jax.Array:
    return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2


LANDSCAPES = {  # name -> (f, start, minimum, steps, plot window)
    "quadratic": (
        quadratic,
        tuple(-4 * FLAT + 1.5 * STEEP),
        (0.0, 0.0),
        100,
        ((-5, 5), (-3.5, 3.5)),
    ),
    "Rosenbrock": (rosenbrock, (-1.2, 1.0), (1.0, 1.0), 1000, ((-2.0, 2.0), (-1.0, 3.0))),
}


def mnist_run(net, optimizer, data, validation, epochs: int, seed: int) -> tuple:
    """One training run; returns the best epoch's state, the history and the selector."""
    selector = fn.train.EarlyStopping("val_loss", patience=epochs, restore_best=True)
    try:
        ts, history = fn.train.fit(
            net,
            LOSS,
            optimizer,
            data,
            epochs=epochs,
            batch_size=BATCH,
            key=jax.random.key(seed),
            val_data=validation,
            callbacks=[selector],
            progress=False,
        )
    except FloatingPointError:
        return None, None, None
    return ts, history, selector


def sweep_mnist(name, net, data, validation, epochs, seed, smoke) -> dict:
    """The sweep of one optimizer: rates 10^(k/2), extended past a winning edge."""
    factory, centre = OPTIMIZERS[name]
    tried: dict[int, dict] = {}

    def attempt(k: int) -> None:
        ts, history, selector = mnist_run(net, factory(rate(k)), data, validation, epochs, seed)
        best = None if selector is None else selector.best
        tried[k] = {
            "learning_rate": rate(k),
            "best_val_loss": best,
            "ts": ts,
            "history": history,
            "selected_epoch": selector and selector.best_epoch,
        }
        shown = "diverged" if best is None else f"{best:.4f}"
        print(f"{name:8s} lr {rate(k):<9.3g} best validation loss {shown}")

    for k in [centre] if smoke else [centre - 1, centre, centre + 1]:
        attempt(k)
    for _ in range(0 if smoke else 2):
        scored = {k: t["best_val_loss"] for k, t in tried.items() if t["best_val_loss"] is not None}
        best_k = min(scored, key=scored.get)
        if best_k == min(tried):
            attempt(best_k - 1)
        elif best_k == max(tried):
            attempt(best_k + 1)
        else:
            break
    scored = {k: t["best_val_loss"] for k, t in tried.items() if t["best_val_loss"] is not None}
    best_k = min(scored, key=scored.get)
    return {
        "chosen": tried[best_k],
        "grid": [tried[k] for k in sorted(tried)],
        "at_edge": best_k in (min(tried), max(tried)) and not smoke,
    }


def trajectories(f, start, steps: int, rates: jax.Array) -> dict[str, jax.Array]:
    """Each optimizer's paths ``(len(rates), steps + 1, 2)`` from ``start``, one per rate."""

    def paths(factory, lr):
        optimizer = factory(lr)
        w0 = jnp.asarray(start, jnp.float32)

        def step(carry, _):
            w, state = carry
            updates, state = optimizer.update(jax.grad(f)(w), state, w)
            w = fn.optim.apply_updates(w, updates)
            return (w, state), w

        _, ws = jax.lax.scan(step, (w0, optimizer.init(w0)), None, length=steps)
        return jnp.concatenate([w0[None], ws])

    def every_optimizer(rates):  # one compiled call for all nine
        return {
            name: jax.vmap(lambda lr, factory=factory: paths(factory, lr))(rates)
            for name, (factory, _) in OPTIMIZERS.items()
        }

    return jax.jit(every_optimizer)(rates)


def landscapes(smoke: bool) -> dict:
    rates = jnp.asarray([10 ** (k / 4) for k in range(-20, 9)], jnp.float32)
    results = {}
    for land, (f, start, minimum, steps, _) in LANDSCAPES.items():
        steps = min(steps, 20 if land == "quadratic" else 50) if smoke else steps
        results[land] = {"start": start, "minimum": minimum, "steps": steps, "runs": {}}
        every = trajectories(f, start, steps, rates)
        for name in OPTIMIZERS:
            paths = every[name]
            heights = np.asarray(jax.vmap(jax.vmap(f))(paths))  # (rates, steps + 1)
            final = heights[:, -1]
            stays_below_start = np.all(heights <= heights[:, :1], axis=1)  # NaN fails too
            final = np.where(stays_below_start, final, np.inf)
            i = int(np.argmin(final))
            results[land]["runs"][name] = {
                "learning_rate": float(rates[i]),
                "final_f": float(final[i]),
                "final_w": np.asarray(paths[i, -1]).tolist(),
                "distance_to_minimum": float(np.linalg.norm(paths[i, -1] - np.asarray(minimum))),
                "sweep_final_f": {
                    f"{float(r):.3g}": float(v) if np.isfinite(v) else None
                    for r, v in zip(rates, final)
                },
                "path": np.round(np.asarray(paths[i], np.float64), 4).tolist(),  # for the figure
                "f_per_step": [float(f"{v:.4g}") for v in heights[i]],
            }
            print(f"{land:10s} {name:8s} lr {float(rates[i]):<9.3g} final f {final[i]:.3g}")
    return results


def mean_std(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def plot_mnist(mnist: dict, path) -> None:
    figure = Figure(figsize=(13, 5))
    FigureCanvasAgg(figure)
    curves, sweeps = figure.subplots(1, 2)
    colours = {name: f"C{i}" for i, name in enumerate(mnist)}
    for name, result in mnist.items():
        val = np.array([r["val_loss_per_epoch"] for r in result["runs"]])
        mean, std = val.mean(axis=0), val.std(axis=0)
        epochs = np.arange(1, len(mean) + 1)
        label = f"{name} (lr {result['learning_rate']:.3g})"
        curves.plot(epochs, mean, marker=".", color=colours[name], label=label)
        curves.fill_between(epochs, mean - std, mean + std, color=colours[name], alpha=0.2)
        grid = [(g["learning_rate"], g["best_val_loss"]) for g in result["sweep"]]
        rates = [r for r, _ in grid]
        losses = [np.nan if v is None else v for _, v in grid]
        sweeps.semilogx(rates, losses, marker="o", color=colours[name], label=name)
    seeds = len(next(iter(mnist.values()))["runs"])
    curves.set(
        title=f"MNIST MLP: validation loss (mean ± std, {seeds} seeds)",
        xlabel="epoch",
        ylabel="cross-entropy",
    )
    sweeps.set(title="learning-rate sweep: best validation loss", xlabel="learning rate")
    sweeps.set_ylim(top=min(0.6, sweeps.get_ylim()[1]))
    for axes in (curves, sweeps):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def plot_landscapes(results: dict, path) -> None:
    figure = Figure(figsize=(14, 11))
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    for column, (land, result) in enumerate(results.items()):
        f, _, minimum, _, ((x0, x1), (y0, y1)) = LANDSCAPES[land]
        grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        heights = np.asarray(jax.vmap(jax.vmap(f))(jnp.stack([grid_x, grid_y], axis=-1)))
        top, bottom = axes[0, column], axes[1, column]
        top.contour(grid_x, grid_y, np.log10(heights + 1e-3), levels=20, cmap="Greys", alpha=0.6)
        for i, (name, run) in enumerate(result["runs"].items()):
            w = np.asarray(run["path"])
            label = f"{name} (lr {run['learning_rate']:.2g})"
            top.plot(w[:, 0], w[:, 1], color=f"C{i}", linewidth=1, label=label)
            bottom.semilogy(np.maximum(run["f_per_step"], 1e-12), color=f"C{i}", linewidth=1,
                            label=name)  # fmt: skip
        top.plot(*result["start"], "ko")
        top.plot(*minimum, "k*", markersize=12)
        top.set(
            xlim=(x0, x1),
            ylim=(y0, y1),
            title=f"{land}: paths at each tuned rate",
            xlabel="w1",
            ylabel="w2",
        )
        bottom.set(title=f"{land}: f(w_t)", xlabel="step", ylabel="f")
        for panel in (top, bottom):
            panel.grid(alpha=0.3)
            panel.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    args = arguments(__doc__, epochs=10).parse_args()
    start = time.perf_counter()
    (x, y), validation, test, epochs = load_mnist(args)
    data = (x[:TRAIN_SIZE], y[:TRAIN_SIZE])
    net = fn.models.mlp([32, 10] if args.smoke else [128, 10])
    seeds = [args.seed] if args.smoke else [args.seed, args.seed + 1, args.seed + 2]

    mnist, finals = {}, {}
    chosen_names = SMOKE_OPTIMIZERS if args.smoke else list(OPTIMIZERS)
    for name in chosen_names:
        factory = OPTIMIZERS[name][0]
        sweep = sweep_mnist(name, net, data, validation, epochs, args.seed, args.smoke)
        chosen = sweep["chosen"]
        runs = [(args.seed, chosen["ts"], chosen["history"], chosen["selected_epoch"])]
        diverged = []  # seeds whose run at the chosen rate diverged: kept out of the statistics
        for seed in seeds[1:]:
            ts, history, selector = mnist_run(
                net, factory(chosen["learning_rate"]), data, validation, epochs, seed
            )
            if ts is None:
                diverged.append(seed)
            else:
                runs.append((seed, ts, history, selector.best_epoch))
        finals[name] = [ts for _, ts, _, _ in runs]
        mnist[name] = {
            "learning_rate": chosen["learning_rate"],
            "rate_at_grid_edge": sweep["at_edge"],
            "sweep": [
                {k: g[k] for k in ("learning_rate", "best_val_loss", "selected_epoch")}
                for g in sweep["grid"]
            ],
            "runs": [
                {
                    "seed": seed,
                    "selected_epoch": best,
                    "val_loss_per_epoch": h["val_loss"],
                    "val_accuracy_per_epoch": h["val_accuracy"],
                    "train_loss_per_epoch": h["loss"],
                }
                for seed, _, h, best in runs
            ],
            "diverged_seeds": diverged,
        }
    for name, states in finals.items():  # the test set, touched once per final model
        val = [fn.train.evaluate(net, ts, validation, loss_fn=LOSS) for ts in states]
        scores = [fn.train.evaluate(net, ts, test, loss_fn=LOSS) for ts in states]
        mnist[name]["summary"] = {
            f"{split}_{metric}": mean_std([s[metric] for s in values])
            for split, values in (("val", val), ("test", scores))
            for metric in ("loss", "accuracy")
        }
        s = mnist[name]["summary"]
        print(
            f"{name:8s} lr {mnist[name]['learning_rate']:<9.3g} validation loss "
            f"{s['val_loss']['mean']:.4f} ± {s['val_loss']['std']:.4f}, test accuracy "
            f"{s['test_accuracy']['mean']:.2%} ± {s['test_accuracy']['std']:.2%}"
        )
    mnist_seconds = time.perf_counter() - start
    two_d = landscapes(args.smoke)

    name = "optimizers_smoke" if args.smoke else "optimizers"
    RESULTS.mkdir(exist_ok=True)
    best = min(mnist, key=lambda n: mnist[n]["summary"]["val_loss"]["mean"])
    report = {
        "experiment": "nine fn.optim optimizers at tuned learning rates",
        # the headline model (the fields every MNIST experiment reports): the optimizer of
        # lowest mean validation loss, mean over its seeds
        "headline": f"{best}, mean over the seeds",
        "val_accuracy": mnist[best]["summary"]["val_accuracy"]["mean"],
        "test_accuracy": mnist[best]["summary"]["test_accuracy"]["mean"],
        "selected_epoch": float(np.mean([r["selected_epoch"] for r in mnist[best]["runs"]])),
        "mnist": {
            "model": "fn.models.mlp([32, 10])" if args.smoke else "fn.models.mlp([128, 10])",
            "train_examples": len(data[1]),
            "val_examples": len(validation[1]),
            "test_examples": len(test[1]),
            "batch_size": BATCH,
            "epochs": epochs,
            "seeds": seeds,
            "anchor": "a 784-128-10 ReLU MLP trained on all 60,000 images reaches about 98% "
            "test accuracy; with 10,000 images and 10 epochs expect roughly 95-96%",
            "optimizers": mnist,
            "seconds": round(mnist_seconds, 1),
        },
        "landscapes": two_d,
        "seconds": round(time.perf_counter() - start, 1),
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    plot_mnist(mnist, RESULTS / f"{name}_mnist.png")
    plot_landscapes(two_d, RESULTS / f"{name}_2d.png")
    print(f"{report['seconds']:.0f} s in all")


if __name__ == "__main__":
    main()
