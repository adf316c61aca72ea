"""The markdown report of a run: times as ratios to the baseline of the same run."""

from __future__ import annotations

from benchmarks.config import case_label

# (label, framework, row): the rows of each table, in order. A framework's rows are repeated
# after them for each non-default setting it also ran with (`run["variants"]`: a torch
# thread count or OpenMP policy, XLA_FLAGS for the baseline and funcnets), labelled with it.
STEP_ROWS = [
    ("baseline: jax + optax, jit", "baseline", "baseline"),
    ("baseline, donated", "baseline", "baseline_donated"),
    ("funcnets: `make_step`, jit", "funcnets", "funcnets"),
    ("funcnets: `make_step`, jit, donated", "funcnets", "funcnets_donated"),
    ("torch eager, default Adam (for-loop on CPU, foreach on CUDA)", "torch", "torch"),
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


def _row(results: dict, framework: str, case: str, row: str) -> dict | None:
    return results.get(framework, {}).get(case, {}).get("rows", {}).get(row)


def _variants(run: dict) -> dict[str, dict[str, str]]:
    """``run["variants"]``: ``{results key: {"framework": ..., "setting": ...}}``.

    (Runs written before XLA flags had ``"torch_variants"``, ``{key: setting}``, torch only.)
    """
    if "variants" in run:
        return run["variants"]
    return {key: {"framework": "torch", "setting": setting}
            for key, setting in run.get("torch_variants", {}).items()}  # fmt: skip


def _with_variants(rows: list[tuple], variants: dict[str, dict[str, str]]) -> list[tuple]:
    """``rows`` and, after them, the rows of each variant's framework again, labelled.

    A repeated row reads its numbers from the variant's results (``results[key]``).
    """
    extra = [
        (f"{label}, {variant['setting']}", key, row)
        for key, variant in variants.items()
        for label, framework, row in rows
        if framework == variant["framework"]
    ]
    return rows + extra


def _name(key: str, variants: dict[str, dict[str, str]]) -> str:
    """A process's name in the tables by process: the framework's, and the variant's setting."""
    if key in variants:
        framework = variants[key]["framework"]
        return f"{NAMES.get(framework, framework)}, {variants[key]['setting']}"
    return NAMES.get(key, key)


def _variants_note(run: dict, variants: dict[str, dict[str, str]]) -> list[str]:
    """The header's line on the rows of non-default settings, if any ran."""
    if not variants:
        return []
    by_setting: dict[str, list[str]] = {}
    for variant in variants.values():
        by_setting.setdefault(variant["setting"], []).append(variant["framework"])
    marked = ", ".join(
        f"`{setting}` ({', '.join(frameworks)})" for setting, frameworks in by_setting.items()
    )
    line = (
        f"- Rows marked {marked} ran that framework in processes of their own with that "
        "setting; the other rows are each framework as shipped, in the environment the run "
        "was started in."
    )
    if any(s.startswith("XLA_FLAGS=") for s in by_setting):
        line += (
            " An `XLA_FLAGS=` setting was appended to the environment's `XLA_FLAGS`"
            + (f" (`{run['xla_flags']}`)" if run.get("xla_flags") else " (unset)")
            + "; funcnets never sets `XLA_FLAGS` itself. Ratios are to the headline baseline "
            "row, but for the same-process rows of a flagged funcnets process (its own "
            "baseline steps ran with the flags too)."
        )
    return [line]


def _header(cases: list[str]) -> list[str]:
    return [
        "| | " + " | ".join(case_label(c) for c in cases) + " |",
        "|---" * (len(cases) + 1) + "|",
    ]


def _ratio_table(results, cases, rows, key, reference, unit) -> list[str]:
    lines = _header(cases)
    for label, framework, row in rows:
        cells = []
        for c in cases:
            value = _row(results, framework, c, row)
            ref = _row(results, reference[0], c, reference[1])
            if value is None:
                cells.append("—")
            elif ref is None:
                cells.append(f"{value[key]:.3g} {unit}")
            elif (framework, row) == reference:
                cells.append(f"**1.00** ({value[key]:.3g} {unit})")
            else:
                cells.append(f"{value[key] / ref[key]:.2f}")
        if any(cell != "—" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def step_flops(results: dict, case: str) -> float | None:
    """The FLOPs of one training step of ``case``: XLA's count of the baseline's step."""
    for framework in ("baseline", "funcnets"):
        if (flops := results.get(framework, {}).get(case, {}).get("step_flops")) is not None:
            return flops
    return None


def _throughput_table(results, cases, rows, settings) -> list[str]:
    """Samples/s of each step and epoch row, and the step's FLOP rate as a share of the peak."""
    lines = _header(cases)
    for label, framework, row in rows:
        cells = []
        for c in cases:
            value = _row(results, framework, c, row)
            if value is None:
                cells.append("—")
                continue
            if "step_ms" in value:
                samples_per_s = settings["batch"] / (value["step_ms"] / 1e3)
            else:
                sizes = results[framework][c].get("settings", settings)
                samples_per_s = sizes["epoch_samples"] / value["epoch_s"]
            cell = f"{samples_per_s:,.0f}"
            flops = step_flops(results, c)
            peak = results[framework][c].get("peak_matmul", {}).get("flops_per_s")
            if flops and peak:
                cell += f" ({100 * flops / settings['batch'] * samples_per_s / peak:.1f}%)"
            cells.append(cell)
        if any(cell != "—" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _versions_line(run: dict, versions: dict) -> str:
    torch_versions = next(
        (r["versions"] for r in run["results"].get("torch", {}).values() if "versions" in r), None
    )
    policy = run.get("omp_wait_policy") or "unset (OpenMP's default)"
    torch = (
        f", torch {torch_versions['torch']} as shipped ({torch_versions['threads']} threads, "
        f"its default; OMP_WAIT_POLICY {policy})"
        if torch_versions
        else ""
    )
    others = "".join(
        f", {NAMES[name]} {versions[name]}" for name in ("flax", "equinox") if name in versions
    )
    return (
        f"- jax {versions.get('jax', '?')}, optax {versions.get('optax', '?')}, "
        f"funcnets {versions.get('funcnets', '?')}{torch}{others}, "
        f"Python {versions.get('python', '?')}."
    )


def _sizes_note(run: dict, cases: list[str]) -> list[str]:
    """A line naming the cases timed with other sizes than the run's (`Settings.for_workload`)."""
    run_sizes = {k: run["settings"][k] for k in ("steps_per_rep", "epoch_samples")}
    other: dict[tuple, list[str]] = {}
    for c in cases:
        for per_case in run["results"].values():
            sizes = per_case.get(c, {}).get("settings")
            if sizes and {k: sizes[k] for k in run_sizes} != run_sizes:
                other.setdefault((sizes["steps_per_rep"], sizes["epoch_samples"]), []).append(c)
                break
    return [
        f"- {', '.join(case_label(c) for c in names)}: {steps} steps per repetition and "
        f"{samples:,}-sample epochs (their steps take 0.2-0.5 s on CPU; "
        "`benchmarks/config.py`, `CPU_HEAVY_WORKLOADS`)."
        for (steps, samples), names in other.items()
    ]


def markdown(run: dict) -> str:
    """The report of a run's JSON (see `__main__`): header, tables, what was skipped."""
    settings, results = run["settings"], run["results"]
    cases = run.get("cases", run["workloads"])
    variants = _variants(run)
    precisions = run.get("precisions", ["float32"])
    versions = {}
    for framework, per_case in results.items():
        if framework not in variants:
            for result in per_case.values():
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
        f"({versions.get('device', '?')}); load average before the run {run['load_average']}"
        + (f"; `XLA_FLAGS={run['xla_flags']}` in the environment" if run.get("xla_flags") else "")
        + ".",
        _versions_line(run, versions),
        f"- {', '.join(precisions)}, batch {settings['batch']}, softmax cross-entropy, Adam "
        "1e-3, synthetic data made outside the timed regions. Each framework and workload ran "
        "in its own process."
        + (
            " bf16: bfloat16 arithmetic around float32 params and Adam state (funcnets "
            '`fn.precision.with_policy(net, "bf16")`; the baseline casts params and inputs '
            "inside its loss; torch `torch.autocast`); its ratios are to the baseline in bf16."
            if "bf16" in precisions
            else ""
        ),
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
    ]
    lines += _sizes_note(run, cases)
    lines += _variants_note(run, variants)
    lines += [
        "",
        "## Time per step (ratio to the baseline's jitted step; below 1 is faster)",
        "",
        *_ratio_table(
            results,
            cases,
            _with_variants(STEP_ROWS, variants),
            "step_ms",
            ("baseline", "baseline"),
            "ms",
        ),  # fmt: skip
        "",
        "## Time per epoch (ratio to the Python loop of the baseline's step)",
        "",
        *_ratio_table(
            results,
            cases,
            _with_variants(EPOCH_ROWS, variants),
            "epoch_s",
            ("baseline", "epoch_loop"),
            "s",
        ),  # fmt: skip
    ]
    # Each funcnets process's own ratios: the headline one's, then each variant's (its
    # baseline steps ran in the same process, so with the same setting).
    same_process = []
    processes = [("funcnets", "")] + [
        (key, f", {v['setting']}") for key, v in variants.items() if v["framework"] == "funcnets"
    ]
    for process, setting in processes:
        for label, top, bottom, key in SAME_PROCESS_ROWS:
            pairs = [(_row(results, process, c, top), _row(results, process, c, bottom))
                     for c in cases]  # fmt: skip
            cells = [f"{a[key] / b[key]:.2f}" if a and b else "—" for a, b in pairs]
            if any(cell != "—" for cell in cells):
                same_process.append(f"| {label}{setting} | " + " | ".join(cells) + " |")
    if same_process:
        lines += [
            "",
            "## Same process, interleaved (the steadiest ratios; below 1: funcnets is faster)",
            "",
            "The funcnets process also times the baseline's steps, repetition by repetition "
            "in turn with its own, and one epoch of the baseline's loop after each `fit` epoch.",
            "",
            *_header(cases),
            *same_process,
        ]
    strategies = [
        f"{case_label(c)}: `{row['strategy']}`"
        for c in cases
        if (row := _row(results, "funcnets", c, "epoch_fit")) is not None
    ]
    if strategies:
        lines += [
            "",
            "`fit(strategy='auto')` ran: " + ", ".join(strategies) + " (`epoch`: the whole "
            "epoch in one compiled `lax.scan`; `loop`: a Python loop of jitted steps). The "
            "`fit` epoch excludes its first epoch, which compiles.",
        ]
    lines += _throughput_section(run, cases, variants)
    lines += ["", "## First-call compile time (s: first call minus a steady step)", ""]
    lines += _header(cases)
    for label, framework, row in _with_variants(COMPILE_ROWS, variants):
        cells = [
            "—"
            if (value := _row(results, framework, c, row)) is None
            else f"{value['compile_s']:.2f}"
            for c in cases
        ]
        if any(cell != "—" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Peak memory of each process (MB: after the step measurements; whole run in brackets)",
        "",
        *_header(cases),
    ]
    for framework, per_case in results.items():
        cells = []
        for c in cases:
            result = per_case.get(c, {})
            if "peak_rss_mb" in result:
                cells.append(f"{result['peak_rss_mb_steps']:.0f} ({result['peak_rss_mb']:.0f})")
            else:
                cells.append("—")
        if any(cell != "—" for cell in cells):
            lines.append(f"| {_name(framework, variants)} | " + " | ".join(cells) + " |")
    notes = _not_measured(run, variants)
    if notes:
        lines += ["", "## Not measured", "", *notes]
    return "\n".join(lines) + "\n"


def _throughput_section(
    run: dict, cases: list[str], variants: dict[str, dict[str, str]]
) -> list[str]:
    """Samples/s and fraction of peak; the measured peaks; each step's FLOPs."""
    settings, results = run["settings"], run["results"]
    rows = _with_variants(STEP_ROWS, variants) + _with_variants(EPOCH_ROWS, variants)
    lines = [
        "",
        "## Throughput (samples/s; in brackets, the share of the peak matmul rate reached)",
        "",
        "The share is the step's FLOPs (XLA's cost analysis of the baseline's step, the same "
        "count for every framework) per sample, times samples/s, over the best rate of a "
        "square matmul in the same dtype measured in the same process (table below).",
        "",
        *_throughput_table(results, cases, rows, settings),
    ]
    flops = [f"{case_label(c)} {f / 1e9:.3g}" for c in cases if (f := step_flops(results, c))]
    if flops:
        lines += ["", f"GFLOP per step of {settings['batch']} samples: " + ", ".join(flops) + "."]
    peaks = []
    for framework, per_case in results.items():
        measured = [per_case.get(c, {}).get("peak_matmul") for c in cases]
        cells = [f"{p['flops_per_s'] / 1e9:,.0f}" if p else "—" for p in measured]
        if any(cell != "—" for cell in cells):
            peaks.append(f"| {_name(framework, variants)} | " + " | ".join(cells) + " |")
    if peaks:
        n = settings.get("peak_size") or (4096 if settings["device"] == "gpu" else 1024)
        lines += [
            "",
            f"### Peak matmul rate measured in each process (GFLOP/s; {n}x{n} @ {n}x{n} in the "
            "column's precision, best of 5 repetitions after warm-up)",
            "",
            *_header(cases),
            *peaks,
        ]
    return lines


def _not_measured(run: dict, variants: dict[str, dict[str, str]]) -> list[str]:
    notes = [f"- {name}: skipped: {reason}" for name, reason in run["skipped"].items()]
    for framework, per_case in run.get("skipped_cases", {}).items():
        by_reason: dict[str, list[str]] = {}
        for c, reason in per_case.items():
            by_reason.setdefault(reason, []).append(case_label(c))
        notes += [
            f"- {_name(framework, variants)}: {', '.join(labels)}: {reason}"
            for reason, labels in by_reason.items()
        ]
    for framework, per_case in run["results"].items():
        for c, result in per_case.items():
            notes += [f"- {framework} {c} {row}: skipped: {why}" for row, why in
                      result.get("skipped_rows", {}).items()]  # fmt: skip
            if "error" in result:
                notes.append(f"- {framework} {c}: failed: {result['error']}")
    return notes
