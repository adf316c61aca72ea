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
    start = time.perf_counter()
    carry = sync(call(carry, batches[0]))
    first = time.perf_counter() - start
    for i in range(settings.warmup_steps):
        carry = call(carry, batches[(i + 1) % len(batches)])
    carry = sync(carry)
    reps = []
    for _ in range(settings.reps):
        start = time.perf_counter()
        for i in range(settings.steps_per_rep):
            carry = call(carry, batches[i % len(batches)])
        carry = sync(carry)
        reps.append((time.perf_counter() - start) / settings.steps_per_rep)
    step = statistics.median(reps)
    result = {
        "step_ms": 1e3 * step,
        "first_call_s": first,
        "compile_s": first - step,
        "reps_ms": [1e3 * t for t in reps],
    }
    return result, carry


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
    for batch in (batches[0], batches[min(1, len(batches) - 1)], batches[-1]):
        carry = call(carry, batch)
    carry = sync(carry)
    reps = []
    for _ in range(settings.epoch_reps):
        start = time.perf_counter()
        for batch in batches:
            carry = call(carry, batch)
        carry = sync(carry)
        reps.append(time.perf_counter() - start)
    return {"epoch_s": statistics.median(reps), "reps_s": reps}, carry


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

    A process that failed is left out; peak memory is the largest seen.
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
    return merged
