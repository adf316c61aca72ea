"""The multilayer perceptron."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax

from funcnets.activations import relu
from funcnets.layers import Dense, Dropout, Flatten, Layer, Sequential


def mlp(
    sizes: Sequence[int],
    activation: Callable[[jax.Array], jax.Array] = relu,
    dropout: float = 0.0,
) -> Layer:
    """A multilayer perceptron: Flatten, then Dense layers of ``sizes``.

    ``sizes`` are the hidden and output widths, e.g. ``[512, 512, 10]``. Each
    hidden Dense is followed by ``activation`` and, when ``dropout > 0``, a
    `Dropout`; the last Dense outputs raw scores (logits).
    Children: ``"flatten"``, then ``"dense0"``, ``"act0"``, (``"dropout0"``), …,
    ``"dense{k}"`` for the output.
    """
    if not sizes:
        raise ValueError("mlp needs at least one size (the output width)")
    layers: dict[str, Layer | Callable] = {"flatten": Flatten()}
    for i, width in enumerate(sizes):
        layers[f"dense{i}"] = Dense(width)
        if i < len(sizes) - 1:
            layers[f"act{i}"] = activation
            if dropout > 0:
                layers[f"dropout{i}"] = Dropout(dropout)
    return Sequential(**layers)
