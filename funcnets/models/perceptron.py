"""Rosenblatt's perceptron, trained by his error-correction rule (not by gradient descent).

The perceptron (Rosenblatt 1958, "The perceptron: a probabilistic model for
information storage and organization in the brain") classifies ``x`` by the
sign of ``s(x) = w·x + b``. Its rule changes the weights only on a mistake,
``y s(x) <= 0`` with ``y`` in {-1, +1}:

    w <- w + y x,    b <- b + y.

Convergence (Novikoff 1962, "On convergence proofs on perceptrons"; Block
1962): write ``x̃ = (x, 1)`` and ``w̃ = (w, b)``. If some unit vector ``u`` of
``R^(features+1)`` separates the data with margin ``γ > 0``
(``y_i u·x̃_i >= γ`` for all ``i``) and ``‖x̃_i‖ <= R``, then, starting from
``w̃ = 0``, the rule makes at most ``(R/γ)²`` updates, whatever the order of
the examples and however many epochs: each update raises ``u·w̃`` by at least
``γ`` and ``‖w̃‖²`` by at most ``R²``. On data that no hyperplane separates
(XOR, Minsky and Papert 1969) it never stops making mistakes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

Params = dict[str, jax.Array]


class Perceptron(NamedTuple):
    """A perceptron's pure functions; see `perceptron`.

    Attributes:
        init: ``init() -> params``: ``{"w": (features,), "b": ()}`` float32 zeros.
        predict: ``predict(params, x) -> labels``: ``x (..., features)`` to int32
            ``sign(w·x + b)`` of shape ``(...)``, in {-1, +1}, or 0 on the boundary
            (which the rule counts as a mistake).
        update: ``update(params, x, y) -> (params, updated)``: one
            error-correction step on one example ``x (features,)``, ``y`` = ±1;
            ``updated`` is a bool scalar, True when it was a mistake.
        train: ``train(params, x, y, *, epochs, key=None) -> (params, mistakes)``:
            `update` over ``x (n, features)``, ``y (n,)`` for ``epochs`` passes,
            in the given order or, with ``key``, in the order
            ``permutation(fold_in(key, e), n)`` in the call's epoch ``e = 0, 1, …``;
            one compiled ``lax.scan`` over epochs and examples.
            ``mistakes`` int32 ``(epochs,)`` counts each epoch's updates.
        features: the input width.
    """

    init: Callable[[], Params]
    predict: Callable[[Params, ArrayLike], jax.Array]
    update: Callable[[Params, ArrayLike, ArrayLike], tuple[Params, jax.Array]]
    train: Callable[..., tuple[Params, jax.Array]]
    features: int


def _score(params: Params, x: jax.Array) -> jax.Array:
    """``w·x + b`` over the last axis of ``x``."""
    return x @ params["w"] + params["b"]


def _correct(params: Params, x: jax.Array, y: jax.Array) -> tuple[Params, jax.Array]:
    """Rosenblatt's rule on one example: add ``y (x, 1)`` to ``(w, b)`` when ``y s(x) <= 0``."""
    mistake = y * _score(params, x) <= 0
    step = jnp.where(mistake, y, jnp.zeros_like(y))
    return {"w": params["w"] + step * x, "b": params["b"] + step}, mistake


@functools.partial(jax.jit, static_argnames="epochs")
def _train(
    params: Params, x: jax.Array, y: jax.Array, key: jax.Array | None, epochs: int
) -> tuple[Params, jax.Array]:
    n = len(y)

    def epoch(params: Params, e: jax.Array) -> tuple[Params, jax.Array]:
        if key is None:
            order = jnp.arange(n)
        else:
            order = jax.random.permutation(jax.random.fold_in(key, e), n)
        params, mistakes = jax.lax.scan(lambda p, i: _correct(p, x[i], y[i]), params, order)
        return params, jnp.sum(mistakes, dtype=jnp.int32)

    return jax.lax.scan(epoch, params, jnp.arange(epochs))


def _labels(y: ArrayLike, shape: tuple[int, ...], dtype: jnp.dtype, where: str) -> jax.Array:
    """``y`` as ``dtype``, checked to have ``shape`` and (when concrete) values ±1."""
    y = jnp.asarray(y)
    if y.shape != shape:
        raise ValueError(f"perceptron.{where}: y must have shape {shape}, got {y.shape}")
    if not isinstance(y, jax.core.Tracer) and not bool(jnp.all(jnp.abs(y) == 1)):
        raise ValueError(f"perceptron.{where}: y must be -1 or +1, got {y[jnp.abs(y) != 1][0]}")
    return y.astype(dtype)


def perceptron(features: int) -> Perceptron:
    """Rosenblatt's perceptron on ``features`` inputs, trained by error correction.

    The rule, its convergence bound and the references are in the module
    docstring. Parameters start at zero (the start Novikoff's bound assumes),
    so the rule is deterministic given the order of the examples; ``train``'s
    ``key`` only shuffles that order. Labels are -1 and +1: other concrete
    labels raise; under ``jit`` they cannot be checked (a 0 label then counts
    as a mistake and changes nothing). The learning rate is 1: from zero
    weights any positive rate gives the same predictions.

    Args:
        features: the input width, at least 1.

    Returns:
        A `Perceptron` of pure functions ``init``, ``predict``, ``update`` and
        ``train`` over the params ``{"w": (features,), "b": ()}``.

    Example:
        >>> import jax.numpy as jnp
        >>> from funcnets.models.perceptron import perceptron
        >>> model = perceptron(2)
        >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        >>> params, mistakes = model.train(model.init(), x, jnp.array([-1, -1, -1, 1]), epochs=10)
        >>> mistakes.tolist(), model.predict(params, x).tolist()  # AND: separated
        ([2, 3, 3, 2, 2, 3, 2, 1, 0, 0], [-1, -1, -1, 1])
        >>> model.train(model.init(), x, jnp.array([-1, 1, 1, -1]), epochs=10)[1].tolist()  # XOR
        [4, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    """
    if not isinstance(features, int) or features < 1:
        raise ValueError(f"perceptron: features must be an int >= 1, got {features!r}")

    def init() -> Params:
        return {"w": jnp.zeros((features,), jnp.float32), "b": jnp.zeros((), jnp.float32)}

    def inputs(x: ArrayLike, where: str) -> jax.Array:
        x = jnp.asarray(x, jnp.float32)
        if x.ndim == 0 or x.shape[-1] != features:
            raise ValueError(
                f"perceptron.{where}: x must end in {features} features, got shape {x.shape}"
            )
        return x

    def predict(params: Params, x: ArrayLike) -> jax.Array:
        return jnp.sign(_score(params, inputs(x, "predict"))).astype(jnp.int32)

    def update(params: Params, x: ArrayLike, y: ArrayLike) -> tuple[Params, jax.Array]:
        x = inputs(x, "update")
        if x.ndim != 1:
            raise ValueError(f"perceptron.update: x must be one example, got shape {x.shape}")
        return _correct(params, x, _labels(y, (), x.dtype, "update"))

    def train(
        params: Params, x: ArrayLike, y: ArrayLike, *, epochs: int, key: jax.Array | None = None
    ) -> tuple[Params, jax.Array]:
        x = inputs(x, "train")
        if x.ndim != 2:
            raise ValueError(f"perceptron.train: x must be (n, {features}), got {x.shape}")
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"perceptron.train: epochs must be an int >= 1, got {epochs!r}")
        return _train(params, x, _labels(y, x.shape[:1], x.dtype, "train"), key, epochs)

    return Perceptron(init, predict, update, train, features)
