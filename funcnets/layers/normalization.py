"""Normalization layers: `BatchNorm`, `LayerNorm`, `GroupNorm` (channels-last).

Each standardises ``x`` with a mean and a biased variance computed in two
passes (``mean((x - mean)**2)``, never ``E[x**2] - E[x]**2``), then applies a
learned per-channel affine map: ``y = (x - mean) / sqrt(var + eps) * scale + bias``.
Params: ``scale`` (channels,) starting at 1, ``bias`` (channels,) at 0.

Mixed precision: a bfloat16 or float16 input is normalised in float32 (its
statistics would lose most of their digits in 16 bits) and the result is
returned in the input's dtype; running statistics keep their float32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from funcnets.layers.base import Layer, check_min_rank, make_layer, shape_error
from funcnets.layers.checks import positive_int


def _affine_params(channels: int) -> dict[str, jax.Array]:
    return {
        "scale": jnp.ones((channels,), jnp.float32),
        "bias": jnp.zeros((channels,), jnp.float32),
    }


def _widened(x: jax.Array) -> tuple[jax.Array, jnp.dtype]:
    """``x`` in at least float32, and the dtype to return: ``x``'s own if it is a float."""
    wide = jnp.promote_types(x.dtype, jnp.float32)
    return x.astype(wide), x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else wide


def _moments(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Mean and biased variance over ``axes``, two-pass, keeping dims."""
    mean = x.mean(axis=axes, keepdims=True)
    return mean, jnp.square(x - mean).mean(axis=axes, keepdims=True)


def _check_channels(name: str, params: dict, x: jax.Array) -> None:
    channels = params["scale"].shape[0]
    if x.ndim < 2 or x.shape[-1] != channels:
        raise shape_error(name, f"(batch, ..., {channels})", x.shape)


def BatchNorm(momentum: float = 0.9, eps: float = 1e-5) -> Layer:
    """Batch normalisation (Ioffe & Szegedy 2015) over every axis but the last.

    ``train=True``: normalises with the batch's mean and biased variance and
    returns running statistics updated as ``new = momentum * old + (1 -
    momentum) * batch`` (momentum weighs the old value, as in Flax and Keras;
    PyTorch's ``momentum=0.1`` is our 0.9). ``train=False``: normalises with
    the running statistics and returns the state unchanged.

    Params: ``scale``, ``bias`` (channels,). State: ``mean`` (channels,)
    starting at 0, ``var`` (channels,) starting at 1.

    Training needs more than one value per channel (a batch of two examples,
    or one image of several pixels): a single value is its own mean, so the
    output would be the bias and the running variance would decay to 0.
    ``train=True`` on such an input raises a ValueError, as in PyTorch; the
    shapes are static, so it raises under ``jit`` too, when tracing.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> bn = fn.BatchNorm(momentum=0.5)
        >>> _, params, state = bn.init(jax.random.key(0), (4, 3))
        >>> y, state = bn.apply(params, state, jnp.arange(12.0).reshape(4, 3), train=True)
        >>> state["mean"]  # 0.5 * 0 + 0.5 * the batch mean
        Array([2.25, 2.75, 3.25], dtype=float32)
    """
    if not 0 <= momentum <= 1:
        raise ValueError(
            f"BatchNorm: momentum must be in [0, 1] (the weight on the old running "
            f"statistics), got {momentum!r}"
        )

    def init(key, input_shape):
        check_min_rank("BatchNorm", input_shape, 2, "(batch, ..., channels)")
        channels = input_shape[-1]
        state = {
            "mean": jnp.zeros((channels,), jnp.float32),
            "var": jnp.ones((channels,), jnp.float32),
        }
        return tuple(input_shape), _affine_params(channels), state

    def apply(params, state, x, *, key=None, train=False):
        _check_channels("BatchNorm", params, x)
        x, dtype = _widened(x)
        if train:
            if math.prod(x.shape[:-1]) < 2:
                raise ValueError(
                    f"BatchNorm: expected more than 1 value per channel when training, got "
                    f"input {x.shape}; use a larger batch, or train=False"
                )
            mean, var = _moments(x, tuple(range(x.ndim - 1)))
            mean, var = mean.reshape(-1), var.reshape(-1)
            batch = lax.stop_gradient((mean, var))
            state = {
                name: (momentum * state[name] + (1.0 - momentum) * new).astype(state[name].dtype)
                for name, new in zip(("mean", "var"), batch)
            }
        else:
            mean, var = state["mean"], state["var"]
        inv = lax.rsqrt(var + eps) * params["scale"]
        return ((x - mean) * inv + params["bias"]).astype(dtype), state

    return make_layer("BatchNorm", init, apply)


def LayerNorm(eps: float = 1e-5) -> Layer:
    """Layer normalisation (Ba et al. 2016): each example's last axis standardised.

    Statistics over the last axis only, the same in training and eval.
    Params: ``scale``, ``bias`` (features,). No state.
    """

    def init(key, input_shape):
        check_min_rank("LayerNorm", input_shape, 2, "(batch, ..., features)")
        return tuple(input_shape), _affine_params(input_shape[-1]), {}

    def apply(params, state, x, *, key=None, train=False):
        _check_channels("LayerNorm", params, x)
        x, dtype = _widened(x)
        mean, var = _moments(x, (-1,))
        y = (x - mean) * lax.rsqrt(var + eps) * params["scale"] + params["bias"]
        return y.astype(dtype), state

    return make_layer("LayerNorm", init, apply)


def GroupNorm(groups: int, eps: float = 1e-5) -> Layer:
    """Group normalisation (Wu & He 2018): channels split into ``groups`` groups.

    Each example's ``(*spatial, channels / groups)`` block of consecutive
    channels is standardised together; ``groups=1`` is LayerNorm over all
    non-batch axes, ``groups=channels`` is InstanceNorm. The same in training
    and eval. Params: ``scale``, ``bias`` (channels,). No state.
    """
    groups = positive_int("GroupNorm", "groups", groups)

    def init(key, input_shape):
        check_min_rank("GroupNorm", input_shape, 2, "(batch, ..., channels)")
        if input_shape[-1] % groups:
            raise shape_error("GroupNorm", f"channels divisible by groups={groups}", input_shape)
        return tuple(input_shape), _affine_params(input_shape[-1]), {}

    def apply(params, state, x, *, key=None, train=False):
        _check_channels("GroupNorm", params, x)
        x, dtype = _widened(x)
        grouped = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
        axes = (*range(1, x.ndim - 1), x.ndim)
        mean, var = _moments(grouped, axes)
        normed = ((grouped - mean) * lax.rsqrt(var + eps)).reshape(x.shape)
        return (normed * params["scale"] + params["bias"]).astype(dtype), state

    return make_layer("GroupNorm", init, apply)
