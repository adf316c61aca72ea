"""The optimizer protocol, its state types, and the combinators over transforms.

A gradient transformation is a pair of pure functions, the same protocol as
optax's, so either library's transforms can stand in for the other's::

    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = apply_updates(params, updates)

Every optimizer state is a pytree of arrays (NamedTuples, dicts and tuples of
arrays, with empty NamedTuples for stateless parts), so a whole training step
can be jitted, its buffers donated, and its state checkpointed leaf by leaf.
"""

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Params = Any
"""A pytree of arrays: model parameters."""
Updates = Any
"""A pytree of arrays with the structure of the parameters: gradients or steps."""
OptState = Any
"""A pytree of arrays: the state of a gradient transformation."""
Schedule = Callable[[jax.Array], jax.Array]
"""A function of the step count (an int32 scalar) returning a scalar."""
ScalarOrSchedule = float | jax.Array | Schedule
"""A fixed scalar hyperparameter or a schedule of it."""


class GradientTransformation(NamedTuple):
    """A pure gradient transformation: ``init(params)`` and ``update(...)``.

    Attributes:
        init: ``init(params) -> opt_state``.
        update: ``update(updates, opt_state, params=None) -> (updates, opt_state)``.
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation (a pytree with no leaves)."""


class MaskedNode(NamedTuple):
    """Stands in for a subtree that a mask leaves out (a pytree with no leaves)."""


class CountState(NamedTuple):
    """Step count of a schedule-driven transformation (int32 scalar)."""

    count: jax.Array  # type: ignore[assignment]  # optax's field name; shadows tuple.count


class ScaleByScheduleState(NamedTuple):
    """State of :func:`~funcnets.optim.scale_by_learning_rate` with a schedule.

    Attributes:
        count: The number of updates made (int32 scalar).
        learning_rate: The (unsigned) learning rate applied at the last update,
            ``schedule(count - 1)``; ``schedule(0)`` before the first (float32 scalar).
            Read it with :func:`learning_rate`.
    """

    count: jax.Array  # type: ignore[assignment]  # optax's field name; shadows tuple.count
    learning_rate: jax.Array


class TraceState(NamedTuple):
    """Momentum buffer of :func:`~funcnets.optim.trace`."""

    trace: Updates


class ScaleByRssState(NamedTuple):
    """Running sum of squared gradients of :func:`~funcnets.optim.scale_by_rss`."""

    sum_of_squares: Updates


class ScaleByRmsState(NamedTuple):
    """Step count and second moment of :func:`~funcnets.optim.scale_by_rms`."""

    count: jax.Array  # type: ignore[assignment]  # optax's field name; shadows tuple.count
    nu: Updates


class ScaleByStddevState(NamedTuple):
    """Step count, first and second moments of :func:`~funcnets.optim.scale_by_stddev`."""

    count: jax.Array  # type: ignore[assignment]  # optax's field name; shadows tuple.count
    mu: Updates
    nu: Updates


class ScaleByAdamState(NamedTuple):
    """Step count and moments of Adam and Adamax (``nu`` is Adamax's infinity norm)."""

    count: jax.Array  # type: ignore[assignment]  # optax's field name; shadows tuple.count
    mu: Updates
    nu: Updates


class ScaleByAmsgradState(NamedTuple):
    """Step count, moments and running maximum ``nu_max`` of AMSGrad."""

    count: jax.Array  # type: ignore[assignment]  # optax's field name; shadows tuple.count
    mu: Updates
    nu: Updates
    nu_max: Updates


class ScaleByAdaDeltaState(NamedTuple):
    """Running averages of squared gradients ``e_g`` and squared steps ``e_x``."""

    e_g: Updates
    e_x: Updates


class ScaleByLionState(NamedTuple):
    """Momentum of :func:`~funcnets.optim.scale_by_lion`."""

    mu: Updates


class MaskedState(NamedTuple):
    """State of the inner transformation of :func:`masked`."""

    inner_state: OptState


class MultiTransformState(NamedTuple):
    """One inner state per label of :func:`multi_transform`."""

    inner_states: dict[Hashable, OptState]


def learning_rate(opt_state: OptState) -> jax.Array | None:
    """The learning rate of the last update, from an optimizer state with a schedule.

    Read from the first :class:`ScaleByScheduleState` in ``opt_state`` (depth
    first, in pytree order), e.g. to log the learning rate of each epoch.

    Args:
        opt_state: Any optimizer state, e.g. of ``adam(schedule)``.

    Returns:
        A float32 scalar, or None when no scheduled learning rate is in the state
        (a constant learning rate keeps no state).

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> tx = fn.optim.sgd(fn.optim.linear_schedule(1.0, 0.0, transition_steps=4))
        >>> params = {"w": jnp.zeros(2)}
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     _, state = tx.update({"w": jnp.ones(2)}, state)
        >>> fn.optim.learning_rate(state)  # schedule(1): the second update's rate
        Array(0.75, dtype=float32)
        >>> fn.optim.learning_rate(fn.optim.sgd(0.1).init(params)) is None
        True
    """
    nodes = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, ScaleByScheduleState))
    return next((n.learning_rate for n in nodes if isinstance(n, ScaleByScheduleState)), None)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates``, leaf by leaf, in each parameter's dtype.

    Args:
        params: A pytree of arrays.
        updates: A pytree of the same structure (e.g. from ``update``).

    Returns:
        The new parameters; each leaf keeps the dtype of the parameter, so a
        bfloat16 parameter stays bfloat16 whatever the dtype of its update.
    """
    return jax.tree.map(lambda p, u: jnp.asarray(p + u, dtype=jnp.result_type(p)), params, updates)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transformations one after the other.

    ``chain(a, b).update`` feeds ``a``'s output updates to ``b``; the state is
    the tuple of the inner states. Any object with optax's ``init``/``update``
    protocol (an optax transformation included) can be chained.

    Args:
        *transforms: The transformations, in the order they are applied.

    Returns:
        The composite transformation.
    """

    def init(params: Params) -> tuple[OptState, ...]:
        return tuple(t.init(params) for t in transforms)

    def update(
        updates: Updates, state: tuple[OptState, ...], params: Params | None = None
    ) -> tuple[Updates, tuple[OptState, ...]]:
        if len(state) != len(transforms):
            raise ValueError(
                f"chain of {len(transforms)} transformations got a state of length "
                f"{len(state)}; was it made by this chain's init?"
            )
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def _resolve(tree_or_fn: Any, tree: Params) -> Any:
    return tree_or_fn(tree) if callable(tree_or_fn) else tree_or_fn


def _keep(mask: Any, tree: Any) -> Any:
    """Replace each subtree of ``tree`` whose mask entry is False by a MaskedNode."""
    return jax.tree.map(lambda m, sub: sub if m else MaskedNode(), mask, tree)


def masked(inner: GradientTransformation, mask: Any) -> GradientTransformation:
    """Apply ``inner`` to the leaves selected by ``mask``; pass the others through.

    Masked-out leaves are hidden from ``inner`` (it neither sees nor keeps state
    for them) and their updates come out unchanged, as in optax. To freeze
    leaves instead, send them to :func:`~funcnets.optim.set_to_zero` with
    :func:`multi_transform`.

    Args:
        inner: The transformation to apply to the selected leaves.
        mask: A pytree of Python bools with the structure of the params (or a
            prefix of it, a bool then covering a whole subtree), True where
            ``inner`` applies; or a function of the params (or updates)
            returning such a pytree.

    Returns:
        The masked transformation; its state is ``MaskedState(inner_state)``.
    """

    def init(params: Params) -> MaskedState:
        return MaskedState(inner.init(_keep(_resolve(mask, params), params)))

    def update(
        updates: Updates, state: MaskedState, params: Params | None = None
    ) -> tuple[Updates, MaskedState]:
        mask_tree = _resolve(mask, updates)
        inner_params = None if params is None else _keep(mask_tree, params)
        new, inner_state = inner.update(_keep(mask_tree, updates), state.inner_state, inner_params)
        merged = jax.tree.map(lambda m, n, u: n if m else u, mask_tree, new, updates)
        return merged, MaskedState(inner_state)

    return GradientTransformation(init, update)


def multi_transform(
    transforms: Mapping[Hashable, GradientTransformation], param_labels: Any
) -> GradientTransformation:
    """Apply a different transformation to each labelled group of leaves.

    Each leaf goes to exactly one transformation, chosen by its label; this is
    how to freeze part of a model (label it for ``set_to_zero()``)::

        labels = {"encoder": "frozen", "head": "train"}
        tx = multi_transform({"train": adam(1e-3), "frozen": set_to_zero()}, labels)

    Args:
        transforms: Transformations keyed by label.
        param_labels: A pytree of labels with the structure of the params (or a
            prefix of it), or a function of the params returning one.

    Returns:
        The combined transformation; its state is
        ``MultiTransformState(inner_states)``, one state per label.

    Raises:
        ValueError: At ``init``, if some label has no transformation.
    """

    def group(labels: Any, label: Hashable) -> GradientTransformation:
        return masked(transforms[label], jax.tree.map(lambda x: x == label, labels))

    def init(params: Params) -> MultiTransformState:
        labels = _resolve(param_labels, params)
        missing = set(jax.tree.leaves(labels)) - set(transforms)
        if missing:
            raise ValueError(
                f"multi_transform: labels {sorted(map(str, missing))} have no transformation; "
                f"transformations are given for {sorted(map(str, transforms))}"
            )
        return MultiTransformState({k: group(labels, k).init(params) for k in transforms})

    def update(
        updates: Updates, state: MultiTransformState, params: Params | None = None
    ) -> tuple[Updates, MultiTransformState]:
        labels = _resolve(param_labels, updates)
        inner_states = {}
        for k in transforms:
            updates, inner_states[k] = group(labels, k).update(
                updates, state.inner_states[k], params
            )
        return updates, MultiTransformState(inner_states)

    return GradientTransformation(init, update)
