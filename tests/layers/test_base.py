"""The Layer type: a two-field named tuple that also describes itself, through jit and partial."""

import functools
import pickle

import jax
import jax.numpy as jnp
import numpy as np

import funcnets as fn
from funcnets.layers import base


def identity_init(key, input_shape):
    return input_shape, {}, {}


def scale_apply(params, state, x, *, key=None, train=False, factor=1.0):
    return x * factor, state


def test_a_layer_is_a_pair_of_functions():
    layer = fn.Layer(identity_init, scale_apply)
    init, apply = layer
    assert (init, apply) == (identity_init, scale_apply) and len(layer) == 2
    assert layer == (identity_init, scale_apply) and isinstance(layer, tuple)
    assert layer.name == "identity_init" and layer.children == ()
    assert layer.accepts("factor") and not layer.accepts("mask")
    assert fn.Layer._make([identity_init, scale_apply]) == layer


def test_description_survives_wrapping_init_and_apply():
    net = fn.Sequential(encoder=fn.Dense(3), rnn=fn.LSTM(2))
    wrapped = [
        net._replace(init=jax.jit(net.init, static_argnums=1)),
        net._replace(init=functools.partial(net.init), apply=jax.jit(net.apply)),
    ]
    for layer in wrapped:
        assert base.layer_name(layer) == "Sequential"
        assert base.layer_children(layer) == net.children
        assert layer.child_input is base.chained
        assert layer.accepts("mask") and not layer.accepts("factor")
    assert isinstance(wrapped[0].init, type(jax.jit(len)))
    copy = pickle.loads(pickle.dumps(fn.Layer(identity_init, scale_apply, name="Scale")))
    assert copy.name == "Scale" and copy.accepts("factor")


def test_accepts_reads_the_signature_through_jit_and_partial():
    def any_keyword(params, state, x, **kwargs):
        return x, state

    def no_signature(*args, **kwargs):
        raise AssertionError

    assert fn.Layer(identity_init, jax.jit(scale_apply)).accepts("factor")
    assert fn.Layer(identity_init, functools.partial(scale_apply, factor=2.0)).accepts("factor")
    assert fn.Layer(identity_init, any_keyword).accepts("anything")
    assert not fn.Layer(identity_init, max).accepts("mask")  # a builtin: no signature to read
    lstm = fn.LSTM(2)
    assert {k for k in ("mask", "initial_carry", "reverse", "factor") if lstm.accepts(k)} == {
        "mask",
        "initial_carry",
        "reverse",
    }
    assert not fn.Dense(2).accepts("mask")
    assert not fn.Layer(identity_init, no_signature, accepts=lambda k: False).accepts("x")


def test_accepts_is_read_once_not_on_every_call(monkeypatch):
    dense = fn.Dense(3)
    net = fn.Sequential(dense, fn.Residual(fn.Layer(identity_init, scale_apply)))
    _, params, state = net.init(jax.random.key(0), (2, 4))

    def fail(*args, **kwargs):
        raise AssertionError("a signature read in apply")

    monkeypatch.setattr(base, "keywords_of", fail)
    y, _ = net.apply(params, state, jnp.ones((2, 4)), factor=3.0)
    h, _ = dense.apply(params["0"], {}, jnp.ones((2, 4)))
    np.testing.assert_allclose(y, 4.0 * h, rtol=1e-6)
