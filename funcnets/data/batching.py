"""Minibatches of in-memory arrays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

__all__ = ["batches"]


def batches(
    x: Any,
    y: Any,
    batch_size: int,
    key: jax.Array | None = None,
    drop_remainder: bool = False,
) -> Iterator[tuple[Any, Any]]:
    """Iterates over ``(x_batch, y_batch)`` minibatches, shuffled when a key is given.

    Arguments are validated when ``batches`` is called, not at the first ``next``.

    Args:
        x: inputs, numpy or jax array ``(N, ...)``.
        y: targets, numpy or jax array ``(N, ...)``.
        batch_size: examples per batch, at least 1.
        key: a ``jax.random`` key; the order is ``jax.random.permutation(key, N)``. ``None``
            keeps the original order.
        drop_remainder: drop the last batch when it has fewer than ``batch_size`` examples;
            by default it is kept.

    Returns:
        An iterator of ``(x[idx], y[idx])``, arrays of the inputs' kind (numpy or jax), the
        first axis of length ``batch_size`` (the last one possibly shorter). Each example
        appears exactly once per pass (once at most with ``drop_remainder``).

    Raises:
        ValueError: ``len(x) != len(y)`` or ``batch_size < 1``.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x and y must have the same length, got {n} and {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = None if key is None else np.asarray(jax.random.permutation(key, n))
    stop = n - n % batch_size if drop_remainder else n
    return _iterate(x, y, batch_size, order, stop)


def _iterate(
    x: Any, y: Any, batch_size: int, order: np.ndarray | None, stop: int
) -> Iterator[tuple[Any, Any]]:
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, stop)
        if order is None:
            yield x[start:end], y[start:end]
        else:
            idx = order[start:end]
            yield x[idx], y[idx]
