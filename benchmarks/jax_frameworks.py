"""The workloads in Flax NNX and in Equinox, written as each library's users write them.

Imported only when the library is installed; neither is a funcnets
dependency. Written for the MLP, LeNet-5 and LSTM workloads, in float32
(`config.JAX_FRAMEWORK_WORKLOADS`); the harness skips the other workloads and
bf16 for them. Each model mirrors `benchmarks.workloads.network` layer for layer
(NHWC images; Equinox's layers take one CHW example and are `jax.vmap`-ed over
the batch, its LSTM cell `lax.scan`-ned over the rows). Initial values are each
library's own: the time of a step does not depend on them. Steps follow each
library's documented training loop: ``nnx.jit`` with an ``nnx.Optimizer``, and
``eqx.filter_jit`` with ``eqx.filter_value_and_grad``; optax's Adam and
softmax cross-entropy in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from benchmarks.config import LEARNING_RATE

# framework -> row of its jitted step; its epoch row is "epoch_" + that.
ROWS = {"flax": "flax_nnx", "equinox": "equinox"}


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def flax_step(workload: str, seed: int) -> tuple[Callable, Any]:
    """``(step, carry)``: ``carry = step(carry, (x, y))`` trains a Flax NNX model one step."""
    from flax import nnx

    rngs = nnx.Rngs(seed)
    if workload == "mlp":
        layers = [
            lambda x: x.reshape(x.shape[0], -1), nnx.Linear(784, 512, rngs=rngs), nnx.relu,
            nnx.Linear(512, 512, rngs=rngs), nnx.relu, nnx.Linear(512, 10, rngs=rngs),
        ]  # fmt: skip
    elif workload == "lenet5":
        pool = lambda x: nnx.avg_pool(x, (2, 2), strides=(2, 2))  # noqa: E731
        layers = [
            nnx.Conv(1, 6, (5, 5), padding="SAME", rngs=rngs), nnx.tanh, pool,
            nnx.Conv(6, 16, (5, 5), padding="VALID", rngs=rngs), nnx.tanh, pool,
            lambda x: x.reshape(x.shape[0], -1), nnx.Linear(400, 120, rngs=rngs), nnx.tanh,
            nnx.Linear(120, 84, rngs=rngs), nnx.tanh, nnx.Linear(84, 10, rngs=rngs),
        ]  # fmt: skip
    elif workload == "lstm":
        rnn = nnx.RNN(nnx.OptimizedLSTMCell(28, 128, rngs=rngs))
        layers = [
            lambda x: x.reshape(x.shape[0], 28, 28), rnn, lambda hs: hs[:, -1],
            nnx.Linear(128, 10, rngs=rngs),
        ]  # fmt: skip
    else:
        raise ValueError(f"unknown workload {workload!r}")
    model = nnx.Sequential(*layers)
    optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: _cross_entropy(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    def step(carry, batch):
        model, optimizer, _ = carry
        return model, optimizer, train_step(model, optimizer, *batch)

    return step, (model, optimizer, jnp.zeros(()))


def equinox_step(workload: str, seed: int) -> tuple[Callable, Any]:
    """``(step, carry)``: ``carry = step(carry, (x, y))`` trains an Equinox model one step."""
    import equinox as eqx

    keys = iter(jax.random.split(jax.random.key(seed), 8))
    act = eqx.nn.Lambda
    if workload == "mlp":
        example = eqx.nn.Sequential([
            act(jnp.ravel), eqx.nn.Linear(784, 512, key=next(keys)), act(jax.nn.relu),
            eqx.nn.Linear(512, 512, key=next(keys)), act(jax.nn.relu),
            eqx.nn.Linear(512, 10, key=next(keys)),
        ])  # fmt: skip
    elif workload == "lenet5":
        example = eqx.nn.Sequential([
            act(lambda x: jnp.moveaxis(x, -1, 0)),  # HWC -> CHW
            eqx.nn.Conv2d(1, 6, 5, padding=2, key=next(keys)), act(jnp.tanh),
            eqx.nn.AvgPool2d(2, 2),
            eqx.nn.Conv2d(6, 16, 5, key=next(keys)), act(jnp.tanh), eqx.nn.AvgPool2d(2, 2),
            act(jnp.ravel), eqx.nn.Linear(400, 120, key=next(keys)), act(jnp.tanh),
            eqx.nn.Linear(120, 84, key=next(keys)), act(jnp.tanh),
            eqx.nn.Linear(84, 10, key=next(keys)),
        ])  # fmt: skip
    elif workload == "lstm":
        example = _equinox_lstm(next(keys), next(keys))
    else:
        raise ValueError(f"unknown workload {workload!r}")
    tx = optax.adam(LEARNING_RATE)

    def loss_fn(model, x, y):
        return _cross_entropy(jax.vmap(model)(x), y)

    @eqx.filter_jit(donate="all-except-first")  # donates the model and optimizer state
    def train_step(batch, model, opt_state):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, *batch)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    def step(carry, batch):
        model, opt_state, _ = carry
        return train_step(batch, model, opt_state)

    return step, (example, tx.init(eqx.filter(example, eqx.is_array)), jnp.zeros(()))


def _equinox_lstm(cell_key: jax.Array, head_key: jax.Array):
    """One example ``(28, 28, 1)``: the rows through an LSTM cell, the last h into a Linear."""
    import equinox as eqx

    class LSTMClassifier(eqx.Module):
        cell: eqx.nn.LSTMCell
        head: eqx.nn.Linear

        def __call__(self, x: jax.Array) -> jax.Array:
            def scan_step(carry, row):
                return self.cell(row, carry), None

            zeros = jnp.zeros(self.cell.hidden_size)
            (h, _), _ = jax.lax.scan(scan_step, (zeros, zeros), x.reshape(28, 28))
            return self.head(h)

    cell = eqx.nn.LSTMCell(28, 128, key=cell_key)
    return LSTMClassifier(cell, eqx.nn.Linear(128, 10, key=head_key))


STEPS = {"flax": flax_step, "equinox": equinox_step}


def version(framework: str) -> str:
    return __import__(framework).__version__
