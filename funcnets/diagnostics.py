"""Vanishing and exploding gradients made visible: gradient and activation norms.

Every function is pure and jittable with the net and loss closed over, e.g.
``jax.jit(functools.partial(time_step_gradient_norms, net, loss_fn=loss))``.
A dict returned from a jitted function comes back with sorted keys (``dense10``
before ``dense2``); the layer order of the dicts here holds when called eagerly.
Norms are Euclidean (Frobenius) norms over the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer, chained, layer_children, layer_name

Loss = Callable[[jax.Array, jax.Array], jax.Array]

__all__ = [
    "activation_norms",
    "gradient_norms",
    "layer_gradient_norms",
    "time_step_gradient_norms",
]


def _loss_of(net: Layer, loss_fn: Loss, state: Any, y: jax.Array) -> Callable:
    """``(params, x) -> loss`` of the net in eval mode (no dropout noise in the picture)."""

    def loss(params, x):
        outputs, _ = net.apply(params, state, x)
        return loss_fn(outputs, y)

    return loss


def time_step_gradient_norms(
    net: Layer, params: Any, state: Any, x: jax.Array, y: jax.Array, *, loss_fn: Loss
) -> jax.Array:
    """``‖∂L/∂x_t‖`` for every time step ``t`` of a ``(batch, time, ...)`` input.

    How much the loss still feels the input ``t`` steps before the end: in a
    plain RNN this decays geometrically with the distance from the step the
    loss reads (Bengio et al. 1994; Pascanu et al. 2013), in an LSTM it does not.

    Returns:
        ``(time,)``: the norm over batch and features of the gradient at each step.
    """
    if jnp.ndim(x) < 2:
        raise ValueError(f"time_step_gradient_norms: expected x (batch, time, ...), got {x.shape}")
    grad_x = jax.grad(_loss_of(net, loss_fn, state, y), argnums=1)(params, x)
    grad_x = jnp.moveaxis(grad_x, 1, 0).reshape(grad_x.shape[1], -1)
    return jnp.linalg.norm(grad_x, axis=1)


def gradient_norms(grads: Any, net: Layer | None = None) -> dict[str, jax.Array]:
    """The norm of every array in a gradient pytree, keyed by path, e.g. ``"dense0/w"``.

    With ``net``, entries follow its layers' order (input to output) rather than
    the sorted key order of `jax.tree`, which would put ``dense10`` before ``dense2``.
    """
    return {path: jnp.linalg.norm(jnp.ravel(leaf)) for path, leaf in _ordered(grads, net, "")}


def layer_gradient_norms(
    net: Layer, params: Any, state: Any, x: jax.Array, y: jax.Array, *, loss_fn: Loss
) -> dict[str, jax.Array]:
    """``‖∂L/∂p‖`` for every parameter array ``p`` of the net, keyed by path, input to output.

    For a deep sigmoid MLP the first layers' norms are orders of magnitude below
    the last ones' (Glorot & Bengio 2010); with ReLU and He init they stay level.
    """
    return gradient_norms(jax.grad(_loss_of(net, loss_fn, state, y))(params, x), net)


def activation_norms(net: Layer, params: Any, state: Any, x: jax.Array) -> dict[str, jax.Array]:
    """The RMS of each child's output in a `Sequential`, in eval mode, keyed by child name.

    RMS (the norm divided by the square root of the element count) so that layers
    of different widths compare: a saturated tanh layer sits near 1, a dying
    signal goes to 0.
    """
    if net.child_input is not chained:
        raise ValueError(f"activation_norms: expected a Sequential, got {layer_name(net)}")
    norms = {}
    for name, child in layer_children(net):
        x, _ = child.apply(params[name], state[name], x)
        norms[name] = jnp.sqrt(jnp.mean(jnp.square(x)))
    return norms


def _ordered(tree: Any, layer: Layer | None, prefix: str):
    """``(path, leaf)`` pairs, dict keys in ``layer``'s child order where it has children."""
    if not isinstance(tree, dict | list | tuple):
        yield prefix, tree
        return
    children = dict(layer_children(layer)) if layer is not None else {}
    if "" in children:  # Residual: the inner layer's params, unnested
        yield from _ordered(tree, children[""], prefix)
        return
    keys = list(range(len(tree))) if not isinstance(tree, dict) else list(tree)
    keys.sort(key=lambda k: (k not in children, list(children).index(k) if k in children else 0))
    for key in keys:
        child = children.get(key) if isinstance(key, str) else None
        yield from _ordered(tree[key], child, f"{prefix}/{key}" if prefix else str(key))
