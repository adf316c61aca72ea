"""Sequential, Residual, Parallel, Lambda: keys, nesting, key splitting, error paths, and
per-call keywords (a recurrent layer's mask) passed on to the children that take them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn


def shapes(tree):
    return jax.tree.map(jnp.shape, tree)


def test_sequential_keys_children_by_position_or_name():
    net = fn.Sequential(fn.Dense(4), fn.relu, fn.Dense(2))
    out, params, state = net.init(jax.random.key(0), (3, 5))
    assert out == (3, 2)
    assert (
        list(params) == ["0", "1", "2"]
        and params["1"] == {}
        and state == {"0": {}, "1": {}, "2": {}}
    )
    named = fn.Sequential(encoder=fn.Dense(4), act=fn.relu, head=fn.Dense(2))
    _, params, _ = named.init(jax.random.key(0), (3, 5))
    assert list(params) == ["encoder", "act", "head"]
    assert shapes(params["head"]) == {"w": (4, 2), "b": (2,)}
    with pytest.raises(ValueError, match="either positional"):
        fn.Sequential(fn.Dense(1), head=fn.Dense(1))


def test_sequential_computes_the_composition():
    net = fn.Sequential(fn.Dense(4), fn.tanh, fn.Dense(2))
    _, params, state = net.init(jax.random.key(0), (3, 5))
    x = jax.random.normal(jax.random.key(1), (3, 5))
    y, _ = net.apply(params, state, x)
    h = jnp.tanh(x @ params["0"]["w"] + params["0"]["b"])
    np.testing.assert_allclose(y, h @ params["2"]["w"] + params["2"]["b"], rtol=1e-6)


def test_children_get_distinct_keys_and_none_stays_none():
    net = fn.Sequential(fn.Dropout(0.5), fn.Dropout(0.5))
    x = jnp.ones((1, 1000))
    y, _ = net.apply({"0": {}, "1": {}}, {"0": {}, "1": {}}, x, key=jax.random.key(0), train=True)
    single, _ = fn.Dropout(0.5).apply({}, {}, x, key=jax.random.key(0), train=True)
    assert set(np.unique(np.asarray(y))) <= {0.0, 4.0}
    assert not np.array_equal(np.asarray(y) > 0, np.asarray(single) > 0)
    _, p1, _ = fn.Sequential(fn.Dense(3), fn.Dense(3)).init(jax.random.key(0), (1, 3))
    assert not np.allclose(p1["0"]["w"], p1["1"]["w"])
    y, _ = net.apply({"0": {}, "1": {}}, {"0": {}, "1": {}}, x)  # eval needs no key
    np.testing.assert_array_equal(y, x)


def test_residual_adds_input_and_keeps_inner_params_unnested():
    inner = fn.Dense(3)
    res = fn.Residual(inner)
    out, params, state = res.init(jax.random.key(0), (2, 3))
    assert out == (2, 3) and set(params) == {"w", "b"}
    x = jax.random.normal(jax.random.key(1), (2, 3))
    y, _ = res.apply(params, state, x)
    np.testing.assert_allclose(y, x + inner.apply(params, state, x)[0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"Residual Dense maps \(2, 3\) to \(2, 4\)"):
        fn.Residual(fn.Dense(4)).init(jax.random.key(0), (2, 3))


def test_parallel_returns_a_tuple_and_keys_children():
    net = fn.Sequential(
        fn.Parallel(fn.Dense(2), fn.Dense(3)), fn.Lambda(lambda ys: jnp.concatenate(ys, axis=-1))
    )
    out, params, _ = net.init(jax.random.key(0), (4, 5))
    assert out == (4, 5) and list(params["0"]) == ["0", "1"]
    par = fn.Parallel(fn.Dense(2), fn.relu)
    out, params, state = par.init(jax.random.key(0), (4, 5))
    assert out == ((4, 2), (4, 5))
    y, _ = par.apply(params, state, jnp.ones((4, 5)))
    assert isinstance(y, tuple) and len(y) == 2


def test_lambda_infers_its_output_shape_without_computing():
    calls = []

    def f(x):
        calls.append(type(x))
        return x.reshape(x.shape[0], -1)[:, :3]

    out, params, state = fn.Lambda(f).init(jax.random.key(0), (2, 4, 5))
    assert out == (2, 3) and params == {} and state == {}
    assert all(t is not np.ndarray for t in calls)


def test_state_flows_through_combinators():
    net = fn.Sequential(fn.Dense(3), fn.Residual(fn.BatchNorm()), fn.Parallel(fn.BatchNorm()))
    _, params, state = net.init(jax.random.key(0), (8, 2))
    x = jax.random.normal(jax.random.key(1), (8, 2)) + 5
    _, new_state = net.apply(params, state, x, train=True)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert not np.allclose(new_state["1"]["mean"], state["1"]["mean"])
    assert not np.allclose(new_state["2"]["0"]["mean"], state["2"]["0"]["mean"])


def Scale(name="Scale"):
    """A parameterless layer whose apply takes a per-call keyword: ``y = factor * x``."""

    def init(key, input_shape):
        return input_shape, {}, {}

    def apply(params, state, x, *, key=None, train=False, factor=1.0):
        return factor * x, state

    return fn.Layer(init, apply, name=name)


def Recorder(seen):
    """A layer whose apply takes any keyword (``**kwargs``) and records what it got."""

    def apply(params, state, x, *, key=None, train=False, **kwargs):
        seen.append(kwargs)
        return x, state

    return fn.Layer(lambda key, shape: (shape, {}, {}), apply, name="Recorder")


def test_per_call_keywords_reach_every_child_that_takes_them():
    x = jnp.arange(1.0, 7.0).reshape(2, 3)
    cases = [  # factor reaches every Scale, through nesting too, and nothing else
        (fn.Sequential(Scale(), fn.relu, fn.Residual(Scale())), (3.0 * x + 9.0 * x,)),
        (fn.Parallel(Scale(), fn.relu), (3.0 * x, x)),
        (fn.Residual(fn.Sequential(fn.Lambda(jnp.sin), Scale())), (x + 3.0 * jnp.sin(x),)),
    ]
    for net, expected in cases:
        _, params, state = net.init(jax.random.key(0), x.shape)
        assert net.accepts("factor") and not net.accepts("mask")
        y, _ = net.apply(params, state, x, factor=3.0)
        for got, want in zip(y if isinstance(y, tuple) else (y,), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    seen = []
    net = fn.Sequential(Scale(), Recorder(seen))
    net.apply({"0": {}, "1": {}}, {"0": {}, "1": {}}, x, factor=2.0, anything="yes")
    assert seen == [{"factor": 2.0, "anything": "yes"}]


def test_a_keyword_no_child_takes_is_a_type_error_naming_the_combinator():
    x = jnp.ones((2, 3))
    cases = [
        (fn.Sequential(fn.Dense(3), fn.Residual(fn.Dense(3))), "Sequential", "Dense, Residual"),
        (fn.Parallel(fn.Dense(3), Scale()), "Parallel", "Dense, Scale"),
        (fn.Residual(fn.Dense(3)), "Residual", "Dense"),
    ]
    for net, name, children in cases:
        _, params, state = net.init(jax.random.key(0), x.shape)
        with pytest.raises(TypeError, match=rf"^{name}: got mask=, which none of its layers takes"):
            net.apply(params, state, x, mask=jnp.ones((2, 3), bool))
        with pytest.raises(TypeError, match=rf"\({children}\)$"):
            net.apply(params, state, x, mask=jnp.ones((2, 3), bool))


def test_mask_reaches_stacked_recurrent_layers_inside_combinators():
    """The same mask reaches every LSTM, through Residual and Bidirectional too."""
    net = fn.Sequential(
        fn.Dense(4),
        fn.Residual(fn.LSTM(4, return_sequences=True)),
        fn.Bidirectional(fn.LSTM(3, return_sequences=True)),
        fn.GRU(2),
    )
    lengths = np.array([5, 2, 3])
    x = np.random.default_rng(0).normal(size=(3, 5, 3)).astype(np.float32)
    _, params, state = net.init(jax.random.key(0), x.shape)
    y, _ = jax.jit(net.apply)(params, state, x, mask=fn.sequence_mask(lengths, 5))
    for i, length in enumerate(lengths):
        alone, _ = net.apply(params, state, x[i : i + 1, :length])
        np.testing.assert_allclose(y[i], alone[0], rtol=1e-5, atol=1e-6)
