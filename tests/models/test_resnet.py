"""resnet: the paper's parameter counts, the plain twin, shapes, BatchNorm state, jit = eager.

Counts are read off `init` traced abstractly (`jax.eval_shape`: nothing is
computed); forward passes use one tiny ResNet-8 on 8x8 images.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.models.resnet import resnet

KEY = jax.random.key(0)
SMALL = (3, 8, 8, 2)  # (batch, H, W, C): stages of 8x8, 4x4, 2x2
NET = resnet(8, num_classes=5)
X16 = np.abs(np.random.default_rng(2).normal(size=(3, 8, 8, 16))).astype(np.float32)  # post-relu


def is_shape(value) -> bool:
    return type(value) is tuple


def abstract_init(net, shape):
    """``net.init``'s (output shape, params as shapes, state as shapes), nothing computed."""
    out = {}

    def params_and_state(key):
        out["shape"], params, state = net.init(key, shape)
        return params, state

    params, state = jax.eval_shape(params_and_state, KEY)
    return out["shape"], jax.tree.map(np.shape, params), jax.tree.map(np.shape, state)


def initialised(net, shape, seed=0):
    """Params and state of ``net``'s shapes, drawn by numpy (He-scaled weights, BN off its defaults).

    Much cheaper than ``net.init``, whose dozens of jax.random draws each compile.
    """
    rng = np.random.default_rng(seed)
    _, params, state = abstract_init(net, shape)

    def draw(path, shape):
        name = path[-1].key
        if name == "w":
            value = rng.normal(size=shape) * np.sqrt(2 / np.prod(shape[:-1]))
        elif name == "var":
            value = rng.uniform(0.5, 1.5, shape)
        else:  # scale, bias, mean
            value = (name == "scale") + 0.1 * rng.normal(size=shape)
        return jnp.asarray(value, jnp.float32)

    return tuple(
        jax.tree_util.tree_map_with_path(draw, t, is_leaf=is_shape) for t in (params, state)
    )


def count(shapes) -> int:
    return sum(int(np.prod(s)) for s in jax.tree.leaves(shapes, is_leaf=is_shape))


def without_shortcuts(tree):
    """``tree`` with every block's ``"shortcut"`` entry taken out."""
    if not isinstance(tree, dict):
        return tree
    return {k: without_shortcuts(v) for k, v in tree.items() if k != "shortcut"}


@pytest.fixture(scope="module")
def small():
    """ResNet-8's params, state, a batch of images, and its outputs: eager and jitted."""
    params, state = initialised(NET, SMALL)
    x = jnp.asarray(np.random.default_rng(1).normal(size=SMALL), jnp.float32)
    train = functools.partial(NET.apply, train=True)
    return {
        "params": params,
        "state": state,
        "x": x,
        "eager_train": train(params, state, x),
        "jit_train": jax.jit(train)(params, state, x),
        "jit_eval": jax.jit(NET.apply)(params, state, x),
    }


# He et al. 2015, section 4.2 / Table 6 (CIFAR-10, 3-channel 32x32 input, 10 classes, option A)
@pytest.mark.parametrize("depth, millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85)])
def test_parameter_counts_match_the_paper(depth, millions):
    shape, params, _ = abstract_init(resnet(depth, shortcut="identity"), (2, 32, 32, 3))
    assert shape == (2, 10)
    assert round(count(params) / 1e6, 2) == millions
    # the exact count: 3x3 convs (no bias), a BN per conv, the dense head
    n = (depth - 2) // 6
    convs = 9 * (3 * 16 + 2 * n * 16 * 16)  # stem, stage1
    convs += 9 * (16 * 32 + (2 * n - 1) * 32 * 32 + 32 * 64 + (2 * n - 1) * 64 * 64)
    bns = 2 * (16 + 2 * n * (16 + 32 + 64))
    assert count(params) == convs + bns + 64 * 10 + 10
    # projection shortcuts (option B) add two 1x1 convs with their BNs, still the paper's count
    _, projected, _ = abstract_init(resnet(depth), (2, 32, 32, 3))
    assert count(projected) - count(params) == 16 * 32 + 32 * 64 + 2 * (32 + 64)
    assert abs(count(projected) / 1e6 - millions) < 0.01


def test_the_plain_twin_is_the_resnet_minus_its_shortcuts():
    shape = (2, 28, 28, 1)
    _, params, state = abstract_init(resnet(20), shape)
    _, plain_params, plain_state = abstract_init(resnet(20, plain=True), shape)
    _, identity_params, _ = abstract_init(resnet(20, shortcut="identity"), shape)
    assert plain_params == without_shortcuts(params) == without_shortcuts(identity_params)
    assert plain_state == without_shortcuts(state)
    assert params["stage2"]["0"]["shortcut"]["conv"]["w"] == (1, 1, 16, 32)
    assert params["stage3"]["0"]["shortcut"]["conv"]["w"] == (1, 1, 32, 64)
    assert params["stage1"]["0"]["shortcut"] == {}  # identity where the shape is kept
    assert identity_params["stage2"]["0"]["shortcut"] == {}  # option A: no params
    assert params["stage3"]["2"]["branch"]["conv2"]["w"] == (3, 3, 64, 64)
    assert "b" not in params["stage1"]["0"]["branch"]["conv1"]  # BN follows: no bias


@pytest.mark.parametrize("depth", [7, 9, 0, 20.0, True])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=r"resnet: depth must be 6n \+ 2"):
        resnet(depth)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="shortcut"):
        resnet(20, shortcut="zeros")
    with pytest.raises(ValueError, match="num_classes"):
        resnet(20, num_classes=0)


@pytest.mark.parametrize("shortcut", ["projection", "identity"])
def test_stage_shapes(shortcut):
    net = resnet(8, num_classes=5, shortcut=shortcut)
    for shape, (stem, stage1, stage2, stage3) in (
        (SMALL, ((8, 8, 16), (8, 8, 16), (4, 4, 32), (2, 2, 64))),
        ((3, 7, 9, 2), ((7, 9, 16), (7, 9, 16), (4, 5, 32), (2, 3, 64))),  # SAME, stride 2: ceil
    ):
        for k, expected in enumerate((stem, stage1, stage2, stage3), start=1):
            head = fn.Sequential(*[layer for _, layer in net.children[:k]])
            assert abstract_init(head, shape)[0] == (3, *expected)
        assert abstract_init(net, shape)[0] == (3, 5)


def test_forward_shapes(small):
    for y, new_state in (small["eager_train"], small["jit_train"], small["jit_eval"]):
        assert y.shape == (3, 5) and y.dtype == jnp.float32
        assert jax.tree.map(np.shape, new_state) == jax.tree.map(np.shape, small["state"])


def test_wrong_input_names_the_layer():
    with pytest.raises(ValueError, match=r'Sequential\["stem"\].*Conv2D'):
        NET.init(KEY, (3, 8, 8))


def test_batchnorm_state_changes_in_train_mode_only(small):
    state = small["state"]
    y_eval, eval_state = small["jit_eval"]
    y_train, train_state = small["jit_train"]
    assert jax.tree.all(jax.tree.map(np.array_equal, eval_state, state))
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), train_state, state)
    assert jax.tree.leaves(changed) and all(jax.tree.leaves(changed))  # every mean and var moved
    assert not np.allclose(y_train, y_eval)  # batch statistics, not the running ones


def block(net, stage, i):
    """Block ``i`` of ``stage`` (e.g. ``"stage2"``) of ``net``."""
    return dict(dict(net.children)[stage].children)[str(i)]


def silenced(params):
    """A block's params with its branch's last BatchNorm zeroed: the branch outputs 0."""
    bn2 = jax.tree.map(jnp.zeros_like, params["branch"]["bn2"])
    return {**params, "branch": {**params["branch"], "bn2": bn2}}


@pytest.mark.parametrize("plain", [False, True])
def test_a_silenced_branch_leaves_the_shortcut(plain):
    """With F(x) = 0 a block is relu(shortcut(x)); a plain block gives 0."""
    x = jnp.asarray(X16)
    keep = block(resnet(8, plain=plain), "stage1", 0)
    params, state = initialised(keep, x.shape)
    y, _ = keep.apply(silenced(params), state, x)
    np.testing.assert_array_equal(y, 0.0 if plain else x)


def test_option_a_subsamples_and_pads_with_zeros():
    x = jnp.asarray(X16)
    halve = block(resnet(8, shortcut="identity"), "stage2", 0)
    assert abstract_init(halve, x.shape)[0] == (3, 4, 4, 32)
    params, state = initialised(halve, x.shape)
    y, _ = halve.apply(silenced(params), state, x)
    np.testing.assert_array_equal(y[..., :16], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 16:], 0.0)


def test_option_b_projects():
    x = jnp.asarray(X16)
    halve = block(resnet(8), "stage2", 0)
    params, state = initialised(halve, x.shape)
    y, _ = halve.apply(silenced(params), state, x)
    w, bn = params["shortcut"]["conv"]["w"], params["shortcut"]["bn"]
    mean, var = state["shortcut"]["bn"]["mean"], state["shortcut"]["bn"]["var"]
    projected = jnp.einsum("nhwc,cd->nhwd", x[:, ::2, ::2, :], w[0, 0])  # 1x1, stride 2
    normalised = (projected - mean) / jnp.sqrt(var + 1e-5) * bn["scale"] + bn["bias"]
    np.testing.assert_allclose(y, jax.nn.relu(normalised), rtol=1e-5, atol=1e-5)


def test_jit_equals_eager(small):
    (y, new_state), (j_y, j_state) = small["eager_train"], small["jit_train"]
    np.testing.assert_allclose(j_y, y, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(j_state), jax.tree.leaves(new_state)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
