"""``python -m benchmarks``: every framework on every workload, one process each, one report.

    python -m benchmarks [--quick] [--device cpu|gpu] [--workloads mlp,lenet5,lstm]
                         [--frameworks baseline,funcnets,torch,flax,equinox] [--out PATH]

Writes the markdown report to ``--out`` (default benchmarks/results/latest.md)
and the raw numbers next to it as JSON. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
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
from benchmarks.config import FRAMEWORKS, QUICK_FRAMEWORKS, WORKLOADS, Settings

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
    p.add_argument("--quick", action="store_true", help="the whole run in under 2 minutes")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument(
        "--workloads",
        type=lambda s: _names(s, WORKLOADS, "workloads"),
        default=list(WORKLOADS),
        help=f"comma-separated, from {','.join(WORKLOADS)}",
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
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: per core)")
    # Internal: one framework on one workload, in a process of its own.
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--settings", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return p


def worker(spec: str, settings: Settings, result: Path) -> None:
    framework, workload = spec.split(":")
    result.write_text(json.dumps(runner.run(framework, workload, settings)))


def spawn(framework: str, workload: str, settings: Settings) -> dict:
    """Runs `worker` in a fresh process (its own memory and thread pools); returns its result."""
    env = dict(os.environ, JAX_PLATFORMS="cpu" if settings.device == "cpu" else "cuda")
    # Idle OpenMP threads (PyTorch's CPU pool) sleep instead of spinning: on a machine
    # shared with other work, spinning made a torch MLP step 10x slower. Export
    # OMP_WAIT_POLICY=ACTIVE to measure with OpenMP's default instead.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "benchmarks", "--worker", f"{framework}:{workload}"]
        command += ["--settings", json.dumps(settings.to_dict()), "--result", str(result)]
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        if done.returncode != 0 or not result.exists():
            return {"error": f"worker exited with status {done.returncode}"}
        return json.loads(result.read_text())


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
        torch_threads=args.torch_threads,
        rounds=args.rounds,
    )
    start, load = time.perf_counter(), measure.load_average()
    if args.frameworks is None:
        args.frameworks = list(QUICK_FRAMEWORKS if args.quick else FRAMEWORKS)
    skipped = {}
    for framework in args.frameworks:
        if (reason := runner.skip_reason(framework)) is not None:
            skipped[framework] = reason
            print(f"{framework}: skipped: {reason}", flush=True)
    frameworks = [f for f in args.frameworks if f not in skipped]
    results: dict[str, dict] = {framework: {} for framework in frameworks}
    for workload in args.workloads:
        rounds: dict[str, list[dict]] = {framework: [] for framework in frameworks}
        for round_ in range(settings.rounds):
            for framework in frameworks:
                if framework in skipped:
                    continue
                print(f"{framework} / {WORKLOADS[workload]} ({round_ + 1}) ...", flush=True)
                result = spawn(framework, workload, settings)
                if "skipped" in result:
                    skipped[framework] = result["skipped"]
                    print(f"{framework}: skipped: {result['skipped']}", flush=True)
                else:
                    rounds[framework].append(result)
        for framework, measured in rounds.items():
            if measured and framework not in skipped:
                results[framework][workload] = measure.merge_rounds(measured)
    run = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": f"{platform.machine()}, {os.cpu_count()} CPU cores visible",
        "load_average": load,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "wall_s": time.perf_counter() - start,
        "settings": settings.to_dict(),
        "workloads": args.workloads,
        "skipped": skipped,
        "results": {framework: r for framework, r in results.items() if r},
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
