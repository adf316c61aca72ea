"""`gan`: shapes, jit and vmap, one pure step that updates both networks (checked against a
hand-computed alternating update), the guard, bit-exact resume, and learning a 2-D Gaussian."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.models.gan import dcgan_mnist, gan

BCE = fn.losses.binary_cross_entropy


def leaves_equal(a, b) -> bool:
    """Bit-for-bit equality of two pytrees (typed keys compared by their data)."""

    def raw(leaf):
        return (
            jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
        )

    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(raw(x), raw(y)) for x, y in pairs)


def small_gan():
    """A GAN on 2-D points: BatchNorm in the generator (state), leaky ReLU in the discriminator."""
    generator = fn.Sequential(fn.Dense(16), fn.BatchNorm(), fn.relu, fn.Dense(2))
    discriminator = fn.Sequential(fn.Dense(16), fn.leaky_relu, fn.Dense(1))
    return gan(generator, discriminator, latent=4)


@pytest.fixture(scope="module")
def blob():
    """512 points of N((3, -2), 0.5² I)."""
    return np.asarray(jax.random.normal(jax.random.key(7), (512, 2)) * 0.5 + jnp.array([3.0, -2.0]))


@pytest.fixture(scope="module")
def setup():
    model = small_gan()
    opt = fn.optim.adam(1e-2, b1=0.5)
    return model, opt, jax.jit(model.init, static_argnums=(1, 2))(jax.random.key(0), (32, 2), opt)


def test_init_builds_both_networks_and_sample_has_the_examples_shape(setup):
    model, _, ts = setup
    assert set(ts.params) == set(ts.state) == set(ts.opt_state) == {"generator", "discriminator"}
    assert ts.params["generator"]["0"]["w"].shape == (4, 16)
    assert ts.params["discriminator"]["2"]["w"].shape == (16, 1)
    assert ts.state["generator"]["1"]["mean"].shape == (16,)
    # jit equals eager; vmap over keys equals one call per key.
    keys = jax.random.split(jax.random.key(2), 3)
    eager = model.sample(ts.params, ts.state, keys[0], 4)
    jitted = jax.jit(model.sample, static_argnums=3)
    assert eager.shape == (4, 2)
    np.testing.assert_allclose(jitted(ts.params, ts.state, keys[0], 4), eager, rtol=1e-6)
    batched = jax.vmap(lambda k: model.sample(ts.params, ts.state, k, 4))(keys)
    for key, rows in zip(keys, batched):
        np.testing.assert_allclose(rows, jitted(ts.params, ts.state, key, 4), rtol=1e-6)


def test_dcgan_mnist_maps_noise_to_28x28_images_and_images_to_one_logit():
    model = dcgan_mnist(latent=6, width=2)

    def build(key):  # shapes only: traced abstractly, nothing computed
        ts = model.init(key, (3, 28, 28, 1), fn.optim.sgd(0.1))
        images = model.sample(ts.params, ts.state, key, 5)
        logits = model.discriminator.apply(ts.params["discriminator"], ts.state["discriminator"], images)[0]  # fmt: skip
        return ts, images, logits

    ts, images, logits = jax.eval_shape(build, jax.random.key(0))
    assert images.shape == (5, 28, 28, 1) and logits.shape == (5, 1)
    g = ts.params["generator"]
    assert g["project"]["w"].shape == (6, 7 * 7 * 4) and "b" not in g["project"]
    assert g["up1"]["w"].shape == (4, 4, 4, 2) and g["up2"]["w"].shape == (4, 4, 2, 1)
    assert ts.params["discriminator"]["output"]["w"].shape == (7 * 7 * 4, 1)
    # The generator's output is (tanh + 1) / 2, in [0, 1]; the discriminator centres its input.
    (_, output), (_, centre) = model.generator.children[-1], model.discriminator.children[0]
    ends = jnp.array([-30.0, 0.0, 30.0])
    np.testing.assert_allclose(output.apply({}, {}, ends)[0], [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(centre.apply({}, {}, jnp.array([0.0, 0.5, 1.0]))[0], [-1, 0, 1])


def test_a_mismatched_pair_or_optimizer_is_refused():
    opt = fn.optim.sgd(0.1)
    with pytest.raises(ValueError, match="generator"):
        gan(fn.Dense(3), fn.Dense(1), latent=2).init(jax.random.key(0), (4, 2), opt)
    with pytest.raises(ValueError, match="discriminator"):
        gan(fn.Dense(2), fn.Dense(3), latent=2).init(jax.random.key(0), (4, 2), opt)
    with pytest.raises(ValueError, match="optimizer"):
        gan(fn.Dense(2), fn.Dense(1), latent=2).init(jax.random.key(0), (4, 2), {"gen": opt})
    with pytest.raises(ValueError, match="latent"):
        gan(fn.Dense(2), fn.Dense(1), latent=0)
    with pytest.raises(ValueError, match="generator"):
        gan(lambda z: z, fn.Dense(1), latent=2)


def test_one_step_is_the_alternating_update_computed_by_hand(blob):
    """D takes one SGD step on BCE(D(x), 1) + BCE(D(G(z)), 0); then G one step on the
    non-saturating BCE(D'(G(z)), 1) through the updated D'. The generator here ignores
    its noise (it outputs its bias b), so the whole step can be written out."""
    generator = fn.Sequential(fn.Lambda(lambda z: 0.0 * z), fn.Dense(2))
    model = gan(generator, fn.Dense(1), latent=2)
    opt = {"generator": fn.optim.sgd(0.5), "discriminator": fn.optim.sgd(0.1)}
    ts = model.init(jax.random.key(3), (8, 2), opt)
    ts = ts._replace(params={**ts.params, "generator": {"0": {}, "1": {
        "w": ts.params["generator"]["1"]["w"], "b": jnp.array([0.5, 1.0])}}})  # fmt: skip
    x = jnp.asarray(blob[:8])
    step = jax.jit(model.step(opt))
    before = jax.tree.map(jnp.copy, ts)
    new, metrics = step(ts, x)

    b, d = ts.params["generator"]["1"]["b"], ts.params["discriminator"]
    D = lambda d, points: points @ d["w"] + d["b"]  # noqa: E731
    fake = jnp.tile(b, (8, 1))

    def d_loss(d):
        return BCE(D(d, x), jnp.ones((8, 1))) + BCE(D(d, fake), jnp.zeros((8, 1)))

    loss, grads = jax.value_and_grad(d_loss)(d)
    d1 = jax.tree.map(lambda p, g: p - 0.1 * g, d, grads)
    g_loss, g_grad = jax.value_and_grad(lambda b: BCE(D(d1, jnp.tile(b, (8, 1))), jnp.ones((8, 1))))(b)  # fmt: skip
    np.testing.assert_allclose(metrics["d_loss"], loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["d_fake"], jax.nn.sigmoid(D(d, fake)).mean(), rtol=1e-6)
    for name in ("w", "b"):
        np.testing.assert_allclose(new.params["discriminator"][name], d1[name], rtol=1e-5)
    np.testing.assert_allclose(new.params["generator"]["1"]["b"], b - 0.5 * g_grad, rtol=1e-5)
    np.testing.assert_array_equal(new.params["generator"]["1"]["w"], ts.params["generator"]["1"]["w"])  # fmt: skip
    assert bool(metrics["finite"]) and int(new.step) == 1
    assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake", "finite"}
    # Pure: the state it was given is untouched, and the same inputs give the same result.
    assert leaves_equal(ts, before) and leaves_equal(step(ts, x), (new, metrics))
    # A non-finite step is dropped whole: neither network nor optimizer state moves.
    bad, bad_metrics = step(ts, x.at[0, 0].set(jnp.nan))
    assert not bool(bad_metrics["finite"]) and int(bad.step) == 1
    assert leaves_equal((bad.params, bad.state, bad.opt_state), (ts.params, ts.state, ts.opt_state))


def test_evaluate_reports_both_losses_and_the_discriminators_accuracy(setup, blob):
    model, _, ts = setup
    scores = model.evaluate(ts, blob[:64], jax.random.key(4))
    assert set(scores) == {"d_loss", "g_loss", "d_accuracy"}
    assert 0.0 <= scores["d_accuracy"] <= 1.0 and scores["d_loss"] > 0 and scores["g_loss"] > 0
    same = model.evaluate(ts, blob[:64], jax.random.key(4))
    assert same == scores


def test_run_trains_a_gaussian_and_resumes_bit_exactly_from_a_checkpoint(setup, blob, tmp_path):
    model, opt, ts0 = setup
    step = model.step(opt)
    kw = dict(batch_size=32, progress=False, strategy="epoch")
    every_6 = fn.train.Checkpoint(tmp_path, every=6, keep=None)
    straight, history = fn.train.run(step, ts0, blob, epochs=10, callbacks=[every_6], **kw)
    assert history.epochs == 10 and all(np.isfinite(history["g_loss"]))
    # The generated points move onto the data: their mean from ~0 to near (3, -2).
    target = blob.mean(axis=0)
    gap = lambda ts: np.linalg.norm(model.sample(ts.params, ts.state, jax.random.key(5), 512).mean(0) - target)  # noqa: E731  # fmt: skip
    assert gap(ts0) > 2.5 and gap(straight) < 1.2
    for net in ("generator", "discriminator"):  # both trained, each with its own optimizer state
        assert int(straight.opt_state[net][0].count) == 160
    assert not leaves_equal(straight.state["generator"], ts0.state["generator"])  # BatchNorm
    loaded = fn.checkpoint.load(fn.train.Checkpoint.latest(tmp_path), like=ts0)
    assert int(loaded.epoch) == 6
    resumed, rest = fn.train.run(step, loaded, blob, epochs=4, **kw)
    assert leaves_equal(resumed, straight)
    assert rest["d_loss"] == history["d_loss"][6:]
