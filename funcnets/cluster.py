"""Clustering: k-means in JAX, and the two scores of a clustering against labels.

`kmeans` is Lloyd's algorithm (Lloyd 1982) from k-means++ seeds (Arthur &
Vassilvitskii 2007), compiled whole, with several restarts run side by side
(``vmap``) and the one of lowest inertia kept: the choice is unsupervised.
`clustering_accuracy` is the accuracy of the best one-to-one matching of
clusters to classes, and `nmi` the normalised mutual information, the two
numbers reported by Xie et al. (2016, DEC) for MNIST.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import ArrayLike

#: The most clusters or classes (the smaller of the two) `clustering_accuracy` matches:
#: its exact matching costs ``2**m * m`` operations per cluster.
MATCHING_LIMIT = 16


class KMeans(NamedTuple):
    """A k-means clustering of ``n`` points into ``k`` clusters.

    Attributes:
        centroids: ``(k, d)``, the mean of each cluster's points.
        assignments: int32 ``(n,)``, each point's nearest centroid.
        inertia: float32 scalar, ``sum_i ‖x_i - centroids[assignments_i]‖²``.
    """

    centroids: jax.Array
    assignments: jax.Array
    inertia: jax.Array


def _squared_distances(x: jax.Array, centroids: jax.Array) -> jax.Array:
    """``(n, k)``: ``‖x_i‖² - 2 x_i·c_j + ‖c_j‖²``, clipped at 0, products at full precision."""
    cross = jnp.matmul(x, centroids.T, precision=lax.Precision.HIGHEST)
    squares = jnp.sum(x * x, 1)[:, None] + jnp.sum(centroids * centroids, 1)
    return jnp.maximum(squares - 2 * cross, 0.0)


def _plus_plus(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """k-means++ seeds: the first uniform, each next with probability ∝ D², its distance²."""
    first_key, key = jax.random.split(key)
    first = x[jax.random.randint(first_key, (), 0, x.shape[0])]
    nearest = _squared_distances(x, first[None])[:, 0]

    def add(j, carry):
        centroids, nearest = carry
        logits = jnp.where(jnp.any(nearest > 0), jnp.log(nearest), 0.0)  # all equal: uniform
        centroid = x[jax.random.categorical(jax.random.fold_in(key, j), logits)]
        nearest = jnp.minimum(nearest, _squared_distances(x, centroid[None])[:, 0])
        return centroids.at[j].set(centroid), nearest

    centroids = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    return lax.fori_loop(1, k, add, (centroids, nearest))[0]


def _lloyd(x: jax.Array, centroids: jax.Array, iterations: int) -> KMeans:
    """Lloyd's iterations until no centroid moves, at most ``iterations``.

    An empty cluster keeps its centroid. Sums are one-hot matrix products, so
    the result does not depend on the order of floating-point additions.
    """
    k = centroids.shape[0]

    def moving(carry):
        i, _, moved = carry
        return (i < iterations) & moved

    def iterate(carry):
        i, centroids, _ = carry
        members = jax.nn.one_hot(jnp.argmin(_squared_distances(x, centroids), 1), k, dtype=x.dtype)
        counts = jnp.sum(members, 0)[:, None]
        sums = jnp.matmul(members.T, x, precision=lax.Precision.HIGHEST)
        new = jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), centroids)
        return i + 1, new, jnp.any(new != centroids)

    _, centroids, _ = lax.while_loop(moving, iterate, (0, centroids, jnp.asarray(True)))
    distances = _squared_distances(x, centroids)
    assignments = jnp.argmin(distances, 1).astype(jnp.int32)
    return KMeans(centroids, assignments, jnp.sum(jnp.min(distances, 1)))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _kmeans(key: jax.Array, x: jax.Array, k: int, iterations: int, restarts: int) -> KMeans:
    def one(key):
        return _lloyd(x, _plus_plus(key, x, k), iterations)

    runs = jax.vmap(one)(jax.random.split(key, restarts))
    return jax.tree.map(lambda a: a[jnp.argmin(runs.inertia)], runs)


def _points(x: jax.Array) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be (n, features...) with n >= 1 points, got shape {x.shape}")
    return x.reshape(x.shape[0], -1).astype(jnp.float32)


def kmeans(
    key: jax.Array, x: jax.Array, k: int, *, iterations: int = 100, restarts: int = 10
) -> KMeans:
    """k-means clustering of ``x`` ``(n, d1, d2, ...)`` (flattened to ``(n, d)``) into ``k``.

    Minimises the inertia ``sum_i min_j ‖x_i - c_j‖²`` by Lloyd's
    alternation: assign each point to its nearest centroid, move each
    centroid to the mean of its points; stopped when no centroid moves or
    after ``iterations``. Each of ``restarts`` runs starts from its own
    k-means++ seeds (a key split from ``key``); the run of lowest inertia is
    returned. All runs are one compiled, vectorised computation.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
        >>> result = kmeans(jax.random.key(0), x, 2, restarts=3)
        >>> result.centroids[jnp.argsort(result.centroids[:, 0])], float(result.inertia)
        (Array([[ 0. ,  0.5],
               [10. ,  0.5]], dtype=float32), 1.0)
    """
    x = _points(x)
    for name, value, low in (("k", k, 1), ("iterations", iterations, 1), ("restarts", restarts, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if k > x.shape[0]:
        raise ValueError(f"k must be at most the number of points, {x.shape[0]}; got {k}")
    return _kmeans(key, x, k, iterations, restarts)


@jax.jit
def _assign(centroids: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.argmin(_squared_distances(x, centroids), 1).astype(jnp.int32)


def assign(centroids: jax.Array, x: jax.Array) -> jax.Array:
    """Each point's nearest centroid, int32 ``(n,)``: clusters for points not clustered.

    Example:
        >>> import jax.numpy as jnp
        >>> assign(jnp.array([[0.0], [10.0]]), jnp.array([[1.0], [9.0], [-3.0]]))
        Array([0, 1, 0], dtype=int32)
    """
    x = _points(x)
    if centroids.ndim != 2 or centroids.shape[1] != x.shape[1]:
        raise ValueError(
            f"centroids must be (k, {x.shape[1]}) for x of shape {x.shape}, got {centroids.shape}"
        )
    return _assign(jnp.asarray(centroids, jnp.float32), x)


def _contingency(labels: ArrayLike, assignments: ArrayLike) -> np.ndarray:
    """Counts ``(clusters, classes)`` of each (cluster, class) pair, values renumbered from 0."""
    labels, assignments = np.asarray(labels), np.asarray(assignments)
    if labels.ndim != 1 or labels.shape != assignments.shape or labels.size == 0:
        raise ValueError(
            "labels and assignments must be non-empty 1-D arrays of the same length, got "
            f"shapes {labels.shape} and {assignments.shape}"
        )
    _, classes = np.unique(labels, return_inverse=True)
    _, clusters = np.unique(assignments, return_inverse=True)
    counts = np.zeros((clusters.max() + 1, classes.max() + 1), np.int64)
    np.add.at(counts, (clusters, classes), 1)
    return counts


def _best_matching(counts: np.ndarray) -> int:
    """The largest total of ``counts`` over one-to-one matchings of rows and columns.

    A dynamic programme over the rows, with ``best[mask]`` the best total of
    the rows so far matched into the columns in ``mask`` (a bit per column):
    each row stays unmatched or takes a column ``j`` of the mask, ``best[mask]
    = max(best[mask], best[mask - j] + row[j])``. Exact; ``2**m * m``
    operations per row for ``m`` columns (the smaller side).
    """
    if counts.shape[0] < counts.shape[1]:
        counts = counts.T
    m = counts.shape[1]
    if m > MATCHING_LIMIT:
        raise ValueError(
            f"clustering_accuracy matches at most {MATCHING_LIMIT} clusters or classes (the "
            f"smaller of the two), got {counts.shape[0]} and {m}"
        )
    masks = np.arange(1 << m)
    best = np.zeros(1 << m, np.int64)
    for row in counts:
        new = best.copy()
        for j in range(m):
            holding = masks[(masks >> j) & 1 == 1]
            new[holding] = np.maximum(new[holding], best[holding ^ (1 << j)] + row[j])
        best = new
    return int(best[-1])


def clustering_accuracy(labels: ArrayLike, assignments: ArrayLike) -> float:
    """The fraction of points whose cluster maps to their class, under the best matching.

    ``max over one-to-one maps m of clusters to classes of (1/n) sum_i
    [m(assignments_i) = labels_i]`` (Xie et al. 2016, eq. 10), found exactly
    by a dynamic programme over subsets (no Hungarian solver), for up to
    `MATCHING_LIMIT` clusters or classes, whichever is fewer; any values may
    name the clusters and the classes.

    Example:
        >>> clustering_accuracy([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 3, 7])
        0.8333333333333334
    """
    counts = _contingency(labels, assignments)
    return _best_matching(counts) / int(counts.sum())


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def nmi(labels: ArrayLike, assignments: ArrayLike) -> float:
    """Normalised mutual information ``I(Y; A) / ((H(Y) + H(A)) / 2)``, in [0, 1].

    ``Y`` the classes, ``A`` the clusters, with their empirical joint
    distribution; the arithmetic mean of the entropies normalises (scikit-
    learn's default). 1 when the clustering equals the classes up to names,
    0 when it is independent of them; 1 when both are a single group.

    Example:
        >>> round(nmi([0, 0, 1, 1], [0, 0, 1, 2]), 6)  # I = ln 2, H = ln 2 and 1.5 ln 2
        0.8
    """
    counts = _contingency(labels, assignments)
    joint = counts / counts.sum()
    h_clusters, h_classes = _entropy(joint.sum(1)), _entropy(joint.sum(0))
    if h_clusters == h_classes == 0.0:
        return 1.0
    information = h_clusters + h_classes - _entropy(joint.ravel())
    return max(information, 0.0) / ((h_clusters + h_classes) / 2)
