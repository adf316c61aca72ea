"""Metrics: functions ``(outputs, targets) -> scalar``, averaged over examples.

``accuracy`` applies to classifiers only: ``(N, C)`` logits with integer labels
``(N,)`` or with one-hot/probability rows ``(N, C)``, and a single logit
``(N,)``/``(N, 1)`` with 0/1 (or ±1) labels. Which of these a task is, and so
whether `fit` reports accuracy by default, is decided once, on the host, by
`classification_kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funcnets import losses

Metric = Callable[[jax.Array, jax.Array], jax.Array]
MetricSpec = Sequence[str | Metric] | Mapping[str, Metric]

#: ``fit``'s and ``evaluate``'s default: the loss, and accuracy where it applies.
DEFAULT_METRICS: tuple[str, ...] = ("loss", "accuracy")

_LOGIT_LOSSES = (losses.binary_cross_entropy, losses.hinge)


def accuracy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Top-1 accuracy: the fraction of examples whose predicted class is right.

    - ``outputs (N, C)``, ``C > 1``, with integer labels ``(N,)``: ``argmax`` vs label;
    - ``outputs (N, C)`` with one-hot or probability rows ``(N, C)``: ``argmax`` vs ``argmax``;
    - a single logit per example, ``(N,)`` or ``(N, 1)``, with 0/1 or ±1 labels of
      the same length: class 1 when the logit is positive, vs ``label > 0.5``.

    Raises:
        ValueError: for shapes that are none of these (e.g. a reconstruction).

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> float(fn.train.accuracy(jnp.array([[2.0], [-1.0], [0.5]]), jnp.array([1, 1, 1])))
        0.6666...
    """
    out, tgt = jnp.shape(outputs), jnp.shape(targets)
    if len(out) == 2 and out[-1] > 1 and tgt == out[:1]:
        return jnp.mean(jnp.argmax(outputs, axis=-1) == targets)
    if len(out) == 2 and out[-1] > 1 and tgt == out:
        return jnp.mean(jnp.argmax(outputs, axis=-1) == jnp.argmax(targets, axis=-1))
    if out in ((out[0],), (out[0], 1)) and tgt in ((out[0],), (out[0], 1)):
        predicted = jnp.reshape(outputs, (-1,)) > 0
        return jnp.mean(predicted == (jnp.reshape(targets, (-1,)) > 0.5))
    raise ValueError(
        f"accuracy applies to classifiers: (N, C) logits with labels (N,) or one-hot (N, C), "
        f"or one logit (N,)/(N, 1) with 0/1 labels; got outputs {out} and targets {tgt}"
    )


def confusion_counts(outputs: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class.

    ``outputs`` are ``(N, C)`` logits (or one logit ``(N,)``/``(N, 1)``, class 1 when
    positive); ``labels`` integer ``(N,)``. Jittable.

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> fn.train.metrics.confusion_counts(jnp.array([[1., 0], [0, 1], [1, 0]]),
        ...                                   jnp.array([0, 1, 1]), 2).tolist()
        [[1, 0], [1, 1]]
    """
    if jnp.ndim(outputs) == 2 and jnp.shape(outputs)[-1] > 1:
        predicted = jnp.argmax(outputs, axis=-1)
    else:
        predicted = (jnp.reshape(outputs, (-1,)) > 0).astype(jnp.int32)
    flat = jnp.reshape(labels, (-1,)).astype(jnp.int32) * num_classes + predicted
    return jnp.bincount(flat, length=num_classes * num_classes).reshape(num_classes, -1)


def classification_kind(output_shape: Sequence[int], targets: Any) -> str | None:
    """What kind of classification ``targets`` are for outputs of ``output_shape``, if any.

    Looks at the concrete targets once, on the host: ``"labels"`` (integer
    classes in ``[0, C)``), ``"probabilities"`` (rows in [0, 1] summing to 1),
    ``"binary"`` (0/1 or ±1 values for a single logit), or None (regression,
    reconstruction: accuracy does not apply).
    """
    out = tuple(output_shape)
    y = np.asarray(targets)
    if len(out) == 2 and out[-1] > 1:
        if y.shape == out[:1] and y.dtype.kind in "iub":
            return "labels" if y.size == 0 or (y.min() >= 0 and y.max() < out[-1]) else None
        if y.shape == out and y.dtype.kind == "f":
            rows_ok = np.all((y >= 0) & (y <= 1)) and np.allclose(y.sum(-1), 1, atol=1e-4)
            return "probabilities" if rows_ok else None
        return None
    single = out in ((out[0],), (out[0], 1)) if out else False
    if single and y.shape in ((out[0],), (out[0], 1)):
        values = np.unique(y)
        if np.isin(values, (0, 1)).all() or np.isin(values, (-1, 1)).all():
            return "binary"
    return None


def resolve(metrics: MetricSpec, loss_fn: Callable | None) -> dict[str, Metric]:
    """Maps metric names (``"loss"``, ``"accuracy"``) and functions to ``{name: fn}``.

    A function is named by its ``__name__``; pass a dict ``{name: fn}`` for
    lambdas and ``functools.partial`` objects, which have no useful name.
    """
    items = metrics.items() if isinstance(metrics, Mapping) else ((None, m) for m in metrics)
    named: dict[str, Metric] = {}
    for name, metric in items:
        if metric == "loss":
            if loss_fn is None:
                raise ValueError('the metric "loss" needs loss_fn=')
            named[name or "loss"] = loss_fn
        elif metric == "accuracy":
            named[name or "accuracy"] = accuracy
        elif callable(metric):
            name = name or getattr(metric, "__name__", None)
            if not name or name == "<lambda>":
                raise ValueError(
                    f"metric {metric!r} has no name: pass metrics as a dict, e.g. "
                    '{"my_metric": fn}'
                )
            named[name] = metric
        else:
            raise ValueError(f'unknown metric {metric!r}: use "loss", "accuracy" or a function')
    return named


def default_metrics(
    loss_fn: Callable | None, output_shape: Sequence[int], targets: Any
) -> dict[str, Metric]:
    """The default metrics: the loss (with a ``loss_fn``), and accuracy where it applies.

    Accuracy is reported for integer labels and probability rows, and for a
    single logit with 0/1 labels when the loss treats outputs as logits
    (binary cross-entropy, hinge), never for regression or reconstruction.
    """
    named = resolve(["loss"] if loss_fn is not None else [], loss_fn)
    kind = classification_kind(output_shape, targets)
    if kind in ("labels", "probabilities") or (kind == "binary" and loss_fn in _LOGIT_LOSSES):
        named["accuracy"] = accuracy
    return named


def check_accuracy_applies(
    named: Mapping[str, Metric], output_shape: Sequence[int], targets: Any, where: str
) -> None:
    """Raises when ``accuracy`` was asked for on targets that are not class labels."""
    if any(m is accuracy for m in named.values()) and not classification_kind(
        output_shape, targets
    ):
        y = np.asarray(targets)
        raise ValueError(
            f"{where}: accuracy needs class labels (integers (N,) in [0, C), one-hot rows, "
            f"or 0/1 labels for a single logit); the outputs are {tuple(output_shape)} and "
            f"the targets {y.dtype}{y.shape}, a regression or reconstruction target"
        )
