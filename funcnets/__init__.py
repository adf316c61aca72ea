"""funcnets: classic deep learning as pure functions over explicit pytrees, on JAX.

>>> import funcnets as fn
>>> net = fn.Sequential(fn.Flatten(), fn.Dense(128), fn.relu, fn.Dense(10))

Every layer is a `Layer(init, apply)` pair of pure functions; parameters and
state are plain nested dicts of arrays; `jax.grad`, `jax.jit` and `jax.vmap`
work on them directly.
"""

from funcnets import (
    activations,
    checkpoint,
    data,
    initializers,
    layers,
    losses,
    models,
    optim,
    testing,
    train,
)
from funcnets.activations import (
    elu,
    gelu,
    identity,
    leaky_relu,
    log_softmax,
    relu,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    swish,
    tanh,
)
from funcnets.layers import (
    GRU,
    LSTM,
    AvgPool2D,
    BatchNorm,
    Bidirectional,
    Conv1D,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    GroupNorm,
    Lambda,
    Layer,
    LayerNorm,
    Maxout,
    MaxPool2D,
    Parallel,
    PReLU,
    Reshape,
    Residual,
    Sequential,
    SimpleRNN,
    gru_cell,
    lstm_cell,
    sequence_mask,
    simple_rnn_cell,
)
from funcnets.summary import summary

__version__ = "0.1.0"

__all__ = [
    # modules
    "activations",
    "checkpoint",
    "data",
    "initializers",
    "layers",
    "losses",
    "models",
    "optim",
    "testing",
    "train",
    # layers and combinators
    "AvgPool2D",
    "BatchNorm",
    "Bidirectional",
    "Conv1D",
    "Conv2D",
    "ConvTranspose2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GlobalAvgPool",
    "GroupNorm",
    "Lambda",
    "LSTM",
    "Layer",
    "LayerNorm",
    "MaxPool2D",
    "Maxout",
    "PReLU",
    "Parallel",
    "Reshape",
    "Residual",
    "Sequential",
    "SimpleRNN",
    "summary",
    # recurrent cells
    "gru_cell",
    "lstm_cell",
    "sequence_mask",
    "simple_rnn_cell",
    # common activations
    "elu",
    "gelu",
    "identity",
    "leaky_relu",
    "log_softmax",
    "relu",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "swish",
    "tanh",
]
