"""A DCGAN on MNIST (Radford et al. 2016), scored by an MNIST classifier: Inception score ≥ 9.0.

Settings (stated, not inherited): `dcgan_mnist(latent=100, width=64)` (generator
Dense -> 7x7x128 -> two 4x4 stride-2 transposed convolutions -> 28x28x1,
BatchNorm and ReLU, output (tanh + 1) / 2; discriminator: input mapped to
[-1, 1], two 4x4 stride-2 convolutions, BatchNorm, leaky ReLU 0.2, one logit;
weights from N(0, 0.02)), both trained with Adam (learning rate 2e-4, b1 =
0.5, as in the DCGAN paper), batch 128, 30 epochs over 53,888 training images
(whole minibatches), the non-saturating generator loss, one discriminator and
one generator update per step in one compiled call, seed 0, pixels in [0, 1].

The judge is a classifier trained here on the same training split: a small
ReLU conv net (two 3x3 conv pairs of 32 and 64 channels, each pair followed by
a 2x2 max pool, Dense 128, Dense 10), Adam 1e-3 with cosine decay, batch 128,
8 epochs, the epoch of best validation accuracy kept. From it:

- the MNIST "Inception score" ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al.
  2016), between 1 and 10: the real test set's score is the ceiling;
- the Fréchet distance (Heusel et al. 2017) between Gaussians fitted to the
  classifier's penultimate (128-d) features of 10,000 samples and of the
  10,000 test images. Its floor is the distance of 10,000 real training
  images to the test images (sets of the same size, since the estimate is
  biased upwards for small sets).

The VAE's samples (experiments/results/mnist_vae_samples.npz, written by the
VAE's experiment) are scored the same way when present. 6,000
training images are held out: after each epoch, the Fréchet distance of 6,000
samples to them (and their Inception score) is logged, and the epoch of the
smallest distance is the generator reported; the test set is used once, at
the end.

    python experiments/mnist_gan.py [--data-dir DIR] [--epochs N] [--smoke]

Writes experiments/results/mnist_gan.json, mnist_gan.png (losses and the
validation scores per epoch), mnist_gan_samples.png (one row of samples per
epoch, the same noise in every row) and mnist_gan_compare.png (real test
images, the GAN's and the VAE's samples).
"""

import json
import time

import jax
import matplotlib
import numpy as np
from common import RESULTS, arguments, best_on_validation, load_mnist

import funcnets as fn
from funcnets.models.gan import dcgan_mnist
from funcnets.sample_quality import classifier_outputs, frechet_distance, inception_score

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GOAL = 9.0
VAE_SAMPLES = RESULTS / "mnist_vae_samples.npz"
GRID_COLUMNS = 12
# A non-finite step is skipped and counted (``skipped_steps``, reported) rather than
# raised, so that one bad step of adversarial training does not end the run.
ON_NAN = "skip"


def classifier() -> fn.Layer:
    """The judge: a small ReLU conv net whose ``dense`` layer gives the 128 features."""
    return fn.Sequential(
        conv1=fn.Conv2D(32, 3), act1=fn.relu, conv2=fn.Conv2D(32, 3), act2=fn.relu,
        pool1=fn.MaxPool2D(2),
        conv3=fn.Conv2D(64, 3), act3=fn.relu, conv4=fn.Conv2D(64, 3), act4=fn.relu,
        pool2=fn.MaxPool2D(2),
        flatten=fn.Flatten(), dense=fn.Dense(128), act5=fn.relu, output=fn.Dense(10),
    )  # fmt: skip


def train_classifier(args, train, validation, epochs):
    """The judge trained on the training split, the epoch of best validation accuracy kept."""
    net, batch = classifier(), args.batch_size
    steps = epochs * -(-len(train[0]) // batch)
    optimizer = fn.optim.adam(fn.optim.cosine_decay_schedule(1e-3, steps, alpha=0.01))
    selector = best_on_validation(epochs)
    ts, history = fn.train.fit(
        net, fn.losses.sparse_cross_entropy, optimizer, train, epochs=epochs, batch_size=batch,
        key=jax.random.key(args.seed + 1), val_data=validation, callbacks=[selector],
        progress=not args.smoke, on_nan=ON_NAN,
    )  # fmt: skip
    return net, ts, history, selector.best_epoch


def load_vae_samples(n: int) -> np.ndarray | None:
    """The first ``n`` VAE samples as (n, 28, 28, 1) in [0, 1] (from floats, or uint8 / 255),
    or None if there is no file."""
    if not VAE_SAMPLES.exists():
        return None
    with np.load(VAE_SAMPLES) as archive:
        samples = archive["samples"] if "samples" in archive else archive[archive.files[0]]
    scale = 255.0 if np.issubdtype(samples.dtype, np.integer) else 1.0  # uint8 pixels
    samples = np.asarray(samples, np.float32).reshape(-1, 28, 28, 1)[:n] / scale
    return np.clip(samples, 0.0, 1.0)


def scores(features_of, images, reference) -> dict:
    """Inception score of ``images`` and their Fréchet distance to the ``reference`` features."""
    probabilities, features = features_of(images)
    return {
        "inception_score": inception_score(probabilities),
        "frechet_distance": frechet_distance(features, reference),
        "n": len(images),
    }


def plot_rows(rows: list[np.ndarray], selected: int, path) -> None:
    """One row of samples per epoch (the same noise each time), the selected epoch marked."""
    grid = np.concatenate([np.concatenate(list(row[..., 0]), axis=1) for row in rows], axis=0)
    figure, axes = plt.subplots(figsize=(GRID_COLUMNS * 0.6, len(rows) * 0.6 + 0.4))
    axes.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    axes.set_xticks([])
    axes.set_yticks(np.arange(len(rows)) * 28 + 14)
    axes.set_yticklabels([f"epoch {e}" + (" *" if e == selected else "") for e in
                          range(1, len(rows) + 1)])  # fmt: skip
    axes.set_title(f"the same {GRID_COLUMNS} noise vectors after each epoch (* selected)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_curves(history: fn.train.History, selected: int, path) -> None:
    """Losses, the discriminator's outputs, and the validation scores per epoch."""
    epochs = np.arange(1, history.epochs + 1)
    panels = [
        ("losses (training)", ["d_loss", "g_loss"]),
        ("mean D output (training)", ["d_real", "d_fake"]),
        ("Fréchet distance to validation", ["val_frechet_distance"]),
        ("Inception score (validation samples)", ["val_inception_score"]),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (title, names) in zip(axes, panels):
        for name in names:
            ax.plot(epochs, history[name], marker=".", label=name)
        ax.axvline(selected, color="gray", linestyle=":", label="selected")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_compare(sets: dict[str, np.ndarray | None], path) -> None:
    """An 8x8 grid of each set of images side by side."""
    figure, axes = plt.subplots(1, len(sets), figsize=(4 * len(sets), 4.3))
    for ax, (title, images) in zip(axes, sets.items()):
        ax.axis("off")
        ax.set_title(title)
        if images is None:
            ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes)
            continue
        tiles = np.asarray(images[:64, ..., 0])
        tiles = (
            np.concatenate([tiles, np.ones((64 - len(tiles), 28, 28))])
            if len(tiles) < 64
            else tiles
        )
        grid = tiles.reshape(8, 8, 28, 28).transpose(0, 2, 1, 3).reshape(8 * 28, 8 * 28)
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = arguments(__doc__, epochs=30)
    parser.add_argument("--classifier-epochs", type=int, default=8)
    parser.add_argument("--width", type=int, default=64, help="the DCGAN's base channel count")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--limit", type=int, help="train on the first LIMIT training images only (a quick check)"
    )
    args = parser.parse_args()
    start = time.perf_counter()

    (x_train, y_train), (x_val, y_val), (x_test, y_test), epochs = load_mnist(args)
    # Whole minibatches only (53,888 of the 54,000 images): a last, smaller one would be
    # one more compiled step for each network.
    limit = min(args.limit or len(x_train), 512 if args.smoke else len(x_train), len(x_train))
    kept = limit // args.batch_size * args.batch_size
    x_train, y_train = x_train[:kept], y_train[:kept]
    classifier_epochs = 1 if args.smoke else args.classifier_epochs
    width = 8 if args.smoke else args.width

    # 1. The judge.
    judge, judge_ts, judge_history, judge_epoch = train_classifier(
        args, (x_train, y_train), (x_val, y_val), classifier_epochs
    )
    judge_seconds = time.perf_counter() - start
    val_accuracy = fn.train.evaluate(judge, judge_ts, (x_val, y_val))["accuracy"]

    def features_of(images):
        return classifier_outputs(judge, judge_ts.params, judge_ts.state, images)

    _, val_features = features_of(x_val)

    # 2. The GAN, one epoch at a time, scored on the validation split after each.
    model = dcgan_mnist(latent=100, width=width)
    optimizer = fn.optim.adam(2e-4, b1=0.5)
    key = jax.random.key(args.seed)
    init_key, val_key, grid_key, test_key = jax.random.split(key, 4)
    init = jax.jit(model.init, static_argnums=(1, 2))  # one compiled call, not one per array
    ts = init(init_key, (args.batch_size, 28, 28, 1), optimizer)
    sample = jax.jit(model.sample, static_argnums=3)
    rows: list[np.ndarray] = []

    def validate(ts: fn.train.TrainState) -> dict[str, float]:
        rows.append(np.asarray(sample(ts.params, ts.state, grid_key, GRID_COLUMNS)))
        images = sample(ts.params, ts.state, val_key, len(x_val))
        numbers = scores(features_of, images, val_features)
        return {f"val_{k}": v for k, v in numbers.items() if k != "n"}

    selector = fn.train.EarlyStopping(
        "val_frechet_distance", patience=epochs, restore_best=True, mode="min"
    )
    gan_start = time.perf_counter()
    ts, history = fn.train.run(
        model.step(optimizer), ts, x_train, epochs=epochs, batch_size=args.batch_size,
        callbacks=[selector], validate=validate, progress=not args.smoke, on_nan=ON_NAN,
    )  # fmt: skip
    gan_seconds = time.perf_counter() - gan_start
    selected = selector.best_epoch
    discriminator = model.evaluate(ts, x_val, val_key)

    # 3. Once, at the end: the test set.
    n = len(x_test)
    test_probabilities, test_features = features_of(x_test)
    test_accuracy = float(np.mean(test_probabilities.argmax(axis=1) == np.asarray(y_test)))
    gan_images = np.asarray(sample(ts.params, ts.state, test_key, n))
    train_subset = x_train[:n]
    vae_images = load_vae_samples(n)
    rows_out = {
        "real_test": {"inception_score": inception_score(test_probabilities), "n": n},
        "real_train_vs_test": scores(features_of, train_subset, test_features),
        "gan": scores(features_of, gan_images, test_features),
        "vae": "missing" if vae_images is None else scores(
            features_of, vae_images, test_features),
    }  # fmt: skip
    total_seconds = time.perf_counter() - start

    gan_score = rows_out["gan"]["inception_score"]
    result = {
        "experiment": "DCGAN on MNIST, scored by an MNIST classifier",
        "goal": f"GAN inception score >= {GOAL}",
        "goal_met": bool(gan_score >= GOAL),
        "scores": rows_out,
        "references": {
            "inception_score": "exp(E_x KL(p(y|x) || p(y))) under the classifier below; "
            "1 to 10; the real test set (real_test) is the ceiling",
            "frechet_distance": "to the test images' penultimate features (128-d), sets of "
            f"{n}; real_train_vs_test is the floor",
        },
        "selected_epoch": selected,
        "skipped_steps": {
            "classifier": sum(judge_history["skipped_steps"]),
            "gan": sum(history["skipped_steps"]),
        },  # fmt: skip
        "val_frechet_distance": history["val_frechet_distance"][selected - 1],
        "val_inception_score": history["val_inception_score"][selected - 1],
        "discriminator_on_validation": discriminator,
        "classifier": {
            "architecture": "conv32-conv32-pool-conv64-conv64-pool-dense128-dense10, ReLU",
            "epochs": classifier_epochs,
            "selected_epoch": judge_epoch,
            "val_accuracy": val_accuracy,
            "test_accuracy": test_accuracy,
            "optimizer": f"adam, cosine decay 1e-3 -> 1e-5, batch {args.batch_size}",
            "train_seconds": round(judge_seconds, 1),
        },
        "gan": {
            "model": f"dcgan_mnist(latent=100, width={width})",
            "optimizer": "adam(2e-4, b1=0.5) for both networks",
            "batch_size": args.batch_size,
            "epochs": epochs,
            "train_examples": len(x_train),
            "train_seconds_with_validation": round(gan_seconds, 1),
        },
        "seed": args.seed,
        "total_seconds": round(total_seconds, 1),
        "device": str(jax.devices()[0].device_kind),
        "backend": jax.default_backend(),
        "smoke": args.smoke,
        "history": dict(history),
    }
    name = "mnist_gan_smoke" if args.smoke else "mnist_gan"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    plot_curves(history, selected, RESULTS / f"{name}.png")
    plot_rows(rows, selected, RESULTS / f"{name}_samples.png")
    plot_compare(
        {"real test images": np.asarray(x_test), f"GAN (epoch {selected})": gan_images,
         "VAE": vae_images},
        RESULTS / f"{name}_compare.png",
    )  # fmt: skip
    real, floor = rows_out["real_test"], rows_out["real_train_vs_test"]
    vae = rows_out["vae"]
    vae_text = "missing" if vae == "missing" else (
        f"IS {vae['inception_score']:.2f}, FD {vae['frechet_distance']:.2f}")  # fmt: skip
    print(
        f"classifier: validation {val_accuracy:.2%}, test {test_accuracy:.2%}\n"
        f"real test IS {real['inception_score']:.2f}; train vs test FD "
        f"{floor['frechet_distance']:.2f} (IS {floor['inception_score']:.2f})\n"
        f"GAN (epoch {selected} of {epochs}): IS {gan_score:.2f}, FD "
        f"{rows_out['gan']['frechet_distance']:.2f} (goal IS >= {GOAL}: "
        f"{'met' if gan_score >= GOAL else 'not met'})\nVAE: {vae_text}\n"
        f"{total_seconds:.0f} s in all ({judge_seconds:.0f} s classifier, {gan_seconds:.0f} s GAN)"
    )


if __name__ == "__main__":
    main()
