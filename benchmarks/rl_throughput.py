"""CartPole environment steps per second: `fn.rl.CartPole` under vmap against Gymnasium.

Measured in one run, repetition by repetition in turn (so drift in the
machine's speed hits every contender alike), each with uniformly random
actions drawn before the timed region where the environment is Gymnasium's:

- **funcnets, batched**: ``--num-envs`` (1,024 and 16,384) copies of `fn.rl.CartPole`
  stepped ``--steps`` (1,000) times by a jitted `lax.scan` of `fn.rl.step_batch`
  (the vmapped dynamics; new episodes drawn only for the copies that ended,
  from pools of resets), with actions drawn before (as for Gymnasium) or
  inside the scan by `fn.rl.random_policy`; the carry is the states plus the
  summed rewards (nothing stored per step);
- **funcnets, vmapped step**: the same with the environment's own
  auto-resetting ``step`` under `jax.vmap`, a key per copy: it draws a new
  initial state for every copy at every step and selects it where an episode
  ended (what a user who vmaps ``env.step`` by hand gets);
- **funcnets, dynamics alone**: the vmapped ``transition`` without the
  reset (episodes run on past their end): what the steps cost without
  drawing a new initial state for every copy at every step, a ceiling;
- **funcnets, rollout**: `fn.rl.rollout` (which steps by `fn.rl.step_batch`)
  with `fn.rl.random_policy`, which also stores the whole trajectory (what an
  agent trains on);
- **Gymnasium, loop**: one ``gymnasium.make("CartPole-v1")`` stepped in a
  Python loop, ``reset()`` after each episode;
- **Gymnasium, SyncVectorEnv**: ``gymnasium.make_vec("CartPole-v1",
  num_envs, vectorization_mode="sync")``, a Python loop over the copies;
- **Gymnasium, vectorised NumPy**: ``gymnasium.make_vec(...,
  vectorization_mode="vector_entry_point")``, Gymnasium's own
  ``CartPoleVectorEnv``, which steps all copies with NumPy array operations.

Steps per second is environment steps (over all copies) divided by the
median wall time of a repetition, each ended by ``block_until_ready`` for
JAX. Run ``python -m benchmarks.rl_throughput`` (writes
benchmarks/results/rl_throughput.{md,json}) or ``--quick`` (prints only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import funcnets as fn

RESULTS = Path(__file__).parent / "results" / "rl_throughput"
READING = """Reading: on CPU a batched CartPole step is bound by its random draws, not its
arithmetic. JAX's threefry (partitionable, the default) costs ~15 ns per 32-bit word here,
CartPole's dynamics ~18 ns per step. The vmapped auto-resetting `step` is branch-free: it
draws a new initial state (4 words) for every copy at every step, from a key per copy (one
more block), and selects it where an episode ended, so `transition` alone is ~4x faster.
`fn.rl.step_batch` draws resets only for the copies that ended (~1 in 22 under a random
policy), from pools of max(8, N/16) resets, as Gymnasium's NumPy vector env draws only for
the copies that finished; `fn.rl.random_policy` takes 32 two-way actions from one word."""


def funcnets_transition(num_envs: int, steps: int) -> Callable[..., Any]:
    """The dynamics alone: vmapped `fn.rl.cartpole.transition`, no reset (a ceiling, not a
    rollout: episodes run on past their end), actions given."""
    env = fn.rl.CartPole()
    params = env.default_params
    transition = jax.vmap(fn.rl.cartpole.transition, in_axes=(None, 0, 0, None))

    def run(key: jax.Array, actions: jax.Array) -> Any:
        _, env_state = fn.rl.reset_batch(env, key, num_envs, params)

        def body(env_state, action):
            return transition(None, env_state, action, params)[1], None

        return lax.scan(body, env_state, actions)[0]

    return jax.jit(run)


def funcnets_scan(
    num_envs: int, steps: int, draw_actions: bool, batched: bool = True
) -> Callable[..., Any]:
    """A jitted ``(key, actions) -> final carry`` of ``steps`` auto-resetting batched steps.

    ``actions`` (steps, num_envs) are given (as Gymnasium's are), or with
    ``draw_actions`` drawn inside the scan by `fn.rl.random_policy`. The
    carry is the states plus the summed rewards: nothing is stored per step.
    ``batched``: `fn.rl.step_batch`; otherwise the vmapped ``env.step`` with
    a key per copy.
    """
    env = fn.rl.CartPole()
    params = env.default_params
    policy = fn.rl.random_policy(env.num_actions)
    vmapped = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def step(key, env_state, action, params):
        if batched:
            return fn.rl.step_batch(env, key, env_state, action, params)
        return vmapped(jax.random.split(key, num_envs), env_state, action, params)

    def run(key: jax.Array, actions: jax.Array) -> Any:
        _, env_state = fn.rl.reset_batch(env, key, num_envs, params)

        def body(carry, inputs):
            env_state, total = carry
            t, action = inputs
            action_key, step_key = jax.random.split(jax.random.fold_in(key, t))
            if draw_actions:
                action = policy(action_key, env_state.x)
            _, env_state, reward, _, _ = step(step_key, env_state, action, params)
            return (env_state, total + reward.sum()), None

        zero = jnp.zeros((), jnp.float32)
        return lax.scan(body, (env_state, zero), (jnp.arange(steps), actions))[0]

    return jax.jit(run)


def funcnets_rollout(num_envs: int, steps: int) -> Callable[[jax.Array], Any]:
    """A jitted ``key -> trajectory`` through `fn.rl.rollout` with `fn.rl.random_policy`."""
    env = fn.rl.CartPole()
    policy = fn.rl.random_policy(env.num_actions)

    def run(key: jax.Array) -> Any:
        obs, env_state = fn.rl.reset_batch(env, key, num_envs)
        return fn.rl.rollout(env, policy, key, obs, env_state, steps)

    return jax.jit(run)


def gym_loop(steps: int, rng: np.random.Generator) -> Callable[[], None]:
    env = gym.make("CartPole-v1")
    env.reset(seed=int(rng.integers(2**31)))
    actions = rng.integers(0, 2, steps).tolist()

    def run() -> None:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    return run


def gym_vector(mode: str, num_envs: int, steps: int, rng: np.random.Generator) -> Callable:
    envs = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode=mode)
    envs.reset(seed=int(rng.integers(2**31)))
    actions = list(rng.integers(0, 2, (steps, num_envs)))

    def run() -> None:
        for action in actions:
            envs.step(action)  # both modes reset finished copies themselves

    return run


def bench(sizes: list[int], steps: int, reps: int) -> dict[str, Any]:
    """Steps per second of every contender at every batch size, interleaved repetitions."""
    rng = np.random.default_rng(0)
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    loop_steps = 50_000  # Gymnasium repetitions of ~0.3 s each on 2 CPU cores
    contenders: dict[str, tuple[Callable[[], Any], int]] = {
        "gymnasium_loop": (gym_loop(loop_steps, rng), loop_steps)
    }
    for n in sizes:
        given = jnp.asarray(rng.integers(0, 2, (steps, n)), jnp.int32)
        given_actions = {  # each a jitted (key, actions) -> carry, timed on the same actions
            "funcnets_dynamics": funcnets_transition(n, steps),
            "funcnets_scan": funcnets_scan(n, steps, False),
            "funcnets_scan_drawn": funcnets_scan(n, steps, True),
            "funcnets_vmapped": funcnets_scan(n, steps, False, batched=False),
            "funcnets_vmapped_drawn": funcnets_scan(n, steps, True, batched=False),
        }
        for name, run in given_actions.items():
            contenders[f"{name}_{n}"] = (
                lambda run=run, given=given: jax.block_until_ready(run(next(keys), given)),
                n * steps,
            )
        rollout = funcnets_rollout(n, steps)
        contenders[f"funcnets_rollout_{n}"] = (
            lambda rollout=rollout: jax.block_until_ready(rollout(next(keys))),
            n * steps,
        )
        numpy_steps = max(1, 200_000 // n)
        contenders[f"gymnasium_numpy_vector_{n}"] = (
            gym_vector("vector_entry_point", n, numpy_steps, rng),
            n * numpy_steps,
        )
        if n <= 1024:  # a Python loop over the copies: as slow per step as the plain loop
            sync_steps = max(1, 50_000 // n)
            contenders[f"gymnasium_sync_vector_{n}"] = (
                gym_vector("sync", n, sync_steps, rng),
                n * sync_steps,
            )
    start = time.perf_counter()
    for run, _ in contenders.values():  # warm-up, compiling the JAX functions
        run()
    warmup_seconds = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):
        for name, (run, _) in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    rate = {
        name: env_steps / statistics.median(times[name])
        for name, (_, env_steps) in contenders.items()
    }
    return {
        "sizes": sizes,
        "funcnets_steps": steps,
        "steps_per_rep": {name: env_steps for name, (_, env_steps) in contenders.items()},
        "reps": reps,
        "warmup_seconds": round(warmup_seconds, 2),
        "median_seconds": {name: statistics.median(t) for name, t in times.items()},
        "steps_per_second": rate,
        "backend": jax.default_backend(),
        "devices": str(jax.devices()[0].device_kind),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "versions": {"jax": jax.__version__, "gymnasium": gym.__version__, "numpy": np.__version__},
    }


def report(result: dict[str, Any]) -> str:
    rate = result["steps_per_second"]
    loop = rate["gymnasium_loop"]
    lines = [
        "# CartPole steps per second: `fn.rl.CartPole` against Gymnasium",
        "",
        f"- Random actions; funcnets: {result['funcnets_steps']:,} steps of every copy per "
        "repetition; Gymnasium: ~50,000 (loop, SyncVectorEnv) or ~200,000 (NumPy vector) "
        "steps per repetition",
        f"- {result['reps']} repetitions after a warm-up (compiling included: "
        f"{result['warmup_seconds']} s), interleaved; median time per repetition",
        f"- Device: {result['backend']} ({result['devices']}), {platform.machine()}, "
        f"{result['cpu_count']} CPU cores visible (shared with other work; load average "
        f"{', '.join(f'{x:.1f}' for x in result['load_average'])})",
        "- " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
        "",
        "| environment | copies | steps/s | x Gymnasium loop |",
        "|---|---|---|---|",
        f"| Gymnasium `CartPole-v1`, Python loop | 1 | {loop:,.0f} | 1.0 |",
    ]
    labels = {
        "funcnets_dynamics": "`fn.rl.cartpole.transition` alone: dynamics, no reset (a ceiling)",
        "funcnets_scan": "`fn.rl.CartPole`, `fn.rl.step_batch` in a jitted `lax.scan`, "
        "actions given",
        "funcnets_scan_drawn": "the same, actions drawn in the scan (`fn.rl.random_policy`)",
        "funcnets_vmapped": "`fn.rl.CartPole`, vmapped `env.step` (a key per copy), actions given",
        "funcnets_vmapped_drawn": "the same, actions drawn in the scan",
        "funcnets_rollout": "`fn.rl.rollout` (actions drawn, trajectory stored)",
        "gymnasium_sync_vector": "Gymnasium `SyncVectorEnv`",
        "gymnasium_numpy_vector": "Gymnasium `CartPoleVectorEnv` (NumPy, `make_vec`)",
    }
    for n in result["sizes"]:
        for prefix, label in labels.items():
            name = f"{prefix}_{n}"
            if name in rate:
                lines.append(f"| {label} | {n:,} | {rate[name]:,.0f} | {rate[name] / loop:,.1f} |")
    for n in result["sizes"]:
        name = f"gymnasium_numpy_vector_{n}"
        lines.append(
            f"\nAt {n:,} copies, `fn.rl.CartPole` with random actions drawn in the scan is "
            f"**{rate[f'funcnets_scan_drawn_{n}'] / loop:,.0f}x** the Gymnasium loop "
            f"({rate[f'funcnets_scan_{n}'] / loop:,.0f}x with the actions given) and "
            f"{rate[f'funcnets_scan_drawn_{n}'] / rate[name]:,.2f}x Gymnasium's NumPy vector env."
        )
    lines += [
        "",
        READING,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--num-envs", default="1024,16384", help="comma-separated batch sizes (copies)"
    )
    parser.add_argument("--steps", type=int, default=1000, help="funcnets steps per repetition")
    parser.add_argument("--reps", type=int, default=None, help="default 7 (3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3 repetitions; print only")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.num_envs.split(",")]
    result = bench(sizes, args.steps, args.reps or (3 if args.quick else 7))
    text = report(result)
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.with_suffix(".md").write_text(text)
        RESULTS.with_suffix(".json").write_text(json.dumps(result, indent=1))
        print(f"written to {RESULTS.with_suffix('.md')}")


if __name__ == "__main__":
    main()
