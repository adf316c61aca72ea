"""An LSTM sequence classifier: the last hidden state feeds a linear head."""

from __future__ import annotations

import jax

from funcnets.layers import LSTM, Bidirectional, Dense, Lambda, Layer, Sequential


def _as_sequence(x: jax.Array) -> jax.Array:
    """``(batch, time, ...)`` -> ``(batch, time, features)``: image rows become time steps."""
    return x.reshape(*x.shape[:2], -1)


def lstm_classifier(
    hidden: int, num_classes: int, *, layers: int = 1, bidirectional: bool = False
) -> Layer:
    """Stacked LSTMs over ``(batch, time, features)``, then ``Dense(num_classes)`` logits.

    Any trailing axes are flattened into features, so a ``(batch, 28, 28, 1)``
    MNIST batch is read row by row: 28 steps of 28 pixels. Every LSTM but the
    last returns its sequence to the next; the head sees the last layer's final
    hidden state (``[forward, backward]`` when ``bidirectional``). Pass ``mask``
    by calling the LSTM layers directly; `Sequential` forwards only key and train.

    Children: ``sequence`` (the reshape), ``lstm0``, …, ``lstm{layers-1}``, ``head``.

    Example:
        >>> import jax, funcnets as fn
        >>> net = fn.models.lstm_classifier(128, 10)
        >>> net.init(jax.random.key(0), (32, 28, 28, 1))[0]
        (32, 10)
    """
    if layers < 1:
        raise ValueError(f"lstm_classifier: layers must be >= 1, got {layers}")
    stack = {}
    for i in range(layers):
        rnn = LSTM(hidden, return_sequences=i < layers - 1)
        stack[f"lstm{i}"] = Bidirectional(rnn) if bidirectional else rnn
    return Sequential(
        sequence=Lambda(_as_sequence, name="Sequence"), **stack, head=Dense(num_classes)
    )
