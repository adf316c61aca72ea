"""Data augmentation for NHWC image batches: pure, key-driven and jittable.

Each function takes the key first, then the batch ``x`` of shape ``(N, H, W, C)``, and draws
independent randomness per example, so it can run inside ``jax.jit``, ``jax.vmap`` or the body
of a ``lax.scan`` over minibatches; each is itself jitted (``padding`` static). Use a fresh key
per step, e.g. ``jax.random.fold_in(key, step)``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["gaussian_noise", "random_crop", "random_flip"]


@functools.partial(jax.jit, static_argnames="padding")
def random_crop(key: jax.Array, x: jax.Array, padding: int = 4) -> jax.Array:
    """Pads each image with ``padding`` zeros on every side, then crops back at a random offset.

    The classic CIFAR augmentation: a random translation by up to ``padding`` pixels, the
    uncovered border filled with zeros. ``padding=0`` returns ``x`` unchanged.

    Args:
        key: a ``jax.random`` key.
        x: images ``(N, H, W, C)``.
        padding: pixels of zero padding on each side (a Python int, >= 0).

    Returns:
        Images of the same shape and dtype as ``x``.
    """
    _check_nhwc(x, "random_crop")
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    n, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (n, 2), 0, 2 * padding + 1)

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

    return jax.vmap(crop)(padded, offsets)


@jax.jit
def random_flip(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
    """Flips each image left-right (along W) with probability ``p``.

    Args:
        key: a ``jax.random`` key.
        x: images ``(N, H, W, C)``.
        p: probability of flipping each example (may be a traced scalar).

    Returns:
        Images of the same shape and dtype as ``x``.
    """
    _check_nhwc(x, "random_flip")
    flip = jax.random.bernoulli(key, p, (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


@jax.jit
def gaussian_noise(key: jax.Array, x: jax.Array, stddev: float = 0.1) -> jax.Array:
    """Adds independent Gaussian noise, N(0, stddev²), to every element.

    Args:
        key: a ``jax.random`` key.
        x: a floating-point array of any shape, typically images ``(N, H, W, C)``.
        stddev: the noise's standard deviation (may be a traced scalar).

    Returns:
        ``x + stddev * z`` with z standard normal, same shape and dtype as ``x``.
    """
    x = jnp.asarray(x)
    return x + jnp.asarray(stddev, x.dtype) * jax.random.normal(key, x.shape, x.dtype)


def _check_nhwc(x: jax.Array, name: str) -> None:
    if jnp.ndim(x) != 4:
        raise ValueError(f"{name}: expected a batch of images (N, H, W, C), got shape {x.shape}")
