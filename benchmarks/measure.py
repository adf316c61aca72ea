"""Timing and memory helpers shared by every framework; no framework imports here."""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.config import Settings


def timed(call, carry, batches: Sequence[Any], steps: int, sync) -> tuple[float, Any]:
    """Seconds for ``steps`` calls of ``carry = call(carry, batch)`` cycling through ``batches``."""
    start = time.perf_counter()
    for i in range(steps):
        carry = call(carry, batches[i % len(batches)])
    carry = sync(carry)
    return time.perf_counter() - start, carry


def _warm_up(call, carry, batches: Sequence[Any], settings: Settings, sync) -> tuple[float, Any]:
    """The first call, timed alone (for jitted steps it compiles), then the warm-up steps."""
    first, carry = timed(call, carry, batches, 1, sync)
    _, carry = timed(call, carry, batches[1:] or batches, settings.warmup_steps, sync)
    return first, carry


def time_steps(
    call: Callable[[Any, Any], Any],
    carry: Any,
    batches: Sequence[Any],
    settings: Settings,
    sync: Callable[[Any], Any],
) -> tuple[dict, Any]:
    """Per-step times of ``carry = call(carry, batch)``, cycling through ``batches``.

    The first call is timed alone (for jitted steps it compiles); then
    ``warmup_steps`` untimed calls; then ``reps`` repetitions of
    ``steps_per_rep`` calls, each ended by ``sync(carry)`` (``block_until_ready``).
    ``compile_s`` is the first call minus the median steady step.
    """
    first, carry = _warm_up(call, carry, batches, settings, sync)
    reps = []
    for _ in range(settings.reps):
        seconds, carry = timed(call, carry, batches, settings.steps_per_rep, sync)
        reps.append(seconds / settings.steps_per_rep)
    return _step_result(first, reps), carry


def time_interleaved(
    calls: dict[str, tuple[Callable[[Any, Any], Any], Any]],
    batches: Sequence[Any],
    settings: Settings,
    sync: Callable[[Any], Any],
) -> dict[str, dict]:
    """Per-step times of several steps ``name: (call, carry)`` in one process, interleaved.

    Each call is warmed up as in `time_steps` (its first call timed: ``compile_s``);
    then each of the ``reps`` repetitions times ``steps_per_rep`` steps of every
    call in turn, so a change in the machine's speed hits them all alike:
    their ratios are steadier than those of steps timed in separate processes.
    """
    firsts, carries = {}, {}
    for name, (call, carry) in calls.items():
        firsts[name], carries[name] = _warm_up(call, carry, batches, settings, sync)
    reps: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(settings.reps):
        for name, (call, _) in calls.items():
            seconds, carries[name] = timed(
                call, carries[name], batches, settings.steps_per_rep, sync
            )
            reps[name].append(seconds / settings.steps_per_rep)
    return {name: _step_result(firsts[name], times) for name, times in reps.items()}


def _step_result(first: float, reps: list[float]) -> dict:
    step = statistics.median(reps)
    return {
        "step_ms": 1e3 * step,
        "first_call_s": first,
        "compile_s": first - step,
        "reps_ms": [1e3 * t for t in reps],
    }


def time_epochs(
    call: Callable[[Any, Any], Any],
    carry: Any,
    batches: Sequence[Any],
    settings: Settings,
    sync: Callable[[Any], Any],
) -> tuple[dict, Any]:
    """Seconds per pass of ``carry = call(carry, batch)`` over all ``batches``.

    Warm-up first: the first, second and last batch (the last one may be
    smaller, which is another shape to compile); then ``epoch_reps`` timed
    epochs, each ended by ``sync``.
    """
    carry = warm_up_epoch(call, carry, batches, sync)
    reps = []
    for _ in range(settings.epoch_reps):
        seconds, carry = timed(call, carry, batches, len(batches), sync)
        reps.append(seconds)
    return {"epoch_s": statistics.median(reps), "reps_s": reps}, carry


def warm_up_epoch(call, carry, batches: Sequence[Any], sync) -> Any:
    """One call on the first, second and last batch: every shape an epoch meets, compiled."""
    for batch in (batches[0], batches[min(1, len(batches) - 1)], batches[-1]):
        carry = call(carry, batch)
    return sync(carry)


def peak_rate(
    call: Callable[[], Any],
    sync: Callable[[Any], Any],
    flops: float,
    reps: int = 5,
    rep_seconds: float = 0.05,
) -> float:
    """The best rate, in FLOP/s, of ``call()`` (``flops`` operations, e.g. a square matmul).

    Two warm-up calls (the first compiles), one timed to size the repetitions,
    then ``reps`` repetitions of as many back-to-back calls as fill about
    ``rep_seconds``, each ended by ``sync``: the fastest repetition's rate.
    """
    for _ in range(2):
        sync(call())
    start = time.perf_counter()
    sync(call())
    calls = max(1, round(rep_seconds / max(time.perf_counter() - start, 1e-6)))
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            out = call()
        sync(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return flops / best


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (``ru_maxrss``), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, else KiB


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other work on a shared machine skews timings)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def merge_rounds(rounds: Sequence[dict]) -> dict:
    """One result from several processes' results: medians of the numbers, all repetitions.

    A process that failed is left out; peak memory and the peak matmul rate are the
    largest seen.
    """
    done = [result for result in rounds if "error" not in result]
    if not done:
        return dict(rounds[0])
    merged = {**done[0], "rounds": len(done), "rows": {}}
    for row, first in done[0]["rows"].items():
        entries = [result["rows"][row] for result in done if row in result["rows"]]
        merged["rows"][row] = {
            key: statistics.median(e[key] for e in entries)
            if isinstance(value, float)
            else [v for e in entries for v in e[key]]
            if isinstance(value, list)
            else value
            for key, value in first.items()
        }
    for key in ("peak_rss_mb_steps", "peak_rss_mb"):
        merged[key] = max(result[key] for result in done)
    if peaks := [result["peak_matmul"] for result in done if "peak_matmul" in result]:
        merged["peak_matmul"] = max(peaks, key=lambda peak: peak["flops_per_s"])
    return merged
