"""A linear SVM (hinge loss, L2 penalty) against logistic regression, on two two-class tasks.

Both models are one `fn.Dense(1)` score ``s(x) = w·x + b`` and differ only in
the loss (Cortes and Vapnik 1995 for the soft-margin SVM):

- linear SVM: ``λ/2 ‖w‖² + mean_i max(0, 1 - y_i s(x_i))`` (`fn.losses.hinge`,
  labels ±1); the bias is not penalised. ``C = 1/(λ n)`` in the usual form.
- logistic regression: ``λ/2 ‖w‖² + mean_i BCE(s(x_i), (y_i + 1)/2)``
  (`fn.losses.binary_cross_entropy` on the logit).

Settings (stated, not inherited): full-batch training with `fn.train.make_step`
(penalty ``λ · fn.losses.l2_penalty(w)``), Adam with learning rate 0.05
decayed by cosine to 0 over ``--steps`` (default 2,000) steps, in one
`lax.scan`; `jax.vmap` trains the whole grid ``λ`` in {1e-5, 1e-4, 1e-3, 1e-2,
1e-1, 1} at once. For each model ``λ`` is chosen on the validation split
(best accuracy; ties go to the larger ``λ``, the simpler model); the test set
is evaluated once, with that ``λ``. Support vectors: the training points on or
inside the margin, ``y s(x) <= 1 + 1e-3``; the margin's width is ``2/‖w‖``.

Tasks:

1. Two Gaussian blobs in 2D: ``y = ±1`` with probability ½, ``x ~ N(y (√2,
   √2), I)``: 200 training, 200 validation and 10,000 test points. The means
   are 4 standard deviations apart, so the Bayes classifier (the line
   ``x₁ + x₂ = 0``) is right with probability ``Φ(2) = 97.72%``: the anchor
   for both models. The figure shows the SVM's line, its margins ``s = ±1``
   and its support vectors, and the logistic regression's line.
2. Handwritten 3 against 5: MNIST with ``--data-dir`` (11,552 training images
   of 3 or 5, 10% held out for validation, 1,902 test images), otherwise the
   bundled 8x8 digits (`fn.data.load_digits`: 293 training images, 20% held
   out, 72 test images). Pixels in [0, 1], flattened.

    python experiments/linear_svm.py [--data-dir DIR] [--steps N] [--seed S] [--smoke]

Writes experiments/results/linear_svm.{json,png} (the figure: the blobs'
margins, and validation accuracy against λ for both tasks).
"""

import argparse
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

RESULTS = Path(__file__).parent / "results"
LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SUPPORT_TOLERANCE = 1e-3
MEAN = math.sqrt(2.0)  # the blobs' means ±(√2, √2): 4 standard deviations apart
BAYES_ACCURACY = 0.5 * (1 + math.erf(2 / math.sqrt(2)))  # Φ(2)

#: name -> (loss, targets from ±1 labels (n, 1))
MODELS = {
    "linear_svm": (fn.losses.hinge, lambda y: y),
    "logistic_regression": (fn.losses.binary_cross_entropy, lambda y: (y + 1) / 2),
}


def blobs(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """``x (n, 2)`` from ``N(y (√2, √2), I)`` and ``y (n,)`` = ±1 with probability ½."""
    label_key, noise_key = jax.random.split(key)
    y = jnp.where(jax.random.bernoulli(label_key, 0.5, (n,)), 1.0, -1.0)
    return y[:, None] * MEAN + jax.random.normal(noise_key, (n, 2)), y


def three_or_five(args: argparse.Namespace, key: jax.Array) -> tuple[str, tuple, tuple, tuple]:
    """``(name, train, validation, test)``: 3 (label +1) against 5 (label -1), flattened."""
    if args.data_dir is not None:
        name, fraction = "MNIST 3 vs 5", 0.1
        train, test = fn.data.load_mnist(root=args.data_dir, download=False)
    else:
        name, fraction = "8x8 digits 3 vs 5", 0.2
        train, test = fn.data.load_digits()

    def pick(x, labels):
        keep = (labels == 3) | (labels == 5)
        return x[keep].reshape(int(keep.sum()), -1), np.where(labels[keep] == 3, 1.0, -1.0)

    train, test = pick(*train), pick(*test)
    if args.smoke:
        train, test = (train[0][:500], train[1][:500]), (test[0][:200], test[1][:200])
    train, validation = fn.data.split(train, fraction, key)
    as_jax = lambda split: tuple(jnp.asarray(a, jnp.float32) for a in split)
    return name, as_jax(train), as_jax(validation), as_jax(test)


def train_grid(loss, targets, x: jax.Array, y: jax.Array, key: jax.Array, steps: int):
    """Params ``{"w": (len(LAMBDAS), d, 1), "b": ...}`` and final objectives, one per ``λ``."""
    net = fn.Dense(1)
    optimizer = fn.optim.adam(fn.optim.cosine_decay_schedule(0.05, steps, alpha=0.0))
    batch = (x, targets(y[:, None]))

    def train(lam: jax.Array):
        penalty = lambda params: lam * fn.losses.l2_penalty(params["w"])
        step = fn.train.make_step(net, loss, optimizer, penalty=penalty)
        start = fn.train.init(net, optimizer, key, x.shape)
        ts, metrics = jax.lax.scan(lambda ts, _: step(ts, batch), start, length=steps)
        return ts.params, metrics["loss"][-1] + metrics["penalty"][-1]

    return jax.jit(jax.vmap(train))(jnp.asarray(LAMBDAS))


def scores(params, x: jax.Array) -> jax.Array:
    return (x @ params["w"] + params["b"])[..., 0]


def accuracy(params, x: jax.Array, y: jax.Array) -> float:
    return float(jnp.mean(jnp.where(scores(params, x) > 0, 1.0, -1.0) == y))


def run_task(train, validation, test, key: jax.Array, steps: int) -> tuple[dict, dict]:
    numbers, chosen = {}, {}
    for name, (loss, targets) in MODELS.items():
        grid, objectives = train_grid(loss, targets, *train, key, steps)
        each = [jax.tree.map(lambda leaf, i=i: leaf[i], grid) for i in range(len(LAMBDAS))]
        val = [accuracy(params, *validation) for params in each]
        best = max(range(len(LAMBDAS)), key=lambda i: (val[i], LAMBDAS[i]))
        params = each[best]
        numbers[name] = {
            "lambda": LAMBDAS[best],
            "val_accuracy_per_lambda": val,
            "objective_per_lambda": np.asarray(objectives).tolist(),
            "train_accuracy": accuracy(params, *train),
            "val_accuracy": val[best],
            "test_accuracy": accuracy(params, *test),
            "weight_norm": float(jnp.linalg.norm(params["w"])),
        }
        chosen[name] = params
    margins = train[1] * scores(chosen["linear_svm"], train[0])
    numbers["linear_svm"].update(
        margin_width=2 / numbers["linear_svm"]["weight_norm"],
        support_vectors=int(jnp.sum(margins <= 1 + SUPPORT_TOLERANCE)),
        on_the_margin=int(jnp.sum(jnp.abs(margins - 1) <= SUPPORT_TOLERANCE)),
        margin_violations=int(jnp.sum(margins < 1 - SUPPORT_TOLERANCE)),
    )
    return numbers, chosen


def plot(blob_data, chosen, result: dict, path: Path) -> None:
    figure = Figure(figsize=(16, 5.2))
    FigureCanvasAgg(figure)
    svm_ax, lr_ax, grid_ax = figure.subplots(1, 3)
    x, y = (np.asarray(a) for a in blob_data)
    grid = np.linspace(-5, 5, 2)

    def line(ax, params, offset, style, label):
        w, b = np.asarray(params["w"])[:, 0], float(np.asarray(params["b"])[0])
        ax.plot(grid, (offset - b - w[0] * grid) / w[1], style, label=label)

    for ax in (svm_ax, lr_ax):
        ax.scatter(*x[y > 0].T, s=12, c="tab:blue", label="y = +1")
        ax.scatter(*x[y < 0].T, s=12, c="tab:red", label="y = -1")
        ax.plot(grid, -grid, ":", c="grey", label="Bayes: x₁ + x₂ = 0")
        ax.set(xlim=(-5, 5), ylim=(-5, 5), aspect="equal", xlabel="x₁", ylabel="x₂")
    svm, blobs_result = chosen["linear_svm"], result["blobs"]
    margins = y * np.asarray(scores(svm, jnp.asarray(x)))
    support = margins <= 1 + SUPPORT_TOLERANCE
    svm_ax.scatter(*x[support].T, s=90, facecolors="none", edgecolors="k",
                   label=f"support vectors ({int(support.sum())})")  # fmt: skip
    line(svm_ax, svm, 0.0, "k-", "s(x) = 0")
    line(svm_ax, svm, 1.0, "k--", "s(x) = ±1")
    line(svm_ax, svm, -1.0, "k--", None)
    svm_numbers = blobs_result["linear_svm"]
    svm_ax.set_title(
        f"linear SVM (λ = {svm_numbers['lambda']:g}): margin width "
        f"{svm_numbers['margin_width']:.2f}, test {svm_numbers['test_accuracy']:.2%}"
    )
    line(lr_ax, chosen["logistic_regression"], 0.0, "g-", "logistic regression, p = ½")
    line(lr_ax, svm, 0.0, "k-", "linear SVM, s(x) = 0")
    lr_numbers = blobs_result["logistic_regression"]
    lr_ax.set_title(
        f"logistic regression (λ = {lr_numbers['lambda']:g}): "
        f"test {lr_numbers['test_accuracy']:.2%} (Bayes {BAYES_ACCURACY:.2%})"
    )
    for task, style in (("blobs", "-"), ("digits", "--")):
        for name, colour, marker in (("linear_svm", "k", "o"), ("logistic_regression", "g", "x")):
            grid_ax.semilogx(LAMBDAS, result[task][name]["val_accuracy_per_lambda"], style,
                             c=colour, marker=marker, label=f"{task}: {name}")  # fmt: skip
    grid_ax.set(title=f"validation accuracy vs λ (digits: {result['digits']['data']})",
                xlabel="λ", ylabel="validation accuracy")  # fmt: skip
    for ax in (svm_ax, lr_ax, grid_ax):
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="root holding mnist/ (default: 8x8 digits)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="200 steps, fewer examples")
    args = parser.parse_args()
    steps, test_points = (200, 1000) if args.smoke else (args.steps, 10_000)

    start, cpu = time.perf_counter(), time.process_time()
    keys = jax.random.split(jax.random.key(args.seed), 6)
    train, validation, test = blobs(keys[0], 200), blobs(keys[1], 200), blobs(keys[2], test_points)
    result, drawn = {}, {}
    result["blobs"], drawn = run_task(train, validation, test, keys[3], steps)
    bayes = float(jnp.mean(jnp.where(test[0].sum(axis=1) > 0, 1.0, -1.0) == test[1]))
    result["blobs"].update(
        points={"train": 200, "validation": 200, "test": test_points},
        bayes_accuracy=BAYES_ACCURACY,
        bayes_accuracy_on_this_test_set=bayes,
        anchor="Bayes classifier x1 + x2 = 0: Phi(2) = 97.72% (the best any classifier can do)",
    )
    name, *digits = three_or_five(args, keys[4])
    result["digits"], _ = run_task(*digits, keys[5], steps)
    result["digits"].update(
        data=name, points={k: len(d[1]) for k, d in zip(("train", "validation", "test"), digits)}
    )
    output = "linear_svm_smoke" if args.smoke else "linear_svm"
    RESULTS.mkdir(exist_ok=True)
    plot(train, drawn, result, RESULTS / f"{output}.png")
    summary = {
        "experiment": "linear SVM (hinge + L2) vs logistic regression",
        **result,
        "lambdas": LAMBDAS,
        "steps": steps,
        "optimizer": "adam 0.05, cosine decay to 0, full batch",
        "seed": args.seed,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),  # all threads, all cores
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    (RESULTS / f"{output}.json").write_text(json.dumps(summary, indent=1))
    for task in ("blobs", "digits"):
        svm, lr = result[task]["linear_svm"], result[task]["logistic_regression"]
        print(f"{task}: test accuracy SVM {svm['test_accuracy']:.2%} (λ {svm['lambda']:g}, "
              f"{svm['support_vectors']} support vectors), logistic regression "
              f"{lr['test_accuracy']:.2%} (λ {lr['lambda']:g})")  # fmt: skip
    print(f"Bayes {BAYES_ACCURACY:.2%}; {summary['seconds']} s")


if __name__ == "__main__":
    main()
