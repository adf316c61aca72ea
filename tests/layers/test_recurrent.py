"""Recurrent layers: SimpleRNN, LSTM, GRU, Bidirectional, their cells and sequence_mask.

The references are hand-stepped numpy loops written straight from the
documented equations and PyTorch's parameter layouts (LSTM gate blocks
i, f, g, o; GRU blocks r, z, n with the reset gate applied to
``h @ wh_n + bh_n``), in float64, with no library code. Beyond them: the
cells scanned by `lax.scan` equal the layers, gradients match finite
differences, a mask makes a padded batch equal its unpadded sequences
(zero outputs and zero gradients at padded steps), Bidirectional is the
concatenation of a forward and a reversed layer, init shapes and values,
errors that name the layer, jit / vmap / unroll invariance, and WithLengths
(``(x, lengths)`` inputs masking every recurrent layer inside).

Compiling dominates the run time (every eager op on a new shape compiles too),
so inputs, params and masks are numpy arrays, outputs are sliced as numpy
arrays, and most tests go through `runner`: one cached jitted apply per layer
configuration, shared between tests.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnets as fn

KEY = jax.random.key(0)
B, T, F, H = 3, 5, 4, 3
LAYERS = {"SimpleRNN": fn.SimpleRNN, "LSTM": fn.LSTM, "GRU": fn.GRU}
CELLS = {"SimpleRNN": fn.simple_rnn_cell, "LSTM": fn.lstm_cell, "GRU": fn.gru_cell}
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
KINDS = sorted(LAYERS)
LENGTHS = [5, 2, 0, 3]  # a right-padded batch of T = 5 steps: one full, one empty


# --- hand-stepped numpy references ---------------------------------------------------------


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_simple_rnn(p, x, h):
    """``h_t = tanh(x_t wi + h_{t-1} wh + b)``; returns (outputs (batch, time, h), last h)."""
    outputs = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ p["wi"] + h @ p["wh"] + p["b"])
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def np_lstm(p, x, carry):
    """Gate blocks i, f, g, o of ``x wi + h wh + b``; ``c = f c + i g``; ``h = o tanh(c)``."""
    h, c = carry
    n = h.shape[-1]
    outputs = []
    for t in range(x.shape[1]):
        a = x[:, t] @ p["wi"] + h @ p["wh"] + p["b"]
        i = sigmoid(a[:, 0:n])
        f = sigmoid(a[:, n : 2 * n])
        g = np.tanh(a[:, 2 * n : 3 * n])
        o = sigmoid(a[:, 3 * n : 4 * n])
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def np_gru(p, x, h):
    """PyTorch's GRU: ``n = tanh(x wi_n + bi_n + r (h wh_n + bh_n))``, ``h = (1 - z) n + z h``."""
    n = h.shape[-1]
    wi, wh, bi, bh = p["wi"], p["wh"], p["bi"], p["bh"]
    outputs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        r = sigmoid(xt @ wi[:, 0:n] + bi[0:n] + h @ wh[:, 0:n] + bh[0:n])
        z = sigmoid(xt @ wi[:, n : 2 * n] + bi[n : 2 * n] + h @ wh[:, n : 2 * n] + bh[n : 2 * n])
        cand = np.tanh(xt @ wi[:, 2 * n :] + bi[2 * n :] + r * (h @ wh[:, 2 * n :] + bh[2 * n :]))
        h = (1.0 - z) * cand + z * h
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def reference(kind, p, x, carry, reverse=False):
    """(outputs, last h) of the numpy reference; ``reverse`` runs the flipped input."""
    step = {"SimpleRNN": np_simple_rnn, "LSTM": np_lstm, "GRU": np_gru}[kind]
    if x.shape[1] == 0:  # no steps: no outputs, and the initial h
        h = carry[0] if kind == "LSTM" else carry
        return np.zeros((x.shape[0], 0, h.shape[-1])), h
    if not reverse:
        return step(p, x, carry)
    outputs, last = step(p, x[:, ::-1], carry)
    return outputs[:, ::-1], last


# --- inputs, params, masks (numpy) -----------------------------------------------------------


def random_params(kind, features=F, hidden=H, seed=0, dtype=np.float64):
    """Params in the documented layout, drawn in numpy (biases non-zero)."""
    rng = np.random.default_rng(seed)
    width = GATES[kind] * hidden
    params = {
        "wi": rng.normal(0.0, 0.7, (features, width)),
        "wh": rng.normal(0.0, 0.7, (hidden, width)),
    }
    for name in ("bi", "bh") if kind == "GRU" else ("b",):
        params[name] = rng.normal(0.0, 0.7, (width,))
    return jax.tree.map(lambda a: a.astype(dtype), params)


def bidirectional_params(kind, features=F, hidden=H, dtype=np.float64):
    return {
        "forward": random_params(kind, features, hidden, seed=5, dtype=dtype),
        "backward": random_params(kind, features, hidden, seed=6, dtype=dtype),
    }


def random_carry(kind, batch=B, hidden=H, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(0.0, 0.8, (batch, hidden)).astype(dtype) for _ in range(2)]
    return tuple(parts) if kind == "LSTM" else parts[0]


def zero_carry(kind, batch=B, hidden=H):
    zeros = np.zeros((batch, hidden))
    return (zeros, zeros) if kind == "LSTM" else zeros


def take(carry, i):
    """Example ``i`` of a numpy carry, keeping a batch axis of 1."""
    return jax.tree.map(lambda a: a[i : i + 1], carry)


def random_input(shape, seed=2, dtype=np.float64):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(dtype)


def padded_input(lengths, seed=4, dtype=np.float64):
    """A right-padded (batch, T, F) batch whose padded steps hold large garbage."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (len(lengths), T, F))
    for i, length in enumerate(lengths):
        x[i, length:] = 50.0 * rng.normal(size=(T - length, F))
    return x.astype(dtype)


def np_mask(lengths, time=T):
    return np.arange(time) < np.asarray(lengths)[:, None]


def weighted_sum(y, seed=3):
    """A scalar with a generic gradient: <y, R> for a fixed random R (a numpy constant: a
    jax.random draw would compile threefry into every gradient program)."""
    r = np.random.default_rng(seed).normal(size=y.shape).astype(y.dtype)
    return jnp.vdot(y, r)


@functools.cache
def runner(kind, return_sequences=False, reverse=False, bidirectional=False, unroll=1):
    """The jitted ``(params, x, mask=None, initial_carry=None) -> y`` of one configuration."""
    rnn = LAYERS[kind](H, return_sequences, unroll=unroll)
    if bidirectional:
        assert not reverse
        layer = fn.Bidirectional(rnn)

        def run(params, x, mask=None, initial_carry=None):
            return layer.apply(params, {}, x, mask=mask, initial_carry=initial_carry)[0]

    else:

        def run(params, x, mask=None, initial_carry=None):
            kwargs = {"mask": mask, "initial_carry": initial_carry, "reverse": reverse}
            return rnn.apply(params, {}, x, **kwargs)[0]

    jitted = jax.jit(run)
    return lambda *args, **kwargs: np.asarray(jitted(*args, **kwargs))


# --- 1. hand-stepped numpy references --------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_matches_hand_stepped_numpy(kind, return_sequences, x64):
    p, x = random_params(kind), random_input((B, T, F))
    run = runner(kind, return_sequences)
    for h0 in (None, random_carry(kind)):
        outputs, last = reference(kind, p, x, zero_carry(kind) if h0 is None else h0)
        expected = outputs if return_sequences else last
        y = run(p, x, initial_carry=h0)
        assert y.dtype == np.float64
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_eager_float32_matches_numpy(kind):
    p, x = random_params(kind, dtype=np.float32), random_input((B, T, F), dtype=np.float32)
    y, state = LAYERS[kind](H, True).apply(p, {}, jnp.asarray(x))
    assert state == {}
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, reference(kind, p, x, zero_carry(kind))[0], rtol=0, atol=2e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_reverse_is_the_reversed_input_flipped_back(kind, return_sequences, x64):
    p, x, h0 = random_params(kind), random_input((B, T, F)), random_carry(kind)
    y = runner(kind, return_sequences, reverse=True)(p, x, initial_carry=h0)
    # Outputs stay aligned with the input's time order; the last h is the one after step 0.
    flipped = runner(kind, return_sequences)(p, x[:, ::-1], initial_carry=h0)
    np.testing.assert_allclose(y, flipped[:, ::-1] if return_sequences else flipped, rtol=1e-12)
    outputs, last = reference(kind, p, x, h0, reverse=True)
    np.testing.assert_allclose(y, outputs if return_sequences else last, rtol=1e-10, atol=1e-12)
    if return_sequences:  # and it differs from the forward run
        assert not np.allclose(y, runner(kind, True)(p, x, initial_carry=h0))


# --- 2. cells ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_scanned_cell_equals_layer(kind, x64):
    p, x, h0 = random_params(kind), random_input((B, T, F)), random_carry(kind)
    cell = CELLS[kind]
    carry, ys = jax.lax.scan(lambda c, x_t: cell(p, c, x_t), h0, np.swapaxes(x, 0, 1))
    seq = runner(kind, True)(p, x, initial_carry=h0)
    last = runner(kind, False)(p, x, initial_carry=h0)
    np.testing.assert_allclose(np.swapaxes(ys, 0, 1), seq, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(carry[0] if kind == "LSTM" else carry, last, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_step_matches_numpy_and_returns_carry_and_output(kind, x64):
    p, x, h0 = random_params(kind, seed=8), random_input((B, F), seed=9), random_carry(kind)
    _, h_ref = reference(kind, p, x[:, None], h0)
    new, out = CELLS[kind](*jax.tree.map(jnp.asarray, (p, h0, x)))
    np.testing.assert_allclose(out, h_ref, rtol=1e-12, atol=1e-14)
    if kind == "LSTM":
        h, c = new
        np.testing.assert_array_equal(h, out)
        a = x @ p["wi"] + h0[0] @ p["wh"] + p["b"]  # c' = sigma(f) c + sigma(i) tanh(g)
        c_ref = sigmoid(a[:, H : 2 * H]) * h0[1] + sigmoid(a[:, :H]) * np.tanh(a[:, 2 * H : 3 * H])
        np.testing.assert_allclose(c, c_ref, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_array_equal(new, out)


# --- 3. gradients against finite differences -------------------------------------------------


@pytest.mark.parametrize("name", [*KINDS, "Bidirectional"])
def test_gradients_match_finite_differences(name, x64):
    """W.r.t. params, input (and initial carry): one loss sums an unmasked and a masked run.

    A wrong gradient in either run shows in the sum; one loss per layer halves the compiling.
    """
    shape = (3, 4, 3)
    x = random_input(shape, seed=11)
    mask = np_mask([4, 2, 1], 4)
    if name == "Bidirectional":  # unmasked last h, masked sequence outputs
        last_layer = fn.Bidirectional(fn.SimpleRNN(2))
        seq_layer = fn.Bidirectional(fn.SimpleRNN(2, return_sequences=True))
        params = bidirectional_params("SimpleRNN", features=3, hidden=2)

        def loss(params, x):
            y_last = last_layer.apply(params, {}, x)[0]
            y_seq = seq_layer.apply(params, {}, x, mask=mask)[0]
            return weighted_sum(y_last, 5) + weighted_sum(y_seq, 6)

        fn.testing.check_grads(loss, (params, x))
    else:  # unmasked sequence outputs; masked, reversed last h from a given initial carry
        seq_layer, last_layer = LAYERS[name](3, return_sequences=True), LAYERS[name](3)
        params = random_params(name, features=3, hidden=3, seed=12)
        h0 = random_carry(name, batch=3, hidden=3)

        def loss(params, x, h0):
            y_seq = seq_layer.apply(params, {}, x)[0]
            y_last = last_layer.apply(params, {}, x, mask=mask, initial_carry=h0, reverse=True)[0]
            return weighted_sum(y_seq, 5) + weighted_sum(y_last, 6)

        fn.testing.check_grads(loss, (params, x, h0))


# --- 4. masking ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_masked_batch_equals_unpadded_sequences(kind, reverse, x64):
    """Against the reference on each unpadded sequence (itself equal to the unpadded layer)."""
    p, x, mask = random_params(kind), padded_input(LENGTHS), np_mask(LENGTHS)
    # Going backwards, from a given initial carry; forwards, from the default zeros.
    h0 = random_carry(kind, batch=len(LENGTHS)) if reverse else zero_carry(kind, len(LENGTHS))
    carry = h0 if reverse else None
    seq = runner(kind, True, reverse)(p, x, mask=mask, initial_carry=carry)
    last = runner(kind, False, reverse)(p, x, mask=mask, initial_carry=carry)
    for i, length in enumerate(LENGTHS):
        outputs, h = reference(kind, p, x[i : i + 1, :length], take(h0, i), reverse)
        np.testing.assert_allclose(seq[i, :length], outputs[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(seq[i, length:], 0.0)
        np.testing.assert_allclose(last[i], h[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_mask_with_holes_skips_those_steps(kind, x64):
    """A padded step keeps the carry: any mask equals the sequence with its steps removed."""
    p, x = random_params(kind), random_input((1, T, F))
    keep = np.array([False, True, False, True, True])
    y = runner(kind, True)(p, x, mask=keep[None])
    outputs, _ = reference(kind, p, x[:, keep], zero_carry(kind, 1))
    np.testing.assert_allclose(y[0, keep], outputs[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(y[0, ~keep], 0.0)
    if kind == "GRU":  # a 0/1 integer mask means the same as the bool one
        np.testing.assert_array_equal(runner(kind, True)(p, x, mask=keep[None].astype(int)), y)


@pytest.mark.parametrize("name", [*KINDS, "Bidirectional"])
def test_gradient_wrt_padded_inputs_is_exactly_zero(name):
    """Through the sequence outputs and (running backwards) the last h, summed: one compile."""
    x, mask = padded_input(LENGTHS, dtype=np.float32), np_mask(LENGTHS)
    if name == "Bidirectional":
        seq_layer, last_layer = fn.Bidirectional(fn.SimpleRNN(H, True)), None
        params = bidirectional_params("SimpleRNN", dtype=np.float32)
    else:
        seq_layer, last_layer = LAYERS[name](H, True), LAYERS[name](H)
        params = random_params(name, dtype=np.float32)

    def loss(x):
        total = weighted_sum(seq_layer.apply(params, {}, x, mask=mask)[0], 5)
        if last_layer is not None:
            last = last_layer.apply(params, {}, x, mask=mask, reverse=True)[0]
            total = total + weighted_sum(last, 6)
        return total

    grad = np.asarray(jax.jit(jax.grad(loss))(x))
    for i, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(grad[i, length:], 0.0)
        assert np.all(np.abs(grad[i, :length]).sum(-1) > 0)


def test_bidirectional_masked_equals_each_sequence_alone():
    """Layer against layer: the backward direction starts at the last real step."""
    params = bidirectional_params("LSTM", dtype=np.float32)
    lengths = [5, 2, 3]
    x, mask = padded_input(lengths, dtype=np.float32), np_mask(lengths)
    seq_run, last_run = (runner("LSTM", rs, bidirectional=True) for rs in (True, False))
    seq, last = seq_run(params, x, mask=mask), last_run(params, x, mask=mask)
    for i, length in enumerate(lengths):
        alone = seq_run(params, x[i : i + 1, :length])[0]
        np.testing.assert_allclose(seq[i, :length], alone, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(seq[i, length:], 0.0)
        # Without return_sequences: [forward h after the last real step, backward h after the first].
        expected = np.concatenate([alone[-1, :H], alone[0, H:]])
        np.testing.assert_allclose(last[i], expected, rtol=1e-6, atol=1e-6)


def test_sequence_mask():
    mask = fn.sequence_mask(jnp.array([1, 3, 0, 4]), 4)
    assert mask.dtype == jnp.bool_
    expected = [[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
    np.testing.assert_array_equal(mask, np.array(expected, bool))
    np.testing.assert_array_equal(fn.sequence_mask([2], 3), [[True, True, False]])


# --- 5. Bidirectional ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_shapes(kind):
    for return_sequences in (False, True):
        rnn = LAYERS[kind](H, return_sequences)
        out_shape, params, state = fn.Bidirectional(rnn).init(KEY, (B, T, F))
        assert state == {}
        assert out_shape == ((B, T, 2 * H) if return_sequences else (B, 2 * H))
        one = jax.tree.map(np.shape, rnn.init(KEY, (B, T, F))[1])
        assert jax.tree.map(np.shape, params) == {"forward": one, "backward": one}
        assert not np.allclose(params["forward"]["wi"], params["backward"]["wi"])  # fresh params


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_is_forward_and_reversed_concatenated(kind, x64):
    """Sequence outputs with the default carries, the last h from given ones."""
    params, x = bidirectional_params(kind), random_input((B, T, F))
    carries = (random_carry(kind, seed=7), random_carry(kind, seed=1))
    seq = runner(kind, True, bidirectional=True)(params, x)
    assert seq.shape == (B, T, 2 * H)
    forward = runner(kind, True)(params["forward"], x)
    backward = runner(kind, True, reverse=True)(params["backward"], x)
    np.testing.assert_allclose(seq, np.concatenate([forward, backward], -1), rtol=1e-12)
    last = runner(kind, False, bidirectional=True)(params, x, initial_carry=carries)
    assert last.shape == (B, 2 * H)
    forward = runner(kind, False)(params["forward"], x, initial_carry=carries[0])
    backward = runner(kind, False, reverse=True)(params["backward"], x, initial_carry=carries[1])
    np.testing.assert_allclose(last, np.concatenate([forward, backward], -1), rtol=1e-12)


def test_bidirectional_in_sequential_and_summary():
    net = fn.Sequential(fn.Bidirectional(fn.GRU(H, return_sequences=True)), fn.LSTM(2))
    text = fn.summary(net, (B, T, F))
    assert "Bidirectional" in text and "GRU" in text and "LSTM" in text
    assert "(3, 5, 6)" in text and "(3, 2)" in text
    assert "Total params: 234" in text  # 2 GRUs of 36 + 27 + 9 + 9, an LSTM of 48 + 16 + 8


# --- 6. init ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_init_param_shapes_and_defaults(kind):
    width = GATES[kind] * H
    for return_sequences in (False, True):
        out_shape, params, state = LAYERS[kind](H, return_sequences).init(KEY, (B, T, F))
        assert out_shape == ((B, T, H) if return_sequences else (B, H))
        assert state == {}
    biases = {"bi": (width,), "bh": (width,)} if kind == "GRU" else {"b": (width,)}
    assert jax.tree.map(np.shape, params) == {"wi": (F, width), "wh": (H, width), **biases}
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(params))
    # Glorot-uniform input weights, bound sqrt(6 / (in + out)); zero biases (but the LSTM's f).
    wi = np.asarray(params["wi"])
    bound = np.sqrt(6.0 / (F + width))
    assert np.all(np.abs(wi) <= bound) and np.std(wi) > bound / 4
    if kind != "LSTM":
        for name in biases:
            np.testing.assert_array_equal(params[name], 0.0)
    # Deterministic in the key.
    again = LAYERS[kind](H, True).init(KEY, (B, T, F))[1]
    jax.tree.map(np.testing.assert_array_equal, params, again)
    other = LAYERS[kind](H, True).init(jax.random.key(1), (B, T, F))[1]
    assert not np.allclose(params["wi"], other["wi"])
    assert not np.allclose(params["wh"], other["wh"])


@pytest.mark.parametrize("forget_bias", [1.0, 0.0, 2.5])
def test_lstm_forget_gate_bias(forget_bias):
    _, params, _ = fn.LSTM(H, forget_bias=forget_bias).init(KEY, (B, T, F))
    b = np.asarray(params["b"])
    np.testing.assert_array_equal(b[H : 2 * H], forget_bias)  # blocks i, f, g, o
    np.testing.assert_array_equal(np.delete(b, np.s_[H : 2 * H]), 0.0)


def constant(value):
    return lambda key, shape, dtype=jnp.float32: jnp.full(shape, value, dtype)


def test_lstm_forget_bias_is_added_to_b_init():
    _, params, _ = fn.LSTM(H, forget_bias=2.0, b_init=constant(0.5)).init(KEY, (B, T, F))
    b = np.asarray(params["b"])
    np.testing.assert_array_equal(b[H : 2 * H], 2.5)
    np.testing.assert_array_equal(np.delete(b, np.s_[H : 2 * H]), 0.5)


@pytest.mark.parametrize("kind", KINDS)
def test_each_gate_recurrent_block_is_orthogonal(kind):
    hidden = 4
    _, params, _ = LAYERS[kind](hidden).init(KEY, (B, T, F))
    wh = np.asarray(params["wh"], np.float64)
    blocks = [wh[:, k * hidden : (k + 1) * hidden] for k in range(GATES[kind])]
    for block in blocks:
        np.testing.assert_allclose(block.T @ block, np.eye(hidden), atol=1e-5)
        np.testing.assert_allclose(block @ block.T, np.eye(hidden), atol=1e-5)
    for k in range(1, len(blocks)):  # each block drawn with its own key
        assert not np.allclose(blocks[0], blocks[k])


@pytest.mark.parametrize("kind", KINDS)
def test_custom_initializers_are_used(kind):
    kwargs = {"forget_bias": 0.0} if kind == "LSTM" else {}
    inits = {"w_init": constant(0.25), "h_init": constant(0.5), "b_init": constant(0.75)}
    _, params, _ = LAYERS[kind](H, **inits, **kwargs).init(KEY, (B, T, F))
    np.testing.assert_array_equal(params["wi"], 0.25)
    np.testing.assert_array_equal(params["wh"], 0.5)
    for name in ("bi", "bh") if kind == "GRU" else ("b",):
        np.testing.assert_array_equal(params[name], 0.75)


# --- 7. errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_errors_name_the_layer(kind):
    layer = LAYERS[kind](H)
    params = random_params(kind, dtype=np.float32)
    x = np.ones((B, T, F), np.float32)
    with pytest.raises(ValueError, match=rf"{kind}: expected input of rank 3 .*got \(3, 4\)"):
        layer.init(KEY, (B, F))
    with pytest.raises(
        ValueError, match=rf"{kind}: expected input \(batch, time, 4\), got \(5, 4\)"
    ):
        layer.apply(params, {}, x[0])
    with pytest.raises(ValueError, match=rf"{kind}: expected input .*got \(3, 5, 4, 1\)"):
        layer.apply(params, {}, x[..., None])
    with pytest.raises(
        ValueError, match=rf"{kind}: expected input \(batch, time, 4\), got \(3, 5, 6\)"
    ):
        layer.apply(params, {}, np.ones((B, T, F + 2), np.float32))
    with pytest.raises(ValueError, match=rf"{kind}: mask must be .*got shape \(3, 4\)"):
        layer.apply(params, {}, x, mask=np.ones((B, T - 1), bool))
    with pytest.raises(ValueError, match=rf"{kind}: mask must be"):
        layer.apply(params, {}, x, mask=np.ones((B,), bool))
    bad = np.zeros((B, H + 1), np.float32)
    with pytest.raises(ValueError, match=rf"{kind}: initial_carry must be"):
        layer.apply(params, {}, x, initial_carry=(bad, bad) if kind == "LSTM" else bad)
    bad = np.zeros((B + 1, H), np.float32)
    with pytest.raises(ValueError, match=rf"{kind}: initial_carry must be"):
        layer.apply(params, {}, x, initial_carry=(bad, bad) if kind == "LSTM" else bad)
    with pytest.raises(ValueError, match=rf"{kind}: hidden must be a positive int, got 0"):
        LAYERS[kind](0)
    with pytest.raises(ValueError, match=rf"{kind}: hidden must be a positive int"):
        LAYERS[kind](-2)
    with pytest.raises(ValueError, match=rf"{kind}: unroll must be a positive int, got 0"):
        LAYERS[kind](H, unroll=0)


def test_lstm_initial_carry_must_be_a_pair():
    layer = fn.LSTM(H)
    params = random_params("LSTM", dtype=np.float32)
    x = np.ones((B, T, F), np.float32)
    h = np.zeros((B, H), np.float32)
    expected = (
        r"LSTM: initial_carry must be shaped as the zero carry, .*\(\(3, 3\), \(3, 3\)\), got "
    )
    with pytest.raises(ValueError, match=expected + r"\(3, 3\)$"):
        layer.apply(params, {}, x, initial_carry=h)
    with pytest.raises(ValueError, match=expected + r"\(\(3, 3\), \(3, 3\), \(3, 3\)\)"):
        layer.apply(params, {}, x, initial_carry=(h, h, h))
    with pytest.raises(ValueError, match=expected + r"\(\(3, 3\), \(4, 3\)\)"):
        layer.apply(params, {}, x, initial_carry=(h, np.zeros((B + 1, H), np.float32)))
    y = layer.apply(params, {}, x, initial_carry=[h, h])[0]  # a list works as the pair
    np.testing.assert_array_equal(y, layer.apply(params, {}, x)[0])


def test_bidirectional_errors():
    with pytest.raises(
        ValueError, match=r"Bidirectional: expected a SimpleRNN, LSTM or GRU .*Dense"
    ):
        fn.Bidirectional(fn.Dense(3))
    with pytest.raises(ValueError, match=r"Bidirectional: expected .*got Bidirectional"):
        fn.Bidirectional(fn.Bidirectional(fn.GRU(H)))
    with pytest.raises(ValueError, match=r"Bidirectional: expected .*got Sequential"):
        fn.Bidirectional(fn.Sequential(fn.LSTM(H)))
    layer = fn.Bidirectional(fn.GRU(H))
    params = bidirectional_params("GRU", dtype=np.float32)
    x = np.ones((B, T, F), np.float32)
    h = np.zeros((B, H), np.float32)
    with pytest.raises(ValueError, match=r"Bidirectional: initial_carry must be \(forward_carry"):
        layer.apply(params, {}, x, initial_carry=(h, h, h))
    # Shape errors come from the wrapped layer, and name it.
    with pytest.raises(ValueError, match=r"GRU: expected input of rank 3"):
        layer.init(KEY, (B, F))
    with pytest.raises(ValueError, match=r"GRU: mask must be"):
        layer.apply(params, {}, x, mask=np.ones((B, T + 1), bool))
    with pytest.raises(ValueError, match=r"GRU: expected input"):
        layer.apply(params, {}, np.ones((B, T, F + 1), np.float32))
    with pytest.raises(ValueError, match=r"GRU: initial_carry must be"):
        layer.apply(params, {}, x, initial_carry=(h, np.zeros((B, H + 1), np.float32)))


# --- 8. jit, vmap, unroll --------------------------------------------------------------------


@pytest.mark.parametrize("name", [*KINDS, "Bidirectional"])
def test_jit_and_vmap_equal_eager(name):
    bidirectional = name == "Bidirectional"
    kind = "LSTM" if bidirectional else name
    rnn = LAYERS[kind](H, True)
    layer = fn.Bidirectional(rnn) if bidirectional else rnn
    make = bidirectional_params if bidirectional else random_params
    params = make(kind, dtype=np.float32)
    x = random_input((2, B, T, F), seed=20, dtype=np.float32)  # two independent batches
    mask = np_mask([5, 2, 3, 1, 5, 4]).reshape(2, B, T)

    def run(x, mask):
        return layer.apply(params, {}, x, mask=mask)[0]

    # Eagerly, as one batch of 2 B independent sequences.
    eager = np.asarray(run(x.reshape(2 * B, T, F), mask.reshape(2 * B, T))).reshape(2, B, T, -1)
    jitted = runner(kind, True, bidirectional=bidirectional)
    np.testing.assert_allclose(jitted(params, x[1], mask=mask[1]), eager[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(run)(x, mask), eager, rtol=1e-5, atol=1e-6)


# (kind, reverse, unroll): 4 does not divide T = 5 steps; 9 exceeds them.
UNROLL_CASES = [
    ("SimpleRNN", False, 9),
    ("LSTM", True, 4),
    ("GRU", False, 4),
]


@pytest.mark.parametrize(("kind", "reverse", "unroll"), UNROLL_CASES)
def test_unroll_gives_the_same_result(kind, reverse, unroll):
    params = random_params(kind, dtype=np.float32)
    x, mask = padded_input([5, 3, 1], dtype=np.float32), np_mask([5, 3, 1])
    rolled = runner(kind, True, reverse)(params, x, mask=mask)
    unrolled = runner(kind, True, reverse, unroll=unroll)(params, x, mask=mask)
    np.testing.assert_allclose(unrolled, rolled, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("x_dtype", [jnp.bfloat16, jnp.int32])
def test_input_dtype_other_than_the_params(kind, x_dtype):
    """Like Dense: the output has the promoted dtype and equals the float32 input's."""
    params = random_params(kind, dtype=np.float32)
    x = jnp.asarray(np.round(random_input((B, T, F), seed=22)), x_dtype)  # exact in both
    mask = np_mask([5, 2, 3])
    y, _ = LAYERS[kind](H, True).apply(params, {}, x, mask=mask)
    assert y.dtype == jnp.float32
    expected = runner(kind, True)(params, np.asarray(x, np.float32), mask=mask)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


# --- 9. property: masked == unpadded --------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    lengths=st.lists(st.integers(0, T), min_size=3, max_size=3),
    reverse=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_masked_lstm_equals_unpadded(lengths, reverse, seed):
    params = random_params("LSTM", dtype=np.float32)
    x, mask = padded_input(lengths, seed=seed, dtype=np.float32), np_mask(lengths)
    y = runner("LSTM", True, reverse)(params, x, mask=mask)
    last = runner("LSTM", False, reverse)(params, x, mask=mask)
    for i, length in enumerate(lengths):
        np.testing.assert_array_equal(y[i, length:], 0.0)
        if length == 0:
            np.testing.assert_array_equal(last[i], 0.0)
            continue
        alone = runner("LSTM", True, reverse)(params, x[i : i + 1, :length])[0]
        np.testing.assert_allclose(y[i, :length], alone, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(last[i], alone[0 if reverse else -1], rtol=1e-6, atol=1e-6)


# --- 9. WithLengths ---------------------------------------------------------------------------


def test_with_lengths_equals_each_sequence_alone():
    """(x, lengths) masks every recurrent layer inside; x alone runs every step."""
    inner = fn.Sequential(fn.Dense(F), fn.SimpleRNN(H, return_sequences=True), fn.GRU(2))
    net = fn.WithLengths(inner)
    lengths = [5, 2, 3]
    x = padded_input(lengths, dtype=np.float32)
    out_shape, params, state = net.init(KEY, ((3, T, F), (3,)))
    assert out_shape == (3, 2) and params.keys() == {"0", "1", "2"}
    assert jax.tree.map(np.shape, params) == jax.tree.map(np.shape, inner.init(KEY, x.shape)[1])
    y, _ = jax.jit(net.apply)(params, state, (x, np.array(lengths)))
    for i, length in enumerate(lengths):
        alone, _ = net.apply(params, state, x[i : i + 1, :length])
        np.testing.assert_allclose(y[i], alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(net.apply(params, state, x)[0], inner.apply(params, state, x)[0])


def test_with_lengths_errors():
    with pytest.raises(TypeError, match=r"WithLengths: Dense takes no mask="):
        fn.WithLengths(fn.Dense(2))
    with pytest.raises(TypeError, match=r"WithLengths: Sequential takes no mask="):
        fn.WithLengths(fn.Sequential(fn.Dense(2), fn.relu))
    net = fn.WithLengths(fn.GRU(H))
    bad = r"WithLengths: expected \(x, lengths\) of shapes \(\(batch, time, \.\.\.\), \(batch,\)\)"
    for shapes in [((B, T, F), (B + 1,)), ((B, T, F), (B, 1)), ((B, T, F),), ((B,), (B,))]:
        with pytest.raises(ValueError, match=rf"{bad}, got {re.escape(str(shapes))}"):
            net.init(KEY, shapes)
    _, params, state = net.init(KEY, ((B, T, F), (B,)))
    x = np.ones((B, T, F), np.float32)
    with pytest.raises(ValueError, match=rf"{bad}, got \(\(3, 5, 4\), \(2,\)\)"):
        net.apply(params, state, (x, np.array([1, 2])))
    with pytest.raises(TypeError, match="multiple values for keyword argument 'mask'"):
        net.apply(params, state, (x, np.array([1, 2, 3])), mask=np.ones((B, T), bool))
    with pytest.raises(ValueError, match=r"GRU: expected input of rank 3"):
        net.init(KEY, ((B, T), (B,)))
