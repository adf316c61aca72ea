"""Holding out a validation split of the training data."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["split"]


def split(data: Any, fraction: float, key: jax.Array) -> tuple[Any, Any]:
    """Splits ``data`` into ``(train, held_out)`` by a random subset of examples.

    ``data`` is a pytree of arrays sharing a leading example axis (``x``,
    ``(x, y)``, a dict). ``round(fraction * N)`` examples, drawn by
    ``jax.random.permutation(key, N)``, go to ``held_out``; both parts keep
    the original order of their examples. The same key always gives the same
    split, so a resumed run validates on the same examples.

    Example:
        >>> import jax, numpy as np, funcnets as fn
        >>> x, y = np.arange(10.0)[:, None], np.arange(10)
        >>> (xt, yt), (xv, yv) = fn.data.split((x, y), 0.2, jax.random.key(0))
        >>> len(yt), len(yv), sorted(np.concatenate([yt, yv]).tolist()) == list(range(10))
        (8, 2, True)
    """
    leaves = jax.tree.leaves(data)
    if not leaves or any(not hasattr(leaf, "shape") or leaf.ndim == 0 for leaf in leaves):
        raise ValueError("split: data must be a pytree of arrays with a leading example axis")
    n = leaves[0].shape[0]
    if any(leaf.shape[0] != n for leaf in leaves):
        raise ValueError(f"split: every array needs the same number of examples ({n} first)")
    if not 0 < fraction < 1:
        raise ValueError(f"split: fraction must be in (0, 1), got {fraction!r}")
    held = round(fraction * n)
    if not 0 < held < n:
        raise ValueError(f"split: a fraction {fraction} of {n} examples leaves a part empty")
    order = np.asarray(jax.random.permutation(key, n))
    parts = np.sort(order[held:]), np.sort(order[:held])
    return tuple(jax.tree.map(lambda a, idx=idx: a[idx], data) for idx in parts)
