"""The concept pages' own figures: ``python docs/figures.py`` writes ``docs/figures/*.png``.

Each figure is a pure function of fixed keys and data (the bundled digits, the
synthetic sets, hand-set weights), drawn with matplotlib's Agg backend at 100
dpi, so a rerun gives the same pictures (byte for byte). The whole script
takes about a minute on 2 CPU cores (mostly XLA compiling);
``python docs/figures.py NAME ...`` draws only the figures named. The
experiments' figures (``experiments/results/*.png``) are not made here: the
site serves those as ``figures/experiments/NAME.png``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.patches import Rectangle  # noqa: E402

import funcnets as fn  # noqa: E402

OUT = Path(__file__).parent / "figures"
DPI = 100


def save(figure: plt.Figure, name: str) -> None:
    """Writes ``docs/figures/NAME.png`` without a timestamp, so reruns are byte-identical."""
    figure.savefig(OUT / f"{name}.png", dpi=DPI, metadata={"Software": None})
    plt.close(figure)


def activations() -> None:
    """Every hidden-layer activation of `fn.activations` and its derivative (by `jax.grad`)."""
    functions = {
        "sigmoid": fn.sigmoid,
        "tanh": fn.tanh,
        "relu": fn.relu,
        "leaky_relu (slope 0.1)": lambda x: fn.leaky_relu(x, 0.1),
        "elu": fn.elu,
        "selu": fn.selu,
        "gelu": fn.gelu,
        "swish / silu": fn.swish,
        "softplus": fn.softplus,
        "softsign": fn.softsign,
        "binary_step": fn.activations.binary_step,
        "binary_step_ste": fn.activations.binary_step_ste,
    }
    x = jnp.linspace(-4.0, 4.0, 801)
    figure, axes = plt.subplots(3, 4, figsize=(12, 7.5), sharex=True)
    for ax, (name, f) in zip(axes.flat, functions.items()):
        derivative = jax.vmap(jax.grad(f))(x)
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(x, f(x), lw=2, label="f(x)")
        ax.plot(x, derivative, "--", lw=1.5, label="f'(x) (jax.grad)")
        ax.set_title(name)
        ax.set_ylim(-2.2, 4.2)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[2, 3].text(-3.8, 1.5, "forward: the step\nbackward: identity's\ngradient, 1", fontsize=8)
    figure.suptitle("activations (solid) and their derivatives (dashed), on [-4, 4]")
    figure.tight_layout()
    save(figure, "activations")


def losses() -> None:
    """Regression losses against the error; classification losses against the margin."""
    e = jnp.linspace(-3.0, 3.0, 601)
    zero = jnp.zeros_like(e)
    m = jnp.linspace(-3.0, 3.0, 601)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(e, fn.losses.mse(e, zero, reduction="none"), label="mse: e²")
    left.plot(e, fn.losses.mae(e, zero, reduction="none"), label="mae: |e|")
    left.plot(e, fn.losses.huber(e, zero, reduction="none"), label="huber (delta 1)")
    left.set(xlabel="error e = prediction - target", ylim=(0, 4), title="regression")
    ones = jnp.ones((601, 1))
    scores = m[:, None]
    right.plot(m, (m <= 0).astype(float), label="0-1 loss (what we count)")
    right.plot(m, fn.losses.hinge(scores, ones, reduction="none"), label="hinge: max(0, 1 - m)")
    right.plot(
        m,
        fn.losses.binary_cross_entropy(m, jnp.ones_like(m), reduction="none") / jnp.log(2.0),
        label="logistic: log2(1 + exp(-m))",
    )
    right.set(xlabel="margin m = y·s(x), y = ±1", ylim=(0, 4), title="classification")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    save(figure, "losses")


def _digit() -> np.ndarray:
    """The first 0 of the bundled 8x8 digits' test split, (8, 8)."""
    _, (x, y) = fn.data.load_digits()
    return np.asarray(x[np.flatnonzero(y == 0)[0], :, :, 0])


def convolution() -> None:
    """A 3x3 vertical-edge kernel slid over a digit, then ReLU and 2x2 max pooling."""
    image = _digit()
    kernel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])  # Sobel
    conv = fn.Conv2D(1, 3, padding="VALID", use_bias=False)
    params = {"w": jnp.asarray(kernel)[:, :, None, None]}
    feature, _ = conv.apply(params, {}, jnp.asarray(image)[None, :, :, None])
    feature = fn.relu(feature)
    pooled, _ = fn.MaxPool2D(2).apply({}, {}, feature)
    panels = [
        ("input 8x8 (patch at row 2, col 1)", image, "gray_r"),
        ("kernel 3x3 (Sobel, vertical edges)", kernel, "RdBu_r"),
        ("relu(conv), 6x6 (VALID)", np.asarray(feature[0, :, :, 0]), "viridis"),
        ("max pool 2x2, 3x3", np.asarray(pooled[0, :, :, 0]), "viridis"),
    ]
    figure, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (title, values, cmap) in zip(axes, panels):
        ax.imshow(values, cmap=cmap, **({"vmin": -4, "vmax": 4} if cmap == "RdBu_r" else {}))
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for (i, j), value in np.ndenumerate(kernel):
        axes[1].text(j, i, f"{value:+.0f}" if value else "0", ha="center", va="center", fontsize=12)
    axes[0].add_patch(Rectangle((0.5, 1.5), 3, 3, fill=False, color="red", lw=2))
    axes[2].add_patch(Rectangle((0.5, 1.5), 1, 1, fill=False, color="red", lw=2))
    for ax, values, size in ((axes[2], feature, 7), (axes[3], pooled, 10)):
        values = np.asarray(values[0, :, :, 0])
        for (i, j), value in np.ndenumerate(values):
            colour = "k" if value > 0.6 * values.max() else "w"
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=size, color=colour)
    figure.tight_layout()
    save(figure, "convolution")


def pooling() -> None:
    """Max and average pooling of a 4x4 grid, 2x2 windows with stride 2, numbers shown."""
    grid = np.array([[1, 3, 2, 0], [4, 6, 1, 1], [0, 2, 5, 7], [1, 1, 3, 8]], np.float32)
    x = jnp.asarray(grid)[None, :, :, None]
    results = {
        "MaxPool2D(2)": np.asarray(fn.MaxPool2D(2).apply({}, {}, x)[0][0, :, :, 0]),
        "AvgPool2D(2)": np.asarray(fn.AvgPool2D(2).apply({}, {}, x)[0][0, :, :, 0]),
    }
    colours = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.8))
    axes[0].imshow(colours, cmap="Pastel1", vmin=0, vmax=8)
    for (i, j), value in np.ndenumerate(grid):
        axes[0].text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=14)
    axes[0].set_title("input 4x4, four 2x2 windows")
    for ax, (title, values) in zip(axes[1:], results.items()):
        ax.imshow(np.arange(4).reshape(2, 2), cmap="Pastel1", vmin=0, vmax=8)
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=16)
        ax.set_title(f"{title}: 2x2")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    save(figure, "pooling")


def memory_lstm() -> tuple[dict, jnp.ndarray, jnp.ndarray]:
    """A one-unit LSTM with hand-set weights that stores a value on "write" and shows it on "read".

    Inputs ``(value, write, read)``; gate blocks ``i, f, g, o`` (funcnets' layout):
    ``i`` opens and ``f`` closes on write, ``g = tanh(value)``, ``o`` opens on read.
    Returns the params and one sequence ``(1, 60, 3)`` with two writes and two reads.
    """
    big = 10.0
    wi = jnp.array(
        [
            [0.0, 0.0, 1.0, 0.0],  # value -> g
            [2 * big, -2 * big, 0.0, 0.0],  # write -> i opens, f closes
            [0.0, 0.0, 0.0, 2 * big],  # read -> o opens
        ]
    )
    params = {"wi": wi, "wh": jnp.zeros((1, 4)), "b": jnp.array([-big, big, 0.0, -big])}
    value = jax.random.uniform(jax.random.key(0), (60,), minval=-1.0, maxval=1.0)
    value = value.at[jnp.array([5, 32])].set(jnp.array([0.9, -0.7]))  # the values written
    write = jnp.zeros(60).at[jnp.array([5, 32])].set(1.0)
    read = jnp.zeros(60).at[jnp.array([20, 50])].set(1.0)
    return params, jnp.stack([value, write, read], -1)[None], write


def lstm_gates() -> None:
    """The gates and the cell of `memory_lstm` over its sequence."""
    params, x, write = memory_lstm()

    def step(carry, x_t):
        h, c = carry
        z = x_t @ params["wi"] + h @ params["wh"] + params["b"]
        gates = fn.sigmoid(z)
        (h, c), _ = fn.lstm_cell(params, carry, x_t)
        return (h, c), (gates, c, h)

    zeros = jnp.zeros((1, 1))
    _, (gates, c, h) = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1))
    t = np.arange(x.shape[1])
    figure, axes = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True)
    axes[0].plot(t, x[0, :, 0], ".-", color="0.4", label="value x_t")
    for column, sign, style, name in (
        (1, 1, "C3o", "write = 1"),
        (2, -1, "C2s", "read = 1 (drawn at -1)"),
    ):
        steps = np.flatnonzero(np.asarray(x[0, :, column]))
        axes[0].vlines(steps, 0, sign, color=style[:2])
        axes[0].plot(steps, sign * np.ones(len(steps)), style, label=name)
    axes[0].set_title("inputs: a value at every step; the cell should keep only the written ones")
    for k, name in ((0, "input gate σ(i)"), (1, "forget gate σ(f)"), (3, "output gate σ(o)")):
        axes[1].plot(t, gates[:, 0, k], lw=2, label=name)
    axes[1].set_title("gates")
    stored = np.tanh(np.asarray(x[0, :, 0]))[np.asarray(write) > 0]
    axes[2].plot(t, c[:, 0, 0], lw=2, label="cell c_t")
    axes[2].plot(t, h[:, 0], lw=2, label="output h_t = σ(o) tanh(c_t)")
    axes[2].hlines(stored, [5, 32], [31, 59], color="k", ls=":", label="tanh(value written)")
    axes[2].set(title="memory", xlabel="time step t")
    for ax in axes:
        ax.set_ylim(-1.15, 1.6)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, ncol=3)
    figure.tight_layout()
    save(figure, "lstm_gates")


def gan_losses() -> None:
    """The generator's saturating and non-saturating losses, and their slopes in D's logit."""
    a = jnp.linspace(-6.0, 6.0, 601)  # D's logit on a generated example
    d = fn.sigmoid(a)

    def saturating(a):
        return -fn.softplus(a)  # log(1 - σ(a)), minimised by G in the minimax game

    def non_saturating(a):
        return fn.softplus(-a)  # -log σ(a)

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(d, saturating(a), label="minimax: log(1 - D(G(z)))")
    left.plot(d, non_saturating(a), label="non-saturating: -log D(G(z))")
    left.set(xlabel="D(G(z))", ylabel="generator loss", title="the generator's losses")
    right.plot(d, jax.vmap(jax.grad(saturating))(a), label="minimax")
    right.plot(d, jax.vmap(jax.grad(non_saturating))(a), label="non-saturating")
    right.set(xlabel="D(G(z))", title="slope in D's logit (what reaches G)")
    right.annotate(
        "D wins: no gradient", (0.01, -0.01), (0.45, -0.1), arrowprops={"arrowstyle": "->"}
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    figure.tight_layout()
    save(figure, "gan_losses")


def mlp_spirals() -> None:
    """An MLP's decision regions on three spiral arms, beside a linear model's."""
    x, y = fn.data.spirals(jax.random.key(0), n=300)
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(-1.1, 1.1, 200), jnp.linspace(-1.1, 1.1, 200)), -1)
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    models = {"linear: mlp([3])": [3], "mlp([64, 64, 3]), relu": [64, 64, 3]}
    for ax, (title, sizes) in zip(axes, models.items()):
        net = fn.models.mlp(sizes)
        ts, history = fn.train.fit(
            net, fn.losses.sparse_cross_entropy, fn.optim.adam(0.01), (x, y),
            epochs=100, batch_size=100, key=jax.random.key(1), progress=False,
        )  # fmt: skip
        regions = jnp.argmax(fn.train.predict(net, ts, grid.reshape(-1, 2)), -1)
        ax.contourf(grid[..., 0], grid[..., 1], regions.reshape(200, 200), alpha=0.3, cmap="brg")
        ax.scatter(x[:, 0], x[:, 1], c=y, s=10, cmap="brg")
        ax.set_title(f"{title}: train accuracy {history['accuracy'][-1]:.0%}", fontsize=10)
        ax.set_aspect("equal")
    figure.tight_layout()
    save(figure, "mlp_spirals")


def autoencoder_digits() -> None:
    """Test digits, their reconstructions from 8 numbers by an autoencoder and by PCA."""
    (x, _), (x_test, _) = fn.data.load_digits()
    ae = fn.models.autoencoder((8, 8, 1), 8, (64,), activation=fn.tanh)  # as in autoencoders.md
    opt = fn.optim.adam(1e-2)
    ts = ae.init(jax.random.key(0), (64, 8, 8, 1), opt)
    ts, _ = fn.train.run(ae.step(opt), ts, x, epochs=60, batch_size=64, progress=False)
    p = fn.pca.pca(x, 8)
    rows = {
        "test digits": x_test[:10],
        "autoencoder, code 8": ae.reconstruct(ts.params, ts.state, x_test[:10]),
        "PCA, 8 components": fn.pca.reconstruct(p, fn.pca.project(p, x_test[:10])),
    }
    errors = {
        "autoencoder, code 8": ae.evaluate(ts, x_test, jax.random.key(1))["squared_error"],
        "PCA, 8 components": float(
            jnp.mean(
                jnp.sum(
                    (fn.pca.reconstruct(p, fn.pca.project(p, x_test)) - x_test.reshape(-1, 64))
                    ** 2,
                    -1,
                )
            )
        ),
    }
    figure, axes = plt.subplots(3, 10, figsize=(10, 3.4))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(10):
            axes[r, c].imshow(np.asarray(images[c]).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        label = name if name not in errors else f"{name}\n(error {errors[name]:.2f})"
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    figure.suptitle("squared error per test image, summed over the 64 pixels", fontsize=10)
    figure.tight_layout()
    save(figure, "autoencoder_digits")


def bars_and_stripes() -> np.ndarray:
    """The 30 distinct 4x4 bars-and-stripes images (MacKay 2003), flattened to (30, 16)."""
    rows = np.array(list(itertools.product([0.0, 1.0], repeat=4)), np.float32)
    bars = np.repeat(rows[:, :, None], 4, axis=2)
    images = np.concatenate([bars, np.transpose(bars, (0, 2, 1))]).reshape(-1, 16)
    return np.unique(images, axis=0)


def rbm_samples() -> None:
    """An RBM trained by CD-1 on bars and stripes: the data and Gibbs samples from random starts."""
    patterns = bars_and_stripes()
    model, opt = fn.models.rbm(16, 16, init_scale=0.1), fn.optim.sgd(0.1, momentum=0.5)
    ts = model.init(jax.random.key(0), (30, 16), opt)
    ts, _ = fn.train.run(model.step(opt), ts, np.tile(patterns, (10, 1)), epochs=100,
                         batch_size=30, progress=False)  # fmt: skip
    start = jax.random.bernoulli(jax.random.key(1), 0.5, (30, 16)).astype(jnp.float32)
    samples = model.gibbs(ts.params, jax.random.key(2), start, steps=1000)
    log_p = model.log_likelihood(ts.params, patterns, model.exact_log_partition(ts.params))
    figure, axes = plt.subplots(1, 2, figsize=(10, 2.4))
    for ax, images, title in (
        (axes[0], patterns, "the 30 training images"),
        (axes[1], samples, f"30 Gibbs chains, 1,000 steps each\n(mean log p(v) {log_p:.2f} nats)"),
    ):
        tiles = [np.pad(np.asarray(v).reshape(4, 4), 1, constant_values=0.5) for v in images]
        rows = [np.concatenate(tiles[r * 10 : (r + 1) * 10], 1) for r in range(3)]
        ax.imshow(np.concatenate(rows, 0), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    figure.tight_layout()
    save(figure, "rbm_samples")


def residual_gradients() -> None:
    """‖∂L/∂W_l‖ per layer of 20 sigmoid layers at initialisation, plain and residual."""
    (x, y), _ = fn.data.load_digits()
    x, y = x[:256].reshape(256, 64), y[:256]
    figure, ax = plt.subplots(figsize=(7, 3.6))
    for name, residual in (
        ("plain: h ← σ(W h + b)", False),
        ("residual: h ← h + σ(W h + b)", True),
    ):
        blocks = [fn.Sequential(fn.Dense(64), fn.sigmoid) for _ in range(20)]
        if residual:
            blocks = [fn.Residual(b) for b in blocks]
        net = fn.Sequential(*blocks, fn.Dense(10))
        _, params, state = net.init(jax.random.key(0), x.shape)
        norms = fn.diagnostics.layer_gradient_norms(
            net, params, state, x, y, loss_fn=fn.losses.sparse_cross_entropy
        )
        weights = [float(v) for k, v in norms.items() if k.endswith("/w")]
        ax.semilogy(np.arange(1, len(weights) + 1), weights, ".-", label=name)
    ax.set(xlabel="layer l (input to output; 21 is the output layer)", ylim=(1e-16, 1e2))
    ax.set_title("‖∂L/∂W_l‖ at initialisation, 20 hidden layers of sigmoids, 8x8 digits")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    save(figure, "residual_gradients")


FIGURES = (
    activations, losses, convolution, pooling, lstm_gates, gan_losses, mlp_spirals,
    autoencoder_digits, rbm_samples, residual_gradients,
)  # fmt: skip


def main(names: list[str]) -> None:
    """Draws the figures named (every figure when none is named)."""
    OUT.mkdir(exist_ok=True)
    for make in FIGURES:
        if not names or make.__name__ in names:
            make()


if __name__ == "__main__":
    main(sys.argv[1:])
