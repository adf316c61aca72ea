"""Slow: an MLP trained with fit on the real MNIST files reaches at least 98.0%."""

import jax
import pytest

import funcnets as fn


@pytest.mark.slow
def test_mlp_reaches_98_percent_on_mnist(real_data):
    if not (real_data / "mnist").is_dir():
        pytest.skip(f"no MNIST files under {real_data}")
    (x, y), test = fn.data.load_mnist(root=real_data, download=False)
    net = fn.models.mlp([512, 512, 10], dropout=0.2)
    ts, history = fn.train.fit(net, fn.losses.sparse_cross_entropy, fn.optim.adam(1e-3), (x, y),
                               epochs=12, batch_size=128, key=jax.random.key(0),
                               validation_split=0.1, progress=False)  # fmt: skip
    assert (
        fn.train.evaluate(net, ts, test, loss_fn=fn.losses.sparse_cross_entropy)["accuracy"] >= 0.98
    )
