"""Learning-rate schedules: pure functions of the step count.

A schedule maps the number of updates already made (an int32 scalar, 0 at the
first update) to a scalar, and can be jitted with it. Any of them can be
passed as ``learning_rate`` to every alias, or as ``weight_decay`` to
:func:`~funcnets.optim.add_decayed_weights`.
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from funcnets.optim.base import Schedule


def constant_schedule(value: float | jax.Array) -> Schedule:
    """``eta_t = value`` at every step."""

    def schedule(count: jax.Array) -> jax.Array:
        del count
        return jnp.asarray(value)

    return schedule


def linear_schedule(
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Linear ramp from ``init_value`` to ``end_value``.

    With ``s = clip(t - transition_begin, 0, transition_steps)``:
    ``eta_t = end_value + (init_value - end_value) * (1 - s / transition_steps)``.
    Before ``transition_begin`` it is ``init_value``; from
    ``transition_begin + transition_steps`` on it is exactly ``end_value``.

    Args:
        init_value: Value up to ``transition_begin``.
        end_value: Value from the end of the transition on.
        transition_steps: Length of the ramp; ``<= 0`` gives the constant
            ``init_value`` (as in optax).
        transition_begin: Step at which the ramp starts (>= 0).

    Returns:
        The schedule.

    Raises:
        ValueError: If ``transition_begin`` is negative.
    """
    if transition_begin < 0:
        raise ValueError(f"linear_schedule: transition_begin must be >= 0, got {transition_begin}")
    if transition_steps <= 0:
        return constant_schedule(init_value)

    def schedule(count: jax.Array) -> jax.Array:
        done = jnp.clip(count - transition_begin, 0, transition_steps) / transition_steps
        return end_value + (init_value - end_value) * (1 - done)

    return schedule


def piecewise_constant_schedule(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    """Multiply the value by a factor at each boundary.

    ``eta_t = init_value * prod(scale_b for each boundary b <= t)``: a
    boundary's scale applies from that step on.

    Args:
        init_value: Value before the first boundary.
        boundaries_and_scales: ``{step: scale}``, scales >= 0.

    Returns:
        The schedule.

    Raises:
        ValueError: If a scale is negative.
    """
    steps = sorted((boundaries_and_scales or {}).items())
    if any(s < 0 for _, s in steps):
        raise ValueError(f"piecewise_constant_schedule: scales must be >= 0, got {dict(steps)}")

    def schedule(count: jax.Array) -> jax.Array:
        value = jnp.asarray(init_value, jnp.float32)
        for boundary, factor in steps:
            value = jnp.where(count >= boundary, value * factor, value)
        return value

    return schedule


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """Exponential decay, optionally in steps.

    ``eta_t = init_value * decay_rate ^ ((t - transition_begin) / transition_steps)``.
    The value is ``init_value`` up to ``transition_begin``. With ``staircase``
    the exponent is floored, so the value drops once every
    ``transition_steps``. With ``end_value`` the value is clipped so it never
    passes it (a floor when decaying, a ceiling when ``decay_rate > 1``).

    Args:
        init_value: Starting value.
        transition_steps: Steps over which the value is multiplied by
            ``decay_rate``; ``<= 0`` gives the constant ``init_value`` (as in
            optax).
        decay_rate: Factor per ``transition_steps`` (> 0).
        transition_begin: Step at which the decay starts (>= 0).
        staircase: Decay in discrete jumps.
        end_value: Optional bound on the value.

    Returns:
        The schedule.

    Raises:
        ValueError: If ``decay_rate <= 0`` or ``transition_begin < 0``.
    """
    if decay_rate <= 0:
        raise ValueError(f"exponential_decay: decay_rate must be > 0, got {decay_rate}")
    if transition_begin < 0:
        raise ValueError(
            f"exponential_decay: transition_begin must be >= 0, got {transition_begin}"
        )
    if transition_steps <= 0:
        return constant_schedule(init_value)

    def schedule(count: jax.Array) -> jax.Array:
        elapsed = count - transition_begin
        exponent = elapsed / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = jnp.where(elapsed <= 0, init_value, init_value * decay_rate**exponent)
        if end_value is None:
            return value
        return jnp.maximum(value, end_value) if decay_rate < 1 else jnp.minimum(value, end_value)

    return schedule


def cosine_decay_schedule(
    init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0
) -> Schedule:
    """Cosine decay (Loshchilov & Hutter, 2017, without restarts).

    With ``s = min(t, decay_steps)`` and ``c = (1 + cos(pi * s / decay_steps)) / 2``:
    ``eta_t = init_value * ((1 - alpha) * c^exponent + alpha)``, from
    ``init_value`` down to ``alpha * init_value``, then constant.

    Args:
        init_value: Starting value.
        decay_steps: Length of the decay (> 0).
        alpha: Final value as a fraction of ``init_value``.
        exponent: Power applied to the cosine factor.

    Returns:
        The schedule.

    Raises:
        ValueError: If ``decay_steps <= 0``.
    """
    if decay_steps <= 0:
        raise ValueError(f"cosine_decay_schedule: decay_steps must be > 0, got {decay_steps}")

    def schedule(count: jax.Array) -> jax.Array:
        t = jnp.minimum(jnp.asarray(count, jnp.float32), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / decay_steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    For ``t < warmup_steps`` the value is :func:`linear_schedule` from
    ``init_value`` to ``peak_value``; from then on it is
    :func:`cosine_decay_schedule` of ``t - warmup_steps`` starting at
    ``peak_value``, reaching ``end_value`` at ``t = decay_steps`` (which
    counts the warm-up steps too) and staying there.

    Args:
        init_value: Value at step 0.
        peak_value: Value at the end of the warm-up.
        warmup_steps: Length of the warm-up (>= 0).
        decay_steps: Total length of warm-up plus decay (> ``warmup_steps``).
        end_value: Final value.
        exponent: Power applied to the cosine factor.

    Returns:
        The schedule.

    Raises:
        ValueError: If ``decay_steps <= warmup_steps``.
    """
    if decay_steps <= warmup_steps:
        raise ValueError(
            "warmup_cosine_decay_schedule: decay_steps (warm-up included) must exceed "
            f"warmup_steps, got decay_steps={decay_steps}, warmup_steps={warmup_steps}"
        )
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    decay = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)

    def schedule(count: jax.Array) -> jax.Array:
        return jnp.where(count < warmup_steps, warmup(count), decay(count - warmup_steps))

    return schedule
