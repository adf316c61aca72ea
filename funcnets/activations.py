"""Activation functions: pure, elementwise (or along one axis), numerically stable.

Each function takes an array (anything ``jnp.asarray`` accepts) and returns a
``jax.Array``; all are jittable, vmappable and differentiable. Every docstring
states the formula. Inputs of magnitude 1e3 give finite values and gradients.

>>> import jax.numpy as jnp
>>> from funcnets import activations
>>> activations.relu(jnp.array([-1.0, 2.0]))
Array([0., 2.], dtype=float32)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

__all__ = [
    "identity",
    "binary_step",
    "binary_step_ste",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "softplus",
    "softsign",
    "softmax",
    "log_softmax",
    "maxout",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def identity(x: ArrayLike) -> jax.Array:
    """Identity: ``f(x) = x``.

    >>> identity(jnp.array([-1.0, 2.0]))
    Array([-1.,  2.], dtype=float32)
    """
    return jnp.asarray(x)


def binary_step(x: ArrayLike) -> jax.Array:
    """Heaviside step: ``f(x) = 1 if x >= 0 else 0``, in ``x``'s dtype.

    Its gradient is zero everywhere (use :func:`binary_step_ste` to train
    through it).

    >>> binary_step(jnp.array([-0.5, 0.0, 3.0]))
    Array([0., 1., 1.], dtype=float32)
    """
    x = jnp.asarray(x)
    return jnp.where(x >= 0, jnp.ones_like(x), jnp.zeros_like(x))


@jax.custom_jvp
def binary_step_ste(x: ArrayLike) -> jax.Array:
    """Binary step with a straight-through gradient estimator.

    Forward: ``f(x) = 1 if x >= 0 else 0`` (exactly :func:`binary_step`).
    Backward: the gradient of the identity, ``df/dx = 1`` (Bengio et al., 2013).

    >>> jax.grad(lambda x: binary_step_ste(x))(-2.0)
    Array(1., dtype=float32, weak_type=True)
    """
    return binary_step(x)


@binary_step_ste.defjvp
def _binary_step_ste_jvp(
    primals: tuple[jax.Array], tangents: tuple[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    (x,), (x_dot,) = primals, tangents
    return binary_step(x), x_dot


def sigmoid(x: ArrayLike) -> jax.Array:
    """Logistic sigmoid: ``f(x) = 1 / (1 + exp(-x))``, evaluated stably (``lax.logistic``).

    >>> sigmoid(jnp.array([0.0]))
    Array([0.5], dtype=float32)
    """
    return jax.nn.sigmoid(x)


def tanh(x: ArrayLike) -> jax.Array:
    """Hyperbolic tangent: ``f(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``.

    >>> tanh(jnp.array([0.0]))
    Array([0.], dtype=float32)
    """
    return jnp.tanh(x)


def relu(x: ArrayLike) -> jax.Array:
    """Rectified linear unit: ``f(x) = max(x, 0)``; its gradient at 0 is 0.

    >>> relu(jnp.array([-1.0, 2.0]))
    Array([0., 2.], dtype=float32)
    """
    return jax.nn.relu(x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> jax.Array:
    """Leaky ReLU: ``f(x) = x if x >= 0 else negative_slope * x``.

    >>> leaky_relu(jnp.array([-2.0, 3.0]), negative_slope=0.5)
    Array([-1.,  3.], dtype=float32)
    """
    x = jnp.asarray(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def elu(x: ArrayLike, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit: ``f(x) = x if x > 0 else alpha * (exp(x) - 1)``.

    >>> elu(jnp.array([0.0, 2.0]))
    Array([0., 2.], dtype=float32)
    """
    x = jnp.asarray(x)
    # exp is only evaluated on the negative side, so large x gives no inf (nor nan gradient).
    negative = jnp.where(x > 0, jnp.zeros_like(x), x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(negative))


def selu(x: ArrayLike) -> jax.Array:
    """Scaled ELU (Klambauer et al., 2017): ``f(x) = scale * elu(x, alpha)``.

    With ``alpha ≈ 1.6732632`` and ``scale ≈ 1.0507010``, the constants that make
    standardised activations self-normalising.

    >>> selu(jnp.array([0.0]))
    Array([0.], dtype=float32)
    """
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def gelu(x: ArrayLike, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit (Hendrycks & Gimpel, 2016).

    Exact (default): ``f(x) = x * Φ(x) = x/2 * (1 + erf(x / sqrt(2)))``.
    With ``approximate=True``: ``x/2 * (1 + tanh(sqrt(2/π) * (x + 0.044715 x³)))``.
    Note that ``jax.nn.gelu`` defaults to the approximation; this one does not.

    >>> gelu(jnp.array([0.0]))
    Array([0.], dtype=float32)
    """
    x = jnp.asarray(x)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1.0 + jnp.tanh(inner))
    return 0.5 * x * (1.0 + lax.erf(x / math.sqrt(2.0)))


def swish(x: ArrayLike, beta: float = 1.0) -> jax.Array:
    """Swish (Ramachandran et al., 2017): ``f(x) = x * sigmoid(beta * x)``.

    >>> swish(jnp.array([0.0]))
    Array([0.], dtype=float32)
    """
    x = jnp.asarray(x)
    return x * sigmoid(beta * x)


def silu(x: ArrayLike) -> jax.Array:
    """Sigmoid linear unit: ``f(x) = x * sigmoid(x)``, i.e. ``swish(x, beta=1)``.

    >>> silu(jnp.array([0.0]))
    Array([0.], dtype=float32)
    """
    return swish(x, 1.0)


def softplus(x: ArrayLike) -> jax.Array:
    """Softplus: ``f(x) = log(1 + exp(x))``, its gradient ``sigmoid(x)``.

    Computed stably as ``logaddexp(x, 0) = max(x, 0) + log1p(exp(-|x|))``, whose
    gradient is right at 0 too (autodiff of the right-hand side gives 0 there).

    >>> softplus(jnp.array([0.0]))
    Array([0.6931472], dtype=float32)
    """
    return jnp.logaddexp(x, 0.0)


def softsign(x: ArrayLike) -> jax.Array:
    """Softsign: ``f(x) = x / (1 + |x|)``.

    >>> softsign(jnp.array([1.0]))
    Array([0.5], dtype=float32)
    """
    x = jnp.asarray(x)
    return x / (1 + jnp.abs(x))


def _is_half(x: jax.Array) -> bool:
    """Whether ``x`` is a 16-bit float (bfloat16, float16): softmax then runs in float32."""
    return jnp.issubdtype(x.dtype, jnp.floating) and jnp.finfo(x.dtype).bits < 32


def _shifted(x: jax.Array, axis: int) -> jax.Array:
    """``x - max(x, axis)`` (max held constant for autodiff; 0 shift if the max is ±inf)."""
    x_max = jnp.max(x, axis=axis, keepdims=True)
    x_max = jnp.where(jnp.isfinite(x_max), x_max, 0)
    return x - lax.stop_gradient(x_max)


def softmax(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Softmax along ``axis``: ``f(x)_i = exp(x_i) / Σ_j exp(x_j)``.

    Computed on ``x - max(x)`` (the result is shift-invariant), so it never overflows;
    in float32 for bfloat16 and float16 inputs (mixed precision), returned in their dtype.

    >>> softmax(jnp.array([0.0, 0.0]))
    Array([0.5, 0.5], dtype=float32)
    """
    x = jnp.asarray(x)
    if _is_half(x):
        return softmax(x.astype(jnp.float32), axis).astype(x.dtype)
    unnormalized = jnp.exp(_shifted(x, axis))
    return unnormalized / jnp.sum(unnormalized, axis=axis, keepdims=True)


def log_softmax(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Log-softmax along ``axis``: ``f(x)_i = x_i - log Σ_j exp(x_j)`` (log-sum-exp, max-shifted).

    In float32 for bfloat16 and float16 inputs, returned in their dtype.

    >>> log_softmax(jnp.array([0.0, 0.0]))
    Array([-0.6931472, -0.6931472], dtype=float32)
    """
    x = jnp.asarray(x)
    if _is_half(x):
        return log_softmax(x.astype(jnp.float32), axis).astype(x.dtype)
    shifted = _shifted(x, axis)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def maxout(x: ArrayLike, pieces: int, axis: int = -1) -> jax.Array:
    """Maxout (Goodfellow et al., 2013): max over groups of ``pieces`` consecutive units.

    An ``axis`` of size ``features * pieces`` is viewed as ``(features, pieces)``
    and reduced by ``max`` over pieces: ``f(x)_k = max_{j < pieces} x_{k*pieces + j}``.

    Raises:
        ValueError: if ``pieces`` is not a positive integer, ``axis`` is out of
            range, or ``pieces`` does not divide the size of ``axis``.

    >>> maxout(jnp.array([1.0, 5.0, 4.0, 2.0]), pieces=2)
    Array([5., 4.], dtype=float32)
    """
    x = jnp.asarray(x)
    if not isinstance(pieces, int) or pieces < 1:
        raise ValueError(f"maxout: pieces must be a positive int, got {pieces!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"maxout: axis {axis} is out of range for an input of shape {x.shape}")
    axis %= x.ndim
    if x.shape[axis] % pieces:
        raise ValueError(
            f"maxout: size of axis {axis} ({x.shape[axis]}) is not divisible by pieces={pieces}"
        )
    grouped = x.reshape(x.shape[:axis] + (x.shape[axis] // pieces, pieces) + x.shape[axis + 1 :])
    return jnp.max(grouped, axis=axis + 1)
