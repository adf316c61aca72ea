"""Which kernel computes a convolution or a pooling window: the algorithms and the rule.

`Conv1D`/`Conv2D` call `convolve`, `MaxPool2D`/`AvgPool2D` call `max_pool`/`avg_pool`;
the choice between algorithms is made here and nowhere else, from the shapes alone
(so it is deterministic for a given shape, and free: nothing is compiled to decide).

Convolution (`conv_algorithm`):

- ``"xla"``: `lax.conv_general_dilated`, XLA's own kernel (cuDNN on a GPU; on CPU,
  in jaxlib 0.10, YNNPACK when a channel count exceeds 16, else Eigen).
- ``"patches"`` (CPU, ungrouped): im2col. The ``prod(kernel) * in`` patch of every
  output position is gathered into a matrix, which one GEMM multiplies by the kernel
  reshaped to ``(prod(kernel) * in, out)`` (`conv_by_patches`).

The rule is a cost model. A CPU convolution kernel vectorises over input channels:
with ``in`` channels and ``L`` lanes per vector register (``VECTOR_BYTES`` / the
dtype's size: 16 float32 lanes in 512 bits), ``L / in - 1`` lanes idle per busy one
when ``in < L``. The patches GEMM vectorises over the patch instead, so its lanes are
full, but it first writes (and in the backward pass reads back and scatters) the patch
matrix: ``prod(kernel) * in`` elements per output position, the same for every output
channel, while the arithmetic grows with ``out``. Per element of the patch matrix,
XLA's kernel wastes the time of ``6 * out * (L / in - 1)`` FLOPs (forward and two
backward products, at ``1 / (1 + idle)`` of the rate) that patches do not; patches
pay the time of moving that element, measured as about ``6 * PATCH_COST`` FLOPs. So:

    patches  iff  groups == 1  and  out * (L / in - 1) >= PATCH_COST  (on CPU)

On a GPU or TPU the rule always gives ``"xla"`` (vendor kernels already fill the
machine). ``PATCH_COST`` = 16 was chosen on 2 cores of a Xeon with AVX-512 (jax
0.10.2) from the backward pass (both gradients) of 56 convolutions: 28x28 maps,
batch 128, 1-12 input and 6-64 output channels, 3x3 SAME, 5x5 SAME and 5x5 VALID.
With the rule they took 1.06x the time of the faster algorithm of each shape, XLA's
kernel everywhere 1.26x; 11 of the 56 picks were more than 5% slower than the other
algorithm (mostly 5x5 SAME, whose padding the model does not count). Thresholds of 8
to 96 gave 1.06-1.14x. ``python -m benchmarks.conv_algorithms`` measures every
algorithm on a grid and reports where the rule loses time: on its 160 shapes (maps
28x28 and 14x14, 1-64 input channels), forward + backward, 1.025x the fastest
against 1.046x for XLA's kernel everywhere.

The patches path runs its backward pass behind an optimization barrier (`_isolated`),
so XLA cannot fuse the gradient's producer (a max-pooling or activation gradient)
into the patch matrix's scatter, which it would recompute for each of the
``prod(kernel)`` slices: in LeNet-5 with ReLU and max-pooling that made the training
step 1.5x slower than with XLA's convolutions; isolated, it is 0.89 of it. Measured
in isolation is then what it costs in a network.

Also measured and not kept (numbers in benchmarks/README.md, "Where the time goes"):
Winograd F(2x2, 3x3) (`benchmarks/conv_algorithms.py`), 2.4-8x slower than XLA's
kernel forward and backward.

Pooling (`pool_algorithm`): ``"tiled"`` when the windows tile the input exactly
(stride equal to window, no padding): a reshape and a reduction, whose gradient,
for the maximum, goes to the first maximum of each window, found once in the forward
pass (`tiled_max`); else ``"reduce_window"``, XLA's windowed reduction, whose
max gradient is XLA's ``select_and_scatter``. Forward and backward of a 2x2
max-pool of batch 128 on CPU, ms, reduce_window / tiled: 28x28x32 37.1 / 8.2,
14x14x64 17.2 / 4.0, 28x28x6 3.8 / 1.5.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# Bytes of one vector register: a CPU kernel fills L = VECTOR_BYTES / itemsize lanes.
VECTOR_BYTES = 64
# The cost of moving one patch-matrix element, in units of 6 FLOPs (see the module docstring).
PATCH_COST = 16
_LAYOUTS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}
Pads = Sequence[tuple[int, int]]


def conv_algorithm(
    in_channels: int,
    out_channels: int,
    groups: int,
    dtype: jnp.dtype | type = jnp.float32,
    platform: str | None = None,
) -> str:
    """``"patches"`` or ``"xla"``: the algorithm the rule above picks for a convolution.

    ``platform`` defaults to `jax.default_backend()`; ``in_channels`` counts all
    input channels (not per group).

    Example:
        >>> conv_algorithm(1, 6, 1, platform="cpu"), conv_algorithm(32, 32, 1, platform="cpu")
        ('patches', 'xla')
    """
    if (platform or jax.default_backend()) != "cpu" or groups != 1:
        return "xla"
    lanes = VECTOR_BYTES // jnp.dtype(dtype).itemsize
    idle = max(lanes / in_channels - 1, 0.0)
    return "patches" if out_channels * idle >= PATCH_COST else "xla"


def convolve(
    x: jax.Array,
    w: jax.Array,
    strides: Sequence[int],
    pads: Pads,
    dilations: Sequence[int],
    groups: int = 1,
) -> jax.Array:
    """A channels-last convolution by the algorithm `conv_algorithm` picks.

    Args:
        x: ``(batch, *spatial, in)``; w: ``(*kernel, in / groups, out)``, same dtype.
        strides, pads, dilations: per spatial axis; ``pads`` as ``(low, high)`` pairs.

    Returns:
        ``(batch, *out_spatial, out)``, equal to `lax.conv_general_dilated`'s.
    """
    if conv_algorithm(x.shape[-1], w.shape[-1], groups, x.dtype) == "patches":
        return conv_by_patches(x, w, strides, pads, dilations)
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(strides),
        padding=tuple(pads),
        rhs_dilation=tuple(dilations),
        dimension_numbers=_LAYOUTS[x.ndim - 2],
        feature_group_count=groups,
    )


def conv_by_patches(
    x: jax.Array,
    w: jax.Array,
    strides: Sequence[int],
    pads: Pads,
    dilations: Sequence[int],
) -> jax.Array:
    """An ungrouped channels-last convolution as one matmul over its patches (im2col).

    Equal to `lax.conv_general_dilated` with the same arguments, in values and
    gradients. Shapes as in `convolve` (``groups`` = 1).

    Example:
        >>> x, w = jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 2))
        >>> conv_by_patches(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1))[0, :, :, 0]
        Array([[4., 6., 6., 4.],
               [6., 9., 9., 6.],
               [6., 9., 9., 6.],
               [4., 6., 6., 4.]], dtype=float32)
    """
    settings = (tuple(strides), tuple(map(tuple, pads)), tuple(dilations))
    return _isolated(settings, x, w)


def _patches_matmul(settings: tuple, x: jax.Array, w: jax.Array) -> jax.Array:
    """`conv_by_patches` itself, differentiable by JAX.

    The patches are gathered one spatial axis at a time, last axis first: the ``k``
    strided slices along an axis are stacked on a new axis just before the patch
    axes built so far, so the patch of an output position is laid out
    ``(*kernel, in)`` like ``w``. On XLA CPU this is several times faster than
    concatenating all ``prod(kernel)`` slices at once (one scattered channel block
    per slice).
    """
    strides, pads, dilations = settings
    ndim = w.ndim - 2
    patches = jnp.pad(x, ((0, 0), *pads, (0, 0)))  # (batch, *padded, in)
    for axis in reversed(range(1, ndim + 1)):
        k, s, d = w.shape[axis - 1], strides[axis - 1], dilations[axis - 1]
        size = (patches.shape[axis] - d * (k - 1) - 1) // s + 1
        slices = [
            lax.slice_in_dim(patches, o * d, o * d + (size - 1) * s + 1, s, axis) for o in range(k)
        ]
        patches = jnp.stack(slices, axis=ndim + 1)
    patches = patches.reshape(*patches.shape[: ndim + 1], -1)  # (batch, *out, prod(kernel) * in)
    return patches @ w.reshape(-1, w.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _isolated(settings: tuple, x: jax.Array, w: jax.Array) -> jax.Array:
    """`_patches_matmul`, its backward pass behind an optimization barrier (see above)."""
    return _patches_matmul(settings, x, w)


def _isolated_forward(settings, x, w):
    return _patches_matmul(settings, x, w), (x, w)


def _isolated_backward(settings, residuals, g):
    x, w, g = lax.optimization_barrier((*residuals, g))
    _, pullback = jax.vjp(functools.partial(_patches_matmul, settings), x, w)
    return pullback(g)


_isolated.defvjp(_isolated_forward, _isolated_backward)


def pool_algorithm(windows: Sequence[int], strides: Sequence[int], pads: Pads) -> str:
    """``"tiled"`` when the windows tile the input (stride = window, no padding), else
    ``"reduce_window"``.

    Example:
        >>> no_pads = ((0, 0), (0, 0))
        >>> pool_algorithm((2, 2), (2, 2), no_pads), pool_algorithm((3, 3), (2, 2), no_pads)
        ('tiled', 'reduce_window')
    """
    tiles = tuple(strides) == tuple(windows) and not any(lo or hi for lo, hi in pads)
    return "tiled" if tiles else "reduce_window"


def max_pool(x: jax.Array, windows: Sequence[int], strides: Sequence[int], pads: Pads) -> jax.Array:
    """Max over windows of an NHWC ``x``; padded cells count as ``-inf``. ``(n, oh, ow, c)``."""
    if pool_algorithm(windows, strides, pads) == "tiled":
        return tiled_max(_tiles(x, windows))
    return _reduce_window(x, np.array(-np.inf, x.dtype), lax.max, windows, strides, pads)


def avg_pool(x: jax.Array, windows: Sequence[int], strides: Sequence[int], pads: Pads) -> jax.Array:
    """Mean over windows of an NHWC ``x``; padded cells count as zeros in the mean."""
    if pool_algorithm(windows, strides, pads) == "tiled":
        return _tiles(x, windows).mean(axis=(2, 4))
    total = _reduce_window(x, np.array(0, x.dtype), lax.add, windows, strides, pads)
    return total / (windows[0] * windows[1])


def _tiles(x: jax.Array, windows: Sequence[int]) -> jax.Array:
    """``x`` ``(n, h, w, c)`` viewed as ``(n, oh, kh, ow, kw, c)`` tiles (a ragged edge dropped)."""
    (n, h, w, c), (kh, kw) = x.shape, windows
    return x[:, : h // kh * kh, : w // kw * kw].reshape(n, h // kh, kh, w // kw, kw, c)


@jax.custom_vjp
def tiled_max(x6: jax.Array) -> jax.Array:
    """The maximum over axes 2 and 4 of ``x6`` ``(n, oh, kh, ow, kw, c)``: ``(n, oh, ow, c)``.

    Its gradient goes to the first maximum of each window, located once in the
    forward pass (as XLA's ``select_and_scatter`` and PyTorch route it). The
    gradient of a plain ``max`` would compare the input with the maximum again in
    the backward pass, and XLA may recompute that input there (fused into another
    kernel) with different rounding: the comparison then finds no maximum and the
    window's gradient is lost (seen on CPU for BatchNorm + max-pooling of a 7x7 map
    with 128 channels, 12-34% of the convolution's weight gradients wrong under `jit`).
    """
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


tiled_max.defvjp(_tiled_max_forward, _tiled_max_backward)


def _reduce_window(x, init_value, op, windows, strides, pads):
    # A concrete (numpy) init value lets jax pick reduce_window_max/sum, which
    # have gradients; a traced one would not.
    return lax.reduce_window(
        x, init_value, op, (1, *windows, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0))
    )
