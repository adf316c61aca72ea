"""fit end to end: classic results, determinism, resumption, callbacks, NaNs, compilation."""

import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from trees import leaves_equal

import funcnets as fn

CE = fn.losses.sparse_cross_entropy


@pytest.fixture(scope="module")
def xor_data():
    return fn.data.xor(jax.random.key(1), n=400), fn.data.xor(jax.random.key(2), n=400)


def test_mlp_solves_xor_and_a_perceptron_cannot(xor_data):
    train, test = xor_data
    net = fn.models.mlp([16, 2], activation=fn.tanh)
    ts, _ = fn.train.fit(net, CE, fn.optim.adam(0.05), train, epochs=60, batch_size=50,
                         key=jax.random.key(0), progress=False)  # fmt: skip
    assert fn.train.evaluate(net, ts, test, loss_fn=CE)["accuracy"] == 1.0
    perceptron = fn.Dense(2)  # a single linear layer: XOR is not linearly separable
    ts, _ = fn.train.fit(perceptron, CE, fn.optim.adam(0.05), train, epochs=60, batch_size=50,
                         key=jax.random.key(0), progress=False)  # fmt: skip
    assert fn.train.evaluate(perceptron, ts, test, loss_fn=CE)["accuracy"] <= 0.75


def test_mlp_separates_three_spirals():
    train = fn.data.spirals(jax.random.key(1), n=600)
    test = fn.data.spirals(jax.random.key(2), n=600)
    net = fn.models.mlp([64, 64, 3])
    ts, history = fn.train.fit(net, CE, fn.optim.adam(0.01), train, epochs=150, batch_size=64,
                               key=jax.random.key(0), val_data=test, progress=False)  # fmt: skip
    assert history["val_accuracy"][-1] >= 0.97


def test_same_key_same_data_bit_identical(xor_data):
    net = fn.models.mlp([8, 2], dropout=0.2)
    runs = [
        fn.train.fit(
            net,
            CE,
            fn.optim.sgd(0.1, momentum=0.9),
            xor_data[0],
            epochs=3,
            batch_size=32,
            key=jax.random.key(7),
            progress=False,
        )[0]  # fmt: skip
        for _ in range(2)
    ]
    assert leaves_equal(runs[0], runs[1])
    other = fn.train.fit(net, CE, fn.optim.sgd(0.1, momentum=0.9), xor_data[0], epochs=3,
                         batch_size=32, key=jax.random.key(8), progress=False)[0]  # fmt: skip
    assert not leaves_equal(runs[0].params, other.params)


def test_resume_from_a_checkpoint_is_bit_identical(xor_data, tmp_path):
    """With chunks (a partial last chunk, a smaller last batch). Resuming reads the epoch
    from ts.step whatever the strategy, and test_strategies_agree shows them all equal."""
    strategy = "chunks"
    net = fn.Sequential(fn.Dense(8), fn.BatchNorm(), fn.relu, fn.Dropout(0.1), fn.Dense(2))
    opt = fn.optim.adamw(0.01)
    kw = dict(batch_size=48, progress=False, strategy=strategy, chunk_steps=3)  # 400 = 8*48 + 16
    straight, _ = fn.train.fit(net, CE, opt, xor_data[0], epochs=4, key=jax.random.key(0), **kw)
    half, _ = fn.train.fit(net, CE, opt, xor_data[0], epochs=2, key=jax.random.key(0), **kw)
    fn.checkpoint.save(tmp_path / "half.ckpt", half)
    like = fn.train.init(net, opt, jax.random.key(99), (48, 2))
    loaded = fn.checkpoint.load(tmp_path / "half.ckpt", like=like)
    resumed, _ = fn.train.fit(net, CE, opt, xor_data[0], epochs=2, ts=loaded, **kw)
    assert int(resumed.step) == 4 * 9
    assert leaves_equal(straight, resumed)


def test_auto_strategy_follows_the_measured_rule():
    def chosen(net, shape):
        x, y = jnp.ones(shape), jnp.zeros(shape[0], jnp.int32)
        ts = fn.train.init(net, fn.optim.adam(1e-3), jax.random.key(0), shape)
        step = fn.train.make_step(net, CE, fn.optim.adam(1e-3))
        return fn.train.choose_strategy(jax.jit(step).lower(ts, (x, y)).as_text())

    assert chosen(fn.models.mlp([16, 10]), (8, 8, 8, 1)) == "epoch"
    expected_conv = "loop" if jax.default_backend() == "cpu" else "epoch"
    # 8 input channels: an XLA convolution (few channels become a patches matmul on CPU).
    assert (
        chosen(fn.Sequential(fn.Conv2D(2, 3), fn.Flatten(), fn.Dense(10)), (8, 8, 8, 8))
        == expected_conv
    )
    assert fn.train.choose_strategy("while", backend="gpu") == "epoch"


def test_batch_stochastic_and_minibatch_gradient_descent(xor_data):
    x, y = xor_data[0][0][:10], xor_data[0][1][:10]
    net = fn.Dense(2)
    for batch_size, steps in [(None, 1), (10, 1), (1, 10), (4, 3), (100, 1)]:
        ts, _ = fn.train.fit(net, CE, fn.optim.sgd(0.1), (x, y), epochs=2, batch_size=batch_size,
                             key=jax.random.key(0), progress=False)  # fmt: skip
        assert int(ts.step) == 2 * steps, batch_size


def test_full_batch_gradient_descent_equals_hand_written_optax():
    x, y = fn.data.moons(jax.random.key(0), n=64)
    net = fn.models.mlp([8, 2])
    ts, _ = fn.train.fit(net, CE, optax.sgd(0.1), (x, y), epochs=5, batch_size=None,
                         key=jax.random.key(0), progress=False)  # fmt: skip
    params = fn.train.init(net, optax.sgd(0.1), jax.random.key(0), x.shape).params
    state = fn.train.init(net, optax.sgd(0.1), jax.random.key(0), x.shape).state
    loss = lambda p: CE(net.apply(p, state, x)[0], y)
    for _ in range(5):
        params = jax.tree.map(lambda p, g: p - 0.1 * g, params, jax.grad(loss)(params))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), ts.params, params
    )


def test_penalty_shrinks_the_weights(xor_data):
    net = fn.models.mlp([16, 2])
    kw = dict(epochs=20, batch_size=50, key=jax.random.key(0), progress=False)
    plain, _ = fn.train.fit(net, CE, fn.optim.adam(0.01), xor_data[0], **kw)
    decayed, _ = fn.train.fit(net, CE, fn.optim.adam(0.01), xor_data[0],
                              penalty=lambda p: 0.05 * fn.losses.l2_penalty(p), **kw)  # fmt: skip
    assert fn.losses.l2_penalty(decayed.params) < 0.7 * fn.losses.l2_penalty(plain.params)


def test_batches_from_an_iterable_or_a_function(xor_data):
    (x, y), test = xor_data
    net = fn.models.mlp([16, 2], activation=fn.tanh)
    batch_list = list(fn.data.batches(x, y, 50))
    ts, history = fn.train.fit(net, CE, fn.optim.adam(0.05), batch_list, epochs=30, batch_size=None,
                               key=jax.random.key(0), progress=False)  # fmt: skip
    assert int(ts.step) == 30 * 8 and history.epochs == 30
    assert fn.train.evaluate(net, ts, test, loss_fn=CE)["accuracy"] > 0.95
    fresh = lambda: fn.data.batches(x, y, 64, key=jax.random.key(1))
    ts, _ = fn.train.fit(net, CE, fn.optim.adam(0.05), fresh, epochs=2, batch_size=None,
                         key=jax.random.key(0), progress=False)  # fmt: skip
    assert int(ts.step) == 2 * 7
    with pytest.raises(ValueError, match="gave no batches in epoch 2"):
        fn.train.fit(net, CE, fn.optim.adam(0.05), iter(batch_list), epochs=2, batch_size=None,
                     key=jax.random.key(0), progress=False)  # fmt: skip


def test_absurd_learning_rate_raises_naming_epoch_and_step(xor_data, tmp_path):
    net = fn.models.mlp([16, 2])
    good, _ = fn.train.fit(net, CE, fn.optim.sgd(0.1), xor_data[0], epochs=1, batch_size=40,
                           key=jax.random.key(0), progress=False)  # fmt: skip
    checkpoint = fn.train.Checkpoint(tmp_path, keep=None)
    with pytest.raises(
        FloatingPointError, match=r"non-finite loss, gradients or updates at epoch 2, step \d+ "
    ):
        fn.train.fit(net, CE, fn.optim.sgd(1e35), xor_data[0], epochs=3, batch_size=40, ts=good,
                     callbacks=[checkpoint], progress=False)  # fmt: skip
    assert [
        p.name for p in fn.train.Checkpoint.files(tmp_path)
    ] == []  # epoch 2 failed: nothing new
    ts, history = fn.train.fit(net, CE, fn.optim.sgd(1e35), xor_data[0], epochs=1, batch_size=40,
                               ts=good, on_nan="skip", progress=False)  # fmt: skip
    assert history["skipped_steps"][0] >= 1
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(ts.params))


def test_early_stopping_stops_and_restores_the_best(xor_data):
    net = fn.models.mlp([32, 2])
    stopper = fn.train.EarlyStopping(monitor="val_loss", patience=2)
    # A learning rate that first helps, then makes validation loss bounce.
    ts, history = fn.train.fit(net, CE, fn.optim.sgd(3.0), xor_data[0], epochs=100, batch_size=400,
                               key=jax.random.key(0), val_data=xor_data[1], callbacks=[stopper],
                               progress=False)  # fmt: skip
    val = history["val_loss"]
    assert history.epochs < 100 and stopper.stopped_epoch == history.epochs
    best = int(np.argmin(val))
    assert history.epochs == best + 1 + 2
    restored = fn.train.evaluate(net, ts, xor_data[1], loss_fn=CE)["loss"]
    np.testing.assert_allclose(restored, val[best], rtol=1e-5)


def test_checkpoint_and_csv_callbacks(xor_data, tmp_path):
    net = fn.models.mlp([8, 2])
    ckpt = fn.train.Checkpoint(tmp_path / "ckpts", every=2, keep=2)
    log = fn.train.CSVLogger(tmp_path / "log.csv")
    ts, history = fn.train.fit(net, CE, fn.optim.adam(0.01), xor_data[0], epochs=7, batch_size=100,
                               key=jax.random.key(0), val_data=xor_data[1], callbacks=[ckpt, log],
                               progress=False)  # fmt: skip
    assert [p.name for p in ckpt.files(tmp_path / "ckpts")] == [
        f"epoch-0004-{ckpt.run}.ckpt",
        f"epoch-0006-{ckpt.run}.ckpt",
    ]
    loaded = fn.checkpoint.load(ckpt.latest(tmp_path / "ckpts"), like=ts)
    assert int(loaded.step) == 6 * 4
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,accuracy,grad_norm,val_loss,val_accuracy" and len(rows) == 8
    history.to_json(tmp_path / "h.json")
    assert json.loads((tmp_path / "h.json").read_text())["val_accuracy"] == history["val_accuracy"]
    history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_user_metrics_and_evaluate_and_predict(xor_data):
    net = fn.models.mlp([8, 2])

    def error_rate(outputs, y):
        return 1.0 - fn.train.accuracy(outputs, y)

    ts, history = fn.train.fit(net, CE, fn.optim.adam(0.05), xor_data[0], epochs=3, batch_size=64,
                               key=jax.random.key(0), val_data=xor_data[1],
                               metrics=("loss", "accuracy", error_rate), progress=False)  # fmt: skip
    assert set(history) == {
        "loss",
        "accuracy",
        "error_rate",
        "grad_norm",
        "val_loss",
        "val_accuracy",
        "val_error_rate",
    }
    np.testing.assert_allclose(
        np.add(history["val_accuracy"], history["val_error_rate"]), 1.0, rtol=1e-6
    )
    result = fn.train.evaluate(net, ts, xor_data[1], loss_fn=CE, batch_size=64)
    outputs = fn.train.predict(net, ts, xor_data[1][0], batch_size=64)
    assert outputs.shape == (400, 2)
    np.testing.assert_allclose(result["loss"], float(CE(outputs, xor_data[1][1])), rtol=1e-5)
    np.testing.assert_allclose(result["accuracy"], history["val_accuracy"][-1], rtol=1e-6)


def test_second_epoch_and_second_step_compile_nothing(xor_data, caplog):
    counts = []

    class CountCompiles(fn.train.Callback):
        def on_epoch_end(self, epoch, ts, logs):
            counts.append(sum("Compiling" in r.getMessage() for r in caplog.records))
            return False

    net = fn.Sequential(fn.Dense(8), fn.BatchNorm(), fn.relu, fn.Dense(2))
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        for strategy in ("epoch", "loop"):
            counts.clear()
            fn.train.fit(net, CE, fn.optim.adam(0.01), xor_data[0], epochs=3, batch_size=48,
                         key=jax.random.key(0), val_data=xor_data[1], progress=False,
                         strategy=strategy, callbacks=[CountCompiles()])  # fmt: skip
            assert counts[0] > 0 and counts[1] == counts[0] == counts[2], (strategy, counts)
    step = jax.jit(fn.train.make_step(net, CE, fn.optim.adam(0.01)), donate_argnums=0)
    ts = fn.train.init(net, fn.optim.adam(0.01), jax.random.key(0), (48, 2))
    batch = (xor_data[0][0][:48], xor_data[0][1][:48])
    ts, metrics = step(ts, batch)
    size = step._cache_size()
    ts, metrics = step(ts, batch)
    assert step._cache_size() == size == 1 and int(ts.step) == 2


def test_make_step_works_with_optax_and_under_jit(xor_data):
    """The same step with funcnets' Adam and optax's Adam: the same loss and parameters."""
    net = fn.models.mlp([8, 2])
    x, y = xor_data[0][0][:32], xor_data[0][1][:32]
    results = []
    for opt in (fn.optim.adam(1e-2), optax.adam(1e-2)):
        ts = fn.train.init(net, opt, jax.random.key(0), x.shape)
        new_ts, metrics = jax.jit(fn.train.make_step(net, CE, opt))(ts, (x, y))
        np.testing.assert_allclose(
            metrics["loss"], CE(net.apply(ts.params, ts.state, x)[0], y), rtol=1e-6
        )
        assert bool(metrics["finite"]) and int(new_ts.step) == 1
        results.append(new_ts.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), *results)


def test_fit_validates_its_arguments(xor_data):
    net = fn.models.mlp([8, 2])
    kw = dict(epochs=1, batch_size=8, key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="on_nan"):
        fn.train.fit(net, CE, fn.optim.adam(1e-3), xor_data[0], on_nan="ignore", **kw)
    with pytest.raises(ValueError, match=r"train_data\[0\] has 400, train_data\[1\] has 399"):
        fn.train.fit(net, CE, fn.optim.adam(1e-3), (xor_data[0][0], xor_data[0][1][:-1]), **kw)
    with pytest.raises(ValueError, match="batch_size"):
        fn.train.fit(net, CE, fn.optim.adam(1e-3), xor_data[0], **{**kw, "batch_size": 0})
    with pytest.raises(ValueError, match="key="):
        fn.train.fit(net, CE, fn.optim.adam(1e-3), xor_data[0], epochs=1, batch_size=8)


def test_fit_leaves_the_given_state_usable(xor_data):
    net = fn.models.mlp([8, 2])
    ts0 = fn.train.init(net, fn.optim.adam(1e-2), jax.random.key(0), (50, 2))
    ts1, _ = fn.train.fit(net, CE, fn.optim.adam(1e-2), xor_data[0], epochs=1, batch_size=50, ts=ts0,
                          progress=False)  # fmt: skip
    assert int(ts0.step) == 0 and int(ts1.step) == 8
    assert not leaves_equal(ts0.params, ts1.params)


def test_fit_on_a_one_device_mesh_matches_no_mesh(xor_data):
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    net = fn.models.mlp([8, 2])
    kw = dict(epochs=2, batch_size=50, key=jax.random.key(0), progress=False)
    plain, _ = fn.train.fit(net, CE, fn.optim.adam(1e-2), xor_data[0], **kw)
    sharded, _ = fn.train.fit(net, CE, fn.optim.adam(1e-2), xor_data[0], mesh=mesh, **kw)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), plain.params, sharded.params
    )


def test_augmentation_runs_inside_the_compiled_epoch():
    x = jax.random.uniform(jax.random.key(0), (64, 8, 8, 1))
    y = jax.random.randint(jax.random.key(1), (64,), 0, 10)
    net = fn.models.mlp([16, 10])
    kw = dict(epochs=2, batch_size=16, key=jax.random.key(0), progress=False, strategy="epoch")
    plain, _ = fn.train.fit(net, CE, fn.optim.adam(1e-2), (x, y), **kw)
    flipped, _ = fn.train.fit(
        net, CE, fn.optim.adam(1e-2), (x, y), augment=fn.data.random_flip, **kw
    )
    again, _ = fn.train.fit(net, CE, fn.optim.adam(1e-2), (x, y), augment=fn.data.random_flip, **kw)
    assert not leaves_equal(plain.params, flipped.params)
    assert leaves_equal(flipped.params, again.params)
