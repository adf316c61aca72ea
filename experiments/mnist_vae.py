"""A VAE on dynamically binarized MNIST: test log-likelihood ≤ 90 nats by importance sampling.

The model is `vae(50, hidden=(500, 500))` (Kingma & Welling 2014): encoder
784-500-500-(μ, log σ²) of 50 latents, decoder 50-500-500-784 Bernoulli logits,
softplus hidden units, prior N(0, I); 1.36M params. Training maximises the ELBO
with one reparameterised sample per image, each image binarized afresh at
every step (x ~ Bernoulli(pixel intensity), dynamic binarization as in Burda
et al. 2015). Settings: Adam with learning rate 1e-3 decayed by cosine to
1e-4, batch 100, 150 epochs, seed 0; no KL warm-up. 6,000 training images
are held out as a validation split (by the seed), binarized once; the epoch
with the best validation ELBO is the model kept. The test set (10,000 images)
is binarized once with a fixed key and evaluated once, at the end: its ELBO
and the importance-sampling estimate of log p(x) with k = 5,000 samples from
q(z | x) (Burda et al. 2015, eq. 8), both in float32 matmul precision.
Anchor: Burda et al. report 86.76 nats (test NLL, k = 5,000) for a VAE with one
stochastic layer of 50 units, 784-200-200 tanh, trained for 3,280 epochs.

A second model with 2 latents (same architecture and settings, 30 epochs,
the best on validation kept) draws the learned 2-D manifold: decoder means
on a 20x20 grid of Φ⁻¹(p) in latent space (Kingma & Welling 2014, Fig. 4),
beside the test images' posterior means coloured by digit.

    python experiments/mnist_vae.py [--data-dir DIR] [--epochs N] [--latent2-epochs N]
                                    [--k K] [--seed S] [--smoke]

Writes experiments/results/mnist_vae.json (numbers next to their anchor),
mnist_vae.png (-ELBO and KL per epoch, train and validation),
mnist_vae_samples.png (samples of the main model), mnist_vae_manifold.png,
and mnist_vae_samples.npz (10,000 samples, for the GAN experiment: ``images``
holds E[x | z] for z ~ N(0, I) as uint8 0-255, shape (10000, 28, 28, 1)).
Times: ``train_seconds`` runs from the start to the main model's last epoch
(loading, binarizing and compiling included), ``importance_sampling_seconds``
is the k = 5,000 estimate alone, ``total_seconds`` everything. With --smoke:
2,000 training images, 500 test images, 1 epoch each, k = 50, files named
mnist_vae_smoke*.
"""

import json
import math
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from common import RESULTS, arguments, load_mnist

import funcnets as fn
from funcnets.models.vae import binarize, vae

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EPOCHS, LATENT2_EPOCHS = 150, 30
BATCH, K = 100, 5000
ANCHOR = {
    "test_nll_k5000": 86.76,
    "source": "Burda, Grosse & Salakhutdinov 2015, Table 1: VAE, 1 stochastic layer, k = 1 "
    "training, NLL by importance sampling with k = 5,000",
}


def train(model, x_train, x_val, epochs, seed, progress):
    """Trains ``model``; returns the state of the epoch of best validation ELBO and the history."""
    steps = epochs * -(-len(x_train) // BATCH)
    optimizer = fn.optim.adam(fn.optim.cosine_decay_schedule(1e-3, steps, alpha=0.1))
    key = jax.random.key(seed)
    ts = model.init(key, (BATCH, *x_train.shape[1:]), optimizer)
    val_key = jax.random.fold_in(key, 1)  # the same binarization and draws every epoch

    def validate(ts):
        numbers = model.evaluate(ts, x_val, val_key)
        return {"val_loss": -numbers["elbo"], "val_kl": numbers["kl"]}

    selector = fn.train.EarlyStopping("val_loss", patience=epochs, restore_best=True)
    ts, history = fn.train.run(
        model.step(optimizer), ts, x_train, epochs=epochs, batch_size=BATCH,
        callbacks=[selector], validate=validate, progress=progress,
    )  # fmt: skip
    return ts, history, selector.best_epoch


def grid_image(images, rows):
    """(rows * cols, 28, 28) -> one (rows * 28, cols * 28) picture."""
    cols = len(images) // rows
    return images.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def main() -> None:
    parser = arguments(__doc__, epochs=EPOCHS)
    parser.add_argument("--latent2-epochs", type=int, default=LATENT2_EPOCHS)
    parser.add_argument("--k", type=int, default=K, help="importance samples per test image")
    args = parser.parse_args()
    start = time.perf_counter()

    (x_train, _), (x_val, _), (x_test, y_test), epochs = load_mnist(args)
    epochs2, k = (1, 50) if args.smoke else (args.latent2_epochs, args.k)
    suffix = "_smoke" if args.smoke else ""
    key = jax.random.key(args.seed)
    x_val = binarize(jax.random.fold_in(key, 2), x_val)
    x_test = binarize(jax.random.fold_in(key, 3), x_test)  # binarized once, fixed

    model = vae(50, hidden=(500, 500))
    ts, history, best = train(model, x_train, x_val, epochs, args.seed, not args.smoke)
    train_seconds = time.perf_counter() - start
    with jax.default_matmul_precision("float32"):
        test = model.evaluate(ts, x_test, jax.random.fold_in(key, 4))
        is_start = time.perf_counter()
        log_px = model.log_likelihood(ts.params, ts.state, x_test, jax.random.fold_in(key, 5),
                                      k=k, chunk=math.gcd(k, 1000), batch_size=100)  # fmt: skip
        nll = -float(jnp.mean(log_px))
    is_seconds = time.perf_counter() - is_start

    model2 = vae(2, hidden=(500, 500))
    ts2, history2, best2 = train(model2, x_train, x_val, epochs2, args.seed, not args.smoke)
    with jax.default_matmul_precision("float32"):
        test2 = model2.evaluate(ts2, x_test, jax.random.fold_in(key, 4))

    # Samples: 10,000 for the GAN experiment, 100 of them drawn.
    samples = model.sample(ts.params, ts.state, jax.random.fold_in(key, 6), 10000, mean=True)
    samples = np.asarray(jnp.round(samples * 255)).astype(np.uint8).reshape(-1, 28, 28, 1)
    RESULTS.mkdir(exist_ok=True)
    np.savez_compressed(RESULTS / f"mnist_vae{suffix}_samples.npz", images=samples)
    figure, axes = plt.subplots(figsize=(7, 7))
    axes.imshow(grid_image(samples[:100, ..., 0], 10), cmap="gray")
    axes.set_title(f"VAE samples, E[x | z] for z ~ N(0, I) (test NLL ≈ {nll:.1f} nats)")
    axes.axis("off")
    figure.savefig(RESULTS / f"mnist_vae{suffix}_samples.png", dpi=100, bbox_inches="tight")

    # The 2-D manifold: decoder means on a grid of prior quantiles, and the test encodings.
    quantiles = jax.scipy.stats.norm.ppf(jnp.linspace(0.05, 0.95, 20))
    z = jnp.stack(jnp.meshgrid(quantiles, -quantiles), -1).reshape(-1, 2)  # rows: z2 falls
    manifold = np.asarray(model2.decode(ts2.params, ts2.state, z))
    codes = np.asarray(model2.encode(ts2.params, ts2.state, x_test)[0])
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 7))
    left.imshow(grid_image(manifold, 20), cmap="gray",
                extent=(0.05, 0.95, 0.05, 0.95))  # fmt: skip
    left.set_title("2-latent VAE: E[x | z] on a grid z = Φ⁻¹(p)")
    left.set_xlabel("p (latent 1)")
    left.set_ylabel("p (latent 2)")
    points = right.scatter(codes[:, 0], codes[:, 1], c=y_test, s=2, cmap="tab10")
    figure.colorbar(points, ax=right, ticks=range(10), label="digit")
    right.set_title("posterior means μ(x) of the test images")
    right.set_xlabel("z1")
    right.set_ylabel("z2")
    figure.savefig(RESULTS / f"mnist_vae{suffix}_manifold.png", dpi=100, bbox_inches="tight")
    history.plot(RESULTS / f"mnist_vae{suffix}.png")

    total = time.perf_counter() - start
    result = {
        "experiment": "VAE (Kingma & Welling 2014) on dynamically binarized MNIST",
        f"test_nll_k{k}": round(nll, 2),
        "test_neg_elbo": round(-test["elbo"], 2),
        "test_kl": round(test["kl"], 2),
        "anchor": ANCHOR,
        "goal": "test NLL <= 90 nats",
        "selected_epoch": best,
        "val_neg_elbo": round(history["val_loss"][best - 1], 2),
        "epochs": epochs,
        "model": "vae(50, hidden=(500, 500)), softplus, Bernoulli decoder",
        "batch_size": BATCH,
        "optimizer": "adam, cosine decay 1e-3 -> 1e-4",
        "binarization": "dynamic in training; validation and test binarized once "
        f"(keys fold_in(key({args.seed}), 2) and 3)",
        "importance_samples": k,
        "latent2": {
            "test_neg_elbo": round(-test2["elbo"], 2),
            "selected_epoch": best2,
            "epochs": epochs2,
        },
        "train_examples": len(x_train),
        "seed": args.seed,
        "train_seconds": round(train_seconds, 1),
        "importance_sampling_seconds": round(is_seconds, 1),
        "total_seconds": round(total, 1),
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "smoke": args.smoke,
        "history": dict(history),
        "latent2_history": dict(history2),
    }
    (RESULTS / f"mnist_vae{suffix}.json").write_text(json.dumps(result, indent=1))
    print(
        f"test NLL (k={k}) {nll:.2f} nats, test -ELBO {-test['elbo']:.2f} (epoch {best} of "
        f"{epochs}); 2-latent -ELBO {-test2['elbo']:.2f}; {train_seconds:.0f} s training, "
        f"{is_seconds:.1f} s importance sampling, {total:.0f} s in all"
    )


if __name__ == "__main__":
    main()
