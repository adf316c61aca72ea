"""One jitted Adam step, funcnets against optax, in the same run.

The step is ``update`` then ``apply_updates`` on a pytree of 50 leaves (25
weight matrices and 25 biases, ~10M float32 parameters), jitted with the
parameters and the optimizer state donated, as in a training loop. Each
repetition times one funcnets step and one optax step back to back, in
alternating order, each ended by ``block_until_ready``; the medians and the
median of the per-repetition ratios are reported.

Run ``python -m benchmarks.optim_adam`` (writes benchmarks/results/optim_adam.md)
or ``python -m benchmarks.optim_adam --quick`` (~1M parameters, prints only).
"""

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

import funcnets.optim as fo

RESULTS = Path(__file__).parent / "results" / "optim_adam.md"


def make_params(width: int, layers: int = 25) -> dict[str, dict[str, jax.Array]]:
    """``layers`` dense layers of shape (512, width) plus their biases."""
    keys = jax.random.split(jax.random.key(0), layers)
    return {
        f"layer{i}": {"w": jax.random.normal(k, (512, width)), "b": jnp.zeros(width)}
        for i, k in enumerate(keys)
    }


def make_step(tx: Any, apply_updates: Callable) -> Callable:
    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def bench(width: int, reps: int, warmup: int = 3) -> dict[str, Any]:
    params = make_params(width)
    grads = jax.tree.map(lambda p: 1e-3 * jnp.ones_like(p), params)
    runs = {
        "funcnets": (make_step(fo.adam(1e-3), fo.apply_updates), fo.adam(1e-3)),
        "optax": (make_step(optax.adam(1e-3), optax.apply_updates), optax.adam(1e-3)),
    }
    carry = {
        name: (jax.tree.map(jnp.copy, params), tx.init(params)) for name, (_, tx) in runs.items()
    }
    times: dict[str, list[float]] = {name: [] for name in runs}

    def timed(name: str) -> float:
        step = runs[name][0]
        start = time.perf_counter()
        carry[name] = jax.block_until_ready(step(*carry[name], grads))
        return time.perf_counter() - start

    for _ in range(warmup):
        for name in runs:
            timed(name)
    for rep in range(reps):
        order = ["funcnets", "optax"] if rep % 2 == 0 else ["optax", "funcnets"]
        for name in order:
            times[name].append(timed(name))
    size = sum(p.size for p in jax.tree.leaves(params))
    ratios = [f / o for f, o in zip(times["funcnets"], times["optax"], strict=True)]
    return {
        "params": size,
        "leaves": len(jax.tree.leaves(params)),
        "reps": reps,
        "median_ms": {name: 1e3 * statistics.median(t) for name, t in times.items()},
        "min_ms": {name: 1e3 * min(t) for name, t in times.items()},
        "ratio_of_medians": statistics.median(times["funcnets"])
        / statistics.median(times["optax"]),
        "median_paired_ratio": statistics.median(ratios),
    }


def report(result: dict[str, Any]) -> str:
    device = jax.devices()[0]
    med, low = result["median_ms"], result["min_ms"]
    return "\n".join(
        [
            "# One jitted Adam step: funcnets vs optax",
            "",
            f"- Pytree: {result['leaves']} leaves, {result['params']:,} float32 parameters",
            "- Step: `update` + `apply_updates`, jitted, params and state donated",
            f"- Repetitions: {result['reps']} after warm-up, interleaved, alternating order",
            f"- Device: {device.platform} ({device.device_kind}), {platform.machine()}, "
            f"{os.cpu_count()} CPU cores visible (shared with other work while measured)",
            f"- jax {jax.__version__}, optax {optax.__version__}",
            "",
            "| | median (ms) | min (ms) |",
            "|---|---|---|",
            f"| funcnets | {med['funcnets']:.2f} | {low['funcnets']:.2f} |",
            f"| optax | {med['optax']:.2f} | {low['optax']:.2f} |",
            "",
            f"Ratio funcnets / optax: **{result['ratio_of_medians']:.3f}** (ratio of medians); "
            f"{result['median_paired_ratio']:.3f} (median of per-repetition ratios). "
            "Target: <= 1.05.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1M parameters; print only")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (>= 20)")
    args = parser.parse_args(argv)
    reps = args.reps or (20 if args.quick else 100)
    if reps < 20:
        parser.error("--reps must be at least 20")
    text = report(bench(width=78 if args.quick else 780, reps=reps))
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
