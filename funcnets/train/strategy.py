"""How an epoch on in-memory arrays is split into compiled calls.

Three strategies give bit-identical results:

- ``"epoch"``: every full minibatch of the epoch in one compiled ``lax.scan``;
- ``"chunks"``: compiled scans of ``chunk_steps`` minibatches each;
- ``"loop"``: one compiled step per minibatch, called from Python.

``"auto"`` picks by one rule, read from the compiled step's own program so it
holds for any step: the whole-epoch scan (no per-step dispatch), except on
CPU for a step holding an XLA ``convolution`` or a ``while`` loop (a
recurrent scan), which run slower inside XLA's CPU while-loop and get the
loop of jitted steps. Measured with ``python -m benchmarks`` on 2 CPU cores;
the numbers are in benchmarks/README.md ("fit's strategy rule").
"""

from __future__ import annotations

import jax

STRATEGIES = ("auto", "epoch", "chunks", "loop")

#: ``(steps, batch_size, offset)``: one compiled call running ``steps`` minibatches
#: of ``batch_size`` examples from position ``offset`` of the epoch's permutation.
Call = tuple[int, int, int]


def choose_strategy(step_program: str, backend: str | None = None) -> str:
    """``"loop"`` or ``"epoch"`` for a step whose StableHLO text is ``step_program``."""
    if (backend or jax.default_backend()) != "cpu":
        return "epoch"
    return "loop" if ("convolution" in step_program or "while" in step_program) else "epoch"


def epoch_plan(
    strategy: str, n: int, batch_size: int, chunk_steps: int, merge_last: bool = False
) -> list[Call]:
    """The compiled calls of one epoch over ``n`` examples.

    Every example is trained on once: when ``batch_size`` does not divide
    ``n``, the remainder is one more, smaller minibatch. ``merge_last`` folds
    a remainder of one example into the previous minibatch instead (for
    steps that cannot take a batch of one, such as BatchNorm in training).

    Example:
        >>> epoch_plan("chunks", n=10, batch_size=3, chunk_steps=2)
        [(2, 3, 0), (1, 3, 6), (1, 1, 9)]
        >>> epoch_plan("epoch", n=10, batch_size=3, chunk_steps=2, merge_last=True)
        [(2, 3, 0), (1, 4, 6)]
    """
    full_steps, remainder = divmod(n, batch_size)
    tail = []
    if remainder == 1 and merge_last and full_steps:
        full_steps -= 1
        tail = [(1, batch_size + 1)]
    elif remainder:
        tail = [(1, remainder)]
    if strategy == "epoch":
        sizes = [full_steps] if full_steps else []
    elif strategy == "chunks":
        sizes = [chunk_steps] * (full_steps // chunk_steps)
        sizes += [full_steps % chunk_steps] if full_steps % chunk_steps else []
    else:
        sizes = [1] * full_steps
    plan, offset = [], 0
    for steps, size in [(s, batch_size) for s in sizes] + tail:
        plan.append((steps, size, offset))
        offset += steps * size
    return plan
