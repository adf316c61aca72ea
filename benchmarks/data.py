"""Synthetic MNIST-shaped data, in numpy, identical in every framework's process.

Made before any timed region; each framework moves it to its device itself.
No jax import here, so a PyTorch process carries no JAX runtime.
"""

from __future__ import annotations

import numpy as np


def synthetic(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` float32 ``(samples, 28, 28, 1)`` in [0, 1) and int32 labels ``y`` in [0, 10)."""
    rng = np.random.default_rng(seed)
    x = rng.random((samples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, samples).astype(np.int32)
    return x, y


def batches(x: np.ndarray, y: np.ndarray, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive minibatches, the last one smaller when ``batch`` does not divide the data.

    This is how `fn.train.fit` covers an epoch: nothing is dropped.
    """
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, len(x), batch)]
