"""Slow: an MLP trained with fit on the real MNIST files reaches at least 98.0%."""

import os
from pathlib import Path

import jax
import pytest

import funcnets as fn

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ROOT = Path(os.environ.get("FUNCNETS_DATA", SHARED))


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "mnist").is_dir(), reason=f"no MNIST files under {ROOT}")
def test_mlp_reaches_98_percent_on_mnist():
    (x, y), test = fn.data.load_mnist(root=ROOT, download=False)
    net = fn.models.mlp([512, 512, 10], dropout=0.2)
    ts, history = fn.train.fit(net, fn.losses.sparse_cross_entropy, fn.optim.adam(1e-3), (x, y),
                               epochs=12, batch_size=128, key=jax.random.key(0), val_data=test,
                               progress=False)  # fmt: skip
    assert (
        fn.train.evaluate(net, ts, test, loss_fn=fn.losses.sparse_cross_entropy)["accuracy"] >= 0.98
    )
