"""Construction-time checks of layer hyperparameters, with errors naming the layer."""

from __future__ import annotations

import numbers

from funcnets.layers.padding import Padding, explicit_padding


def positive_int(layer: str, name: str, value: object) -> int:
    """Returns ``value`` as an int if it is a positive integer.

    Raises:
        TypeError: If ``value`` is not an integer (bools excluded), naming the layer.
        ValueError: If it is below 1, naming the layer and the argument.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{layer}: {name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def check_padding(layer: str, padding: Padding, ndim: int) -> None:
    """Raises the ValueError of a malformed ``padding`` spec, naming the layer."""
    try:
        explicit_padding(padding, (1,) * ndim, (1,) * ndim, (1,) * ndim)
    except ValueError as error:
        raise ValueError(f"{layer}: {error}") from None
