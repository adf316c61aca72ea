"""An LSTM sequence classifier: the last hidden state feeds a linear head."""

from __future__ import annotations

import jax

from funcnets.layers import (
    LSTM,
    Bidirectional,
    Dense,
    Embedding,
    Lambda,
    Layer,
    Sequential,
    WithLengths,
)


def _as_sequence(x: jax.Array) -> jax.Array:
    """``(batch, time, ...)`` -> ``(batch, time, features)``: image rows become time steps."""
    return x.reshape(*x.shape[:2], -1)


def lstm_classifier(
    hidden: int,
    num_classes: int,
    *,
    layers: int = 1,
    bidirectional: bool = False,
    vocab_size: int | None = None,
    embed_features: int | None = None,
) -> Layer:
    """Stacked LSTMs over a sequence, then ``Dense(num_classes)`` logits.

    The input is ``x`` or, for right-padded sequences of different lengths,
    ``(x, lengths)`` with ``lengths`` int ``(batch,)`` (see `WithLengths`):
    the LSTMs then skip the padding, so each sequence gets the logits it would
    get alone, unpadded. ``x`` is ``(batch, time, ...)`` floats, trailing axes
    flattened into features (a ``(batch, 28, 28, 1)`` MNIST batch is read row
    by row: 28 steps of 28 pixels); or, with ``vocab_size``, integer tokens
    ``(batch, time)`` in ``[0, vocab_size)``, embedded in ``embed_features``
    (default ``hidden``) dimensions. Every LSTM but the last returns its
    sequence to the next; the head sees the last layer's final hidden state
    (``[forward, backward]`` when ``bidirectional``).

    A `WithLengths` around a `Sequential` whose children are ``sequence`` (the
    reshape; ``embed``, an `Embedding`, with ``vocab_size``), ``lstm0``, …,
    ``lstm{layers-1}``, ``head``; params are keyed by those names.

    Example:
        >>> import jax, funcnets as fn
        >>> net = fn.models.lstm_classifier(128, 10)
        >>> net.init(jax.random.key(0), (32, 28, 28, 1))[0]
        (32, 10)
        >>> net = fn.models.lstm_classifier(16, 2, bidirectional=True, vocab_size=100)
        >>> net.init(jax.random.key(0), ((32, 40), (32,)))[0]  # (tokens, lengths)
        (32, 2)
    """
    if layers < 1:
        raise ValueError(f"lstm_classifier: layers must be >= 1, got {layers}")
    if vocab_size is None:
        front = {"sequence": Lambda(_as_sequence, name="Sequence")}
    else:
        front = {"embed": Embedding(vocab_size, embed_features or hidden)}
    stack = {}
    for i in range(layers):
        rnn = LSTM(hidden, return_sequences=i < layers - 1)
        stack[f"lstm{i}"] = Bidirectional(rnn) if bidirectional else rnn
    return WithLengths(Sequential(**front, **stack, head=Dense(num_classes)))
