"""``python -m benchmarks.conv_algorithms``: each convolution algorithm on a grid of shapes.

    python -m benchmarks.conv_algorithms [--quick] [--reps N] [--out PATH]

For every shape of the grid (batch 128, stride 1; 28x28 and 14x14 maps; 1-64 input
and 6/8-64 output channels; 3x3 SAME and 5x5 VALID kernels) it times, in one
process, the jitted forward pass ``conv(x, w)`` and the jitted backward pass
``jax.vjp(conv, x, w)[1](g)`` (both gradients) of each algorithm that applies:
``xla`` (`lax.conv_general_dilated`), ``patches`` (`conv_by_patches`) and, for 3x3
kernels, ``winograd`` (`winograd_f2x3`, below). The algorithms and passes are
interleaved repetition by repetition (the order reversed on every other one) and
the medians are reported, beside the algorithm that the rule of
funcnets/layers/algorithms.py (`conv_algorithm`) picks, and what that pick costs
against the fastest algorithm of each shape.

Writes the markdown report to ``--out`` (default benchmarks/results/conv_algorithms.md)
and every repetition as JSON next to it. ``--quick`` measures 8 small shapes.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import operator
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcnets.layers.algorithms import PATCH_COST, conv_algorithm, conv_by_patches
from funcnets.layers.padding import explicit_padding

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "conv_algorithms.md"
BATCH = 128
MAPS = (28, 14)
IN_CHANNELS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64)
KERNELS = ((3, "SAME"), (5, "VALID"))
PASSES = ("backward", "forward")  # in the table: bwd, fwd
SLOWER = 1.05  # a pick more than 5% slower than the fastest algorithm counts as a miss

# Winograd F(2x2, 3x3): a 4x4 input tile d and a 3x3 kernel g give the 2x2 output tile
# Y = A^T [(G g G^T) * (B^T d B)] A  (elementwise product; Lavin & Gray 2016).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)


def out_channels(kernel: int) -> tuple[int, ...]:
    """The grid's output channels: 6 with 5x5 kernels (LeNet-5's C1), 8 with 3x3."""
    return (6 if kernel == 5 else 8, 16, 32, 64)


def winograd_f2x3(x: jax.Array, w: jax.Array, pads: Sequence[tuple[int, int]]) -> jax.Array:
    """A 3x3 convolution, stride and dilation 1, by Winograd's F(2x2, 3x3).

    Equal to ``lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=("NHWC",
    "HWIO", "NHWC"))`` in values and, by autodiff, gradients. Each output tile of 2x2
    comes from a 4x4 input tile ``d`` (tiles overlap by 2) and the 3x3 kernel ``g`` of
    each (input, output) channel pair as ``A^T [U * V] A`` summed over input channels,
    with ``U = G g G^T``, ``V = B^T d B``, ``*`` elementwise and

        B^T = [[1, 0, -1,  0],     G = [[  1,    0,   0],     A^T = [[1, 1,  1,  0],
               [0, 1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
               [0, -1, 1,  0],          [1/2, -1/2, 1/2],
               [0, 1,  0, -1]]          [  0,    0,   1]]

    so 16 multiplications per tile and channel pair (a batch of 16 matmuls over the
    channels) instead of 36. The transforms of the data and of the result are sums of
    strided slices (the matrices' entries are 0, +-1); ``U`` is a small einsum.

    Args:
        x: ``(batch, height, width, in)``; w: ``(3, 3, in, out)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(batch, height + top + bottom - 2, width + left + right - 2, out)``.
    """
    n, h, wd, _ = x.shape
    (top, bottom), (left, right) = pads
    oh, ow = h + top + bottom - 2, wd + left + right - 2
    th, tw = -(-oh // 2), -(-ow // 2)  # tiles per axis; an odd size's last tile overhangs
    padding = ((0, 0, 0), (top, bottom + 2 * th - oh, 0), (left, right + 2 * tw - ow, 0), (0, 0, 0))
    xp = lax.pad(x, jnp.zeros((), x.dtype), padding)
    # d[a][b]: element (a, b) of every input tile, (n, th, tw, in)
    d = [[xp[:, a : a + 2 * th : 2, b : b + 2 * tw : 2] for b in range(4)] for a in range(4)]
    columns = [_combine(B_T, [d[a][b] for a in range(4)]) for b in range(4)]  # B^T d: [b][i]
    v = jnp.stack([jnp.stack(_combine(B_T, [col[i] for col in columns])) for i in range(4)])
    u = jnp.einsum("ik,klco,jl->ijco", G.astype(w.dtype), w, G.astype(w.dtype))
    m = jnp.einsum("ijnhwc,ijco->ijnhwo", v, u)  # (4, 4, n, th, tw, out)
    rows = [_combine(A_T, list(m[:, j])) for j in range(4)]  # A^T m: [j][p]
    y = [jnp.stack(_combine(A_T, [row[p] for row in rows]), axis=3) for p in range(2)]
    y = jnp.stack(y, axis=2)  # (n, th, 2, tw, 2, out)
    return y.reshape(n, 2 * th, 2 * tw, -1)[:, :oh, :ow]


def _combine(matrix: np.ndarray, parts: Sequence[jax.Array]) -> list[jax.Array]:
    """``[sum_j matrix[i, j] * parts[j] for i]``, skipping zeros and multiplications by +-1."""
    sums = []
    for row in matrix:
        terms = [p if c == 1 else -p if c == -1 else c * p for c, p in zip(row, parts) if c]
        sums.append(functools.reduce(operator.add, terms))
    return sums


def grid(quick: bool) -> list[dict[str, Any]]:
    """The shapes measured: ``map``, ``kernel``, ``padding``, ``cin``, ``cout``."""
    if quick:  # both of the rule's picks, both kernels, on the small map
        return [
            dict(map=14, kernel=k, padding=pad, cin=cin, cout=cout)
            for k, pad in KERNELS
            for cin, cout in ((1, out_channels(k)[0]), (3, 16), (8, 32), (32, 16))
        ]
    return [
        dict(map=hw, kernel=k, padding=pad, cin=cin, cout=cout)
        for hw in MAPS
        for k, pad in KERNELS
        for cin in IN_CHANNELS
        for cout in out_channels(k)
    ]


def algorithms(shape: dict[str, Any], pads: tuple[tuple[int, int], ...]) -> dict[str, Callable]:
    """The convolutions that apply to ``shape``, each ``conv(x, w)``."""
    convs = {
        "xla": lambda x, w: lax.conv_general_dilated(
            x, w, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
        ),
        "patches": lambda x, w: conv_by_patches(x, w, (1, 1), pads, (1, 1)),
    }
    if shape["kernel"] == 3:
        convs["winograd"] = lambda x, w: winograd_f2x3(x, w, pads)
    return convs


def measure(shape: dict[str, Any], reps: int) -> dict[str, Any]:
    """Median ms of each algorithm's forward and backward pass, and every repetition."""
    hw, k = shape["map"], shape["kernel"]
    pads = explicit_padding(shape["padding"], (hw, hw), (k, k), (1, 1))
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (BATCH, hw, hw, shape["cin"]))
    w = jax.random.normal(keys[1], (k, k, shape["cin"], shape["cout"])) / np.sqrt(k * k)
    size = hw + sum(pads[0]) - k + 1
    g = jax.random.normal(keys[2], (BATCH, size, size, shape["cout"]))
    convs = algorithms(shape, pads)
    runs = {}
    for name, conv in convs.items():
        runs[name, "forward"] = (jax.jit(conv), (x, w))
        backward = jax.jit(lambda x, w, g, conv=conv: jax.vjp(conv, x, w)[1](g))
        runs[name, "backward"] = (backward, (x, w, g))
    outputs = {key: jax.block_until_ready(f(*args)) for key, (f, args) in runs.items()}  # compile
    reference = outputs["xla", "forward"]
    scale = float(jnp.max(jnp.abs(reference)))
    error = {
        name: float(jnp.max(jnp.abs(outputs[name, "forward"] - reference))) / scale
        for name in convs
    }
    if max(error.values()) > 1e-3:
        raise AssertionError(f"{shape}: an algorithm disagrees with XLA's: {error}")
    del outputs
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    order = list(runs)
    for rep in range(-1, reps):  # rep -1: a warm-up round, not kept
        for key in order if rep % 2 == 0 else order[::-1]:
            f, args = runs[key]
            start = time.perf_counter()
            jax.block_until_ready(f(*args))
            if rep >= 0:
                seconds[key].append(time.perf_counter() - start)
    ms = {
        p: {a: 1e3 * statistics.median(s) for (a, q), s in seconds.items() if q == p}
        for p in PASSES
    }
    reps_ms = {
        p: {a: [1e3 * t for t in s] for (a, q), s in seconds.items() if q == p} for p in PASSES
    }
    pick = conv_algorithm(shape["cin"], shape["cout"], 1, jnp.float32, jax.default_backend())
    return {**shape, "pads": pads, "rule": pick, "ms": ms, "reps_ms": reps_ms, "rel_error": error}


def times(result: dict[str, Any], which: str) -> dict[str, float]:
    """ms per algorithm for ``which`` of ``"backward"``, ``"forward"``, ``"both"`` (their sum)."""
    if which == "both":
        fwd, bwd = result["ms"]["forward"], result["ms"]["backward"]
        return {name: fwd[name] + bwd[name] for name in fwd}
    return result["ms"][which]


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pass: total time of the rule's picks and of XLA's over that of the fastest, misses."""
    out: dict[str, Any] = {}
    for which in ("backward", "forward", "both"):
        rows = [times(r, which) for r in results]
        fastest = [min(t.values()) for t in rows]
        picks = [t[r["rule"]] for t, r in zip(rows, results)]
        xla = [t["xla"] for t in rows]
        wino = [t["winograd"] / t["xla"] for t in rows if "winograd" in t]
        out[which] = {
            "fastest_ms": sum(fastest),
            "rule_regret": sum(picks) / sum(fastest),
            "xla_regret": sum(xla) / sum(fastest),
            "rule_misses": sum(p > SLOWER * f for p, f in zip(picks, fastest)),
            "xla_misses": sum(x > SLOWER * f for x, f in zip(xla, fastest)),
            "winograd_fastest": sum(t.get("winograd") == min(t.values()) for t in rows),
            "winograd_over_xla": [min(wino), max(wino)] if wino else None,
        }
    return out


def report(run: dict[str, Any]) -> str:
    """The markdown report of `main`'s result."""
    results, env = run["results"], run["env"]
    lines = [
        "# Convolution algorithms: forward and backward, per shape",
        "",
        f"`python -m benchmarks.conv_algorithms{' --quick' if run['quick'] else ''}`, "
        f"{env['date']}. Batch {BATCH}, float32, stride 1, NHWC; medians of {run['reps']} "
        "repetitions, the algorithms and passes interleaved in one process. Backward: "
        "`jax.vjp(conv, x, w)[1](g)`, both gradients; forward: `conv(x, w)`; each jitted.",
        f"Device: {env['device']}; {env['cpus']} CPUs visible; load average "
        f"{env['load_before']} before, {env['load_after']} after; jax {env['jax']}, "
        f"Python {env['python']}; XLA_FLAGS={env['xla_flags'] or '(unset)'}.",
        f"Rule: `conv_algorithm` of funcnets/layers/algorithms.py (PATCH_COST = {PATCH_COST}, "
        f"platform {env['backend']}).",
        "",
        "## Summary",
        "",
        "Regret: total time of the shapes with the rule's picks (or XLA's everywhere) over "
        "the total time with the fastest measured algorithm of each shape; misses: shapes "
        f"where that pick is more than {100 * (SLOWER - 1):.0f}% slower than the fastest, "
        f"of {len(results)}.",
        "",
        "| | backward | forward | forward + backward |",
        "|---|---|---|---|",
    ]
    s = run["summary"]
    cols = ("backward", "forward", "both")
    rows = (
        ("fastest everywhere, total ms", lambda c: f"{c['fastest_ms']:.1f}"),
        ("rule: regret", lambda c: f"**{c['rule_regret']:.3f}**"),
        ("rule: misses", lambda c: str(c["rule_misses"])),
        ("always XLA: regret", lambda c: f"{c['xla_regret']:.3f}"),
        ("always XLA: misses", lambda c: str(c["xla_misses"])),
        ("winograd fastest (shapes)", lambda c: str(c["winograd_fastest"])),
        ("winograd / XLA (3x3)", _ratio_range),
    )
    lines += [f"| {label} | " + " | ".join(cell(s[c]) for c in cols) + " |" for label, cell in rows]
    names = ("xla", "patches", "winograd")
    lines += [
        "",
        "## Per shape (ms)",
        "",
        "Bold: the fastest of a pass. Fastest, rule and rule / fastest: forward + backward.",
        "",
        "| map | kernel | in | out | "
        + " | ".join(f"{p[:1]}wd {n}" for p in PASSES for n in names)
        + " | fastest | rule | rule / fastest |",
        "|---|---|---|---|" + "---|" * (2 * len(names) + 3),
    ]
    for r in results:
        cells = [f"{r['map']}x{r['map']}", f"{r['kernel']}x{r['kernel']} {r['padding']}"]
        cells += [str(r["cin"]), str(r["cout"])]
        for p in PASSES:
            t = r["ms"][p]
            best = min(t.values())
            cells += [_ms(t[n], t[n] == best) if n in t else "-" for n in names]
        both = times(r, "both")
        fastest = min(both, key=both.__getitem__)
        cells += [fastest, r["rule"], f"{both[r['rule']] / both[fastest]:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ms(value: float, bold: bool) -> str:
    return f"**{value:.2f}**" if bold else f"{value:.2f}"


def _ratio_range(c: dict[str, Any]) -> str:
    low_high = c["winograd_over_xla"]
    return f"{low_high[0]:.2f}-{low_high[1]:.2f}" if low_high else "-"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 small shapes (a smoke test)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (default 5)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the markdown report")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    env = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": f"{device.platform} ({device.device_kind}), {platform.machine()}",
        "backend": jax.default_backend(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_before": _load(),
    }
    shapes = grid(args.quick)
    results = []
    start = time.perf_counter()
    for i, shape in enumerate(shapes, 1):
        results.append(measure(shape, args.reps))
        shown = "  ".join(f"{p} " + _line(results[-1]["ms"][p]) for p in PASSES)
        print(
            f"[{i}/{len(shapes)} {time.perf_counter() - start:.0f}s] {shape['map']}x{shape['map']} "
            f"{shape['kernel']}x{shape['kernel']} {shape['cin']}->{shape['cout']}: {shown}",
            file=sys.stderr,
            flush=True,
        )
        jax.clear_caches()
    env["load_after"] = _load()
    env["seconds"] = round(time.perf_counter() - start, 1)
    run = {"quick": args.quick, "reps": args.reps, "env": env, "results": results}
    run["summary"] = summary(results)
    text = report(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(run, indent=1) + "\n")
    print(text)
    print(f"written to {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return run


def _line(ms: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.2f}" for name, value in ms.items())


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
