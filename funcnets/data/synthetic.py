"""Small synthetic datasets, each a pure function of a ``jax.random`` key.

Every function returns ``(x, y)`` jax arrays: the same key always gives the same data, and
different keys give different noise. They are jitted, with the sizes (``n``, ``classes``) static.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

__all__ = ["moons", "sine", "spirals", "xor"]


@functools.partial(jax.jit, static_argnames="n")
def xor(key: jax.Array, n: int = 200, noise: float = 0.1) -> tuple[jax.Array, jax.Array]:
    """Points near the corners of the square [-1, 1]², labelled by XOR of their signs.

    Corners (-1, -1) and (1, 1) are class 0, (-1, 1) and (1, -1) class 1: no single line
    separates the classes (Minsky and Papert's example). Each corner gets n // 4 or n // 4 + 1
    points, in a random order.

    Args:
        key: a ``jax.random`` key.
        n: number of points.
        noise: standard deviation of the Gaussian noise added to each coordinate.

    Returns:
        x float32 ``(n, 2)`` and y int32 ``(n,)`` in {0, 1}.
    """
    _check_at_least(n, 1, "n")
    corner_key, noise_key = jax.random.split(key)
    corner = jax.random.permutation(corner_key, jnp.arange(n) % 4)
    bits = jnp.stack([corner // 2, corner % 2], axis=1)
    x = 2 * bits.astype(jnp.float32) - 1 + noise * jax.random.normal(noise_key, (n, 2))
    return x, (bits[:, 0] ^ bits[:, 1]).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("n", "classes"))
def spirals(
    key: jax.Array, n: int = 300, classes: int = 3, noise: float = 0.2
) -> tuple[jax.Array, jax.Array]:
    """Interleaved spiral arms, one per class (the CS231n example), within the unit disc.

    Point j of class c (0 <= j < m, m points in that class) has radius r = j / (m - 1) and
    angle t = 4 (c + r) + noise * N(0, 1), and sits at r (sin t, cos t). Points are
    interleaved by class: y = [0, 1, ..., classes - 1, 0, 1, ...].

    Args:
        key: a ``jax.random`` key.
        n: total number of points; the classes' sizes differ by at most one.
        classes: number of arms (classes), at least 2.
        noise: standard deviation of the noise on the angle, in radians.

    Returns:
        x float32 ``(n, 2)`` and y int32 ``(n,)`` in 0..classes-1.
    """
    _check_at_least(n, 1, "n")
    _check_at_least(classes, 2, "classes")
    index = jnp.arange(n)
    y = (index % classes).astype(jnp.int32)
    per_class = (n - y + classes - 1) // classes
    r = (index // classes).astype(jnp.float32) / jnp.maximum(per_class - 1, 1).astype(jnp.float32)
    t = 4 * (y.astype(jnp.float32) + r) + noise * jax.random.normal(key, (n,))
    return r[:, None] * jnp.stack([jnp.sin(t), jnp.cos(t)], axis=1), y


@functools.partial(jax.jit, static_argnames="n")
def moons(key: jax.Array, n: int = 200, noise: float = 0.1) -> tuple[jax.Array, jax.Array]:
    """Two interleaving half circles (scikit-learn's ``make_moons`` geometry).

    Class 0: (cos θ, sin θ) for n // 2 angles θ evenly spaced in [0, π]; class 1: (1 - cos θ,
    0.5 - sin θ) for the other n - n // 2 points; Gaussian noise on every coordinate.

    Args:
        key: a ``jax.random`` key.
        n: total number of points, at least 2.
        noise: standard deviation of the Gaussian noise.

    Returns:
        x float32 ``(n, 2)`` and y int32 ``(n,)`` in {0, 1}; class 0 comes first.
    """
    _check_at_least(n, 2, "n")
    outer, inner = n // 2, n - n // 2
    theta_out = jnp.linspace(0, math.pi, outer)
    theta_in = jnp.linspace(0, math.pi, inner)
    x = jnp.concatenate(
        [
            jnp.stack([jnp.cos(theta_out), jnp.sin(theta_out)], axis=1),
            jnp.stack([1 - jnp.cos(theta_in), 0.5 - jnp.sin(theta_in)], axis=1),
        ]
    )
    y = jnp.concatenate([jnp.zeros(outer, jnp.int32), jnp.ones(inner, jnp.int32)])
    return x + noise * jax.random.normal(key, (n, 2)), y


@functools.partial(jax.jit, static_argnames="n")
def sine(key: jax.Array, n: int = 200, noise: float = 0.1) -> tuple[jax.Array, jax.Array]:
    """A regression set: x uniform in [-π, π], y = sin x + Gaussian noise.

    Args:
        key: a ``jax.random`` key.
        n: number of points.
        noise: standard deviation of the noise on y.

    Returns:
        x float32 ``(n, 1)`` and y float32 ``(n, 1)``.
    """
    _check_at_least(n, 1, "n")
    x_key, noise_key = jax.random.split(key)
    x = jax.random.uniform(x_key, (n, 1), minval=-math.pi, maxval=math.pi)
    return x, jnp.sin(x) + noise * jax.random.normal(noise_key, (n, 1))


def _check_at_least(value: int, minimum: int, name: str) -> None:
    """Raises ``ValueError`` naming the argument when ``value < minimum``."""
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
