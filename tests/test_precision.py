"""Mixed precision: policies, float32 islands, dynamic loss scaling, and training on the digits."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.cli import in_precision, main, saved_config
from funcnets.precision import LossScaleState, Policy, dynamic_loss_scale, with_policy

BF16, FP16, F32 = jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16), jnp.dtype(jnp.float32)


@pytest.fixture(scope="module")
def digits():
    return fn.data.load_digits()


def fit_digits(digits, net, optimizer, *, epochs, loss_multiplier=1.0):
    """Trains on the digits (seed 0, batches of 64); returns (test accuracy, ts, history).

    On the first 1408 = 22 * 64 of the 1437 training examples, so that one compiled program
    serves every step (a last batch of 29 would compile a second one: a second more per run).
    """
    (x, y), test = digits
    x, y = x[:1408], y[:1408]
    loss = fn.losses.sparse_cross_entropy
    if loss_multiplier != 1.0:
        loss = lambda out, labels: loss_multiplier * fn.losses.sparse_cross_entropy(out, labels)  # noqa: E731
    ts, history = fn.train.fit(net, loss, optimizer, (x, y), epochs=epochs, batch_size=64,
                               key=jax.random.key(0), progress=False, on_nan="raise")  # fmt: skip
    result = fn.train.evaluate(
        net, ts, test, loss_fn=fn.losses.sparse_cross_entropy, batch_size=360
    )
    return result["accuracy"], ts, history


def dtypes_of(tree):
    return {jnp.result_type(leaf) for leaf in jax.tree.leaves(tree)}


def test_policy_names_and_parsing():
    assert Policy.parse("bf16") == Policy(compute_dtype=BF16) == fn.precision.POLICIES["bf16"]
    assert Policy.parse("half") == Policy.parse("fp16") == Policy(compute_dtype=FP16)
    assert Policy.parse("params=bf16,compute=bf16,output=bf16") == Policy(BF16, BF16, BF16)
    assert str(Policy.parse("c=f16")) == "params=float32,compute=float16,output=float32"
    for bad in ("float8", "compute=int8", "weights=bf16"):
        with pytest.raises(ValueError, match="precision: "):
            Policy.parse(bad)


def test_a_bf16_policy_keeps_float32_parameters_and_computes_in_bfloat16():
    plain = fn.Sequential(fn.Dense(16), fn.relu, fn.LayerNorm(), fn.Dense(3))
    net = with_policy(plain, "bf16")
    assert (net.name, [k for k, _ in net.children]) == ("Sequential", ["0", "1", "2", "3"])
    assert fn.summary(net, (8, 5)) == fn.summary(plain, (8, 5))
    _, params, state = net.init(jax.random.key(0), (8, 5))
    assert dtypes_of(params) == {F32}  # float32 masters
    x = jax.random.normal(jax.random.key(1), (8, 5))
    # Every matrix product runs on bfloat16 operands; the output comes back as float32.
    jaxpr = jax.make_jaxpr(lambda p: net.apply(p, state, x)[0])(params)
    dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    assert len(dots) == 2 and all(v.aval.dtype == BF16 for e in dots for v in e.invars)
    y, reference = jax.jit(lambda p: (net.apply(p, state, x)[0], plain.apply(p, state, x)[0]))(
        params
    )
    assert y.dtype == F32
    np.testing.assert_allclose(y, reference, atol=0.1)  # bfloat16 rounding, not another function
    # The gradients (and so the optimizer state) are float32.
    grads = jax.jit(jax.grad(lambda p: jnp.sum(net.apply(p, state, x)[0])))(params)
    assert dtypes_of(grads) == {F32}
    ts = fn.train.init(net, fn.optim.adam(1e-3), jax.random.key(0), (8, 5))
    assert dtypes_of(ts.opt_state) == {F32, jnp.dtype(jnp.int32)}


def test_a_policy_casts_float_keywords_and_leaves_integer_inputs_alone():
    def init(key, input_shape):
        return input_shape, {"w": jnp.ones(())}, {}

    def apply(params, state, x, *, key=None, train=False, offset=None):
        seen.append((x.dtype, params["w"].dtype, offset.dtype))
        return x * params["w"] + offset, state

    seen = []
    layer = with_policy(fn.Layer(init, apply, name="Probe"), "fp16")
    assert layer.name == "Probe" and layer.accepts("offset") and not layer.accepts("mask")
    _, params, state = layer.init(jax.random.key(0), (2,))
    y, _ = layer.apply(params, state, jnp.array([1, 2]), offset=jnp.ones(2))
    assert seen == [(jnp.dtype(jnp.int32), FP16, FP16)] and y.dtype == F32


def test_normalisation_statistics_are_float32_under_a_bf16_policy():
    # Values near 301: bfloat16 has 8 significant bits, so there the spacing is 2, and a
    # bfloat16 mean would be off by up to 1, a standard deviation's worth.
    x = (301.3 + jax.random.normal(jax.random.key(0), (64, 8))).astype(jnp.bfloat16)
    x32 = x.astype(jnp.float32)
    mean, var = x32.mean(0), x32.var(0)
    assert jnp.max(jnp.abs(mean.astype(jnp.bfloat16).astype(jnp.float32) - mean)) > 0.2
    bn = with_policy(fn.BatchNorm(momentum=0.0), "bf16")
    _, params, state = bn.init(jax.random.key(0), x.shape)
    y, new_state = bn.apply(params, state, x, train=True)
    assert dtypes_of(new_state) == {F32}
    np.testing.assert_allclose(new_state["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(new_state["var"], var, rtol=1e-4)
    expected = {"BatchNorm": (x32 - mean) / jnp.sqrt(var + 1e-5)}
    rows = x32.mean(-1, keepdims=True), x32.var(-1, keepdims=True)
    expected["LayerNorm"] = (x32 - rows[0]) / jnp.sqrt(rows[1] + 1e-5)
    expected["GroupNorm"] = expected["LayerNorm"]  # one group over the features
    for name, layer in (("BatchNorm", bn), ("LayerNorm", fn.LayerNorm()),
                        ("GroupNorm", fn.GroupNorm(1))):  # fmt: skip
        inner = with_policy(layer, Policy(BF16, BF16, BF16))  # returns the bfloat16 result
        _, params, state = inner.init(jax.random.key(0), x.shape)
        y, _ = inner.apply(params, state, x, train=True)
        assert y.dtype == BF16, name
        # Within bfloat16's rounding of the float32 result (a bfloat16 computation is off by 1).
        np.testing.assert_allclose(y.astype(jnp.float32), expected[name], atol=0.02, err_msg=name)


def test_softmax_and_losses_compute_half_precision_inputs_in_float32():
    logits = jnp.array([[30.0, 30.1, 0.0]], jnp.bfloat16)
    wide = logits.astype(jnp.float32)
    assert fn.softmax(logits).dtype == BF16 and fn.log_softmax(logits).dtype == BF16
    np.testing.assert_allclose(fn.softmax(logits).astype(jnp.float32), fn.softmax(wide), atol=4e-3)
    loss = fn.losses.sparse_cross_entropy(logits, jnp.array([1]))
    assert loss.dtype == F32 and loss == fn.losses.sparse_cross_entropy(wide, jnp.array([1]))
    assert fn.losses.mse(logits, logits.astype(jnp.float16)).dtype == F32


def test_the_loss_scale_halves_on_overflow_and_grows_after_growth_interval():
    tx = dynamic_loss_scale(fn.optim.adam(0.1), initial=64.0, growth_interval=3, min_scale=8.0)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    assert isinstance(state, LossScaleState) and fn.precision.loss_scale(state) == 64.0
    update = jax.jit(tx.update)
    overflow = {"w": jnp.array([jnp.inf, 1.0])}
    updates, after = update(overflow, state, params)
    assert np.all(updates["w"] == 0) and float(after.scale) == 32.0  # skipped, halved
    jax.tree.map(np.testing.assert_array_equal, after.inner, state.inner)  # Adam untouched
    scales = []
    for _ in range(7):  # gradients of (scale * loss) where the loss's gradient is 0.5
        updates, after = update({"w": jnp.full(2, 0.5) * after.scale}, after, params)
        scales.append(float(after.scale))
        assert np.all(np.isfinite(updates["w"])) and np.all(updates["w"] < 0)
    assert scales == [32.0, 32.0, 64.0, 64.0, 64.0, 128.0, 128.0]  # doubled every 3 good steps
    np.testing.assert_allclose(after.inner[0].mu["w"], 0.5 * (1 - 0.9**7), rtol=1e-5)  # unscaled
    # An overflow resets the count; the scale never goes below min_scale, and at min_scale a
    # non-finite gradient is passed on (lowering the scale cannot help): the guard's to catch.
    for expected in (64.0, 32.0, 16.0, 8.0, 8.0):
        updates, after = update(overflow, after, params)
        assert float(after.scale) == expected and int(after.good_steps) == 0
    assert not np.all(np.isfinite(updates["w"]))


def test_an_overflow_step_is_skipped_without_tripping_the_guard():
    net = with_policy(fn.Dense(2), "fp16")
    opt = dynamic_loss_scale(fn.optim.sgd(0.1), initial=2.0**15, min_scale=2.0**13)
    ts = fn.train.init(net, opt, jax.random.key(0), (4, 3))

    def objective(params, state, x, key):  # gradients of 10 on y: 10 * 2**15 > 65504
        y, state = net.apply(params, state, x)
        return 10.0 * jnp.sum(y), (state, {})

    step = jax.jit(fn.train.objective_step(objective, opt))
    x = jnp.ones((4, 3))
    new, metrics = step(ts, x)
    assert bool(metrics["finite"]) and float(metrics["overflow"]) == 1.0
    assert float(metrics["loss_scale"]) == 2.0**15 and float(metrics["grad_norm"]) == 0.0
    jax.tree.map(np.testing.assert_array_equal, new.params, ts.params)
    assert float(new.opt_state.scale) == 2.0**14 and int(new.step) == 1
    new, metrics = step(new, x)  # 10 * 2**14 = 163840 still overflows float16
    assert bool(metrics["finite"]) and float(new.opt_state.scale) == 2.0**13
    new, metrics = step(new, x)  # 10 * 2**13 = 81920: overflows at min_scale, a real failure
    assert not bool(metrics["finite"])
    jax.tree.map(np.testing.assert_array_equal, new.params, ts.params)
    # guarded_update (hand-written steps) treats an overflow the same way.
    grads = {"w": jnp.full((3, 2), jnp.inf), "b": jnp.ones(2)}
    params, opt_state, finite = fn.train.guarded_update(opt, grads, ts.opt_state, ts.params, 1.0)
    assert bool(finite) and float(opt_state.scale) == 2.0**14
    jax.tree.map(np.testing.assert_array_equal, params, ts.params)


def test_bfloat16_training_on_the_digits_is_within_half_a_percent_of_float32(digits):
    net = fn.models.mlp([64, 10])
    float32, _, _ = fit_digits(digits, net, fn.optim.adam(1e-2), epochs=10)
    bfloat16, ts, _ = fit_digits(digits, with_policy(net, "bf16"), fn.optim.adam(1e-2), epochs=10)
    assert dtypes_of(ts.params) == {F32}
    assert float32 > 0.95 and abs(bfloat16 - float32) <= 0.005, (float32, bfloat16)


def test_float16_gradients_underflow_without_loss_scaling_and_train_with_it(digits):
    # The cross-entropy times 1e-7, with a learning rate 1e7 times larger, is the same training
    # in exact arithmetic, but its gradients at the logits, at most 1e-7 / 64, are below half
    # float16's smallest subnormal (6e-8): they flush to zero. (In float32 it reaches 95.0%
    # test accuracy in these 6 epochs; in float16 with the default scaler, 2**15, 95.0% too.)
    scale, epochs = 1e-7, 6
    net = with_policy(fn.models.mlp([64, 10]), "fp16")
    sgd = fn.optim.sgd(0.1 / scale, momentum=0.9)
    unscaled, ts, history = fit_digits(digits, net, sgd, epochs=epochs, loss_multiplier=scale)
    start = fn.train.init(net, sgd, jax.random.key(0), (64, 8, 8, 1))
    jax.tree.map(np.testing.assert_array_equal, ts.params, start.params)  # nothing moved
    assert history["grad_norm"] == [0.0] * epochs and unscaled < 0.2  # chance: 10 classes
    # With dynamic loss scaling it trains, with on_nan="raise": starting too high, it overflows
    # and backs off, then it grows every 10 steps, overflows again and backs off.
    scaler = dynamic_loss_scale(sgd, initial=2.0**45, growth_interval=10)
    scaled, ts, history = fit_digits(digits, net, scaler, epochs=epochs, loss_multiplier=scale)
    assert scaled > 0.9, scaled
    assert history["overflow"][0] > 0 and all(0 <= f < 0.5 for f in history["overflow"])
    assert 2.0**15 < float(ts.opt_state.scale) < 2.0**45


def test_the_cli_trains_the_digits_in_bf16_and_refuses_to_resume_in_another_precision(
    tmp_path, capsys
):
    # 1293 training examples after the validation split: batches of 431, one compiled program.
    out = tmp_path / "run"
    args = ["train", "--hidden", "32", "--batch-size", "431", "--lr", "0.03", "--epochs", "3",
            "--precision", "bf16", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["precision"] == "bf16" and config["status"] == "finished"
    assert config["test"]["accuracy"] > 0.8
    assert fn.checkpoint.read_metadata(out / "checkpoint.ckpt")["config"]["precision"] == "bf16"
    capsys.readouterr()
    code = main(["train", "--resume", str(out), "--precision", "fp16", "--epochs", "4"])
    assert code == 2
    assert "trained with --precision bf16, not --precision fp16" in capsys.readouterr().err
    # Runs from before --precision recorded none: they were float32.
    legacy = {k: v for k, v in config.items() if k != "precision"}
    assert saved_config(legacy, "config.json")["precision"] == "float32"
    # fp16 also scales the loss (its scale is then in the TrainState and the history).
    net, optimizer = in_precision("fp16", fn.models.mlp([3]), fn.optim.adam(1e-3))
    assert isinstance(fn.train.init(net, optimizer, jax.random.key(0), (1, 2)).opt_state,
                      LossScaleState)  # fmt: skip
