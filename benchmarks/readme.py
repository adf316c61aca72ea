"""``python -m benchmarks.readme [RESULTS.json]``: the README's speed table, from a run.

Rewrites the lines between ``<!-- speed-table -->`` and ``<!-- /speed-table -->`` in
README.md with `table` of the run (default benchmarks/results/latest.json), so the
README quotes exactly what the committed run measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.config import case_label

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- speed-table -->", "<!-- /speed-table -->"


def _ms(run: dict, framework: str, case: str, row: str) -> float | None:
    rows = run["results"].get(framework, {}).get(case, {}).get("rows", {})
    return rows.get(row, {}).get("step_ms")


def _cell(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def table(run: dict) -> list[str]:
    """One row per case: the baseline's step, funcnets' ratios to it and to PyTorch, compiles.

    funcnets' step is `make_step` jitted with donated buffers; "same process" divides it
    by the baseline's donated step timed in turn with it; the PyTorch ratios divide it by
    PyTorch eager's step (as shipped) with fused and with default Adam.
    """
    lines = [
        "| workload | jax + optax step (ms) | funcnets ÷ jax + optax (same process) "
        "| funcnets ÷ PyTorch, fused Adam | funcnets ÷ PyTorch, default Adam "
        "| funcnets compile (s) | `fit` first epoch − a steady one (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in run.get("cases") or run["workloads"]:
        funcnets = _ms(run, "funcnets", case, "funcnets_donated")
        rows = run["results"].get("funcnets", {}).get(case, {}).get("rows", {})
        lines.append(
            f"| {case_label(case)} | {_cell(_ms(run, 'baseline', case, 'baseline_donated'), 3)} "
            f"| {_cell(_ratio(funcnets, _ms(run, 'funcnets', case, 'ab_baseline_donated')))} "
            f"| {_cell(_ratio(funcnets, _ms(run, 'torch', case, 'torch_fused')))} "
            f"| {_cell(_ratio(funcnets, _ms(run, 'torch', case, 'torch')))} "
            f"| {_cell(rows.get('funcnets_donated', {}).get('compile_s'))} "
            f"| {_cell(rows.get('epoch_fit', {}).get('compile_s'))} |"
        )
    return lines


def rewrite(readme: str, run: dict) -> str:
    """``readme`` with the text between the markers replaced by `table` of ``run``."""
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"README.md has no {START} ... {END} block")
    return head + START + "\n" + "\n".join(table(run)) + "\n" + END + tail


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else ROOT / "benchmarks" / "results" / "latest.json"
    readme = ROOT / "README.md"
    readme.write_text(rewrite(readme.read_text(), json.loads(path.read_text())))
    print(f"README.md: speed table rewritten from {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
