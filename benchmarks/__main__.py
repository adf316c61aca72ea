"""``python -m benchmarks``: every framework on every workload, one process each, one report.

    python -m benchmarks [--quick] [--device cpu|gpu] [--workloads mlp,vgg,...]
                         [--precision float32,bf16] [--frameworks baseline,funcnets,torch,...]
                         [--torch-passive] [--torch-threads N] [--xla-flags=FLAGS]
                         [--out PATH]

Writes the markdown report to ``--out`` (default benchmarks/results/latest.md)
and the raw numbers next to it as JSON. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import measure, report, runner
from benchmarks.config import (
    FRAMEWORKS,
    PRECISIONS,
    QUICK_FRAMEWORKS,
    QUICK_WORKLOADS,
    WORKLOADS,
    Settings,
    case,
    split_case,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "latest.md"


def _names(text: str, allowed, what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {unknown or text!r}; choose from {','.join(allowed)}"
        )
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0].strip("`: ")
    )
    p.add_argument("--quick", action="store_true", help="few repetitions, short epochs")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument(
        "--workloads",
        type=lambda s: _names(s, WORKLOADS, "workloads"),
        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all; with --quick on "
        f"CPU, {','.join(QUICK_WORKLOADS)})",
    )
    p.add_argument(
        "--precision",
        type=lambda s: _names(s, PRECISIONS, "precisions"),
        help="comma-separated compute precisions, from float32,bf16 (default: float32 on "
        "CPU, float32,bf16 on GPU)",
    )
    p.add_argument(
        "--frameworks",
        type=lambda s: _names(s, FRAMEWORKS, "frameworks"),
        default=None,
        help=f"comma-separated, from {','.join(FRAMEWORKS)} (default: all; with --quick, "
        f"{','.join(QUICK_FRAMEWORKS)})",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report (and .json)")
    p.add_argument("--reps", type=int, help="timed repetitions of a step measurement")
    p.add_argument("--epoch-samples", type=int, help="samples per epoch (default 60,000)")
    p.add_argument("--epoch-reps", type=int, help="timed epochs")
    p.add_argument(
        "--rounds",
        type=int,
        help="run every framework's process this many times, interleaved, and take medians "
        "(steadier numbers on a shared machine; default 1)",
    )
    p.add_argument(
        "--torch-passive",
        action="store_true",
        help="also run torch with OMP_WAIT_POLICY=PASSIVE, as separately labelled rows",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        help="also run torch with torch.set_num_threads(N), as separately labelled rows",
    )
    p.add_argument(
        "--xla-flags",
        metavar="FLAGS",
        help="also run the baseline and funcnets with XLA_FLAGS=FLAGS (appended to the "
        "environment's XLA_FLAGS), as separately labelled rows; write it with '=', as in "
        "--xla-flags=--xla_cpu_enable_fast_math=false",
    )
    # Internal: one framework on one workload, in a process of its own.
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--settings", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return p


def worker(spec: str, settings: Settings, result: Path) -> None:
    framework, workload, precision = spec.split(":")
    measured = runner.run(framework, workload, settings, precision)
    result.write_text(json.dumps({**measured, "settings": settings.to_dict()}))


def spawn(
    framework: str,
    workload: str,
    precision: str,
    settings: Settings,
    env: dict[str, str] | None = None,
) -> dict:
    """Runs `worker` in a fresh process (its own memory and thread pools); returns its result.

    The process gets this one's environment (PyTorch's threads and OpenMP policy as the
    user has them), ``JAX_PLATFORMS`` for ``settings.device``, and ``env`` on top.
    """
    platforms = "cpu" if settings.device == "cpu" else "cuda"
    environment = {**os.environ, "JAX_PLATFORMS": platforms, **(env or {})}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "benchmarks", "--worker"]
        command += [f"{framework}:{workload}:{precision}", "--settings"]
        command += [json.dumps(settings.to_dict()), "--result", str(result)]
        done = subprocess.run(command, cwd=ROOT, env=environment, check=False)
        if done.returncode != 0 or not result.exists():
            return {"error": f"worker exited with status {done.returncode}"}
        return json.loads(result.read_text())


# The frameworks an --xla-flags setting applies to: the JAX processes it is meant to tune.
XLA_FLAGS_FRAMEWORKS = ("baseline", "funcnets")


def variants(args: argparse.Namespace, settings: Settings) -> dict[str, tuple]:
    """The extra processes of each case: ``key: (framework, setting, settings, environment)``.

    Every framework runs once as its users run it (its defaults, in the environment the
    run was started in: the headline rows); each non-default setting asked for runs that
    framework again in processes of its own, reported as rows labelled with ``setting``.
    ``environment`` goes on top of this process's (see `spawn`).
    """
    extra = {}
    if args.torch_passive:
        extra["torch_passive"] = ("torch", "OMP_WAIT_POLICY=PASSIVE", settings,
                                  {"OMP_WAIT_POLICY": "PASSIVE"})  # fmt: skip
    if args.torch_threads is not None:
        threaded = dataclasses.replace(settings, torch_threads=args.torch_threads)
        extra["torch_threads"] = ("torch", f"torch.set_num_threads({args.torch_threads})",
                                  threaded, {})  # fmt: skip
    if args.xla_flags:
        given = os.environ.get("XLA_FLAGS", "").strip()
        env = {"XLA_FLAGS": f"{given} {args.xla_flags}".strip()}
        for framework in XLA_FLAGS_FRAMEWORKS:
            extra[f"{framework}_xla_flags"] = (framework, f"XLA_FLAGS={args.xla_flags}",
                                               settings, env)  # fmt: skip
    return extra


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        worker(args.worker, Settings.from_dict(json.loads(args.settings)), args.result)
        return 0
    settings = Settings.for_run(
        args.quick,
        args.device,
        reps=args.reps,
        epoch_samples=args.epoch_samples,
        epoch_reps=args.epoch_reps,
        rounds=args.rounds,
    )
    start, load = time.perf_counter(), measure.load_average()
    if args.frameworks is None:
        args.frameworks = list(QUICK_FRAMEWORKS if args.quick else FRAMEWORKS)
    if args.workloads is None:
        args.workloads = list(QUICK_WORKLOADS if args.quick and args.device == "cpu" else WORKLOADS)
    if args.precision is None:
        args.precision = ["float32"] if args.device == "cpu" else list(PRECISIONS)
    skipped = {}
    for framework in args.frameworks:
        if (reason := runner.skip_reason(framework)) is not None:
            skipped[framework] = reason
            print(f"{framework}: skipped: {reason}", flush=True)
    extra = variants(args, settings)
    processes = []  # (results key, framework, settings, environment); variants after theirs
    for framework in args.frameworks:
        processes.append((framework, framework, settings, {}))
        processes += [(key, framework, s, env)
                      for key, (of, _, s, env) in extra.items() if of == framework]  # fmt: skip
    results: dict[str, dict] = {key: {} for key, *_ in processes}
    skipped_cases: dict[str, dict[str, str]] = {}
    cases = [case(w, p) for p in args.precision for w in args.workloads]
    for key_of_case in cases:
        workload, precision = split_case(key_of_case)
        rounds: dict[str, list[dict]] = {key: [] for key, *_ in processes}
        for round_ in range(settings.rounds):
            for key, framework, process_settings, env in processes:
                if framework in skipped:
                    continue
                reason = runner.case_skip_reason(framework, workload, precision)
                if reason is not None:
                    skipped_cases.setdefault(key, {})[key_of_case] = reason
                    continue
                print(f"{key} / {key_of_case} ({round_ + 1}) ...", flush=True)
                result = spawn(
                    framework, workload, precision, process_settings.for_workload(workload), env
                )
                if "skipped" in result:
                    skipped[framework] = result["skipped"]
                    print(f"{framework}: skipped: {result['skipped']}", flush=True)
                else:
                    rounds[key].append(result)
        for key, measured in rounds.items():
            if measured:
                results[key][key_of_case] = measure.merge_rounds(measured)
    run = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": f"{platform.machine()}, {os.cpu_count()} CPU cores visible",
        "load_average": load,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "wall_s": time.perf_counter() - start,
        "settings": settings.to_dict(),
        "workloads": args.workloads,
        "precisions": args.precision,
        "cases": cases,
        "variants": {
            key: {"framework": framework, "setting": setting}
            for key, (framework, setting, *_) in extra.items()
        },
        "skipped": skipped,
        "skipped_cases": skipped_cases,
        "results": {key: r for key, r in results.items() if r},
    }
    text = report.markdown(run)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(run, indent=1) + "\n")
    print(f"written to {args.out} and {args.out.with_suffix('.json')}")
    failed = any("error" in r for per in results.values() for r in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
