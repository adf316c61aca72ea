"""Convolutions, channels-last: `Conv1D` (NWC), `Conv2D` (NHWC), `ConvTranspose2D`.

Kernels are laid out ``(*kernel, in / groups, out)`` (WIO, HWIO). To load
PyTorch weights, transpose ``(out, in, *kernel)`` to ``(*kernel, in, out)``.
Like PyTorch (and unlike signal processing), a convolution here is a
cross-correlation: the kernel is not flipped.

Inputs must be floating-point (an integer input raises a ValueError naming
the layer, as in PyTorch). Input and kernel are cast to their promoted dtype
(jnp's rules) on every code path: bfloat16 with a bfloat16 kernel computes in
bfloat16, bfloat16 with a float32 kernel in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from funcnets import initializers
from funcnets.initializers import Initializer
from funcnets.layers import algorithms
from funcnets.layers.base import Layer, as_tuple, check_rank, make_layer, shape_error
from funcnets.layers.checks import check_padding, positive_int
from funcnets.layers.padding import Padding, explicit_padding, window_output_size

_NAMES = {1: "(batch, width, channels)", 2: "(batch, height, width, channels)"}


def _conv(
    name: str,
    ndim: int,
    features: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int],
    padding: Padding,
    dilation: int | Sequence[int],
    groups: int,
    use_bias: bool,
    w_init: Initializer,
    b_init: Initializer,
) -> Layer:
    """A ``ndim``-dimensional grouped, strided, dilated convolution layer."""
    features = positive_int(name, "features", features)
    kernel = as_tuple(kernel_size, ndim, f"{name} kernel_size")
    strides = as_tuple(stride, ndim, f"{name} stride")
    dilations = as_tuple(dilation, ndim, f"{name} dilation")
    check_padding(name, padding, ndim)
    groups = positive_int(name, "groups", groups)
    if features % groups:
        raise ValueError(f"{name}: features ({features}) must be a multiple of groups ({groups})")

    def pads_for(spatial):
        return explicit_padding(padding, spatial, kernel, strides, dilations)

    def init(key, input_shape):
        check_rank(name, input_shape, ndim + 2, _NAMES[ndim])
        channels = input_shape[-1]
        if channels % groups:
            raise shape_error(name, f"channels divisible by groups={groups}", input_shape)
        spatial = input_shape[1:-1]
        out_spatial = tuple(
            window_output_size(n, k, s, p, d)
            for n, k, s, p, d in zip(spatial, kernel, strides, pads_for(spatial), dilations)
        )
        if min(out_spatial) < 1:
            raise shape_error(name, f"spatial size >= the dilated kernel {kernel}", input_shape)
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (*kernel, channels // groups, features))}
        if use_bias:
            params["b"] = b_init(b_key, (features,))
        return (input_shape[0], *out_spatial, features), params, {}

    def apply(params, state, x, *, key=None, train=False):
        w = params["w"]
        if x.ndim != ndim + 2 or x.shape[-1] != w.shape[-2] * groups:
            raise shape_error(name, f"{_NAMES[ndim]} with {w.shape[-2] * groups} channels", x.shape)
        x, w = _common_dtype(name, x, w)
        y = algorithms.convolve(x, w, strides, pads_for(x.shape[1:-1]), dilations, groups)
        return (y + params["b"] if use_bias else y), state

    return make_layer(name, init, apply)


def _common_dtype(name: str, x: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x`` and ``w`` cast to their promoted dtype (jnp's rules), on every code path.

    So bfloat16 inputs with bfloat16 kernels compute in bfloat16, and with
    float32 kernels in float32, whichever path runs. Integer inputs are rejected,
    as in PyTorch (the patches algorithm would promote them, XLA's would raise).
    """
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise ValueError(
            f"{name}: expected a floating-point input, got dtype {x.dtype}; "
            f"cast it first, e.g. x.astype(jnp.float32)"
        )
    dtype = jnp.result_type(x, w)
    return x.astype(dtype), w.astype(dtype)


def Conv1D(
    features: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    use_bias: bool = True,
    w_init: Initializer = initializers.lecun_normal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """A 1-D convolution over (batch, width, channels) inputs.

    ``y[n, i, o] = b[o] + sum_{k, c} x[n, i*s + k*d - pad_lo, g(o) + c] * w[k, c, o]``,
    with stride ``s``, dilation ``d``, and ``g(o)`` the first input channel of
    output channel ``o``'s group.
    Params: ``w`` (kernel, in / groups, features), ``b`` (features,).
    """
    return _conv(
        "Conv1D",
        1,
        features,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        use_bias,
        w_init,
        b_init,
    )


def Conv2D(
    features: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    use_bias: bool = True,
    w_init: Initializer = initializers.lecun_normal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """A 2-D convolution over (batch, height, width, channels) inputs.

    ``y[n, i, j, o] = b[o] + sum_{p, q, c} x[n, i*sh + p*dh - top, j*sw + q*dw - left, g(o) + c]
    * w[p, q, c, o]``, with ``g(o)`` the first input channel of ``o``'s group.
    Params: ``w`` (kh, kw, in / groups, features), ``b`` (features,).

    Example:
        >>> import jax, funcnets as fn
        >>> shape, params, _ = fn.Conv2D(8, 3, stride=2).init(jax.random.key(0), (1, 28, 28, 1))
        >>> shape, params["w"].shape
        ((1, 14, 14, 8), (3, 3, 1, 8))
    """
    return _conv(
        "Conv2D",
        2,
        features,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        use_bias,
        w_init,
        b_init,
    )


def _transpose_padding(padding: Padding, kernel: tuple[int, ...], strides: tuple[int, ...]):
    """The ``(low, high)`` crop of a transposed convolution's full output, per axis.

    ``"SAME"`` crops ``k - s`` in all, ``max(k - s, 0) // 2`` of it low, so the
    output is ``size * s`` and the layer is the adjoint of a "SAME" ``Conv2D``
    (when ``k < s`` the negative crop pads the high side); ``"VALID"`` crops
    nothing; ints and pairs are taken as given, like PyTorch's ``padding``.
    """
    if isinstance(padding, str) and padding.upper() == "SAME":
        return tuple(
            (max(k - s, 0) // 2, k - s - max(k - s, 0) // 2) for k, s in zip(kernel, strides)
        )
    return explicit_padding(padding, (0,) * len(kernel), kernel, strides)


def ConvTranspose2D(
    features: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    use_bias: bool = True,
    w_init: Initializer = initializers.lecun_normal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """A transposed ("fractionally strided") 2-D convolution, NHWC.

    Each input pixel scatters a copy of the kernel scaled by its value:
    ``full[n, i*sh + p, j*sw + q, o] += x[n, i, j, c] * w[p, q, c, o]``, and the
    output is ``full`` cropped by ``padding`` (``(low, high)`` per axis), so
    ``out = (in - 1) * s + k - low - high``. With ``"SAME"`` the output is
    ``in * s``, and the layer is exactly the adjoint (the gradient) of a
    ``Conv2D`` with the same stride and ``"SAME"`` padding on that output size.
    This is PyTorch's ``ConvTranspose2d``: its ``weight`` (in, out, kh, kw) is
    ``w.transpose(2, 3, 0, 1)`` here, no flip.

    Params: ``w`` (kh, kw, in, features), ``b`` (features,).
    """
    features = positive_int("ConvTranspose2D", "features", features)
    kernel = as_tuple(kernel_size, 2, "ConvTranspose2D kernel_size")
    strides = as_tuple(stride, 2, "ConvTranspose2D stride")
    check_padding("ConvTranspose2D", padding, 2)
    crops = _transpose_padding(padding, kernel, strides)

    def init(key, input_shape):
        check_rank("ConvTranspose2D", input_shape, 4, _NAMES[2])
        out_spatial = tuple(
            (n - 1) * s + k - lo - hi
            for n, k, s, (lo, hi) in zip(input_shape[1:3], kernel, strides, crops)
        )
        if min(out_spatial) < 1:
            raise ValueError(
                f"ConvTranspose2D: input {tuple(input_shape)} gives output size {out_spatial} "
                f"with kernel {kernel}, stride {strides}, padding {padding!r}"
            )
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (*kernel, input_shape[-1], features))}
        if use_bias:
            params["b"] = b_init(b_key, (features,))
        return (input_shape[0], *out_spatial, features), params, {}

    def apply(params, state, x, *, key=None, train=False):
        w = params["w"]
        if x.ndim != 4 or x.shape[-1] != w.shape[-2]:
            raise shape_error(
                "ConvTranspose2D", f"{_NAMES[2]} with {w.shape[-2]} channels", x.shape
            )
        x, w = _common_dtype("ConvTranspose2D", x, w)
        # The scatter above equals a stride-1 correlation of the stride-dilated
        # input with the spatially flipped kernel, padded by k - 1 - crop.
        y = lax.conv_general_dilated(
            x,
            jnp.flip(w, axis=(0, 1)),
            window_strides=(1, 1),
            padding=[(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel, crops)],
            lhs_dilation=strides,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return (y + params["b"] if use_bias else y), state

    return make_layer("ConvTranspose2D", init, apply)
