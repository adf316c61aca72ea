"""`run`, the engine for any step: supervised, label-free and two-optimizer steps, resume,
the non-finite guard, pytree data, and the checks made before any work is spent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trees import assert_bit_identical

import funcnets as fn

CE = fn.losses.sparse_cross_entropy


@pytest.fixture(scope="module")
def data():
    x, y = fn.data.xor(jax.random.key(1), n=100)
    return np.asarray(x), np.asarray(y)


# -- three steps on one engine ------------------------------------------------------------


def supervised(net, opt):
    return fn.train.make_step(net, CE, opt, metrics=("loss", "accuracy"))


def autoencoder():
    """A label-free objective: reconstruct x through a 1-unit bottleneck, with dropout."""
    net = fn.Sequential(fn.Dense(1), fn.tanh, fn.Dropout(0.1), fn.Dense(2))

    def objective(params, state, x, key):
        out, state = net.apply(params, state, x, key=key, train=True)
        return fn.losses.mse(out, x), (state, {"abs_code": jnp.mean(jnp.abs(out))})

    opt = fn.optim.adam(1e-2)
    return net, opt, fn.train.objective_step(objective, opt)


def adversarial():
    """A GAN-shaped step: two parameter sets, two optimizers, alternating updates."""
    gen, disc = fn.Dense(2), fn.Sequential(fn.Dense(8), fn.relu, fn.Dense(1))
    g_opt, d_opt = fn.optim.adam(1e-3), fn.optim.sgd(1e-2, momentum=0.9)
    bce = fn.losses.binary_cross_entropy
    g_state, d_state = (m.init(jax.random.key(0), (1, 2))[2] for m in (gen, disc))
    G = lambda gp, z: gen.apply(gp, g_state, z)[0]  # noqa: E731
    D = lambda dp, x: disc.apply(dp, d_state, x)[0]  # noqa: E731

    def step(ts, x):
        key = fn.train.step_key(ts)
        noise = jax.random.normal(key, x.shape)
        p, o = ts.params, ts.opt_state

        def d_loss(dp):
            fake = G(p["generator"], noise)
            real_logit, fake_logit = D(dp, x), D(dp, jax.lax.stop_gradient(fake))
            return bce(real_logit, jnp.ones_like(real_logit)) + bce(
                fake_logit, jnp.zeros_like(fake_logit)
            )

        dl, dg = jax.value_and_grad(d_loss)(p["discriminator"])
        dp, do, d_ok = fn.train.guarded_update(
            d_opt, dg, o["discriminator"], p["discriminator"], dl
        )

        def g_loss(gp):
            logit = D(dp, G(gp, noise))
            return bce(logit, jnp.ones_like(logit))  # non-saturating

        gl, gg = jax.value_and_grad(g_loss)(p["generator"])
        gp, go, g_ok = fn.train.guarded_update(g_opt, gg, o["generator"], p["generator"], gl)
        new = ts._replace(params={"generator": gp, "discriminator": dp},
                          opt_state={"generator": go, "discriminator": do}, step=ts.step + 1)  # fmt: skip
        return new, {"d_loss": dl, "g_loss": gl, "finite": d_ok & g_ok}

    def make_state(key):
        gk, dk, run_key = jax.random.split(key, 3)
        params = {"generator": gen.init(gk, (1, 2))[1], "discriminator": disc.init(dk, (1, 2))[1]}
        opt_state = {
            k: o.init(params[k]) for k, o in (("generator", g_opt), ("discriminator", d_opt))
        }
        return fn.train.new_state(params, {}, opt_state, run_key)

    return make_state, step


def test_run_over_make_step_is_fit_bit_for_bit_for_every_strategy(data):
    net = fn.Sequential(fn.Dense(8), fn.BatchNorm(), fn.relu, fn.Dropout(0.1), fn.Dense(2))
    opt = fn.optim.adam(1e-2)
    ts0 = fn.train.init(net, opt, jax.random.key(0), (16, 2))
    kw = dict(epochs=2, batch_size=16, progress=False, chunk_steps=2)  # 100 = 6 * 16 + 4
    fitted, fit_history = fn.train.fit(net, CE, opt, data, ts=ts0, strategy="loop", **kw)
    for strategy in ("epoch", "chunks", "loop"):
        ts, history = fn.train.run(supervised(net, opt), ts0, data, strategy=strategy, **kw)
        assert_bit_identical(ts, fitted)
        assert history["loss"] == fit_history["loss"]
    assert int(fitted.step) == 14 and int(fitted.epoch) == 2


@pytest.mark.parametrize("kind", ["autoencoder", "adversarial"])
def test_label_free_and_two_optimizer_steps_train_and_resume_bit_exactly(data, kind, tmp_path):
    x = data[0]
    if kind == "autoencoder":
        net, opt, step = autoencoder()
        ts0 = fn.train.init(net, opt, jax.random.key(0), (20, 2))
    else:
        make_state, step = adversarial()
        ts0 = make_state(jax.random.key(0))
    kw = dict(batch_size=20, progress=False, strategy="chunks", chunk_steps=3)
    straight, history = fn.train.run(step, ts0, x, epochs=4, **kw)
    first = "loss" if kind == "autoencoder" else "d_loss"
    assert history.epochs == 4 and all(np.isfinite(history[first]))
    if kind == "autoencoder":
        assert "accuracy" not in history and history["loss"][-1] < history["loss"][0]
    half, _ = fn.train.run(step, ts0, x, epochs=2, callbacks=[fn.train.Checkpoint(tmp_path)], **kw)
    loaded = fn.checkpoint.load(fn.train.Checkpoint.latest(tmp_path), like=ts0)
    resumed, rest = fn.train.run(step, loaded, x, epochs=2, **kw)
    assert_bit_identical(resumed, straight)
    assert (
        rest["loss" if kind == "autoencoder" else "g_loss"]
        == history["loss" if kind == "autoencoder" else "g_loss"][2:]
    )


def test_pytree_data_iterables_and_a_changed_batch_size(data):
    x, y = data
    net = fn.models.mlp([8, 2])
    opt = fn.optim.sgd(0.1)
    ts0 = fn.train.init(net, opt, jax.random.key(0), (10, 2))
    as_dict = fn.train.make_step(net, CE, opt)
    dict_step = lambda ts, b: as_dict(ts, (b["x"], b["y"]))  # noqa: E731
    from_dict, _ = fn.train.run(dict_step, ts0, {"x": x, "y": y}, epochs=2, batch_size=10,
                                progress=False)  # fmt: skip
    from_pair, _ = fn.train.run(as_dict, ts0, (x, y), epochs=2, batch_size=10, progress=False)
    assert_bit_identical(from_dict, from_pair)
    batches = [(x[i : i + 25], y[i : i + 25]) for i in range(0, 100, 25)]
    ts, history = fn.train.run(as_dict, ts0, batches, epochs=2, progress=False)
    assert int(ts.step) == 8 and history.epochs == 2
    # Epoch numbering survives a change of batch size on resume (it lives in ts.epoch).
    more, _ = fn.train.run(as_dict, from_pair, (x, y), epochs=1, batch_size=30, progress=False)
    assert int(more.epoch) == 3 and int(more.step) == 20 + 4


# -- the non-finite guard ------------------------------------------------------------------


def nan_lr_after(step_count):
    """A schedule that returns NaN from update ``step_count`` on."""
    return lambda count: jnp.where(count >= step_count, jnp.nan, 0.1)


def test_nan_gradient_or_learning_rate_is_caught_with_a_finite_loss(data, tmp_path):
    net = fn.models.mlp([8, 2])
    # A NaN learning rate from the 5th update: the loss stays finite, the updates do not.
    opt = fn.optim.sgd(nan_lr_after(4))
    ts0 = fn.train.init(net, opt, jax.random.key(0), (25, 2))
    for strategy in ("epoch", "loop"):
        ckpt = fn.train.Checkpoint(tmp_path / strategy)
        with pytest.raises(FloatingPointError, match=r"at epoch 2, step 1 of the epoch") as error:
            fn.train.run(fn.train.make_step(net, CE, opt), ts0, data, epochs=3, batch_size=25,
                         progress=False, strategy=strategy, callbacks=[ckpt])  # fmt: skip
        good = error.value.ts
        assert int(good.step) == 4 and int(good.epoch) == 1
        assert bool(fn.train.all_finite(good.params, good.opt_state))
        # Only epoch 1 was saved; nothing from the failed epoch.
        assert [fn.train.Checkpoint._parse(p)[0] for p in ckpt.files(tmp_path / strategy)] == [1]
    # skip: every NaN update dropped; params stay finite and as after step 4.
    ts, history = fn.train.run(fn.train.make_step(net, CE, opt), ts0, data, epochs=2,
                               batch_size=25, progress=False, on_nan="skip")  # fmt: skip
    assert history["skipped_steps"] == [0.0, 4.0]
    assert_bit_identical(ts.params, good.params)


def test_a_nan_gradient_under_a_finite_loss_is_never_applied(data):
    net = fn.models.mlp([8, 2])
    opt = fn.optim.adam(1e-2)

    def objective(params, state, batch, key):
        out, state = net.apply(params, state, batch[0], key=key, train=True)
        w = jax.tree.leaves(params)[0]
        # sqrt'(0) is inf, times 0: a NaN gradient under a finite loss.
        return CE(out, batch[1]) + 0.0 * jnp.sum(jnp.sqrt(w - w)), (state, {})

    ts0 = fn.train.init(net, opt, jax.random.key(0), (25, 2))
    for check_updates in (True, False):  # gradients are checked either way
        step = fn.train.objective_step(objective, opt, check_updates=check_updates)
        with pytest.raises(FloatingPointError, match=r"epoch 1, step 1 of the epoch") as error:
            fn.train.run(step, ts0, data, epochs=1, batch_size=25, progress=False)
        assert_bit_identical(error.value.ts.params, ts0.params)


def test_a_step_that_does_not_report_finite_is_guarded_by_the_engine(data):
    net = fn.models.mlp([8, 2])
    opt = fn.optim.sgd(nan_lr_after(2))

    def careless(ts, batch):  # applies NaN updates and does not say so
        grads = jax.grad(lambda p: CE(net.apply(p, ts.state, batch[0])[0], batch[1]))(ts.params)
        updates, opt_state = opt.update(grads, ts.opt_state, ts.params)
        params = fn.optim.apply_updates(ts.params, updates)
        return ts._replace(params=params, opt_state=opt_state, step=ts.step + 1), {"n": 1.0}

    ts0 = fn.train.init(net, opt, jax.random.key(0), (25, 2))
    with pytest.raises(FloatingPointError, match="global step 2") as error:
        fn.train.run(careless, ts0, data, epochs=1, batch_size=25, progress=False)
    assert int(error.value.ts.step) == 2
    assert bool(fn.train.all_finite(error.value.ts.params))


# -- BatchNorm and a last batch of one -----------------------------------------------------


def test_a_last_batch_of_one_is_merged_for_batchnorm_only(data):
    x, y = data[0][:33], data[1][:33]  # 33 = 2 * 16 + 1
    bn = fn.Sequential(fn.Dense(4), fn.BatchNorm(), fn.relu, fn.Dense(2))
    plain = fn.models.mlp([4, 2])
    for net, steps in ((bn, 2), (plain, 3)):
        ts, _ = fn.train.fit(net, CE, fn.optim.sgd(0.1), (x, y), epochs=1, batch_size=16,
                             key=jax.random.key(0), progress=False)  # fmt: skip
        assert int(ts.step) == steps
        assert bool(fn.train.all_finite(ts.state))
    assert fn.train.epoch_plan("loop", 33, 16, 4, merge_last=True) == [(1, 16, 0), (1, 17, 16)]


# -- checks before any work ----------------------------------------------------------------


def test_bad_arguments_are_refused_before_training(data):
    net = fn.models.mlp([8, 2])
    opt = fn.optim.adam(1e-3)
    kw = dict(epochs=1, batch_size=8, key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1 or None, got 2.5"):
        fn.train.fit(net, CE, opt, data, **{**kw, "batch_size": 2.5})
    with pytest.raises(ValueError, match=r"train_data\[0\] is a Python list"):
        fn.train.fit(net, CE, opt, (data[0].tolist(), data[1]), **kw)
    with pytest.raises(ValueError, match="val_data must be a pair"):
        fn.train.fit(net, CE, opt, data, val_data=data[0], **kw)
    with pytest.raises(ValueError, match="val_data does not fit the net"):
        fn.train.fit(net, CE, opt, data, val_data=(np.ones((5, 3)), data[1][:5]), **kw)
    with pytest.raises(ValueError, match="epochs must be an int >= 0"):
        fn.train.fit(net, CE, opt, data, **{**kw, "epochs": -1})
    with pytest.raises(ValueError, match=r"x is empty"):
        fn.train.predict(net, fn.train.init(net, opt, jax.random.key(0), (1, 2)), np.ones((0, 2)))
    with pytest.raises(ValueError, match="ts must be a fn.train.TrainState"):
        fn.train.run(fn.train.make_step(net, CE, opt), {"params": {}}, data, epochs=1)


def test_a_state_of_another_net_or_optimizer_is_refused(data):
    net_a, net_b = fn.models.mlp([8, 2]), fn.models.mlp([16, 2])
    ts_b = fn.train.init(net_b, fn.optim.adam(1e-3), jax.random.key(0), (8, 2))
    with pytest.raises(ValueError, match=r"ts.params\['dense0'\]\['w'\].*\[2, 16\] in ts"):
        fn.train.fit(net_a, CE, fn.optim.adam(1e-3), data, epochs=1, batch_size=8, ts=ts_b,
                     progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="ts.opt_state"):
        fn.train.fit(net_b, CE, fn.optim.sgd(0.1, momentum=0.9), data, epochs=1, batch_size=8,
                     ts=ts_b, progress=False)  # fmt: skip
