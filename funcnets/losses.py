"""Loss functions and weight penalties: pure, jittable, numerically stable.

Every loss takes ``reduction="mean" | "sum" | "none"``. With ``"none"``,
regression losses and :func:`binary_cross_entropy` return one loss per element;
the classification losses (:func:`cross_entropy`, :func:`sparse_cross_entropy`,
:func:`kl_divergence`, :func:`hinge`) reduce the last (class) axis and return one
loss per example, so their ``"mean"`` is the mean over examples. Predictions and
targets must have the same shape (``labels``: the logits' shape without the class
axis); nothing is broadcast silently. Integer inputs are computed in float32 (so
int8 errors cannot overflow), and so are bfloat16 and float16 inputs (mixed
precision: the loss, its softmax and its log-sum-exp in float32). Cross-entropies
work from logits and stay finite, with finite gradients, for logits of magnitude 1e4.

Targets outside a loss's domain (probabilities outside [0, 1], hinge targets
other than ±1, labels outside ``[0, num_classes)``) raise a ValueError naming
the loss when the targets are concrete (eager calls, numpy constants). Under
``jit`` they cannot raise: their losses are NaN instead, so a reduced loss is
NaN and the training loop's non-finite guard stops on it.

>>> import jax.numpy as jnp
>>> from funcnets import losses
>>> losses.mse(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0]))
Array(2., dtype=float32)
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from funcnets.activations import log_softmax, softplus

__all__ = [
    "mse",
    "mae",
    "huber",
    "binary_cross_entropy",
    "cross_entropy",
    "sparse_cross_entropy",
    "kl_divergence",
    "hinge",
    "l1_penalty",
    "l2_penalty",
]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")
_PROBS = "probabilities in [0, 1]"


def _check_reduction(loss: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{loss}: reduction must be one of 'mean', 'sum' or 'none', got {reduction!r}"
        )


def _reduce(losses: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.mean(losses)
    if reduction == "sum":
        return jnp.sum(losses)
    return losses


def _float(a: ArrayLike) -> jax.Array:
    """``a`` as an array in at least float32: integers, bools and 16-bit floats are widened."""
    a = jnp.asarray(a)
    wide = jnp.issubdtype(a.dtype, jnp.inexact) and a.dtype.itemsize >= 4
    return a if wide else a.astype(jnp.float32)


def _same_shape(
    loss: str, a: ArrayLike, b: ArrayLike, a_name: str, b_name: str
) -> tuple[jax.Array, jax.Array]:
    a, b = _float(a), _float(b)
    if a.shape != b.shape:
        raise ValueError(
            f"{loss}: {a_name} shape {a.shape} does not match {b_name} shape {b.shape}"
        )
    return a, b


def _nan_unless(
    losses: jax.Array, values: jax.Array, valid: jax.Array, loss: str, name: str, expected: str
) -> jax.Array:
    """``losses``, NaN where some value behind them is not ``valid``.

    ``valid`` has the shape of ``values``; a per-example loss (class axis reduced)
    is NaN if any of its values is invalid. Concrete invalid values raise a
    ValueError instead; under ``jit`` (``valid`` a tracer) nothing can raise.
    """
    if not isinstance(valid, jax.core.Tracer) and not valid.all():
        raise ValueError(f"{loss}: {name} must be {expected}, got {values[~valid][0]}")
    if valid.ndim > losses.ndim:
        valid = valid.all(axis=-1)
    return jnp.where(valid, losses, jnp.nan)


def _require_class_axis(loss: str, a: jax.Array, a_name: str) -> None:
    if a.ndim == 0:
        raise ValueError(f"{loss}: {a_name} must have a class axis (the last), got shape ()")


def mse(pred: ArrayLike, target: ArrayLike, reduction: Reduction = "mean") -> jax.Array:
    """Mean squared error: ``loss = (pred - target)²`` per element.

    >>> mse(jnp.array([0.0, 2.0]), jnp.array([1.0, 2.0]), reduction="none")
    Array([1., 0.], dtype=float32)
    """
    _check_reduction("mse", reduction)
    pred, target = _same_shape("mse", pred, target, "pred", "target")
    return _reduce(jnp.square(pred - target), reduction)


def mae(pred: ArrayLike, target: ArrayLike, reduction: Reduction = "mean") -> jax.Array:
    """Mean absolute error: ``loss = |pred - target|`` per element.

    >>> mae(jnp.array([0.0, 2.0]), jnp.array([1.0, 5.0]))
    Array(2., dtype=float32)
    """
    _check_reduction("mae", reduction)
    pred, target = _same_shape("mae", pred, target, "pred", "target")
    return _reduce(jnp.abs(pred - target), reduction)


def huber(
    pred: ArrayLike, target: ArrayLike, delta: float = 1.0, reduction: Reduction = "mean"
) -> jax.Array:
    """Huber loss per element, with ``e = |pred - target|``::

        loss = ½ e²               if e <= delta
               delta (e - ½ delta) otherwise

    Quadratic near zero, linear (slope ``delta``) in the tails; the same as
    ``optax.huber_loss`` and PyTorch's ``HuberLoss`` (not ``SmoothL1Loss``, which
    divides by ``delta``).

    >>> huber(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]), reduction="none")
    Array([0.125, 2.5  ], dtype=float32)
    """
    _check_reduction("huber", reduction)
    if isinstance(delta, numbers.Real) and not delta > 0:
        raise ValueError(f"huber: delta must be > 0, got {delta!r}")
    pred, target = _same_shape("huber", pred, target, "pred", "target")
    error = jnp.abs(pred - target)
    quadratic = jnp.minimum(error, delta)
    return _reduce(0.5 * quadratic**2 + delta * (error - quadratic), reduction)


def binary_cross_entropy(
    logits: ArrayLike, targets: ArrayLike, reduction: Reduction = "mean"
) -> jax.Array:
    """Binary cross-entropy from logits, per element.

    ``loss = -t log σ(z) - (1 - t) log(1 - σ(z))``, computed stably as
    ``max(z, 0) - z t + log1p(exp(-|z|))`` (= ``softplus(z) - z t``, the form
    used, whose gradient ``σ(z) - t`` is right at ``z = 0`` too). Targets ``t``
    are probabilities in [0, 1] (hard 0/1 labels or soft targets), of the
    logits' shape; others raise, or give NaN under ``jit``.

    >>> binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0]))
    Array(0.6931472, dtype=float32)
    """
    _check_reduction("binary_cross_entropy", reduction)
    z, t = _same_shape("binary_cross_entropy", logits, targets, "logits", "targets")
    valid = (t >= 0) & (t <= 1)
    losses = _nan_unless(softplus(z) - z * t, t, valid, "binary_cross_entropy", "targets", _PROBS)
    return _reduce(losses, reduction)


def cross_entropy(
    logits: ArrayLike, target_probs: ArrayLike, reduction: Reduction = "mean"
) -> jax.Array:
    """Softmax cross-entropy against target distributions, per example.

    ``loss = -Σ_c p_c log softmax(z)_c`` over the last axis, with ``log softmax``
    by log-sum-exp. ``target_probs`` has the logits' shape (one-hot or soft labels),
    with entries in [0, 1]; others raise, or give NaN under ``jit``.

    >>> cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))
    Array(0.6931472, dtype=float32)
    """
    _check_reduction("cross_entropy", reduction)
    z, p = _same_shape("cross_entropy", logits, target_probs, "logits", "target_probs")
    _require_class_axis("cross_entropy", z, "logits")
    losses = -jnp.sum(p * log_softmax(z), axis=-1)
    valid = (p >= 0) & (p <= 1)
    losses = _nan_unless(losses, p, valid, "cross_entropy", "target_probs", _PROBS)
    return _reduce(losses, reduction)


def sparse_cross_entropy(
    logits: ArrayLike, labels: ArrayLike, reduction: Reduction = "mean"
) -> jax.Array:
    """Softmax cross-entropy against integer class labels, per example.

    ``loss = -log softmax(z)_y = logsumexp(z) - z_y`` for label ``y``. ``labels``
    are integers in ``[0, num_classes)`` of shape ``logits.shape[:-1]``; a label
    outside that range raises, or gives a NaN loss under ``jit`` (never a silent
    wrap-around).

    >>> sparse_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([1]))
    Array(0.6931472, dtype=float32)
    """
    _check_reduction("sparse_cross_entropy", reduction)
    z, y = _float(logits), jnp.asarray(labels)
    _require_class_axis("sparse_cross_entropy", z, "logits")
    if y.shape != z.shape[:-1]:
        raise ValueError(
            f"sparse_cross_entropy: labels shape {y.shape} does not match logits shape "
            f"{z.shape} without its class axis, {z.shape[:-1]}"
        )
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"sparse_cross_entropy: labels must be integers, got {y.dtype}")
    num_classes = z.shape[-1]
    picked = jnp.take_along_axis(log_softmax(z), jnp.clip(y, 0, num_classes - 1)[..., None], -1)
    in_range = (y >= 0) & (y < num_classes)
    expected = f"in [0, {num_classes}) for {num_classes} classes"
    losses = _nan_unless(-picked[..., 0], y, in_range, "sparse_cross_entropy", "labels", expected)
    return _reduce(losses, reduction)


def kl_divergence(
    log_predictions: ArrayLike, target_probs: ArrayLike, reduction: Reduction = "mean"
) -> jax.Array:
    """Kullback-Leibler divergence ``KL(p || q)`` per example, over the last axis.

    ``loss = Σ_c p_c (log p_c - log q_c)``, with ``0 log 0 = 0``, where
    ``log_predictions = log q`` (e.g. from :func:`~funcnets.activations.log_softmax`)
    and ``target_probs = p``, entries in [0, 1] (others raise, or give NaN under
    ``jit``). Same argument order as ``optax.kl_divergence`` and PyTorch's ``KLDivLoss``.

    >>> kl_divergence(jnp.log(jnp.array([[0.5, 0.5]])), jnp.array([[0.5, 0.5]]))
    Array(0., dtype=float32)
    """
    _check_reduction("kl_divergence", reduction)
    log_q, p = _same_shape(
        "kl_divergence", log_predictions, target_probs, "log_predictions", "target_probs"
    )
    _require_class_axis("kl_divergence", log_q, "log_predictions")
    positive = p > 0
    log_p = jnp.log(jnp.where(positive, p, 1))
    losses = jnp.sum(jnp.where(positive, p * (log_p - log_q), 0), axis=-1)
    losses = _nan_unless(losses, p, (p >= 0) & (p <= 1), "kl_divergence", "target_probs", _PROBS)
    return _reduce(losses, reduction)


def hinge(scores: ArrayLike, targets: ArrayLike, reduction: Reduction = "mean") -> jax.Array:
    """Hinge loss per example: ``loss = Σ_c max(0, 1 - t_c s_c)`` over the last axis.

    Targets are ±1, of the scores' shape (one-vs-all for several classes); others
    (0/1 labels, say) raise, or give NaN under ``jit``. A binary SVM uses shape
    ``(N, 1)``; then each example's loss is ``optax.hinge_loss``'s.

    >>> hinge(jnp.array([[0.5], [-2.0]]), jnp.array([[1.0], [-1.0]]), reduction="none")
    Array([0.5, 0. ], dtype=float32)
    """
    _check_reduction("hinge", reduction)
    s, t = _same_shape("hinge", scores, targets, "scores", "targets")
    _require_class_axis("hinge", s, "scores")
    losses = jnp.sum(jnp.maximum(0, 1 - t * s), axis=-1)
    losses = _nan_unless(losses, t, jnp.abs(t) == 1, "hinge", "targets", "±1")
    return _reduce(losses, reduction)


def l1_penalty(params: Any) -> jax.Array:
    """L1 penalty of a pytree: ``Σ |p|`` over every element of every leaf.

    >>> l1_penalty({"w": jnp.array([-1.0, 2.0]), "b": jnp.array([3.0])})
    Array(6., dtype=float32)
    """
    return sum((jnp.sum(jnp.abs(p)) for p in jax.tree.leaves(params)), jnp.zeros(()))


def l2_penalty(params: Any) -> jax.Array:
    """L2 penalty of a pytree: ``½ Σ p²``, so that its gradient is ``p`` (weight decay).

    >>> l2_penalty({"w": jnp.array([-1.0, 2.0]), "b": jnp.array([3.0])})
    Array(7., dtype=float32)
    """
    return 0.5 * sum((jnp.sum(jnp.square(p)) for p in jax.tree.leaves(params)), jnp.zeros(()))
