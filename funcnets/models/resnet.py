"""Residual networks of the CIFAR family (He, Zhang, Ren & Sun 2015), and their plain twins.

"Deep Residual Learning for Image Recognition" (arXiv:1512.03385), section 4.2:
a 3x3 convolution with 16 filters, then three stages of ``n`` basic blocks with
16, 32 and 64 filters on maps of size ``s``, ``s/2`` and ``s/4`` (the first
convolution of stages 2 and 3 has stride 2), global average pooling and a dense
layer: ``6n + 2`` weighted layers. Every convolution is followed by batch
normalisation (Ioffe & Szegedy 2015) and has no bias (BatchNorm's shift
replaces it). A basic block (the paper's Fig. 2) is

    y = relu(F(x) + shortcut(x)),    F = conv3x3 -> BN -> relu -> conv3x3 -> BN,

with ``shortcut(x) = x`` where the shape is kept. Where a block halves the maps
and doubles the channels, the shortcut is a projection (the paper's option B,
a strided 1x1 convolution and BN) or a parameter-free identity that subsamples
and pads the new channels with zeros (option A, used in the paper's CIFAR
experiments). The plain twin is the same network with every shortcut removed,
``y = relu(F(x))``: the nets of the paper's Fig. 6, which show that deeper
plain nets train *worse* (the degradation problem) while deeper residual nets
train better.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from funcnets import initializers
from funcnets.activations import relu
from funcnets.layers import BatchNorm, Conv2D, Dense, GlobalAvgPool, Lambda, Layer, Sequential
from funcnets.layers.base import make_layer
from funcnets.layers.checks import positive_int
from funcnets.layers.combinators import error_path

#: The filters of the three stages (He et al. 2015, section 4.2).
WIDTHS = (16, 32, 64)
SHORTCUTS = ("projection", "identity")


def _conv_bn(features: int, kernel_size: int, stride: int) -> dict[str, Layer]:
    """A bias-free convolution (He-normal weights) and the BatchNorm after it."""
    conv = Conv2D(features, kernel_size, stride, use_bias=False, w_init=initializers.he_normal())
    return {"conv": conv, "bn": BatchNorm()}


def _branch(features: int, stride: int) -> Layer:
    """``F(x)``: conv3x3 (stride) -> BN -> relu -> conv3x3 -> BN."""
    first, second = _conv_bn(features, 3, stride), _conv_bn(features, 3, 1)
    return Sequential(
        conv1=first["conv"], bn1=first["bn"], relu=relu, conv2=second["conv"], bn2=second["bn"]
    )


def _zero_pad_shortcut(features: int, stride: int) -> Layer:
    """Option A: keep every ``stride``-th pixel, append zero channels up to ``features``."""

    def subsample_and_pad(x: jax.Array) -> jax.Array:
        x = x[:, ::stride, ::stride, :]
        return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, features - x.shape[-1])))

    return Lambda(subsample_and_pad, name="ZeroPadShortcut")


def _shortcut(kind: str, features: int, stride: int, in_features: int) -> Layer:
    """The identity where the shape is kept; else option B (``"projection"``) or A."""
    if stride == 1 and features == in_features:
        return Lambda(lambda x: x, name="Identity")
    if kind == "projection":
        return Sequential(**_conv_bn(features, 1, stride))
    return _zero_pad_shortcut(features, stride)


def _block(name: str, branch: Layer, shortcut: Layer | None) -> Layer:
    """``relu(branch(x) + shortcut(x))``, or ``relu(branch(x))`` without a shortcut.

    Params and state: ``{"branch": ..., "shortcut": ...}`` (no ``"shortcut"``
    entry in a plain block), so a plain net's tree is its residual twin's with
    the shortcuts taken out.
    """
    children = (("branch", branch),) + ((("shortcut", shortcut),) if shortcut is not None else ())

    def init(key, input_shape):
        shapes, params, state = {}, {}, {}
        for (child_name, child), child_key in zip(children, jax.random.split(key, 2)):
            with error_path(f'{name}["{child_name}"]'):
                shapes[child_name], params[child_name], state[child_name] = child.init(
                    child_key, input_shape
                )
        if shortcut is not None and shapes["shortcut"] != shapes["branch"]:
            raise ValueError(
                f"{name}: the shortcut gives {shapes['shortcut']}, the branch {shapes['branch']}"
            )
        return shapes["branch"], params, state

    def apply(params, state, x, *, key=None, train=False):
        keys = [None, None] if key is None else list(jax.random.split(key, 2))
        outputs, new_state = [], {}
        for (child_name, child), child_key in zip(children, keys):
            with error_path(f'{name}["{child_name}"]'):
                y, new_state[child_name] = child.apply(
                    params[child_name], state[child_name], x, key=child_key, train=train
                )
            outputs.append(y)
        return relu(sum(outputs[1:], outputs[0])), new_state  # relu(F(x) [+ shortcut(x)])

    return make_layer(name, init, apply, children)


def resnet(
    depth: int, num_classes: int = 10, *, plain: bool = False, shortcut: str = "projection"
) -> Layer:
    """The CIFAR ResNet of ``depth = 6n + 2`` layers (He et al. 2015), or its plain twin.

    Layout for a (batch, H, W, C) input (the paper's 32x32x3 CIFAR images, or
    28x28x1 MNIST-like ones): ``stem`` conv3x3/16 -> BN -> relu, (batch, H, W, 16);
    ``stage1`` n blocks of 16 filters, (H, W); ``stage2`` n blocks of 32,
    (ceil(H/2), ceil(W/2)); ``stage3`` n blocks of 64, (ceil(H/4), ceil(W/4));
    ``pool`` global average, (batch, 64); ``head`` Dense, (batch, num_classes)
    logits. Block ``i`` of stage ``k`` is the child ``stage{k}/{i}`` with children
    ``branch`` (``conv1``, ``bn1``, ``relu``, ``conv2``, ``bn2``) and ``shortcut``.

    Convolutions are bias-free with He-normal weights, ``N(0, 2 / fan_in)``
    (He et al. 2015b, as in the paper); every BatchNorm has the library's
    defaults. Training (``train=True``) uses batch statistics and updates the
    running ones in ``state``; inference uses the running statistics.

    Parameters on a 3-channel input with 10 classes (the paper's Table 6
    counts, option A): ResNet-20 0.27M, -32 0.46M, -44 0.66M, -56 0.85M,
    -110 1.7M; projection shortcuts add 2,752 (two 1x1 convolutions and BNs).

    Args:
        depth: ``6n + 2`` for ``n >= 1`` blocks per stage (8, 14, 20, 32, 44,
            56, 110, ...).
        num_classes: width of the output logits.
        plain: the plain twin: the same convolutions and BatchNorms with every
            shortcut removed, so each block is ``relu(F(x))``.
        shortcut: where a block changes the shape, ``"projection"`` (option B:
            strided 1x1 convolution and BN, params under ``shortcut/conv``,
            ``shortcut/bn``) or ``"identity"`` (option A: subsample, pad the
            new channels with zeros; no params). Unused when ``plain``.

    Returns:
        The network, a `Layer` mapping (batch, H, W, C) images to
        (batch, num_classes) logits.

    Raises:
        ValueError: ``depth`` not of the form ``6n + 2``, ``num_classes`` below
            1, or an unknown ``shortcut``.

    Example:
        >>> import jax, funcnets as fn
        >>> from funcnets.models.resnet import resnet
        >>> net = resnet(20)
        >>> def init(key):  # params and state, as shapes (jax.eval_shape computes nothing)
        ...     return net.init(key, (2, 28, 28, 1))[1:]
        >>> params, state = jax.eval_shape(init, jax.random.key(0))
        >>> sum(p.size for p in jax.tree.leaves(params))
        272186
        >>> params["stage2"]["0"]["shortcut"]["conv"]["w"].shape
        (1, 1, 16, 32)
        >>> print(fn.summary(net, (2, 28, 28, 1)).splitlines()[-3])
        Total params: 272,186
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"resnet: depth must be 6n + 2 for n >= 1 blocks per stage "
            f"(8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}"
        )
    num_classes = positive_int("resnet", "num_classes", num_classes)
    if shortcut not in SHORTCUTS:
        raise ValueError(f"resnet: shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
    blocks = (depth - 2) // 6
    stem = _conv_bn(WIDTHS[0], 3, 1)
    stages, in_features = {}, WIDTHS[0]
    for k, features in enumerate(WIDTHS):
        stage = []
        for i in range(blocks):
            stride = 2 if k > 0 and i == 0 else 1
            branch = _branch(features, stride)
            if plain:
                stage.append(_block("PlainBlock", branch, None))
            else:
                skip = _shortcut(shortcut, features, stride, in_features)
                stage.append(_block("BasicBlock", branch, skip))
            in_features = features
        stages[f"stage{k + 1}"] = Sequential(*stage)
    return Sequential(
        stem=Sequential(conv=stem["conv"], bn=stem["bn"], relu=relu),
        **stages,
        pool=GlobalAvgPool(),
        head=Dense(num_classes),
    )
