"""`TrainState`: everything a training run is, as one pytree of arrays."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer


class TrainState(NamedTuple):
    """The whole truth of a run; saving it and loading it resumes bit for bit.

    Attributes:
        params: trainable parameters, any pytree (a network's params, or
            ``{"generator": ..., "discriminator": ...}``).
        state: non-trainable state, any pytree (BatchNorm statistics,
            persistent Gibbs chains).
        opt_state: the optimizer's state, shaped like the optimizer(s) that
            update ``params``.
        step: int32 scalar, the number of minibatches trained on so far.
        key: the run's random key; shuffles and per-step keys are derived
            from it with ``fold_in``, so it never changes during a run.
        epoch: int32 scalar, the number of epochs completed. Epoch ``e + 1``
            shuffles with ``fold_in(key, e + 1)``, so numbering and shuffles
            survive a change of batch size or dataset size on resume.
    """

    params: Any
    state: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array
    epoch: jax.Array | int = 0


def init(net: Layer, optimizer: Any, key: jax.Array, input_shape: Any) -> TrainState:
    """A fresh `TrainState` for ``net`` on inputs of ``input_shape`` (batch included).

    ``input_shape`` is a shape tuple, or a pytree of them for a net whose
    input is a pytree (e.g. ``((32, 20), (32,))`` for ``(tokens, lengths)``).
    ``key`` is split in two: one half initialises the parameters, the other
    becomes the run's key.

    Example:
        >>> import jax, funcnets as fn
        >>> ts = fn.train.init(fn.Dense(3), fn.optim.sgd(0.1), jax.random.key(0), (8, 4))
        >>> ts.params["w"].shape, int(ts.step), int(ts.epoch)
        ((4, 3), 0, 0)
    """
    if isinstance(input_shape, list | tuple) and all(isinstance(d, int) for d in input_shape):
        input_shape = tuple(input_shape)
    init_key, run_key = jax.random.split(key)
    _, params, state = net.init(init_key, input_shape)
    return new_state(params, state, optimizer.init(params), run_key)


def new_state(params: Any, state: Any, opt_state: Any, key: jax.Array) -> TrainState:
    """A `TrainState` at step 0, epoch 0, from its parts (for models with several parts)."""
    step, epoch = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)  # two buffers: both donated
    return TrainState(params, state, opt_state, step, key, epoch)
