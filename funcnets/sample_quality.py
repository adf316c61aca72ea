"""Sample quality of a generative model, read through a classifier of the data.

A generative model's samples are scored by a classifier trained on the real
data, as Salimans et al. (2016) and Heusel et al. (2017) did with
Inception-v3 on ImageNet; on MNIST a small classifier trained on MNIST takes
its place, so the numbers compare models on the same data and classifier,
not with ImageNet papers.

- `inception_score`: ``exp(E_x KL(p(y|x) || p(y)))`` from the class
  probabilities: high when each sample is confidently one class and the
  classes are evenly covered.
- `frechet_distance`: the Fréchet (2-Wasserstein) distance between Gaussians
  fitted to two sets of features (the classifier's penultimate layer): low
  when the samples' features are distributed like the real ones.
- `classifier_outputs`: both inputs, probabilities and penultimate features,
  from a `Sequential` classifier whose last child gives logits.

Both scores are computed on the host in float64 (numpy), since a covariance's
square root loses most of its digits in float32.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from numpy.typing import ArrayLike

from funcnets.activations import softmax
from funcnets.layers.base import Layer


def inception_score(probabilities: ArrayLike) -> float:
    """The Inception score ``exp(E_x KL(p(y|x) || p(y)))`` of a set of predictions.

    ``probabilities`` (n, classes) holds each sample's ``p(y|x)``; ``p(y)`` is
    their mean over the set, and ``KL(p || q) = sum_y p_y log(p_y / q_y)``
    with ``0 log 0 = 0``. The score is ``exp(H(p(y)) - E_x H(p(y|x)))``: it
    lies between 1 (every sample gets the same prediction) and the number of
    classes (each prediction certain, the classes used equally often).
    Salimans et al. 2016, "Improved techniques for training GANs", §4; computed
    here over the whole set (the paper averages 10 splits).

    Args:
        probabilities: (n, classes), rows of non-negative numbers summing to 1.

    Returns:
        The score, a float in ``[1, classes]``.

    Raises:
        ValueError: when ``probabilities`` is not (n, classes) with n >= 1, or
            its rows are not probability distributions.

    Example:
        >>> import numpy as np
        >>> round(inception_score(np.eye(4)), 6)  # certain, each class once
        4.0
        >>> round(inception_score(np.full((5, 4), 0.25)), 6)
        1.0
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"probabilities must be (n, classes) with n >= 1, got shape {p.shape}")
    if not (np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0, atol=1e-4)):
        raise ValueError("probabilities must hold rows of non-negative numbers summing to 1")
    marginal = p.mean(axis=0)
    positive = p > 0  # 0 log 0 = 0; where p > 0 the marginal is > 0 too
    ratio = np.where(positive, p, 1.0) / np.where(positive, marginal, 1.0)
    kl = np.sum(np.where(positive, p * np.log(ratio), 0.0), axis=1)
    return float(np.exp(kl.mean()))


def _moments(features: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"{name} must be (n, features) with n >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (by ``eigh``)."""
    values, vectors = np.linalg.eigh(c)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features.

    With means ``m_a, m_b`` and covariances ``C_a, C_b`` (unbiased, ``n - 1``)
    of the rows of each set::

        d² = |m_a - m_b|² + tr(C_a) + tr(C_b) - 2 tr((C_a C_b)^½)

    the squared 2-Wasserstein distance between ``N(m_a, C_a)`` and ``N(m_b,
    C_b)`` (Dowson & Landau 1982), used on a classifier's features as the
    "FID" of Heusel et al. 2017, "GANs trained by a two time-scale update
    rule converge to a local Nash equilibrium". ``tr((C_a C_b)^½)`` is
    computed without scipy as ``tr((S C_b S)^½)`` with ``S = C_a^½``: the
    matrices ``C_a C_b`` and ``S C_b S`` have the same eigenvalues, and the
    second is symmetric, so both roots come from ``eigh`` (eigenvalues below
    0 by rounding clipped to 0). Zero for identical sets, symmetric in the
    two; like every estimate from samples, biased upwards for small sets, so
    compare distances computed on sets of the same sizes.

    Args:
        features_a: (n_a, d) features of one set (n_a >= 2).
        features_b: (n_b, d) features of the other (n_b >= 2).

    Returns:
        ``d²`` as a float (>= 0).

    Raises:
        ValueError: when a set is not (n, d) with n >= 2, or the two differ in d.

    Example:
        >>> import numpy as np
        >>> a = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
        >>> round(frechet_distance(a, a + 1.0), 6)  # shifted by (1, 1): |m_a - m_b|² = 2
        2.0
    """
    mean_a, cov_a = _moments(features_a, "features_a")
    mean_b, cov_b = _moments(features_b, "features_b")
    if mean_a.shape != mean_b.shape:
        raise ValueError(
            f"features_a and features_b must have the same number of features, got "
            f"{mean_a.shape[0]} and {mean_b.shape[0]}"
        )
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    return float(max(distance, 0.0))


@functools.partial(jax.jit, static_argnums=0)
def _probabilities_and_features(
    net: Layer, params: dict, state: dict, x: jax.Array
) -> tuple[jax.Array, jax.Array]:
    *body, (head_name, head) = net.children
    h = x
    for name, child in body:
        h, _ = child.apply(params[name], state[name], h)
    logits, _ = head.apply(params[head_name], state[head_name], h)
    return softmax(logits), h.reshape(h.shape[0], -1)


def classifier_outputs(
    net: Layer, params: dict, state: dict, x: ArrayLike, *, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """A `Sequential` classifier's class probabilities and penultimate features of ``x``.

    The net runs in inference mode (``train=False``): every child but the
    last gives the features (flattened to one vector per example), the last
    child maps them to logits, whose softmax gives the probabilities. These
    are the inputs of `inception_score` and `frechet_distance`. The examples
    go through in minibatches of ``batch_size`` (the last one padded, so one
    compiled call serves every size).

    Args:
        net: a `Sequential` of at least two children, the last giving logits.
        params: its parameters.
        state: its state.
        x: (n, ...) examples.
        batch_size: examples per compiled call.

    Returns:
        ``(probabilities, features)``: numpy arrays (n, classes) and (n, d).

    Raises:
        ValueError: when ``net`` is not a `Sequential` of two children or more,
            ``batch_size`` is not a positive int, or ``x`` holds no example.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> net = fn.Sequential(fn.Dense(5), fn.relu, fn.Dense(3))
        >>> _, params, state = net.init(jax.random.key(0), (1, 4))
        >>> probabilities, features = classifier_outputs(net, params, state, jnp.ones((7, 4)))
        >>> probabilities.shape, features.shape
        ((7, 3), (7, 5))
    """
    if getattr(net, "name", None) != "Sequential" or len(net.children) < 2:
        raise ValueError("net must be a Sequential of at least two children, the last one logits")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"x must hold at least one example, got shape {x.shape}")
    size = min(batch_size, len(x))
    probabilities, features = [], []
    for start in range(0, len(x), size):
        chunk = x[start : start + size]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
        p, f = jax.device_get(_probabilities_and_features(net, params, state, padded))
        probabilities.append(p[: len(chunk)])
        features.append(f[: len(chunk)])
    return np.concatenate(probabilities), np.concatenate(features)
