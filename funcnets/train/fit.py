"""`fit`: supervised training, `run` over `make_step` plus validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from funcnets.data.split import split
from funcnets.layers.base import Layer
from funcnets.train.callbacks import Callback
from funcnets.train.evaluation import Evaluator, choose_metrics, output_shape
from funcnets.train.history import History
from funcnets.train.inputs import batch_source, check_examples, check_int, check_pair, is_array_tree
from funcnets.train.metrics import DEFAULT_METRICS, MetricSpec
from funcnets.train.run import run
from funcnets.train.state import TrainState, init
from funcnets.train.step import make_step

_VALIDATION_STREAM = 0x56414C44  # fold_in tag of the validation split's key


def _shape_tree(x: Any, batch: int) -> Any:
    """Input shapes with the batch dimension set to ``batch`` (a pytree for pytree inputs)."""
    return jax.tree.map(lambda a: (batch, *np.shape(a)[1:]), x)


def _differences(found: Any, expected: Any, what: str) -> list[str]:
    """Where two pytrees of arrays differ in structure, shape or dtype, by key path."""
    flat_found = dict(jax.tree_util.tree_flatten_with_path(found)[0])
    flat_expected = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
    keystr = jax.tree_util.keystr
    problems = [f"{what}{keystr(p)}: missing" for p in flat_expected if p not in flat_found]
    problems += [f"{what}{keystr(p)}: unexpected" for p in flat_found if p not in flat_expected]
    for path in flat_found.keys() & flat_expected.keys():
        a, b = flat_found[path], flat_expected[path]
        if (np.shape(a), jax.numpy.result_type(a)) != (b.shape, b.dtype):
            problems.append(
                f"{what}{keystr(path)}: {jax.numpy.result_type(a)}{list(np.shape(a))} in ts, "
                f"{b.dtype}{list(b.shape)} expected"
            )
    structures = jax.tree.structure(found), jax.tree.structure(expected)
    if not problems and str(structures[0]) != str(structures[1]):
        problems.append(f"{what}: structure {structures[0]}, expected {structures[1]}")
    return problems


def check_state_matches(ts: TrainState, net: Layer, optimizer: Any, input_shape: Any) -> None:
    """Raises unless ``ts`` holds the params, state and optimizer state that fit the model.

    Catches continuing one network's state with another network, or one
    optimizer's state (Adam's moments) under another optimizer.
    """
    expected = jax.eval_shape(lambda k: init(net, optimizer, k, input_shape), jax.random.key(0))
    problems = []
    for field in ("params", "state", "opt_state"):
        problems += _differences(getattr(ts, field), getattr(expected, field), f"ts.{field}")
    if problems:
        raise ValueError(
            "fit(ts=...): the state was not made by this net and optimizer:\n  "
            + "\n  ".join(sorted(problems)[:20])
        )


def fit(
    net: Layer,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    optimizer: Any,
    train_data: Any,
    *,
    epochs: int,
    batch_size: int | None,
    key: jax.Array | None = None,
    val_data: tuple[Any, Any] | None = None,
    validation_split: float | None = None,
    metrics: MetricSpec = DEFAULT_METRICS,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    ts: TrainState | None = None,
    mesh: jax.sharding.Mesh | None = None,
    fsdp: bool = False,
    penalty: Callable[[Any], jax.Array] | None = None,
    on_nan: str = "raise",
    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    strategy: str = "auto",
    chunk_steps: int = 64,
) -> tuple[TrainState, History]:
    """Trains ``net`` to minimise ``loss_fn(net(x), y)``; returns the final state and history.

    `fit` is `fn.train.run` over `make_step`, plus validation: everything
    `run` says about strategies, the non-finite guard, callbacks and
    bit-exact resume holds here.

    Args:
        net: the network.
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` (mean over the batch),
            e.g. ``fn.losses.sparse_cross_entropy``.
        optimizer: a funcnets or optax gradient transformation.
        train_data: ``(x, y)`` arrays (``x`` may be a pytree such as
            ``(tokens, lengths)``), kept on the device and shuffled each epoch;
            or an iterable of ``(x, y)`` minibatches, or a function returning a
            fresh iterator of them each epoch.
        epochs: how many epochs to train (more epochs, when ``ts`` is given).
        batch_size: minibatch size; ``None`` (or ``len(x)``) is batch
            gradient descent, 1 is stochastic gradient descent. See `run`
            for the last, smaller minibatch.
        key: initialises a new `TrainState` when ``ts`` is None.
        val_data: ``(x, y)`` evaluated (``train=False``) after each epoch,
            logged as ``val_<metric>``.
        validation_split: instead of ``val_data``, hold out this fraction of
            the training arrays (drawn by `fn.data.split` from the run's key,
            so a resumed run validates on the same examples).
        metrics: ``"loss"``, ``"accuracy"`` and functions ``(outputs, targets)
            -> scalar`` (or a dict ``{name: fn}``). The default logs the loss,
            and accuracy where it applies (class labels; never for regression
            or reconstruction, where asking for it is an error). Logs also
            hold ``grad_norm``, ``penalty`` (with a penalty, kept apart so
            ``loss`` and ``val_loss`` are the same quantity) and
            ``learning_rate`` (with a schedule).
        callbacks: `EarlyStopping`, `Checkpoint`, `CSVLogger` or your own.
        progress: a tqdm bar per epoch.
        ts: a `TrainState` to continue from (copied, never consumed); it must
            have been made by this net and optimizer.
        mesh: a `jax.sharding.Mesh` with an axis ``"data"``: data-parallel
            training, each minibatch (and validation batch) split over it,
            whatever its size; the result equals one device up to float
            rounding (see `run`).
        fsdp: with ``mesh``, also split the parameters and optimizer state
            over ``"data"`` (FSDP; see `run`).
        penalty: a regularizer added to the loss, e.g.
            ``lambda p: 1e-4 * fn.losses.l2_penalty(p)``.
        on_nan: ``"raise"`` or ``"skip"`` (see `run`).
        augment: ``augment(key, x_batch) -> x_batch`` inside the compiled step.
        strategy: ``"auto"``, ``"epoch"``, ``"chunks"`` or ``"loop"`` (see `run`).
        chunk_steps: minibatches per compiled call for ``"chunks"``.

    Returns:
        ``(ts, history)``; ``history["val_loss"]`` is a list, one value per epoch.

    Example:
        >>> import jax, funcnets as fn
        >>> x, y = fn.data.xor(jax.random.key(0), n=200)
        >>> ts, history = fn.train.fit(fn.models.mlp([16, 2]), fn.losses.sparse_cross_entropy,
        ...                            fn.optim.adam(0.05), (x, y), epochs=3, batch_size=50,
        ...                            key=jax.random.key(1), validation_split=0.2,
        ...                            progress=False)
        >>> sorted(history)
        ['accuracy', 'grad_norm', 'loss', 'val_accuracy', 'val_loss']
    """
    check_int(batch_size, "batch_size", 1, allow_none=True)
    if validation_split is not None and val_data is not None:
        raise ValueError("fit: pass val_data or validation_split, not both")

    if is_array_tree(train_data):
        x, y = check_pair(train_data, "train_data")
        n = len(y)
        first_x, first_y = x, y
    else:
        if validation_split is not None:
            raise ValueError("fit(validation_split=...) needs (x, y) arrays as train_data")
        batches = batch_source(train_data)
        first = next(iter(batches()), None)
        if first is None:
            raise ValueError("train_data gave no batches")
        first_x, first_y = check_pair(first, "the first training batch")
        n = len(first_y)
    shape = _shape_tree(first_x, n if batch_size is None else min(batch_size, n))
    if ts is None:
        if key is None:
            raise ValueError("fit needs key= to initialise the parameters, or ts= to continue")
        ts = init(net, optimizer, key, shape)
    else:
        check_state_matches(ts, net, optimizer, shape)

    if validation_split is not None:
        held_key = jax.random.fold_in(ts.key, _VALIDATION_STREAM)
        train_data, val_data = split((x, y), validation_split, held_key)
        first_x, first_y = train_data
    named = choose_metrics(metrics, loss_fn, output_shape(net, ts, first_x), first_y, "fit")

    validate = None
    if val_data is not None:
        val_x, val_y = check_pair(val_data, "val_data")
        check_examples(val_x, "val_data[0]")
        try:
            output_shape(net, ts, val_x)
        except ValueError as error:
            raise ValueError(f"val_data does not fit the net: {error}") from None
        evaluator = Evaluator(net, named, batch_size or len(val_y), mesh)

        def validate(ts: TrainState) -> dict[str, float]:
            return {f"val_{k}": v for k, v in evaluator(ts, (val_x, val_y)).items()}

    step = make_step(net, loss_fn, optimizer, penalty=penalty, metrics=named, augment=augment)
    return run(
        step, ts, train_data, epochs=epochs, batch_size=batch_size, callbacks=callbacks,
        progress=progress, on_nan=on_nan, mesh=mesh, fsdp=fsdp, strategy=strategy,
        chunk_steps=chunk_steps, validate=validate,
    )  # fmt: skip
