"""The workloads as funcnets networks, with the library's defaults.

Every other implementation (baseline.py, torch_impl.py, jax_frameworks.py)
mirrors these layer for layer; tests/test_benchmarks.py checks the baseline
against them. Parameter counts (10 classes, 28x28x1 input): MLP 669,706;
LeNet-5 61,706 (either variant); VGG-style 150,698; ResNet-20 272,186; LSTM
81,674 (PyTorch's LSTM keeps two biases: 82,186); GRU 61,962.
"""

from __future__ import annotations

import jax

import funcnets as fn
from benchmarks.config import BATCH, LEARNING_RATE

INPUT_SHAPE = (28, 28, 1)  # every workload reads an MNIST-shaped image
# The VGG-style stack (Simonyan & Zisserman 2014's notation): 3x3 convolutions of that many
# channels, each followed by BatchNorm and relu; "M" a 2x2 max-pool. 28 -> 14 -> 7 -> 3.
VGG = (32, 32, "M", 64, 64, "M", 128, "M")


def vgg() -> fn.Layer:
    """The VGG-style CNN: `VGG`'s convolutions (bias-free, SAME) + BatchNorm + relu, Dense 10."""
    layers: dict[str, fn.Layer] = {}
    convs = pools = 0
    for item in VGG:
        if item == "M":
            pools += 1
            layers[f"pool{pools}"] = fn.MaxPool2D(2)
        else:
            convs += 1
            layers[f"conv{convs}"] = fn.Conv2D(item, 3, use_bias=False)
            layers[f"bn{convs}"] = fn.BatchNorm()
            layers[f"relu{convs}"] = fn.activations.relu
    return fn.Sequential(**layers, flatten=fn.Flatten(), head=fn.Dense(10))


def lenet5_relu() -> fn.Layer:
    """`fn.models.lenet5`'s layers and names with relu for tanh and 2x2 max for average pools."""
    relu = fn.activations.relu
    return fn.Sequential(
        c1=fn.Conv2D(6, 5, padding="SAME"), act1=relu, s2=fn.MaxPool2D(2),
        c3=fn.Conv2D(16, 5, padding="VALID"), act3=relu, s4=fn.MaxPool2D(2),
        flatten=fn.Flatten(), c5=fn.Dense(120), act5=relu, f6=fn.Dense(84), act6=relu,
        output=fn.Dense(10),
    )  # fmt: skip


def gru_classifier() -> fn.Layer:
    """`fn.models.lstm_classifier(128, 10)` with a GRU: image rows as 28 time steps of 28."""
    rows = fn.Lambda(lambda x: x.reshape(*x.shape[:2], -1), name="Sequence")
    return fn.Sequential(sequence=rows, gru0=fn.GRU(128), head=fn.Dense(10))


def network(workload: str, precision: str = "float32") -> fn.Layer:
    """The funcnets network of ``workload``; for ``"bf16"`` wrapped in the bf16 policy."""
    if workload == "mlp":
        net = fn.models.mlp([512, 512, 10])  # Flatten, Dense 512, relu, Dense 512, relu, Dense 10
    elif workload == "lenet5":
        net = fn.models.lenet5()
    elif workload == "lenet5_relu":
        net = lenet5_relu()
    elif workload == "vgg":
        net = vgg()
    elif workload == "resnet20":
        net = fn.models.resnet(20, 10)  # projection shortcuts (the library's default)
    elif workload == "lstm":
        net = fn.models.lstm_classifier(128, 10)  # rows as time steps, LSTM 128, Dense 10
    elif workload == "gru":
        net = gru_classifier()
    else:
        raise ValueError(f"unknown workload {workload!r}")
    return net if precision == "float32" else fn.precision.with_policy(net, precision)


def loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return fn.losses.sparse_cross_entropy(logits, labels)


def optimizer() -> fn.optim.GradientTransformation:
    return fn.optim.adam(LEARNING_RATE)


def train_state(
    workload: str, seed: int, batch: int = BATCH, precision: str = "float32"
) -> fn.train.TrainState:
    """A fresh `TrainState`; its params also start the baseline (`baseline.from_funcnets`).

    Jitted: one compile instead of one per parameter shape (each draw compiles threefry).
    """
    net, opt, shape = network(workload, precision), optimizer(), (batch, *INPUT_SHAPE)
    return jax.jit(lambda key: fn.train.init(net, opt, key, shape))(jax.random.key(seed))


def step(workload: str, precision: str = "float32"):
    """The funcnets training step, ``(ts, (x, y)) -> (ts, {"loss": loss})``, not yet jitted."""
    return fn.train.make_step(network(workload, precision), loss, optimizer())
