"""The perceptron separates what a line can separate, within Novikoff's bound, and never XOR.

Rosenblatt's perceptron (1958), `funcnets.models.perceptron`, trained by his
error-correction rule (no gradients) from zero weights, the examples in a new
random order each epoch. Settings (stated, not inherited):

1. Separable data: 200 points uniform in [-2, 2]², labelled by the side of a
   random line ``w·x + 0.5 = 0`` (``‖w‖ = 1``), each point then pushed a
   "gap" of 0.2 further from the line, so that none lies within 0.2 of it.
   Training runs until an epoch without a mistake. Novikoff (1962): with ``x̃ = (x, 1)``,
   ``R = max ‖x̃‖`` and ``γ`` the margin of any separating unit vector of that
   space, the rule makes at most ``(R/γ)²`` updates. ``γ`` is measured for the
   generating line and for the max-margin direction (the hard-margin SVM
   through the origin of ``x̃`` space, by dual coordinate ascent to a 0.1%
   duality gap, at most 30,000 sweeps), and the bound is the smaller. It is
   checked on this set and on 5 seeds x 5 gaps (0.02 to 1.0), plotted
   against the updates made. Held-out accuracy: 1,000 fresh points from the
   same distribution.
2. XOR: `fn.data.xor` (200 points near the corners of [-1, 1]², noise 0.1),
   labels ±1, 100 epochs. No line gets more than 3 of the 4 corners right,
   so no epoch is free of mistakes and accuracy stays near or below 75%
   (Minsky and Papert 1969); reported after every epoch.
3. A 2-2-1 MLP on the same XOR set: `fn.models.mlp([2, 1], activation=fn.tanh)`,
   binary cross-entropy on its one logit, Adam (learning rate 0.05), full
   batch, 500 steps of `fn.train.make_step` in a `lax.scan`. A 2-2-1 net has
   local minima (a stuck net gets about 2 or 3 corners), so it is trained from
   20 random starts at once (`jax.vmap`); how many reach 100% is reported, and
   the start with the lowest training loss is the model evaluated on 1,000
   fresh XOR points.

No hyperparameter is selected, so there is no validation split (the MLP's
restart is chosen on the training loss); each test set is used once.

    python experiments/perceptron_xor.py [--seed S] [--smoke]

Writes experiments/results/perceptron_xor.{json,png} (the figure: decision
regions of the perceptron on separable data and on XOR and of the MLP on
XOR, and the updates against Novikoff's bound).
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
from funcnets.models.perceptron import perceptron

RESULTS = Path(__file__).parent / "results"
MODEL = perceptron(2)
CHUNK = 20  # epochs per compiled call while training to separation


def random_line(key: jax.Array) -> jax.Array:
    """``u = (w, b)``: a unit normal ``w`` at a random angle and the offset ``b = 0.5``."""
    angle = jax.random.uniform(key, (), maxval=2 * np.pi)
    return jnp.stack([jnp.cos(angle), jnp.sin(angle), jnp.asarray(0.5)])


def separable(key: jax.Array, u: jax.Array, n: int, gap: float) -> tuple[jax.Array, jax.Array]:
    """``n`` points uniform in [-2, 2]², labelled ±1 by their side of ``u``, ``gap`` off it."""
    x = jax.random.uniform(key, (n, 2), minval=-2.0, maxval=2.0)
    y = jnp.where(x @ u[:2] + u[2] >= 0, 1, -1)
    return x + gap * y[:, None] * u[:2], y


def augmented(x: jax.Array) -> jax.Array:
    """``x̃ = (x, 1)``: the bias becomes a weight."""
    return jnp.concatenate([x, jnp.ones((len(x), 1), x.dtype)], axis=1)


@functools.partial(jax.jit, static_argnames="max_sweeps")
def max_margin(x: jax.Array, y: jax.Array, max_sweeps: int) -> tuple[jax.Array, jax.Array]:
    """``(v, γ_high)``: the max-margin direction of ``x̃`` space and a certified ceiling on γ*.

    The hard-margin SVM through the origin of ``x̃`` space, ``min ½‖v‖² s.t.
    y_i v·x̃_i >= 1`` (the bias is a weight of ``x̃``), solved by dual coordinate
    ascent (Hsieh et al. 2008) on ``D(α) = Σα - ½‖Σ α_i y_i x̃_i‖²``, ``α >= 0``,
    in chunks of 100 sweeps until the duality gap is below 0.1% or after
    ``max_sweeps``. ``D(α) <= ½‖v*‖²`` gives ``γ* = 1/‖v*‖ <= 1/√(2 D(α))``;
    the margin of ``v`` itself is measured, not assumed, by `novikoff_bound`.
    """
    rows = y[:, None] * augmented(x)

    def coordinate(carry, i):
        alpha, v = carry
        new = jnp.maximum(0.0, alpha[i] + (1 - rows[i] @ v) / (rows[i] @ rows[i]))
        return (alpha.at[i].set(new), v + (new - alpha[i]) * rows[i]), None

    def gap(alpha: jax.Array, v: jax.Array) -> jax.Array:
        low = jnp.min(rows @ v)  # v / low is feasible when low > 0: primal ½‖v‖² / low²
        dual = jnp.sum(alpha) - 0.5 * v @ v
        return jnp.where(low > 0, 0.5 * (v @ v) / low**2 / dual - 1, jnp.inf)

    def chunk(carry):
        sweeps, alpha, v = carry
        order = jnp.tile(jnp.arange(len(y)), 100)
        (alpha, v), _ = jax.lax.scan(coordinate, (alpha, v), order)
        return sweeps + 100, alpha, v

    def going(carry):
        sweeps, alpha, v = carry
        return (sweeps < max_sweeps) & ((sweeps == 0) | (gap(alpha, v) > 1e-3))

    start = (jnp.zeros((), jnp.int32), jnp.zeros(len(y)), jnp.zeros(rows.shape[1]))
    _, alpha, v = jax.lax.while_loop(going, chunk, start)
    return v, 1 / jnp.sqrt(2 * (jnp.sum(alpha) - 0.5 * v @ v))


def novikoff_bound(x: jax.Array, y: jax.Array, u: jax.Array) -> tuple[float, float, float]:
    """``((R/γ)², R, γ)`` for the unit vector ``u/‖u‖`` in the space of ``x̃ = (x, 1)``.

    ``γ <= 0`` (``u`` does not separate the data) gives an infinite bound.
    """
    gamma = float(jnp.min(y * (augmented(x) @ u)) / jnp.linalg.norm(u))
    radius = float(jnp.max(jnp.linalg.norm(augmented(x), axis=1)))
    return ((radius / gamma) ** 2 if gamma > 0 else float("inf")), radius, gamma


def until_separated(x: jax.Array, y: jax.Array, key: jax.Array, max_epochs: int):
    """Trains CHUNK epochs at a time until an epoch without a mistake: (params, mistakes)."""
    params, mistakes = MODEL.init(), []
    for call in range(-(-max_epochs // CHUNK)):
        params, more = MODEL.train(params, x, y, epochs=CHUNK, key=jax.random.fold_in(key, call))
        mistakes += np.asarray(more).tolist()
        if mistakes[-1] == 0:
            break
    return params, mistakes


def bounds(x: jax.Array, y: jax.Array, u: jax.Array, max_sweeps: int) -> dict:
    """Novikoff's bound with γ of the generating line ``u`` and of the max-margin direction."""
    line, radius, gamma = novikoff_bound(x, y, u)
    v, ceiling = max_margin(x, y, max_sweeps)
    widest, _, gamma_max = novikoff_bound(x, y, v)
    return {"R": radius, "gamma_generating_line": gamma, "bound_generating_line": line,
            "gamma_max_margin": gamma_max, "gamma_max_margin_ceiling": float(ceiling),
            "bound_max_margin": widest, "bound": min(line, widest)}  # fmt: skip


def accuracy(params, x: jax.Array, y: jax.Array) -> float:
    return float(jnp.mean(MODEL.predict(params, x) == y))


def separable_part(
    key: jax.Array, n: int, gaps: list[float], seeds: int, max_sweeps: int
) -> tuple[dict, tuple]:
    line_key, data_key, test_key, order_key = jax.random.split(key, 4)
    u = random_line(line_key)
    x, y = separable(data_key, u, n, 0.2)
    params, mistakes = until_separated(x, y, order_key, 1000)
    sweep = []
    for gap in gaps:
        for seed in range(seeds):
            k = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, seed), int(gap * 1000)))
            su = random_line(k[0])
            sx, sy = separable(k[1], su, n, gap)
            _, made = until_separated(sx, sy, jax.random.fold_in(k[1], 1), 10_000)
            found = bounds(sx, sy, su, max_sweeps)
            sweep.append({"gap": gap, "seed": seed, "updates": int(sum(made)),
                          "separated": made[-1] == 0, **found})  # fmt: skip
    numbers = {
        "points": n,
        "gap": 0.2,
        "updates": int(sum(mistakes)),
        **bounds(x, y, u, max_sweeps),
        "anchor": "updates <= (R/gamma)^2 (Novikoff 1962) for any separating unit u of (x, 1)"
        " space; gamma of the generating line and of the max-margin direction (dual"
        " coordinate ascent to a 0.1% duality gap; gamma* <= its ceiling); bound = the smaller",
        "epochs_to_separate": len(mistakes) - 1 if mistakes[-1] == 0 else None,
        "mistakes_per_epoch": mistakes,
        "train_accuracy": accuracy(params, x, y),
        "test_accuracy": accuracy(params, *separable(test_key, u, 1000, 0.2)),
        "sweep": sweep,
        "bound_held_in_sweep": all(s["updates"] <= s["bound"] for s in sweep),
        "all_separated_in_sweep": all(s["separated"] for s in sweep),
    }
    return numbers, (x, y, params, u)


def xor_perceptron(x, y, test, key: jax.Array, epochs: int) -> tuple[dict, dict]:
    params, per_epoch, mistakes = MODEL.init(), [], []
    for epoch in range(epochs):
        params, made = MODEL.train(params, x, y, epochs=1, key=jax.random.fold_in(key, epoch))
        mistakes.append(int(made[0]))
        per_epoch.append(accuracy(params, x, y))
    numbers = {
        "epochs": epochs,
        "train_accuracy_per_epoch": per_epoch,
        "best_train_accuracy": max(per_epoch),
        "final_train_accuracy": per_epoch[-1],
        "test_accuracy": accuracy(params, *test),
        "anchor": "a line gets at most 3 of XOR's 4 corners: <= 75% (Minsky & Papert 1969)",
        "fewest_mistakes_in_an_epoch": min(mistakes),
    }
    return numbers, params


def xor_mlp(x, y, test, key: jax.Array, epochs: int, restarts: int) -> tuple[dict, tuple]:
    net = fn.models.mlp([2, 1], activation=fn.tanh)
    optimizer = fn.optim.adam(0.05)
    loss = fn.losses.binary_cross_entropy
    step = fn.train.make_step(net, loss, optimizer)
    targets = (y[:, None] > 0).astype(jnp.float32)

    def train(key: jax.Array) -> tuple[fn.train.TrainState, jax.Array, jax.Array]:
        start = fn.train.init(net, optimizer, key, x.shape)
        ts, _ = jax.lax.scan(lambda ts, _: step(ts, (x, targets)), start, length=epochs)
        logits, _ = net.apply(ts.params, ts.state, x)
        return ts, loss(logits, targets), fn.train.accuracy(logits, targets)

    keys = jax.random.split(key, restarts)
    states, losses, accuracies = jax.jit(jax.vmap(train))(keys)
    best = int(jnp.argmin(losses))  # chosen on the training loss: the test set is not looked at
    ts = jax.tree.map(lambda leaf: leaf[best], states)
    logits, _ = net.apply(ts.params, ts.state, test[0])
    test_targets = (test[1][:, None] > 0).astype(jnp.float32)
    numbers = {
        "architecture": "2-2-1, tanh hidden, one logit",
        "epochs": epochs,
        "restarts": restarts,
        "chosen_restart": best,
        "train_loss": float(losses[best]),
        "train_accuracy": float(accuracies[best]),
        "test_accuracy": float(fn.train.accuracy(logits, test_targets)),
        "test_loss": float(loss(logits, test_targets)),
        "restarts_reaching_100_percent": int(jnp.sum(accuracies == 1.0)),
        "train_accuracy_per_restart": np.asarray(accuracies).tolist(),
        "anchor": "2 hidden units suffice for XOR (Rumelhart, Hinton & Williams 1986)",
    }
    return numbers, (net, ts)


def plot(result: dict, drawn: dict, xor_x, xor_y, path: Path) -> None:
    figure = Figure(figsize=(13, 11))
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    grid = np.linspace(-2.2, 2.2, 221)
    gx, gy = np.meshgrid(grid, grid)
    points = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], axis=1), jnp.float32)

    def regions(ax, labels, x, y, title):
        labels = np.asarray(labels).reshape(gx.shape)
        ax.contourf(gx, gy, labels, levels=[-2, 0, 2], colors=["#f4c7c3", "#c6dbef"])
        ax.contour(gx, gy, labels, levels=[0], colors="k")
        x, y = np.asarray(x), np.asarray(y)
        ax.scatter(*x[y > 0].T, s=10, c="tab:blue", label="+1")
        ax.scatter(*x[y <= 0].T, s=10, c="tab:red", label="-1")
        ax.set(title=title, xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), aspect="equal")

    sep, per, mlp = result["separable"], result["xor_perceptron"], result["xor_mlp"]
    x, y, params, u = drawn["separable"]
    regions(axes[0, 0], MODEL.predict(params, points), x, y,
            f"perceptron, separable: {sep['updates']} updates "
            f"≤ (R/γ)² = {sep['bound']:.0f}")  # fmt: skip
    axes[0, 0].plot(grid, -(u[0] * grid + u[2]) / u[1], "k:", label="generating line")
    title = (
        f"perceptron, XOR after {per['epochs']} epochs: train accuracy "
        f"{per['final_train_accuracy']:.0%} (best epoch {per['best_train_accuracy']:.0%})"
    )
    regions(axes[0, 1], MODEL.predict(drawn["xor_perceptron"], points), xor_x, xor_y, title)
    net, ts = drawn["xor_mlp"]
    logits, _ = net.apply(ts.params, ts.state, points)
    regions(axes[1, 0], jnp.where(logits[:, 0] > 0, 1, -1), xor_x, xor_y,
            f"2-2-1 MLP, XOR: train accuracy {mlp['train_accuracy']:.0%} "
            f"(best of {mlp['restarts']} restarts)")  # fmt: skip
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        ax.legend(loc="lower left")
    ax = axes[1, 1]
    sweep = sep["sweep"]
    for i, gap in enumerate(sorted({s["gap"] for s in sweep})):
        runs = [s for s in sweep if s["gap"] == gap]
        updates = [max(s["updates"], 1) for s in runs]
        ax.loglog([s["bound_max_margin"] for s in runs], updates, "o", color=f"C{i}",
                  label=f"gap {gap}: γ of the max margin")  # fmt: skip
        ax.loglog([s["bound_generating_line"] for s in runs], updates, "o", mfc="none",
                  color=f"C{i}", label=f"gap {gap}: γ of the generating line")  # fmt: skip
    ends = [f(s[k] for s in sweep for k in ("bound_max_margin", "bound_generating_line"))
            for f in (min, max)]  # fmt: skip
    ax.loglog(ends, ends, "k--", label="updates = (R/γ)²")
    ax.set(title="updates until separated vs Novikoff's bound (R/γ)²",
           xlabel="(R/γ)²", ylabel="updates")  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="fewer points, epochs and seeds")
    args = parser.parse_args()
    n, gaps, sweep_seeds = 200, [0.02, 0.05, 0.1, 0.3, 1.0], 5
    xor_epochs, mlp_epochs, restarts, max_sweeps = 100, 500, 20, 30_000
    if args.smoke:
        n, gaps, sweep_seeds, xor_epochs, mlp_epochs, restarts = 50, [0.1, 1.0], 2, 5, 20, 2
        max_sweeps = 200

    start, cpu = time.perf_counter(), time.process_time()
    key = jax.random.key(args.seed)
    sep_key, xor_key, test_key, order_key, mlp_key = jax.random.split(key, 5)
    x, labels = fn.data.xor(xor_key, n=n, noise=0.1)
    test_x, test_labels = fn.data.xor(test_key, n=1000, noise=0.1)
    y, test = 2 * labels - 1, (test_x, 2 * test_labels - 1)
    result, drawn = {}, {}
    result["separable"], drawn["separable"] = separable_part(
        sep_key, n, gaps, sweep_seeds, max_sweeps
    )
    result["xor_perceptron"], drawn["xor_perceptron"] = xor_perceptron(
        x, y, test, order_key, xor_epochs
    )
    result["xor_mlp"], drawn["xor_mlp"] = xor_mlp(x, y, test, mlp_key, mlp_epochs, restarts)
    name = "perceptron_xor_smoke" if args.smoke else "perceptron_xor"
    RESULTS.mkdir(exist_ok=True)
    plot(result, drawn, x, y, RESULTS / f"{name}.png")
    summary = {
        "experiment": "perceptron (Rosenblatt's rule) on separable data and XOR; 2-2-1 MLP",
        **result,
        "xor_points": n,
        "test_points": 1000,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),  # all threads, all cores
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=1))
    sep, per, mlp = result["separable"], result["xor_perceptron"], result["xor_mlp"]
    print(
        f"separable: {sep['updates']} updates <= bound {sep['bound']:.0f}, test accuracy"
        f" {sep['test_accuracy']:.1%}; XOR perceptron best {per['best_train_accuracy']:.1%}, MLP"
        f" train {mlp['train_accuracy']:.0%} test {mlp['test_accuracy']:.1%}"
        f" ({mlp['restarts_reaching_100_percent']} of {mlp['restarts']} restarts reach 100%),"
        f" {summary['seconds']} s"
    )


if __name__ == "__main__":
    main()
