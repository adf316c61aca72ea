"""Principal component analysis: the linear baseline of dimensionality reduction.

`pca` finds the ``k`` orthonormal directions of largest variance of the
centred data (Pearson 1901; Hotelling 1933), from the eigendecomposition of
its covariance; `project` gives the codes ``(x - mean) Wᵀ`` and `reconstruct`
maps codes back, ``z W + mean``. The reconstruction is the best rank-``k``
affine approximation of the data in summed squared error, the baseline that
Hinton & Salakhutdinov (Science 2006) compare deep autoencoders with.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class PCA(NamedTuple):
    """A fitted PCA.

    Attributes:
        mean: ``(d,)``, the mean of the data.
        components: ``(k, d)``, orthonormal rows, in order of decreasing variance;
            each row's sign makes its largest-magnitude entry positive.
        explained_variance: ``(k,)``, the variance of the data along each row
            (the covariance's eigenvalues, with the ``n - 1`` divisor).
    """

    mean: jax.Array
    components: jax.Array
    explained_variance: jax.Array


def _flat(x: jax.Array, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{name} must be (n, features...) with n examples, got shape {x.shape}")
    return x.reshape(x.shape[0], -1)


def pca(x: jax.Array, components: int) -> PCA:
    """The first ``components`` principal components of ``x``.

    ``x`` is ``(n, d1, d2, ...)``, flattened to ``(n, d)``. With ``X`` the
    centred data, the covariance ``C = XᵀX / (n - 1)`` is ``V Λ Vᵀ``
    (``eigh``, float32 products at full precision); the rows of
    ``components`` are the eigenvectors of the ``components`` largest
    eigenvalues, which are ``explained_variance``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.normal(jax.random.key(0), (100, 3)) * jnp.array([3.0, 1.0, 0.1])
        >>> p = pca(x, 2)
        >>> jnp.abs(p.components).round(1)  # the two axes of largest spread
        Array([[1., 0., 0.],
               [0., 1., 0.]], dtype=float32)
    """
    flat = _flat(x, "x")
    n, d = flat.shape
    if not isinstance(components, int) or not 1 <= components <= d or n < 2:
        raise ValueError(
            f"components must be an int in [1, {d}] (the features) with n >= 2 examples, "
            f"got {components!r} for x of shape {jnp.shape(x)}"
        )
    return _fit(flat.astype(jnp.float32), components)


@functools.partial(jax.jit, static_argnums=1)
def _fit(x: jax.Array, k: int) -> PCA:
    mean = jnp.mean(x, axis=0)
    centred = x - mean
    covariance = jnp.matmul(centred.T, centred, precision=lax.Precision.HIGHEST)
    values, vectors = jnp.linalg.eigh(covariance / (x.shape[0] - 1))  # ascending
    values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k].T
    biggest = jnp.take_along_axis(vectors, jnp.argmax(jnp.abs(vectors), 1)[:, None], 1)
    return PCA(mean, vectors * jnp.sign(biggest), jnp.maximum(values, 0.0))


def project(p: PCA, x: jax.Array) -> jax.Array:
    """The codes ``(x - mean) Wᵀ``, ``(n, k)``, of ``x`` ``(n, d1, d2, ...)``.

    Example:
        >>> import jax
        >>> x = jax.random.normal(jax.random.key(0), (50, 4))
        >>> project(pca(x, 2), x).shape
        (50, 2)
    """
    flat = _flat(x, "x")
    if flat.shape[1] != p.mean.shape[0]:
        raise ValueError(f"x has {flat.shape[1]} features per example, the PCA {p.mean.shape[0]}")
    return jnp.matmul(flat - p.mean, p.components.T, precision=lax.Precision.HIGHEST)


def reconstruct(p: PCA, codes: jax.Array) -> jax.Array:
    """``codes W + mean``, ``(n, d)``: the points of the principal subspace with these codes.

    ``reconstruct(p, project(p, x))`` is the orthogonal projection of ``x``
    (flattened) on the affine subspace ``mean + span(components)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.normal(jax.random.key(0), (50, 4))
        >>> p = pca(x, 4)  # every component: reconstruction is exact
        >>> bool(jnp.allclose(reconstruct(p, project(p, x)), x, atol=1e-5))
        True
    """
    codes = jnp.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != p.components.shape[0]:
        raise ValueError(
            f"codes must be (n, {p.components.shape[0]}) for this PCA, got shape {codes.shape}"
        )
    return jnp.matmul(codes, p.components, precision=lax.Precision.HIGHEST) + p.mean
