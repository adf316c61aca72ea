"""One framework on one workload, measured inside its own process.

`run` is what a worker process (``python -m benchmarks --worker ...``) calls.
Each framework's imports happen inside its function, so a process holds only
its own framework's runtime, memory and thread pools. The step measurements
come first, on a few small batches, and the peak memory is read right after
them; the epoch measurements (on ``epoch_samples`` samples) follow.
"""

from __future__ import annotations

import importlib.util
import platform
import statistics
import time
from collections.abc import Callable

from benchmarks import data, measure
from benchmarks.config import JAX_FRAMEWORK_WORKLOADS, Settings

OPTIONAL = {"flax": "flax", "equinox": "equinox"}  # framework -> module to import


def run(framework: str, workload: str, settings: Settings, precision: str = "float32") -> dict:
    """``{"rows": {row: timings}, "peak_rss_mb_steps", "peak_rss_mb", "versions", ...}``.

    Also ``"peak_matmul"`` (the best rate of a square matmul in ``precision``,
    measured in this process) and, for the baseline and funcnets,
    ``"step_flops"`` (`baseline.step_flops`). Or ``{"skipped": reason}`` when
    the framework is not installed or has no such workload or precision.
    """
    if (reason := case_skip_reason(framework, workload, precision)) is not None:
        return {"skipped": reason}
    if framework == "baseline":
        result = run_baseline(workload, settings, precision)
    elif framework == "funcnets":
        result = run_funcnets(workload, settings, precision)
    elif framework == "torch":
        try:
            from benchmarks import torch_impl
        except ImportError as error:
            return {"skipped": f"torch not installed ({error})"}
        result = torch_impl.run(workload, settings, precision)
    elif framework in OPTIONAL:
        if (reason := skip_reason(framework)) is not None:
            return {"skipped": reason}
        result = run_jax_framework(framework, workload, settings)
    else:
        raise ValueError(f"unknown framework {framework!r}")
    result["peak_rss_mb"] = measure.peak_rss_mb()
    result["load_average"] = measure.load_average()
    result["versions"]["python"] = platform.python_version()
    return result


def skip_reason(framework: str) -> str | None:
    """Why ``framework`` cannot run here, or None (checked without importing it)."""
    if framework == "torch" and importlib.util.find_spec("torch") is None:
        return "torch not installed"
    if framework in OPTIONAL and importlib.util.find_spec(OPTIONAL[framework]) is None:
        return f"{framework} not installed"
    return None


def case_skip_reason(framework: str, workload: str, precision: str) -> str | None:
    """Why ``framework`` has no measurement of ``workload`` in ``precision``, or None.

    Flax and Equinox mirror the first three workloads only, in float32.
    """
    if framework in OPTIONAL and workload not in JAX_FRAMEWORK_WORKLOADS:
        return f"no {framework} mirror (written for {', '.join(JAX_FRAMEWORK_WORKLOADS)} only)"
    if framework in OPTIONAL and precision != "float32":
        return f"the {framework} mirrors run float32 only"
    return None


def _jax_setup(workload: str, settings: Settings, precision: str = "float32"):
    """Imports, the initial funcnets state, and the pre-made device batches of the steps."""
    import jax

    from benchmarks import workloads

    ts = workloads.train_state(workload, settings.seed, settings.batch, precision)
    x, y = data.synthetic(settings.batch * settings.step_batches, settings.seed + 1)
    batches = [jax.device_put(batch) for batch in data.batches(x, y, settings.batch)]
    return ts, jax.block_until_ready(batches)


def jax_peak_matmul(settings: Settings, precision: str) -> dict:
    """The best rate of a jitted ``a @ b`` for square ``settings.matmul_size`` matrices."""
    import jax
    import jax.numpy as jnp

    from benchmarks.baseline import COMPUTE_DTYPES

    n, dtype = settings.matmul_size, COMPUTE_DTYPES[precision]
    a, b = jax.random.normal(jax.random.key(settings.seed), (2, n, n), dtype)
    matmul = jax.jit(jnp.matmul)
    rate = measure.peak_rate(lambda: matmul(a, b), jax.block_until_ready, 2.0 * n**3)
    return {"flops_per_s": rate, "size": n, "dtype": jnp.dtype(dtype).name}


def _jax_versions() -> dict:
    import jax
    import jaxlib
    import optax

    device = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "device": device.device_kind,
    }


def _epoch_batches(settings: Settings) -> list:
    import jax

    x, y = data.synthetic(settings.epoch_samples, settings.seed + 2)
    return jax.block_until_ready([jax.device_put(b) for b in data.batches(x, y, settings.batch)])


def _baseline_carry(start, tx) -> tuple:
    """``(params, state, opt_state, loss)`` from fresh copies of ``start = (params, state)``.

    (A donated step consumes its inputs.)
    """
    import jax
    import jax.numpy as jnp

    params, state = jax.tree.map(jnp.copy, start)
    return params, state, tx.init(params), jnp.zeros(())


def run_baseline(workload: str, settings: Settings, precision: str = "float32") -> dict:
    """The hand-written jax + optax step, plain and donated; the Python-loop epoch."""
    import jax

    from benchmarks import baseline

    ts, batches = _jax_setup(workload, settings, precision)
    start = baseline.from_funcnets(workload, ts.params, ts.state)
    rows, steps = {}, {}

    for row, donate in (("baseline", False), ("baseline_donated", True))[: 1 + settings.donated]:
        steps[row], tx = baseline.make_step(workload, donate, precision)
        rows[row], _ = measure.time_steps(
            _baseline_caller(steps[row]),
            _baseline_carry(start, tx),
            batches,
            settings,
            jax.block_until_ready,
        )
        print(f"  baseline {workload} {row}: {rows[row]['step_ms']:.3f} ms/step", flush=True)
    peak_steps = measure.peak_rss_mb()
    peak = jax_peak_matmul(settings, precision)
    flops = baseline.step_flops(workload, precision, *start, *batches[0])

    # The epoch: a Python loop of the (donated) step over pre-made device batches.
    epoch_batches = _epoch_batches(settings)
    step = steps["baseline_donated" if settings.donated else "baseline"]
    rows["epoch_loop"], _ = measure.time_epochs(
        _baseline_caller(step),
        _baseline_carry(start, tx),
        epoch_batches,
        settings,
        jax.block_until_ready,
    )
    rows["epoch_loop"]["donated"] = settings.donated
    print(f"  baseline {workload} epoch: {rows['epoch_loop']['epoch_s']:.3f} s", flush=True)
    return {
        "rows": rows,
        "peak_rss_mb_steps": peak_steps,
        "peak_matmul": peak,
        "step_flops": flops,
        "versions": _jax_versions(),
    }


def run_funcnets(workload: str, settings: Settings, precision: str = "float32") -> dict:
    """`fn.train.make_step` under `jax.jit`, plain and donated, interleaved with the
    baseline's steps; the epoch through `fit`, interleaved with the baseline's loop."""
    import jax
    import jax.numpy as jnp

    import funcnets as fn
    from benchmarks import baseline, workloads

    ts, batches = _jax_setup(workload, settings, precision)
    step = workloads.step(workload, precision)
    rows, (loop_step, tx) = same_process_steps(workload, ts, step, batches, settings, precision)
    peak_steps = measure.peak_rss_mb()
    peak = jax_peak_matmul(settings, precision)
    start = baseline.from_funcnets(workload, ts.params, ts.state)
    flops = baseline.step_flops(workload, precision, *start, *batches[0])

    # fit's strategy="auto" rule (funcnets/train/strategy.py), read off the same step's program.
    strategy = fn.train.choose_strategy(jax.jit(step).lower(ts, batches[0]).as_text())

    # The epoch: fit for 1 + epoch_reps epochs; the first one includes the compile. After
    # each, a callback runs one epoch of the baseline's loop on the same samples (the
    # same-process A/B); the fit epochs are timed without it.
    x, y = data.synthetic(settings.epoch_samples, settings.seed + 2)  # the baseline loop's data
    x, y = jax.block_until_ready((jnp.asarray(x), jnp.asarray(y)))
    epoch_batches = _epoch_batches(settings)
    loop = [_baseline_caller(loop_step), _baseline_carry(start, tx)]
    loop[1] = measure.warm_up_epoch(*loop, epoch_batches, jax.block_until_ready)
    fit_epochs, loop_epochs = [], []

    class Interleave(fn.train.Callback):
        start = time.perf_counter()

        def on_epoch_end(self, epoch, ts, logs):
            fit_epochs.append(time.perf_counter() - self.start)
            seconds, loop[1] = measure.timed(
                *loop, epoch_batches, len(epoch_batches), jax.block_until_ready
            )
            loop_epochs.append(seconds)
            self.start = time.perf_counter()
            return False

    fn.train.fit(
        workloads.network(workload, precision),
        workloads.loss,
        workloads.optimizer(),
        (x, y),
        epochs=1 + settings.epoch_reps,
        batch_size=settings.batch,
        key=jax.random.key(settings.seed),
        progress=False,
        callbacks=[Interleave()],
    )
    steady = statistics.median(fit_epochs[1:])
    rows["epoch_fit"] = {
        "epoch_s": steady,
        "first_epoch_s": fit_epochs[0],
        "compile_s": fit_epochs[0] - steady,
        "reps_s": fit_epochs[1:],
        "strategy": strategy,
    }
    rows["ab_epoch_loop"] = {
        "epoch_s": statistics.median(loop_epochs[1:]),
        "reps_s": loop_epochs[1:],
    }
    print(f"  funcnets {workload} fit epoch: {steady:.3f} s", flush=True)
    versions = {**_jax_versions(), "funcnets": fn.__version__}
    return {
        "rows": rows,
        "peak_rss_mb_steps": peak_steps,
        "peak_matmul": peak,
        "step_flops": flops,
        "versions": versions,
    }


def _baseline_caller(step: Callable) -> Callable:
    """The baseline's ``step(params, state, opt_state, x, y)`` as ``carry = call(carry, batch)``."""
    return lambda carry, batch: step(*carry[:3], *batch)


def same_process_steps(
    workload: str, ts, step: Callable, batches, settings: Settings, precision: str = "float32"
) -> tuple[dict, tuple]:
    """funcnets' jitted step and the baseline's, plain and donated, timed interleaved.

    Returns the rows ``funcnets``, ``funcnets_donated``, ``ab_baseline`` and
    ``ab_baseline_donated``, and the baseline's donated step (compiled) and its optax
    transform, for the epoch.
    """
    import jax
    import jax.numpy as jnp

    from benchmarks import baseline

    start = baseline.from_funcnets(workload, ts.params, ts.state)
    calls = {}
    for suffix, donate in (("", False), ("_donated", True)):
        base_step, tx = baseline.make_step(workload, donate, precision)
        calls[f"ab_baseline{suffix}"] = (_baseline_caller(base_step), _baseline_carry(start, tx))
        jitted = jax.jit(step, donate_argnums=0 if donate else ())
        calls[f"funcnets{suffix}"] = (
            lambda carry, batch, jitted=jitted: jitted(carry[0], batch),
            (jax.tree.map(jnp.copy, ts), None),
        )
    rows = measure.time_interleaved(calls, batches, settings, jax.block_until_ready)
    for row in calls:
        print(f"  funcnets {workload} {row}: {rows[row]['step_ms']:.3f} ms/step", flush=True)
    return rows, (base_step, tx)


def run_jax_framework(framework: str, workload: str, settings: Settings) -> dict:
    """A Flax NNX or Equinox step (benchmarks/jax_frameworks.py), then a Python-loop epoch."""
    import jax

    from benchmarks import jax_frameworks

    make, row = jax_frameworks.STEPS[framework], jax_frameworks.ROWS[framework]
    x, y = data.synthetic(settings.batch * settings.step_batches, settings.seed + 1)
    batches = jax.block_until_ready([jax.device_put(b) for b in data.batches(x, y, settings.batch)])

    def sync(carry):  # the loss comes out of the same compiled call as the new params
        jax.block_until_ready(carry[-1])
        return carry

    step, carry = make(workload, settings.seed)
    rows = {}
    rows[row], _ = measure.time_steps(step, carry, batches, settings, sync)
    print(f"  {framework} {workload} {row}: {rows[row]['step_ms']:.3f} ms/step", flush=True)
    peak_steps = measure.peak_rss_mb()
    peak = jax_peak_matmul(settings, "float32")
    step, carry = make(workload, settings.seed)
    rows[f"epoch_{row}"], _ = measure.time_epochs(
        step, carry, _epoch_batches(settings), settings, sync
    )
    print(f"  {framework} {workload} epoch: {rows[f'epoch_{row}']['epoch_s']:.3f} s", flush=True)
    versions = {**_jax_versions(), framework: jax_frameworks.version(framework)}
    return {
        "rows": rows,
        "peak_rss_mb_steps": peak_steps,
        "peak_matmul": peak,
        "versions": versions,
    }
