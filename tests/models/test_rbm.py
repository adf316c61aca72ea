"""`rbm`: shapes and purity, resume through `run`, and the estimators against enumeration.

The estimators are checked where the truth is computable, by enumerating every
state in float64 numpy (written from the energy, independently of the module):
log Z against `exact_log_partition` and AIS, the exact gradient of the
log-likelihood against CD-k, the pseudo-likelihood against its definition.
Equal model configurations share their compiled functions, so the tests reuse
two models.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.models.rbm import ais_schedule, base_rate_bias, rbm

PCD = rbm(16, 6, persistent=True, chains=10)
CD1 = rbm(16, 6)


def random_params(seed, visible, hidden, scale):
    """Non-trivial params: weights of ``scale``, biases around the ones training gives."""
    rng = np.random.default_rng(seed)
    return {
        "w": jnp.asarray(scale * rng.standard_normal((visible, hidden)), jnp.float32),
        "visible_bias": jnp.asarray(rng.standard_normal(visible) - 1.0, jnp.float32),
        "hidden_bias": jnp.asarray(0.5 * rng.standard_normal(hidden), jnp.float32),
    }


@functools.cache
def states(n):
    """All ``2^n`` binary vectors, ``(2^n, n)`` float64 (read-only: shared between calls)."""
    every = np.array(list(itertools.product([0.0, 1.0], repeat=n)))
    every.flags.writeable = False
    return every


def np_free_energy(params, v, sum_over_h=False):
    """``F(v) = -b.v - sum_j softplus(c_j + (v W)_j)``, float64; or ``-log sum_h exp(-E(v, h))``."""
    p = {k: np.asarray(a, np.float64) for k, a in params.items()}
    if sum_over_h:
        h = states(p["w"].shape[1])
        minus_energy = (v @ p["visible_bias"])[:, None] + h @ p["hidden_bias"] + v @ p["w"] @ h.T
        return -np.logaddexp.reduce(minus_energy, axis=1)
    return -v @ p["visible_bias"] - np.logaddexp(0, v @ p["w"] + p["hidden_bias"]).sum(axis=1)


def np_log_z(params):
    """``log Z`` over every visible state, float64."""
    return np.logaddexp.reduce(-np_free_energy(params, states(params["w"].shape[0])))


def bits_equal(a, b):
    raw = lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x  # noqa: E731
    pairs = [
        (np.asarray(raw(x)), np.asarray(raw(y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    ]
    return all(np.array_equal(x, y, equal_nan=x.dtype.kind == "f") for x, y in pairs)


@pytest.fixture(scope="module")
def toy():
    """Two noisy prototypes of 16 pixels: 60 binary examples."""
    protos = np.array([[1.0] * 8 + [0.0] * 8, [0.0, 1.0] * 8], np.float32)
    noise = np.random.default_rng(0).random((60, 16)) < 0.05
    return np.abs(protos[np.arange(60) % 2] - noise).astype(np.float32)


@pytest.fixture(scope="module")
def pcd(toy):
    """PCD on the toy data: optimizer, a fresh state and the jitted step."""
    opt = fn.optim.sgd(1.0, momentum=0.5)
    ts = PCD.init(jax.random.key(0), (20, 16), opt, data=toy)
    return opt, ts, jax.jit(PCD.step(opt))


# -- shapes, purity, jit and vmap ------------------------------------------------------------


def test_shapes_state_and_metrics_of_cd_and_pcd(toy, pcd):
    opt, ts, step = pcd
    assert ts.state["chains"].shape == (10, 16)
    np.testing.assert_allclose(ts.params["visible_bias"], base_rate_bias(toy))
    new, metrics = step(ts, toy[:20])
    assert int(new.step) == 1 and bool(metrics["finite"])
    # CD-k: no state, zero visible biases without data, any example shape of 16 values.
    cd_ts = jax.eval_shape(lambda key: CD1.init(key, (20, 4, 4), opt), jax.random.key(0))
    cd_new, cd_metrics = jax.eval_shape(CD1.step(opt), cd_ts, toy[:20].reshape(20, 4, 4))
    assert cd_ts.state == {} == cd_new.state
    for state in (ts, new, cd_ts, cd_new):
        assert jax.tree.map(jnp.shape, state.params) == {
            "w": (16, 6), "visible_bias": (16,), "hidden_bias": (6,)}  # fmt: skip
    names = ["reconstruction_error", "free_energy", "free_energy_gap", "grad_norm", "finite"]
    for m in (metrics, cd_metrics):
        assert {k: v.shape for k, v in m.items()} == dict.fromkeys(names, ())


def test_the_step_is_pure_and_a_rejected_step_keeps_params_and_chains(toy, pcd):
    _, ts, step = pcd
    nan_batch = np.where(np.arange(16) == 3, np.nan, toy[:20])  # a NaN free energy
    for batch, applied in ((toy[:20], True), (nan_batch, False)):
        (a, ma), (b, mb) = step(ts, batch), step(ts, batch)
        assert bits_equal((a, ma), (b, mb))  # same input, same output: no hidden state
        assert bool(ma["finite"]) is applied and int(a.step) == 1
        assert bits_equal(a.state, ts.state) is not applied  # PCD chains move only when applied
        assert bits_equal(a.params, ts.params) is not applied


def test_free_energy_by_its_definition_and_gibbs_under_vmap():
    params = random_params(0, 16, 6, 1.0)
    v = states(16)[::4001].astype(np.float32)
    batched = CD1.free_energy(params, v)
    np.testing.assert_allclose(batched, np_free_energy(params, v, sum_over_h=True), rtol=1e-5)
    keys = jax.random.split(jax.random.key(1), 3)
    chains = jax.vmap(lambda k: CD1.gibbs(params, k, v, 3))(keys)
    assert chains.shape == (3, *v.shape)
    np.testing.assert_array_equal(chains[1], CD1.gibbs(params, keys[1], v, 3))
    assert not np.array_equal(chains[0], chains[1])


def test_bad_arguments_are_refused():
    params = random_params(0, 16, 6, 0.1)
    with pytest.raises(ValueError, match="hidden must be an int >= 1"):
        rbm(5, 0)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        rbm(5, 3, k=0)
    with pytest.raises(ValueError, match="input_shape must be .* 16 values per example"):
        CD1.init(jax.random.key(0), (8, 15), fn.optim.sgd(0.1))
    with pytest.raises(ValueError, match="2\\^30 states, more than max_units = 24"):
        rbm(40, 30).exact_log_partition({})
    with pytest.raises(ValueError, match="betas must be an int or a 1-D array"):
        CD1.ais_log_partition(params, jax.random.key(0), runs=2, betas=jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        CD1.gibbs(params, jax.random.key(0), jnp.ones(16), -1)


# -- training and bit-exact resume ---------------------------------------------------------


def test_pcd_trains_and_resumes_bit_exactly_through_run_and_a_checkpoint(toy, pcd, tmp_path):
    opt, ts0, _ = pcd
    step = PCD.step(opt)
    kw = dict(batch_size=20, progress=False, strategy="loop")
    every_epoch = fn.train.Checkpoint(tmp_path, keep=None)
    straight, history = fn.train.run(step, ts0, toy, epochs=8, callbacks=[every_epoch], **kw)
    assert history.epochs == 8 and all(np.isfinite(history["reconstruction_error"]))
    fourth = [p for p in every_epoch.files(tmp_path) if fn.train.Checkpoint._parse(p)[0] == 4]
    loaded = fn.checkpoint.load(fourth[0], like=ts0)
    resumed, rest = fn.train.run(step, loaded, toy, epochs=4, **kw)
    assert bits_equal(resumed, straight)  # params, optimizer state and the chains
    assert rest["free_energy_gap"] == history["free_energy_gap"][4:]
    assert not np.array_equal(straight.state["chains"], ts0.state["chains"])
    # 24 updates raise the log-likelihood of the training data (exactly, by enumeration).
    before, after = (
        np.mean(-np_free_energy(ts.params, toy)) - np_log_z(ts.params) for ts in (ts0, straight)
    )
    assert after > before + 1.0


# -- the estimators against enumeration ----------------------------------------------------


@pytest.mark.parametrize("visible, hidden", [(3, 5), (14, 13)])  # over v; over h, in 2 blocks
def test_exact_log_partition_equals_brute_force(visible, hidden):
    params = random_params(visible, visible, hidden, 0.7)
    got = rbm(visible, hidden).exact_log_partition(params)
    np.testing.assert_allclose(float(got), np_log_z(params), rtol=1e-6)


def test_ais_agrees_with_enumeration_within_a_tenth_of_a_nat():
    model = rbm(12, 40)  # log Z by enumerating the 2^12 visible states
    params = random_params(3, 12, 40, 0.5)
    exact = np_log_z(params)
    data = np.random.default_rng(4).random((500, 12)) < np.linspace(0.05, 0.6, 12)
    log_z, spread = model.ais_log_partition(
        params, jax.random.key(5), runs=100, betas=1000, data=data
    )
    assert abs(float(log_z) - exact) < 0.1
    assert 0 < float(spread) < 0.3
    # From the uniform base model (no data), with the schedule passed as an array.
    log_z, _ = model.ais_log_partition(
        params, jax.random.key(6), runs=100, betas=ais_schedule(1000)
    )
    assert abs(float(log_z) - exact) < 0.1


def test_cd_k_gradient_approaches_the_exact_gradient_as_k_grows():
    params = random_params(7, 16, 6, 1.5)  # strong weights: slow mixing
    data = states(16)[[3, 1200, 8000, 20001, 41000, 65000]]
    # The exact gradient of -mean log p(v): <dF/dtheta>_data - <dF/dtheta>_model, with
    # dF/dW = -v sigmoid(c + v W)^T, dF/db = -v, dF/dc = -sigmoid(c + v W).
    p = {k: np.asarray(a, np.float64) for k, a in params.items()}
    every = states(16)
    model_p = np.exp(-np_free_energy(params, every) - np_log_z(params))

    def mean_grad(v, weights):
        hidden = 1 / (1 + np.exp(-(v @ p["w"] + p["hidden_bias"])))
        return {
            "w": -(weights[:, None] * v).T @ hidden,
            "visible_bias": -weights @ v,
            "hidden_bias": -weights @ hidden,
        }

    on_data = mean_grad(data, np.full(len(data), 1 / len(data)))
    on_model = mean_grad(every, model_p)
    exact = {k: on_data[k] - on_model[k] for k in on_data}

    many = jnp.tile(jnp.asarray(data, jnp.float32), (4000, 1))  # 4,000 chains per example
    errors, negatives = {}, many
    for k in range(1, 31):  # CD-k for k = 1..30: one more Gibbs step from where CD-(k-1) ended
        _, grads, negatives = CD1.contrastive_divergence(params, jax.random.key(k), many, negatives)
        errors[k] = np.sqrt(sum(np.sum((grads[n] - exact[n]) ** 2) for n in exact))
    assert errors[1] > 0.5  # CD-1's bias is real on this model (the gradient's norm is ~5)
    assert errors[3] < errors[1] and errors[10] < errors[3]
    assert errors[30] < 0.05 * errors[1] and errors[30] < 0.1  # the Monte Carlo error is ~0.02


def test_evaluate_and_its_pseudo_likelihood_is_unbiased_for_the_definition():
    params = random_params(8, 16, 6, 1.5)
    x = states(16)[[7, 1000, 50001]]
    # sum_i log p(v_i | v_-i) = sum_i log sigmoid(F(v with bit i flipped) - F(v)).
    flips = np.abs(x[:, None, :] - np.eye(16)).reshape(-1, 16)
    gain = np_free_energy(params, flips).reshape(3, 16) - np_free_energy(params, x)[:, None]
    expected = np.mean(np.sum(-np.logaddexp(0, -gain), axis=1))
    ts = fn.train.new_state(params, {}, (), jax.random.key(0))
    numbers = PCD.evaluate(ts, np.tile(x, (3000, 1)), jax.random.key(9))
    assert set(numbers) == {"reconstruction_error", "pseudo_log_likelihood"}
    assert abs(numbers["pseudo_log_likelihood"] - expected) < 0.03 * abs(expected)
    assert 0 < numbers["reconstruction_error"] < 1
