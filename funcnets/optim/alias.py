"""Optimizers: fixed chains of building blocks, with optax's names and defaults.

In the update rules ``g`` is the gradient, ``eta`` the learning rate (a
scalar or a schedule of the step), ``t = 1, 2, ...`` the step and ``p`` the
parameter; the returned updates are added to the parameters with
:func:`~funcnets.optim.apply_updates`.

Hyperparameters are checked when an optimizer is built (see
:mod:`~funcnets.optim.hyperparameters`): a learning rate or weight decay is a
finite number >= 0 or a schedule; ``b1``, ``b2``, ``decay`` and ``momentum``
lie in [0, 1) (at 1 a moving average stops moving, and Adam's bias correction
``1 - b1^t`` is zero); Adadelta's ``rho`` and Lion's ``b1``, ``b2`` in [0, 1]
(finite at 1); every ``eps`` >= 0.
"""

from typing import Any

from funcnets.optim.base import GradientTransformation, ScalarOrSchedule, chain
from funcnets.optim.hyperparameters import DECAY, NON_NEGATIVE, RATE, UNIT, checked
from funcnets.optim.transforms import (
    add_decayed_weights,
    scale_by_adadelta,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    trace,
)


@checked(learning_rate=RATE, momentum=DECAY)
def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    ``p <- p - eta * g``; with momentum ``m_t = g + momentum * m_{t-1}``,
    ``p <- p - eta * m_t`` (Nesterov: ``p <- p - eta * (g + momentum * m_t)``;
    Sutskever et al., 2013).

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        momentum: Momentum coefficient, or None for plain SGD.
        nesterov: Use Nesterov momentum.
        accumulator_dtype: dtype of the momentum buffer.

    Returns:
        The optimizer.
    """
    lr = scale_by_learning_rate(learning_rate)
    if momentum is None:
        return chain(lr)
    return chain(trace(momentum, nesterov, accumulator_dtype), lr)


@checked(learning_rate=RATE, initial_accumulator_value=NON_NEGATIVE, eps=NON_NEGATIVE)
def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
) -> GradientTransformation:
    """Adagrad (Duchi et al., 2011).

    ``s_t = s_{t-1} + g^2`` (``s_0 = initial_accumulator_value``),
    ``p <- p - eta * g / sqrt(s_t + eps)``.

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        initial_accumulator_value: ``s_0``.
        eps: Added inside the square root.

    Returns:
        The optimizer.
    """
    return chain(
        scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )


@checked(
    learning_rate=RATE, decay=DECAY, eps=NON_NEGATIVE, initial_scale=NON_NEGATIVE, momentum=DECAY
)
def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSprop (Hinton, 2012); centered form from Graves (2013).

    ``v_t = decay * v_{t-1} + (1 - decay) * g^2``, ``p <- p - eta * g / sqrt(v_t + eps)``;
    centered: ``sqrt(v_t - m_t^2 + eps)`` with ``m_t`` the moving average of ``g``.
    With momentum, the step ``eta * g / sqrt(...)`` is accumulated by :func:`trace`.

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        decay: Decay of the moving averages.
        eps: Added to the denominator, inside the square root unless
            ``eps_in_sqrt=False`` (PyTorch's form ``sqrt(v_t) + eps``).
        initial_scale: Starting value of ``v``.
        eps_in_sqrt: Where ``eps`` goes.
        centered: Divide by the running standard deviation instead of the RMS.
        momentum: Momentum coefficient, or None for none.
        nesterov: Use Nesterov momentum.
        bias_correction: Debias the moving averages by ``1 - decay^t``.

    Returns:
        The optimizer.
    """
    scaling = scale_by_stddev if centered else scale_by_rms
    blocks = [
        scaling(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
        scale_by_learning_rate(learning_rate),
    ]
    if momentum is not None:
        blocks.append(trace(momentum, nesterov))
    return chain(*blocks)


@checked(learning_rate=RATE, rho=UNIT, eps=NON_NEGATIVE, weight_decay=RATE)
def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any | None = None,
) -> GradientTransformation:
    """Adadelta (Zeiler, 2012).

    ``E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g^2``,
    ``d_t = sqrt(E[d^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g``, ``p <- p - eta * d_t``.

    Weight decay is added to the gradient first (``g + weight_decay * p``).
    The default ``learning_rate=None`` means ``eta = 1``, the paper's rule.
    (optax 0.2.8 reads None as "no scaling" and so steps *up* the gradient;
    funcnets descends, and equals ``optax.adadelta(learning_rate=1.0)``.)

    Args:
        learning_rate: ``eta``, a scalar or a schedule; None for 1.
        rho: Decay of both running averages.
        eps: Added inside both square roots.
        weight_decay: Coefficient of the L2 term added to the gradient.
        weight_decay_mask: Which leaves get weight decay (see
            :func:`add_decayed_weights`).

    Returns:
        The optimizer.
    """
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )


@checked(learning_rate=RATE, b1=DECAY, b2=DECAY, eps=NON_NEGATIVE, eps_root=NON_NEGATIVE)
def adam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015).

    ``m_t = b1 m_{t-1} + (1 - b1) g``, ``v_t = b2 v_{t-1} + (1 - b2) g^2``,
    ``p <- p - eta * m_hat / (sqrt(v_hat + eps_root) + eps)``, ``m_hat = m_t / (1 - b1^t)``,
    ``v_hat = v_t / (1 - b2^t)``.

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        b1: Decay of the first moment.
        b2: Decay of the second moment.
        eps: Added to the denominator outside the square root, after bias correction.
        eps_root: Added inside the square root.
        mu_dtype: dtype of the stored first moment.
        nesterov: Use Nesterov momentum (see :func:`nadam`).

    Returns:
        The optimizer.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


@checked(learning_rate=RATE, b1=DECAY, b2=DECAY, eps=NON_NEGATIVE, eps_root=NON_NEGATIVE)
def nadam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
) -> GradientTransformation:
    """NAdam: Adam with Nesterov momentum (Dozat, 2016).

    As :func:`adam`, with the first moment looking one step ahead:
    ``m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)``.

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        b1: Decay of the first moment.
        b2: Decay of the second moment.
        eps: Added to the denominator outside the square root.
        eps_root: Added inside the square root.
        mu_dtype: dtype of the stored first moment.

    Returns:
        The optimizer.
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True)


@checked(
    learning_rate=RATE,
    b1=DECAY,
    b2=DECAY,
    eps=NON_NEGATIVE,
    eps_root=NON_NEGATIVE,
    weight_decay=RATE,
)
def adamw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any | None = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    ``p <- p - eta * (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay * p)``,
    the moments as in :func:`adam`: the decay is multiplied by the learning rate.

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        b1: Decay of the first moment.
        b2: Decay of the second moment.
        eps: Added to the denominator outside the square root.
        eps_root: Added inside the square root.
        mu_dtype: dtype of the stored first moment.
        weight_decay: Decay coefficient, a scalar or a schedule.
        mask: Which leaves get weight decay: a pytree of bools or a function
            of the params returning one (e.g. to skip biases and norms).
        nesterov: Use Nesterov momentum.

    Returns:
        The optimizer.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@checked(learning_rate=RATE, b1=DECAY, b2=DECAY, eps=NON_NEGATIVE)
def adamax(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> GradientTransformation:
    """Adamax: Adam with the infinity norm (Kingma & Ba, 2015, section 7.1).

    ``m_t = b1 m_{t-1} + (1 - b1) g``, ``u_t = max(b2 u_{t-1}, |g| + eps)``,
    ``p <- p - eta * m_t / ((1 - b1^t) u_t)``.

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        b1: Decay of the first moment.
        b2: Decay of the infinity norm.
        eps: Added to ``|g|``.

    Returns:
        The optimizer.
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


@checked(learning_rate=RATE, b1=DECAY, b2=DECAY, eps=NON_NEGATIVE, eps_root=NON_NEGATIVE)
def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    """AMSGrad (Reddi et al., 2018): Adam whose denominator never decreases.

    ``v_max_t = max(v_max_{t-1}, v_hat_t)``,
    ``p <- p - eta * m_hat / (sqrt(v_max_t + eps_root) + eps)``, the moments as in :func:`adam`.

    Args:
        learning_rate: ``eta``, a scalar or a schedule.
        b1: Decay of the first moment.
        b2: Decay of the second moment.
        eps: Added to the denominator outside the square root.
        eps_root: Added inside the square root.
        mu_dtype: dtype of the stored first moment.
        bias_correction_mu: Debias the first moment.
        bias_correction_nu: Debias the second moment before the maximum.

    Returns:
        The optimizer.
    """
    return chain(
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu),
        scale_by_learning_rate(learning_rate),
    )


@checked(learning_rate=RATE, b1=UNIT, b2=UNIT, weight_decay=RATE)
def lion(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.99,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any | None = None,
) -> GradientTransformation:
    """Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms").

    ``p <- p - eta * (sign((1 - b1) g + b1 m_{t-1}) + weight_decay * p)``,
    then ``m_t = (1 - b2) g + b2 m_{t-1}``.

    Args:
        learning_rate: ``eta``, a scalar or a schedule (typically 3-10x
            smaller than Adam's).
        b1: Weight of the momentum in the update direction.
        b2: Decay of the momentum.
        mu_dtype: dtype of the stored momentum.
        weight_decay: Decoupled decay coefficient, a scalar or a schedule.
        mask: Which leaves get weight decay.

    Returns:
        The optimizer.
    """
    return chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
