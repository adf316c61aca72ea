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
from benchmarks.config import Settings

OPTIONAL = {"flax": "flax", "equinox": "equinox"}  # framework -> module to import


def run(framework: str, workload: str, settings: Settings) -> dict:
    """``{"rows": {row: timings}, "peak_rss_mb_steps", "peak_rss_mb", "versions"}``.

    Or ``{"skipped": reason}`` when the framework is not installed.
    """
    if framework == "baseline":
        result = run_baseline(workload, settings)
    elif framework == "funcnets":
        result = run_funcnets(workload, settings)
    elif framework == "torch":
        try:
            from benchmarks import torch_impl
        except ImportError as error:
            return {"skipped": f"torch not installed ({error})"}
        result = torch_impl.run(workload, settings)
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


def _jax_setup(workload: str, settings: Settings):
    """Imports, the initial funcnets state, and the pre-made device batches of the steps."""
    import jax

    from benchmarks import workloads

    ts = workloads.train_state(workload, settings.seed, settings.batch)
    x, y = data.synthetic(settings.batch * settings.step_batches, settings.seed + 1)
    batches = [jax.device_put(batch) for batch in data.batches(x, y, settings.batch)]
    return ts, jax.block_until_ready(batches)


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


def run_baseline(workload: str, settings: Settings) -> dict:
    """The hand-written jax + optax step, plain and donated; the Python-loop epoch."""
    import jax
    import jax.numpy as jnp

    from benchmarks import baseline

    ts, batches = _jax_setup(workload, settings)
    start = baseline.from_funcnets(workload, ts.params)
    rows, steps = {}, {}

    for row, donate in (("baseline", False), ("baseline_donated", True))[: 1 + settings.donated]:
        steps[row], tx = baseline.make_step(workload, donate)
        params = jax.tree.map(jnp.copy, start)  # a donated step consumes its input
        carry = (params, tx.init(params), jnp.zeros(()))
        rows[row], _ = measure.time_steps(
            _baseline_caller(steps[row]), carry, batches, settings, jax.block_until_ready
        )
        print(f"  baseline {workload} {row}: {rows[row]['step_ms']:.3f} ms/step", flush=True)
    peak_steps = measure.peak_rss_mb()

    # The epoch: a Python loop of the (donated) step over pre-made device batches.
    epoch_batches = _epoch_batches(settings)
    params = jax.tree.map(jnp.copy, start)
    carry = (params, tx.init(params), jnp.zeros(()))
    step = steps["baseline_donated" if settings.donated else "baseline"]
    rows["epoch_loop"], _ = measure.time_epochs(
        _baseline_caller(step), carry, epoch_batches, settings, jax.block_until_ready
    )
    rows["epoch_loop"]["donated"] = settings.donated
    print(f"  baseline {workload} epoch: {rows['epoch_loop']['epoch_s']:.3f} s", flush=True)
    return {"rows": rows, "peak_rss_mb_steps": peak_steps, "versions": _jax_versions()}


def run_funcnets(workload: str, settings: Settings) -> dict:
    """`fn.train.make_step` under `jax.jit`, plain and donated, interleaved with the
    baseline's steps; the epoch through `fit`, interleaved with the baseline's loop."""
    import jax
    import jax.numpy as jnp

    import funcnets as fn
    from benchmarks import baseline, workloads

    ts, batches = _jax_setup(workload, settings)
    step = workloads.step(workload)
    rows, (loop_step, tx) = same_process_steps(workload, ts, step, batches, settings)
    peak_steps = measure.peak_rss_mb()

    # fit's strategy="auto" rule (funcnets/train/strategy.py), read off the same step's program.
    strategy = fn.train.choose_strategy(jax.jit(step).lower(ts, batches[0]).as_text())

    # The epoch: fit for 1 + epoch_reps epochs; the first one includes the compile. After
    # each, a callback runs one epoch of the baseline's loop on the same samples (the
    # same-process A/B); the fit epochs are timed without it.
    x, y = data.synthetic(settings.epoch_samples, settings.seed + 2)  # the baseline loop's data
    x, y = jax.block_until_ready((jnp.asarray(x), jnp.asarray(y)))
    epoch_batches = _epoch_batches(settings)
    params = baseline.from_funcnets(workload, jax.tree.map(jnp.copy, ts.params))
    loop = [_baseline_caller(loop_step), (params, tx.init(params), jnp.zeros(()))]
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
        workloads.network(workload),
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
    return {"rows": rows, "peak_rss_mb_steps": peak_steps, "versions": versions}


def _baseline_caller(step: Callable) -> Callable:
    """The baseline's ``step(params, opt_state, x, y)`` as ``carry = call(carry, (x, y))``."""
    return lambda carry, batch: step(carry[0], carry[1], *batch)


def same_process_steps(
    workload: str, ts, step: Callable, batches, settings: Settings
) -> tuple[dict, tuple]:
    """funcnets' jitted step and the baseline's, plain and donated, timed interleaved.

    Returns the rows ``funcnets``, ``funcnets_donated``, ``ab_baseline`` and
    ``ab_baseline_donated``, and the baseline's donated step (compiled) and its optax
    transform, for the epoch.
    """
    import jax
    import jax.numpy as jnp

    from benchmarks import baseline

    start = baseline.from_funcnets(workload, ts.params)
    calls = {}
    for suffix, donate in (("", False), ("_donated", True)):
        base_step, tx = baseline.make_step(workload, donate)
        params = jax.tree.map(jnp.copy, start)
        calls[f"ab_baseline{suffix}"] = (
            _baseline_caller(base_step), (params, tx.init(params), jnp.zeros(()))
        )  # fmt: skip
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
    step, carry = make(workload, settings.seed)
    rows[f"epoch_{row}"], _ = measure.time_epochs(
        step, carry, _epoch_batches(settings), settings, sync
    )
    print(f"  {framework} {workload} epoch: {rows[f'epoch_{row}']['epoch_s']:.3f} s", flush=True)
    versions = {**_jax_versions(), framework: jax_frameworks.version(framework)}
    return {"rows": rows, "peak_rss_mb_steps": peak_steps, "versions": versions}
