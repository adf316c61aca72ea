"""Convolutions and pooling against direct nested-loop numpy implementations."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.layers import algorithms

RNG = np.random.default_rng(0)


def same_pads(size, k, s, d=1):
    """TF/XLA "SAME": ceil(size / s) outputs, the odd extra pad on the high side."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return (total // 2, total - total // 2)


def conv2d_loops(x, w, b, stride, pads, dilation, groups):
    """y[n,i,j,o] = b[o] + sum x_padded[n, i*sh + p*dh, j*sw + q*dw, g*cg + c] w[p,q,c,o]."""
    n, h, wd, _ = x.shape
    kh, kw, cg, out = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    oh = (h + sum(pads[0]) - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + sum(pads[1]) - (kw - 1) * dw - 1) // sw + 1
    per_group = out // groups
    y = np.zeros((n, oh, ow, out))
    for b_, i, j, o in itertools.product(range(n), range(oh), range(ow), range(out)):
        g = o // per_group
        for p, q, c in itertools.product(range(kh), range(kw), range(cg)):
            y[b_, i, j, o] += xp[b_, i * sh + p * dh, j * sw + q * dw, g * cg + c] * w[p, q, c, o]
    return y + b


def conv_transpose2d_loops(x, w, b, stride, crops):
    """Scatter: full[n, i*sh + p, j*sw + q, o] += x[n,i,j,c] w[p,q,c,o], then crop."""
    n, h, wd, cin = x.shape
    kh, kw, _, out = w.shape
    sh, sw = stride
    full = np.zeros((n, (h - 1) * sh + kh, (wd - 1) * sw + kw, out))
    for b_, i, j, c, p, q in itertools.product(*map(range, (n, h, wd, cin, kh, kw))):
        full[b_, i * sh + p, j * sw + q] += x[b_, i, j, c] * w[p, q, c]
    (top, bottom), (left, right) = crops
    return full[:, top : full.shape[1] - bottom, left : full.shape[2] - right] + b


def pool_loops(x, window, stride, pads, kind):
    n, h, wd, c = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    oh = (xp.shape[1] - window[0]) // stride[0] + 1
    ow = (xp.shape[2] - window[1]) // stride[1] + 1
    y = np.zeros((n, oh, ow, c))
    for i, j in itertools.product(range(oh), range(ow)):
        patch = xp[
            :, i * stride[0] : i * stride[0] + window[0], j * stride[1] : j * stride[1] + window[1]
        ]
        y[:, i, j] = patch.max(axis=(1, 2)) if kind == "max" else patch.mean(axis=(1, 2))
    return y


def run(layer, x):
    _, params, state = layer.init(jax.random.key(0), x.shape)
    params = jax.tree.map(lambda a: jnp.asarray(RNG.standard_normal(a.shape), jnp.float32), params)
    y, _ = layer.apply(params, state, jnp.asarray(x, jnp.float32))
    return np.asarray(y), jax.tree.map(np.asarray, params)


CONV2D = [
    # (kernel, stride, padding, dilation, groups, input (h, w))
    (3, 1, "SAME", 1, 1, (5, 6)),
    (2, 1, "SAME", 1, 1, (5, 6)),  # odd total pad: the extra goes low 0, high 1
    ((3, 2), (2, 3), "SAME", 1, 1, (7, 8)),
    (3, 2, "VALID", 1, 1, (7, 6)),
    (3, 1, 1, 1, 1, (4, 5)),
    ((2, 3), 1, ((0, 2), (1, 0)), 1, 1, (4, 5)),
    (3, 1, "SAME", 2, 1, (6, 6)),
    ((2, 2), (1, 2), "VALID", (2, 1), 1, (6, 7)),
    (3, 1, "SAME", 1, 2, (5, 5)),
    (1, 1, "VALID", 1, 4, (3, 3)),  # depthwise
]


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "groups", "hw"), CONV2D)
def test_conv2d_matches_loops(kernel, stride, padding, dilation, groups, hw):
    x = RNG.standard_normal((2, *hw, 4))
    layer = fn.Conv2D(4, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y, p = run(layer, x)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "SAME":
        pads = [same_pads(hw[a], k[a], s[a], d[a]) for a in range(2)]
    elif padding == "VALID":
        pads = [(0, 0), (0, 0)]
    elif isinstance(padding, int):
        pads = [(padding, padding)] * 2
    else:
        pads = padding
    np.testing.assert_allclose(
        y, conv2d_loops(x, p["w"], p["b"], s, pads, d, groups), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [(3, 1, "SAME", 1), (4, 2, "SAME", 1), (3, 2, "VALID", 2), (2, 1, 1, 1)],
)
def test_conv1d_matches_loops(kernel, stride, padding, dilation):
    x = RNG.standard_normal((2, 9, 3))
    y, p = run(fn.Conv1D(5, kernel, stride=stride, padding=padding, dilation=dilation), x)
    if padding == "SAME":
        pads = same_pads(9, kernel, stride, dilation)
    elif padding == "VALID":
        pads = (0, 0)
    else:
        pads = (padding, padding)
    expected = conv2d_loops(
        x[:, None], p["w"][None], p["b"], (1, stride), [(0, 0), pads], (1, dilation), 1
    )
    np.testing.assert_allclose(y, expected[:, 0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "crops"),
    [
        (3, 2, "SAME", ((0, 1), (0, 1))),
        (4, 2, "SAME", ((1, 1), (1, 1))),
        (2, 2, "SAME", ((0, 0), (0, 0))),
        ((3, 2), (1, 2), "VALID", ((0, 0), (0, 0))),
        (3, 2, 1, ((1, 1), (1, 1))),
        (3, 1, ((0, 2), (1, 0)), ((0, 2), (1, 0))),
    ],
)
def test_conv_transpose2d_matches_scatter_loops(kernel, stride, padding, crops):
    x = RNG.standard_normal((2, 3, 4, 3))
    y, p = run(fn.ConvTranspose2D(2, kernel, stride=stride, padding=padding), x)
    s = (stride, stride) if isinstance(stride, int) else stride
    np.testing.assert_allclose(
        y, conv_transpose2d_loops(x, p["w"], p["b"], s, crops), rtol=1e-4, atol=1e-5
    )
    if padding == "SAME":
        assert y.shape[1:3] == (3 * s[0], 4 * s[1])


@pytest.mark.parametrize(("kernel", "stride"), [(3, 2), (4, 2), (5, 3), (1, 2)])
def test_conv_transpose_same_is_the_adjoint_of_conv_same(kernel, stride):
    """<conv(x), y> == <x, conv_transpose(y)> with the kernel's channel axes swapped."""
    x = jnp.asarray(RNG.standard_normal((2, 6 * stride, 5 * stride, 3)), jnp.float32)
    y = jnp.asarray(RNG.standard_normal((2, 6, 5, 4)), jnp.float32)
    w = jnp.asarray(RNG.standard_normal((kernel, kernel, 3, 4)), jnp.float32)
    conv = fn.Conv2D(4, kernel, stride=stride, use_bias=False)
    transpose = fn.ConvTranspose2D(3, kernel, stride=stride, use_bias=False)
    forward, _ = conv.apply({"w": w}, {}, x)
    backward, _ = transpose.apply({"w": w.transpose(0, 1, 3, 2)}, {}, y)
    assert backward.shape == x.shape
    np.testing.assert_allclose(jnp.vdot(forward, y), jnp.vdot(x, backward), rtol=1e-4)


POOLS = [
    # (window, stride, padding, input (h, w)); tiled cases take the reshape path
    (2, None, "VALID", (6, 6)),
    (2, None, "VALID", (7, 5)),  # the last row and column are dropped
    ((2, 3), None, "VALID", (4, 6)),
    (3, 2, "VALID", (7, 7)),
    (3, 2, "SAME", (6, 5)),
    (3, 1, 1, (4, 4)),
    (2, 2, ((1, 0), (0, 1)), (5, 5)),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("window", "stride", "padding", "hw"), POOLS)
def test_pooling_matches_loops(kind, window, stride, padding, hw):
    x = RNG.standard_normal((2, *hw, 3))
    layer = (fn.MaxPool2D if kind == "max" else fn.AvgPool2D)(
        window, stride=stride, padding=padding
    )
    y, _ = run(layer, x)
    k = (window, window) if isinstance(window, int) else window
    s = k if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    if padding == "SAME":
        pads = [same_pads(hw[a], k[a], s[a]) for a in range(2)]
    elif padding == "VALID":
        pads = [(0, 0), (0, 0)]
    elif isinstance(padding, int):
        pads = [(padding, padding)] * 2
    else:
        pads = padding
    np.testing.assert_allclose(y, pool_loops(x, k, s, pads, kind), rtol=1e-5, atol=1e-6)


def test_tiled_and_general_pooling_have_equal_gradients():
    """The reshape fast path and reduce_window agree on values and gradients."""
    x = jnp.asarray(RNG.standard_normal((2, 6, 6, 3)), jnp.float32)
    tiled = fn.MaxPool2D(2)
    general = fn.MaxPool2D(2, padding=((0, 0), (0, 0)), stride=(2, 2))
    cotangent = jnp.asarray(RNG.standard_normal((2, 3, 3, 3)), jnp.float32)
    for layer in (tiled, general):
        grad = jax.grad(lambda x, layer=layer: jnp.vdot(layer.apply({}, {}, x)[0], cotangent))(x)
        np.testing.assert_allclose(grad.sum(), cotangent.sum(), rtol=1e-5)
        assert int((grad != 0).sum()) == cotangent.size


def test_max_pool_gradient_under_jit_after_batchnorm_on_a_cropped_map():
    """BatchNorm then 2x2 max-pooling of 7x7 maps (cropped to 6x6), 128 channels: the
    gradient under jit equals reduce_window's. With the gradient of a plain ``max``,
    XLA on CPU recomputed the normalised input in the backward pass with other rounding,
    the equality with the maximum failed, and dL/dkernel was off by up to 2.9 (of 3.8)."""

    def loss(params, x, pool):
        kernel, scale, bias, w = params
        h = jax.lax.conv_general_dilated(
            x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        mean = h.mean((0, 1, 2))
        y = (h - mean) * (jax.lax.rsqrt(jnp.square(h - mean).mean((0, 1, 2)) + 1e-5) * scale)
        y = y + bias
        return (pool(y).reshape(4, -1) @ w).sum()

    def tiled(y):
        return fn.MaxPool2D(2).apply({}, {}, y)[0]

    def general(y):
        return jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.uniform(keys[0], (4, 7, 7, 32))
    params = (jax.random.normal(keys[1], (3, 3, 32, 128)) / 17, jnp.ones(128), jnp.zeros(128),
              jax.random.normal(keys[2], (9 * 128, 10)) / 34)  # fmt: skip
    got = jax.jit(jax.grad(loss), static_argnums=2)(params, x, tiled)
    want = jax.jit(jax.grad(loss), static_argnums=2)(params, x, general)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_global_avg_pool_flatten_reshape():
    x = RNG.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(run(fn.GlobalAvgPool(), x)[0], x.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(run(fn.Flatten(), x)[0], x.reshape(2, 60).astype(np.float32))
    np.testing.assert_array_equal(
        run(fn.Reshape((5, -1)), x)[0], x.reshape(2, 5, 12).astype(np.float32)
    )


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "groups", "hw"), [c for c in CONV2D if c[4] == 1]
)
@pytest.mark.parametrize(("channels_in", "channels_out"), [(1, 6), (2, 3), (6, 16), (17, 2)])
def test_conv_by_patches_equals_xla_convolution_values_and_gradients(
    kernel, stride, padding, dilation, groups, hw, channels_in, channels_out
):
    from funcnets.layers.algorithms import conv_by_patches
    from funcnets.layers.padding import explicit_padding

    k, s, d = (tuple(v) if not isinstance(v, int) else (v, v) for v in (kernel, stride, dilation))
    pads = explicit_padding(padding, hw, k, s, d)
    x = jnp.asarray(RNG.standard_normal((2, *hw, channels_in)), jnp.float32)
    w = jnp.asarray(RNG.standard_normal((*k, channels_in, channels_out)), jnp.float32)

    def xla(x, w):
        return jax.lax.conv_general_dilated(
            x, w, s, pads, rhs_dilation=d, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def patches(x, w):
        return conv_by_patches(x, w, s, pads, d)

    np.testing.assert_allclose(patches(x, w), xla(x, w), rtol=1e-5, atol=1e-5)
    r = jnp.asarray(RNG.standard_normal(xla(x, w).shape), jnp.float32)

    def gradients(f):
        return jax.grad(lambda x, w: jnp.vdot(f(x, w), r), (0, 1))(x, w)

    for got, expected in zip(gradients(patches), gradients(xla)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_single_channel_conv_layers_match_loops():
    """The patches path (taken on CPU for few input channels) gives the reference values."""
    x = RNG.standard_normal((2, 7, 6, 1))
    y, p = run(fn.Conv2D(3, (3, 2), stride=(2, 1), padding="SAME", dilation=(1, 2)), x)
    pads = [same_pads(7, 3, 2, 1), same_pads(6, 2, 1, 2)]
    expected = conv2d_loops(x, p["w"], p["b"], (2, 1), pads, (1, 2), 1)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_conv_rule_is_the_documented_cost_model():
    """patches iff out * (lanes / in - 1) >= PATCH_COST on CPU, ungrouped; XLA's elsewhere.

    Checked against the formula on a grid (so the rule depends on the shape alone), and
    its consequences: more output channels never turn patches off, more input channels
    never turn them on, and bfloat16 (twice the lanes) takes patches wherever float32 does.
    """
    from funcnets.layers.algorithms import PATCH_COST, VECTOR_BYTES, conv_algorithm

    for cin in range(1, 40):
        for cout in (1, 2, 4, 6, 8, 16, 32, 64, 128):
            lanes = VECTOR_BYTES // 4
            expected = cout * max(lanes / cin - 1, 0) >= PATCH_COST
            assert conv_algorithm(cin, cout, 1, jnp.float32, "cpu") == (
                "patches" if expected else "xla"
            )
            if expected:
                assert conv_algorithm(cin, 2 * cout, 1, jnp.float32, "cpu") == "patches"
                assert conv_algorithm(cin, cout, 1, jnp.bfloat16, "cpu") == "patches"
            else:
                assert conv_algorithm(cin + 1, cout, 1, jnp.float32, "cpu") == "xla"
            assert conv_algorithm(cin, cout, 2, jnp.float32, "cpu") == "xla"
            assert conv_algorithm(cin, cout, 1, jnp.float32, "gpu") == "xla"
            assert conv_algorithm(cin, cout, 1, jnp.float32, "tpu") == "xla"
    # The first convolutions of LeNet-5, VGG and ResNet (1 channel in) and LeNet-5's C3
    # take patches; 3x3 convolutions of 16 or more channels stay XLA's.
    assert {conv_algorithm(1, 6, 1, platform="cpu"), conv_algorithm(6, 16, 1, platform="cpu")} == {
        "patches"
    }
    assert conv_algorithm(16, 16, 1, platform="cpu") == conv_algorithm(32, 64, 1, platform="cpu")
    assert conv_algorithm(16, 16, 1, platform="cpu") == "xla"


def test_patches_gradient_is_exact_in_a_jitted_network_with_relu_and_max_pooling():
    """The patches convolution's backward pass runs behind an optimization barrier: under
    jit, in conv -> relu -> max-pool -> conv, both kernels' gradients equal XLA's."""
    from funcnets.layers import algorithms

    keys = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(keys[0], (4, 12, 12, 1))
    params = (jax.random.normal(keys[1], (5, 5, 1, 6)) / 5,
              jax.random.normal(keys[2], (5, 5, 6, 16)) / 12)  # fmt: skip

    def loss(params, conv):
        h = jax.nn.relu(conv(x, params[0], (1, 1), ((2, 2), (2, 2)), (1, 1)))
        h = algorithms.max_pool(h, (2, 2), (2, 2), ((0, 0), (0, 0)))
        return jnp.sum(jnp.sin(conv(h, params[1], (1, 1), ((0, 0), (0, 0)), (1, 1))))

    def xla(x, w, s, pads, d):
        return jax.lax.conv_general_dilated(x, w, s, pads, rhs_dilation=d,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip

    got = jax.jit(jax.grad(loss), static_argnums=1)(params, algorithms.conv_by_patches)
    expected = jax.jit(jax.grad(loss), static_argnums=1)(params, xla)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


DTYPE_CASES = {
    "Conv1D": (lambda: fn.Conv1D(3, 3), (2, 6, 2)),
    "Conv2D": (lambda: fn.Conv2D(3, 3, stride=2), (2, 5, 5, 2)),
    "ConvTranspose2D": (lambda: fn.ConvTranspose2D(3, 3, stride=2), (2, 3, 3, 2)),
}
# Each convolution on each of its code paths: patches/matmul or XLA's (ConvTranspose2D: XLA).
PATHS = ["Conv1D-patches", "Conv1D-xla", "Conv2D-patches", "Conv2D-xla", "ConvTranspose2D-xla"]


def built_on_path(case, monkeypatch):
    """The layer, params, state and input shape of a case, its code path forced."""
    name, path = case.split("-")
    monkeypatch.setattr(algorithms, "conv_algorithm", lambda *args, **kwargs: path)
    factory, shape = DTYPE_CASES[name]
    layer = factory()
    _, params, state = layer.init(jax.random.key(0), shape)
    return name, layer, params, state, shape


@pytest.mark.parametrize("case", PATHS)
def test_integer_input_raises_naming_the_layer_on_every_path(case, monkeypatch):
    name, layer, params, state, shape = built_on_path(case, monkeypatch)
    pattern = rf"^{name}: expected a floating-point input, got dtype int32"
    for apply in (layer.apply, jax.jit(layer.apply)):
        with pytest.raises(ValueError, match=pattern):
            apply(params, state, jnp.ones(shape, jnp.int32))


@pytest.mark.parametrize("case", PATHS)
def test_input_and_kernel_dtypes_promote_alike_on_every_path(case, monkeypatch):
    """bfloat16 input, float32 kernel: float32 (jnp promotion), exactly the float32 result;
    bfloat16 input and kernel: bfloat16, close to it (mixed precision)."""
    _, layer, params, state, shape = built_on_path(case, monkeypatch)
    x = jax.random.normal(jax.random.key(1), shape, jnp.bfloat16)
    expected, _ = layer.apply(params, state, x.astype(jnp.float32))
    mixed, _ = layer.apply(params, state, x)
    assert mixed.dtype == jnp.float32
    np.testing.assert_array_equal(mixed, expected)
    half_params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
    half, _ = jax.jit(layer.apply)(half_params, state, x)
    assert half.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.float32(half), expected, rtol=0.05, atol=0.05)
