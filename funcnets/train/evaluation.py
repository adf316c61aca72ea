"""`evaluate`, `predict` and `confusion_matrix`: a trained net in inference mode, batched.

The compiled functions are cached per network and metrics (as `make_step`
is built once), so calling `evaluate` after every epoch, or `predict` in a
loop, compiles once per batch shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcnets.layers.base import Layer
from funcnets.parallel.sharding import batch_sharding, replicated, shard_batch
from funcnets.train.inputs import check_examples, check_int, check_pair
from funcnets.train.metrics import (
    DEFAULT_METRICS,
    Metric,
    MetricSpec,
    check_accuracy_applies,
    confusion_counts,
    default_metrics,
    resolve,
)
from funcnets.train.state import TrainState


@functools.lru_cache(maxsize=128)
def _predictor(apply: Callable) -> Callable:
    return jax.jit(lambda params, state, x: apply(params, state, x, train=False)[0])


@functools.lru_cache(maxsize=128)
def _accumulator(
    apply: Callable,
    metrics: tuple[tuple[str, Metric], ...],
    sharding: jax.sharding.NamedSharding | None = None,
) -> Callable:
    def accumulate(params, state, sums, x, y):
        if sharding is not None:  # split the batch over "data", as in training
            x, y = lax.with_sharding_constraint((x, y), sharding)
        outputs, _ = apply(params, state, x, train=False)
        weight = jnp.float32(jax.tree.leaves(x)[0].shape[0])
        return {name: sums[name] + weight * metric(outputs, y) for name, metric in metrics}

    return jax.jit(accumulate, donate_argnums=2)


def _batches(data: Any, n: int, batch_size: int):
    """``data`` (a pytree of arrays) in consecutive device batches of ``batch_size``."""
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        yield jax.tree.map(lambda a, part=part: jnp.asarray(a[part]), data)


def output_shape(net: Layer, ts: TrainState, x: Any) -> tuple[int, ...]:
    """The shape of ``net``'s outputs on all of ``x``, found without computing them."""
    n = jax.tree.leaves(x)[0].shape[0]
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype), x)
    out = jax.eval_shape(_predictor(net.apply), ts.params, ts.state, one)
    return (n, *out.shape[1:])


def choose_metrics(
    metrics: MetricSpec, loss_fn: Callable | None, shape: tuple[int, ...], y: Any, where: str
) -> dict[str, Metric]:
    """Resolves ``metrics``; the default keeps accuracy only where it applies."""
    if metrics is DEFAULT_METRICS:
        return default_metrics(loss_fn, shape, y)
    named = resolve(metrics, loss_fn)
    check_accuracy_applies(named, shape, y, where)
    return named


class Evaluator:
    """Batched, compiled evaluation (``train=False``) of fixed metrics over a dataset.

    With a ``mesh`` (one with an axis ``"data"``), each batch is split over
    ``"data"`` as in training (funcnets.parallel.sharding), whatever its size.
    """

    def __init__(
        self,
        net: Layer,
        metrics: dict[str, Metric],
        batch_size: int,
        mesh: jax.sharding.Mesh | None = None,
    ) -> None:
        sharding = None if mesh is None else batch_sharding(mesh)
        self.accumulate = _accumulator(net.apply, tuple(metrics.items()), sharding)
        self.names, self.batch_size, self.mesh = list(metrics), batch_size, mesh

    def __call__(self, ts: TrainState, data: tuple[Any, Any]) -> dict[str, float]:
        x, y = data
        n = len(y)
        sums = {name: jnp.zeros((), jnp.float32) for name in self.names}
        if self.mesh is not None:  # committed inputs (as the sums come back): one program
            sums = jax.device_put(sums, replicated(self.mesh))
        for batch in _batches((x, y), n, self.batch_size):
            if self.mesh is not None:
                batch = shard_batch(batch, self.mesh)
            sums = self.accumulate(ts.params, ts.state, sums, *batch)
        totals = jax.device_get(sums)
        return {name: float(totals[name]) / n for name in self.names}


def evaluate(
    net: Layer,
    ts: TrainState,
    data: tuple[Any, Any],
    *,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    batch_size: int = 256,
    metrics: MetricSpec = DEFAULT_METRICS,
) -> dict[str, float]:
    """Metrics of ``net`` (``train=False``) over ``data = (x, y)``, averaged over examples.

    By default: ``loss`` (when ``loss_fn`` is given) and ``accuracy`` where it
    applies (class labels; see `fn.train.metrics`). ``metrics`` may name
    ``"loss"``, ``"accuracy"`` and functions ``(outputs, targets) -> scalar``
    (or be a dict ``{name: fn}``). Returns ``{name: float}``.

    Example:
        >>> import jax, funcnets as fn
        >>> x, y = fn.data.xor(jax.random.key(0), n=64)
        >>> net = fn.models.mlp([8, 2])
        >>> ts = fn.train.init(net, fn.optim.adam(1e-2), jax.random.key(1), x.shape)
        >>> sorted(fn.train.evaluate(net, ts, (x, y), loss_fn=fn.losses.sparse_cross_entropy))
        ['accuracy', 'loss']
    """
    check_int(batch_size, "batch_size", 1)
    x, y = check_pair(data, "data")
    named = choose_metrics(metrics, loss_fn, output_shape(net, ts, x), y, "evaluate")
    return Evaluator(net, named, batch_size)(ts, (x, y))


def predict(net: Layer, ts: TrainState, x: Any, *, batch_size: int = 256) -> jax.Array:
    """``net``'s outputs on ``x`` (``train=False``), computed in batches of ``batch_size``."""
    check_int(batch_size, "batch_size", 1)
    n = check_examples(x, "x")
    apply = _predictor(net.apply)
    parts = [apply(ts.params, ts.state, xb) for xb in _batches(x, n, batch_size)]
    return jax.tree.map(lambda *p: jnp.concatenate(p, axis=0), *parts)


def confusion_matrix(
    net: Layer,
    ts: TrainState,
    data: tuple[Any, Any],
    *,
    num_classes: int | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Counts ``(C, C)`` of a classifier on ``data = (x, labels)``: row true, column predicted.

    ``C`` is the number of output logits (2 for a single logit) unless given.

    Example:
        >>> import jax, funcnets as fn
        >>> x, y = fn.data.xor(jax.random.key(0), n=64)
        >>> net = fn.models.mlp([8, 2])
        >>> ts = fn.train.init(net, fn.optim.adam(1e-2), jax.random.key(1), x.shape)
        >>> counts = fn.train.confusion_matrix(net, ts, (x, y))
        >>> counts.shape, int(counts.sum())
        ((2, 2), 64)
    """
    x, y = check_pair(data, "data")
    outputs = predict(net, ts, x, batch_size=batch_size)
    logits = outputs.shape[-1] if outputs.ndim == 2 else 1
    classes = num_classes or (logits if logits > 1 else 2)
    return np.asarray(confusion_counts(outputs, jnp.asarray(y), classes))
