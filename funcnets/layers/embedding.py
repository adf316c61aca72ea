"""`Embedding`: a learned lookup table from integer ids to vectors."""

from __future__ import annotations

import jax.numpy as jnp

from funcnets import initializers
from funcnets.initializers import Initializer
from funcnets.layers.base import Layer, make_layer


def Embedding(num: int, features: int, w_init: Initializer = initializers.normal(1.0)) -> Layer:
    """Maps integer ids in ``[0, num)`` to rows of a table: ``y = table[x]``.

    Params: ``table`` (num, features), initialised N(0, 1) as in PyTorch.
    Input: integers of any shape (batch, ...); output (batch, ..., features).
    Out-of-range ids give NaN rows (``jnp.take``'s fill mode), never a silent
    wrap-around.
    """

    def init(key, input_shape):
        return (*input_shape, features), {"table": w_init(key, (num, features))}, {}

    def apply(params, state, x, *, key=None, train=False):
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"Embedding: expected integer ids, got {x.shape} of dtype {x.dtype}")
        return jnp.take(params["table"], x, axis=0, mode="fill"), state

    return make_layer("Embedding", init, apply)
