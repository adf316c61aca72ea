"""The layer protocol: a layer is a pair of pure functions.

``init(key, input_shape) -> (output_shape, params, state)`` builds the
parameters analytically from the input shape (the batch dimension included);
``apply(params, state, x, *, key=None, train=False) -> (y, new_state)`` runs
the layer. ``params`` (trainable) and ``state`` (non-trainable, e.g. running
statistics) are nested dicts of arrays, ``{}`` for a layer with none.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

import jax

Shape = tuple[int, ...]
Params = dict[str, Any]
State = dict[str, Any]
_L = TypeVar("_L", bound="Layer")


def same_input(input_shape: Any, previous: Any) -> Any:
    """`Layer.child_input` of a layer whose children all see its own input (the default)."""
    return input_shape


def chained(input_shape: Any, previous: Any) -> Any:
    """`Layer.child_input` of a layer whose children each see the previous one's output."""
    return previous


def keywords_of(apply: Callable) -> Callable[[str], bool]:
    """Whether ``apply`` takes a keyword: a named keyword-only parameter, or any via ``**kwargs``.

    Read from ``inspect.signature``, which sees through ``jax.jit`` and
    ``functools.partial``; an apply with no signature takes no extra keywords.
    """
    try:
        parameters = inspect.signature(apply).parameters.values()
    except (TypeError, ValueError):
        return lambda keyword: False
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return lambda keyword: True
    return frozenset(p.name for p in parameters if p.kind is p.KEYWORD_ONLY).__contains__


class _Functions(NamedTuple):
    init: Callable[..., tuple[Shape, Params, State]]
    apply: Callable[..., tuple[Any, State]]


class Layer(_Functions):
    """A layer: ``init(key, input_shape)`` and ``apply(params, state, x, *, key, train)``.

    A `Layer` is a two-field named tuple, so ``init, apply = layer`` and
    ``Layer(init, apply)`` work. It also carries a description of itself,
    given as keywords to the constructor and kept by ``_replace``, so wrapping
    a function keeps it: ``net._replace(init=jax.jit(net.init, static_argnums=1))``
    still has its name and children for `fn.summary`, errors and diagnostics.
    (Jit a whole net's init, not a child's: a jitted init returns its output
    shape as arrays, which the parent's init cannot build on.)

    Attributes:
        name: the layer type shown in summaries and errors, e.g. ``"Dense"``
            (default: ``init``'s qualified name).
        children: ``(key, layer)`` pairs of a combinator's sub-layers, ``()``
            for a primitive layer.
        child_input: ``(input_shape, previous_output_shape) -> shape``, the
            input shape of each child in turn given the layer's input shape
            and the previous child's output shape (the layer's input shape for
            the first child): `same_input` (the default) or `chained`.
        accepts: ``(keyword) -> bool``, whether ``apply`` takes a per-call
            keyword such as ``mask``; read from ``apply``'s signature unless
            given. Combinators pass a keyword on to the children that accept it.

    Example:
        >>> import jax, funcnets as fn
        >>> net = fn.Sequential(fn.Dense(3), fn.relu)
        >>> out_shape, params, state = net.init(jax.random.key(0), (2, 4))
        >>> out_shape
        (2, 3)
        >>> y, state = net.apply(params, state, jax.numpy.ones((2, 4)))
        >>> jitted = net._replace(init=jax.jit(net.init, static_argnums=1))
        >>> jitted.name, [key for key, _ in jitted.children]
        ('Sequential', ['0', '1'])
    """

    name: str
    children: tuple[tuple[str, Layer], ...]
    child_input: Callable[[Any, Any], Any]
    accepts: Callable[[str], bool]

    def __new__(
        cls,
        init: Callable[..., tuple[Shape, Params, State]],
        apply: Callable[..., tuple[Any, State]],
        *,
        name: str | None = None,
        children: Sequence[tuple[str, Layer]] = (),
        child_input: Callable[[Any, Any], Any] = same_input,
        accepts: Callable[[str], bool] | None = None,
    ) -> Layer:
        layer = super().__new__(cls, init, apply)
        layer.name = name if name else getattr(init, "__qualname__", "Layer")
        layer.children = tuple(children)
        layer.child_input = child_input
        layer.accepts = accepts or keywords_of(apply)
        return layer

    # mypy reports any override of a NamedTuple's synthesized _make as incompatible.
    @classmethod
    def _make(cls: type[_L], iterable: Iterable[Any]) -> _L:  # type: ignore[override]
        return cls(*iterable)

    def _replace(self, **functions: Callable) -> Layer:
        """A copy with ``init`` and/or ``apply`` replaced (e.g. jitted); the description is kept."""
        return Layer(**{**self._asdict(), **functions}, **vars(self))


def make_layer(
    name: str,
    init: Callable[..., tuple[Shape, Params, State]],
    apply: Callable[..., tuple[Any, State]],
    children: Sequence[tuple[str, Layer]] = (),
    *,
    child_input: Callable[[Any, Any], Any] = same_input,
    accepts: Callable[[str], bool] | None = None,
) -> Layer:
    """Builds a named `Layer`: ``Layer(init, apply, name=name, children=children, ...)``.

    Args:
        name: the layer type shown in summaries and errors, e.g. ``"Dense"``.
        init: the layer's init function.
        apply: the layer's apply function.
        children: ``(key, layer)`` pairs of a combinator's sub-layers.
        child_input: `same_input` when every child sees the layer's input,
            `chained` when each sees the previous child's output (Sequential).
        accepts: which per-call keywords ``apply`` takes; default: its signature's.
    """
    return Layer(
        init, apply, name=name, children=children, child_input=child_input, accepts=accepts
    )


def layer_name(layer: Layer) -> str:
    """The type name of a layer (its init function's name for hand-made layers)."""
    return layer.name


def layer_children(layer: Layer) -> tuple[tuple[str, Layer], ...]:
    """The ``(key, layer)`` pairs inside a combinator, ``()`` for a primitive layer."""
    return layer.children


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
