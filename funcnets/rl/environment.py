"""The environment protocol: an environment is a pair of pure functions, like a `Layer`.

``reset(key, params) -> (obs, env_state)`` starts an episode;
``step(key, env_state, action, params) -> (obs, env_state, reward, done, info)``
advances it by one step and, when the episode ends, starts the next one
(auto-reset), so that a batch of environments under `jax.vmap` can be stepped
in a `lax.scan` of fixed length. ``params`` holds the environment's constants
as arrays or floats (gravity, masses, the time limit), so changing them does
not recompile; ``env_state`` is a pytree of arrays. Nothing is hidden in an
object: the same arguments give the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Reset = Callable[[jax.Array, Any], tuple[jax.Array, Any]]
Outcome = tuple[jax.Array, Any, jax.Array, jax.Array, dict[str, jax.Array]]
Step = Callable[[jax.Array, Any, jax.Array, Any], Outcome]
Transition = Callable[[Any, Any, jax.Array, Any], Outcome]  # its key may be None


class Environment(NamedTuple):
    """An environment: ``reset`` and ``step`` (pure), its default params and its spaces.

    Attributes:
        reset: ``reset(key, params) -> (obs, env_state)``.
        step: ``step(key, env_state, action, params) -> (obs, env_state,
            reward, done, info)``, auto-resetting: when ``done``, ``obs`` and
            ``env_state`` already belong to a new episode (drawn from ``key``)
            and ``info["final_observation"]`` is the last observation of the
            one that ended. ``info["terminated"]`` (the task failed or
            succeeded) and ``info["truncated"]`` (the time limit) say why it
            ended; ``done`` is their ``or``.
        transition: the same step without the reset: ``env_state`` after
            ``done`` is the final state (what Gymnasium's ``step`` returns).
        default_params: the environment's constants (a NamedTuple).
        observation_shape: the shape of one observation, e.g. ``(4,)``.
        num_actions: the number of discrete actions ``0 .. num_actions - 1``.
        name: e.g. ``"CartPole-v1"``.
        deterministic: ``transition`` draws nothing from its key (it may be
            given ``None``), as CartPole's dynamics: batched steppers then
            split no key per copy (`step_batch`).

    Close over an `Environment` in jitted functions (its fields are functions
    and ints, not arrays); pass ``env_state`` and ``params`` as arguments.
    """

    reset: Reset
    step: Step
    transition: Transition
    default_params: Any
    observation_shape: tuple[int, ...]
    num_actions: int
    name: str
    deterministic: bool = False


def auto_reset(reset: Reset, transition: Transition, *, deterministic: bool = False) -> Step:
    """The auto-resetting ``step`` of an environment from its ``reset`` and ``transition``.

    ``key`` is split in two: one half goes to ``transition``, the other to
    ``reset``, which is always computed and selected where ``done`` (so the
    step has no branch and vectorises under `jax.vmap`). With
    ``deterministic=True`` (a transition that draws nothing from its key,
    e.g. CartPole's) the whole ``key`` goes to ``reset`` and ``transition``
    gets ``None``: on CPU the random draws are most of a step's cost (about
    9 ns per 32-bit word, against 18 ns for CartPole's dynamics; see
    benchmarks/rl_throughput.py), and this saves a split per step and
    environment. ``info`` gains ``"final_observation"``, the observation
    ``transition`` returned: the last observation of an episode that ended,
    needed to bootstrap a value at a time limit.

    Example:
        >>> import jax, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> step = fn.rl.auto_reset(env.reset, env.transition)
        >>> obs, s = env.reset(jax.random.key(0), env.default_params)
        >>> obs, s, reward, done, info = step(jax.random.key(1), s, 1, env.default_params)
        >>> sorted(info)
        ['final_observation', 'terminated', 'truncated']
    """

    def step(key: jax.Array, env_state: Any, action: jax.Array, params: Any) -> Outcome:
        if deterministic:
            transition_key, reset_key = None, key
        else:
            transition_key, reset_key = jax.random.split(key)
        obs, env_state, reward, done, info = transition(transition_key, env_state, action, params)
        reset_obs, reset_state = reset(reset_key, params)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, env_state)
        new_obs = jnp.where(done, reset_obs, obs)
        return new_obs, new_state, reward, done, {**info, "final_observation": obs}

    return step
