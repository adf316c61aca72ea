"""Autoencoders: shapes, jit and vmap, a pure step whose corruption comes from the step's
key, evaluate's numbers against a hand computation, and bit-exact resume through `run`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.models.autoencoder import autoencoder, gaussian_noise, masking_noise

SHAPE = (8, 8, 1)
OPT = fn.optim.adam(1e-2)
DENSE = autoencoder(SHAPE, 3, (16,), corruption=masking_noise(0.25))
CONV = autoencoder(SHAPE, 3, (4, 6), kind="conv", loss="mse")


def assert_bit_identical(a, b):
    """Every leaf equal bit for bit (typed keys compared by their data)."""
    raw = lambda leaf: (
        jax.random.key_data(leaf)
        if jax.dtypes.issubdtype(  # noqa: E731
            leaf.dtype, jax.dtypes.prng_key
        )
        else leaf
    )
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(raw(u), raw(v))


@pytest.fixture(scope="module")
def x():
    """32 random images in [0, 1], mostly dark."""
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (32, *SHAPE)).astype(np.float32) ** 3


@pytest.fixture(scope="module")
def states():
    """A fresh state of each model (made once: every new parameter shape compiles)."""
    return {ae: ae.init(jax.random.key(1), (4, *SHAPE), OPT) for ae in (DENSE, CONV)}


@pytest.fixture(scope="module")
def dense_step():
    return jax.jit(DENSE.step(OPT))


def test_shapes_of_params_codes_and_reconstructions(x):
    shape = lambda f, *args: jax.eval_shape(f, *args).shape  # noqa: E731
    for ae, names in ((DENSE, ("dense0", "code", "output")), (CONV, ("conv1", "code", "deconv1"))):
        ts = jax.eval_shape(lambda k, ae=ae: ae.init(k, (4, *SHAPE), OPT), jax.random.key(0))
        p, s = ts.params, ts.state
        assert shape(ae.encode, p, s, x) == (32, 3)
        assert shape(ae.decode, p, s, jnp.zeros((5, 3))) == (5, *SHAPE)
        assert shape(ae.reconstruct, p, s, x) == x.shape
        first, code, last = (
            p["encoder"][names[0]]["w"].shape,
            p["encoder"]["code"]["w"].shape,
            p["decoder"][names[2]]["w"].shape,
        )
        if ae is DENSE:
            assert (first, code, last) == ((64, 16), (16, 3), (16, 64))
        else:  # two 3x3 stride-2 stages, 8x8 -> 2x2 with 6 channels; back to 1 channel
            assert (first, code, last) == ((3, 3, 4, 6), (2 * 2 * 6, 3), (3, 3, 4, 1))
    # Hinton & Salakhutdinov's network, abstractly (nothing computed).
    ae = autoencoder((28, 28, 1), 30, (1000, 500, 250))
    params = jax.eval_shape(lambda k: ae.init(k, (2, 28, 28, 1), OPT).params, jax.random.key(0))
    widths = [params["encoder"][n]["w"].shape for n in ("dense0", "dense1", "dense2", "code")]
    assert widths == [(784, 1000), (1000, 500), (500, 250), (250, 30)]
    widths = [784, 1000, 500, 250, 30, 250, 500, 1000, 784]
    layers = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    assert sum(p.size for p in jax.tree.leaves(params)) == layers == 2_837_314


def test_jit_and_vmap_agree_with_the_batch(x, states):
    for ae, ts in states.items():
        p, s = ts.params, ts.state

        def each(x, p=p, s=s, ae=ae):  # one example at a time, through vmap
            return ae.encode(p, s, x[None])[0]

        codes = jax.jit(ae.encode)(p, s, x)
        np.testing.assert_allclose(jax.jit(jax.vmap(each))(x), codes, rtol=1e-5, atol=1e-6)
        out = jax.jit(ae.reconstruct)(p, s, x)
        np.testing.assert_allclose(out, jax.jit(ae.decode)(p, s, codes), rtol=1e-5, atol=1e-6)
        if ae.loss == "bce":
            assert bool(jnp.all((out > 0) & (out < 1)))  # logistic outputs


def test_the_step_is_pure_and_corrupts_from_the_step_key(x, states, dense_step):
    ts = states[DENSE]
    kept = jax.tree.map(jnp.copy, ts)
    a, metrics_a = dense_step(ts, x)
    b, metrics_b = dense_step(ts, x)
    assert_bit_identical((a, metrics_a), (b, metrics_b))
    assert_bit_identical(ts, kept)  # the input state is untouched
    assert int(a.step) == 1 and bool(metrics_a["finite"])
    # The corruption is drawn from the step's key, fold_in(ts.key, ts.step): another key or
    # another step number changes the noisy batch, hence the loss (the net itself draws
    # nothing: it has no dropout).
    losses = {
        float(dense_step(ts._replace(**change), x)[1]["loss"])
        for change in ({}, {"key": jax.random.key(3)}, {"step": ts.step + 1})
    }
    assert len(losses) == 3


def test_evaluate_is_the_summed_error_per_image(x, states):
    ts = states[DENSE]
    numbers = DENSE.evaluate(ts, x, jax.random.key(5))
    out = DENSE.reconstruct(ts.params, ts.state, x)
    squared = np.mean(np.sum(np.square(np.asarray(out) - x), axis=(1, 2, 3)))
    np.testing.assert_allclose(numbers["squared_error"], squared, rtol=1e-5)
    p = np.clip(np.asarray(out, np.float64), 1e-12, 1 - 1e-12)
    bce = np.mean(np.sum(-(x * np.log(p) + (1 - x) * np.log(1 - p)), axis=(1, 2, 3)))
    np.testing.assert_allclose(numbers["loss"], bce, rtol=1e-4)
    noisy = masking_noise(0.25)(jax.random.key(5), x)
    denoised = np.mean(
        np.sum(np.square(np.asarray(DENSE.reconstruct(ts.params, ts.state, noisy)) - x), (1, 2, 3))
    )
    np.testing.assert_allclose(numbers["denoised_squared_error"], denoised, rtol=1e-5)
    numbers = CONV.evaluate(states[CONV], x, jax.random.key(5))
    assert sorted(numbers) == ["loss", "squared_error"]
    np.testing.assert_allclose(numbers["loss"], numbers["squared_error"], rtol=1e-6)  # mse


def test_training_reduces_the_error_and_resumes_bit_exactly(x, states, tmp_path):
    step, ts0 = DENSE.step(OPT), states[DENSE]
    kw = dict(batch_size=8, progress=False, strategy="loop")
    before = DENSE.evaluate(ts0, x, jax.random.key(0))["squared_error"]
    saver = fn.train.Checkpoint(tmp_path, keep=None)
    straight, history = fn.train.run(step, ts0, x, epochs=4, callbacks=[saver], **kw)
    assert DENSE.evaluate(straight, x, jax.random.key(0))["squared_error"] < before
    assert history["loss"][-1] < history["loss"][0] and "squared_error" in history
    after_two = fn.train.Checkpoint.files(tmp_path)[1]  # saved at the end of epoch 2
    loaded = fn.checkpoint.load(after_two, like=ts0)
    resumed, rest = fn.train.run(step, loaded, x, epochs=2, **kw)
    assert_bit_identical(resumed, straight)
    assert rest["loss"] == history["loss"][2:]


def test_noise_and_bad_arguments():
    ones = jnp.ones((20_000,))
    assert abs(float(jnp.mean(masking_noise(0.3)(jax.random.key(0), ones) == 0)) - 0.3) < 0.02
    assert abs(float(jnp.std(gaussian_noise(0.2)(jax.random.key(0), ones))) - 0.2) < 0.01
    with pytest.raises(ValueError, match="rate must be in"):
        masking_noise(1.0)
    with pytest.raises(ValueError, match='kind must be "dense" or "conv"'):
        autoencoder(SHAPE, 3, (4,), kind="rbm")
    with pytest.raises(ValueError, match="divisible by 8"):
        autoencoder((28, 28, 1), 3, (4, 4, 4), kind="conv")
    with pytest.raises(ValueError, match="code must be an int >= 1"):
        autoencoder(SHAPE, 0, (4,))
    with pytest.raises(ValueError, match='loss must be "bce" or "mse"'):
        autoencoder(SHAPE, 3, (4,), loss="l1")
    with pytest.raises(ValueError, match=r"input_shape must be \(batch, \*\(8, 8, 1\)\)"):
        DENSE.init(jax.random.key(0), (4, 28, 28, 1), OPT)
