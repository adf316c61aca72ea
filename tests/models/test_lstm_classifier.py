"""lstm_classifier on (tokens, lengths): padded batches give each sequence's unpadded result.

The reference is the same net, with the same params, applied to each
sequence alone, cut to its length (no padding, no mask): logits, gradients
and a few training steps must agree to float32 rounding.
"""

import jax
import numpy as np

import funcnets as fn

LOSS = fn.losses.sparse_cross_entropy
LENGTHS = np.array([7, 1, 4], np.int32)
VOCAB, T = 11, 7
SHAPES = ((len(LENGTHS), T), (len(LENGTHS),))  # (tokens, lengths)
NET = fn.models.lstm_classifier(
    5, 3, layers=2, bidirectional=True, vocab_size=VOCAB, embed_features=4
)


def loss_and_logits(params, state, x, y):
    logits, _ = NET.apply(params, state, x)
    return LOSS(logits, y), logits


# ((loss, logits), grads) of a padded batch or of one unpadded sequence (compiled once per length)
grad_of = jax.jit(jax.value_and_grad(loss_and_logits, has_aux=True))


def padded_batch(seed=0):
    """Tokens (3, T) whose padded steps hold other (valid) ids, lengths, labels."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (len(LENGTHS), T)).astype(np.int32)
    labels = rng.integers(0, 3, len(LENGTHS)).astype(np.int32)
    return tokens, LENGTHS, labels


def each_alone(params, state, tokens, labels):
    """((loss, logits), grads) of every sequence alone, cut to its length."""
    return [
        grad_of(params, state, tokens[i : i + 1, :length], labels[i : i + 1])
        for i, length in enumerate(LENGTHS)
    ]


def mean(trees):
    return jax.tree.map(lambda *leaves: sum(leaves) / len(leaves), *trees)


def abstract_init(shape):
    """NET.init's (output shape, params, state), params and state as shapes: nothing computed."""
    out = {}

    def params_and_state(key):
        out["shape"], params, state = NET.init(key, shape)
        return params, state

    params, state = jax.eval_shape(params_and_state, jax.random.key(0))
    return out["shape"], jax.tree.map(np.shape, params), state


def test_shapes_and_param_names():
    out_shape, params, state = abstract_init(SHAPES)
    assert out_shape == (3, 3) and state == {"embed": {}, "lstm0": {}, "lstm1": {}, "head": {}}
    assert params.keys() == {"embed", "lstm0", "lstm1", "head"}
    assert params["embed"]["table"] == (VOCAB, 4)
    assert params["lstm1"]["forward"]["wi"] == (10, 20)  # [forward, backward] of lstm0
    assert abstract_init(SHAPES[0]) == (out_shape, params, state)  # tokens alone


def test_masked_bidirectional_classifier_equals_each_sequence_alone():
    tokens, lengths, labels = padded_batch()
    _, params, state = jax.jit(NET.init, static_argnums=1)(jax.random.key(0), SHAPES)
    (loss, logits), grads = grad_of(params, state, (tokens, lengths), labels)
    alone = each_alone(params, state, tokens, labels)
    for i, ((_, logits_i), _) in enumerate(alone):
        np.testing.assert_allclose(logits[i], logits_i[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, np.mean([loss_i for (loss_i, _), _ in alone]), rtol=1e-6)
    expected = mean([grads_i for _, grads_i in alone])
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # noqa: E731
    jax.tree.map(close, grads, expected)
    # Ids seen only at padded steps get no gradient.
    real = {int(t) for i, length in enumerate(lengths) for t in tokens[i, :length]}
    for row in set(range(VOCAB)) - real:
        np.testing.assert_array_equal(grads["embed"]["table"][row], 0.0)


def test_training_through_fit_on_padded_batches_equals_training_on_each_sequence():
    """fn.train.fit on ((tokens, lengths), labels), full batch, against a hand-written loop
    that averages the gradients of the unpadded sequences, one at a time."""
    optimizer = fn.optim.sgd(0.5)
    tokens, lengths, labels = padded_batch(seed=1)
    ts, history = fn.train.fit(NET, LOSS, optimizer, ((tokens, lengths), labels), epochs=4,
                               batch_size=None, key=jax.random.key(0), progress=False)  # fmt: skip
    start = fn.train.init(NET, optimizer, jax.random.key(0), SHAPES)
    params, opt_state, losses = start.params, optimizer.init(start.params), []
    for _ in range(4):
        alone = each_alone(params, start.state, tokens, labels)
        losses.append(np.mean([loss_i for (loss_i, _), _ in alone]))
        updates, opt_state = optimizer.update(mean([g for _, g in alone]), opt_state, params)
        params = fn.optim.apply_updates(params, updates)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-5)
    assert losses[-1] < losses[0] - 0.1  # it learns
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # noqa: E731
    jax.tree.map(close, ts.params, params)
