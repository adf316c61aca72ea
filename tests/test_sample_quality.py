"""`fn.sample_quality`: the Inception score and the Fréchet distance against values known in
closed form, and the classifier outputs they are computed from."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.sample_quality import classifier_outputs, frechet_distance, inception_score

# -- the Inception score -------------------------------------------------------------------


@pytest.mark.parametrize("classes", [2, 7, 10])
def test_confident_predictions_spread_evenly_over_the_classes_score_the_number_of_classes(
    classes,
):
    one_hot = np.tile(np.eye(classes), (3, 1))  # each class 3 times, each prediction certain
    assert inception_score(one_hot) == pytest.approx(classes, rel=1e-12)


def test_identical_predictions_score_one_whatever_they_are():
    for row in ([1.0, 0.0, 0.0], [0.2, 0.3, 0.5]):
        assert inception_score(np.tile(row, (50, 1))) == pytest.approx(1.0, abs=1e-12)


def test_a_mixed_set_scores_its_hand_computed_value_and_ignores_the_order():
    # Half the samples say class 0 for certain, half are unsure: p(y) = (3/4, 1/4).
    p = np.array([[1.0, 0.0]] * 4 + [[0.5, 0.5]] * 4)
    kl_certain = np.log(1 / 0.75)
    kl_unsure = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)
    expected = np.exp((kl_certain + kl_unsure) / 2)
    assert inception_score(p) == pytest.approx(expected, rel=1e-12)
    assert inception_score(p[::-1]) == pytest.approx(expected, rel=1e-12)
    # Confident but unevenly spread (3 of one class, 1 of another) scores below 2.
    uneven = inception_score(np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]]))
    assert uneven == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))


@pytest.mark.parametrize(
    "bad", [np.ones(3) / 3, np.zeros((0, 3)), np.array([[0.5, 0.6]]), np.array([[1.5, -0.5]])]
)
def test_the_inception_score_refuses_what_is_not_a_set_of_distributions(bad):
    with pytest.raises(ValueError, match="probabilities"):
        inception_score(bad)


# -- the Fréchet distance ------------------------------------------------------------------


def gaussian_set(seed, mean, cov, n=400):
    """``n`` points whose sample mean and (n - 1) covariance are exactly ``mean`` and ``cov``."""
    z = np.random.default_rng(seed).normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whitened
    return z @ np.linalg.cholesky(cov).T + mean


def test_the_distance_of_two_gaussians_sharing_eigenvectors_is_the_closed_form():
    # C = Q diag(d) Q^T for both sets: tr((C_a C_b)^½) = Σ sqrt(d_a d_b), so
    # d² = |m_a - m_b|² + Σ (sqrt(d_a) - sqrt(d_b))².
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    d_a, d_b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([4.0, 0.25, 0.5, 1.0])
    m_a, m_b = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, -1.0, 2.0, 0.0])
    a = gaussian_set(1, m_a, q @ np.diag(d_a) @ q.T)
    b = gaussian_set(2, m_b, q @ np.diag(d_b) @ q.T, n=300)
    expected = np.sum((m_a - m_b) ** 2) + np.sum((np.sqrt(d_a) - np.sqrt(d_b)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_the_distance_of_two_gaussians_whose_covariances_do_not_commute_is_the_closed_form():
    # For 2x2 matrices, tr(M^½) = sqrt(tr M + 2 sqrt(det M)) with M = C_a C_b.
    c_a, c_b = np.array([[2.0, 0.8], [0.8, 1.0]]), np.array([[1.0, -0.3], [-0.3, 0.5]])
    assert not np.allclose(c_a @ c_b, c_b @ c_a)
    m_a, m_b = np.array([0.5, -1.0]), np.array([0.0, 2.0])
    a = gaussian_set(3, m_a, c_a)
    b = gaussian_set(4, m_b, c_b)
    m = c_a @ c_b
    cross = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    expected = np.sum((m_a - m_b) ** 2) + np.trace(c_a) + np.trace(c_b) - 2 * cross
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_the_distance_is_zero_between_identical_sets_and_symmetric():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(150, 16)) * 1.5 + 0.2
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, a[::-1]) == pytest.approx(0.0, abs=1e-9)  # order does not count
    ab, ba = frechet_distance(a, b), frechet_distance(b, a)
    assert ab > 1.0 and ab == pytest.approx(ba, rel=1e-9)
    # More features than points: singular covariances still give a finite, symmetric value.
    few = frechet_distance(a[:5], b[:7])
    assert np.isfinite(few) and few == pytest.approx(frechet_distance(b[:7], a[:5]), rel=1e-6)


@pytest.mark.parametrize(
    "a, b",
    [
        (np.ones((1, 3)), np.ones((5, 3))),
        (np.ones(5), np.ones(5)),
        (np.ones((4, 2)), np.ones((4, 3))),
    ],
)
def test_the_distance_refuses_malformed_sets(a, b):
    with pytest.raises(ValueError, match="features"):
        frechet_distance(a, b)


# -- the classifier's outputs --------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier():
    net = fn.Sequential(
        flatten=fn.Flatten(), hidden=fn.Dense(6), bn=fn.BatchNorm(), act=fn.tanh,
        output=fn.Dense(4),
    )  # fmt: skip
    _, params, state = net.init(jax.random.key(0), (1, 3, 3, 1))
    state["bn"] = {"mean": jnp.full((6,), 0.3), "var": jnp.full((6,), 2.0)}  # not the identity
    return net, params, state


def test_classifier_outputs_are_the_softmax_of_the_logits_and_the_layer_before(classifier):
    net, params, state = classifier
    x = jax.random.uniform(jax.random.key(1), (11, 3, 3, 1))
    probabilities, features = classifier_outputs(net, params, state, x, batch_size=4)
    logits, _ = net.apply(params, state, x)
    np.testing.assert_allclose(probabilities, jax.nn.softmax(logits), rtol=1e-5, atol=1e-7)
    h = x
    for name, child in net.children[:-1]:
        h, _ = child.apply(params[name], state[name], h)
    assert features.shape == (11, 6)
    np.testing.assert_allclose(features, h, rtol=1e-5, atol=1e-7)
    # The padded last minibatch changes nothing: one batch of all 11 gives the same.
    whole = classifier_outputs(net, params, state, x, batch_size=100)
    np.testing.assert_allclose(whole[0], probabilities, rtol=1e-5, atol=1e-7)


def test_classifier_outputs_refuse_a_net_they_cannot_split(classifier):
    net, params, state = classifier
    dense = fn.Dense(3)
    _, dense_params, _ = dense.init(jax.random.key(0), (1, 4))
    with pytest.raises(ValueError, match="Sequential"):
        classifier_outputs(dense, dense_params, {}, jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="batch_size"):
        classifier_outputs(net, params, state, jnp.ones((2, 3, 3, 1)), batch_size=0)
    with pytest.raises(ValueError, match="x must"):
        classifier_outputs(net, params, state, jnp.ones((0, 3, 3, 1)))
