"""The agent protocol: ``init(key) -> TrainState`` and ``step(ts) -> (ts, metrics)``.

An agent's `TrainState` holds everything a run is: the networks' params and
state, the optimizer state, the iteration count and the key; an agent that
keeps its environments running between iterations (A2C) keeps them in
``ts.state`` too. ``step`` is one iteration (collect experience, update
once); `train` scans it, so a whole run is one compiled call, and
``jax.vmap(train)`` over a batch of `TrainState`s trains independent agents
(seeds) side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from funcnets.layers.base import Layer
from funcnets.rl.rollout import Policy
from funcnets.train.state import TrainState
from funcnets.train.step import step_key

Metrics = dict[str, jax.Array]
_ROLLOUT_STREAM = 0x524F4C4C  # fold_in tag separating rollout keys from the update's keys


class Agent(NamedTuple):
    """A learning agent as pure functions.

    Attributes:
        init: ``init(key) -> TrainState``.
        step: ``step(ts) -> (ts, metrics)``: one iteration, pure and jittable;
            ``metrics`` is a dict of scalars, among them ``"return"`` (the mean
            return of the episodes it saw end) and ``"env_steps"`` (the
            environment steps it consumed).
        policy: ``policy(ts, greedy=False) -> (key, obs) -> actions``: the
            agent's current policy, sampling or (``greedy``) its most likely
            action, for `fn.rl.evaluate` and `fn.rl.rollout`.
    """

    init: Callable[[jax.Array], TrainState]
    step: Callable[[TrainState], tuple[TrainState, Metrics]]
    policy: Callable[..., Policy]


def train(agent: Agent, ts: TrainState, num_iterations: int) -> tuple[TrainState, Metrics]:
    """``num_iterations`` iterations of ``agent.step`` as one `lax.scan`.

    Returns the final `TrainState` and each metric per iteration, shape
    ``(num_iterations,)``. Jit it with ``num_iterations`` static; vmap it over
    a batch of `TrainState`s (``jax.vmap(agent.init)(keys)``) to train one
    agent per key in the same call.

    Example (`jax.eval_shape` traces the call without compiling it; the tests run it):
        >>> import jax, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> agent = fn.rl.reinforce(env, fn.models.mlp([8, 2]), fn.optim.adam(1e-2), num_envs=4)
        >>> keys = jax.random.split(jax.random.key(0), 10)
        >>> run = jax.jit(jax.vmap(lambda ts: fn.rl.train(agent, ts, 300)))  # 10 seeds at once
        >>> ts, metrics = jax.eval_shape(run, jax.eval_shape(jax.vmap(agent.init), keys))
        >>> metrics["return"].shape, ts.step.shape
        ((10, 300), (10,))
    """

    def body(ts: TrainState, _: Any) -> tuple[TrainState, Metrics]:
        return agent.step(ts)

    return lax.scan(body, ts, None, length=num_iterations)


def rollout_key(ts: TrainState) -> jax.Array:
    """The key of the current iteration's experience, distinct from its update's (`step_key`)."""
    return jax.random.fold_in(step_key(ts), _ROLLOUT_STREAM)


def init_networks(
    nets: dict[str, Layer], keys: Sequence[jax.Array], input_shape: tuple[int, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, state)`` dicts keyed like ``nets``, net ``i`` initialised with ``keys[i]``."""
    params: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for (name, net), net_key in zip(nets.items(), keys):
        _, params[name], state[name] = net.init(net_key, input_shape)
    return params, state


def categorical_policy(
    net: Layer, params: Any, state: Any, greedy: bool | jax.Array = False
) -> Policy:
    """The policy of a network of logits: softmax sampling, or the argmax when ``greedy``.

    ``net.apply(params, state, obs)`` (``train=False``) maps observations
    ``(N, *obs_shape)`` to logits ``(N, num_actions)``.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> net = fn.models.mlp([8, 2])
        >>> _, params, state = net.init(jax.random.key(0), (1, 4))
        >>> act = fn.rl.categorical_policy(net, params, state)
        >>> act(jax.random.key(1), jnp.zeros((5, 4))).shape
        (5,)
    """

    def policy(key: jax.Array, obs: jax.Array) -> jax.Array:
        logits, _ = net.apply(params, state, obs)
        sampled = jax.random.categorical(key, logits, axis=-1)
        return jnp.where(greedy, jnp.argmax(logits, axis=-1), sampled).astype(jnp.int32)

    return policy


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of ``x`` over the entries where ``mask`` is True (0 when there are none)."""
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def log_probs_and_entropy(logits: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``log pi(a|s)`` of the taken actions and the entropy ``-sum_a pi log pi``, per row."""
    log_pi = jax.nn.log_softmax(logits, axis=-1)
    taken = jnp.take_along_axis(log_pi, action[..., None], axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.exp(log_pi) * log_pi, axis=-1)
    return taken, entropy
