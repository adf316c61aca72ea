"""Checks of what a user hands the training engine, made before any work is spent.

Training data are either a pytree of arrays sharing a leading example axis
(``x``, ``(x, y)``, ``{"tokens": ..., "lengths": ...}``), or batches: an
iterable of such pytrees, or a function returning a fresh iterable each epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np


def is_array(value: Any) -> bool:
    """A numpy or jax array (not a Python list or scalar)."""
    return isinstance(value, np.ndarray | jax.Array)


def is_array_tree(data: Any) -> bool:
    """True for data given as arrays: an array, a tuple, a dict or a NamedTuple of them.

    Anything else (a list, an iterator, a function) is a source of batches.
    Whether the leaves really are arrays is `check_examples`'s business.
    """
    return is_array(data) or isinstance(data, tuple | dict)


def check_examples(data: Any, what: str) -> int:
    """Checks a pytree of arrays with a shared, non-empty leading axis; returns its length.

    Raises a ValueError naming the leaf (e.g. ``train_data[1]``) that is not an
    array, has no example axis, or disagrees with the others in length.
    """
    flat = jax.tree_util.tree_flatten_with_path(data, is_leaf=lambda v: isinstance(v, list))[0]
    if not flat:
        raise ValueError(f"{what} holds no arrays")
    lengths = {}
    for path, leaf in flat:
        where = what + jax.tree_util.keystr(path)
        if not is_array(leaf):
            kind = type(leaf).__name__
            raise ValueError(
                f"{where} is a Python {kind}, not an array: convert it with np.asarray"
                if isinstance(leaf, int | float | bool | list)
                else f"{where} is a {kind}, not a numpy or jax array"
            )
        if leaf.ndim == 0:
            raise ValueError(f"{where} is a scalar; data need a leading example axis")
        lengths[where] = leaf.shape[0]
    if len(set(lengths.values())) > 1:
        details = ", ".join(f"{w} has {n}" for w, n in lengths.items())
        raise ValueError(f"{what}: every array needs the same number of examples; {details}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{what} is empty (0 examples)")
    return n


def check_pair(data: Any, what: str) -> tuple[Any, Any]:
    """Checks ``(x, y)`` data (``x`` may itself be a pytree of arrays); returns it as a tuple."""
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise ValueError(
            f"{what} must be a pair (x, y) of arrays with the same number of examples, "
            f"got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, tuple | list) else "")
        )
    x, y = data
    check_examples((x, y), what)
    return x, y


def batch_source(data: Any) -> Callable[[], Iterable[Any]]:
    """A function returning each epoch's batches, for iterable training data."""
    if callable(data):
        return data
    if isinstance(data, Iterator):
        return lambda: data
    if isinstance(data, Iterable):
        items = data

        def fresh() -> Iterable[Any]:
            return iter(items)

        return fresh
    raise ValueError(
        f"train_data must be a pytree of arrays, an iterable of batches or a function "
        f"returning one; got {type(data).__name__}"
    )


def check_int(value: Any, name: str, minimum: int, allow_none: bool = False) -> None:
    """Raises a ValueError unless ``value`` is an int ``>= minimum`` (or None if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{none}, got {value!r}")


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    """Raises a ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
