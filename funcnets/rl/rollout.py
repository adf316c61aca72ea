"""Batched rollouts: many environments stepped together in one `lax.scan`.

A policy is a function ``policy(key, obs) -> action`` of a *batch* of
observations ``(num_envs, *observation_shape)``, returning int32 actions
``(num_envs,)``, so that a network sees the whole batch in one matrix
product. The environment's ``transition`` is vmapped over the batch, and
`step_batch` starts new episodes only for the copies whose episode ended,
from a pool of resets drawn for the step (see its docstring: on CPU the
random draws, not the dynamics, bound a batched step's speed).
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


def step_batch(
    env: Environment,
    key: jax.Array,
    env_state: Any,
    action: jax.Array,
    params: Any = None,
    *,
    reset_pool: int | None = None,
) -> tuple[jax.Array, Any, jax.Array, jax.Array, dict[str, jax.Array]]:
    """One auto-resetting step of a batch of N environments, from one key.

    The same outcome, in distribution, as ``jax.vmap(env.step)`` with a key
    per copy, at a fraction of the random draws: ``env.transition`` is
    vmapped over the copies (with a key each, split from ``key``, unless
    ``env.deterministic``), and the copies whose episode ended take new
    initial states, in the order of their index, from pools of
    ``reset_pool`` resets (each from a key of its own, folded from ``key``):
    the k-th ended copy takes reset ``k mod P`` of pool ``k // P``. Only as
    many pools are drawn as the step needs (a `lax.while_loop`; one when at
    most P copies ended), so every new episode still starts from an
    independent draw of ``env.reset``. A vmapped ``env.step`` draws a reset for
    every copy at every step and selects the few it needs; on CPU, where JAX's
    threefry costs ~15 ns per 32-bit word and CartPole's dynamics ~18 ns per
    step, that draw is most of the step (benchmarks/rl_throughput.py).

    Args:
        env: the `Environment`.
        key: the step's key.
        env_state: the batched states, leaves ``(N, ...)``.
        action: int32 ``(N,)``.
        params: the environment's params (default ``env.default_params``).
        reset_pool: P, resets per pool; default ``max(8, ceil(N / 16))``:
            one pool covers the steps where up to 1 in 16 episodes end
            (1 in 22 for a random CartPole policy, fewer for a trained one).

    Returns:
        ``(obs (N, ...), env_state, reward (N,), done (N,), info)`` as
        ``jax.vmap(env.step)`` returns them, ``info["final_observation"]``
        included.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> obs, states = fn.rl.reset_batch(env, jax.random.key(0), 1024)
        >>> step = jax.jit(lambda key, s, a: fn.rl.step_batch(env, key, s, a))
        >>> right = jnp.ones(1024, jnp.int32)
        >>> for t in range(40):
        ...     obs, states, reward, done, info = step(jax.random.key(t), states, right)
        >>> obs.shape, bool(done.any()), bool((states.time[done] == 0).all())
        ((1024, 4), True, True)
    """
    params = env.default_params if params is None else params
    num_envs = action.shape[0]
    pool = max(8, -(-num_envs // 16)) if reset_pool is None else reset_pool
    if pool < 1:
        raise ValueError(f"reset_pool must be at least 1, got {reset_pool}")
    pool = min(pool, num_envs)
    if env.deterministic:
        transition_keys, reset_key = None, key
    else:
        transition_key, reset_key = jax.random.split(key)
        transition_keys = jax.random.split(transition_key, num_envs)
    obs, env_state, reward, done, info = jax.vmap(
        env.transition, in_axes=(None if transition_keys is None else 0, 0, 0, None)
    )(transition_keys, env_state, action, params)
    rank = jnp.cumsum(done, dtype=jnp.int32) - 1  # the k of each ended copy
    ended = jnp.sum(done, dtype=jnp.int32)

    def draw_pool(carry):
        round_, new_obs, new_state = carry
        pool_keys = jax.random.split(jax.random.fold_in(reset_key, round_), pool)
        reset_obs, reset_state = jax.vmap(env.reset, in_axes=(0, None))(pool_keys, params)
        slot = rank - round_ * pool
        take = done & (slot >= 0) & (slot < pool)
        slot = jnp.clip(slot, 0, pool - 1)

        def select(fresh, old):
            mask = take.reshape(take.shape + (1,) * (old.ndim - 1))
            return jnp.where(mask, jnp.take(fresh, slot, axis=0), old)

        return round_ + 1, select(reset_obs, new_obs), jax.tree.map(select, reset_state, new_state)

    _, new_obs, new_state = lax.while_loop(
        lambda carry: carry[0] * pool < ended, draw_pool, (jnp.int32(0), obs, env_state)
    )
    return new_obs, new_state, reward, done, {**info, "final_observation": obs}


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

    Episodes that end are restarted (`step_batch`), so every environment
    takes exactly ``num_steps`` steps. Step ``t`` uses the key
    ``fold_in(key, t)``, split into the policy's key and the environments'.

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

    def body(carry, t):
        obs, env_state = carry
        policy_key, env_key = jax.random.split(jax.random.fold_in(key, t))
        action = jnp.asarray(policy(policy_key, obs), jnp.int32)
        next_obs, env_state, reward, done, info = step_batch(
            env, env_key, env_state, action, params
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

    When ``num_actions`` is a power of two, each action is ``log2(num_actions)``
    bits of a 32-bit random word (32 CartPole actions per word: exact, and
    ~1/32 of `jax.random.randint`'s draws); otherwise `jax.random.randint`.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> fn.rl.random_policy(2)(jax.random.key(0), jnp.zeros((5, 4))).shape
        (5,)
    """

    if num_actions < 1:
        raise ValueError(f"num_actions must be at least 1, got {num_actions}")
    width = num_actions.bit_length() - 1  # bits per action, when a power of two

    def policy(key: jax.Array, obs: jax.Array) -> jax.Array:
        num_envs = obs.shape[0]
        if num_actions & (num_actions - 1) or width == 0:
            return jax.random.randint(key, (num_envs,), 0, num_actions, jnp.int32)
        per_word = 32 // width
        words = jax.random.bits(key, (-(-num_envs // per_word),), jnp.uint32)
        shifts = jnp.arange(per_word, dtype=jnp.uint32) * width
        fields = (words[:, None] >> shifts) & jnp.uint32(num_actions - 1)
        return fields.reshape(-1)[:num_envs].astype(jnp.int32)

    return policy
