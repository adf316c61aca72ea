"""Universal approximation: one hidden layer of sigmoids, error against width (1 to 1,024).

A net with one hidden layer of ``n`` sigmoid units, ``f_n(x) = Σ_j a_j σ(w_j·x + b_j) + c``,
approximates any continuous function on a compact set as closely as wished once
``n`` is large enough (Cybenko 1989; Hornik 1991); for functions with a finite
Barron constant ``C_f`` the best one reaches an L2 error of at most ``2 C_f / √n``
(Barron 1993). This script measures the error of trained nets of widths
1, 4, 16, 64, 256 and 1,024 on two targets, both on [-1, 1]^d:

- ``bumpy_1d``: ``f(x) = sin(3πx) + 0.5 sin(7πx)`` (seven bumps);
- ``peaks_2d``: MATLAB's ``peaks`` surface over [-3, 3]², divided by 3,
  ``f(u, v) = p(3u, 3v) / 3`` with ``p(x, y) = 3(1-x)² e^{-x²-(y+1)²}
  - 10(x/5 - x³ - y⁵) e^{-x²-y²} - e^{-(x+1)²-y²} / 3``.

Settings (stated, not inherited): 5,120 training points drawn uniformly (by
the seed), of which 20% (1,024) are held out by `fn.data.split` as the
validation split; the net ``Dense(n) -> sigmoid -> Dense(1)`` with hidden
weights and biases drawn from ``N(0, S²)`` (so the sigmoids' centres
``-b/w`` spread over the domain; the library default, LeCun normal with zero
biases, puts every centre of a 1-D net at x = 0) and the default LeCun normal
output layer; MSE loss; Adam with the learning rate decayed by cosine to 1/100
of its start over 40 epochs of minibatches of 64 (2,560 steps).
Selection, all on the validation split: the init scale ``S`` per target from
{3, 10, 30} at width 64 (learning rate 3e-2, first seed); then for each
width the learning rate from {1e-2, 3e-2, 1e-1} (first seed); each sweep
goes one half-decade further (scales 1 ... 300, rates 1e-3 ... 1) while its
best value sits at an edge, at most twice; then the epoch of lowest
validation MSE of each run (`fn.train.EarlyStopping` with ``restore_best``).
Two more seeds train at the selected settings. The error
is measured once per selected net on held-out grid points (2,001 points in
1-D, 101 x 101 in 2-D), as the relative RMSE ``‖f_n - f‖ / std(f)`` on the
grid; mean ± std over the 3 seeds.

The constructive picture: pairs of steep sigmoids ``σ(k(x - a)) - σ(k(x - b))``
make a bump of height 1 on [a, b]; N bumps of heights ``f(midpoint)`` sum to a
staircase, a net of width 2N with hand-set weights whose error falls like
1/N. It is drawn beside the trained net of the same width, and its error is
on the same log-log axes (1-D only: in 2-D the same idea needs a second layer
to cut the towers).

    python experiments/universal_approximation.py [--seed S] [--seeds N] [--epochs E] [--smoke]

Writes experiments/results/universal_approximation.json,
universal_approximation.png (error against width; the fits) and
universal_approximation_bumps.png (the construction beside the trained net).
"""

import argparse
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from common import RESULTS, write_summary
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

WIDTHS = (1, 4, 16, 64, 256, 1024)
#: Each sweep tries its first values, then walks one step further along its ladder while
#: the best validation MSE sits at an edge, at most EXTENSIONS steps.
SCALE_LADDER, INIT_SCALES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0), (3.0, 10.0, 30.0)
LR_LADDER, LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0), (1e-2, 3e-2, 1e-1)
EXTENSIONS = 2
SCALE_PROBE = (64, 3e-2)  # width and learning rate at which the init scale is selected
BUMPS = 32  # bumps in the constructive picture: a hand-set net of width 64


def bumpy_1d(x: np.ndarray) -> np.ndarray:
    """``(n, 1) -> (n, 1)``: ``sin(3πx) + 0.5 sin(7πx)``."""
    return np.sin(3 * np.pi * x) + 0.5 * np.sin(7 * np.pi * x)


def peaks_2d(u: np.ndarray) -> np.ndarray:
    """``(n, 2) -> (n, 1)``: MATLAB's ``peaks`` over [-3, 3]², divided by 3."""
    x, y = 3 * u[:, :1], 3 * u[:, 1:]
    p = (
        3 * (1 - x) ** 2 * np.exp(-(x**2) - (y + 1) ** 2)
        - 10 * (x / 5 - x**3 - y**5) * np.exp(-(x**2) - y**2)
        - np.exp(-((x + 1) ** 2) - y**2) / 3
    )
    return p / 3


TARGETS = {
    "bumpy_1d": (bumpy_1d, 1, "sin(3πx) + 0.5 sin(7πx) on [-1, 1]"),
    "peaks_2d": (peaks_2d, 2, "peaks(3u, 3v) / 3 on [-1, 1]²"),
}


def grid(dim: int, smoke: bool) -> np.ndarray:
    """The held-out points: a regular grid over [-1, 1]^dim, ``(points, dim)``."""
    if dim == 1:
        return np.linspace(-1.0, 1.0, 201 if smoke else 2001, dtype=np.float32)[:, None]
    side = np.linspace(-1.0, 1.0, 21 if smoke else 101, dtype=np.float32)
    return np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)


def one_hidden_layer(width: int, scale: float) -> fn.Layer:
    init = fn.initializers.normal(scale)
    return fn.Sequential(
        hidden=fn.Dense(width, w_init=init, b_init=init), act=fn.sigmoid, out=fn.Dense(1)
    )


def train(args, data, width: int, scale: float, lr: float, seed: int):
    """One run; returns the net, the state of its best validation epoch and that epoch's MSE."""
    train_data, validation = data
    net = one_hidden_layer(width, scale)
    steps = args.epochs * (len(train_data[1]) // 64)
    optimizer = fn.optim.adam(fn.optim.cosine_decay_schedule(lr, steps, alpha=0.01))
    best = fn.train.EarlyStopping("val_loss", patience=args.epochs, restore_best=True)
    try:
        ts, _ = fn.train.fit(
            net, fn.losses.mse, optimizer, train_data, epochs=args.epochs, batch_size=64,
            key=jax.random.key(seed), val_data=validation, metrics=("loss",), callbacks=[best],
            progress=False,
        )  # fmt: skip
    except FloatingPointError as error:  # a rate too large for this net: it ranks last
        return net, error.ts, {"val_mse": math.inf, "selected_epoch": None}
    return net, ts, {"val_mse": best.best, "selected_epoch": best.best_epoch}


def sweep(run, first: tuple, ladder: tuple, extensions: int) -> dict:
    """``{value: run(value)}`` for ``first``, then one ladder step out while the best is at an edge.

    ``run(value)`` returns ``(net, ts, {"val_mse": ...})``; lowest is best.
    """
    runs = {value: run(value) for value in first}
    for _ in range(extensions):
        best = min(runs, key=lambda v: runs[v][2]["val_mse"])
        i = ladder.index(best)
        if best == min(runs) and i > 0:
            runs[ladder[i - 1]] = run(ladder[i - 1])
        elif best == max(runs) and i + 1 < len(ladder):
            runs[ladder[i + 1]] = run(ladder[i + 1])
        else:
            break
    return dict(sorted(runs.items()))


def run_target(args, name: str) -> tuple[dict, dict]:
    """Selection on the validation split, then the held-out error of every selected net."""
    target, dim, formula = TARGETS[name]
    x = np.asarray(jax.random.uniform(jax.random.key(args.seed), (args.points, dim), minval=-1))
    data = fn.data.split((x, target(x)), 0.2, jax.random.key(args.seed + 1))
    x_test = grid(dim, args.smoke)
    y_test = target(x_test)
    spread = float(np.std(y_test))
    seeds = [args.seed + i for i in range(args.seeds)]

    scale_sweep = {}
    if len(args.init_scales) > 1:
        width, lr = SCALE_PROBE
        runs = sweep(
            lambda s: train(args, data, width, s, lr, seeds[0]),
            args.init_scales, SCALE_LADDER, args.extensions,
        )  # fmt: skip
        scale_sweep = {s: run[2]["val_mse"] for s, run in runs.items()}
    scale = min(scale_sweep, key=scale_sweep.get) if scale_sweep else args.init_scales[0]
    print(f"{name}: init scale {scale} (validation MSE per scale: {scale_sweep})")

    per_width, fits = {}, {}
    for width in args.widths:
        runs = sweep(
            lambda lr, width=width: train(args, data, width, scale, lr, seeds[0]),
            args.learning_rates, LR_LADDER, args.extensions,
        )  # fmt: skip
        lr = min(runs, key=lambda r: runs[r][2]["val_mse"])
        chosen = [runs[lr]] + [train(args, data, width, scale, lr, s) for s in seeds[1:]]
        errors, predictions = [], []
        for net, ts, _ in chosen:  # the held-out grid, touched once per selected net
            y = np.asarray(fn.train.predict(net, ts, x_test, batch_size=len(y_test)))
            errors.append(float(np.sqrt(np.mean((y - y_test) ** 2))) / spread)
            predictions.append(y[:, 0])
        fits[width] = predictions[0]
        per_width[width] = {
            "learning_rate": lr,
            "val_mse_per_learning_rate": {str(r): runs[r][2]["val_mse"] for r in runs},
            "val_mse": [c[2]["val_mse"] for c in chosen],
            "selected_epoch": [c[2]["selected_epoch"] for c in chosen],
            "test_relative_rmse": errors,
            "test_relative_rmse_mean": float(np.mean(errors)),
            "test_relative_rmse_std": float(np.std(errors)),
        }
        mean, std = np.mean(errors), np.std(errors)
        print(f"  width {width:5d}: lr {lr:g}, relative RMSE {mean:.4f} ± {std:.4f}")
    result = {
        "formula": formula,
        "target_std_on_grid": spread,
        "test_points": len(y_test),
        "init_scale": scale,
        "val_mse_per_init_scale": {str(s): v for s, v in scale_sweep.items()},
        "widths": per_width,
    }
    return result, {"x": np.asarray(x_test), "y": y_test, "fits": fits}


def staircase(bumps: int, target) -> tuple[dict, np.ndarray, np.ndarray, float]:
    """Hand-set params of a width-``2 * bumps`` net: ``σ(k(x - a_i)) - σ(k(x - a_{i+1}))`` pairs.

    The intervals ``[a_i, a_{i+1}]`` split [-1, 1] in ``bumps`` equal parts (the
    outermost edges moved one interval outwards, so the end bumps are flat over
    the domain); each pair's output weights are ``±f`` at its interval's
    midpoint. ``k`` makes each sigmoid rise from 5% to 95% over a tenth of an
    interval. Returns ``(params, heights, edges, k)`` for `one_hidden_layer`.
    """
    delta = 2.0 / bumps
    edges = np.linspace(-1.0, 1.0, bumps + 1)
    heights = target(edges[:-1, None] + delta / 2)[:, 0]
    edges[0], edges[-1] = -1.0 - delta, 1.0 + delta
    k = 2 * math.log(19) / (0.1 * delta)
    centres = np.stack([edges[:-1], edges[1:]], axis=1).ravel()  # a_0, a_1, a_1, a_2, ...
    out = np.stack([heights, -heights], axis=1).reshape(-1, 1)
    params = {
        "hidden": {"w": np.full((1, 2 * bumps), k), "b": -k * centres},
        "act": {},
        "out": {"w": out, "b": np.zeros(1)},
    }
    params = jax.tree.map(lambda a: np.asarray(a, np.float32), params)
    return params, heights, edges, k


def staircase_output(params: dict, x: np.ndarray) -> np.ndarray:
    """The hand-set net's output ``(n,)`` at ``x`` ``(n, 1)`` (its width is in the params)."""
    net = one_hidden_layer(1, 1.0)  # Dense's apply reads the width from the params
    y, _ = net.apply(params, {"hidden": {}, "act": {}, "out": {}}, x)
    return np.asarray(y)[:, 0]


def staircase_errors(widths, fits: dict) -> dict[int, float]:
    """The hand-set staircase's relative RMSE on the 1-D grid, for each even width."""
    spread = float(np.std(fits["y"]))
    errors = {}
    for width in sorted(w for w in set(widths) if w >= 2):
        y = staircase_output(staircase(width // 2, bumpy_1d)[0], fits["x"])
        errors[width] = float(np.sqrt(np.mean((y - fits["y"][:, 0]) ** 2))) / spread
    return errors


def plot_errors(results: dict, fits: dict, staircase: dict, path: Path) -> None:
    figure = Figure(figsize=(16, 9), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplot_mosaic([["error", "error", "fits1d"], ["target2d", "small2d", "big2d"]])
    error = axes["error"]
    for name, result in results.items():
        widths = sorted(result["widths"])
        mean = [result["widths"][w]["test_relative_rmse_mean"] for w in widths]
        std = [result["widths"][w]["test_relative_rmse_std"] for w in widths]
        error.errorbar(widths, mean, yerr=std, marker="o", capsize=3, label=f"{name}, trained")
    error.plot(
        list(staircase), list(staircase.values()), "k--", marker=".",
        label="bumpy_1d, hand-set staircase (width 2N)",
    )  # fmt: skip
    first = results["peaks_2d"]["widths"][min(results["peaks_2d"]["widths"])]
    widths = np.array(sorted(results["peaks_2d"]["widths"]), dtype=float)
    error.plot(
        widths, first["test_relative_rmse_mean"] / np.sqrt(widths), ":", color="grey",
        label="∝ n^(-1/2) (Barron 1993 bound's rate)",
    )  # fmt: skip
    error.set(
        xscale="log", yscale="log", xlabel="hidden units n",
        ylabel="relative RMSE on held-out grid", title="error against width (mean ± std, seeds)",
    )  # fmt: skip
    error.grid(alpha=0.3, which="both")
    error.legend()

    one = fits["bumpy_1d"]
    curve = axes["fits1d"]
    curve.plot(one["x"][:, 0], one["y"], "k", linewidth=3, alpha=0.3, label="target")
    for width, y in one["fits"].items():
        if width in (4, 16, 64, 1024) or len(one["fits"]) < 4:
            curve.plot(one["x"][:, 0], y, linewidth=1, label=f"width {width}")
    curve.set(title="bumpy_1d: trained nets (first seed)", xlabel="x")
    curve.legend(fontsize=8)

    two = fits["peaks_2d"]
    side = int(round(math.sqrt(len(two["y"]))))
    widths = sorted(two["fits"])
    small = next((w for w in widths if w >= 16), widths[0])
    panels = (("target2d", two["y"], "peaks_2d: target"),)
    panels += (("small2d", two["fits"][small], f"trained, width {small}"),)
    panels += (("big2d", two["fits"][widths[-1]], f"trained, width {widths[-1]}"),)
    low, high = float(two["y"].min()), float(two["y"].max())
    for key, values, title in panels:
        image = axes[key].imshow(
            np.reshape(values, (side, side)), origin="lower", extent=(-1, 1, -1, 1),
            vmin=low, vmax=high, cmap="viridis",
        )  # fmt: skip
        axes[key].set(title=title, xlabel="u", ylabel="v")
    figure.colorbar(image, ax=axes["big2d"], shrink=0.8)
    figure.savefig(path, dpi=100)


def plot_bumps(results: dict, fits: dict, path: Path) -> dict:
    """The construction beside the trained net of the same width; returns the picture's numbers."""
    figure = Figure(figsize=(16, 4.5))
    FigureCanvasAgg(figure)
    one_bump, stairs, trained = figure.subplots(1, 3)
    x = jnp.linspace(-1.0, 1.0, 801)
    k, a, b = 25.0, -0.3, 0.3
    rise, fall = fn.sigmoid(k * (x - a)), fn.sigmoid(k * (x - b))
    one_bump.plot(x, rise, "--", label=f"σ({k:g}(x - ({a:g})))")
    one_bump.plot(x, -fall, "--", label=f"-σ({k:g}(x - {b:g}))")
    one_bump.plot(x, rise - fall, "k", linewidth=2, label="their sum: a bump on [a, b]")
    one_bump.set(title="two steep sigmoids make a bump", xlabel="x")
    one_bump.legend(fontsize=8)

    one = fits["bumpy_1d"]
    params, heights, edges, k = staircase(BUMPS, bumpy_1d)
    y = staircase_output(params, one["x"])
    x_grid = one["x"][:, 0]
    stairs.plot(x_grid, one["y"], "k", linewidth=3, alpha=0.3, label="target")
    for i, height in enumerate(heights):
        bump = height * (
            fn.sigmoid(k * (x_grid - edges[i])) - fn.sigmoid(k * (x_grid - edges[i + 1]))
        )
        stairs.fill_between(x_grid, 0, bump, alpha=0.4, color=("C0", "C1")[i % 2])
    stairs.plot(x_grid, y, "C3", linewidth=2, label="sum of the bumps")
    spread = float(np.std(one["y"]))
    hand_error = float(np.sqrt(np.mean((y - one["y"][:, 0]) ** 2))) / spread
    stairs.set(
        title=f"{BUMPS} bumps = {2 * BUMPS} hand-set sigmoids (rel. RMSE {hand_error:.3f})",
        xlabel="x",
    )
    stairs.legend(fontsize=8)

    width = 2 * BUMPS if 2 * BUMPS in one["fits"] else min(one["fits"])
    learned = results["bumpy_1d"]["widths"][width]["test_relative_rmse"][0]
    trained.plot(x_grid, one["y"], "k", linewidth=3, alpha=0.3, label="target")
    trained.plot(x_grid, one["fits"][width], "C2", linewidth=2, label="trained net")
    trained.set(title=f"trained, width {width} (rel. RMSE {learned:.3f})", xlabel="x")
    trained.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return {"bumps": BUMPS, "steepness": k, "hand_set_relative_rmse": hand_error,
            "trained_width": width, "trained_relative_rmse": learned}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per width (mean ± std)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    args = parser.parse_args()
    args.widths, args.init_scales, args.learning_rates = WIDTHS, INIT_SCALES, LEARNING_RATES
    args.points, args.extensions = 5120, EXTENSIONS
    if args.smoke:
        args.widths, args.init_scales, args.learning_rates = (64,), (10.0,), (3e-2,)
        args.points, args.seeds, args.epochs, args.extensions = 640, 2, 2, 0

    start, cpu = time.perf_counter(), time.process_time()
    results, fits = {}, {}
    for name in TARGETS:
        results[name], fits[name] = run_target(args, name)
    hand_set = staircase_errors((*args.widths, *[2**i for i in range(1, 11)]), fits["bumpy_1d"])
    name = "universal_approximation_smoke" if args.smoke else "universal_approximation"
    RESULTS.mkdir(exist_ok=True)
    plot_errors(results, fits, hand_set, RESULTS / f"{name}.png")
    picture = plot_bumps(results, fits, RESULTS / f"{name}_bumps.png")
    summary = {
        "experiment": "universal approximation: one hidden layer of sigmoids, error vs width",
        "references": {
            "theorem": "Cybenko 1989; Hornik 1991 (one hidden layer is a universal approximator)",
            "rate": "Barron 1993: L2 error <= 2 C_f / sqrt(n) for the best width-n net",
            "staircase": "hand-set bumps: error O(1/N) for N bumps (2N units), Lipschitz f",
        },
        "error": "relative RMSE on the held-out grid, ||f_n - f|| / std(f); mean, std over seeds",
        "targets": results,
        "hand_set_staircase_relative_rmse": hand_set,
        "bumps_picture": picture,
        "train_points": args.points - round(0.2 * args.points),
        "validation_points": round(0.2 * args.points),
        "epochs": args.epochs,
        "batch_size": 64,
        "optimizer": "adam, cosine decay lr -> lr/100",
        "learning_rates_tried_first": list(args.learning_rates),
        "learning_rate_ladder": list(LR_LADDER),
        "init_scales_tried_first": list(args.init_scales),
        "init_scale_ladder": list(SCALE_LADDER),
        "sweep_extensions_at_most": args.extensions,
        "seeds": [args.seed + i for i in range(args.seeds)],
    }
    write_summary(name, summary, start, cpu, args.smoke)


if __name__ == "__main__":
    main()
