"""`PReLU` (He et al. 2015): a leaky ReLU whose negative slope is learned."""

from __future__ import annotations

import jax.numpy as jnp

from funcnets.layers.base import Layer, check_min_rank, make_layer


def PReLU(init: float = 0.25) -> Layer:
    """``y = x`` for ``x >= 0``, else ``alpha * x``, one ``alpha`` per channel.

    Params: ``alpha`` (channels,) for the last axis, starting at ``init``;
    learned by backpropagation like any weight.
    """
    start = float(init)

    def init_fn(key, input_shape):
        check_min_rank("PReLU", input_shape, 2, "(batch, ..., channels)")
        return tuple(input_shape), {"alpha": jnp.full((input_shape[-1],), start, jnp.float32)}, {}

    def apply(params, state, x, *, key=None, train=False):
        return jnp.where(x >= 0, x, params["alpha"] * x), state

    return make_layer("PReLU", init_fn, apply)
