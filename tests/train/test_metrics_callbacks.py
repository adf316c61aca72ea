"""Metrics that mean something, evaluation without recompiling, and callbacks that lose
nothing: Checkpoint directories of several runs, CSV logs continued across a resume."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnets as fn

CE = fn.losses.sparse_cross_entropy


@pytest.fixture(scope="module")
def data():
    x, y = fn.data.xor(jax.random.key(1), n=120)
    return np.asarray(x), np.asarray(y)


def test_binary_accuracy_on_one_logit_equals_the_hand_computed_value():
    logits = jnp.array([[2.0], [-1.0], [0.5], [-0.2], [3.0], [-4.0], [1.0]])
    labels = jnp.array([1, 1, 1, 0, 0, 0, 1])
    by_hand = np.mean((np.asarray(logits[:, 0]) > 0) == (np.asarray(labels) == 1))  # 5/7
    assert float(fn.train.accuracy(logits, labels)) == pytest.approx(by_hand) == 5 / 7
    assert float(fn.train.accuracy(logits[:, 0], labels)) == pytest.approx(5 / 7)
    assert float(fn.train.accuracy(logits, 2.0 * labels[:, None] - 1)) == pytest.approx(5 / 7)
    with pytest.raises(ValueError, match="accuracy applies to classifiers"):
        fn.train.accuracy(jnp.ones((4, 3, 2)), jnp.ones((4, 3, 2)))


def test_binary_classifier_through_fit_reports_its_true_accuracy(data):
    x, y = data
    net = fn.models.mlp([16, 1])
    bce = lambda out, t: fn.losses.binary_cross_entropy(out[:, 0], t.astype(jnp.float32))  # noqa: E731
    bce.__name__ = "bce"
    ts, history = fn.train.fit(net, bce, fn.optim.adam(0.05), (x, y), epochs=3, batch_size=40,
                               key=jax.random.key(0), metrics=("loss", "accuracy"),
                               progress=False)  # fmt: skip
    logits = np.asarray(fn.train.predict(net, ts, x))[:, 0]
    result = fn.train.evaluate(net, ts, (x, y), metrics=("accuracy",))
    assert result["accuracy"] == pytest.approx(np.mean((logits > 0) == (y == 1)))
    assert list(result) == ["accuracy"]  # no loss_fn needed for other metrics


def test_an_autoencoder_has_no_accuracy_and_asking_for_one_is_an_error(data):
    x = data[0]
    net = fn.models.mlp([1, 2])
    ts, history = fn.train.fit(net, fn.losses.mse, fn.optim.adam(1e-2), (x, x), epochs=1,
                               batch_size=40, key=jax.random.key(0), val_data=(x, x),
                               progress=False)  # fmt: skip
    assert set(history) == {"loss", "grad_norm", "val_loss"}
    with pytest.raises(ValueError, match="accuracy needs class labels.*reconstruction"):
        fn.train.fit(net, fn.losses.mse, fn.optim.adam(1e-2), (x, x), epochs=1, batch_size=40,
                     key=jax.random.key(0), metrics=("loss", "accuracy"), progress=False)  # fmt: skip


def test_penalty_learning_rate_and_named_metrics_are_logged(data):
    net = fn.models.mlp([8, 2])
    schedule = fn.optim.cosine_decay_schedule(0.1, decay_steps=12)
    ts, history = fn.train.fit(
        net, CE, fn.optim.sgd(schedule), data, epochs=2, batch_size=20, key=jax.random.key(0),
        val_data=data, penalty=lambda p: 1e-2 * fn.losses.l2_penalty(p),
        metrics={"loss": "loss", "err": lambda o, t: 1 - fn.train.accuracy(o, t)}, progress=False,
    )  # fmt: skip
    assert {"loss", "penalty", "err", "val_loss", "val_err", "learning_rate"} <= set(history)
    # loss and val_loss are the same quantity: the data loss, without the penalty.
    final = fn.train.evaluate(net, ts, data, loss_fn=CE)
    assert history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-5)
    assert history["learning_rate"] == pytest.approx([float(schedule(5)), float(schedule(11))])
    with pytest.raises(ValueError, match="has no name"):
        fn.train.fit(net, CE, fn.optim.sgd(0.1), data, epochs=1, batch_size=20,
                     key=jax.random.key(0), metrics=(lambda o, t: 0.0,), progress=False)  # fmt: skip


def test_optax_transformations_with_extra_arguments_work(data):
    net = fn.models.mlp([8, 2])
    opt = optax.chain(optax.adam(1e-2), optax.contrib.reduce_on_plateau(patience=1))
    ts, history = fn.train.fit(net, CE, opt, data, epochs=2, batch_size=20,
                               key=jax.random.key(0), progress=False)  # fmt: skip
    assert history.epochs == 2 and np.isfinite(history["loss"]).all()


def test_evaluate_and_predict_compile_once_and_confusion_matrix(data, caplog):
    net = fn.models.mlp([8, 2])
    ts = fn.train.init(net, fn.optim.adam(1e-2), jax.random.key(0), (8, 2))
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        fn.train.evaluate(net, ts, data, loss_fn=CE, batch_size=64)
        fn.train.predict(net, ts, data[0], batch_size=64)
        first = sum("Compiling" in r.getMessage() for r in caplog.records)
        for _ in range(3):
            fn.train.evaluate(net, ts, data, loss_fn=CE, batch_size=64)
            fn.train.predict(net, ts, data[0], batch_size=64)
        again = sum("Compiling" in r.getMessage() for r in caplog.records)
    assert first > 0 and again == first
    counts = fn.train.confusion_matrix(net, ts, data)
    predicted = np.argmax(np.asarray(fn.train.predict(net, ts, data[0])), axis=-1)
    assert counts.trace() == np.sum(predicted == data[1]) and counts.sum() == len(data[1])
    assert counts[1].sum() == np.sum(data[1] == 1)


def test_early_stopping_mode_and_history_plot_returns_the_figure(data):
    with pytest.raises(ValueError, match="mode"):
        fn.train.EarlyStopping(mode="up")
    stop = fn.train.EarlyStopping(monitor="val_loss", mode="max", patience=1)
    assert stop.higher_is_better and not fn.train.EarlyStopping("val_loss").higher_is_better
    history = fn.train.History({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    figure = history.plot()
    assert figure.axes and figure.axes[0].get_title() == "loss"
    assert history.first(1)["val_loss"] == [1.1]


# -- callbacks that lose nothing -------------------------------------------------------------


def test_a_checkpoint_directory_keeps_every_run_apart(data, tmp_path):
    net = fn.models.mlp([8, 2])
    opt = fn.optim.adam(1e-2)
    kw = dict(batch_size=40, progress=False)
    old = fn.train.Checkpoint(tmp_path, keep=None)
    fn.train.fit(net, CE, opt, data, epochs=6, key=jax.random.key(0), callbacks=[old], **kw)
    old_files = {p: p.read_bytes() for p in fn.train.Checkpoint.files(tmp_path)}
    assert len(old_files) == 6
    new = fn.train.Checkpoint(tmp_path, keep=2)
    with pytest.warns(UserWarning, match="already holds 6 checkpoint"):
        ts, _ = fn.train.fit(net, CE, opt, data, epochs=3, key=jax.random.key(1), callbacks=[new],
                             **kw)  # fmt: skip
    assert new.run != old.run
    assert all(p.read_bytes() == b for p, b in old_files.items())  # untouched, never deleted
    latest = fn.train.Checkpoint.latest(tmp_path)
    assert latest.name == f"epoch-0003-{new.run}.ckpt"
    assert len(fn.train.Checkpoint.files(tmp_path, run=new.run)) == 2
    # Continuing the new run from its own checkpoint keeps its id and rotation.
    again = fn.train.Checkpoint(tmp_path, keep=2)
    loaded = fn.checkpoint.load(latest, like=ts)
    fn.train.fit(net, CE, opt, data, epochs=1, ts=loaded, callbacks=[again], **kw)
    assert again.run == new.run
    assert [p.name for p in fn.train.Checkpoint.files(tmp_path, run=new.run)] == [
        f"epoch-0003-{new.run}.ckpt", f"epoch-0004-{new.run}.ckpt"
    ]  # fmt: skip


def test_csv_log_continues_across_a_resume_and_is_not_shadowed(data, tmp_path):
    net = fn.models.mlp([8, 2])
    opt = fn.optim.adam(1e-2)
    kw = dict(batch_size=40, progress=False)
    path = tmp_path / "log.csv"
    ts, _ = fn.train.fit(net, CE, opt, data, epochs=3, key=jax.random.key(0),
                         callbacks=[fn.train.CSVLogger(path)], **kw)  # fmt: skip
    two, _ = fn.train.fit(net, CE, opt, data, epochs=2, key=jax.random.key(0), **kw)
    # Resume from epoch 2: the log keeps epochs 1-2 and the resumed run writes 3-4 once.
    fn.train.fit(net, CE, opt, data, epochs=2, ts=two, callbacks=[fn.train.CSVLogger(path)], **kw)
    rows = path.read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2", "3", "4"]
    with pytest.raises(ValueError, match="holds the log of another run"):
        fn.train.fit(net, CE, opt, data, epochs=1, key=jax.random.key(5),
                     callbacks=[fn.train.CSVLogger(path)], **kw)  # fmt: skip
