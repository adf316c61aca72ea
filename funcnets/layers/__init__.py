"""Every funcnets layer and combinator, one module per concern.

A layer is a `Layer(init, apply)` pair of pure functions; see `base`.
"""

from funcnets.layers.base import Layer, make_layer
from funcnets.layers.combinators import Lambda, Parallel, Residual, Sequential
from funcnets.layers.conv import Conv1D, Conv2D, ConvTranspose2D
from funcnets.layers.dense import Dense, Maxout
from funcnets.layers.dropout import Dropout
from funcnets.layers.embedding import Embedding
from funcnets.layers.normalization import BatchNorm, GroupNorm, LayerNorm
from funcnets.layers.pooling import AvgPool2D, GlobalAvgPool, MaxPool2D
from funcnets.layers.prelu import PReLU
from funcnets.layers.recurrent import (
    GRU,
    LSTM,
    Bidirectional,
    SimpleRNN,
    WithLengths,
    gru_cell,
    lstm_cell,
    sequence_mask,
    simple_rnn_cell,
)
from funcnets.layers.reshape import Flatten, Reshape

__all__ = [
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
    "WithLengths",
    "gru_cell",
    "lstm_cell",
    "make_layer",
    "sequence_mask",
    "simple_rnn_cell",
]
