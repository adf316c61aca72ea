"""One epoch through `fn.train.fit` versus a hand-written jax+optax loop, in one run.

Workloads: an MLP 784-512-512-10 and LeNet-5, batch 128, Adam 1e-3, softmax
cross-entropy, 60,000 synthetic MNIST-shaped samples made outside the timed
region. The baseline is a Python loop of one jitted jax+optax step (the batch
gathered inside the step, buffers donated), over a permutation drawn on the
device, including the last partial batch like `fit`. Times are medians over
epochs after a warm-up epoch; the ratio fit / baseline is what to read.

    python -m benchmarks.epoch [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from jax import lax

import funcnets as fn

BATCH, SAMPLES = 128, 60_000
RESULTS = Path(__file__).parent / "results"


def baseline_mlp(key):
    sizes = [784, 512, 512, 10]
    keys = jax.random.split(key, len(sizes) - 1)
    params = [
        (jax.random.normal(k, (a, b)) / jnp.sqrt(a), jnp.zeros(b))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:])
    ]

    def apply(params, x):
        h = x.reshape(x.shape[0], -1)
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w + b)
        w, b = params[-1]
        return h @ w + b

    return params, apply


def baseline_lenet5(key):
    k = jax.random.split(key, 5)
    params = {
        "c1": (jax.random.normal(k[0], (5, 5, 1, 6)) * 0.2, jnp.zeros(6)),
        "c3": (jax.random.normal(k[1], (5, 5, 6, 16)) * 0.08, jnp.zeros(16)),
        "c5": (jax.random.normal(k[2], (400, 120)) * 0.05, jnp.zeros(120)),
        "f6": (jax.random.normal(k[3], (120, 84)) * 0.09, jnp.zeros(84)),
        "out": (jax.random.normal(k[4], (84, 10)) * 0.1, jnp.zeros(10)),
    }
    dn = ("NHWC", "HWIO", "NHWC")

    def pool(h):
        return lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0

    def apply(p, x):
        h = jnp.tanh(
            lax.conv_general_dilated(x, p["c1"][0], (1, 1), "SAME", dimension_numbers=dn)
            + p["c1"][1]
        )
        h = pool(h)
        h = jnp.tanh(
            lax.conv_general_dilated(h, p["c3"][0], (1, 1), "VALID", dimension_numbers=dn)
            + p["c3"][1]
        )
        h = pool(h).reshape(x.shape[0], -1)
        h = jnp.tanh(h @ p["c5"][0] + p["c5"][1])
        h = jnp.tanh(h @ p["f6"][0] + p["f6"][1])
        return h @ p["out"][0] + p["out"][1]

    return params, apply


def baseline_epoch_seconds(make, x, y, reps):
    params, apply = make(jax.random.key(0))
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)

    def loss(params, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(apply(params, xb), yb).mean()

    @jax.jit
    def shuffle(key):
        return jax.random.permutation(key, SAMPLES)

    def step(params, opt_state, idx):
        grads = jax.grad(loss)(params, x[idx], y[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    step = jax.jit(step, donate_argnums=(0, 1))
    times = []
    for epoch in range(reps + 1):
        start = time.perf_counter()
        perm = shuffle(jax.random.key(epoch))
        for i in range(0, SAMPLES, BATCH):
            params, opt_state = step(params, opt_state, perm[i : i + BATCH])
        jax.block_until_ready(params)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def fit_epoch_seconds(net, x, y, reps):
    stamps = []

    class Stamp(fn.train.Callback):
        def on_epoch_end(self, epoch, ts, logs):
            stamps.append(time.perf_counter())
            return False

    start = time.perf_counter()
    loss, optimizer = fn.losses.sparse_cross_entropy, fn.optim.adam(1e-3)
    fn.train.fit(net, loss, optimizer, (x, y), epochs=reps + 1, batch_size=BATCH,
                 key=jax.random.key(0), progress=False, callbacks=[Stamp()])  # fmt: skip
    epochs = [b - a for a, b in zip([start, *stamps[:-1]], stamps)]
    return statistics.median(epochs[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 timed epochs per workload")
    parser.add_argument("--reps", type=int, default=3, help="timed epochs per workload")
    args = parser.parse_args()
    reps = 2 if args.quick else args.reps
    x = jax.random.uniform(jax.random.key(1), (SAMPLES, 28, 28, 1))
    y = jax.random.randint(jax.random.key(2), (SAMPLES,), 0, 10)
    rows = []
    for name, net, make in [
        ("MLP 784-512-512-10", fn.models.mlp([512, 512, 10]), baseline_mlp),
        ("LeNet-5", fn.models.lenet5(), baseline_lenet5),
    ]:
        base = baseline_epoch_seconds(make, x, y, reps)
        ours = fit_epoch_seconds(net, x, y, reps)
        rows.append((name, base, ours))
        print(
            f"{name}: baseline {base:.2f} s, fit {ours:.2f} s, ratio {ours / base:.3f}", flush=True
        )
    table = [
        f"Backend: {jax.default_backend()} ({jax.device_count()} device), jax {jax.__version__}; "
        f"batch {BATCH}, {SAMPLES:,} samples, median of {reps} epochs after a warm-up.",
        "",
        "| workload | jax+optax loop (s/epoch) | fn.train.fit (s/epoch) | fit / loop |",
        "|---|---|---|---|",
        *(f"| {n} | {b:.2f} | {o:.2f} | {o / b:.3f} |" for n, b, o in rows),
    ]
    print("\n".join(table))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "epoch.md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
