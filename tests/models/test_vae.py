"""The VAE: shapes, jit and vmap, a pure step, bit-exact resume, and its likelihood estimate.

The importance-sampling estimate of ``log p(x)`` (Burda et al. 2015) is checked
against the exact marginal likelihood of a model with a 1-D latent, integrated
on a grid, for both decoders: it lies above the ELBO, rises with ``k`` and
reaches the exact value. (Each test compiles as few functions as it can: XLA's
compilation, not the arithmetic, is what these tiny models cost.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm

import funcnets as fn
from funcnets.models.vae import binarize, vae

OPT = fn.optim.adam(1e-2)
IMAGES = (16, 3, 3, 1)  # (batch, height, width, channels)


def leaves_equal(a, b):
    raw = lambda t: [  # noqa: E731
        jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        for x in jax.tree.leaves(t)
    ]
    return all(np.array_equal(x, y) for x, y in zip(raw(a), raw(b), strict=True))


@pytest.fixture(scope="module")
def small():
    """A 2-latent VAE on 3x3 grey images, its state and 16 images."""
    model = vae(2, hidden=(8,))
    ts = model.init(jax.random.key(0), IMAGES, OPT)
    return model, ts, np.random.default_rng(1).uniform(size=IMAGES).astype(np.float32)


def test_shapes_jit_and_vmap(small):
    model, ts, x = small
    params, state = ts.params, ts.state
    assert jax.tree.map(jnp.shape, params["encoder"]["dense1"]) == {"b": (4,), "w": (8, 4)}
    assert jax.tree.map(jnp.shape, params["decoder"]["dense1"]) == {"b": (9,), "w": (8, 9)}
    keys = jax.random.split(jax.random.key(3), 3)

    @jax.jit
    def outputs(params):
        mean, log_var = model.encode(params, state, x)
        probs = model.decode(params, state, mean)
        draws = model.sample(params, state, keys[0], 7)
        means = model.sample(params, state, keys[0], 7, mean=True)
        stacked = jax.vmap(model.elbo, in_axes=(None, None, None, 0))(params, state, x, keys)
        one_by_one = jnp.stack([model.elbo(params, state, x, keys[i]) for i in range(3)])
        return mean, log_var, probs, draws, means, stacked, one_by_one

    mean, log_var, probs, draws, means, stacked, one_by_one = outputs(params)
    assert mean.shape == log_var.shape == (16, 2) and draws.shape == means.shape == (7, 9)
    assert probs.shape == (16, 9) and bool(jnp.all((probs > 0) & (probs < 1)))
    assert set(np.unique(draws)) == {0.0, 1.0} and not set(np.unique(means)) <= {0.0, 1.0}
    assert stacked.shape == (3, 16) and len(set(stacked[:, 0].tolist())) == 3  # keys differ
    np.testing.assert_allclose(stacked, one_by_one, rtol=1e-5)


def test_the_step_is_pure_and_binarizes_dynamically(small):
    model, ts, x = small
    plain = vae(2, hidden=(8,), binarize=False)
    step = jax.jit(model.step(OPT))
    before = jax.tree.map(jnp.copy, ts)
    a, metrics = step(ts, x)
    b, _ = step(ts, x)
    assert leaves_equal(a, b) and leaves_equal(ts, before)
    assert int(a.step) == 1 and not leaves_equal(a.params, ts.params)
    assert {"loss", "kl", "log_px_given_z", "finite"} <= set(metrics)
    np.testing.assert_allclose(metrics["loss"], metrics["kl"] - metrics["log_px_given_z"], 1e-5)

    @jax.jit
    def binarized(params):
        draws = jax.vmap(binarize, in_axes=(0, None))(jax.random.split(ts.key, 2000), x)
        loss = lambda m, data: m.objective(params, ts.state, data, ts.key)[0]  # noqa: E731
        return draws, [loss(m, data) for m in (model, plain) for data in (draws[0], x)]

    # Dynamic binarization: binary draws around the grey levels, fresh for every key...
    draws, (on_binary, on_grey, plain_on_binary, plain_on_grey) = binarized(ts.params)
    assert set(np.unique(draws)) == {0.0, 1.0}
    np.testing.assert_allclose(jnp.mean(draws, 0), x, atol=0.05)
    # ... drawn inside the objective: binary data is unchanged by it, grey data is not.
    assert on_binary == plain_on_binary and on_grey != plain_on_grey


def test_resume_through_run_and_a_checkpoint_is_bit_exact(small, tmp_path):
    model, ts, x = small
    kw = dict(batch_size=8, progress=False, strategy="epoch")
    step = model.step(OPT)
    ckpt = fn.train.Checkpoint(tmp_path, keep=None)
    straight, history = fn.train.run(step, ts, x, epochs=4, callbacks=[ckpt], **kw)
    assert history["loss"][-1] < history["loss"][0]
    after_two = fn.checkpoint.load(ckpt.files(tmp_path)[1], like=ts)
    assert int(after_two.epoch) == 2
    resumed, rest = fn.train.run(step, after_two, x, epochs=2, **kw)
    assert leaves_equal(resumed, straight) and rest["loss"] == history["loss"][2:]


def exact_log_likelihood(model, params, state, x):
    """``log ∫ p(x | z) N(z; 0, 1) dz`` for a 1-D latent, by a Riemann sum on a fine grid."""
    z = jnp.linspace(-12.0, 12.0, 4801)
    out, _ = model.decoder_net(x.shape[-1]).apply(params["decoder"], state["decoder"], z[:, None])
    if model.decoder == "bernoulli":
        p = jax.nn.sigmoid(out)[:, None, :]
        log_px = jnp.sum(jnp.where(x == 1, jnp.log(p), jnp.log1p(-p)), -1)
    else:
        mean, log_var = jnp.split(out, 2, axis=-1)
        log_px = jnp.sum(norm.logpdf(x, mean[:, None], jnp.exp(0.5 * log_var[:, None])), -1)
    weights = log_px + norm.logpdf(z)[:, None]  # (grid, batch)
    return logsumexp(weights, axis=0) + jnp.log(z[1] - z[0])


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_importance_sampling_rises_from_the_elbo_to_the_exact_likelihood(decoder):
    """A 1-D latent, 6 pixels, a decoder that depends strongly on z (a sharp posterior) and a
    fixed, wide q(z | x) = N(0.5, 2²): the ELBO is loose, and importance sampling closes the gap.
    """
    model = vae(1, hidden=(8,), decoder=decoder)
    ts = model.init(jax.random.key(5), (16, 6), OPT)
    params = jax.tree.map(jnp.copy, ts.params)
    params["encoder"]["dense1"] = {"w": jnp.zeros((8, 2)), "b": jnp.array([0.5, np.log(4.0)])}
    out = params["decoder"]["dense1"]
    if decoder == "bernoulli":  # logits 3 times the init's
        params["decoder"] = jax.tree.map(lambda a: 3 * a, params["decoder"])
    else:  # the init's means, a fixed variance of 0.3
        out["w"], out["b"] = out["w"].at[:, 6:].set(0.0), out["b"].at[6:].set(np.log(0.3))
    repeats = 16  # each of 32 examples 16 times, each copy with its own draws
    rng = np.random.default_rng(6)
    z = rng.normal(size=(32, 1)).astype(np.float32)

    @jax.jit
    def data_and_bounds(params):  # x ~ p(x | z) drawn with numpy, for one compilation less
        mean = model.decode(params, ts.state, z)
        noise = rng.random((32, 6)) if decoder == "bernoulli" else rng.normal(size=(32, 6))
        x = (noise < mean) * 1.0 if decoder == "bernoulli" else mean + np.sqrt(0.3) * noise
        keys = jax.random.split(jax.random.key(7), 256)
        elbo = jax.vmap(model.elbo, in_axes=(None, None, None, 0))(params, ts.state, x, keys)
        return x, exact_log_likelihood(model, params, ts.state, x), jnp.mean(elbo, 0)

    x, exact, elbo = data_and_bounds(params)
    copies = jnp.tile(x, (repeats, 1))
    ll = {  # one compilation: k is traced, chunk and batch_size are not
        k: model.log_likelihood(params, ts.state, copies, jax.random.key(8), k=k, chunk=10,
                                batch_size=128).reshape(repeats, -1)
        for k in (10, 100, 5000)
    }  # fmt: skip
    means = {k: float(jnp.mean(v)) for k, v in ll.items()}
    gaps = [float(jnp.mean(exact)) - means[k] for k in (10, 100, 5000)]
    # ELBO = L_1 <= L_10 <= L_100 <= L_5000 <= log p(x), the gap to log p(x) closing:
    assert float(jnp.mean(exact - elbo)) > 1.0
    assert float(jnp.mean(elbo)) < means[10] < means[100] < means[5000]
    assert gaps[0] > 0.1 and gaps[0] > 2 * gaps[1] and gaps[1] > abs(gaps[2])
    assert abs(gaps[2]) < 0.01
    np.testing.assert_allclose(jnp.mean(ll[5000], 0), exact, atol=0.03)


def test_bad_arguments_are_refused(small):
    model, ts, x = small
    with pytest.raises(ValueError, match="latent must be a positive int"):
        vae(0)
    with pytest.raises(ValueError, match="hidden must hold positive ints"):
        vae(2, hidden=(8, 0))
    with pytest.raises(ValueError, match="decoder must be one of"):
        vae(2, decoder="poisson")
    with pytest.raises(ValueError, match="binarize=True needs decoder='bernoulli'"):
        vae(2, decoder="gaussian", binarize=True)
    with pytest.raises(ValueError, match="chunk must divide k"):
        model.log_likelihood(ts.params, ts.state, x, ts.key, k=10, chunk=4)
    with pytest.raises(ValueError, match="k must be a positive int"):
        model.log_likelihood(ts.params, ts.state, x, ts.key, k=0)
