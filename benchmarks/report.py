"""The markdown report of a run: times as ratios to the baseline of the same run."""

from __future__ import annotations

from benchmarks.config import WORKLOADS

# (label, framework, row): the rows of each table, in order.
STEP_ROWS = [
    ("baseline: jax + optax, jit", "baseline", "baseline"),
    ("baseline, donated", "baseline", "baseline_donated"),
    ("funcnets: `make_step`, jit", "funcnets", "funcnets"),
    ("funcnets: `make_step`, jit, donated", "funcnets", "funcnets_donated"),
    ("torch eager, Adam for-loop (CPU default)", "torch", "torch"),
    ("torch eager, Adam `foreach=True`", "torch", "torch_foreach"),
    ("torch eager, Adam `fused=True`", "torch", "torch_fused"),
    ("Flax NNX: `nnx.jit`, `nnx.Optimizer`", "flax", "flax_nnx"),
    ("Equinox: `eqx.filter_jit`, donated", "equinox", "equinox"),
]
EPOCH_ROWS = [
    ("Python loop of the baseline's donated step", "baseline", "epoch_loop"),
    ("`fn.train.fit`", "funcnets", "epoch_fit"),
    ("torch eager loop, default Adam", "torch", "epoch_torch"),
    ("Flax NNX loop of its step", "flax", "epoch_flax_nnx"),
    ("Equinox loop of its step", "equinox", "epoch_equinox"),
]
COMPILE_ROWS = [
    ("baseline", "baseline", "baseline"),
    ("baseline, donated", "baseline", "baseline_donated"),
    ("funcnets `make_step`", "funcnets", "funcnets"),
    ("funcnets `make_step`, donated", "funcnets", "funcnets_donated"),
    ("`fn.train.fit` (first epoch minus a steady one)", "funcnets", "epoch_fit"),
    ("torch eager (first step minus a steady one)", "torch", "torch"),
    ("Flax NNX", "flax", "flax_nnx"),
    ("Equinox", "equinox", "equinox"),
]
# (label, numerator row, denominator row, key): ratios within the funcnets process.
SAME_PROCESS_ROWS = [
    ("funcnets ÷ baseline, both jit", "funcnets", "ab_baseline", "step_ms"),
    ("funcnets ÷ baseline, both donated", "funcnets_donated", "ab_baseline_donated", "step_ms"),
    ("funcnets donated ÷ baseline (not donated)", "funcnets_donated", "ab_baseline", "step_ms"),
    ("baseline donated ÷ baseline", "ab_baseline_donated", "ab_baseline", "step_ms"),
    ("`fn.train.fit` epoch ÷ the loop of the baseline's donated step", "epoch_fit",
     "ab_epoch_loop", "epoch_s"),
]  # fmt: skip
NAMES = {
    "baseline": "baseline (jax + optax)",
    "funcnets": "funcnets",
    "torch": "torch",
    "flax": "Flax NNX",
    "equinox": "Equinox",
}


def _row(results: dict, framework: str, workload: str, row: str) -> dict | None:
    return results.get(framework, {}).get(workload, {}).get("rows", {}).get(row)


def _ratio_table(results, workloads, rows, key, reference, unit, scale) -> list[str]:
    lines = [
        "| | " + " | ".join(WORKLOADS[w] for w in workloads) + " |",
        "|---" * (len(workloads) + 1) + "|",
    ]
    for label, framework, row in rows:
        cells = []
        for workload in workloads:
            value = _row(results, framework, workload, row)
            ref = _row(results, reference[0], workload, reference[1])
            if value is None:
                cells.append("—")
            elif ref is None:
                cells.append(f"{scale * value[key]:.3g} {unit}")
            elif (framework, row) == reference:
                cells.append(f"**1.00** ({scale * value[key]:.3g} {unit})")
            else:
                cells.append(f"{value[key] / ref[key]:.2f}")
        if any(cell != "—" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def markdown(run: dict) -> str:
    """The report of a run's JSON (see `__main__`): header, four tables, what was skipped."""
    settings, results = run["settings"], run["results"]
    workloads = run["workloads"]
    versions = {}
    for framework in results.values():
        for result in framework.values():
            versions.update(result.get("versions", {}))
    kind = "Quick run (`--quick`)" if settings["quick"] else "Full run"
    lines = [
        f"# Benchmark: funcnets vs hand-written jax + optax — {kind.lower()}",
        "",
        f"- **{kind}**, {run['date']}, {run['wall_s']:.0f} s in all. "
        + (
            "Few repetitions and a short epoch: indicative only; run without `--quick` "
            "for numbers to quote."
            if settings["quick"]
            else "Medians after warm-up."
        ),
        f"- Host: {run['host']}; backend {versions.get('backend', '?')} "
        f"({versions.get('device', '?')}); load average before the run {run['load_average']}.",
        f"- jax {versions.get('jax', '?')}, optax {versions.get('optax', '?')}, "
        f"funcnets {versions.get('funcnets', '?')}"
        + (
            f", torch {versions['torch']} ({versions['threads']} threads, "
            f"OMP_WAIT_POLICY={run.get('omp_wait_policy', 'unset')})"
            if "torch" in versions
            else ""
        )
        + "".join(
            f", {NAMES[name]} {versions[name]}" for name in ("flax", "equinox") if name in versions
        )
        + f", Python {versions.get('python', '?')}.",
        f"- float32, batch {settings['batch']}, softmax cross-entropy, Adam 1e-3, synthetic "
        "data made outside the timed regions. Each framework and workload ran in its own "
        "process.",
        f"- Step: median of {settings['reps']} repetitions of {settings['steps_per_rep']} "
        f"steps after {settings['warmup_steps']} warm-up steps, each repetition ended by "
        "`block_until_ready`. Epoch: "
        f"{settings['epoch_samples']:,} samples, median of {settings['epoch_reps']} epochs "
        "after warm-up."
        + (
            f" Every process ran {settings['rounds']} times, interleaved; medians across them."
            if settings.get("rounds", 1) > 1
            else ""
        ),
        "",
        "## Time per step (ratio to the baseline's jitted step; below 1 is faster)",
        "",
        *_ratio_table(results, workloads, STEP_ROWS, "step_ms", ("baseline", "baseline"), "ms", 1),
        "",
        f"## Time per epoch of {settings['epoch_samples']:,} samples "
        "(ratio to the Python loop of the baseline's step)",
        "",
        *_ratio_table(
            results, workloads, EPOCH_ROWS, "epoch_s", ("baseline", "epoch_loop"), "s", 1
        ),
    ]
    same_process = []
    for label, top, bottom, key in SAME_PROCESS_ROWS:
        cells = [
            f"{a[key] / b[key]:.2f}"
            if (a := _row(results, "funcnets", w, top))
            and (b := _row(results, "funcnets", w, bottom))
            else "—"
            for w in workloads
        ]
        if any(cell != "—" for cell in cells):
            same_process.append(f"| {label} | " + " | ".join(cells) + " |")
    if same_process:
        lines += [
            "",
            "## Same process, interleaved (the steadiest ratios; below 1: funcnets is faster)",
            "",
            "The funcnets process also times the baseline's steps, repetition by repetition "
            "in turn with its own, and one epoch of the baseline's loop after each `fit` epoch.",
            "",
            "| | " + " | ".join(WORKLOADS[w] for w in workloads) + " |",
            "|---" * (len(workloads) + 1) + "|",
            *same_process,
        ]
    strategies = [
        f"{WORKLOADS[w]}: `{row['strategy']}`"
        for w in workloads
        if (row := _row(results, "funcnets", w, "epoch_fit")) is not None
    ]
    if strategies:
        lines += [
            "",
            "`fit(strategy='auto')` ran: " + ", ".join(strategies) + " (`epoch`: the whole "
            "epoch in one compiled `lax.scan`; `loop`: a Python loop of jitted steps). The "
            "`fit` epoch excludes its first epoch, which compiles.",
        ]
    lines += [
        "",
        "## First-call compile time (s: first call minus a steady step)",
        "",
        "| | " + " | ".join(WORKLOADS[w] for w in workloads) + " |",
        "|---" * (len(workloads) + 1) + "|",
    ]
    for label, framework, row in COMPILE_ROWS:
        cells = [
            "—"
            if (value := _row(results, framework, w, row)) is None
            else f"{value['compile_s']:.2f}"
            for w in workloads
        ]
        if any(cell != "—" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Peak memory of each process (MB: after the step measurements; whole run in brackets)",
        "",
        "| | " + " | ".join(WORKLOADS[w] for w in workloads) + " |",
        "|---" * (len(workloads) + 1) + "|",
    ]
    for framework, per_workload in results.items():
        cells = []
        for w in workloads:
            result = per_workload.get(w, {})
            if "peak_rss_mb" in result:
                cells.append(f"{result['peak_rss_mb_steps']:.0f} ({result['peak_rss_mb']:.0f})")
            else:
                cells.append("—")
        if any(cell != "—" for cell in cells):
            lines.append(f"| {NAMES.get(framework, framework)} | " + " | ".join(cells) + " |")
    notes = [f"- {name}: skipped: {reason}" for name, reason in run["skipped"].items()]
    for framework, per_workload in results.items():
        for w, result in per_workload.items():
            notes += [f"- {framework} {w} {row}: skipped: {why}" for row, why in
                      result.get("skipped_rows", {}).items()]  # fmt: skip
            if "error" in result:
                notes.append(f"- {framework} {w}: failed: {result['error']}")
    if notes:
        lines += ["", "## Not measured", "", *notes]
    return "\n".join(lines) + "\n"
