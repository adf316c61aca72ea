"""Pooling: `MaxPool2D`, `AvgPool2D` (NHWC windows) and `GlobalAvgPool`.

How a window is reduced (a reshape when the windows tile the input, else XLA's
``reduce_window``) and where max-pooling's gradient goes is decided in
`funcnets.layers.algorithms` (`max_pool`, `avg_pool`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax

from funcnets.layers import algorithms
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
Pool = Callable[[jax.Array, tuple, tuple, tuple], jax.Array]


def _pool2d(
    name: str,
    window: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: Padding,
    pool: Pool,
) -> Layer:
    """A 2-D pooling layer; ``pool(x, windows, strides, pads)`` reduces the windows of ``x``."""
    windows = as_tuple(window, 2, f"{name} window")
    strides = windows if stride is None else as_tuple(stride, 2, f"{name} stride")
    check_padding(name, padding, 2)

    def init(key, input_shape):
        check_rank(name, input_shape, 4, _NHWC)
        spatial = input_shape[1:3]
        pads = explicit_padding(padding, spatial, windows, strides)
        out = tuple(map(window_output_size, spatial, windows, strides, pads))
        if min(out) < 1:
            raise shape_error(name, f"spatial size >= the window {windows}", input_shape)
        return (input_shape[0], *out, input_shape[3]), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        if x.ndim != 4:
            raise shape_error(name, _NHWC, x.shape)
        pads = explicit_padding(padding, x.shape[1:3], windows, strides)
        return pool(x, windows, strides, pads), state

    return make_layer(name, init, apply)


def MaxPool2D(
    window: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
) -> Layer:
    """Max over each ``window`` of an NHWC input; ``stride`` defaults to ``window``.

    Padded cells count as ``-inf`` (they never win). The gradient goes to the
    first maximum of each window, as in PyTorch. No params, no state.
    """
    return _pool2d("MaxPool2D", window, stride, padding, algorithms.max_pool)


def AvgPool2D(
    window: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
) -> Layer:
    """Mean over each ``window`` of an NHWC input; ``stride`` defaults to ``window``.

    Padded cells count as zeros in the mean (the divisor is always the window
    size), as in Flax and PyTorch's default. No params, no state.
    """
    return _pool2d("AvgPool2D", window, stride, padding, algorithms.avg_pool)


def GlobalAvgPool() -> Layer:
    """Mean over every spatial axis: (batch, *spatial, channels) -> (batch, channels)."""

    def init(key, input_shape):
        check_min_rank("GlobalAvgPool", input_shape, 3, "(batch, *spatial, channels)")
        return (input_shape[0], input_shape[-1]), {}, {}

    def apply(params, state, x, *, key=None, train=False):
        return x.mean(axis=tuple(range(1, x.ndim - 1))), state

    return make_layer("GlobalAvgPool", init, apply)
