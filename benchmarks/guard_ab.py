"""``python -m benchmarks.guard_ab WORKLOAD [REPS]``: what the non-finite guard costs.

Times, interleaved rep by rep (10 steps each, in one process), the
hand-written jax + optax donated step, funcnets' `make_step` (loss, gradients
and updates checked: the default) and `make_step(check_updates=False)` (loss
and gradients checked, the update computed inside the conditional), and
prints the median ratios to the baseline. Results: benchmarks/README.md,
"The non-finite guard".
"""

from __future__ import annotations

import statistics
import sys
import time

import jax
import jax.numpy as jnp

import funcnets as fn
from benchmarks import baseline, data, workloads


def main(workload: str, reps: int) -> dict[str, float]:
    ts = workloads.train_state(workload, 0)
    batch = tuple(map(jnp.asarray, data.synthetic(128, 1)))
    net, opt = workloads.network(workload), workloads.optimizer()
    steps = {
        name: jax.jit(
            fn.train.make_step(net, workloads.loss, opt, check_updates=check), donate_argnums=0
        )  # fmt: skip
        for name, check in (("make_step", True), ("check_updates=False", False))
    }
    carries = {name: jax.tree.map(jnp.copy, ts) for name in steps}
    base_step, tx = baseline.make_step(workload, donate=True)
    params, state = baseline.from_funcnets(workload, *jax.tree.map(jnp.copy, (ts.params, ts.state)))
    base = [params, state, tx.init(params)]

    def run(name: str, n: int) -> None:
        if name == "baseline":
            for _ in range(n):
                base[:] = base_step(*base, *batch)[:3]
            jax.block_until_ready(base)
        else:
            for _ in range(n):
                carries[name] = steps[name](carries[name], batch)[0]
            jax.block_until_ready(carries[name])

    names = ["baseline", *steps]
    for name in names:
        run(name, 3)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(reps):
        for name in names:
            start = time.perf_counter()
            run(name, 10)
            seconds[name].append((time.perf_counter() - start) / 10)
    ratios = {
        name: statistics.median(s / b for s, b in zip(seconds[name], seconds["baseline"]))
        for name in names
    }
    shown = "  ".join(f"{name} {ratio:.3f}" for name, ratio in ratios.items())
    print(f"{workload}: {shown} (baseline {1e3 * statistics.median(seconds['baseline']):.2f} ms)")
    return ratios


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 12)
