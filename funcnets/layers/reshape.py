"""Shape-only layers: `Flatten` and `Reshape` (both keep the batch axis)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from funcnets.layers.base import Layer, check_min_rank, make_layer


def Flatten() -> Layer:
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...), in row-major (C) order."""

    def init(key, input_shape):
        check_min_rank("Flatten", input_shape, 1, "(batch, ...)")
        return (input_shape[0], math.prod(input_shape[1:])), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        return x.reshape(x.shape[0], -1), state

    return make_layer("Flatten", init, apply)


def Reshape(shape: Sequence[int]) -> Layer:
    """(batch, ...) -> (batch, *shape); ``shape`` excludes the batch axis, one entry may be -1."""
    shape = tuple(int(d) for d in shape)
    if shape.count(-1) > 1 or any(d < -1 or d == 0 for d in shape):
        raise ValueError(f"Reshape: shape must hold positive sizes and at most one -1, got {shape}")

    def resolve(input_shape):
        size, known = math.prod(input_shape[1:]), math.prod(d for d in shape if d != -1)
        if (-1 in shape and size % known) or (-1 not in shape and size != known):
            raise ValueError(
                f"Reshape: cannot reshape input {tuple(input_shape)} "
                f"({size} values per example) to (batch, *{shape})"
            )
        return tuple(size // known if d == -1 else d for d in shape)

    def init(key, input_shape):
        check_min_rank("Reshape", input_shape, 1, "(batch, ...)")
        return (input_shape[0], *resolve(input_shape)), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        return x.reshape(x.shape[0], *resolve(x.shape)), state

    return make_layer("Reshape", init, apply)
