"""The benchmark harness (benchmarks/) stays runnable, and its comparisons stay fair.

The baseline, hand-written in jax + optax, must compute exactly what the
funcnets network computes: from the same parameters (and BatchNorm
statistics), one step of each gives the same loss, the same new parameters and
the same new statistics, for every workload, and in bf16 too. The PyTorch
twins have the funcnets networks' parameter counts and logits. A tiny
configuration of the harness runs in-process, through to the markdown report.
"""

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root holds benchmarks/

from benchmarks import __main__ as cli  # noqa: E402
from benchmarks import baseline, data, measure, report, runner, workloads  # noqa: E402
from benchmarks.config import JAX_FRAMEWORK_WORKLOADS, WORKLOADS, Settings  # noqa: E402

BATCH = 4


def start(workload: str, precision: str = "float32") -> fn.train.TrainState:
    """A `TrainState` of the workload's network with random params, made without running init.

    (The first eager init of a network costs seconds of small compiles; values do not matter.)
    BatchNorm's running statistics get random values too, so that their update is checked.
    """
    shapes = jax.eval_shape(lambda: workloads.train_state(workload, 0, BATCH, precision))
    rng = np.random.default_rng(0)

    def draw(leaf):  # N(0, 1 / fan_in) weights, small random biases
        fan_in = np.prod(leaf.shape[:-1]) if len(leaf.shape) > 1 else 100.0
        return jnp.asarray(rng.standard_normal(leaf.shape, np.float32) / np.sqrt(fan_in))

    params = jax.tree.map(draw, shapes.params)
    state = jax.tree.map(lambda leaf: jnp.asarray(rng.random(leaf.shape, np.float32)), shapes.state)
    opt_state = workloads.optimizer().init(params)
    return fn.train.TrainState(params, state, opt_state, jnp.int32(0), jax.random.key(0))


def one_step_each(workload: str, precision: str = "float32"):
    """One funcnets step and one baseline step from the same point, in the baseline's layout."""
    ts = start(workload, precision)
    x, y = map(jnp.asarray, data.synthetic(BATCH, seed=1))
    new_ts, metrics = jax.jit(workloads.step(workload, precision))(ts, (x, y))
    params, state = baseline.from_funcnets(workload, ts.params, ts.state)
    step, tx = baseline.make_step(workload, precision=precision)
    new_params, new_state, _, loss = step(params, state, tx.init(params), x, y)
    expected = baseline.from_funcnets(workload, new_ts.params, new_ts.state)
    return (params, (new_params, new_state), loss), (expected, metrics["loss"])


# Slow: the ResNet-20 and VGG steps take 5-15 s to compile. (This check of the VGG step
# found MaxPool2D's wrong gradient under jit after a BatchNorm on XLA CPU, since fixed:
# tests/layers/test_conv_pool_reference.py.)
BIG = pytest.mark.slow


@pytest.mark.parametrize(
    "workload",
    [
        "mlp", "lenet5", "lenet5_relu", "lstm", "gru",
        pytest.param("resnet20", marks=BIG),
        pytest.param("vgg", marks=BIG),
    ],
)  # fmt: skip
def test_baseline_step_equals_funcnets_step(workload):
    (params, got, loss), (expected, funcnets_loss) = one_step_each(workload)

    np.testing.assert_allclose(loss, funcnets_loss, rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    # Adam's first update is lr * g / (|g| + eps), about lr * sign(g): where a gradient is
    # ~0, float summation order (XLA's convolution vs funcnets' patches matmul) can move a
    # weight by up to 2 lr. So: all within 2 lr, and all but 0.5% of weights to 1e-5.
    # The new BatchNorm statistics (the second element) agree to 1e-5.
    for got_leaf, want in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got_leaf, want, atol=2e-3)
        assert np.mean(~np.isclose(got_leaf, want, rtol=1e-5, atol=1e-5)) < 5e-3
    for got_leaf, want in zip(jax.tree.leaves(got[1]), jax.tree.leaves(expected[1])):
        np.testing.assert_allclose(got_leaf, want, rtol=1e-5, atol=1e-5)
    # The step moved the params (Adam's first step is ~lr per weight).
    assert not np.allclose(jax.tree.leaves(got[0])[0], jax.tree.leaves(params)[0])


@pytest.mark.parametrize(
    "workload", ["mlp", pytest.param("lenet5_relu", marks=BIG), pytest.param("gru", marks=BIG)]
)
def test_baseline_bf16_step_equals_funcnets_bf16_step(workload):
    """In bf16 both compute in bfloat16 around float32 master params: the same loss."""
    (_, (new_params, _), loss), ((expected, _), funcnets_loss) = one_step_each(workload, "bf16")
    np.testing.assert_allclose(loss, funcnets_loss, rtol=1e-3)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(new_params))
    for got, want in zip(jax.tree.leaves(new_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, atol=2e-3)  # within Adam's 2 lr, as above


def test_step_flops_count_every_time_step():
    """XLA's cost analysis of the baseline step: the matmuls of all layers, all 28 time steps."""
    batch = 128  # shapes only: nothing is computed
    x = jax.ShapeDtypeStruct((batch, 28, 28, 1), jnp.float32)
    y = jax.ShapeDtypeStruct((batch,), jnp.int32)

    def flops(workload):
        shapes = jax.eval_shape(lambda: workloads.train_state(workload, 0, batch))
        return baseline.step_flops(workload, "float32", *baseline.from_funcnets(
            workload, shapes.params, shapes.state), x, y)  # fmt: skip

    forward = 2 * batch * (784 * 512 + 512 * 512 + 512 * 10)  # the MLP's matmuls
    assert 2 * forward < flops("mlp") < 3 * forward  # + weight and (most) input gradients
    forward = 28 * 2 * batch * (28 + 128) * 4 * 128  # x_t @ wi + h @ wh, 28 time steps
    assert 2.5 * forward < flops("lstm") < 3.5 * forward


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_torch_twin_has_the_same_parameters_and_logits(workload):
    torch = pytest.importorskip("torch")
    from benchmarks import torch_impl

    ts = start(workload)
    model = torch_impl.network(workload)
    count = sum(p.numel() for p in model.parameters())
    extra = 4 * 128 if workload == "lstm" else 0  # PyTorch's LSTM has two bias vectors
    assert count == sum(leaf.size for leaf in jax.tree.leaves(ts.params)) + extra
    if workload == "resnet20":  # stride-2 convolutions pad differently: the same shapes only
        return
    x, y = data.synthetic(BATCH, seed=1)
    # train=True: BatchNorm normalises with the batch's statistics, as a torch model in train().
    logits, _ = workloads.network(workload).apply(ts.params, ts.state, jnp.asarray(x), train=True)
    torch_impl.load_funcnets_params(model, workload, jax.tree.map(np.asarray, ts.params))
    xt, _ = torch_impl.inputs(workload, x, y, "cpu")
    with torch.no_grad():
        np.testing.assert_allclose(model(xt).numpy(), logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("framework", ["flax", "equinox"])
@pytest.mark.parametrize("workload", JAX_FRAMEWORK_WORKLOADS)
def test_flax_and_equinox_twins_train(framework, workload):
    """Each twin's step runs on MNIST-shaped batches and lowers the loss on a fixed batch."""
    pytest.importorskip(framework)
    from benchmarks import jax_frameworks

    step, carry = jax_frameworks.STEPS[framework](workload, seed=0)
    x, y = map(jnp.asarray, data.synthetic(16, seed=1))
    losses = []
    for _ in range(8):
        carry = step(carry, (x, y))
        losses.append(float(carry[-1]))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_tiny_run_through_the_report(capsys):
    settings = Settings(
        reps=1, steps_per_rep=1, warmup_steps=0, step_batches=1, epoch_samples=16, epoch_reps=1,
        batch=8, donated=False, peak_size=64,
    )  # fmt: skip
    results = {  # the baseline in bf16, funcnets in float32 (a bf16 fit compiles 3x longer)
        "baseline": {"mlp/bf16": runner.run("baseline", "mlp", settings, "bf16")},
        "funcnets": {"mlp": runner.run("funcnets", "mlp", settings)},
    }
    rows = {**results["baseline"]["mlp/bf16"]["rows"], **results["funcnets"]["mlp"]["rows"]}
    assert {"baseline", "funcnets", "epoch_loop", "epoch_fit", "ab_epoch_loop"} <= set(rows)
    assert {"ab_baseline", "ab_baseline_donated", "funcnets_donated"} <= set(rows)
    assert rows["epoch_loop"]["epoch_s"] > 0 and rows["epoch_fit"]["epoch_s"] > 0
    assert rows["epoch_fit"]["strategy"] == "epoch"  # an MLP on CPU: the whole-epoch scan
    bf16, f32 = results["baseline"]["mlp/bf16"], results["funcnets"]["mlp"]
    assert bf16["peak_matmul"]["dtype"] == "bfloat16" and f32["peak_matmul"]["dtype"] == "float32"
    assert bf16["peak_matmul"]["size"] == 64 and f32["peak_matmul"]["flops_per_s"] > 0
    assert f32["step_flops"] < bf16["step_flops"]  # the same matmuls; bf16 adds its casts
    assert runner.run("flax", "vgg", settings) == {"skipped": runner.case_skip_reason(
        "flax", "vgg", "float32")}  # fmt: skip
    text = report.markdown(
        {
            "date": "today", "host": "test", "load_average": None, "wall_s": 1.0,
            "settings": settings.to_dict(), "workloads": ["mlp"], "precisions": ["float32", "bf16"],
            "cases": ["mlp", "mlp/bf16"], "omp_wait_policy": None,
            "variants": {"torch_passive": {"framework": "torch", "setting": "OMP_WAIT_POLICY=PASSIVE"}},
            "skipped": {"torch": "torch not installed"},
            "skipped_cases": {"flax": {"vgg": "no flax mirror", "gru": "no flax mirror"}},
            "results": results,
        }
    )  # fmt: skip
    assert "| | MLP 784-512-512-10 | MLP 784-512-512-10 (bf16) |" in text
    assert "| baseline: jax + optax, jit | — | **1.00** (" in text
    assert "| `fn.train.fit` | " in text and "| funcnets ÷ baseline, both jit | " in text
    assert "- torch: skipped: torch not installed" in text
    assert "- Flax NNX: VGG-style CNN, GRU 28x28, h128: no flax mirror" in text
    # Throughput: samples/s and the share of the peak measured in the row's own process.
    line = next(t for t in text.splitlines() if t.startswith("| funcnets: `make_step`, jit |")
                and "%)" in t)  # fmt: skip
    samples_per_s = settings.batch / (rows["funcnets"]["step_ms"] / 1e3)
    share = f32["step_flops"] / settings.batch * samples_per_s / f32["peak_matmul"]["flops_per_s"]
    assert f"| {samples_per_s:,.0f} ({100 * share:.1f}%) | — |" in line
    assert "GFLOP per step of 8 samples: MLP 784-512-512-10 " in text


def test_variant_rows_are_labelled_and_relative_to_the_headline_baseline():
    """Each variant process's rows repeat its framework's, labelled, in every table."""

    def result(row, step_ms, compile_s=0.5, ab_ms=None):
        rows = {row: {"step_ms": step_ms, "compile_s": compile_s}}
        if ab_ms is not None:  # the baseline's step timed in the funcnets process
            rows["ab_baseline"] = {"step_ms": ab_ms, "compile_s": compile_s}
        return {"mlp": {"rows": rows, "peak_rss_mb_steps": 100.0, "peak_rss_mb": 200.0}}

    flags = "XLA_FLAGS=--xla_cpu_enable_fast_math=false"
    run = {
        "date": "today", "host": "test", "load_average": None, "wall_s": 1.0,
        "settings": Settings(batch=8).to_dict(), "workloads": ["mlp"], "cases": ["mlp"],
        "omp_wait_policy": None, "xla_flags": None, "skipped": {}, "skipped_cases": {},
        "variants": {
            "baseline_xla_flags": {"framework": "baseline", "setting": flags},
            "funcnets_xla_flags": {"framework": "funcnets", "setting": flags},
            "torch_passive": {"framework": "torch", "setting": "OMP_WAIT_POLICY=PASSIVE"},
        },
        "results": {
            "baseline": result("baseline", 4.0),
            "baseline_xla_flags": result("baseline", 2.0, compile_s=0.25),
            "funcnets": result("funcnets", 3.0, ab_ms=4.0),
            "funcnets_xla_flags": result("funcnets", 1.0, compile_s=0.4, ab_ms=2.0),
            "torch": result("torch", 8.0), "torch_passive": result("torch", 6.0),
        },
    }  # fmt: skip
    text = report.markdown(run)
    lines = text.splitlines()
    assert "| baseline: jax + optax, jit | **1.00** (4 ms) |" in lines  # the headline reference
    assert f"| baseline: jax + optax, jit, {flags} | 0.50 |" in lines  # ratio to the headline
    assert f"| funcnets: `make_step`, jit, {flags} | 0.25 |" in lines
    assert "| torch eager, default Adam (for-loop on CPU, foreach on CUDA) | 2.00 |" in lines
    assert ("| torch eager, default Adam (for-loop on CPU, foreach on CUDA), "
            "OMP_WAIT_POLICY=PASSIVE | 1.50 |") in lines  # fmt: skip
    # Same process: each funcnets process's own ratio, the flagged one labelled.
    assert "| funcnets ÷ baseline, both jit | 0.75 |" in lines
    assert f"| funcnets ÷ baseline, both jit, {flags} | 0.50 |" in lines
    assert f"| baseline, {flags} | 0.25 |" in lines  # compile time
    assert f"| funcnets `make_step`, {flags} | 0.40 |" in lines
    assert f"| baseline (jax + optax), {flags} | 100 (200) |" in lines  # peak memory
    assert "| torch, OMP_WAIT_POLICY=PASSIVE | 100 (200) |" in lines
    samples_per_s = 8 / 2.0e-3  # throughput of the flagged baseline step
    assert f"| baseline: jax + optax, jit, {flags} | {samples_per_s:,.0f} |" in lines
    assert f"`{flags}` (baseline, funcnets)" in text
    assert "funcnets never sets `XLA_FLAGS` itself" in text
    without = report.markdown({**run, "variants": {}})
    assert flags not in without and "OMP_WAIT_POLICY=PASSIVE" not in without


def test_command_line(monkeypatch):
    args = cli.parser().parse_args(["--quick", "--workloads", "lstm,vgg", "--device", "gpu"])
    assert args.workloads == ["lstm", "vgg"] and args.quick and args.device == "gpu"
    args = cli.parser().parse_args(["--precision", "bf16,float32", "--torch-passive"])
    assert args.precision == ["bf16", "float32"] and args.torch_passive
    for bad in (["--frameworks", "tensorflow"], ["--precision", "fp8"], ["--workloads", "vit"]):
        with pytest.raises(SystemExit):
            cli.parser().parse_args(bad)
    variants = cli.variants(cli.parser().parse_args(["--torch-threads", "1"]), Settings())
    assert list(variants) == ["torch_threads"]  # the headline processes are not variants
    assert variants["torch_threads"][2].torch_threads == 1
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    flag = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
    args = cli.parser().parse_args([f"--xla-flags={flag}", "--torch-passive"])
    variants = cli.variants(args, Settings())
    passive = ("torch", "OMP_WAIT_POLICY=PASSIVE", Settings(), {"OMP_WAIT_POLICY": "PASSIVE"})
    assert variants["torch_passive"] == passive
    env = {"XLA_FLAGS": f"--xla_dump_to=/tmp/x {flag}"}  # appended to the environment's
    for framework in ("baseline", "funcnets"):
        want = (framework, f"XLA_FLAGS={flag}", Settings(), env)
        assert variants[f"{framework}_xla_flags"] == want
    assert Settings.for_run(True).epoch_samples < Settings.for_run(False).epoch_samples == 60_000
    assert Settings(device="gpu").matmul_size == 4096 and Settings().matmul_size == 1024
    assert runner.skip_reason("baseline") is None
    installed = importlib.util.find_spec("equinox") is not None
    assert (runner.skip_reason("equinox") is None) == installed
    assert runner.case_skip_reason("equinox", "resnet20", "float32") is not None
    assert runner.case_skip_reason("flax", "mlp", "bf16") is not None
    assert runner.case_skip_reason("torch", "resnet20", "bf16") is None


def test_rounds_merge_to_medians():
    def result(ms, peak):
        rows = {"baseline": {"step_ms": ms, "reps_ms": [ms], "strategy": "loop"}}
        matmul = {"flops_per_s": peak, "size": 8}
        return {"rows": rows, "peak_rss_mb_steps": peak, "peak_rss_mb": peak, "peak_matmul": matmul}

    merged = measure.merge_rounds([result(3.0, 10.0), {"error": "x"}, result(1.0, 30.0)])
    merged = measure.merge_rounds([merged, result(2.0, 20.0)])
    assert merged["rows"]["baseline"]["step_ms"] == 2.0
    assert sorted(merged["rows"]["baseline"]["reps_ms"]) == [1.0, 2.0, 3.0]
    assert merged["rows"]["baseline"]["strategy"] == "loop" and merged["peak_rss_mb"] == 30.0
    assert merged["peak_matmul"]["flops_per_s"] == 30.0


def test_profile_lists_the_ops_of_a_step(capsys):
    """`python -m benchmarks.profile` traces a step and prints its ops, largest first."""
    from benchmarks import profile

    profile.main(["mlp", "--steps", "2", "--top", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("MLP 784-512-512-10: ") and "ms of op time per step" in lines[0]
    shares = [float(line.split()[2].rstrip("%")) for line in lines[1:]]
    assert 1 <= len(shares) <= 3 and shares == sorted(shares, reverse=True) and shares[0] > 0
    with pytest.raises(SystemExit):
        profile.main(["mlp", "--steps", "0"])


@pytest.mark.parametrize(
    "shape, out, pads",
    [((2, 5, 6, 3), 4, ((1, 1), (1, 1))), ((1, 7, 7, 2), 3, ((0, 0), (0, 0)))],
    ids=["same", "valid"],
)
def test_winograd_matches_xla_convolution(shape, out, pads):
    """`winograd_f2x3` (benchmarks/conv_algorithms.py) is a 3x3 convolution, gradients too.

    Odd output sizes included (5x5, 5x6): the last 2x2 tile of such an axis overhangs.
    """
    from benchmarks.conv_algorithms import winograd_f2x3

    def xla(x, w):
        dims = ("NHWC", "HWIO", "NHWC")
        return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=dims)

    def winograd(x, w):
        return winograd_f2x3(x, w, pads)

    @jax.jit  # one compile: eagerly, the many small ops take seconds
    def values_and_gradients(x, w, g):
        def of(conv):
            y, pullback = jax.vjp(conv, x, w)
            return (y, *pullback(g))

        return of(winograd), of(xla)

    rng = np.random.default_rng(0)
    oh, ow = (size + lo + hi - 2 for size, (lo, hi) in zip(shape[1:3], pads))
    x, w, g = (
        rng.standard_normal(s, np.float32)
        for s in (shape, (3, 3, shape[-1], out), (shape[0], oh, ow, out))
    )
    ours, ref = values_and_gradients(x, w, g)
    assert ours[0].shape == (shape[0], oh, ow, out) and oh % 2 == 1
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_heavy_cpu_workloads_get_their_own_sizes_unless_given():
    from benchmarks.config import CPU_HEAVY_WORKLOADS, Settings

    full = Settings.for_run(False)
    vgg = full.for_workload("vgg")
    assert (vgg.steps_per_rep, vgg.epoch_samples) == tuple(CPU_HEAVY_WORKLOADS["vgg"].values())
    assert full.for_workload("mlp") == full
    assert Settings.for_run(True).for_workload("vgg") == Settings.for_run(True)  # --quick
    assert Settings.for_run(False, "gpu").for_workload("vgg").epoch_samples == 60_000
    given = Settings.for_run(False, epoch_samples=1_000).for_workload("resnet20")
    assert (given.epoch_samples, given.steps_per_rep) == (1_000, 5)
    assert Settings.from_dict(given.to_dict()) == given


def test_readme_speed_table_is_rewritten_from_a_run():
    from benchmarks import readme

    rows = {"funcnets_donated": {"step_ms": 3.0, "compile_s": 0.4},
            "ab_baseline_donated": {"step_ms": 2.5}, "epoch_fit": {"compile_s": 1.2}}  # fmt: skip
    run = {
        "cases": ["mlp"],
        "results": {
            "funcnets": {"mlp": {"rows": rows}},
            "baseline": {"mlp": {"rows": {"baseline_donated": {"step_ms": 2.4}}}},
            "torch": {
                "mlp": {"rows": {"torch_fused": {"step_ms": 4.0}, "torch": {"step_ms": 6.0}}}
            },
        },
    }
    text = readme.rewrite(f"intro\n{readme.START}\nold\n{readme.END}\nrest\n", run)
    assert "old" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| MLP 784-512-512-10 | 2.400 | 1.20 | 0.75 | 0.50 | 0.40 | 1.20 |" in text
    with pytest.raises(ValueError, match="speed-table"):
        readme.rewrite("no markers", run)
