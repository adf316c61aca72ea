"""Data parallelism and FSDP (funcnets.parallel.sharding, `run`/`fit` with ``mesh=``).

The rules of the layouts are checked here on the one default device; training
on 4 devices is checked against 1 device in one subprocess with 4 host CPU
devices (one start-up for every case).
"""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import funcnets as fn
from funcnets.parallel.sharding import (
    auto_mesh,
    batch_sharding,
    data_mesh,
    fsdp_shardings,
    fsdp_spec,
    replicated,
    shard_batch,
    state_shardings,
)


def test_fsdp_spec_splits_large_arrays_along_their_longest_divisible_axis():
    assert fsdp_spec((64, 256), 4) == P(None, "data")  # the longer axis
    assert fsdp_spec((256, 64), 4) == P("data")
    assert fsdp_spec((64, 64), 4) == P("data")  # the first of equally long axes
    assert fsdp_spec((3, 3, 64, 30), 4) == P(None, None, "data")  # 30 is not divisible
    assert fsdp_spec((6, 250), 4) == P()  # no divisible axis: replicated
    assert fsdp_spec((1023,), 1) == P()  # below min_size: replicated
    assert fsdp_spec((1024,), 1) == P("data")
    assert fsdp_spec((8, 8), 4, min_size=0) == P("data")
    assert fsdp_spec((), 4, min_size=0) == P()  # a scalar (a step count)


def test_fsdp_shardings_follow_the_rule_leaf_by_leaf_on_the_data_axis_size():
    mesh = data_mesh()
    tree = {
        "w": jnp.zeros((64, 256)),
        "b": jax.ShapeDtypeStruct((256,), jnp.float32),
        "count": jnp.zeros((), jnp.int32),
    }
    shardings = fsdp_shardings(tree, mesh)
    assert {k: s.spec for k, s in shardings.items()} == {
        "w": P(None, "data"),
        "b": P(),
        "count": P(),
    }
    assert fsdp_shardings(tree, mesh, min_size=0)["b"].spec == P("data")
    assert all(s.mesh == auto_mesh(mesh) for s in jax.tree.leaves(shardings))
    with pytest.raises(ValueError, match="min_size"):
        fsdp_shardings(tree, mesh, min_size=-1)


def test_meshes_are_viewed_with_auto_axes_on_the_same_devices():
    explicit = jax.make_mesh((1,), ("data",))
    view = auto_mesh(explicit)
    assert view.axis_types == (jax.sharding.AxisType.Auto,)
    assert view.axis_names == explicit.axis_names and (view.devices == explicit.devices).all()
    assert batch_sharding(explicit).spec == P("data") and replicated(explicit).spec == P()
    mesh = data_mesh(jax.devices()[:1])
    assert mesh.shape == {"data": 1} and mesh.axis_types == (jax.sharding.AxisType.Auto,)
    with pytest.raises(ValueError, match="at least one device"):
        data_mesh([])
    x, y = shard_batch((jnp.zeros((3, 2)), jnp.zeros(3)), mesh)
    assert x.sharding == batch_sharding(mesh) and y.sharding == batch_sharding(mesh)


def test_state_shardings_shard_params_and_optimizer_state_only_under_fsdp():
    net, opt = fn.Sequential(fn.Dense(256), fn.BatchNorm()), fn.optim.adam(1e-3)
    ts = fn.train.init(net, opt, jax.random.key(0), (8, 64))
    mesh = data_mesh()
    plain = state_shardings(ts, mesh)
    assert all(s.spec == P() for s in jax.tree.leaves(plain))
    sharded = state_shardings(ts, mesh, fsdp=True)
    assert sharded.params["0"]["w"].spec == P(None, "data")
    assert sharded.opt_state[0].mu["0"]["w"].spec == P(None, "data")
    assert sharded.opt_state[0].count.spec == P()
    assert all(s.spec == P() for s in jax.tree.leaves(sharded.state))  # BatchNorm statistics
    assert sharded.step.spec == sharded.key.spec == sharded.epoch.spec == P()


def test_bad_meshes_and_fsdp_without_a_mesh_are_clear_errors():
    net, opt = fn.models.mlp([4, 2]), fn.optim.sgd(0.1)
    x, y = jnp.zeros((8, 3)), jnp.zeros(8, jnp.int32)
    ts = fn.train.init(net, opt, jax.random.key(0), x.shape)
    step = fn.train.make_step(net, fn.losses.sparse_cross_entropy, opt)

    def run(**kw):
        return fn.train.run(step, ts, (x, y), epochs=1, progress=False, **kw)

    with pytest.raises(ValueError, match="axis named 'data'"):
        run(mesh=jax.sharding.Mesh(np.array(jax.devices()[:1]), ("batch",)))
    with pytest.raises(ValueError, match="mesh must be a jax.sharding.Mesh"):
        run(mesh=jax.devices())
    with pytest.raises(ValueError, match="fsdp=True .* pass mesh="):
        run(fsdp=True)
    with pytest.raises(ValueError, match="fsdp must be True or False"):
        run(mesh=data_mesh(), fsdp="yes")


SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import itertools, tempfile
    import jax, numpy as np, funcnets as fn
    from funcnets.parallel.sharding import fsdp_shardings
    from funcnets.train.run import shuffle_key
    assert jax.device_count() == 4

    CE = fn.losses.sparse_cross_entropy
    MAKE_MESH = jax.make_mesh((4,), ("data",))  # Explicit axes, jax's default
    MESH = jax.sharding.Mesh(np.array(jax.devices()), ("data",))  # Auto axes
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, 80, np.int32)
    # minibatches of 30 and validation on 10: neither divisible by 4
    VAL, BATCH, SHAPE = (x[70:], y[70:]), 30, (30, 8, 8, 1)
    TMP = tempfile.TemporaryDirectory()

    def close(a, b):
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)

    def replicated_on_4(tree):
        for leaf in jax.tree.leaves(tree):
            assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4

    def watched(step, seen):
        # The step, recording how XLA lays out each minibatch inside it.
        def inner(ts, batch):
            n = batch[0].shape[0]
            jax.debug.inspect_array_sharding(batch[0], callback=lambda s: seen.append((n, s)))
            return step(ts, batch)
        return inner

    def split_on_4(seen, sizes):
        assert {n for n, _ in seen} == sizes, seen
        for n, s in seen:  # never silently unsharded, whatever the minibatch's size
            assert s.spec == jax.sharding.PartitionSpec("data") and len(s.device_set) == 4, s

    # (net, optimizer, examples); the CNN's 70 = 30 + 30 + 10 ends in a smaller minibatch,
    # the hardest case for BatchNorm's global statistics. Adam would turn the rounding
    # noise of the conv bias' gradient (zero in exact arithmetic before BatchNorm) into
    # full-size steps: momentum SGD for the CNN.
    models = {
        "cnn": (fn.Sequential(fn.Conv2D(4, 3), fn.BatchNorm(), fn.relu, fn.MaxPool2D(2),
                              fn.Flatten(), fn.Dense(3)), fn.optim.sgd(0.1, momentum=0.9), 70),
        "lstm": (fn.models.lstm_classifier(8, 3), fn.optim.adam(1e-2), 60),
        "mlp": (fn.models.mlp([64, 3]), fn.optim.adam(1e-2), 60),
    }
    for name, (net, opt, n) in models.items():
        train, ts0 = (x[:n], y[:n]), fn.train.init(net, opt, jax.random.key(1), SHAPE)
        def fit(mesh, epochs=2, ts=ts0, **kw):
            return fn.train.fit(net, CE, opt, train, epochs=epochs, batch_size=BATCH, ts=ts,
                                progress=False, mesh=mesh, **kw)
        # validation (on 10 examples) for the BatchNorm CNN and the MLP; the MLP's
        # one-device run keeps its checkpoints, for the resumes below
        val = None if name == "lstm" else VAL
        saves = [fn.train.Checkpoint(f"{TMP.name}/mlp")] if name == "mlp" else []
        one, one_logs = fit(None, val_data=val, callbacks=saves)
        assert one_logs["loss"][0] != one_logs["loss"][1]  # it trained
        # fit on an Explicit mesh, inside the user's own jax.set_mesh of it
        with jax.set_mesh(MAKE_MESH):
            many, many_logs = fit(MAKE_MESH, val_data=val)
        close((one.params, one.state, one.opt_state), (many.params, many.state, many.opt_state))
        assert sorted(one_logs) == sorted(many_logs)  # loss, accuracy, grad_norm (val_*)
        for k in one_logs:
            np.testing.assert_allclose(one_logs[k], many_logs[k], rtol=1e-5, err_msg=k)
        replicated_on_4(many)
        print(name, "fit make_mesh equal")
        # run on an Auto mesh, watching each minibatch's layout inside the step; for the
        # MLP with given batches: those of the array path (the engine's own shuffle)
        seen, epoch = [], itertools.count(1)
        def batches():
            perm = np.asarray(jax.random.permutation(shuffle_key(ts0.key, next(epoch)), n))
            return iter([(train[0][perm[i:i + BATCH]], train[1][perm[i:i + BATCH]])
                         for i in range(0, n, BATCH)])
        step = watched(fn.train.make_step(net, CE, opt), seen)
        many = fn.train.run(step, ts0, batches if name == "mlp" else train, epochs=2,
                            batch_size=BATCH, progress=False, mesh=MESH)[0]
        close((one.params, one.state), (many.params, many.state))
        replicated_on_4(many.params)
        split_on_4(seen, {30, 10} if n == 70 else {30})
        print(name, "run Mesh", "given batches" if name == "mlp" else "arrays", "equal")

    # FSDP (the MLP, last in the loop): the large leaves of the params and of Adam's
    # moments split over the 4 devices, the rest replicated; the same training.
    with tempfile.TemporaryDirectory() as directory:
        fsdp = fit(MAKE_MESH, fsdp=True, val_data=VAL,
                   callbacks=[fn.train.Checkpoint(directory)])[0]
        fsdp_epoch_1 = fn.checkpoint.load(fn.train.Checkpoint.files(directory)[0], like=one)
    close((one.params, one.opt_state), (fsdp.params, fsdp.opt_state))
    for part in (fsdp.params, fsdp.opt_state):
        expected = fsdp_shardings(part, MAKE_MESH)
        for leaf, sharding in zip(jax.tree.leaves(part), jax.tree.leaves(expected), strict=True):
            assert leaf.sharding.spec == sharding.spec, (leaf.sharding, sharding)
    w = fsdp.params["dense0"]["w"]  # (64, 64): a (16, 64) block on each device
    assert w.sharding.spec == jax.sharding.PartitionSpec("data")
    assert sorted(s.data.shape for s in w.addressable_shards) == [(16, 64)] * 4
    assert len({s.device for s in w.addressable_shards}) == 4
    assert fsdp.opt_state[0].mu["dense0"]["w"].sharding.spec == w.sharding.spec
    replicated_on_4(fsdp.params["dense1"])  # (64, 3) and (3,): too small, and 3 % 4 != 0
    print("fsdp equal")

    # A checkpoint written under FSDP on 4 devices resumes on 1, and one written on
    # 1 resumes under FSDP on 4, both equal to 2 epochs on one device.
    one_epoch_1 = fn.checkpoint.load(fn.train.Checkpoint.files(f"{TMP.name}/mlp")[0], like=one)
    for saved, mesh, label in ((fsdp_epoch_1, None, "fsdp 4->1"), (one_epoch_1, MESH, "1->fsdp 4")):
        assert int(saved.epoch) == 1
        assert all(len(leaf.sharding.device_set) == 1 for leaf in jax.tree.leaves(saved))
        resumed = fit(mesh, epochs=1, ts=saved, fsdp=mesh is not None)[0]
        assert int(resumed.epoch) == 2
        close((one.params, one.opt_state), (resumed.params, resumed.opt_state))
        print("checkpoint", label, "equal")
    """
)


def test_four_devices_equal_one_device():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("equal") == 9, result.stdout
