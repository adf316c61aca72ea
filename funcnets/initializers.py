"""Parameter initializers, shaped like ``jax.nn.initializers``.

An initializer is a function ``init(key, shape, dtype=jnp.float32) -> array``.
``zeros`` and ``ones`` are initializers; every other name is a factory that
returns one (``glorot_uniform()``, ``normal(0.1)``, …), so layers take them as
``w_init=fn.initializers.he_normal()``. Each prints as the expression that made
it (``zeros``, ``normal(stddev=0.1)``), so layer signatures read well in ``help()``.

Fans: a dense kernel ``(in, out)`` has ``fan_in = in`` and ``fan_out = out``; a
convolution kernel ``(*kernel, in, out)`` (HWIO) counts its receptive field,
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``; a 1-D shape
``(n,)`` has ``fan_in = fan_out = n``.

The variance-scaling initializers draw from a uniform ``U[-limit, limit)`` with
``limit = sqrt(3 * variance)`` or from a plain (untruncated) Gaussian with that
variance, as in the original papers and PyTorch; ``jax.nn.initializers`` and Keras
use a truncated normal rescaled to the same variance for the ``*_normal`` ones.

>>> import jax
>>> from funcnets import initializers
>>> initializers.he_normal()(jax.random.key(0), (784, 512)).shape
(784, 512)
>>> initializers.normal(0.1), initializers.zeros
(normal(stddev=0.1), zeros)
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

__all__ = [
    "Initializer",
    "zeros",
    "ones",
    "constant",
    "normal",
    "uniform",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
]


@runtime_checkable
class Initializer(Protocol):
    """An init function: ``(key, shape, dtype=jnp.float32) -> array`` of that shape and dtype."""

    def __call__(
        self, key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32
    ) -> jax.Array: ...


class _Named:
    """An init function that prints as the expression that made it, e.g. ``normal(stddev=0.01)``.

    So that a layer's defaults read well in ``help(fn.Dense)``: ``w_init=lecun_normal()``.
    """

    __wrapped__: Callable[..., jax.Array]  # set by functools.update_wrapper

    def __init__(self, init: Callable[..., jax.Array], text: str) -> None:
        functools.update_wrapper(self, init)
        self._text = text

    def __call__(
        self, key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32
    ) -> jax.Array:
        return self.__wrapped__(key, shape, dtype)

    def __repr__(self) -> str:
        return self._text


def _named(init: Callable[..., jax.Array]) -> Initializer:
    """Decorates an init function so that it prints as its name."""
    return _Named(init, init.__name__)


def _factory(make: Callable[..., Callable[..., jax.Array]]) -> Callable[..., Initializer]:
    """Decorates a factory so that its init functions print as the call, defaults filled in."""
    signature = inspect.signature(make)

    @functools.wraps(make)
    def factory(*args: object, **kwargs: object) -> Initializer:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = ", ".join(f"{name}={value!r}" for name, value in bound.arguments.items())
        return _Named(make(*args, **kwargs), f"{make.__name__}({arguments})")

    return factory


@_named
def zeros(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
    """All zeros (``key`` is ignored).

    >>> zeros(jax.random.key(0), (2,))
    Array([0., 0.], dtype=float32)
    """
    del key
    return jnp.zeros(shape, dtype)


@_named
def ones(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
    """All ones (``key`` is ignored).

    >>> ones(jax.random.key(0), (2,))
    Array([1., 1.], dtype=float32)
    """
    del key
    return jnp.ones(shape, dtype)


@_factory
def constant(value: float) -> Initializer:
    """Every element equal to ``value``.

    >>> constant(0.5)(jax.random.key(0), (2,))
    Array([0.5, 0.5], dtype=float32)
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        del key
        return jnp.full(shape, value, dtype)

    return init


@_factory
def normal(stddev: float = 1e-2) -> Initializer:
    """Gaussian ``N(0, stddev²)`` (as ``jax.nn.initializers.normal``).

    >>> normal(0.1)(jax.random.key(0), (3, 4)).shape
    (3, 4)
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        return jax.random.normal(key, shape, dtype) * jnp.asarray(stddev, dtype)

    return init


@_factory
def uniform(scale: float = 1e-2) -> Initializer:
    """Uniform on ``[0, scale)`` (as ``jax.nn.initializers.uniform``; not centred on 0).

    >>> bool(uniform(1.0)(jax.random.key(0), (100,)).min() >= 0)
    True
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype) * jnp.asarray(scale, dtype)

    return init


def _fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a ``(n,)``, ``(in, out)`` or ``(*kernel, in, out)`` kernel."""
    shape = tuple(shape)
    if not shape:
        raise ValueError("initializers: cannot compute the fans of a 0-d (scalar) shape ()")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _variance_scaling(scale: float, fan: str, distribution: str) -> Initializer:
    """Zero-mean draws of variance ``scale / n``, ``n`` being ``fan_in`` or the mean fan."""

    def init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        fan_in, fan_out = _fans(shape)
        n = fan_in if fan == "fan_in" else (fan_in + fan_out) / 2
        variance = scale / max(n, 1)  # an empty shape (a 0 fan) gives an empty array
        if distribution == "uniform":
            limit = jnp.asarray(math.sqrt(3 * variance), dtype)
            return jax.random.uniform(key, shape, dtype, -1.0, 1.0) * limit
        return jax.random.normal(key, shape, dtype) * jnp.asarray(math.sqrt(variance), dtype)

    return init


@_factory
def glorot_uniform() -> Initializer:
    """Glorot/Xavier uniform (Glorot & Bengio, 2010): ``U[-l, l)``.

    ``l = sqrt(6 / (fan_in + fan_out))``, so the variance is ``2 / (fan_in + fan_out)``.

    >>> glorot_uniform()(jax.random.key(0), (3, 3, 16, 32)).shape
    (3, 3, 16, 32)
    """
    return _variance_scaling(1.0, "fan_avg", "uniform")


@_factory
def glorot_normal() -> Initializer:
    """Glorot/Xavier normal: plain Gaussian ``N(0, 2 / (fan_in + fan_out))`` (not truncated).

    >>> glorot_normal()(jax.random.key(0), (4, 5)).shape
    (4, 5)
    """
    return _variance_scaling(1.0, "fan_avg", "normal")


@_factory
def he_uniform() -> Initializer:
    """He/Kaiming uniform (He et al., 2015): ``U[-l, l)``, ``l = sqrt(6 / fan_in)``.

    The variance is ``2 / fan_in``, suited to ReLU networks.

    >>> he_uniform()(jax.random.key(0), (4, 5)).shape
    (4, 5)
    """
    return _variance_scaling(2.0, "fan_in", "uniform")


@_factory
def he_normal() -> Initializer:
    """He/Kaiming normal: plain Gaussian ``N(0, 2 / fan_in)`` (not truncated).

    >>> he_normal()(jax.random.key(0), (4, 5)).shape
    (4, 5)
    """
    return _variance_scaling(2.0, "fan_in", "normal")


@_factory
def lecun_uniform() -> Initializer:
    """LeCun uniform (LeCun et al., 1998): ``U[-l, l)``, ``l = sqrt(3 / fan_in)``.

    The variance is ``1 / fan_in``, suited to SELU and tanh networks.

    >>> lecun_uniform()(jax.random.key(0), (4, 5)).shape
    (4, 5)
    """
    return _variance_scaling(1.0, "fan_in", "uniform")


@_factory
def lecun_normal() -> Initializer:
    """LeCun normal: plain Gaussian ``N(0, 1 / fan_in)`` (not truncated).

    >>> lecun_normal()(jax.random.key(0), (4, 5)).shape
    (4, 5)
    """
    return _variance_scaling(1.0, "fan_in", "normal")


@_factory
def orthogonal(scale: float = 1.0) -> Initializer:
    """Orthogonal (Saxe et al., 2014), times ``scale``.

    The array, viewed as the matrix ``(prod(shape[:-1]), shape[-1])``, has
    orthonormal columns if it is tall or square and orthonormal rows if it is
    wide. Built from the QR decomposition of a Gaussian matrix, with the signs
    of ``R``'s diagonal folded into ``Q`` so that ``Q`` is uniformly (Haar)
    distributed. Needs at least two dimensions.

    >>> w = orthogonal()(jax.random.key(0), (4, 4))
    >>> bool(jnp.allclose(w.T @ w, jnp.eye(4), atol=1e-5))
    True
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"orthogonal: needs a shape of at least 2 dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        compute_dtype = jnp.promote_types(dtype, jnp.float32)  # QR wants float32 or wider
        gaussian = jax.random.normal(key, shape, compute_dtype).reshape(rows, cols)
        tall = gaussian if rows >= cols else gaussian.T
        q, r = jnp.linalg.qr(tall)
        q = q * jnp.where(jnp.diagonal(r) < 0, -1, 1).astype(compute_dtype)
        matrix = q if rows >= cols else q.T
        return (scale * matrix).reshape(shape).astype(dtype)

    return init
