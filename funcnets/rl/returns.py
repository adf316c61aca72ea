"""Returns and advantages over time-major trajectories ``(T, N)``, as reverse `lax.scan`s."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def discounted_returns(
    reward: jax.Array,
    done: jax.Array,
    gamma: float | jax.Array,
    bootstrap: jax.Array | float = 0.0,
    final_value: jax.Array | float = 0.0,
) -> jax.Array:
    """Discounted returns ``G_t = sum_k gamma^k r_{t+k}``, summed to the end of each episode.

    Computed backwards, ``G_t = r_t + gamma * ((1 - done_t) G_{t+1} +
    done_t v_t)``, with ``G_T = bootstrap`` after the last step: the sum never
    crosses an episode boundary. ``v_t = final_value`` (broadcast to
    ``(T, N)``) is the value given to the state an episode ended in: 0 where it
    terminated; an estimate of ``V(final observation)`` where it was truncated
    by a time limit makes the return an estimate of the untruncated one
    (Pardo et al. 2018). ``bootstrap`` (shape ``(N,)``) likewise stands for the
    rewards after the rollout, e.g. ``V(s_T)`` in n-step actor-critic.

    Args:
        reward: ``(T, ...)`` float.
        done: ``(T, ...)`` bool: an episode ended at step t.
        gamma: the discount factor in [0, 1].
        bootstrap: ``(...)``, the value of the state after the last step.
        final_value: ``(T, ...)`` or a scalar, the value of each ended
            episode's final state.

    Returns:
        ``G`` with ``reward``'s shape.

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> r = jnp.ones((4, 1)); done = jnp.array([[False], [True], [False], [False]])
        >>> fn.rl.discounted_returns(r, done, 0.5)[:, 0].tolist()
        [1.5, 1.0, 1.5, 1.0]
    """
    done = done.astype(reward.dtype)
    final_value = jnp.broadcast_to(jnp.asarray(final_value, reward.dtype), reward.shape)
    bootstrap = jnp.broadcast_to(jnp.asarray(bootstrap, reward.dtype), reward.shape[1:])

    def body(next_return, inputs):
        r, d, v = inputs
        g = r + gamma * ((1.0 - d) * next_return + d * v)
        return g, g

    _, returns = lax.scan(body, bootstrap, (reward, done, final_value), reverse=True)
    return returns


def masked_normalize(x: jax.Array, mask: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``(x - mean) / (std + eps)`` over the entries where ``mask`` is True (others: 0).

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> x = jnp.array([1.0, 3.0, 100.0]); mask = jnp.array([True, True, False])
        >>> fn.rl.masked_normalize(x, mask).round(3).tolist()
        [-1.0, 1.0, 0.0]
    """
    mask = mask.astype(x.dtype)
    count = jnp.maximum(mask.sum(), 1.0)
    mean = jnp.sum(x * mask) / count
    std = jnp.sqrt(jnp.sum(jnp.square(x - mean) * mask) / count)
    return (x - mean) / (std + eps) * mask
