"""Metrics: functions ``(outputs, targets) -> scalar`` averaged over a dataset."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Metric = Callable[[jax.Array, jax.Array], jax.Array]


def accuracy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Top-1 accuracy, the fraction of examples whose predicted class is right.

    ``targets`` may be integer labels ``(batch,)``, one-hot or probability
    vectors shaped like ``outputs`` ``(batch, classes)``, or, for a single
    logit per example ``(batch,)``/``(batch, 1)``, 0/1 labels (class 1 when the
    logit is positive).
    """
    if outputs.ndim == targets.ndim + 1 or (
        outputs.shape == targets.shape and outputs.shape[-1] > 1
    ):
        predicted = jnp.argmax(outputs, axis=-1)
        labels = targets if outputs.ndim == targets.ndim + 1 else jnp.argmax(targets, axis=-1)
        return jnp.mean(predicted == labels)
    return jnp.mean((outputs > 0).reshape(targets.shape) == (targets > 0.5))


def resolve(metrics: Sequence[str | Metric], loss_fn: Callable) -> dict[str, Metric]:
    """Maps names (``"loss"``, ``"accuracy"``) and user functions to ``{name: fn}``.

    A user function is named by its ``__name__``.
    """
    named = {}
    for metric in metrics:
        if metric == "loss":
            named["loss"] = loss_fn
        elif metric == "accuracy":
            named["accuracy"] = accuracy
        elif callable(metric):
            named[getattr(metric, "__name__", f"metric{len(named)}")] = metric
        else:
            raise ValueError(f'unknown metric {metric!r}: use "loss", "accuracy" or a function')
    return named
