import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn

LOSS = fn.losses.sparse_cross_entropy


def _setup(net, shape, seed=0):
    _, params, state = net.init(jax.random.key(seed), shape)
    x = jax.random.normal(jax.random.key(seed + 1), shape)
    y = jax.random.randint(jax.random.key(seed + 2), shape[:1], 0, 2)
    return params, state, x, y


def test_time_step_gradient_norms_match_the_gradient_by_hand():
    net = fn.models.lstm_classifier(6, 3)
    params, state, x, y = _setup(net, (4, 9, 5))
    per_step = jax.jit(
        functools.partial(fn.diagnostics.time_step_gradient_norms, net, loss_fn=LOSS)
    )
    norms = per_step(params, state, x, y)
    grad = jax.jit(jax.grad(lambda x: LOSS(net.apply(params, state, x)[0], y)))(x)
    expected = [np.linalg.norm(np.asarray(grad[:, t])) for t in range(9)]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)
    assert norms.shape == (9,)


def test_time_step_gradient_norms_are_zero_where_the_net_does_not_look():
    net = fn.Sequential(fn.Lambda(lambda x: x[:, 3:]), fn.SimpleRNN(4), fn.Dense(3))
    params, state, x, y = _setup(net, (2, 7, 3))
    norms = fn.diagnostics.time_step_gradient_norms(net, params, state, x, y, loss_fn=LOSS)
    assert np.all(np.asarray(norms[:3]) == 0.0) and np.all(np.asarray(norms[3:]) > 0.0)


def test_time_step_gradient_norms_jit_with_the_net_closed_over():
    net = fn.models.lstm_classifier(4, 3)
    params, state, x, y = _setup(net, (2, 5, 3))
    f = functools.partial(fn.diagnostics.time_step_gradient_norms, net, loss_fn=LOSS)
    np.testing.assert_allclose(jax.jit(f)(params, state, x, y), f(params, state, x, y), rtol=1e-5)


def test_time_step_gradient_norms_reject_an_input_without_time_axis():
    net = fn.Dense(3)
    params, state, x, y = _setup(net, (4, 5))
    with pytest.raises(ValueError, match="time_step_gradient_norms"):
        fn.diagnostics.time_step_gradient_norms(net, params, state, x[:, 0], y, loss_fn=LOSS)


def test_layer_gradient_norms_follow_the_net_order_and_equal_leaf_norms():
    net = fn.models.mlp([4] * 11 + [3])
    params, state, x, y = _setup(net, (4, 5))
    norms = fn.diagnostics.layer_gradient_norms(net, params, state, x, y, loss_fn=LOSS)
    assert [k for k in norms if k.endswith("/w")] == [f"dense{i}/w" for i in range(12)]
    grads = jax.jit(jax.grad(lambda p: LOSS(net.apply(p, state, x)[0], y)))(params)
    for i in (0, 5, 11):
        np.testing.assert_allclose(
            norms[f"dense{i}/w"], np.linalg.norm(grads[f"dense{i}"]["w"]), rtol=1e-5
        )


def test_gradient_norms_without_a_net_and_through_residual_and_bidirectional():
    assert list(fn.diagnostics.gradient_norms({"b": jnp.ones(4), "a": [jnp.ones(1)]})) == [
        "b",
        "a/0",
    ]
    net = fn.Sequential(
        fn.Bidirectional(fn.GRU(3, return_sequences=True)), fn.Residual(fn.Dense(6)), fn.GRU(2)
    )
    params, state, x, y = _setup(net, (2, 4, 3))
    norms = fn.diagnostics.layer_gradient_norms(net, params, state, x, y, loss_fn=LOSS)
    assert list(norms)[:4] == ["0/forward/bh", "0/forward/bi", "0/forward/wh", "0/forward/wi"]
    assert "1/w" in norms and list(norms)[-1].startswith("2/")


def test_deep_sigmoid_gradients_vanish_and_relu_ones_do_not():
    ratios = {}
    for activation in (fn.sigmoid, fn.relu):
        net = fn.models.mlp([32] * 20 + [3], activation=activation)
        params, state, x, y = _setup(net, (64, 16))
        per_layer = functools.partial(fn.diagnostics.layer_gradient_norms, net, loss_fn=LOSS)
        norms = jax.jit(per_layer)(params, state, x, y)  # keys come back sorted: fine here
        ratios[activation] = float(norms["dense0/w"] / norms["dense20/w"])
    assert ratios[fn.sigmoid] < 1e-6 < 1e-2 < ratios[fn.relu]


def test_activation_norms_are_rms_of_each_child_output():
    net = fn.Sequential(a=fn.Dense(4), b=fn.tanh)
    params, state, x, _ = _setup(net, (3, 2))
    norms = fn.diagnostics.activation_norms(net, params, state, x)
    hidden = x @ params["a"]["w"] + params["a"]["b"]
    np.testing.assert_allclose(norms["a"], np.sqrt(np.mean(np.square(hidden))), rtol=1e-5)
    np.testing.assert_allclose(norms["b"], np.sqrt(np.mean(np.tanh(hidden) ** 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="activation_norms: expected a Sequential"):
        fn.diagnostics.activation_norms(fn.Dense(2), {}, {}, x)
