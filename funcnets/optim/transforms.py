"""Building blocks: each transformation does one thing to the updates.

Notation in the docstrings: ``g`` is the incoming update (usually the
gradient), ``t = 1, 2, ...`` the step number, ``m`` and ``v`` moving averages
kept in the state, ``p`` the parameter. All operations are elementwise.
"""

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp

from funcnets.optim.base import (
    CountState,
    EmptyState,
    GradientTransformation,
    Params,
    ScalarOrSchedule,
    ScaleByAdaDeltaState,
    ScaleByAdamState,
    ScaleByAmsgradState,
    ScaleByLionState,
    ScaleByRmsState,
    ScaleByRssState,
    ScaleByScheduleState,
    ScaleByStddevState,
    TraceState,
    Updates,
    masked,
)
from funcnets.optim.hyperparameters import (
    DECAY,
    FINITE,
    NON_NEGATIVE,
    POSITIVE,
    RATE,
    UNIT,
    checked,
)


def _zero_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def _increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the dtype's maximum instead of wrapping."""
    return count + (count < jnp.iinfo(count.dtype).max).astype(count.dtype)


def _promote(g: jax.Array, m: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cast an update and an accumulator (e.g. a bfloat16 ``mu``) to their common dtype.

    Explicit (JAX's standard promotion lattice), so the transforms also run
    under ``jax_numpy_dtype_promotion="strict"``.
    """
    with jax.numpy_dtype_promotion("standard"):
        dtype = jnp.promote_types(g.dtype, m.dtype)
    return g.astype(dtype), m.astype(dtype)


def _ema(g: jax.Array, m: jax.Array, decay: float) -> jax.Array:
    """Exponential moving average: ``(1 - decay) * g + decay * m``."""
    g, m = _promote(g, m)
    return (1 - decay) * g + decay * m


def _debias(tree: Updates, decay: float, count: jax.Array) -> Updates:
    """Bias correction ``x / (1 - decay^count)`` of each leaf, in the leaf's dtype.

    ``decay^count`` is one ``lax.pow``, rounded as optax rounds it, eagerly or
    under jit (an eager ``decay**count`` with a concrete integer count would
    multiply repeatedly and round differently).
    """
    correction = 1 - jax.lax.pow(jnp.asarray(decay), count)
    return jax.tree.map(lambda x: x / correction.astype(x.dtype), tree)


def _as_before(new_state: Any, state: Any) -> Any:
    """Cast each leaf of ``new_state`` to the dtype it had in ``state``.

    A state keeps the dtypes ``init`` gave it (``mu_dtype`` included) whatever
    the dtype of the gradients, so it can be a ``lax.scan`` carry or a donated
    buffer and is saved with the same dtypes every step.
    """
    return jax.tree.map(lambda new, old: new.astype(old.dtype), new_state, state)


def _stateless(fn: Callable[[Updates, Params | None], Updates]) -> GradientTransformation:
    """A transformation without state from ``fn(updates, params) -> updates``."""

    def init(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(
        updates: Updates, state: EmptyState, params: Params | None = None
    ) -> tuple[Updates, EmptyState]:
        return fn(updates, params), state

    return GradientTransformation(init, update)


def identity() -> GradientTransformation:
    """Leave the updates unchanged."""
    return _stateless(lambda updates, params: updates)


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros: applied, it leaves the parameters unchanged.

    Use it with :func:`~funcnets.optim.multi_transform` to freeze leaves.
    """
    return _stateless(lambda updates, params: jax.tree.map(jnp.zeros_like, updates))


@checked(step_size=FINITE)
def scale(step_size: float | jax.Array) -> GradientTransformation:
    """Multiply the updates by a fixed scalar: ``u = step_size * g``."""
    return _stateless(lambda updates, params: jax.tree.map(lambda g: step_size * g, updates))


@checked(learning_rate=RATE)
def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiply by the learning rate ``eta_t``, negated by default: ``u = -eta_t * g``.

    Args:
        learning_rate: A scalar, or a schedule called with the number of
            previous updates (0 at the first update).
        flip_sign: Negate the learning rate (the default), turning a descent
            direction into a step to add to the parameters.

    Returns:
        The transformation; its state is ``EmptyState()`` for a scalar, and for a
        schedule ``ScaleByScheduleState(count, learning_rate)``, which records the
        rate of the last update (see :func:`~funcnets.optim.learning_rate`).
    """
    sign = -1 if flip_sign else 1
    if not callable(learning_rate):
        return scale(sign * learning_rate)

    def init(params: Params) -> ScaleByScheduleState:
        del params
        count = _zero_count()
        return ScaleByScheduleState(count, jnp.asarray(learning_rate(count), jnp.float32))

    def update(
        updates: Updates, state: ScaleByScheduleState, params: Params | None = None
    ) -> tuple[Updates, ScaleByScheduleState]:
        del params
        rate = learning_rate(state.count)
        updates = jax.tree.map(lambda g: jnp.asarray(sign * rate, g.dtype) * g, updates)
        return updates, ScaleByScheduleState(
            _increment(state.count), jnp.asarray(rate, jnp.float32)
        )

    return GradientTransformation(init, update)


@checked(decay=DECAY)
def trace(
    decay: float, nesterov: bool = False, accumulator_dtype: Any | None = None
) -> GradientTransformation:
    """Heavy-ball momentum: ``m_t = g_t + decay * m_{t-1}``, ``u = m_t``.

    With ``nesterov=True`` the update looks one step ahead:
    ``u = g_t + decay * m_t`` (Sutskever et al., 2013, in the form used by
    optax and PyTorch; the momentum is not damped by ``1 - decay``).

    Args:
        decay: Momentum coefficient.
        nesterov: Use Nesterov's accelerated form.
        accumulator_dtype: dtype of the stored momentum (default: that of the
            params).

    Returns:
        The transformation; its state is ``TraceState(trace)``.
    """

    def init(params: Params) -> TraceState:
        return TraceState(
            jax.tree.map(lambda p: jnp.zeros_like(p, dtype=accumulator_dtype), params)
        )

    def update(
        updates: Updates, state: TraceState, params: Params | None = None
    ) -> tuple[Updates, TraceState]:
        del params

        def accumulate(g: jax.Array, m: jax.Array) -> jax.Array:
            g, m = _promote(g, m)
            return g + decay * m

        new_trace = jax.tree.map(accumulate, updates, state.trace)
        if nesterov:
            updates = jax.tree.map(accumulate, updates, new_trace)
        else:
            updates = new_trace
        return updates, _as_before(TraceState(new_trace), state)

    return GradientTransformation(init, update)


@checked(initial_accumulator_value=NON_NEGATIVE, eps=NON_NEGATIVE)
def scale_by_rss(
    initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> GradientTransformation:
    """Adagrad's scaling: ``s_t = s_{t-1} + g^2``, ``u = g / sqrt(s_t + eps)``.

    Leaves whose accumulator is exactly zero get a zero update.

    Args:
        initial_accumulator_value: Starting value ``s_0`` (>= 0).
        eps: Added inside the square root.

    Returns:
        The transformation; its state is ``ScaleByRssState(sum_of_squares)``.
    """

    def init(params: Params) -> ScaleByRssState:
        return ScaleByRssState(
            jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params)
        )

    def update(
        updates: Updates, state: ScaleByRssState, params: Params | None = None
    ) -> tuple[Updates, ScaleByRssState]:
        del params
        s = jax.tree.map(lambda g, s: s + g * g, updates, state.sum_of_squares)
        updates = jax.tree.map(
            lambda g, s: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0) * g, updates, s
        )
        return updates, _as_before(ScaleByRssState(s), state)

    return GradientTransformation(init, update)


def _rms_scaling(v: jax.Array, eps: float, eps_in_sqrt: bool) -> jax.Array:
    """``1 / sqrt(v + eps)`` or ``1 / (sqrt(v) + eps)``."""
    return jax.lax.rsqrt(v + eps) if eps_in_sqrt else 1 / (jnp.sqrt(v) + eps)


@checked(decay=DECAY, eps=NON_NEGATIVE, initial_scale=NON_NEGATIVE)
def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSprop's scaling (Hinton, 2012): divide by a running root mean square.

    ``v_t = decay * v_{t-1} + (1 - decay) * g^2``, ``u = g / sqrt(v_t + eps)``.

    Args:
        decay: Decay of the moving average of squared gradients.
        eps: Added to the denominator, inside the square root by default.
        initial_scale: Starting value ``v_0``.
        eps_in_sqrt: If False, ``u = g / (sqrt(v_t) + eps)`` (PyTorch's form).
        bias_correction: Divide ``v_t`` by ``1 - decay^t`` first.

    Returns:
        The transformation; its state is ``ScaleByRmsState(count, nu)``.
    """

    def init(params: Params) -> ScaleByRmsState:
        return ScaleByRmsState(
            _zero_count(), jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        )

    def update(
        updates: Updates, state: ScaleByRmsState, params: Params | None = None
    ) -> tuple[Updates, ScaleByRmsState]:
        del params
        count = _increment(state.count)
        nu = jax.tree.map(lambda g, v: _ema(g * g, v, decay), updates, state.nu)
        nu_hat = _debias(nu, decay, count) if bias_correction else nu
        updates = jax.tree.map(lambda g, v: _rms_scaling(v, eps, eps_in_sqrt) * g, updates, nu_hat)
        return updates, _as_before(ScaleByRmsState(count, nu), state)

    return GradientTransformation(init, update)


@checked(decay=DECAY, eps=NON_NEGATIVE, initial_scale=NON_NEGATIVE)
def scale_by_stddev(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    """Centered RMSprop's scaling: divide by a running estimate of the standard deviation.

    ``m_t = decay * m_{t-1} + (1 - decay) * g``,
    ``v_t = decay * v_{t-1} + (1 - decay) * g^2``,
    ``u = g / sqrt(v_t - m_t^2 + eps)`` (Graves, 2013).

    Args:
        decay: Decay of both moving averages.
        eps: Added to the denominator, inside the square root by default.
        initial_scale: Starting value ``v_0`` (``m_0`` is zero).
        eps_in_sqrt: If False, ``u = g / (sqrt(v_t - m_t^2) + eps)``.
        bias_correction: Divide ``m_t`` and ``v_t`` by ``1 - decay^t`` first.

    Returns:
        The transformation; its state is ``ScaleByStddevState(count, mu, nu)``.
    """

    def init(params: Params) -> ScaleByStddevState:
        return ScaleByStddevState(
            _zero_count(),
            jax.tree.map(jnp.zeros_like, params),
            jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params),
        )

    def update(
        updates: Updates, state: ScaleByStddevState, params: Params | None = None
    ) -> tuple[Updates, ScaleByStddevState]:
        del params
        count = _increment(state.count)
        mu = jax.tree.map(lambda g, m: _ema(g, m, decay), updates, state.mu)
        nu = jax.tree.map(lambda g, v: _ema(g * g, v, decay), updates, state.nu)
        mu_hat, nu_hat = mu, nu
        if bias_correction:
            mu_hat, nu_hat = _debias(mu, decay, count), _debias(nu, decay, count)
        updates = jax.tree.map(
            lambda g, m, v: _rms_scaling(v - m * m, eps, eps_in_sqrt) * g, updates, mu_hat, nu_hat
        )
        return updates, _as_before(ScaleByStddevState(count, mu, nu), state)

    return GradientTransformation(init, update)


def _adam_init(mu_dtype: Any) -> Callable[[Params], ScaleByAdamState]:
    def init(params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(
            _zero_count(),
            jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params),
            jax.tree.map(jnp.zeros_like, params),
        )

    return init


@checked(b1=DECAY, b2=DECAY, eps=NON_NEGATIVE, eps_root=NON_NEGATIVE)
def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Adam's scaling (Kingma & Ba, 2015).

    ``m_t = b1 m_{t-1} + (1 - b1) g``, ``v_t = b2 v_{t-1} + (1 - b2) g^2``,
    ``u = m_hat / (sqrt(v_hat + eps_root) + eps)`` with ``m_hat = m_t / (1 - b1^t)``,
    ``v_hat = v_t / (1 - b2^t)``: ``eps`` is outside the root and after bias
    correction (as in the paper, optax and PyTorch; Keras folds it in before).

    With ``nesterov=True`` (NAdam, Dozat 2016):
    ``m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)``.

    Args:
        b1: Decay of the first moment.
        b2: Decay of the second moment.
        eps: Added to the denominator outside the square root.
        eps_root: Added inside the square root.
        mu_dtype: dtype of the stored first moment (default: that of the params).
        nesterov: Use Nesterov momentum (NAdam).

    Returns:
        The transformation; its state is ``ScaleByAdamState(count, mu, nu)``.
    """

    def update(
        updates: Updates, state: ScaleByAdamState, params: Params | None = None
    ) -> tuple[Updates, ScaleByAdamState]:
        del params
        count = _increment(state.count)
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: _ema(g * g, v, b2), updates, state.nu)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: b1 * m + (1 - b1) * g,
                _debias(mu, b1, _increment(count)),
                _debias(updates, b1, count),
            )
        else:
            mu_hat = _debias(mu, b1, count)
        nu_hat = _debias(nu, b2, count)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return updates, _as_before(ScaleByAdamState(count, mu, nu), state)

    return GradientTransformation(_adam_init(mu_dtype), update)


@checked(b1=DECAY, b2=DECAY, eps=NON_NEGATIVE, eps_root=NON_NEGATIVE)
def scale_by_amsgrad(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    """AMSGrad's scaling (Reddi et al., 2018): Adam with a non-decreasing denominator.

    ``v_max_t = max(v_max_{t-1}, v_hat_t)``,
    ``u = m_hat / (sqrt(v_max_t + eps_root) + eps)``, the moments as in Adam.

    Args:
        b1: Decay of the first moment.
        b2: Decay of the second moment.
        eps: Added to the denominator outside the square root.
        eps_root: Added inside the square root.
        mu_dtype: dtype of the stored first moment (default: that of the params).
        bias_correction_mu: Divide ``m_t`` by ``1 - b1^t``.
        bias_correction_nu: Divide ``v_t`` by ``1 - b2^t`` before the maximum
            (False is the paper's form).

    Returns:
        The transformation; its state is ``ScaleByAmsgradState(count, mu, nu, nu_max)``.
    """

    def init(params: Params) -> ScaleByAmsgradState:
        return ScaleByAmsgradState(
            _zero_count(),
            jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params),
            jax.tree.map(jnp.zeros_like, params),
            jax.tree.map(jnp.zeros_like, params),
        )

    def update(
        updates: Updates, state: ScaleByAmsgradState, params: Params | None = None
    ) -> tuple[Updates, ScaleByAmsgradState]:
        del params
        count = _increment(state.count)
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: _ema(g * g, v, b2), updates, state.nu)
        mu_hat = _debias(mu, b1, count) if bias_correction_mu else mu
        nu_hat = _debias(nu, b2, count) if bias_correction_nu else nu
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu_hat)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_max)
        return updates, _as_before(ScaleByAmsgradState(count, mu, nu, nu_max), state)

    return GradientTransformation(init, update)


@checked(b1=DECAY, b2=DECAY, eps=NON_NEGATIVE)
def scale_by_adamax(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> GradientTransformation:
    """Adamax's scaling (Kingma & Ba, 2015, section 7.1): Adam with the infinity norm.

    ``m_t = b1 m_{t-1} + (1 - b1) g``, ``v_t = max(b2 v_{t-1}, |g| + eps)``,
    ``u = m_t / ((1 - b1^t) v_t)``.

    Args:
        b1: Decay of the first moment.
        b2: Decay of the infinity norm.
        eps: Added to ``|g|`` so the denominator is never zero.

    Returns:
        The transformation; its state is ``ScaleByAdamState(count, mu, nu)``.
    """

    def update(
        updates: Updates, state: ScaleByAdamState, params: Params | None = None
    ) -> tuple[Updates, ScaleByAdamState]:
        del params
        count = _increment(state.count)
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: jnp.maximum(jnp.abs(g) + eps, b2 * v), updates, state.nu)
        updates = jax.tree.map(lambda m, v: m / v, _debias(mu, b1, count), nu)
        return updates, _as_before(ScaleByAdamState(count, mu, nu), state)

    return GradientTransformation(_adam_init(None), update)


@checked(rho=UNIT, eps=NON_NEGATIVE)
def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    """Adadelta's scaling (Zeiler, 2012).

    ``E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g^2``,
    ``u = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g``,
    ``E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) u^2``.

    Args:
        rho: Decay of both running averages.
        eps: Added inside both square roots.

    Returns:
        The transformation; its state is ``ScaleByAdaDeltaState(e_g, e_x)``.
    """

    def init(params: Params) -> ScaleByAdaDeltaState:
        return ScaleByAdaDeltaState(
            jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params)
        )

    def update(
        updates: Updates, state: ScaleByAdaDeltaState, params: Params | None = None
    ) -> tuple[Updates, ScaleByAdaDeltaState]:
        del params
        e_g = jax.tree.map(lambda g, e: _ema(g * g, e, rho), updates, state.e_g)
        updates = jax.tree.map(
            lambda g, eg, ex: jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps) * g, updates, e_g, state.e_x
        )
        e_x = jax.tree.map(lambda u, e: _ema(u * u, e, rho), updates, state.e_x)
        return updates, _as_before(ScaleByAdaDeltaState(e_g, e_x), state)

    return GradientTransformation(init, update)


@checked(b1=UNIT, b2=UNIT)
def scale_by_lion(
    b1: float = 0.9, b2: float = 0.99, mu_dtype: Any | None = None
) -> GradientTransformation:
    """Lion's scaling (Chen et al., 2023): the sign of an interpolated momentum.

    ``u = sign((1 - b1) g + b1 m_{t-1})``, then ``m_t = (1 - b2) g + b2 m_{t-1}``.

    Args:
        b1: Weight of the momentum in the update direction.
        b2: Decay of the momentum.
        mu_dtype: dtype of the stored momentum (default: that of the params).

    Returns:
        The transformation; its state is ``ScaleByLionState(mu)``.
    """

    def init(params: Params) -> ScaleByLionState:
        return ScaleByLionState(jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params))

    def update(
        updates: Updates, state: ScaleByLionState, params: Params | None = None
    ) -> tuple[Updates, ScaleByLionState]:
        del params
        direction = jax.tree.map(lambda g, m: jnp.sign(_ema(g, m, b1)), updates, state.mu)
        mu = jax.tree.map(lambda g, m: _ema(g, m, b2), updates, state.mu)
        return direction, _as_before(ScaleByLionState(mu), state)

    return GradientTransformation(init, update)


@checked(weight_decay=RATE)
def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: Any | None = None
) -> GradientTransformation:
    """Add decoupled weight decay: ``u = g + lambda_t * p``.

    Placed before ``scale_by_learning_rate`` (as in :func:`~funcnets.optim.adamw`),
    the decay is multiplied by the learning rate: ``p <- p - eta (u_adam + lambda p)``.

    Args:
        weight_decay: ``lambda``, a scalar or a schedule of the step count.
        mask: Optional pytree of bools (or a function of the params returning
            one), True where decay applies; see :func:`~funcnets.optim.masked`.

    Returns:
        The transformation; its state is ``CountState(count)`` for a schedule,
        ``EmptyState()`` for a scalar (inside ``MaskedState`` with a mask).

    Raises:
        ValueError: At ``update``, if ``params`` is not given.
    """

    def init(params: Params) -> CountState | EmptyState:
        del params
        return CountState(_zero_count()) if callable(weight_decay) else EmptyState()

    def update(
        updates: Updates, state: CountState | EmptyState, params: Params | None = None
    ) -> tuple[Updates, CountState | EmptyState]:
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        rate: float | jax.Array
        if callable(weight_decay):
            count = cast(CountState, state).count  # init made a CountState for a schedule
            rate, state = weight_decay(count), CountState(_increment(count))
        elif isinstance(weight_decay, (int, float)) and weight_decay == 0:
            return updates, state
        else:
            rate = weight_decay
        return jax.tree.map(lambda g, p: g + rate * p, updates, params), state

    tx = GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)


@checked(max_delta=POSITIVE)
def clip(max_delta: float | jax.Array) -> GradientTransformation:
    """Clip every element of the updates to ``[-max_delta, max_delta]``."""
    return _stateless(
        lambda updates, params: jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), updates)
    )


@checked(max_norm=POSITIVE)
def clip_by_global_norm(max_norm: float | jax.Array) -> GradientTransformation:
    """Rescale the updates so their global norm is at most ``max_norm``.

    ``n = sqrt(sum over all leaves of sum(g^2))``; if ``n >= max_norm``,
    ``u = g / n * max_norm``, else ``u = g`` (Pascanu et al., 2013).
    """

    def fn(updates: Updates, params: Params | None) -> Updates:
        del params
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(updates)))
        return jax.tree.map(
            lambda g: jnp.where(norm < max_norm, g, g / norm.astype(g.dtype) * max_norm), updates
        )

    return _stateless(fn)
