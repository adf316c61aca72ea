"""Training steps: pure functions ``step(ts, batch) -> (ts, metrics)``.

`objective_step` turns any objective ``(params, state, batch, key) -> (loss,
(new_state, metrics))`` into a step; `make_step` is the supervised objective
``loss_fn(net(x), y)`` on top of it. Both apply an update only when the loss,
the gradients and the updates are finite (`guarded_update`), and say so in
``metrics["finite"]``, the flag `fn.train.run` reads for its non-finite guard.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from funcnets.layers.base import Layer
from funcnets.optim.base import apply_updates
from funcnets.precision import loss_scale
from funcnets.train.metrics import Metric, MetricSpec, resolve
from funcnets.train.state import TrainState

Step = Callable[[TrainState, Any], tuple[TrainState, dict[str, jax.Array]]]
Objective = Callable[[Any, Any, Any, jax.Array], tuple[jax.Array, tuple[Any, dict[str, Any]]]]

#: The metrics key in which a step reports whether it applied its update.
FINITE = "finite"
_AUGMENT_STREAM = 0x41554721  # fold_in tag separating augmentation keys from layer keys


def step_key(ts: TrainState) -> jax.Array:
    """The key of the current step's randomness (dropout): ``fold_in(ts.key, ts.step)``."""
    return jax.random.fold_in(ts.key, ts.step)


def all_finite(*trees: Any) -> jax.Array:
    """True (a bool scalar) when every floating-point leaf of ``trees`` is finite.

    Computed as ``isfinite(sum(leaf * 0))`` (0 when all are finite, NaN when one
    is NaN or infinite): one multiply-reduce per leaf, which XLA fuses into a
    single pass, where ``all(isfinite(leaf))`` wrote a boolean array first.
    """
    zeros = [
        jnp.sum(jnp.asarray(leaf, jnp.float32) * 0)
        for leaf in jax.tree.leaves(trees)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    return jnp.isfinite(sum(zeros)) if zeros else jnp.asarray(True)


def global_norm(tree: Any) -> jax.Array:
    """``sqrt(sum of squares)`` over every leaf, in float32: the gradient norm of a step."""
    squares = [jnp.sum(jnp.square(leaf.astype(jnp.float32))) for leaf in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(squares)) if squares else jnp.zeros((), jnp.float32)


def either(pred: jax.Array, then: Callable[[], Any], otherwise: Callable[[], Any]) -> Any:
    """``then()`` where ``pred`` is True, else ``otherwise()``: the guard's choice, per backend.

    On CPU a conditional (``lax.cond``): the update runs in place and a rejected
    one costs nothing. On GPU and TPU a conditional reads its predicate back to
    the host every step, so both are computed and selected elementwise, which
    fuses into the update. Measured in benchmarks/README.md ("the guard").
    """
    if jax.default_backend() == "cpu":
        return lax.cond(pred, then, otherwise)
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), then(), otherwise())


def _takes_extra_args(optimizer: Any) -> bool:
    """Whether ``optimizer.update`` accepts keywords such as optax's ``value=``."""
    try:
        parameters = inspect.signature(optimizer.update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _update(optimizer: Any, grads: Any, opt_state: Any, params: Any, loss: jax.Array):
    """``optimizer.update``, handing the loss to optimizers that take it (``value=``)."""
    extra = {"value": loss} if _takes_extra_args(optimizer) else {}
    return optimizer.update(grads, opt_state, params, **extra)


def guarded_update(
    optimizer: Any, grads: Any, opt_state: Any, params: Any, loss: jax.Array
) -> tuple[Any, Any, jax.Array]:
    """One optimizer update, applied only if ``loss``, ``grads`` and the updates are finite.

    For hand-written steps (e.g. one update per network of a GAN). Returns
    ``(params, opt_state, finite)``; when ``finite`` is False both come back
    unchanged. Optimizers whose ``update`` takes keywords (optax's
    ``GradientTransformationExtraArgs``, e.g. ``reduce_on_plateau``) get
    ``value=loss``. With `fn.precision.dynamic_loss_scale`, ``grads`` are
    those of the scaled loss and may overflow: the optimizer skips such a
    step itself (zero updates, a lower scale), and it counts as finite.
    """
    updates, new_opt_state = _update(optimizer, grads, opt_state, params, loss)
    finite = all_finite(loss, updates)
    if loss_scale(opt_state) is None:
        finite = finite & jnp.isfinite(global_norm(grads))
    params, opt_state = either(
        finite, lambda: (apply_updates(params, updates), new_opt_state), lambda: (params, opt_state)
    )
    return params, opt_state, finite


def objective_step(objective: Objective, optimizer: Any, *, check_updates: bool = True) -> Step:
    """A step from ``objective(params, state, batch, key) -> (loss, (new_state, metrics))``.

    The step differentiates ``loss`` with respect to ``ts.params``
    (``jax.value_and_grad(..., has_aux=True)``, so ``state`` gets no
    gradient), calls ``objective`` with the step's key ``fold_in(ts.key,
    ts.step)``, and applies one update of ``optimizer`` when the loss, the
    metrics, the gradients and the updates are all finite (a gradient norm
    that overflows float32 counts as non-finite); otherwise
    params, state and optimizer state stay as they were. ``ts.step``
    advances either way.

    ``check_updates=False`` checks the loss, metrics and gradients only, and
    computes the update inside the conditional that applies it: as fast as an
    unguarded step on CPU, where checking the updates first costs one more
    pass over them and the optimizer state (an MLP with 670k parameters: 1.4x
    the step, benchmarks/README.md "The non-finite guard"), but a finite
    gradient turned non-finite by the optimizer (a NaN learning rate) is then
    applied.

    Its metrics are ``{"loss": loss, **metrics, "grad_norm": ‖grads‖, "finite":
    applied}``; an objective that adds a penalty can report its data loss
    under ``"loss"`` and the penalty under its own name.

    Loss scaling (float16): when ``optimizer`` is wrapped in
    `fn.precision.dynamic_loss_scale`, the step differentiates ``loss *
    scale`` (the scale is read from ``ts.opt_state``) and the optimizer
    unscales the gradients. A step whose scaled gradients overflow is skipped
    by the optimizer (zero updates, the scale lowered) and reported as
    finite, so the engine's guard does not stop on it; the metrics add
    ``loss_scale`` (the scale used) and ``overflow`` (1.0 on a skipped step,
    whose ``grad_norm`` is reported as 0), and the updates are always checked.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> net = fn.Dense(4)
        >>> def reconstruction(params, state, x, key):
        ...     y, state = net.apply(params, state, x, key=key, train=True)
        ...     return fn.losses.mse(y, x), (state, {})
        >>> step = jax.jit(fn.train.objective_step(reconstruction, fn.optim.adam(1e-2)))
        >>> ts = fn.train.init(net, fn.optim.adam(1e-2), jax.random.key(0), (8, 4))
        >>> ts, metrics = step(ts, jnp.ones((8, 4)))
        >>> sorted(metrics)
        ['finite', 'grad_norm', 'loss']
    """
    value_and_grad = jax.value_and_grad(objective, has_aux=True)

    def scaled_objective(params, state, batch, key, scale):
        loss, aux = objective(params, state, batch, key)
        return loss * scale, (loss, aux)

    scaled_value_and_grad = jax.value_and_grad(scaled_objective, has_aux=True)

    def step(ts: TrainState, batch: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        scale = loss_scale(ts.opt_state)
        if scale is None:
            (loss, (new_state, values)), grads = value_and_grad(
                ts.params, ts.state, batch, step_key(ts)
            )
            grad_norm = global_norm(grads)  # finite only if every gradient is (or it overflows)
            finite = all_finite(loss, values) & jnp.isfinite(grad_norm)
        else:  # the optimizer unscales the gradients and skips an overflow (see above)
            (_, (loss, (new_state, values))), grads = scaled_value_and_grad(
                ts.params, ts.state, batch, step_key(ts), scale
            )
            overflow = ~all_finite(grads)  # what the optimizer skips
            grad_norm = jnp.where(overflow, 0.0, global_norm(grads) / scale)
            values = {**values, "loss_scale": scale, "overflow": overflow.astype(jnp.float32)}
            finite = all_finite(loss, values)

        def update(updates: Any = None, new_opt_state: Any = None) -> tuple[Any, Any, Any]:
            if updates is None:
                updates, new_opt_state = _update(optimizer, grads, ts.opt_state, ts.params, loss)
            return apply_updates(ts.params, updates), new_state, new_opt_state

        keep = lambda: (ts.params, ts.state, ts.opt_state)  # noqa: E731
        if check_updates or scale is not None:
            updates, new_opt_state = _update(optimizer, grads, ts.opt_state, ts.params, loss)
            finite = finite & all_finite(updates)
            params, state, opt_state = either(finite, lambda: update(updates, new_opt_state), keep)
        else:
            params, state, opt_state = either(finite, update, keep)
        metrics = {"loss": loss, **values, "grad_norm": grad_norm, FINITE: finite}
        return ts._replace(params=params, state=state, opt_state=opt_state, step=ts.step + 1), {
            name: jnp.asarray(value) for name, value in metrics.items()
        }

    return step


def supervised_objective(
    net: Layer,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    penalty: Callable[[Any], jax.Array] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> Objective:
    """The objective ``loss_fn(net(x), y) + penalty(params)`` on ``batch = (x, y)``.

    Reports ``loss`` (the data loss alone), ``penalty`` (when given) and each
    of ``metrics`` on this batch's training outputs.
    """
    extra = {name: m for name, m in (metrics or {}).items() if name != "loss"}

    def objective(params, state, batch, key):
        x, y = batch
        if augment is not None:
            x = augment(jax.random.fold_in(key, _AUGMENT_STREAM), x)
        outputs, new_state = net.apply(params, state, x, key=key, train=True)
        data_loss = loss_fn(outputs, y)
        values = {"loss": data_loss}
        values.update({name: jnp.asarray(m(outputs, y), jnp.float32) for name, m in extra.items()})
        loss = data_loss
        if penalty is not None:
            values["penalty"] = penalty(params)
            loss = loss + values["penalty"]
        return loss, (new_state, values)

    return objective


def make_step(
    net: Layer,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    optimizer: Any,
    *,
    penalty: Callable[[Any], jax.Array] | None = None,
    metrics: MetricSpec = ("loss",),
    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    check_updates: bool = True,
) -> Step:
    """A pure, jittable supervised step ``(ts, (x, y)) -> (ts, metrics)``.

    Minimises ``loss_fn(net(x), y) + penalty(params)`` with one update of
    ``optimizer`` (any funcnets or optax optimizer), through `objective_step`:
    dropout uses the key ``fold_in(ts.key, ts.step)``, a non-finite step is
    not applied (``check_updates``: see `objective_step`). ``augment(key, x)``
    transforms each training batch inside the step. ``x`` may be any pytree
    the net takes (e.g. ``(tokens, lengths)``).

    Returns metrics ``loss`` (the data loss), ``penalty`` (with a penalty),
    each of ``metrics`` (names or functions ``(outputs, targets) -> scalar``),
    ``grad_norm`` and ``finite``.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> net = fn.models.mlp([16, 3])
        >>> step = jax.jit(fn.train.make_step(net, fn.losses.sparse_cross_entropy,
        ...                                   fn.optim.adam(1e-3), metrics=("loss", "accuracy")),
        ...                donate_argnums=0)
        >>> ts = fn.train.init(net, fn.optim.adam(1e-3), jax.random.key(0), (32, 5))
        >>> ts, metrics = step(ts, (jnp.ones((32, 5)), jnp.zeros(32, jnp.int32)))
        >>> sorted(metrics)
        ['accuracy', 'finite', 'grad_norm', 'loss']
    """
    objective = supervised_objective(
        net, loss_fn, penalty=penalty, metrics=resolve(metrics, loss_fn), augment=augment
    )
    return objective_step(objective, optimizer, check_updates=check_updates)
