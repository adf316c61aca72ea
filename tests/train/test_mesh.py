"""fit over a 4-device mesh equals one device, and a checkpoint moves between the two.

(A subprocess with 4 host CPU devices.)
"""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np, funcnets as fn
    assert len(jax.devices()) == 4
    x, y = fn.data.xor(jax.random.key(1), n=128)
    nets = {
        "mlp": fn.models.mlp([8, 2]),
        "batchnorm": fn.Sequential(fn.Dense(8), fn.BatchNorm(), fn.relu, fn.Dense(2)),
    }
    meshes = {
        "make_mesh": jax.make_mesh((4,), ("data",)),  # explicit axes, jax's default
        "Mesh": jax.sharding.Mesh(np.array(jax.devices()), ("data",)),  # auto axes
    }
    for name, net in nets.items():
        def train(mesh):
            return fn.train.fit(net, fn.losses.sparse_cross_entropy, fn.optim.sgd(0.1, momentum=0.9),
                                (x, y), epochs=2, batch_size=32, key=jax.random.key(0),
                                progress=False, mesh=mesh)[0]
        one = train(None)
        for kind, mesh in meshes.items():
            many = train(mesh)
            for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(many.params)):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            for leaf in jax.tree.leaves(many.params):
                assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4
            print(name, kind, "equal")

    # A checkpoint written on 4 devices resumes on 1, and one written on 1 resumes on 4,
    # both equal to 2 epochs on one device.
    import tempfile
    net, opt, mesh = nets["mlp"], fn.optim.adam(1e-2), meshes["make_mesh"]
    def fit(epochs, mesh, ts=None, callbacks=()):
        return fn.train.fit(net, fn.losses.sparse_cross_entropy, opt, (x, y), epochs=epochs,
                            batch_size=32, key=jax.random.key(0), ts=ts, progress=False,
                            mesh=mesh, callbacks=list(callbacks))[0]
    straight = fit(2, None)
    for first, then in ((mesh, None), (None, mesh)):
        with tempfile.TemporaryDirectory() as directory:
            fit(1, first, callbacks=[fn.train.Checkpoint(directory)])
            saved = fn.train.Checkpoint.latest(directory)
            resumed = fit(1, then, ts=fn.checkpoint.load(saved, like=straight))
        assert int(resumed.epoch) == 2
        for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        print("checkpoint", "4->1" if then is None else "1->4", "equal")
    """
)


def test_fit_on_four_devices_equals_one_device_and_checkpoints_move_between_them():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("equal") == 6, result.stdout
