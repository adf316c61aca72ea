"""Combinators build layers out of layers: `Sequential`, `Residual`, `Parallel`, `Lambda`.

Each child gets its own random key, split deterministically from the one
the combinator receives (``jax.random.split``), or ``None`` when it gets
``None``. Errors from a child are re-raised with the child's path prepended,
e.g. ``Sequential["3"] Dense: expected input (..., 784), got (8, 3072)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer, layer_name, make_layer


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
    name = name or getattr(f, "__name__", "Lambda")

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
    """
    if layers and named:
        raise ValueError("Sequential takes either positional layers or named layers, not both")
    items = named.items() if named else ((str(i), layer) for i, layer in enumerate(layers))
    children = tuple((name, _as_layer(layer)) for name, layer in items)

    def init(key, input_shape):
        shape, params, state = tuple(input_shape), {}, {}
        for (name, child), child_key in zip(children, _split(key, len(children))):
            with error_path(f'Sequential["{name}"]'):
                shape, params[name], state[name] = child.init(child_key, shape)
        return shape, params, state

    def apply(params, state, x, *, key=None, train=False):
        new_state = {}
        for (name, child), child_key in zip(children, _split(key, len(children))):
            with error_path(f'Sequential["{name}"]'):
                x, new_state[name] = child.apply(
                    params[name], state[name], x, key=child_key, train=train
                )
        return x, new_state

    return make_layer("Sequential", init, apply, children, chained=True)


def Residual(layer: Layer | Callable) -> Layer:
    """A skip connection, ``y = x + layer(x)`` (He et al. 2016).

    The inner layer must keep the shape. Its params and state are used as
    they are, with no extra nesting.
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

    def apply(params, state, x, *, key=None, train=False):
        with error_path("Residual"):
            y, state = inner.apply(params, state, x, key=key, train=train)
        return x + y, state

    return make_layer("Residual", init, apply, (("", inner),))


def Parallel(*layers: Layer | Callable) -> Layer:
    """Every layer applied to the same input; the output is the tuple of results.

    Children are keyed ``"0"``, ``"1"``, … in ``params`` and ``state``.
    """
    children = tuple((str(i), _as_layer(layer)) for i, layer in enumerate(layers))

    def init(key, input_shape):
        shapes, params, state = [], {}, {}
        for (name, child), child_key in zip(children, _split(key, len(children))):
            with error_path(f'Parallel["{name}"]'):
                shape, params[name], state[name] = child.init(child_key, input_shape)
            shapes.append(shape)
        return tuple(shapes), params, state

    def apply(params, state, x, *, key=None, train=False):
        outputs, new_state = [], {}
        for (name, child), child_key in zip(children, _split(key, len(children))):
            with error_path(f'Parallel["{name}"]'):
                y, new_state[name] = child.apply(
                    params[name], state[name], x, key=child_key, train=train
                )
            outputs.append(y)
        return tuple(outputs), new_state

    return make_layer("Parallel", init, apply, children)
