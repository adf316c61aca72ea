"""Optimizers written from their update rules, with optax's protocol and names.

A :class:`GradientTransformation` is a pair of pure functions ``init(params)``
and ``update(grads, state, params=None)``; optimizers are chains of small
building blocks, and optax transformations can be mixed in freely::

    import funcnets as fn

    tx = fn.optim.chain(fn.optim.clip_by_global_norm(1.0), fn.optim.adamw(1e-3))
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = fn.optim.apply_updates(params, updates)
"""

from funcnets.optim.alias import (
    adadelta,
    adagrad,
    adam,
    adamax,
    adamw,
    amsgrad,
    lion,
    nadam,
    rmsprop,
    sgd,
)
from funcnets.optim.base import (
    CountState,
    EmptyState,
    GradientTransformation,
    MaskedNode,
    MaskedState,
    MultiTransformState,
    OptState,
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
    Schedule,
    TraceState,
    Updates,
    apply_updates,
    chain,
    learning_rate,
    masked,
    multi_transform,
)
from funcnets.optim.schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
    piecewise_constant_schedule,
    warmup_cosine_decay_schedule,
)
from funcnets.optim.transforms import (
    add_decayed_weights,
    clip,
    clip_by_global_norm,
    identity,
    scale,
    scale_by_adadelta,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    set_to_zero,
    trace,
)

__all__ = [
    # protocol and combinators
    "GradientTransformation",
    "apply_updates",
    "chain",
    "masked",
    "multi_transform",
    "learning_rate",
    # building blocks
    "identity",
    "set_to_zero",
    "scale",
    "scale_by_learning_rate",
    "trace",
    "scale_by_rss",
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adam",
    "scale_by_amsgrad",
    "scale_by_adamax",
    "scale_by_adadelta",
    "scale_by_lion",
    "add_decayed_weights",
    "clip",
    "clip_by_global_norm",
    # optimizers
    "sgd",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "amsgrad",
    "lion",
    # schedules
    "constant_schedule",
    "exponential_decay",
    "piecewise_constant_schedule",
    "linear_schedule",
    "cosine_decay_schedule",
    "warmup_cosine_decay_schedule",
    # state types
    "EmptyState",
    "MaskedNode",
    "CountState",
    "ScaleByScheduleState",
    "TraceState",
    "ScaleByRssState",
    "ScaleByRmsState",
    "ScaleByStddevState",
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByAdaDeltaState",
    "ScaleByLionState",
    "MaskedState",
    "MultiTransformState",
    # type aliases
    "Params",
    "Updates",
    "OptState",
    "Schedule",
    "ScalarOrSchedule",
]
