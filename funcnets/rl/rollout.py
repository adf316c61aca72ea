"""Batched rollouts: many environments stepped together in one `lax.scan`.

A policy is a function ``policy(key, obs) -> action`` of a *batch* of
observations ``(num_envs, *observation_shape)``, returning int32 actions
``(num_envs,)``, so that a network sees the whole batch in one matrix
product. The environment functions are vmapped over the batch here; each
environment gets its own key, split from the step's key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from funcnets.rl.environment import Environment

Policy = Callable[[jax.Array, jax.Array], jax.Array]


class Trajectory(NamedTuple):
    """What a rollout saw, time-major: every field has leading axes ``(num_steps, num_envs)``.

    Attributes:
        obs: the observation each action was chosen from, ``(T, N, *obs_shape)``.
        action: int32 ``(T, N)``.
        reward: float32 ``(T, N)``.
        done: bool ``(T, N)``: the episode ended at this step (the next
            observation starts a new one).
        info: the step's ``info``, each entry ``(T, N, ...)``: ``terminated``,
            ``truncated``, ``final_observation`` (the observation after the
            step, before any reset).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    info: dict[str, jax.Array]


def reset_batch(
    env: Environment, key: jax.Array, num_envs: int, params: Any = None
) -> tuple[jax.Array, Any]:
    """``num_envs`` new episodes: ``(obs (N, *obs_shape), env_state)`` (``env_state`` batched).

    ``params`` defaults to ``env.default_params``.

    Example:
        >>> import jax, funcnets as fn
        >>> obs, states = fn.rl.reset_batch(fn.rl.CartPole(), jax.random.key(0), 8)
        >>> obs.shape, states.time.shape
        ((8, 4), (8,))
    """
    params = env.default_params if params is None else params
    return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)


def rollout(
    env: Environment,
    policy: Policy,
    key: jax.Array,
    obs: jax.Array,
    env_state: Any,
    num_steps: int,
    params: Any = None,
) -> tuple[tuple[jax.Array, Any], Trajectory]:
    """``num_steps`` steps of a batch of environments under ``policy``, as one `lax.scan`.

    Episodes that end are restarted by the environment's auto-resetting
    ``step``, so every environment takes exactly ``num_steps`` steps. Step
    ``t`` uses the key ``fold_in(key, t)``, split into the policy's key and
    one key per environment.

    Args:
        env: the `Environment`.
        policy: ``policy(key, obs (N, *obs_shape)) -> actions (N,)``.
        key: the rollout's key.
        obs: the current observations, ``(N, *obs_shape)``.
        env_state: the current (batched) environment states.
        num_steps: T, static.
        params: the environment's params (default ``env.default_params``).

    Returns:
        ``((obs, env_state), trajectory)``: the carry to continue from, and the
        `Trajectory` of the T steps (time-major, ``(T, N, ...)``).

    Example:
        >>> import jax, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> policy = fn.rl.random_policy(env.num_actions)
        >>> @jax.jit
        ... def play(key):
        ...     obs, states = fn.rl.reset_batch(env, key, 16)
        ...     return fn.rl.rollout(env, policy, key, obs, states, 100)
        >>> (obs, states), traj = play(jax.random.key(1))
        >>> traj.reward.shape, bool(traj.done.any())
        ((100, 16), True)
    """
    params = env.default_params if params is None else params
    num_envs = obs.shape[0]
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def body(carry, t):
        obs, env_state = carry
        policy_key, env_key = jax.random.split(jax.random.fold_in(key, t))
        action = jnp.asarray(policy(policy_key, obs), jnp.int32)
        next_obs, env_state, reward, done, info = step(
            jax.random.split(env_key, num_envs), env_state, action, params
        )
        return (next_obs, env_state), Trajectory(obs, action, reward, done, info)

    return lax.scan(body, (obs, env_state), jnp.arange(num_steps))


def first_episode_mask(done: jax.Array) -> jax.Array:
    """True at each step of each environment's first episode: ``(T, N)`` bool from ``done``.

    Step t belongs to the first episode when no step before it ended one
    (``done`` at t itself still counts: it is that episode's last step).

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> done = jnp.array([[False], [True], [False]])
        >>> fn.rl.first_episode_mask(done)[:, 0].tolist()
        [True, True, False]
    """
    ended_before = jnp.cumsum(done, axis=0) - done
    return ended_before == 0


def evaluate(
    env: Environment,
    policy: Policy,
    key: jax.Array,
    num_episodes: int = 100,
    num_steps: int = 500,
    params: Any = None,
) -> jax.Array:
    """The returns of ``num_episodes`` episodes of ``policy``, run side by side: ``(E,)`` float32.

    Each of ``num_episodes`` environments runs one episode (its first) for
    at most ``num_steps`` steps; ``num_steps`` must be at least the
    environment's time limit for every episode to be complete (500 for
    CartPole-v1). Gymnasium's criterion for solving CartPole-v1 is
    ``evaluate(...).mean() >= 475``.

    Example:
        >>> import jax, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> score = jax.jit(lambda key: fn.rl.evaluate(env, fn.rl.random_policy(2), key, 100))
        >>> returns = score(jax.random.key(0))
        >>> returns.shape, 10 < float(returns.mean()) < 40
        ((100,), True)
    """
    reset_key, rollout_key = jax.random.split(key)
    obs, env_state = reset_batch(env, reset_key, num_episodes, params)
    _, traj = rollout(env, policy, rollout_key, obs, env_state, num_steps, params)
    return jnp.sum(traj.reward * first_episode_mask(traj.done), axis=0)


def random_policy(num_actions: int) -> Policy:
    """The policy choosing each of ``num_actions`` actions with equal probability.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> fn.rl.random_policy(2)(jax.random.key(0), jnp.zeros((5, 4))).shape
        (5,)
    """

    def policy(key: jax.Array, obs: jax.Array) -> jax.Array:
        return jax.random.randint(key, obs.shape[:1], 0, num_actions, jnp.int32)

    return policy
