"""The three workloads as funcnets networks, with the library's defaults.

Every other implementation (baseline.py, torch_impl.py) mirrors these
layer for layer; tests/test_benchmarks.py checks the baseline against them.
"""

from __future__ import annotations

import jax

import funcnets as fn
from benchmarks.config import BATCH, LEARNING_RATE

INPUT_SHAPE = (28, 28, 1)  # every workload reads an MNIST-shaped image


def network(workload: str) -> fn.Layer:
    """The funcnets network of ``workload``."""
    if workload == "mlp":
        return fn.models.mlp([512, 512, 10])  # Flatten, Dense 512, relu, Dense 512, relu, Dense 10
    if workload == "lenet5":
        return fn.models.lenet5()
    if workload == "lstm":
        return fn.models.lstm_classifier(128, 10)  # rows as time steps, LSTM 128, Dense 10
    raise ValueError(f"unknown workload {workload!r}")


def loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return fn.losses.sparse_cross_entropy(logits, labels)


def optimizer() -> fn.optim.GradientTransformation:
    return fn.optim.adam(LEARNING_RATE)


def train_state(workload: str, seed: int, batch: int = BATCH) -> fn.train.TrainState:
    """A fresh `TrainState`; its params also start the baseline (`baseline.from_funcnets`).

    Jitted: one compile instead of one per parameter shape (each draw compiles threefry).
    """
    net, opt, shape = network(workload), optimizer(), (batch, *INPUT_SHAPE)
    return jax.jit(lambda key: fn.train.init(net, opt, key, shape))(jax.random.key(seed))


def step(workload: str):
    """The funcnets training step, ``(ts, (x, y)) -> (ts, {"loss": loss})``, not yet jitted."""
    return fn.train.make_step(network(workload), loss, optimizer())
