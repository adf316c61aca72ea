"""`TrainState`: everything a training run is, as one pytree of arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer


class TrainState(NamedTuple):
    """The whole truth of a run; saving it and loading it resumes bit for bit.

    Attributes:
        params: trainable parameters (the network's params tree).
        state: non-trainable layer state (e.g. BatchNorm running statistics).
        opt_state: the optimizer's state.
        step: int32 scalar, the number of minibatches trained on so far.
        key: the run's random key; shuffles and dropout masks are derived
            from it and ``step``, so it never changes during a run.
    """

    params: Any
    state: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array


def init(net: Layer, optimizer: Any, key: jax.Array, input_shape: Sequence[int]) -> TrainState:
    """A fresh `TrainState` for ``net`` on inputs of ``input_shape`` (batch included).

    ``key`` is split in two: one half initialises the parameters, the other
    becomes the run's key.
    """
    init_key, run_key = jax.random.split(key)
    _, params, state = net.init(init_key, tuple(input_shape))
    return TrainState(params, state, optimizer.init(params), jnp.zeros((), jnp.int32), run_key)
