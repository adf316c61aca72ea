"""fn.summary lists every layer with shapes and counts; its total is the params' size."""

import functools
import math

import jax

import funcnets as fn


def lenet5_shaped():
    return fn.Sequential(
        fn.Conv2D(6, 5, padding="SAME"), fn.tanh, fn.AvgPool2D(2),
        fn.Conv2D(16, 5, padding="VALID"), fn.tanh, fn.AvgPool2D(2),
        fn.Flatten(), fn.Dense(120), fn.tanh, fn.Dense(84), fn.tanh, fn.Dense(10),
    )  # fmt: skip


def test_summary_of_lenet5_lists_every_layer_and_the_true_total():
    net = lenet5_shaped()
    text = fn.summary(net, (1, 28, 28, 1))
    assert isinstance(text, str)
    _, params, _ = net.init(jax.random.key(0), (1, 28, 28, 1))
    total = sum(math.prod(p.shape) for p in jax.tree.leaves(params))
    assert total == 61_706
    assert f"Total params: {total:,}" in text
    lines = text.splitlines()
    for index, name in enumerate(["Conv2D", "tanh", "AvgPool2D", "Conv2D", "tanh", "AvgPool2D",
                                  "Flatten", "Dense", "tanh", "Dense", "tanh", "Dense"]):  # fmt: skip
        assert any(line.split()[:2] == [str(index), name] for line in lines), (index, name)
    assert "(1, 28, 28, 6)" in text and "(1, 5, 5, 16)" in text and "(1, 400)" in text
    assert "(1, 10)" in text and "48,120" in text


def test_summary_shows_nesting_and_state():
    net = fn.Sequential(fn.Residual(fn.Sequential(fn.Dense(4), fn.BatchNorm())), fn.Dense(2))
    text = fn.summary(net, (3, 4))
    assert "0/0" in text and "0/1" in text and "Residual" in text
    assert "Total params: 38" in text and "Total state (non-trainable): 8" in text


def test_summary_is_the_same_when_inits_are_jitted_or_partial():
    """Wrapping a layer's init keeps its description; jit only the whole net's (a jitted
    init returns its output shape as arrays, which a parent's init cannot use)."""

    def build(wrap_child, wrap_net):
        inner = fn.Sequential(wrap_child(fn.Dense(4)), fn.BatchNorm())
        return wrap_net(fn.Sequential(fn.Residual(inner), fn.Dense(2)))

    def jitted(layer):
        return layer._replace(init=jax.jit(layer.init, static_argnums=1))

    def partial(layer):
        return layer._replace(init=functools.partial(layer.init))

    def same(layer):
        return layer

    plain = fn.summary(build(same, same), (3, 4))
    assert ["0/0", "Dense", "(3,", "4)", "20"] in [line.split() for line in plain.splitlines()]
    assert fn.summary(build(partial, jitted), (3, 4)) == plain
    assert fn.summary(build(partial, partial), (3, 4)) == plain


def test_summary_of_a_net_on_tokens_and_lengths():
    net = fn.models.lstm_classifier(4, 3, vocab_size=10, embed_features=5)
    text = fn.summary(net, ((2, 7), (2,)))
    bare = fn.summary(net, (2, 7))  # tokens alone
    assert text == bare.replace("Input shape: (2, 7)", "Input shape: ((2, 7), (2,))")
    rows = [line.split() for line in text.splitlines()]
    assert [".", "WithLengths", "(2,", "3)", "225"] in rows
    assert ["embed", "Embedding", "(2,", "7,", "5)", "50"] in rows  # tokens, not the pair
    assert ["lstm0", "LSTM", "(2,", "4)", "160"] in rows
