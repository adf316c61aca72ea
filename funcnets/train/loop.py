"""`fit`, `evaluate` and `predict`: the training loop, compiled.

How an epoch runs on in-memory arrays. The data are put on the device once.
Each epoch draws a permutation from the run's key, then runs the minibatch
steps in one of three ways, all giving bit-identical results:

- ``"epoch"``: every full minibatch of the epoch in one compiled ``lax.scan``;
- ``"chunks"``: compiled scans of ``chunk_steps`` minibatches each;
- ``"loop"``: one compiled step per minibatch, called from Python.

Every compiled call donates the `TrainState` and metric buffers, so
parameters are updated in place. The rule behind ``strategy="auto"``, from
in-process measurements on 2 CPU cores (``python -m benchmarks`` times `fit`
against a loop of jitted steps; see benchmarks/README.md): on accelerators,
and on CPU for everything else, the whole-epoch scan (no per-step dispatch:
an MLP epoch took 0.88-0.96 of the loop's time). On CPU, a step with an XLA
``convolution`` runs up to 3x slower inside XLA's CPU while-loop (LeNet-5
with XLA's convolutions: 2.9-3.2x), so it gets the loop of jitted steps; so
does a step with its own ``while`` loop (a recurrent layer's scan): the LSTM
epoch took the same time either way, and the loop keeps the progress bar
moving. The rule reads the compiled step's own program (StableHLO), so it
holds for any layer, built-in or not; LeNet-5, whose convolutions run as
matmuls on CPU (`funcnets.layers.conv.uses_patches`), scans.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tqdm.auto import tqdm

from funcnets.layers.base import Layer
from funcnets.train.callbacks import Callback
from funcnets.train.history import History
from funcnets.train.metrics import Metric, resolve
from funcnets.train.state import TrainState, init
from funcnets.train.step import apply_gradients, loss_and_gradients, step_key

_SHUFFLE_STREAM = 0x53485546  # fold_in tag separating shuffle keys from step keys
_AUGMENT_STREAM = 0x41554721
STRATEGIES = ("auto", "epoch", "chunks", "loop")


def _is_array_pair(data: Any) -> bool:
    return (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(hasattr(a, "shape") and hasattr(a, "dtype") for a in data)
    )


def _check_pair(data: Any, what: str) -> tuple[jax.Array, jax.Array]:
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"{what}: x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{what} is empty")
    return x, y


def _copy(tree: Any) -> Any:
    return jax.tree.map(jnp.copy, tree)


class _Trainer:
    """Builds and caches the compiled pieces of one `fit` call."""

    def __init__(self, net, loss_fn, optimizer, penalty, metrics, on_nan, augment, mesh):
        self.names = list(metrics)
        self.gradients = loss_and_gradients(net, loss_fn, penalty, metrics)
        self.optimizer, self.on_nan, self.augment = optimizer, on_nan, augment
        self.batch_sharding = None
        if mesh is not None:
            if "data" not in mesh.axis_names:
                raise ValueError(
                    f"fit(mesh=...) needs a mesh axis named 'data', got {mesh.axis_names}"
                )
            self.batch_sharding = jax.sharding.NamedSharding(
                mesh, jax.sharding.PartitionSpec("data")
            )
            self.devices = mesh.shape["data"]
        self.runners: dict[tuple[int, int], Callable] = {}

    def empty_sums(self) -> dict[str, jax.Array]:
        """The per-epoch accumulator: metric sums, sample count, first bad step, skips."""
        sums = {name: jnp.zeros((), jnp.float32) for name in self.names}
        sums["count"] = jnp.zeros((), jnp.float32)
        sums["bad_step"] = jnp.full((), -1, jnp.int32)
        sums["skipped"] = jnp.zeros((), jnp.int32)
        return sums

    def guarded_step(self, ts: TrainState, sums: dict, x: jax.Array, y: jax.Array):
        """One step, with non-finite losses caught and metrics accumulated."""
        if self.batch_sharding is not None and x.shape[0] % self.devices == 0:
            x = lax.with_sharding_constraint(x, self.batch_sharding)
            y = lax.with_sharding_constraint(y, self.batch_sharding)
        if self.augment is not None:
            x = self.augment(jax.random.fold_in(step_key(ts), _AUGMENT_STREAM), x)
        loss, grads, new_state, values = self.gradients(ts, (x, y))
        finite = jnp.isfinite(loss)
        no_bad_yet = sums["bad_step"] < 0
        if self.on_nan == "raise":  # freeze at the last good state; fit raises afterwards
            ok, rejected = finite & no_bad_yet, ts
        else:  # "skip": drop this update, move on to the next batch
            ok, rejected = finite, ts._replace(step=ts.step + 1)
        # A conditional, not a select over the state: the update stays in place, and a
        # rejected step costs nothing until it happens (a select cost 10% of an MLP step).
        new_ts = lax.cond(
            ok, lambda: apply_gradients(self.optimizer, ts, grads, new_state), lambda: rejected
        )
        weight = jnp.where(ok, jnp.float32(x.shape[0]), 0.0)
        new_sums = {
            name: sums[name] + jnp.where(ok, values[name], 0.0) * weight for name in self.names
        }
        new_sums["count"] = sums["count"] + weight
        new_sums["bad_step"] = jnp.where(no_bad_yet & ~finite, ts.step, sums["bad_step"])
        new_sums["skipped"] = sums["skipped"] + (~finite).astype(jnp.int32)
        return new_ts, new_sums

    def runner(self, steps: int, batch_size: int) -> Callable:
        """A compiled call running ``steps`` minibatches of ``batch_size`` from a permutation.

        ``run(ts, sums, x, y, perm, offset)`` trains on ``x[perm[offset:]]`` in
        order, one minibatch after another; ``ts`` and ``sums`` are donated.
        """
        if (steps, batch_size) in self.runners:
            return self.runners[steps, batch_size]

        def one(carry, i, x, y, perm, offset):
            idx = lax.dynamic_slice_in_dim(perm, offset + i * batch_size, batch_size)
            return self.guarded_step(*carry, jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0))

        def run(ts, sums, x, y, perm, offset):
            if steps == 1:
                return one((ts, sums), 0, x, y, perm, offset)
            body = lambda carry, i: (one(carry, i, x, y, perm, offset), None)  # noqa: E731
            return lax.scan(body, (ts, sums), jnp.arange(steps))[0]

        self.runners[steps, batch_size] = jax.jit(run, donate_argnums=(0, 1))
        return self.runners[steps, batch_size]

    def batch_runner(self) -> Callable:
        """A compiled step on a given ``(x, y)`` batch (the iterator path)."""
        if "batch" not in self.runners:
            self.runners["batch"] = jax.jit(self.guarded_step, donate_argnums=(0, 1))
        return self.runners["batch"]


def choose_strategy(trainer: _Trainer, ts, sums, x, y, perm, batch_size: int) -> str:
    """The measured rule: see this module's docstring."""
    if jax.default_backend() != "cpu":
        return "epoch"
    program = trainer.runner(1, batch_size).lower(ts, sums, x, y, perm, 0).as_text()
    return "loop" if ("convolution" in program or "while" in program) else "epoch"


def _shuffle(key: jax.Array, epoch: jax.Array, n: int) -> jax.Array:
    return jax.random.permutation(
        jax.random.fold_in(jax.random.fold_in(key, _SHUFFLE_STREAM), epoch), n
    )


def _epoch_plan(strategy: str, full_steps: int, remainder: int, batch_size: int, chunk_steps: int):
    """The compiled calls of one epoch: ``[(steps, batch_size, offset), ...]``."""
    if strategy == "epoch":
        sizes = [full_steps] if full_steps else []
    elif strategy == "chunks":
        sizes = [chunk_steps] * (full_steps // chunk_steps) + [full_steps % chunk_steps] * bool(
            full_steps % chunk_steps
        )
    else:
        sizes = [1] * full_steps
    plan, offset = [], 0
    for steps in sizes:
        plan.append((steps, batch_size, offset))
        offset += steps * batch_size
    if remainder:
        plan.append((1, remainder, offset))
    return plan


def _finish_epoch(
    sums: dict, names: list[str], on_nan: str, epoch: int, steps_before: int
) -> dict[str, float]:
    """Host-side metrics of an epoch (one transfer); raises on a caught non-finite loss."""
    sums = jax.device_get(sums)
    bad = int(sums.pop("bad_step"))
    skipped = int(sums.pop("skipped"))
    if on_nan == "raise" and bad >= 0:
        raise FloatingPointError(
            f"non-finite loss at epoch {epoch}, step {bad - steps_before + 1} of the epoch "
            f"(global step {bad}); training stopped and the state before that step is kept. "
            'Lower the learning rate, clip gradients, or pass on_nan="skip".'
        )
    count = float(sums.pop("count"))
    logs = {name: float(sums[name]) / count if count else math.nan for name in names}
    if on_nan == "skip":
        logs["skipped_steps"] = float(skipped)
    return logs


def fit(
    net: Layer,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    optimizer: Any,
    train_data: tuple[Any, Any] | Iterable[tuple[Any, Any]] | Callable[[], Iterable],
    *,
    epochs: int,
    batch_size: int | None,
    key: jax.Array | None = None,
    val_data: tuple[Any, Any] | None = None,
    metrics: Sequence[str | Metric] = ("loss", "accuracy"),
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    ts: TrainState | None = None,
    mesh: jax.sharding.Mesh | None = None,
    penalty: Callable[[Any], jax.Array] | None = None,
    on_nan: str = "raise",
    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    strategy: str = "auto",
    chunk_steps: int = 64,
) -> tuple[TrainState, History]:
    """Trains ``net`` for ``epochs`` epochs; returns the final state and the history.

    Args:
        net: the network.
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` (mean over the batch),
            e.g. ``fn.losses.sparse_cross_entropy``.
        optimizer: a funcnets or optax gradient transformation.
        train_data: ``(x, y)`` arrays (kept on the device, shuffled each epoch
            from the run's key), or an iterable of ``(x, y)`` minibatches,
            or a function returning a fresh iterator of them each epoch (for
            data that do not fit in memory; used in the order given).
        epochs: how many epochs to train (more epochs, when ``ts`` is given).
        batch_size: minibatch size. ``len(x)`` (or None) is batch gradient
            descent, 1 is stochastic gradient descent, anything between is
            minibatch gradient descent. When it does not divide the data, the
            last, smaller minibatch of each epoch is trained on as one more
            step with the mean loss over its own examples (nothing is dropped).
        key: initialises a new `TrainState` when ``ts`` is None.
        val_data: ``(x, y)`` arrays evaluated (``train=False``) after each epoch.
        metrics: ``"loss"``, ``"accuracy"`` (top-1) and functions
            ``(outputs, targets) -> scalar``, averaged over examples.
        callbacks: `EarlyStopping`, `Checkpoint`, `CSVLogger` or your own.
        progress: show a tqdm bar per epoch (loss, accuracy, samples/s).
        ts: a `TrainState` to continue from (it is copied, never consumed).
        mesh: a `jax.sharding.Mesh` with an axis ``"data"``: each minibatch is
            sharded over it and the parameters replicated.
        penalty: a regularizer added to the loss, e.g.
            ``lambda p: 1e-4 * fn.losses.l2_penalty(p)``.
        on_nan: ``"raise"`` stops at the first non-finite loss with a
            FloatingPointError naming the epoch and step (the state before
            that step is kept, and callbacks do not see the failed epoch, so
            the last checkpoint stays the last good one); ``"skip"`` drops
            such updates and reports ``skipped_steps``.
        augment: ``augment(key, x_batch) -> x_batch``, applied to each
            training minibatch inside the compiled step (e.g.
            ``fn.data.random_flip``).
        strategy: ``"auto"`` (the measured rule in this module's docstring),
            ``"epoch"``, ``"chunks"`` or ``"loop"``.
        chunk_steps: minibatches per compiled call for ``"chunks"``.

    Returns:
        ``(ts, history)``; ``history["val_loss"]`` is a list, one value per epoch.

    Randomness: epoch ``e``'s shuffle comes from ``fold_in(ts.key, e)`` (in a
    stream of its own) and step ``s``'s dropout key is ``fold_in(ts.key, s)``,
    so the same key and data give bit-identical parameters, and a run resumed
    from a checkpoint continues exactly as an uninterrupted one.
    """
    if on_nan not in ("raise", "skip"):
        raise ValueError(f'on_nan must be "raise" or "skip", got {on_nan!r}')
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if epochs < 0 or chunk_steps < 1:
        raise ValueError(f"epochs must be >= 0 and chunk_steps >= 1, got {epochs}, {chunk_steps}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive int or None (full batch), got {batch_size}"
        )
    if ts is None and key is None:
        raise ValueError("fit needs key= to initialise the parameters, or ts= to continue a run")

    named_metrics = resolve(metrics, loss_fn)
    trainer = _Trainer(net, loss_fn, optimizer, penalty, named_metrics, on_nan, augment, mesh)
    evaluator = _Evaluator(net, loss_fn, named_metrics)
    replicated = (
        None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    )
    place = (lambda a: jax.device_put(a, replicated)) if mesh is not None else jnp.asarray

    if _is_array_pair(train_data):
        x, y = map(place, _check_pair(train_data, "train_data"))
        n = len(x)
        batch_size = n if batch_size is None else min(batch_size, n)
        full_steps, remainder = divmod(n, batch_size)
        steps_per_epoch = full_steps + bool(remainder)
        ts = init(net, optimizer, key, (batch_size, *x.shape[1:])) if ts is None else _copy(ts)
        ts = jax.tree.map(place, ts)
        first_epoch = int(ts.step) // steps_per_epoch + 1
        shuffle = jax.jit(_shuffle, static_argnums=2)
        if strategy == "auto":
            perm = shuffle(ts.key, first_epoch, n)
            strategy = choose_strategy(trainer, ts, trainer.empty_sums(), x, y, perm, batch_size)
        plan = _epoch_plan(strategy, full_steps, remainder, batch_size, chunk_steps)

        def run_epoch(ts, epoch, bar):
            perm = shuffle(ts.key, epoch, n)
            sums = trainer.empty_sums()
            for steps, size, offset in plan:
                ts, sums = trainer.runner(steps, size)(ts, sums, x, y, perm, offset)
                bar.update(steps * size)
            return ts, sums

        total = n
    else:
        if mesh is not None:
            raise ValueError("fit(mesh=...) needs (x, y) arrays as train_data")
        batches = train_data if callable(train_data) else (lambda: iter(train_data))
        if ts is None:
            first_x, _ = next(iter(batches()))
            ts = init(net, optimizer, key, np.shape(first_x))
        else:
            ts = _copy(ts)
        first_epoch, total = 1, None

        def run_epoch(ts, epoch, bar):
            sums, seen = trainer.empty_sums(), 0
            for xb, yb in batches():
                xb, yb = _check_pair((jnp.asarray(xb), jnp.asarray(yb)), "a training batch")
                ts, sums = trainer.batch_runner()(ts, sums, xb, yb)
                bar.update(len(xb))
                seen += 1
            if not seen:
                raise ValueError(
                    f"train_data gave no batches in epoch {epoch}; a one-shot iterator is used up "
                    "after one epoch: pass a list or a function returning a fresh iterator"
                )
            return ts, sums

    history = History()
    for callback in callbacks:
        callback.on_train_begin(ts)
    for epoch in range(first_epoch, first_epoch + epochs):
        steps_before = int(ts.step)
        with tqdm(
            total=total, desc=f"epoch {epoch}/{first_epoch + epochs - 1}", unit="sample",
            unit_scale=True, disable=not progress, leave=True, dynamic_ncols=True,
        ) as bar:  # fmt: skip
            start = time.perf_counter()
            ts, sums = run_epoch(ts, epoch, bar)
            logs = _finish_epoch(sums, trainer.names, on_nan, epoch, steps_before)
            seconds = time.perf_counter() - start
            if val_data is not None:
                val = evaluator(
                    ts, _check_pair(val_data, "val_data"), batch_size or len(val_data[0])
                )
                logs.update({f"val_{name}": value for name, value in val.items()})
            shown = {k: f"{v:.4g}" for k, v in logs.items()}
            bar.set_postfix(shown, refresh=False)
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


class _Evaluator:
    """Batched, compiled evaluation (``train=False``) of metrics over a dataset."""

    def __init__(self, net: Layer, loss_fn: Callable, metrics: dict[str, Metric]):
        def accumulate(params, state, sums, x, y):
            outputs, _ = net.apply(params, state, x, train=False)
            weight = jnp.float32(x.shape[0])
            return {
                name: sums[name] + weight * metric(outputs, y) for name, metric in metrics.items()
            }

        self.names = list(metrics)
        self.accumulate = jax.jit(accumulate, donate_argnums=2)

    def __call__(self, ts: TrainState, data: tuple[Any, Any], batch_size: int) -> dict[str, float]:
        x, y = data
        n = len(x)
        sums = {name: jnp.zeros((), jnp.float32) for name in self.names}
        for start in range(0, n, batch_size):
            xb, yb = (
                jnp.asarray(x[start : start + batch_size]),
                jnp.asarray(y[start : start + batch_size]),
            )
            sums = self.accumulate(ts.params, ts.state, sums, xb, yb)
        sums = jax.device_get(sums)
        return {name: float(sums[name]) / n for name in self.names}


def evaluate(
    net: Layer,
    ts: TrainState,
    data: tuple[Any, Any],
    *,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    batch_size: int = 256,
    metrics: Sequence[str | Metric] = ("loss", "accuracy"),
) -> dict[str, float]:
    """Metrics of ``net`` (``train=False``) over ``data = (x, y)``, averaged over examples.

    Returns ``{"loss": ..., "accuracy": ..., <user metric names>: ...}`` as floats.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    evaluator = _Evaluator(net, loss_fn, resolve(metrics, loss_fn))
    return evaluator(ts, _check_pair(data, "data"), batch_size)


def predict(net: Layer, ts: TrainState, x: Any, *, batch_size: int = 256) -> jax.Array:
    """``net``'s outputs on ``x`` (``train=False``), computed in batches of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    apply = jax.jit(lambda params, state, xb: net.apply(params, state, xb, train=False)[0])
    outputs = [
        apply(ts.params, ts.state, jnp.asarray(x[start : start + batch_size]))
        for start in range(0, len(x), batch_size)
    ]
    return jax.tree.map(lambda *parts: jnp.concatenate(parts, axis=0), *outputs)
