"""Combinators build layers out of layers: `Sequential`, `Residual`, `Parallel`, `Lambda`.

Each child gets its own random key, split deterministically from the one
the combinator receives (``jax.random.split``), or ``None`` when it gets
``None``. Errors from a child are re-raised with the child's path prepended,
e.g. ``Sequential["3"] Dense: expected input (..., 784), got (8, 3072)``.

Per-call keywords beyond ``key`` and ``train`` (e.g. a recurrent layer's
``mask``) go to every child whose ``apply`` takes them (`Layer.accepts`,
decided once, at construction) and to no other; a combinator accepts the
keywords any of its children accepts, and raises a TypeError for one none
of them does. A keyword goes to *all* the children that take it: a
``Sequential`` of two LSTMs gives both the same ``mask`` (what padding needs)
and the same ``initial_carry`` (call the layers one by one for different ones).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer, chained, layer_name, make_layer


@contextlib.contextmanager
def error_path(where: str) -> Iterator[None]:
    """Prefixes ``where`` to the message of a plain ValueError raised inside."""
    try:
        yield
    except ValueError as error:
        if type(error) is not ValueError:
            raise
        raise ValueError(f"{where} {error}").with_traceback(error.__traceback__) from None


def _split(key: jax.Array | None, n: int) -> list[jax.Array | None]:
    return [None] * n if key is None else list(jax.random.split(key, n))


def any_accepts(layers: Sequence[Layer]) -> Callable[[str], bool]:
    """`Layer.accepts` of a combinator: the keywords any of ``layers`` takes."""
    return lambda keyword: any(layer.accepts(keyword) for layer in layers)


def share_keywords(where: str, layers: Sequence[Layer], kwargs: dict[str, Any]) -> list[dict]:
    """Each layer's share of the per-call keywords: those its ``apply`` takes.

    Raises:
        TypeError: for a keyword that none of ``layers`` takes, naming ``where``.
    """
    for keyword in kwargs:
        if not any(layer.accepts(keyword) for layer in layers):
            names = ", ".join(map(layer_name, layers))
            raise TypeError(f"{where}: got {keyword}=, which none of its layers takes ({names})")
    return [{k: v for k, v in kwargs.items() if layer.accepts(k)} for layer in layers]


def is_shape(value: object) -> bool:
    """True for a shape (a tuple of ints), so trees of shapes can be mapped over."""
    return isinstance(value, tuple) and all(isinstance(d, int) for d in value)


def _as_layer(item: Layer | Callable) -> Layer:
    return item if isinstance(item, Layer) else Lambda(item)


def Lambda(f: Callable[[jax.Array], jax.Array], name: str | None = None) -> Layer:
    """A parameterless layer ``y = f(x)``; ``f`` must be pure and jittable.

    The output shape is found by tracing ``f`` abstractly (``jax.eval_shape``)
    on a float32 input, so nothing is computed at init.
    """
    name = name if name else getattr(f, "__name__", "Lambda")

    def init(key, input_shape):
        def spec(shape):
            return jax.ShapeDtypeStruct(tuple(shape), jnp.float32)

        out = jax.eval_shape(f, jax.tree.map(spec, input_shape, is_leaf=is_shape))
        return jax.tree.map(lambda s: tuple(s.shape), out), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        return f(x), state

    return make_layer(name, init, apply)


def Sequential(*layers: Layer | Callable, **named: Layer | Callable) -> Layer:
    """Layers applied in order, each to the previous one's output.

    ``Sequential(a, b)`` keys the children ``"0"``, ``"1"``;
    ``Sequential(encoder=a, head=b)`` keys them by name, in order. Plain
    functions (e.g. ``fn.relu``) become parameterless layers. ``params`` and
    ``state`` hold one entry per child (``{}`` for a child with none).
    ``apply(params, state, x, *, key=None, train=False, **kwargs)`` passes each
    keyword in ``kwargs`` to the children that take it (see the module docstring).

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> net = fn.Sequential(fn.Dense(4), fn.LSTM(3))
        >>> _, params, state = net.init(jax.random.key(0), (2, 5, 6))
        >>> mask = fn.sequence_mask(jnp.array([5, 2]), 5)  # reaches the LSTM only
        >>> net.apply(params, state, jnp.ones((2, 5, 6)), mask=mask)[0].shape
        (2, 3)
    """
    if layers and named:
        raise ValueError("Sequential takes either positional layers or named layers, not both")
    items = named.items() if named else ((str(i), layer) for i, layer in enumerate(layers))
    children = tuple((name, _as_layer(layer)) for name, layer in items)
    inner = [child for _, child in children]

    def init(key, input_shape):
        shape, params, state = tuple(input_shape), {}, {}
        for (name, child), child_key in zip(children, _split(key, len(children))):
            with error_path(f'Sequential["{name}"]'):
                shape, params[name], state[name] = child.init(child_key, shape)
        return shape, params, state

    def apply(params, state, x, *, key=None, train=False, **kwargs):
        shares = share_keywords("Sequential", inner, kwargs)
        new_state = {}
        for (name, child), child_key, extra in zip(children, _split(key, len(children)), shares):
            with error_path(f'Sequential["{name}"]'):
                x, new_state[name] = child.apply(
                    params[name], state[name], x, key=child_key, train=train, **extra
                )
        return x, new_state

    return make_layer(
        "Sequential", init, apply, children, child_input=chained, accepts=any_accepts(inner)
    )


def Residual(layer: Layer | Callable) -> Layer:
    """A skip connection, ``y = x + layer(x)`` (He et al. 2016).

    The inner layer must keep the shape. Its params and state are used as
    they are, with no extra nesting. Per-call keywords go to the inner layer.
    """
    inner = _as_layer(layer)

    def init(key, input_shape):
        with error_path("Residual"):
            shape, params, state = inner.init(key, input_shape)
            if tuple(shape) != tuple(input_shape):
                raise ValueError(
                    f"{layer_name(inner)} maps {tuple(input_shape)} to {tuple(shape)}; "
                    "a residual branch must keep the shape"
                )
        return shape, params, state

    def apply(params, state, x, *, key=None, train=False, **kwargs):
        (extra,) = share_keywords("Residual", [inner], kwargs)
        with error_path("Residual"):
            y, state = inner.apply(params, state, x, key=key, train=train, **extra)
        return x + y, state

    return make_layer("Residual", init, apply, (("", inner),), accepts=inner.accepts)


def Parallel(*layers: Layer | Callable) -> Layer:
    """Every layer applied to the same input; the output is the tuple of results.

    Children are keyed ``"0"``, ``"1"``, … in ``params`` and ``state``.
    Per-call keywords go to every child that takes them.
    """
    children = tuple((str(i), _as_layer(layer)) for i, layer in enumerate(layers))
    inner = [child for _, child in children]

    def init(key, input_shape):
        shapes, params, state = [], {}, {}
        for (name, child), child_key in zip(children, _split(key, len(children))):
            with error_path(f'Parallel["{name}"]'):
                shape, params[name], state[name] = child.init(child_key, input_shape)
            shapes.append(shape)
        return tuple(shapes), params, state

    def apply(params, state, x, *, key=None, train=False, **kwargs):
        shares = share_keywords("Parallel", inner, kwargs)
        outputs, new_state = [], {}
        for (name, child), child_key, extra in zip(children, _split(key, len(children)), shares):
            with error_path(f'Parallel["{name}"]'):
                y, new_state[name] = child.apply(
                    params[name], state[name], x, key=child_key, train=train, **extra
                )
            outputs.append(y)
        return tuple(outputs), new_state

    return make_layer("Parallel", init, apply, children, accepts=any_accepts(inner))
