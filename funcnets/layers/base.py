"""The layer protocol: a layer is a pair of pure functions.

``init(key, input_shape) -> (output_shape, params, state)`` builds the
parameters analytically from the input shape (the batch dimension included);
``apply(params, state, x, *, key=None, train=False) -> (y, new_state)`` runs
the layer. ``params`` (trainable) and ``state`` (non-trainable, e.g. running
statistics) are nested dicts of arrays, ``{}`` for a layer with none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

Shape = tuple[int, ...]
Params = dict[str, Any]
State = dict[str, Any]


class Layer(NamedTuple):
    """A layer: ``init(key, input_shape)`` and ``apply(params, state, x, *, key, train)``.

    Example:
        >>> import jax, funcnets as fn
        >>> net = fn.Sequential(fn.Dense(3), fn.relu)
        >>> out_shape, params, state = net.init(jax.random.key(0), (2, 4))
        >>> out_shape
        (2, 3)
        >>> y, state = net.apply(params, state, jax.numpy.ones((2, 4)))
    """

    init: Callable[..., tuple[Shape, Params, State]]
    apply: Callable[..., tuple[Any, State]]


def make_layer(
    name: str,
    init: Callable[..., tuple[Shape, Params, State]],
    apply: Callable[..., tuple[Any, State]],
    children: Sequence[tuple[str, Layer]] = (),
    chained: bool = False,
) -> Layer:
    """Builds a `Layer` and records what `fn.summary` needs to describe it.

    The description lives on the ``init`` function as attributes, so a `Layer`
    stays a plain two-field tuple of pure functions.

    Args:
        name: the layer type shown in summaries and errors, e.g. ``"Dense"``.
        init: the layer's init function.
        apply: the layer's apply function.
        children: ``(key, layer)`` pairs of a combinator's sub-layers.
        chained: True when each child's input is the previous child's output
            (Sequential); False when every child sees the combinator's input.
    """
    init.layer_name = name
    init.layer_children = tuple(children)
    init.layer_chained = chained
    return Layer(init, apply)


def layer_name(layer: Layer) -> str:
    """The type name of a layer (its init function's name for hand-made layers)."""
    return getattr(layer.init, "layer_name", getattr(layer.init, "__qualname__", "Layer"))


def layer_children(layer: Layer) -> tuple[tuple[str, Layer], ...]:
    """The ``(key, layer)`` pairs inside a combinator, ``()`` for a primitive layer."""
    return getattr(layer.init, "layer_children", ())


def shape_error(name: str, expected: str, got: Shape) -> ValueError:
    """The error for a wrong input shape, naming the layer and both shapes."""
    return ValueError(f"{name}: expected input {expected}, got {tuple(got)}")


def check_rank(name: str, shape: Shape, rank: int, layout: str) -> None:
    """Raises a `shape_error` unless ``shape`` has exactly ``rank`` axes."""
    if len(shape) != rank:
        raise shape_error(name, f"of rank {rank} {layout}", shape)


def check_min_rank(name: str, shape: Shape, rank: int, layout: str) -> None:
    """Raises a `shape_error` unless ``shape`` has at least ``rank`` axes."""
    if len(shape) < rank:
        raise shape_error(name, f"of rank >= {rank} {layout}", shape)


def require_key(name: str, key: jax.Array | None) -> jax.Array:
    """Returns ``key``, or raises a ValueError naming the stochastic layer."""
    if key is None:
        raise ValueError(
            f"{name}: apply(..., train=True) needs a random key; pass key=jax.random.key(...)"
        )
    return key


def as_tuple(value: int | Sequence[int], n: int, what: str) -> tuple[int, ...]:
    """Broadcasts an int to an ``n``-tuple, or checks a sequence has length ``n``."""
    if isinstance(value, int):
        values = (value,) * n
    else:
        values = tuple(int(v) for v in value)
        if len(values) != n:
            raise ValueError(f"{what} must be an int or a sequence of {n} ints, got {value!r}")
    if any(v < 1 for v in values):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return values
