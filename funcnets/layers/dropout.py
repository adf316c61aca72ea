"""Dropout (Srivastava et al. 2014), inverted: kept units are scaled at train time."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer, make_layer, require_key


def Dropout(rate: float) -> Layer:
    """Zeroes each unit with probability ``rate`` in training; identity in eval.

    In training, ``y = x * m / (1 - rate)`` with ``m ~ Bernoulli(1 - rate)``
    per element, so ``E[y] = x`` and nothing changes at inference. Needs
    ``key`` when ``train=True`` (a ValueError otherwise), unless ``rate == 0``.
    No params, no state.

    Args:
        rate: the probability of dropping a unit, ``0 <= rate < 1``.
    """
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            f"Dropout: rate is the probability of dropping and must be in [0, 1), got {rate}"
        )

    def init(key, input_shape):
        return tuple(input_shape), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        if not train or rate == 0.0:
            return x, state
        keep = jax.random.bernoulli(require_key("Dropout", key), 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x)), state

    return make_layer("Dropout", init, apply)
