"""k-means, the clustering scores (checked against brute force and values by hand), and PCA
(against numpy's SVD and the properties of an orthogonal projection)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funcnets import cluster, pca


@pytest.fixture(scope="module")
def blobs():
    """300 points in 5 dimensions around 4 well-separated centres, and their blob labels."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (4, 5)).astype(np.float32)
    labels = rng.integers(0, 4, 300)
    return centres[labels] + rng.normal(0, 0.5, (300, 5)).astype(np.float32), labels, centres


def test_kmeans_recovers_well_separated_blobs(blobs):
    x, labels, centres = blobs
    result = cluster.kmeans(jax.random.key(0), x, 4, iterations=50, restarts=4)
    assert cluster.clustering_accuracy(labels, result.assignments) == 1.0
    # Each centroid is the mean of its blob; the inertia is the sum of squared distances.
    for j in range(4):
        members = x[np.asarray(result.assignments) == j]
        np.testing.assert_allclose(result.centroids[j], members.mean(0), rtol=1e-5, atol=1e-5)
    nearest = np.asarray(result.centroids)[np.asarray(result.assignments)]
    np.testing.assert_allclose(result.inertia, np.sum((x - nearest) ** 2), rtol=1e-5)
    matched = np.sort(np.asarray(result.centroids), axis=0)
    np.testing.assert_allclose(matched, np.sort(centres, axis=0), atol=0.3)
    np.testing.assert_array_equal(cluster.assign(result.centroids, x), result.assignments)
    # Deterministic given the key; the best of restarts is no worse than one restart.
    again = cluster.kmeans(jax.random.key(0), x, 4, iterations=50, restarts=4)
    np.testing.assert_array_equal(again.centroids, result.centroids)
    one = cluster.kmeans(jax.random.key(1), x, 4, iterations=50, restarts=1)
    assert float(result.inertia) <= float(one.inertia) + 1e-3


def brute_force_accuracy(labels, assignments):
    """The best one-to-one matching, trying every injective map of the smaller side."""
    clusters, classes = np.unique(assignments), np.unique(labels)
    best = 0
    if len(clusters) <= len(classes):
        for image in itertools.permutations(classes, len(clusters)):
            mapping = dict(zip(clusters, image))
            best = max(best, sum(mapping[a] == y for a, y in zip(assignments, labels)))
    else:
        for image in itertools.permutations(clusters, len(classes)):
            mapping = dict(zip(image, classes))
            best = max(best, sum(mapping.get(a) == y for a, y in zip(assignments, labels)))
    return best / len(labels)


@pytest.mark.parametrize("clusters,classes", [(4, 4), (3, 5), (6, 3)])
def test_matching_accuracy_equals_brute_force(clusters, classes):
    rng = np.random.default_rng(clusters * 10 + classes)
    for _ in range(3):
        labels = rng.integers(0, classes, 60)
        assignments = np.where(
            rng.random(60) < 0.5, labels % clusters, rng.integers(0, clusters, 60)
        )
        got = cluster.clustering_accuracy(labels, assignments + 7)  # names need not start at 0
        assert got == pytest.approx(brute_force_accuracy(labels, assignments + 7), abs=1e-12)


def test_matching_refuses_too_many_clusters_and_classes():
    labels = np.arange(40) % 17
    assert cluster.clustering_accuracy(labels, np.zeros(40)) == pytest.approx(3 / 40)
    with pytest.raises(ValueError, match="at most 16 clusters or classes"):
        cluster.clustering_accuracy(labels, labels)
    with pytest.raises(ValueError, match="same length"):
        cluster.nmi(labels, labels[:-1])


def test_nmi_known_values():
    assert cluster.nmi([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(0.8)  # ln 2 / (1.25 ln 2)
    assert cluster.nmi([0, 0, 1, 1, 2], [5, 5, 3, 3, 9]) == pytest.approx(1.0)  # renamed
    assert cluster.nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)  # independent
    assert cluster.nmi([3, 3, 3], [1, 1, 1]) == 1.0
    # Two classes of 2, clusters {a, b, b, b}: H(Y) = ln 2, H(A) = H(1/4, 3/4),
    # I = H(Y) - H(Y | A) = ln 2 - (3/4) H(1/3, 2/3).
    h = lambda *p: -sum(q * np.log(q) for q in p)  # noqa: E731
    mi = np.log(2) - 0.75 * h(1 / 3, 2 / 3)
    expected = mi / ((np.log(2) + h(0.25, 0.75)) / 2)
    assert cluster.nmi([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(expected)


def test_kmeans_bad_arguments(blobs):
    x = blobs[0]
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        cluster.kmeans(jax.random.key(0), x, 0)
    with pytest.raises(ValueError, match="k must be at most the number of points, 300"):
        cluster.kmeans(jax.random.key(0), x, 301)
    with pytest.raises(ValueError, match="restarts must be an int >= 1"):
        cluster.kmeans(jax.random.key(0), x, 3, restarts=0)


# -- PCA -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(6, 6)) * np.array([4.0, 3.0, 2.0, 1.0, 0.5, 0.1])[:, None]
    return (rng.normal(size=(200, 6)) @ mixing + 3.0).astype(np.float32)


def test_pca_matches_numpy_svd(correlated):
    x = correlated
    p = pca.pca(x, 3)
    centred = x - x.mean(0)
    _, singular, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(p.mean, x.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p.explained_variance, singular[:3] ** 2 / 199, rtol=1e-4)
    # Same directions up to sign.
    np.testing.assert_allclose(np.abs(np.sum(p.components * vt[:3], 1)), 1.0, rtol=1e-4)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(3), atol=1e-5)


def test_projection_properties(correlated):
    x = correlated
    p = pca.pca(x, 2)
    codes = pca.project(p, x)
    back = pca.reconstruct(p, codes)
    # The codes' variances are the explained variances; they are uncorrelated.
    np.testing.assert_allclose(
        np.cov(np.asarray(codes).T), np.diag(p.explained_variance), rtol=1e-3, atol=1e-2
    )
    # The residual is orthogonal to the components, and projecting twice changes nothing.
    residual = np.asarray(x - back)
    np.testing.assert_allclose(residual @ np.asarray(p.components).T, 0.0, atol=2e-3)
    np.testing.assert_allclose(pca.project(p, back), codes, rtol=1e-4, atol=1e-3)
    # All components: exact; points of a 2-D affine subspace: exact with 2.
    full = pca.pca(x, 6)
    np.testing.assert_allclose(pca.reconstruct(full, pca.project(full, x)), x, atol=1e-3)
    flat = np.asarray(codes @ p.components + 5.0)
    plane = pca.pca(flat.reshape(200, 2, 3), 2)  # examples may have any shape
    np.testing.assert_allclose(pca.reconstruct(plane, pca.project(plane, flat)), flat, atol=1e-3)
    with pytest.raises(ValueError, match=r"components must be an int in \[1, 6\]"):
        pca.pca(x, 7)
    with pytest.raises(ValueError, match="codes must be"):
        pca.reconstruct(p, jnp.zeros((3, 3)))
