"""Generic checks run on every public layer, driven by one registry of cases.

Each case builds a layer and an input shape (a pair of shapes for an
``(x, lengths)`` input). For each, the tests check that
init's output shape is the real one, jit equals eager, vmap over examples
equals the batched call, gradients w.r.t. params and input match finite
differences in float64, per-example gradients by vmap(grad) equal a loop,
eval mode leaves the state unchanged, and a second jitted call with new
values does not recompile. A coverage test fails when a public layer has no
case here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn

CASES = {
    "Dense": (lambda: fn.Dense(3), (4, 5)),
    "Dense_rank3_nobias": (lambda: fn.Dense(2, use_bias=False), (3, 2, 4)),
    "Conv1D": (lambda: fn.Conv1D(4, 3, stride=2, padding="VALID", dilation=2), (2, 11, 3)),
    "Conv2D": (lambda: fn.Conv2D(4, (3, 2), stride=(2, 1), dilation=(1, 2)), (2, 7, 6, 3)),
    "Conv2D_groups": (lambda: fn.Conv2D(4, 3, padding=1, groups=2), (2, 5, 5, 4)),
    "ConvTranspose2D": (lambda: fn.ConvTranspose2D(3, 3, stride=2), (2, 4, 3, 2)),
    "ConvTranspose2D_valid": (lambda: fn.ConvTranspose2D(2, (2, 3), padding="VALID"), (2, 3, 3, 2)),
    "MaxPool2D": (lambda: fn.MaxPool2D(2), (2, 6, 5, 3)),
    "MaxPool2D_overlapping": (lambda: fn.MaxPool2D(3, stride=2, padding="SAME"), (2, 6, 5, 3)),
    "AvgPool2D": (lambda: fn.AvgPool2D(2), (2, 6, 6, 2)),
    "AvgPool2D_padded": (lambda: fn.AvgPool2D((2, 3), stride=1, padding=1), (2, 4, 4, 2)),
    "GlobalAvgPool": (lambda: fn.GlobalAvgPool(), (2, 3, 4, 5)),
    "Flatten": (lambda: fn.Flatten(), (2, 3, 4, 5)),
    "Reshape": (lambda: fn.Reshape((-1, 3)), (2, 4, 3)),
    "Dropout": (lambda: fn.Dropout(0.5), (4, 6)),
    "BatchNorm": (lambda: fn.BatchNorm(), (6, 3, 3, 4)),
    "LayerNorm": (lambda: fn.LayerNorm(), (4, 3, 6)),
    "GroupNorm": (lambda: fn.GroupNorm(3), (2, 3, 3, 6)),
    "Embedding": (lambda: fn.Embedding(7, 4), (3, 5)),
    "PReLU": (lambda: fn.PReLU(), (4, 6)),
    "Maxout": (lambda: fn.Maxout(3, 2), (4, 5)),
    "Sequential": (
        lambda: fn.Sequential(fn.Dense(6), fn.tanh, fn.Dropout(0.3), fn.Dense(2)),
        (4, 3),
    ),
    "Residual": (lambda: fn.Residual(fn.Sequential(fn.Dense(5), fn.BatchNorm())), (4, 5)),
    "Parallel": (lambda: fn.Parallel(fn.Dense(2), fn.LayerNorm()), (4, 3)),
    "Lambda": (lambda: fn.Lambda(lambda x: jnp.sin(x) * 2.0), (3, 4)),
    "SimpleRNN_sequences": (lambda: fn.SimpleRNN(3, return_sequences=True), (2, 4, 3)),
    "LSTM": (lambda: fn.LSTM(2, forget_bias=0.5), (2, 3, 4)),
    "GRU_sequences": (lambda: fn.GRU(3, return_sequences=True), (2, 4, 3)),
    "Bidirectional": (lambda: fn.Bidirectional(fn.LSTM(2)), (2, 4, 3)),
    "Bidirectional_sequences": (
        lambda: fn.Bidirectional(fn.GRU(2, return_sequences=True)),
        (2, 3, 3),
    ),
    "WithLengths": (  # input (x, lengths)
        lambda: fn.WithLengths(
            fn.Sequential(fn.Dense(3), fn.tanh, fn.Bidirectional(fn.GRU(2, return_sequences=True)))
        ),
        ((3, 4, 2), (3,)),
    ),
}
INTEGER_INPUT = {"Embedding"}
NOT_LAYERS = {"Layer", "make_layer", "gru_cell", "lstm_cell", "simple_rnn_cell", "sequence_mask"}


def make_case(name, dtype=jnp.float32):
    factory, shape = CASES[name]
    layer = factory()
    out_shape, params, state = layer.init(jax.random.key(0), shape)
    cast = lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a  # noqa: E731
    params, state = jax.tree.map(cast, (params, state))
    if name in INTEGER_INPUT:
        x = jax.random.randint(jax.random.key(1), shape, 0, 7)
    elif isinstance(shape[0], tuple):  # (x, lengths)
        x_shape, lengths_shape = shape
        lengths = jax.random.randint(jax.random.key(2), lengths_shape, 0, x_shape[1] + 1)
        x = (jax.random.normal(jax.random.key(1), x_shape, dtype), lengths)
    else:
        x = jax.random.normal(jax.random.key(1), shape, dtype)
    return layer, out_shape, params, state, x


def weighted_sum(y, seed=2):
    """A scalar with a generic gradient: <y, R> for a fixed random R per leaf."""
    leaves = jax.tree.leaves(y)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return sum(
        jnp.vdot(leaf, jax.random.normal(k, leaf.shape, leaf.dtype))
        for leaf, k in zip(leaves, keys)
    )


def test_every_public_layer_has_a_case():
    covered = {name.split("_")[0] for name in CASES}
    assert set(fn.layers.__all__) - NOT_LAYERS <= covered, set(fn.layers.__all__) - covered


@pytest.mark.parametrize("name", sorted(CASES))
def test_init_shape_is_output_shape(name):
    layer, out_shape, params, state, x = make_case(name)
    for train in (False, True):
        y, _ = layer.apply(params, state, x, key=jax.random.key(3), train=train)
        assert jax.tree.map(lambda a: a.shape, y) == out_shape


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_equals_eager_and_does_not_recompile(name):
    layer, _, params, state, x = make_case(name)
    apply = jax.jit(layer.apply, static_argnames="train")
    for train in (False, True):
        eager = layer.apply(params, state, x, key=jax.random.key(3), train=train)
        jitted = apply(params, state, x, key=jax.random.key(3), train=train)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), eager, jitted
        )
    size = apply._cache_size()
    apply(
        jax.tree.map(lambda a: a + 1 if a.dtype != jnp.int32 else a, params),
        state,
        x,
        key=jax.random.key(4),
        train=True,
    )
    assert apply._cache_size() == size


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_over_examples_equals_batch(name):
    layer, _, params, state, x = make_case(name)

    def one(xi):
        return layer.apply(params, state, jax.tree.map(lambda a: a[None], xi))[0]

    per_example = jax.vmap(one)(x)
    batched, _ = layer.apply(params, state, x)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a[:, 0], b, rtol=1e-5, atol=1e-6),
        per_example,
        batched,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_eval_mode_returns_state_unchanged(name):
    layer, _, params, state, x = make_case(name)
    _, new_state = layer.apply(params, state, x)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    jax.tree.map(np.testing.assert_array_equal, new_state, state)


TRAIN_DEPENDENT = {"Dropout", "BatchNorm", "Sequential", "Residual"}
GRAD_CASES = [(name, False) for name in sorted(CASES)] + [
    (name, True) for name in sorted(TRAIN_DEPENDENT)
]


@pytest.mark.parametrize(("name", "train"), GRAD_CASES)
def test_gradients_match_finite_differences(name, train, x64):
    layer, _, params, state, x = make_case(name, jnp.float64)
    key = jax.random.key(3)

    def loss(params, x):
        return weighted_sum(layer.apply(params, state, x, key=key, train=train)[0])

    if name in INTEGER_INPUT:
        fn.testing.check_grads(lambda p: loss(p, x), (params,))
    elif isinstance(x, tuple):  # (x, lengths): no gradient w.r.t. integer lengths
        fn.testing.check_grads(lambda p, xs: loss(p, (xs, x[1])), (params, x[0]))
    else:
        fn.testing.check_grads(loss, (params, x))


WITH_PARAMS = sorted(name for name in CASES if jax.tree.leaves(make_case(name)[2]))


@pytest.mark.parametrize("name", WITH_PARAMS)
def test_per_example_gradients_equal_a_loop(name):
    layer, _, params, state, x = make_case(name)

    def loss(params, xi):
        return weighted_sum(layer.apply(params, state, jax.tree.map(lambda a: a[None], xi))[0])

    grad = jax.jit(jax.grad(loss))
    per_example = jax.vmap(grad, in_axes=(None, 0))(params, x)
    for i in range(len(jax.tree.leaves(x)[0])):
        single = grad(params, jax.tree.map(lambda a, i=i: a[i], x))
        jax.tree.map(
            lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6),
            per_example,
            single,
        )
