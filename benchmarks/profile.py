"""Where a workload's training step spends its time, op by op.

    python -m benchmarks.profile lenet5 [--steps 20] [--fit] [--top 25]

Traces ``--steps`` calls of the donated, jitted funcnets step (or, with
``--fit``, of the compiled minibatch step that `fn.train.fit` runs) with
`jax.profiler` and prints the time of each compiled op (XLA fusion, dot,
convolution, copy, ...) per step, summed over threads, largest first. Op names
match ``jax.jit(step).lower(...).compile().as_text()``, so a costly op can be
looked up in the compiled program. Times are inflated by the tracing itself;
read them as shares. This is how the conv, pooling and NaN-guard choices in
funcnets were found (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
from pathlib import Path

from benchmarks import data
from benchmarks.config import BATCH, WORKLOADS

_CONTAINERS = {"cond", "conditional", "while", "call"}  # control flow: its ops are listed
_RUNTIME = ("ThunkExecutor", "SlinkyThreadPool", "Pjit", "$", "end: ")  # not ops


def op_times(trace_dir: Path) -> collections.Counter:
    """Microseconds per op name (numbered suffixes merged) in a perfetto trace."""
    (path,) = Path(trace_dir).glob("plugins/profile/*/perfetto_trace.json.gz")
    events = json.load(gzip.open(path))
    events = events["traceEvents"] if isinstance(events, dict) else events
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    totals: collections.Counter = collections.Counter()
    for e in events:
        thread = threads.get((e.get("pid"), e.get("tid")), "")
        if e.get("ph") != "X" or thread.startswith("python") or e["name"].startswith(_RUNTIME):
            continue
        name = re.sub(r"\.\d+$", "", e["name"])
        if name not in _CONTAINERS:
            totals[name] += e.get("dur", 0)
    return totals


def trace_steps(workload: str, steps: int, through_fit: bool, trace_dir: Path) -> None:
    import jax
    import jax.numpy as jnp

    import funcnets as fn
    from benchmarks import workloads
    from funcnets.train.engine import Engine

    ts = workloads.train_state(workload, 0)
    x, y = map(jnp.asarray, data.synthetic(BATCH, 1))
    if through_fit:  # the step fit compiles: make_step with accuracy, inside the guard
        step = fn.train.make_step(workloads.network(workload), workloads.loss,
                                  workloads.optimizer(), metrics=("loss", "accuracy"))  # fmt: skip
        engine = Engine(step, jax.eval_shape(step, ts, (x, y))[1], "raise")
        batch_runner = engine.batch_runner()
        run = lambda ts, sums, x, y: batch_runner(ts, sums, (x, y))  # noqa: E731
        carry = (ts, engine.empty_sums())
    else:
        jitted = jax.jit(workloads.step(workload), donate_argnums=0)
        run, carry = (lambda ts, _, x, y: (jitted(ts, (x, y))[0], None)), (ts, None)
    for _ in range(3):  # compile and warm up
        carry = run(*carry, x, y)
    jax.block_until_ready(carry)
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        for _ in range(steps):
            carry = run(*carry, x, y)
        jax.block_until_ready(carry)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--steps", type=int, default=20, help="traced steps (default 20)")
    parser.add_argument("--fit", action="store_true", help="profile fit's compiled step")
    parser.add_argument("--top", type=int, default=25, help="ops to list (default 25)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.top < 1:
        parser.error("--steps and --top must be positive")
    with tempfile.TemporaryDirectory() as trace_dir:
        trace_steps(args.workload, args.steps, args.fit, Path(trace_dir))
        totals = op_times(Path(trace_dir))
    total = sum(totals.values())
    print(f"{WORKLOADS[args.workload]}: {total / args.steps / 1e3:.2f} ms of op time per step")
    for name, micros in totals.most_common(args.top):
        print(f"{micros / args.steps / 1e3:8.3f} ms  {100 * micros / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
