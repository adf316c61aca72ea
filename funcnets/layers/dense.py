"""Fully connected layers: `Dense` (an affine map) and `Maxout` (a max of affine maps)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from funcnets import initializers
from funcnets.activations import maxout
from funcnets.initializers import Initializer
from funcnets.layers.base import Layer, check_min_rank, make_layer, shape_error
from funcnets.layers.checks import positive_int


def _affine_init(name: str, width: int, use_bias: bool, w_init: Initializer, b_init: Initializer):
    """The init function of ``y = x @ w + b`` with ``w`` of shape ``(in, width)``."""

    def init(key, input_shape):
        check_min_rank(name, input_shape, 2, "(batch, ..., features)")
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (input_shape[-1], width))}
        if use_bias:
            params["b"] = b_init(b_key, (width,))
        return (*input_shape[:-1], width), params, {}

    return init


def _affine(name: str, params: dict, x: jax.Array) -> jax.Array:
    """``x @ w + b`` over the last axis, checking ``x``'s feature count first."""
    w = params["w"]
    if x.shape[-1] != w.shape[0]:
        raise shape_error(name, f"(..., {w.shape[0]})", x.shape)
    y = jnp.matmul(x, w)
    return y + params["b"] if "b" in params else y


def Dense(
    features: int,
    use_bias: bool = True,
    w_init: Initializer = initializers.lecun_normal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """A fully connected layer, ``y = x @ w + b`` over the last axis.

    Params: ``w`` (in, features), ``b`` (features,). Input (batch, ..., in),
    output (batch, ..., features). PyTorch's ``nn.Linear.weight`` is ``w.T``.

    Example:
        >>> import jax, funcnets as fn
        >>> _, params, _ = fn.Dense(3).init(jax.random.key(0), (8, 5))
        >>> jax.tree.map(jax.numpy.shape, params)
        {'b': (3,), 'w': (5, 3)}
    """
    features = positive_int("Dense", "features", features)

    def apply(params, state, x, *, key=None, train=False):
        return _affine("Dense", params, x), state

    return make_layer("Dense", _affine_init("Dense", features, use_bias, w_init, b_init), apply)


def Maxout(
    features: int,
    pieces: int,
    w_init: Initializer = initializers.lecun_normal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """A maxout layer (Goodfellow et al. 2013): the max of ``pieces`` affine maps per unit.

    ``z = x @ w + b`` has ``features * pieces`` units; consecutive groups of
    ``pieces`` units are maxed, ``y[..., j] = max_k z[..., j * pieces + k]``.
    Params: ``w`` (in, features * pieces), ``b`` (features * pieces,).
    Input (batch, ..., in), output (batch, ..., features).

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> layer = fn.Maxout(2, pieces=3)
        >>> _, params, state = layer.init(jax.random.key(0), (4, 5))
        >>> params["w"].shape, layer.apply(params, state, jnp.ones((4, 5)))[0].shape
        ((5, 6), (4, 2))
    """
    features = positive_int("Maxout", "features", features)
    pieces = positive_int("Maxout", "pieces", pieces)

    def apply(params, state, x, *, key=None, train=False):
        return maxout(_affine("Maxout", params, x), pieces), state

    affine_init = _affine_init("Maxout", features * pieces, True, w_init, b_init)

    def init(key, input_shape):
        shape, params, state = affine_init(key, input_shape)
        return (*shape[:-1], features), params, state

    return make_layer("Maxout", init, apply)
