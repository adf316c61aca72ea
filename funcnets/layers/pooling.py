"""Pooling: `MaxPool2D`, `AvgPool2D` (NHWC windows) and `GlobalAvgPool`.

When the windows tile the input exactly (stride equal to window, no padding)
pooling is a reshape and a reduction, which XLA compiles (with its gradient)
much faster on CPU than the general ``reduce_window``; the result is the same.

Max-pooling's gradient goes to the first maximum of each window (as XLA's
``select_and_scatter`` and PyTorch route it), located once, in the forward
pass (`_tiled_max`). The gradient of a plain ``max`` would instead compare the
input with the maximum again in the backward pass, and XLA may recompute that
input there (fused into another kernel) with different rounding: the
comparison then finds no maximum and the window's gradient is lost. This was
seen on CPU for BatchNorm + max-pooling of a 7x7 map with 128 channels,
where 12-34% of the convolution's weight gradients were wrong under ``jit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcnets.layers.base import (
    Layer,
    as_tuple,
    check_min_rank,
    check_rank,
    make_layer,
    shape_error,
)
from funcnets.layers.checks import check_padding
from funcnets.layers.padding import Padding, explicit_padding, window_output_size

_NHWC = "(batch, height, width, channels)"


def _pool2d(
    name: str,
    window: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: Padding,
    tiled: Callable[[jax.Array], jax.Array],
    general: Callable[[jax.Array, tuple, tuple, tuple], jax.Array],
) -> Layer:
    """A 2-D pooling layer from a tiled reduction and a general windowed one.

    ``tiled(x6)`` reduces a ``(n, oh, kh, ow, kw, c)`` view over axes 2 and 4;
    ``general(x, window, strides, pads)`` pools ``x`` with explicit settings.
    """
    windows = as_tuple(window, 2, f"{name} window")
    strides = windows if stride is None else as_tuple(stride, 2, f"{name} stride")
    check_padding(name, padding, 2)

    def out_size(spatial, pads):
        return tuple(map(window_output_size, spatial, windows, strides, pads))

    def init(key, input_shape):
        check_rank(name, input_shape, 4, _NHWC)
        spatial = input_shape[1:3]
        out = out_size(spatial, explicit_padding(padding, spatial, windows, strides))
        if min(out) < 1:
            raise shape_error(name, f"spatial size >= the window {windows}", input_shape)
        return (input_shape[0], *out, input_shape[3]), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        if x.ndim != 4:
            raise shape_error(name, _NHWC, x.shape)
        pads = explicit_padding(padding, x.shape[1:3], windows, strides)
        if strides == windows and not any(lo or hi for lo, hi in pads):
            (oh, ow), (kh, kw) = out_size(x.shape[1:3], pads), windows
            x6 = x[:, : oh * kh, : ow * kw].reshape(x.shape[0], oh, kh, ow, kw, x.shape[3])
            return tiled(x6), state
        return general(x, windows, strides, pads), state

    return make_layer(name, init, apply)


@jax.custom_vjp
def _tiled_max(x6: jax.Array) -> jax.Array:
    """The maximum over axes 2 and 4 of ``x6`` ``(n, oh, kh, ow, kw, c)``: ``(n, oh, ow, c)``."""
    return x6.max(axis=(2, 4))


def _tiled_max_forward(x6: jax.Array) -> tuple[jax.Array, tuple[jax.Array, tuple[int, ...]]]:
    n, oh, kh, ow, kw, c = x6.shape
    windows = x6.transpose(0, 1, 3, 5, 2, 4).reshape(n, oh, ow, c, kh * kw)
    first = jnp.argmax(windows, axis=-1)  # the first maximum, as select_and_scatter picks
    return jnp.take_along_axis(windows, first[..., None], axis=-1)[..., 0], (first, x6.shape)


def _tiled_max_backward(
    residuals: tuple[jax.Array, tuple[int, ...]], g: jax.Array
) -> tuple[jax.Array]:
    first, (n, oh, kh, ow, kw, c) = residuals
    hit = first[..., None] == jnp.arange(kh * kw)
    windows = jnp.where(hit, g[..., None], jnp.zeros((), g.dtype))
    return (windows.reshape(n, oh, ow, c, kh, kw).transpose(0, 1, 4, 2, 5, 3),)


_tiled_max.defvjp(_tiled_max_forward, _tiled_max_backward)


def _reduce_window(x, init_value, op, windows, strides, pads):
    # A concrete (numpy) init value lets jax pick reduce_window_max/sum, which
    # have gradients; a traced one would not.
    return lax.reduce_window(
        x, init_value, op, (1, *windows, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0))
    )


def MaxPool2D(
    window: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
) -> Layer:
    """Max over each ``window`` of an NHWC input; ``stride`` defaults to ``window``.

    Padded cells count as ``-inf`` (they never win). No params, no state.
    """

    def general(x, windows, strides, pads):
        return _reduce_window(x, np.array(-np.inf, x.dtype), lax.max, windows, strides, pads)

    return _pool2d("MaxPool2D", window, stride, padding, _tiled_max, general)


def AvgPool2D(
    window: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
) -> Layer:
    """Mean over each ``window`` of an NHWC input; ``stride`` defaults to ``window``.

    Padded cells count as zeros in the mean (the divisor is always the window
    size), as in Flax and PyTorch's default. No params, no state.
    """

    def general(x, windows, strides, pads):
        total = _reduce_window(x, np.array(0, x.dtype), lax.add, windows, strides, pads)
        return total / (windows[0] * windows[1])

    return _pool2d("AvgPool2D", window, stride, padding, lambda x6: x6.mean(axis=(2, 4)), general)


def GlobalAvgPool() -> Layer:
    """Mean over every spatial axis: (batch, *spatial, channels) -> (batch, channels)."""

    def init(key, input_shape):
        check_min_rank("GlobalAvgPool", input_shape, 3, "(batch, *spatial, channels)")
        return (input_shape[0], input_shape[-1]), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        return x.mean(axis=tuple(range(1, x.ndim - 1))), state

    return make_layer("GlobalAvgPool", init, apply)
