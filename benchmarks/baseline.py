"""The baseline: each workload hand-written in plain jax.numpy + optax.

This is the obvious formulation a competent JAX user writes, no funcnets:
params are tuples of arrays, the step is ``value_and_grad`` of an optax
softmax cross-entropy, then ``optax.adam``, jitted (optionally donating the
params and optimizer state). LeNet-5 pools with ``lax.reduce_window``; the
LSTM is a ``lax.scan`` of the textbook cell, ``x_t @ wi + h @ wh + b`` (hoisting
``x @ wi`` out of the scan as one big matmul measured 1.5x slower on XLA CPU,
so the baseline does not). Parameters start from the funcnets network's
(`from_funcnets`), so the two compute the same thing from the same point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from benchmarks.config import LEARNING_RATE

Params = Any
_NHWC = ("NHWC", "HWIO", "NHWC")


def mlp(params: Params, x: jax.Array) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def _avg_pool(h: jax.Array) -> jax.Array:
    return lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0


def _conv(h: jax.Array, w: jax.Array, b: jax.Array, padding: str) -> jax.Array:
    return lax.conv_general_dilated(h, w, (1, 1), padding, dimension_numbers=_NHWC) + b


def lenet5(params: Params, x: jax.Array) -> jax.Array:
    """Conv 5x5x6 SAME, tanh, avg pool 2; conv 5x5x16 VALID, tanh, avg pool 2; 120, 84, 10."""
    c1, c3, c5, f6, out = params
    h = _avg_pool(jnp.tanh(_conv(x, *c1, "SAME")))
    h = _avg_pool(jnp.tanh(_conv(h, *c3, "VALID")))
    h = h.reshape(x.shape[0], -1)
    h = jnp.tanh(h @ c5[0] + c5[1])
    h = jnp.tanh(h @ f6[0] + f6[1])
    return h @ out[0] + out[1]


def lstm(params: Params, x: jax.Array) -> jax.Array:
    """Image rows as 28 time steps; gates i, f, g, o; the last h into a linear head."""
    (wi, wh, b), (wo, bo) = params
    xs = x.reshape(x.shape[0], 28, 28).swapaxes(0, 1)  # (time, batch, features)

    def cell(carry, x_t):
        h, c = carry
        i, f, g, o = jnp.split(x_t @ wi + h @ wh + b, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((x.shape[0], wh.shape[0]), x.dtype)
    (h, _), _ = lax.scan(cell, (zeros, zeros), xs)
    return h @ wo + bo


APPLY: dict[str, Callable[[Params, jax.Array], jax.Array]] = {
    "mlp": mlp,
    "lenet5": lenet5,
    "lstm": lstm,
}


def from_funcnets(workload: str, params: dict) -> Params:
    """The funcnets network's params (see workloads.py) in the baseline's layout."""

    def wb(layer):
        return (params[layer]["w"], params[layer]["b"])

    if workload == "mlp":
        return [wb("dense0"), wb("dense1"), wb("dense2")]
    if workload == "lenet5":
        return tuple(wb(name) for name in ("c1", "c3", "c5", "f6", "output"))
    if workload == "lstm":
        cell = params["lstm0"]
        return ((cell["wi"], cell["wh"], cell["b"]), wb("head"))
    raise ValueError(f"unknown workload {workload!r}")


def make_step(workload: str, donate: bool = False) -> tuple[Callable, optax.GradientTransformation]:
    """The jitted step ``(params, opt_state, x, y) -> (params, opt_state, loss)`` and its Adam."""
    apply = APPLY[workload]
    tx = optax.adam(LEARNING_RATE)

    def loss_fn(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(apply(params, x), y).mean()

    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1) if donate else ()), tx
