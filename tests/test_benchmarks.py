"""The benchmark harness (benchmarks/) stays runnable, and its comparisons stay fair.

The baseline, hand-written in jax + optax, must compute exactly what the
funcnets network computes: from the same parameters, one step of each gives
the same loss and the same new parameters. A tiny configuration of the
harness runs in-process, through to the markdown report.
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
from benchmarks import baseline, data, report, runner, workloads  # noqa: E402
from benchmarks.config import WORKLOADS, Settings  # noqa: E402

BATCH = 4


def start(workload: str) -> fn.train.TrainState:
    """A `TrainState` of the workload's network with random params, made without running init.

    (The first eager init of a network costs seconds of small compiles; values do not matter.)
    """
    shapes = jax.eval_shape(lambda: workloads.train_state(workload, seed=0, batch=BATCH))
    rng = np.random.default_rng(0)

    def draw(leaf):  # N(0, 1 / fan_in) weights, small random biases
        fan_in = np.prod(leaf.shape[:-1]) if len(leaf.shape) > 1 else 100.0
        return jnp.asarray(rng.standard_normal(leaf.shape, np.float32) / np.sqrt(fan_in))

    params = jax.tree.map(draw, shapes.params)
    opt_state = workloads.optimizer().init(params)
    return fn.train.TrainState(params, shapes.state, opt_state, jnp.int32(0), jax.random.key(0))


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_baseline_step_equals_funcnets_step(workload):
    ts = start(workload)
    x, y = data.synthetic(BATCH, seed=1)
    x, y = jnp.asarray(x), jnp.asarray(y)

    new_ts, metrics = jax.jit(workloads.step(workload))(ts, (x, y))
    params = baseline.from_funcnets(workload, ts.params)
    step, tx = baseline.make_step(workload)
    new_params, _, loss = step(params, tx.init(params), x, y)

    np.testing.assert_allclose(loss, metrics["loss"], rtol=1e-5, atol=1e-5)
    expected = baseline.from_funcnets(workload, new_ts.params)
    assert jax.tree.structure(new_params) == jax.tree.structure(expected)
    # Adam's first update is lr * g / (|g| + eps), about lr * sign(g): where a gradient is
    # ~0, float summation order (XLA's convolution vs funcnets' patches matmul) can move a
    # weight by up to 2 lr. So: all within 2 lr, and all but 0.1% of weights to 1e-5.
    for got, want in zip(jax.tree.leaves(new_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, atol=2e-3)
        assert np.mean(~np.isclose(got, want, rtol=1e-5, atol=1e-5)) < 1e-3
    # The step moved the params (Adam's first step is ~lr per weight).
    assert not np.allclose(jax.tree.leaves(new_params)[0], jax.tree.leaves(params)[0])


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_torch_twin_computes_the_same_loss(workload):
    torch = pytest.importorskip("torch")
    from benchmarks import torch_impl

    ts = start(workload)
    x, y = data.synthetic(BATCH, seed=1)
    logits, _ = workloads.network(workload).apply(ts.params, ts.state, jnp.asarray(x))
    model = torch_impl.network(workload)
    torch_impl.load_funcnets_params(model, workload, jax.tree.map(np.asarray, ts.params))
    xt, yt = torch_impl.inputs(workload, x, y, "cpu")
    with torch.no_grad():
        np.testing.assert_allclose(model(xt).numpy(), logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("framework", ["flax", "equinox"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
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
        batch=8, donated=False,
    )  # fmt: skip
    results = {
        framework: {"mlp": runner.run(framework, "mlp", settings)}
        for framework in ("baseline", "funcnets")
    }
    rows = {**results["baseline"]["mlp"]["rows"], **results["funcnets"]["mlp"]["rows"]}
    assert {"baseline", "funcnets", "epoch_loop", "epoch_fit", "ab_epoch_loop"} <= set(rows)
    assert {"ab_baseline", "ab_baseline_donated", "funcnets_donated"} <= set(rows)
    assert rows["epoch_loop"]["epoch_s"] > 0 and rows["epoch_fit"]["epoch_s"] > 0
    assert rows["epoch_fit"]["strategy"] == "epoch"  # an MLP on CPU: the whole-epoch scan
    text = report.markdown(
        {
            "date": "today", "host": "test", "load_average": None, "wall_s": 1.0,
            "settings": settings.to_dict(), "workloads": ["mlp"],
            "skipped": {"torch": "torch not installed"}, "results": results,
        }
    )  # fmt: skip
    assert "| baseline: jax + optax, jit | **1.00** (" in text
    assert "| `fn.train.fit` | " in text
    assert "| funcnets ÷ baseline, both jit | " in text
    assert "- torch: skipped: torch not installed" in text


def test_command_line():
    args = cli.parser().parse_args(["--quick", "--workloads", "lstm,mlp", "--device", "gpu"])
    assert args.workloads == ["lstm", "mlp"] and args.quick and args.device == "gpu"
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--frameworks", "tensorflow"])
    assert Settings.for_run(True).epoch_samples < Settings.for_run(False).epoch_samples == 60_000
    assert runner.skip_reason("baseline") is None
    installed = importlib.util.find_spec("equinox") is not None
    assert (runner.skip_reason("equinox") is None) == installed


def test_rounds_merge_to_medians():
    from benchmarks import measure

    def result(ms, peak):
        rows = {"baseline": {"step_ms": ms, "reps_ms": [ms], "strategy": "loop"}}
        return {"rows": rows, "peak_rss_mb_steps": peak, "peak_rss_mb": peak}

    merged = measure.merge_rounds([result(3.0, 10.0), {"error": "x"}, result(1.0, 30.0)])
    merged = measure.merge_rounds([merged, result(2.0, 20.0)])
    assert merged["rows"]["baseline"]["step_ms"] == 2.0
    assert sorted(merged["rows"]["baseline"]["reps_ms"]) == [1.0, 2.0, 3.0]
    assert merged["rows"]["baseline"]["strategy"] == "loop" and merged["peak_rss_mb"] == 30.0


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
