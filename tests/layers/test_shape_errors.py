"""Bad input shapes raise at init (or apply) naming the layer, its path and both shapes."""

import jax
import jax.numpy as jnp
import pytest

import funcnets as fn

KEY = jax.random.key(0)


@pytest.mark.parametrize(
    ("layer", "shape", "pattern"),
    [
        (
            fn.Conv2D(4, 3),
            (28, 28, 1),
            r"Conv2D: expected input of rank 4 \(batch, height, width, channels\), got \(28, 28, 1\)",
        ),
        (fn.Conv1D(4, 3), (2, 8, 8, 1), r"Conv1D: expected input of rank 3 .*got \(2, 8, 8, 1\)"),
        (
            fn.Conv2D(4, 3, groups=2),
            (2, 8, 8, 3),
            r"Conv2D: expected input channels divisible by groups=2, got \(2, 8, 8, 3\)",
        ),
        (
            fn.Conv2D(4, 5, padding="VALID"),
            (2, 3, 3, 1),
            r"Conv2D: expected input spatial size >= .*got \(2, 3, 3, 1\)",
        ),
        (fn.MaxPool2D(2), (2, 8, 8), r"MaxPool2D: expected input of rank 4 .*got \(2, 8, 8\)"),
        (
            fn.AvgPool2D(4),
            (2, 3, 3, 1),
            r"AvgPool2D: expected input spatial size >= the window \(4, 4\), got",
        ),
        (fn.Dense(3), (5,), r"Dense: expected input of rank >= 2 .*got \(5,\)"),
        (
            fn.GroupNorm(4),
            (2, 6),
            r"GroupNorm: expected input channels divisible by groups=4, got \(2, 6\)",
        ),
        (fn.Reshape((5, 5)), (2, 24), r"Reshape: cannot reshape input \(2, 24\)"),
        (fn.GlobalAvgPool(), (2, 3), r"GlobalAvgPool: expected input of rank >= 3"),
        (fn.ConvTranspose2D(2, 3), (2, 4, 4), r"ConvTranspose2D: expected input of rank 4"),
    ],
)
def test_init_errors_name_layer_and_shapes(layer, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer.init(KEY, shape)


def test_sequential_prefixes_the_child_path():
    net = fn.Sequential(fn.Flatten(), fn.Dense(10), fn.relu, fn.Conv2D(3, 3))
    with pytest.raises(
        ValueError, match=r'^Sequential\["3"\] Conv2D: expected input of rank 4 .*got \(8, 10\)'
    ):
        net.init(KEY, (8, 28, 28, 1))
    nested = fn.Sequential(body=fn.Sequential(fn.Dense(3), fn.MaxPool2D(2)))
    with pytest.raises(ValueError, match=r'^Sequential\["body"\] Sequential\["1"\] MaxPool2D'):
        nested.init(KEY, (8, 4))


def test_apply_with_the_wrong_input_names_layer_path_and_shapes():
    net = fn.Sequential(fn.Flatten(), fn.Dense(32), fn.relu, fn.Dense(10))
    _, params, state = net.init(KEY, (8, 28, 28, 1))
    bad = jnp.ones((8, 32, 32, 3))
    with pytest.raises(
        ValueError,
        match=r'Sequential\["1"\] Dense: expected input \(\.\.\., 784\), got \(8, 3072\)',
    ):
        net.apply(params, state, bad)
    with pytest.raises(ValueError, match=r'Sequential\["1"\] Dense'):
        jax.jit(net.apply)(params, state, bad)
    conv = fn.Conv2D(4, 3)
    _, params, state = conv.init(KEY, (1, 8, 8, 3))
    with pytest.raises(
        ValueError, match=r"Conv2D: expected input .* with 3 channels, got \(1, 8, 8, 1\)"
    ):
        conv.apply(params, state, jnp.ones((1, 8, 8, 1)))


def test_bad_hyperparameters_are_rejected_when_the_layer_is_built():
    with pytest.raises(ValueError, match="kernel_size"):
        fn.Conv2D(4, (3, 3, 3))
    with pytest.raises(ValueError, match="stride must be positive"):
        fn.Conv2D(4, 3, stride=0)
    with pytest.raises(ValueError, match="multiple of groups"):
        fn.Conv2D(5, 3, groups=2)
    with pytest.raises(ValueError, match="padding"):
        fn.Conv2D(4, 3, padding="FULL").init(KEY, (1, 5, 5, 1))
    with pytest.raises(ValueError, match="Reshape"):
        fn.Reshape((-1, -1))


BAD_SIZES = {
    "Dense(-3)": (lambda: fn.Dense(-3), r"Dense: features must be a positive int, got -3$"),
    "Dense(0)": (lambda: fn.Dense(0), r"Dense: features must be a positive int, got 0$"),
    "Maxout(3, 0)": (lambda: fn.Maxout(3, 0), r"Maxout: pieces must be a positive int"),
    "Conv2D(0, 3)": (lambda: fn.Conv2D(0, 3), r"Conv2D: features must be a positive int"),
    "Conv1D(-1, 3)": (lambda: fn.Conv1D(-1, 3), r"Conv1D: features must be a positive int"),
    "ConvT(0, 3)": (lambda: fn.ConvTranspose2D(0, 3), r"ConvTranspose2D: features must be"),
    "Conv2D(4, 0)": (lambda: fn.Conv2D(4, 0), r"Conv2D kernel_size must be positive, got 0"),
    "dilation=(1, 0)": (lambda: fn.Conv2D(4, 3, dilation=(1, 0)), r"Conv2D dilation must be"),
    "groups=0": (lambda: fn.Conv2D(4, 3, groups=0), r"Conv2D: groups must be a positive int"),
    "padding=-1": (lambda: fn.Conv2D(4, 3, padding=-1), r"Conv2D: padding must be non-neg"),
    "ConvT(padding='FULL')": (
        lambda: fn.ConvTranspose2D(4, 3, padding="FULL"),
        r'ConvTranspose2D: padding must be "SAME", "VALID"',
    ),
    "MaxPool2D(pairs)": (lambda: fn.MaxPool2D(2, padding=[(0, 0)]), r"MaxPool2D: padding needs 2"),
    "AvgPool2D(0)": (lambda: fn.AvgPool2D(0), r"AvgPool2D window must be positive"),
}


@pytest.mark.parametrize("name", BAD_SIZES)
def test_bad_sizes_raise_when_built_naming_layer_and_argument(name):
    build, pattern = BAD_SIZES[name]
    with pytest.raises(ValueError, match=f"^{pattern}"):
        build()


def test_a_non_integer_size_is_a_type_error():
    with pytest.raises(TypeError, match=r"^Dense: features must be a positive int, got 2.0$"):
        fn.Dense(2.0)
