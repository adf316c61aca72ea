"""One training step: forward, backward, optimizer update, as a pure function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer
from funcnets.optim.base import apply_updates
from funcnets.train.metrics import Metric
from funcnets.train.state import TrainState

Batch = tuple[jax.Array, jax.Array]


def step_key(ts: TrainState) -> jax.Array:
    """The key of the current step's randomness (dropout): ``fold_in(ts.key, ts.step)``."""
    return jax.random.fold_in(ts.key, ts.step)


def loss_and_gradients(
    net: Layer,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    penalty: Callable[[Any], jax.Array] | None,
    metrics: Mapping[str, Metric],
) -> Callable[[TrainState, Batch], tuple[jax.Array, Any, Any, dict[str, jax.Array]]]:
    """The first half of a step: ``(ts, batch) -> (loss, grads, new layer state, metrics)``.

    ``loss`` is the optimised objective (data loss plus penalty); each metric
    is evaluated on the training outputs of this batch.
    """

    def objective(params, state, x, y, key):
        outputs, new_state = net.apply(params, state, x, key=key, train=True)
        loss = loss_fn(outputs, y)
        if penalty is not None:
            loss = loss + penalty(params)
        return loss, (new_state, outputs)

    def compute(ts: TrainState, batch: Batch):
        x, y = batch
        (loss, (new_state, outputs)), grads = jax.value_and_grad(objective, has_aux=True)(
            ts.params, ts.state, x, y, step_key(ts)
        )
        values = {
            name: loss if name == "loss" else jnp.asarray(metric(outputs, y), jnp.float32)
            for name, metric in metrics.items()
        }
        return loss, grads, new_state, values

    return compute


def apply_gradients(optimizer: Any, ts: TrainState, grads: Any, new_state: Any) -> TrainState:
    """The second half of a step: one optimizer update, the new layer state, ``step + 1``."""
    updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
    params = apply_updates(ts.params, updates)
    return TrainState(params, new_state, opt_state, ts.step + 1, ts.key)


def make_step(
    net: Layer,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    optimizer: Any,
    *,
    penalty: Callable[[Any], jax.Array] | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """A pure, jittable training step ``(ts, (x, y)) -> (ts, {"loss": loss})``.

    Computes ``loss_fn(net(x), y) + penalty(params)`` and its gradient with
    ``jax.value_and_grad(..., has_aux=True)`` (the layer state rides along as
    the auxiliary output, so it never gets gradients), applies one optimizer
    update, and advances ``ts.step``. Dropout masks use the key
    ``fold_in(ts.key, ts.step)``. Any funcnets or optax optimizer works.

    Example:
        >>> step = jax.jit(fn.train.make_step(net, fn.losses.sparse_cross_entropy,
        ...                                   fn.optim.adam(1e-3)), donate_argnums=0)
        >>> ts, metrics = step(ts, (x, y))  # doctest: +SKIP
    """
    compute = loss_and_gradients(net, loss_fn, penalty, {"loss": loss_fn})

    def step(ts: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        _, grads, new_state, values = compute(ts, batch)
        return apply_gradients(optimizer, ts, grads, new_state), values

    return step
