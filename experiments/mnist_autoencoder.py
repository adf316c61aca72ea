"""A deep autoencoder against PCA on MNIST (Hinton & Salakhutdinov, Science 2006).

The paper's table: the average squared reconstruction error per MNIST test
image (summed over the 784 pixels) is 3.00 for a 784-1000-500-250-30
autoencoder and 13.87 for PCA with 30 components. This script computes both
for funcnets; the goal is an autoencoder at or below 3.0.

Settings (stated, not inherited):
- PCA: 30 components fitted on the training split (`fn.pca`); its
  reconstructions are not clipped to [0, 1].
- Autoencoder: `autoencoder((28, 28, 1), 30, (1000, 500, 250))`: dense
  layers, a linear 30-unit code and logistic outputs, trained end to end by
  the pixels' binary cross-entropy (as the paper fine-tuned) from random
  initial weights (no RBM pretraining); Adam, learning rate ``--lr`` (2e-3)
  decayed by cosine to 1% of it, batch 225, ``--epochs`` epochs (120). The
  epoch of lowest validation squared error is kept (restore-best).
- The recipe is chosen on the validation split among ``--candidates``:
  ``sigmoid`` (logistic hidden units, the paper's) and ``gelu-masked`` (GELU
  hidden units, each training input pixel zeroed with probability 0.1, a
  denoising regulariser); ``gelu`` (no noise) is available too. In a first
  H100 run, ``gelu`` for 300 epochs (batch 256, peak 2e-3) overfitted from
  about epoch 40 (training error 2.35, validation 3.48) and reached 3.41 on
  the test set, hence the two regularised defaults. The test set is
  evaluated once, for the chosen recipe.
- Figures (the paper's Fig. 2B and 3A): test digits with their autoencoder
  and PCA reconstructions; the test set's 2-D codes from PCA and from a
  784-1000-500-250-2 autoencoder (the chosen hidden units, no noise,
  ``--epochs-2d`` epochs), coloured by digit; a denoising convolutional
  autoencoder (`autoencoder(..., 32, (32, 64), kind="conv",
  corruption=masking_noise(0.5))`, ReLU, ``--epochs-denoise`` epochs):
  clean, corrupted (half the pixels zeroed) and denoised test digits.
- 6,000 training images are held out (by the seed) for model selection.

    python experiments/mnist_autoencoder.py [--data-dir DIR] [--epochs N] [--smoke]

``--smoke``: 2,000 images, one epoch per network, every width divided by 8, the
first candidate only.

Writes experiments/results/mnist_autoencoder.json, mnist_autoencoder.png (the
curves) and mnist_autoencoder_{reconstructions,codes,denoising}.png.
Full mode: about two minutes on one H100 (estimated; one candidate, ``--candidates
sigmoid``, about 90 s).
"""

import math
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from common import RESULTS, arguments, load_mnist, write_results

import funcnets as fn
from funcnets import pca
from funcnets.models.autoencoder import autoencoder, masking_noise

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SHAPE = (28, 28, 1)
HIDDEN = (1000, 500, 250)
BATCH = 225  # divides the 54,000 (and --smoke's 1,800) training images: one compiled epoch
PAPER = {"autoencoder_30": 3.00, "pca_30": 13.87}
#: The recipes tried for the 30-unit autoencoder: hidden units, and the probability with
#: which each input pixel is zeroed in training (masking noise, a regulariser; 0: none).
CANDIDATES = {
    "gelu": dict(activation=fn.gelu, masking=0.0),
    "sigmoid": dict(activation=fn.sigmoid, masking=0.0),
    "gelu-masked": dict(activation=fn.gelu, masking=0.1),
}


def squared_error(x: jax.Array, reconstruction: jax.Array) -> float:
    """Squared error summed over each image's pixels, averaged over images."""
    difference = reconstruction.reshape(len(x), -1) - jnp.reshape(x, (len(x), -1))
    return float(jnp.mean(jnp.sum(jnp.square(difference), axis=1)))


class Report(fn.train.Callback):
    """Prints the epoch's numbers every ``every`` epochs (instead of a progress bar per epoch)."""

    def __init__(self, name: str, every: int) -> None:
        self.name, self.every, self.start = name, every, time.perf_counter()

    def on_epoch_end(self, epoch, ts, logs) -> bool:
        if epoch % self.every == 0:
            numbers = ", ".join(f"{k} {v:.4g}" for k, v in logs.items() if "norm" not in k)
            print(
                f"{self.name} epoch {epoch}: {numbers} ({time.perf_counter() - self.start:.0f} s)"
            )
        return False


def train(ae, name: str, x_train, x_val, epochs: int, lr: float, seed: int, report: int):
    """Adam with cosine decay; returns the state of the epoch of lowest validation error."""
    steps = epochs * math.ceil(len(x_train) / BATCH)
    optimizer = fn.optim.adam(fn.optim.cosine_decay_schedule(lr, steps, alpha=0.01))
    ts = ae.init(jax.random.key(seed), (BATCH, *SHAPE), optimizer)
    val_key = jax.random.key(seed + 1)
    selector = fn.train.EarlyStopping("val_squared_error", patience=epochs, mode="min")

    def validate(ts):
        return {f"val_{k}": v for k, v in ae.evaluate(ts, x_val, val_key).items()}

    start = time.perf_counter()
    ts, history = fn.train.run(
        ae.step(optimizer), ts, x_train, epochs=epochs, batch_size=BATCH, strategy="epoch",
        callbacks=[selector, Report(name, report)], validate=validate, progress=False,
    )  # fmt: skip
    return ts, history, selector.best_epoch, time.perf_counter() - start


def figure_reconstructions(path, x, ae_out, pca_out) -> None:
    """Rows: test digits, the autoencoder's reconstructions, PCA's (the paper's Fig. 2B)."""
    rows = [("test images", x), ("autoencoder (30)", ae_out), ("PCA (30)", pca_out)]
    fig, axes = plt.subplots(3, len(x), figsize=(len(x) * 0.8, 3 * 0.9))
    for r, (title, images) in enumerate(rows):
        for c in range(len(x)):
            axes[r, c].imshow(np.clip(np.asarray(images[c]).reshape(28, 28), 0, 1), cmap="gray")
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, loc="left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure_codes(path, codes: dict, labels) -> None:
    """2-D codes of test digits, coloured by digit (the paper's Fig. 3A)."""
    fig, axes = plt.subplots(1, len(codes), figsize=(5 * len(codes), 4.6))
    for ax, (title, z) in zip(np.atleast_1d(axes), codes.items()):
        z = np.asarray(z)
        points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
        ax.set_xlim(*np.percentile(z[:, 0], [0.5, 99.5]))  # a few far points would squash it
        ax.set_ylim(*np.percentile(z[:, 1], [0.5, 99.5]))
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes, ticks=range(10), label="digit")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure_denoising(path, x, noisy, denoised) -> None:
    """Rows: clean test digits, the corrupted inputs, the denoised outputs."""
    rows = [("clean", x), ("corrupted (50% masked)", noisy), ("denoised", denoised)]
    fig, axes = plt.subplots(3, len(x), figsize=(len(x) * 0.8, 3 * 0.9))
    for r, (title, images) in enumerate(rows):
        for c in range(len(x)):
            axes[r, c].imshow(np.asarray(images[c]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, loc="left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = arguments(__doc__, epochs=120)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's peak learning rate")
    parser.add_argument(
        "--candidates",
        default="sigmoid,gelu-masked",
        help=f"comma-separated, of {list(CANDIDATES)}",
    )
    parser.add_argument("--epochs-2d", type=int, default=30, help="the 2-D code autoencoder")
    parser.add_argument("--epochs-denoise", type=int, default=10, help="the denoising one")
    args = parser.parse_args()
    total_start = time.perf_counter()
    (x_train, _), (x_val, _), (x_test, y_test), epochs = load_mnist(args)
    epochs_2d, epochs_denoise = (1, 1) if args.smoke else (args.epochs_2d, args.epochs_denoise)
    x_train, x_val, x_test = (jnp.asarray(x) for x in (x_train, x_val, x_test))
    report = 1 if args.smoke else 20  # print every `report` epochs
    narrow = 8 if args.smoke else 1  # --smoke: every width divided by 8
    hidden = tuple(h // narrow for h in HIDDEN)
    channels = (32 // narrow, 64 // narrow)

    # PCA with 30 components: the linear baseline.
    p30 = pca.pca(x_train, 30)
    pca_errors = {
        split: squared_error(x, pca.reconstruct(p30, pca.project(p30, x)))
        for split, x in (("val", x_val), ("test", x_test))
    }

    # The 784-1000-500-250-30 autoencoder: each candidate recipe, chosen on validation.
    runs = {}
    recipes = args.candidates.split(",")[: 1 if args.smoke else None]
    for i, recipe in enumerate(recipes):
        spec = CANDIDATES[recipe]
        noise = masking_noise(spec["masking"]) if spec["masking"] else None
        candidate = autoencoder(SHAPE, 30, hidden, activation=spec["activation"], corruption=noise)
        runs[recipe] = (candidate, *train(
            candidate, f"autoencoder-30 {recipe}", x_train, x_val, epochs, args.lr,
            args.seed + 10 * i, report,
        ))  # fmt: skip
    val_errors = {
        r: ae.evaluate(ts, x_val, jax.random.key(0))["squared_error"]
        for r, (ae, ts, *_) in runs.items()
    }
    chosen = min(val_errors, key=val_errors.get)
    ae, ts, history, best_epoch, _ = runs[chosen]
    test = ae.evaluate(ts, x_test, jax.random.key(0))  # the test set, touched once
    print(
        f"test squared error per image: autoencoder {test['squared_error']:.2f} ({chosen}, epoch "
        f"{best_epoch} of {epochs}), PCA-30 {pca_errors['test']:.2f}; "
        f"the paper: {PAPER['autoencoder_30']:.2f} and {PAPER['pca_30']:.2f}"
    )
    activation = CANDIDATES[chosen]["activation"]

    # A 2-D code, for the scatter plot, against PCA's first two components (those of p30).
    ae2 = autoencoder(SHAPE, 2, hidden, activation=activation)
    ts2, _, best_2d, seconds_2d = train(
        ae2, "autoencoder-2", x_train, x_val, epochs_2d, args.lr, args.seed + 2, report
    )
    test_2d = ae2.evaluate(ts2, x_test, jax.random.key(0))
    p2 = pca.PCA(p30.mean, p30.components[:2], p30.explained_variance[:2])

    # A denoising convolutional autoencoder: half of each input's pixels are zeroed.
    noise = masking_noise(0.5)
    dae = autoencoder(SHAPE, 32, channels, kind="conv", corruption=noise)  # ReLU
    ts_d, _, best_denoise, seconds_denoise = train(
        dae, "denoising", x_train, x_val, epochs_denoise, args.lr, args.seed + 3, report
    )
    noisy_test = noise(jax.random.key(7), x_test)
    test_d = dae.evaluate(ts_d, x_test, jax.random.key(7))  # the same corruption as noisy_test

    name = "mnist_autoencoder_smoke" if args.smoke else "mnist_autoencoder"
    shown = x_test[:12]
    figure_reconstructions(
        RESULTS / f"{name}_reconstructions.png",
        shown,
        ae.reconstruct(ts.params, ts.state, shown),
        pca.reconstruct(p30, pca.project(p30, shown)),
    )
    scatter = slice(0, 5000)
    figure_codes(
        RESULTS / f"{name}_codes.png",
        {
            "PCA, first 2 components": pca.project(p2, x_test[scatter]),
            "autoencoder 784-1000-500-250-2": ae2.encode(ts2.params, ts2.state, x_test[scatter]),
        },
        np.asarray(y_test[scatter]),
    )
    figure_denoising(
        RESULTS / f"{name}_denoising.png",
        shown,
        noisy_test[:12],
        dae.reconstruct(ts_d.params, ts_d.state, noisy_test[:12]),
    )

    result = {
        "experiment": "784-1000-500-250-30 autoencoder vs PCA-30 on MNIST",
        "reference": "Hinton & Salakhutdinov (2006), Science 313:504, MNIST table: average "
        "squared reconstruction error per test image, 3.00 (autoencoder) and 13.87 (PCA-30)",
        "metric": "squared error summed over the 784 pixels, mean over images (pixels in [0, 1])",
        "test_squared_error": {
            "autoencoder_30": test["squared_error"],
            "pca_30": pca_errors["test"],
        },
        "paper_test_squared_error": PAPER,
        "goal": "autoencoder_30 <= 3.0",
        "goal_met": test["squared_error"] <= 3.0,
        "val_squared_error": {"autoencoder_30": val_errors[chosen], "pca_30": pca_errors["val"]},
        "recipe_chosen_on_validation": chosen,
        "candidates_val_squared_error": val_errors,
        "candidates_selected_epoch": {r: run[3] for r, run in runs.items()},
        "test_cross_entropy": test["loss"],
        "selected_epoch": best_epoch,
        "epochs": epochs,
        "architecture": "784-1000-500-250-30-250-500-1000-784, linear code, logistic output",
        "hidden_units": CANDIDATES[chosen]["activation"].__name__,
        "training_masking_noise": CANDIDATES[chosen]["masking"],
        "loss": "binary cross-entropy summed over pixels",
        "optimizer": f"adam, cosine decay {args.lr:g} -> {args.lr / 100:g}",
        "batch_size": BATCH,
        "initialisation": "random (lecun normal), no RBM pretraining",
        "train_examples": len(x_train),
        "seed": args.seed,
        "train_seconds": {r: round(run[4], 1) for r, run in runs.items()},
        "autoencoder_2d": {
            "architecture": "784-1000-500-250-2",
            "epochs": epochs_2d,
            "selected_epoch": best_2d,
            "test_squared_error": test_2d["squared_error"],
            "train_seconds": round(seconds_2d, 1),
        },
        "denoising": {
            "architecture": "conv 3x3/2 x32, 3x3/2 x64, dense 32-unit code; mirror back",
            "corruption": "masking noise: each pixel zeroed with probability 0.5",
            "epochs": epochs_denoise,
            "selected_epoch": best_denoise,
            "test_squared_error_corrupted_input": squared_error(x_test, noisy_test),
            "test_squared_error_denoised": test_d["denoised_squared_error"],
            "test_squared_error_clean_input": test_d["squared_error"],
            "train_seconds": round(seconds_denoise, 1),
        },
        "total_seconds": round(time.perf_counter() - total_start, 1),
    }
    write_results("mnist_autoencoder", result, history, args.smoke)
    print(
        f"2-D autoencoder test error {test_2d['squared_error']:.2f}; denoising: corrupted "
        f"{result['denoising']['test_squared_error_corrupted_input']:.2f} -> denoised "
        f"{test_d['denoised_squared_error']:.2f}; total {result['total_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
