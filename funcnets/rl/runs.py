"""Many seeds of one agent, trained side by side in one compiled call, then evaluated."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funcnets.rl.agent import Agent, train
from funcnets.rl.environment import Environment
from funcnets.rl.rollout import evaluate

_EVAL_STREAM = 0x4556414C  # fold_in tag of the evaluation keys


def seed_keys(seed: int, seeds: int) -> jax.Array:
    """``seeds`` keys ``fold_in(key(seed), i)``, ``i = 0 .. seeds - 1``: agent i's key."""
    root = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.arange(seeds))


def train_and_evaluate(
    env: Environment,
    agent: Agent,
    *,
    seeds: int,
    iterations: int,
    seed: int = 0,
    eval_episodes: int = 100,
    eval_steps: int | None = None,
    threshold: float | None = None,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Trains ``seeds`` agents at once (`jax.vmap` of `fn.rl.train`) and evaluates each.

    Agent ``i`` starts from ``agent.init(fold_in(key(seed), i))``; all train
    in one compiled `lax.scan` of ``iterations`` updates. With ``report``, the
    scan is cut into 10 equal scans of the same compiled function (when
    ``iterations`` divides by 10) and ``report`` gets a progress line after
    each. Each trained agent then plays ``eval_episodes`` new episodes of at
    most ``eval_steps`` steps (default: ``env.default_params.max_steps``), once
    sampling its actions and once taking the most likely one.

    Returns:
        A JSON-ready dict: ``eval_return`` (per seed: the mean return with
        sampled actions), ``eval_return_greedy``, with ``threshold`` the
        number of seeds at or above it (``solved``, ``solved_greedy``),
        ``env_steps`` (per seed, in training), ``curves`` (per seed and
        iteration: ``return`` and ``env_steps``), and wall times in seconds:
        ``compile_seconds``, ``train_seconds`` (compiled, without compiling),
        ``eval_seconds`` (compiling included).

    Example (an `Agent` that never learns: any agent works; the experiment
    experiments/cartpole_reinforce.py runs REINFORCE through this function):
        >>> import jax.numpy as jnp, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> idle = fn.rl.Agent(
        ...     init=lambda key: fn.train.new_state({}, {}, {}, key),
        ...     step=lambda ts: (ts, {"return": jnp.float32(0), "env_steps": jnp.int32(0)}),
        ...     policy=lambda ts, greedy=False: fn.rl.random_policy(env.num_actions))
        >>> result = fn.rl.train_and_evaluate(env, idle, seeds=2, iterations=3,
        ...                                   eval_episodes=4, eval_steps=20, threshold=475)
        >>> result["solved"], len(result["curves"]["return"][0])
        (0, 3)
    """
    keys = seed_keys(seed, seeds)
    chunks = 10 if report is not None and iterations % 10 == 0 else 1
    ts = jax.jit(jax.vmap(agent.init))(keys)

    start = time.perf_counter()
    run = jax.jit(jax.vmap(lambda ts: train(agent, ts, iterations // chunks))).lower(ts).compile()
    compile_seconds = time.perf_counter() - start
    start, pieces = time.perf_counter(), []
    for chunk in range(chunks):
        ts, metrics = run(ts)
        pieces.append(jax.device_get(metrics))
        if report is not None:
            done = sum(int(p["env_steps"].sum()) for p in pieces) / seeds
            latest = pieces[-1]["return"][:, -1].mean()
            report(
                f"iteration {(chunk + 1) * iterations // chunks:>6}/{iterations}  "
                f"env steps per seed {done:>11,.0f}  return {latest:6.1f}"
            )
    train_seconds = time.perf_counter() - start
    curves = {name: np.concatenate([p[name] for p in pieces], axis=1) for name in pieces[0]}

    steps = int(env.default_params.max_steps) if eval_steps is None else eval_steps

    def scores(ts: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key = jax.random.fold_in(key, _EVAL_STREAM)
        sampled = evaluate(env, agent.policy(ts), key, eval_episodes, steps)
        greedy = evaluate(env, agent.policy(ts, greedy=True), key, eval_episodes, steps)
        return sampled.mean(), greedy.mean()

    start = time.perf_counter()
    sampled, greedy = map(np.asarray, jax.jit(jax.vmap(scores))(ts, keys))
    eval_seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "seeds": seeds,
        "seed": seed,
        "iterations": iterations,
        "eval_episodes": eval_episodes,
        "eval_return": [round(float(r), 2) for r in sampled],
        "eval_return_greedy": [round(float(r), 2) for r in greedy],
    }
    if threshold is not None:
        result["threshold"] = threshold
        result["solved"] = int(np.sum(sampled >= threshold))
        result["solved_greedy"] = int(np.sum(greedy >= threshold))
    return {
        **result,
        "env_steps": [int(s) for s in curves["env_steps"].sum(axis=1)],
        "compile_seconds": round(compile_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "backend": jax.default_backend(),
        "curves": {
            "return": curves["return"].astype(np.float64).round(1).tolist(),
            "env_steps": curves["env_steps"].tolist(),
        },
    }
