"""BatchNorm, LayerNorm, GroupNorm against numpy; Dropout's train/eval contract."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn

RNG = np.random.default_rng(0)


def standardise(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def test_batchnorm_train_uses_batch_statistics_and_updates_running_ones():
    bn = fn.BatchNorm(momentum=0.8, eps=1e-3)
    x = RNG.standard_normal((8, 3, 3, 4)) * 3 + 2
    _, params, state = bn.init(jax.random.key(0), x.shape)
    np.testing.assert_array_equal(state["mean"], np.zeros(4))
    np.testing.assert_array_equal(state["var"], np.ones(4))
    params = {"scale": jnp.arange(1.0, 5.0), "bias": jnp.arange(4.0) / 10}
    y, new_state = bn.apply(params, state, jnp.asarray(x, jnp.float32), train=True)
    expected = standardise(x, (0, 1, 2), 1e-3) * np.arange(1.0, 5.0) + np.arange(4.0) / 10
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    batch_var = x.var(axis=(0, 1, 2))  # biased (population) variance
    np.testing.assert_allclose(new_state["mean"], 0.2 * x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(new_state["var"], 0.8 + 0.2 * batch_var, rtol=1e-5)


def test_batchnorm_eval_uses_running_statistics_and_keeps_state():
    bn = fn.BatchNorm(eps=1e-5)
    x = RNG.standard_normal((5, 4))
    _, params, _ = bn.init(jax.random.key(0), x.shape)
    state = {"mean": jnp.array([1.0, -1.0, 0.5, 0.0]), "var": jnp.array([4.0, 1.0, 0.25, 2.0])}
    y, new_state = bn.apply(params, state, jnp.asarray(x, jnp.float32))
    expected = (x - np.array([1.0, -1.0, 0.5, 0.0])) / np.sqrt(
        np.array([4.0, 1.0, 0.25, 2.0]) + 1e-5
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert new_state is state


def test_batchnorm_running_statistics_converge_to_the_data():
    bn = fn.BatchNorm(momentum=0.9)
    _, params, state = bn.init(jax.random.key(0), (64, 2))
    step = jax.jit(lambda s, x: bn.apply(params, s, x, train=True)[1])
    for i in range(200):
        x = jax.random.normal(jax.random.key(i), (64, 2)) * jnp.array([2.0, 0.5]) + jnp.array(
            [3.0, -1.0]
        )
        state = step(state, x)
    np.testing.assert_allclose(state["mean"], [3.0, -1.0], atol=0.15)
    np.testing.assert_allclose(state["var"], [4.0, 0.25], rtol=0.15)


def test_batchnorm_two_pass_variance_is_stable_for_large_means():
    bn = fn.BatchNorm()
    x = jnp.asarray(1e4 + RNG.standard_normal((256, 1)), jnp.float32)
    _, params, state = bn.init(jax.random.key(0), x.shape)
    y, _ = bn.apply(params, state, x, train=True)
    np.testing.assert_allclose(float(y.std()), 1.0, rtol=1e-2)


def test_layernorm_and_groupnorm_match_numpy():
    x = RNG.standard_normal((2, 3, 3, 6)) * 2 + 1
    ln = fn.LayerNorm(eps=1e-5)
    _, params, state = ln.init(jax.random.key(0), x.shape)
    y, _ = ln.apply(params, state, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(y, standardise(x, (-1,), 1e-5), rtol=1e-4, atol=1e-5)

    gn = fn.GroupNorm(3, eps=1e-5)
    _, params, state = gn.init(jax.random.key(0), x.shape)
    y, _ = gn.apply(params, state, jnp.asarray(x, jnp.float32))
    grouped = x.reshape(2, 3, 3, 3, 2)
    expected = standardise(grouped, (1, 2, 4), 1e-5).reshape(x.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_dropout_is_identity_in_eval():
    x = jnp.asarray(RNG.standard_normal((10, 10)), jnp.float32)
    y, _ = fn.Dropout(0.5).apply({}, {}, x)
    assert y is x


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_drops_with_probability_rate_and_scales_the_rest(rate):
    x = jnp.ones((200, 500))
    y, _ = fn.Dropout(rate).apply({}, {}, x, key=jax.random.key(0), train=True)
    kept = np.asarray(y) != 0
    np.testing.assert_allclose(np.asarray(y)[kept], 1.0 / (1.0 - rate), rtol=1e-6)
    assert abs((1 - kept.mean()) - rate) < 0.01
    assert abs(float(y.mean()) - 1.0) < 0.05


def test_dropout_needs_a_key_in_training_and_a_valid_rate():
    with pytest.raises(ValueError, match="Dropout.*key"):
        fn.Dropout(0.5).apply({}, {}, jnp.ones(3), train=True)
    with pytest.raises(ValueError, match=r'Sequential\["1"\] Dropout.*key'):
        net = fn.Sequential(fn.Dense(2), fn.Dropout(0.5))
        _, params, state = net.init(jax.random.key(0), (1, 2))
        net.apply(params, state, jnp.ones((1, 2)), train=True)
    for rate in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="Dropout: rate"):
            fn.Dropout(rate)
    y, _ = fn.Dropout(0.0).apply({}, {}, jnp.ones(3), train=True)
    np.testing.assert_array_equal(y, jnp.ones(3))


def test_dropout_masks_depend_only_on_the_key():
    x = jnp.ones((4, 50))
    d = fn.Dropout(0.5)
    a, _ = d.apply({}, {}, x, key=jax.random.key(1), train=True)
    b, _ = d.apply({}, {}, x, key=jax.random.key(1), train=True)
    c, _ = d.apply({}, {}, x, key=jax.random.key(2), train=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("shape", [(1, 4), (1, 1, 1, 4)])
def test_batchnorm_training_on_one_value_per_channel_raises_eagerly_and_under_jit(shape):
    """One value per channel is its own mean: the output would be the bias and the running
    variance would decay to 0 (PyTorch: "Expected more than 1 value per channel")."""
    bn = fn.BatchNorm()
    _, params, state = bn.init(jax.random.key(0), shape)
    pattern = rf"^BatchNorm: expected more than 1 value per channel when training, got input {re.escape(str(shape))}"
    for apply in (bn.apply, jax.jit(bn.apply, static_argnames="train")):
        with pytest.raises(ValueError, match=pattern):
            apply(params, state, jnp.ones(shape), train=True)
    y, new_state = bn.apply(params, state, jnp.ones(shape))  # eval is fine
    assert y.shape == shape and new_state is state
    y, _ = bn.apply(params, state, jnp.ones((1, 2, 1, 4)), train=True)  # 2 pixels: fine
    assert np.isfinite(y).all()


def test_normalization_hyperparameters_are_checked_when_built():
    with pytest.raises(ValueError, match=r"^BatchNorm: momentum must be in \[0, 1\]"):
        fn.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match=r"^GroupNorm: groups must be a positive int, got 0"):
        fn.GroupNorm(0)
