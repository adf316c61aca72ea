"""`run`: the epoch engine for any pure step ``step(ts, batch) -> (ts, metrics)``."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from funcnets import optim
from funcnets.parallel.sharding import (
    auto_mesh,
    batch_sharding,
    check_mesh,
    put,
    replicated,
    shard_batch,
    state_shardings,
)
from funcnets.train.callbacks import Callback
from funcnets.train.engine import Engine, Layout, batch_size_of
from funcnets.train.history import History
from funcnets.train.inputs import (
    batch_source,
    check_choice,
    check_examples,
    check_int,
    is_array_tree,
)
from funcnets.train.state import TrainState
from funcnets.train.step import Step
from funcnets.train.strategy import STRATEGIES, choose_strategy, epoch_plan

_SHUFFLE_STREAM = 0x53485546  # fold_in tag separating shuffle keys from step keys


def shuffle_key(key: jax.Array, epoch: int | jax.Array) -> jax.Array:
    """The key of epoch ``epoch``'s shuffle (epochs count from 1)."""
    return jax.random.fold_in(jax.random.fold_in(key, _SHUFFLE_STREAM), epoch)


@functools.partial(jax.jit, static_argnums=2)
def _permutation(key: jax.Array, epoch: jax.Array, n: int) -> jax.Array:
    return jax.random.permutation(shuffle_key(key, epoch), n)


def _copy(tree: Any) -> Any:
    return jax.tree.map(jnp.copy, tree)


def _check_state(ts: Any) -> TrainState:
    if not isinstance(ts, TrainState):
        raise ValueError(f"ts must be a fn.train.TrainState, got {type(ts).__name__}")
    return ts._replace(step=jnp.asarray(ts.step, jnp.int32), epoch=jnp.asarray(ts.epoch, jnp.int32))


def _trace_step(step: Step, ts: TrainState, batch: Any) -> dict[str, Any]:
    """Traces ``step`` once on an example batch; returns its metrics' shapes.

    Checks what the engine relies on: ``(ts, metrics)`` comes back with ``ts``
    of the same structure and ``metrics`` a dict of scalars.
    """
    out = jax.eval_shape(step, ts, batch)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        raise ValueError("step(ts, batch) must return (ts, metrics) with metrics a dict")
    new_ts, metrics = out
    if str(jax.tree.structure(new_ts)) != str(jax.tree.structure(ts)):
        raise ValueError(
            "step(ts, batch) must return a TrainState of the same structure as the one it "
            f"got; got {jax.tree.structure(new_ts)}, expected {jax.tree.structure(ts)}"
        )
    for name, value in metrics.items():
        if value.shape != ():
            raise ValueError(f'step metric "{name}" must be a scalar, got shape {value.shape}')
    return metrics


def _takes_one_example(step: Step, ts: TrainState, data: Any) -> bool:
    """Whether ``step`` accepts a batch of one example (BatchNorm in training does not)."""
    try:
        jax.eval_shape(step, ts, jax.tree.map(lambda a: a[:1], data))
    except ValueError:
        return False
    return True


def _epoch_logs(
    sums: dict[str, jax.Array], names: list[str], on_nan: str, epoch: int, steps_before: int, ts
) -> dict[str, float]:
    """Host-side metrics of an epoch (one transfer); raises on a caught non-finite step."""
    sums = jax.device_get(sums)
    bad = int(sums.pop("bad_step"))
    skipped = int(sums.pop("skipped"))
    if on_nan == "raise" and bad >= 0:
        error = FloatingPointError(
            f"non-finite loss, gradients or updates at epoch {epoch}, step "
            f"{bad - steps_before + 1} of the epoch (global step {bad}); the update was not "
            "applied and training stopped. The last good state is this error's .ts. Lower the "
            'learning rate, clip gradients, or pass on_nan="skip".'
        )
        error.ts = ts  # type: ignore[attr-defined]
        raise error
    count = float(sums.pop("count"))
    logs = {name: float(sums[name]) / count if count else math.nan for name in names}
    if on_nan == "skip":
        logs["skipped_steps"] = float(skipped)
    rate = optim.learning_rate(ts.opt_state)
    if rate is not None:
        logs["learning_rate"] = float(rate)
    return logs


def run(
    step: Step,
    ts: TrainState,
    train_data: Any,
    *,
    epochs: int,
    batch_size: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    on_nan: str = "raise",
    mesh: jax.sharding.Mesh | None = None,
    fsdp: bool = False,
    strategy: str = "auto",
    chunk_steps: int = 64,
    validate: Callable[[TrainState], dict[str, float]] | None = None,
) -> tuple[TrainState, History]:
    """Trains with any pure ``step(ts, batch) -> (ts, metrics)`` for ``epochs`` more epochs.

    Args:
        step: a pure, jittable step, e.g. `make_step`, `objective_step` or your
            own; ``metrics`` is a dict of scalars, averaged over each epoch's
            examples into the history. A step that reports
            ``metrics["finite"]`` promises it applied nothing when that is
            False (see funcnets.train.engine).
        ts: the state to continue from (copied, never consumed); epoch
            numbering continues from ``ts.epoch``.
        train_data: a pytree of arrays sharing a leading example axis (``x``,
            ``(x, y)``, ``{"tokens": ..., "lengths": ...}``), kept on the
            device and shuffled together each epoch; or an iterable of such
            batches (a list, or a function returning a fresh iterator each
            epoch), used in the order given.
        epochs: how many epochs to train.
        batch_size: examples per step for array data (None: the whole set,
            batch gradient descent). When it does not divide the data the
            last, smaller minibatch is one more step; a remainder of a single
            example is merged into the previous minibatch when the step cannot
            take a batch of one (BatchNorm in training).
        callbacks: `EarlyStopping`, `Checkpoint`, `CSVLogger` or your own.
        progress: a tqdm bar per epoch (metrics, samples/s).
        on_nan: ``"raise"``: at the first step whose loss, gradients or
            updates are not finite, stop with a FloatingPointError naming the
            epoch and step and carrying the last good state as ``.ts``
            (callbacks do not see the failed epoch, so no checkpoint is
            written from it); ``"skip"``: drop such steps and log
            ``skipped_steps``.
        mesh: a `jax.sharding.Mesh` with an axis ``"data"`` (from
            ``jax.make_mesh``, ``jax.sharding.Mesh`` or
            `fn.parallel.data_mesh`): data-parallel training. Each minibatch,
            of any size, is split over ``"data"`` (a last one that the
            devices do not divide included: XLA pads it and masks the
            padding out of every reduction), array data and given batches
            alike; the state is replicated. Reductions over the batch (the
            loss, gradients, metrics, BatchNorm's statistics) are global, so
            the result equals one device up to float rounding. The steps run
            under ``jax.set_mesh`` of the mesh's Auto-axes view, and the
            returned state lives there (funcnets.parallel.sharding).
        fsdp: with ``mesh``, also split the parameters and the optimizer
            state over ``"data"`` (`fn.parallel.fsdp_shardings`: each large
            leaf along one axis) and keep them so across steps; XLA gathers
            each parameter where it is used. Same results, less memory per
            device.
        strategy: ``"auto"``, ``"epoch"``, ``"chunks"`` or ``"loop"``
            (funcnets.train.strategy); all give bit-identical results.
        chunk_steps: minibatches per compiled call for ``"chunks"``.
        validate: ``validate(ts) -> {name: value}``, merged into each epoch's
            logs before the callbacks run (`fit` passes its validation here).

    Returns:
        ``(ts, history)``.

    Randomness: epoch ``e``'s shuffle comes from ``fold_in(ts.key, e)`` (in a
    stream of its own) and step ``s``'s key is ``fold_in(ts.key, s)``, so the
    same state and data give bit-identical results, and a run resumed from a
    checkpoint continues exactly as an uninterrupted one.

    Example:
        >>> import jax, funcnets as fn
        >>> x, y = fn.data.xor(jax.random.key(0), n=64)
        >>> net = fn.models.mlp([8, 2])
        >>> opt = fn.optim.adam(1e-2)
        >>> step = fn.train.make_step(net, fn.losses.sparse_cross_entropy, opt)
        >>> ts = fn.train.init(net, opt, jax.random.key(1), (16, 2))
        >>> ts, history = fn.train.run(step, ts, (x, y), epochs=2, batch_size=16, progress=False)
        >>> int(ts.step), int(ts.epoch), sorted(history)
        (8, 2, ['grad_norm', 'loss'])
    """
    check_choice(on_nan, "on_nan", ("raise", "skip"))
    check_choice(strategy, "strategy", STRATEGIES)
    check_int(epochs, "epochs", 0)
    check_int(chunk_steps, "chunk_steps", 1)
    check_int(batch_size, "batch_size", 1, allow_none=True)
    ts = _check_state(ts)
    layout = _layout(ts, mesh, fsdp)
    ts = _copy(ts) if layout is None else put(_copy(ts), layout.state)
    with contextlib.nullcontext() if layout is None else jax.set_mesh(layout.mesh):
        return _train(
            step, ts, train_data, layout, epochs=epochs, batch_size=batch_size,
            callbacks=callbacks, progress=progress, on_nan=on_nan, strategy=strategy,
            chunk_steps=chunk_steps, validate=validate,
        )  # fmt: skip


def _layout(ts: TrainState, mesh: jax.sharding.Mesh | None, fsdp: bool) -> Layout | None:
    """Where training's arrays go on ``mesh`` (None without one); checks both arguments."""
    if not isinstance(fsdp, bool):
        raise ValueError(f"fsdp must be True or False, got {fsdp!r}")
    if mesh is None:
        if fsdp:
            raise ValueError("fsdp=True shards over a mesh: pass mesh= too")
        return None
    check_mesh(mesh)
    return Layout(
        auto_mesh(mesh), batch_sharding(mesh), state_shardings(ts, mesh, fsdp=fsdp),
        replicated(mesh),
    )  # fmt: skip


def _train(
    step: Step,
    ts: TrainState,
    train_data: Any,
    layout: Layout | None,
    *,
    epochs: int,
    batch_size: int | None,
    callbacks: Sequence[Callback],
    progress: bool,
    on_nan: str,
    strategy: str,
    chunk_steps: int,
    validate: Callable[[TrainState], dict[str, float]] | None,
) -> tuple[TrainState, History]:
    """`run`'s epochs, with ``ts`` already placed by ``layout``."""

    def place(tree: Any) -> Any:
        """Arrays on the device; on every device of the mesh, with one."""
        if layout is None:
            return jax.tree.map(jnp.asarray, tree)
        return put(tree, layout.replicated)

    def place_batch(batch: Any) -> Any:
        return place(batch) if layout is None else shard_batch(batch, layout.mesh)

    if is_array_tree(train_data):
        n = check_examples(train_data, "train_data")
        data = place(train_data)
        size = n if batch_size is None else min(batch_size, n)
        engine = Engine(step, _trace_step(step, ts, jax.tree.map(lambda a: a[:size], data)),
                        on_nan, layout)  # fmt: skip
        merge_last = n % size == 1 and n > 1 and not _takes_one_example(step, ts, data)
        if n == 1 and not _takes_one_example(step, ts, data):
            raise ValueError("train_data has one example, and the step cannot train on one")
        if strategy == "auto":
            program = (
                engine.runner(1, size)
                .lower(ts, engine.empty_sums(), data, jnp.arange(n), 0)
                .as_text()
            )
            strategy = choose_strategy(program)
        plan = epoch_plan(strategy, n, size, chunk_steps, merge_last)

        def run_epoch(ts, epoch, bar):
            perm = _permutation(ts.key, jnp.int32(epoch), n)
            sums = engine.empty_sums()
            for steps, size, offset in plan:
                ts, sums = engine.runner(steps, size)(ts, sums, data, perm, offset)
                bar.update(steps * size)
            return ts, sums, engine.names

        total = n
    else:
        batches = batch_source(train_data)
        engine = None

        def run_epoch(ts, epoch, bar):
            nonlocal engine
            sums, seen = None, 0
            for batch in batches():
                check_examples(batch, f"batch {seen} of epoch {epoch}")
                batch = place_batch(batch)
                if engine is None:
                    engine = Engine(step, _trace_step(step, ts, batch), on_nan, layout)
                sums = engine.empty_sums() if sums is None else sums
                ts, sums = engine.batch_runner()(ts, sums, batch)
                bar.update(batch_size_of(batch))
                seen += 1
            if engine is None or not seen:
                raise ValueError(
                    f"train_data gave no batches in epoch {epoch}; a one-shot iterator is used "
                    "up after one epoch: pass a list or a function returning a fresh iterator"
                )
            return ts, sums, engine.names

        total = None

    history = History()
    for callback in callbacks:
        callback.on_train_begin(ts)
    first_epoch = int(ts.epoch) + 1
    last_epoch = first_epoch + epochs - 1
    for epoch in range(first_epoch, last_epoch + 1):
        steps_before = int(ts.step)
        with tqdm(
            total=total, desc=f"epoch {epoch}/{last_epoch}", unit="sample", unit_scale=True,
            disable=not progress, leave=True, dynamic_ncols=True,
        ) as bar:  # fmt: skip
            start = time.perf_counter()
            ts, sums, names = run_epoch(ts, epoch, bar)
            logs = _epoch_logs(sums, names, on_nan, epoch, steps_before, ts)
            seconds = time.perf_counter() - start
            ts = ts._replace(epoch=place(jnp.asarray(epoch, jnp.int32)))
            if validate is not None:
                logs.update(validate(ts))
            shown = {k: f"{v:.4g}" for k, v in logs.items()}
            bar.set_postfix({**shown, "samples/s": f"{bar.n / max(seconds, 1e-9):,.0f}"})
        history.append(logs)
        stop = False
        for callback in callbacks:
            stop |= bool(callback.on_epoch_end(epoch, ts, logs))
        if stop:
            break
    for callback in callbacks:
        ts = callback.on_train_end(ts)
    return ts, history
