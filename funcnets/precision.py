"""Mixed precision: a dtype `Policy` applied to any `Layer`, and dynamic loss scaling.

Mixed-precision training runs a network's arithmetic in a 16-bit float
(bfloat16 or float16: half the memory traffic, and the fast matrix units of
GPUs and TPUs) while the parameters the optimizer updates, and the optimizer's
state, stay float32 ("master" parameters), so that small updates are not
rounded away. A `Policy` names three dtypes:

- ``param_dtype``: the stored parameters (float32 masters);
- ``compute_dtype``: the arithmetic, i.e. the dtype parameters and inputs are
  cast to inside ``apply``;
- ``output_dtype``: what the layer returns (float32, so the loss sees float32).

`with_policy(layer, policy)` applies one to any layer. The cast from the
float32 parameters is part of the computation, so ``jax.grad`` returns float32
gradients of the float32 parameters, and the optimizer state stays float32.
Normalisation statistics (`fn.BatchNorm`, `fn.LayerNorm`, `fn.GroupNorm`),
softmax and the losses compute in float32 whatever their input's dtype.

bfloat16 has float32's exponent range and needs nothing more. float16 does
not: gradients below about 6e-8 flush to zero (and above 65504 overflow), so
it needs loss scaling: `dynamic_loss_scale(optimizer)` keeps a scale in the
optimizer state; the training steps of `fn.train` multiply the loss by it
before differentiating, and the wrapped optimizer divides the gradients by it,
skips the steps whose scaled gradients overflowed (halving the scale) and
doubles the scale after every ``growth_interval`` good steps.

>>> import jax, funcnets as fn
>>> net = fn.precision.with_policy(fn.models.mlp([32, 10]), "bf16")
>>> optimizer = fn.optim.adam(1e-3)                         # bfloat16: no loss scaling
>>> fp16_net = fn.precision.with_policy(fn.models.mlp([32, 10]), "fp16")
>>> fp16_optimizer = fn.precision.dynamic_loss_scale(fn.optim.adam(1e-3))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from funcnets.layers.base import Layer, keywords_of
from funcnets.optim.base import GradientTransformation, OptState, Params, Updates

__all__ = [
    "POLICIES",
    "LossScaleState",
    "Policy",
    "cast_floating",
    "dynamic_loss_scale",
    "loss_scale",
    "with_policy",
]

_FLOAT32 = jnp.dtype(jnp.float32)
_ALIASES = {
    "float32": "float32", "f32": "float32", "fp32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "f16": "float16", "fp16": "float16", "half": "float16",
}  # fmt: skip
_FIELDS = {"params": "param_dtype", "p": "param_dtype", "compute": "compute_dtype",
           "c": "compute_dtype", "output": "output_dtype", "o": "output_dtype"}  # fmt: skip


def cast_floating(tree: Any, dtype: DTypeLike) -> Any:
    """``tree`` with every floating-point array leaf cast to ``dtype``; other leaves as they are.

    Integer, boolean and key leaves (labels, lengths, masks, random keys) are
    left alone.

    >>> import jax.numpy as jnp
    >>> cast_floating({"x": jnp.ones(2), "n": jnp.arange(2)}, jnp.bfloat16)["x"].dtype
    dtype(bfloat16)
    """
    dtype = jnp.dtype(dtype)

    def cast(leaf: Any) -> Any:
        floating = jnp.issubdtype(getattr(leaf, "dtype", jnp.int32), jnp.floating)
        return jnp.asarray(leaf).astype(dtype) if floating and leaf.dtype != dtype else leaf

    return jax.tree.map(cast, tree)


class Policy(NamedTuple):
    """The dtypes of a layer: stored parameters, arithmetic, and outputs.

    Attributes:
        param_dtype: the dtype `with_policy` stores parameters in at ``init``
            (float32: master parameters, float32 gradients and optimizer state).
        compute_dtype: the dtype floating-point parameters and inputs are cast
            to inside ``apply``.
        output_dtype: the dtype of the layer's floating-point outputs.

    Each defaults to float32, so ``Policy(compute_dtype=jnp.bfloat16)`` is
    the usual mixed policy. ``Policy.parse`` reads the names the command line
    uses (`POLICIES`) and jmp's ``"params=float32,compute=bfloat16,output=float32"``.

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> policy = fn.precision.Policy.parse("bf16")
        >>> str(policy)
        'params=float32,compute=bfloat16,output=float32'
        >>> str(fn.precision.Policy(compute_dtype=jnp.float16))
        'params=float32,compute=float16,output=float32'
        >>> str(fn.precision.Policy.parse("p=f32,c=f16,o=f16"))
        'params=float32,compute=float16,output=float16'
    """

    param_dtype: DTypeLike = _FLOAT32
    compute_dtype: DTypeLike = _FLOAT32
    output_dtype: DTypeLike = _FLOAT32

    @classmethod
    def parse(cls, spec: str | Policy) -> Policy:
        """The policy a string names; a `Policy` is returned as it is.

        ``spec`` is a name in `POLICIES` or an alias (``"bfloat16"``, ``"half"``),
        i.e. float32 parameters and outputs around that compute dtype; or
        ``"params=D,compute=D,output=D"`` (``p``/``c``/``o`` for short; a dtype
        left out is float32).

        Raises:
            ValueError: an unknown name, field or dtype.
        """
        if isinstance(spec, Policy):
            return spec
        text = spec.strip().lower()
        if "=" not in text:
            if text not in _ALIASES:
                raise ValueError(
                    f"precision: unknown policy {spec!r}; expected one of {', '.join(POLICIES)} "
                    "or 'params=float32,compute=bfloat16,output=float32'"
                )
            return cls(compute_dtype=jnp.dtype(_ALIASES[text]))
        fields: dict[str, Any] = {}
        for part in text.split(","):
            field, _, dtype = (s.strip() for s in part.partition("="))
            if field not in _FIELDS or dtype not in _ALIASES:
                raise ValueError(
                    f"precision: cannot read {part.strip()!r} in {spec!r}; expected "
                    "params|compute|output (or p|c|o) = float32|bfloat16|float16"
                )
            fields[_FIELDS[field]] = jnp.dtype(_ALIASES[dtype])
        return cls(**fields)

    def __str__(self) -> str:
        dtypes = (jnp.dtype(d).name for d in self)
        return "params={},compute={},output={}".format(*dtypes)

    def cast_to_param(self, tree: Any) -> Any:
        """The floating-point leaves of ``tree`` in ``param_dtype``."""
        return cast_floating(tree, self.param_dtype)

    def cast_to_compute(self, tree: Any) -> Any:
        """The floating-point leaves of ``tree`` in ``compute_dtype``."""
        return cast_floating(tree, self.compute_dtype)

    def cast_to_output(self, tree: Any) -> Any:
        """The floating-point leaves of ``tree`` in ``output_dtype``."""
        return cast_floating(tree, self.output_dtype)


#: The policies ``funcnets train --precision`` offers: float32 master parameters and
#: float32 outputs throughout; the arithmetic in float32, bfloat16 or float16.
POLICIES: dict[str, Policy] = {
    "float32": Policy(),
    "bf16": Policy(compute_dtype=jnp.dtype(jnp.bfloat16)),
    "fp16": Policy(compute_dtype=jnp.dtype(jnp.float16)),
}


def with_policy(layer: Layer, policy: Policy | str) -> Layer:
    """``layer`` computing in ``policy.compute_dtype`` around float32 master parameters.

    ``init`` returns the parameters in ``policy.param_dtype``. ``apply`` casts
    the floating-point parameters, inputs and per-call keywords (e.g. an
    initial carry) to ``policy.compute_dtype``, runs the layer, and returns
    its floating-point outputs in ``policy.output_dtype`` and its state in the
    dtypes it came in (BatchNorm's running statistics stay float32). Integer
    inputs (token ids, lengths, masks) pass through. Normalisation layers,
    softmax and the losses compute in float32 inside a low-precision layer.

    The returned layer keeps ``layer``'s name, children and parameter
    structure: a checkpoint of the float32 network loads into it, and
    `fn.summary` shows the same table. Wrap the whole network (the usual
    case) or only some of its layers.

    Args:
        layer: any `Layer`.
        policy: a `Policy`, or a name `Policy.parse` reads (``"bf16"``, ``"fp16"``).

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> net = fn.precision.with_policy(fn.models.mlp([8, 3]), "bf16")
        >>> _, params, state = net.init(jax.random.key(0), (2, 4))
        >>> params["dense0"]["w"].dtype  # float32 master parameters
        dtype('float32')
        >>> y, _ = net.apply(params, state, jnp.ones((2, 4)))
        >>> y.dtype  # computed in bfloat16, returned in float32
        dtype('float32')
        >>> net.name, [key for key, _ in net.children]
        ('Sequential', ['flatten', 'dense0', 'act0', 'dense1'])
    """
    policy = Policy.parse(policy)

    def init(key, input_shape):
        output_shape, params, state = layer.init(key, input_shape)
        return output_shape, policy.cast_to_param(params), state

    def apply(params, state, x, *, key=None, train=False, **keywords):
        compute = policy.cast_to_compute
        y, new_state = layer.apply(
            compute(params), state, compute(x), key=key, train=train, **compute(keywords)
        )
        new_state = jax.tree.map(
            lambda new, old: jnp.asarray(new).astype(jnp.result_type(old)), new_state, state
        )
        return policy.cast_to_output(y), new_state

    return layer._replace(init=init, apply=apply)


class LossScaleState(NamedTuple):
    """The state of `dynamic_loss_scale`: the scale, its counter, the wrapped optimizer's state.

    Attributes:
        scale: float32 scalar, the factor the loss is multiplied by.
        good_steps: int32 scalar, finite steps since the scale last changed.
        inner: the wrapped optimizer's state.
    """

    scale: jax.Array
    good_steps: jax.Array
    inner: OptState


def loss_scale(opt_state: OptState) -> jax.Array | None:
    """The current loss scale of a `dynamic_loss_scale` optimizer state, None for any other.

    `fn.train.objective_step` (so `make_step` and `fit`) reads it to scale the
    loss; a hand-written step multiplies its loss by it before ``jax.grad``
    and passes the scaled gradients to ``update``.
    """
    return opt_state.scale if isinstance(opt_state, LossScaleState) else None


def _all_finite(tree: Any) -> jax.Array:
    finite = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.stack(finite).all() if finite else jnp.asarray(True)


def dynamic_loss_scale(
    optimizer: Any,
    *,
    initial: float = 2.0**15,
    growth_interval: int = 2000,
    factor: float = 2.0,
    min_scale: float = 1.0,
) -> GradientTransformation:
    """``optimizer`` fed gradients of a loss multiplied by a dynamic scale (float16 training).

    The algorithm of PyTorch's ``GradScaler`` and jmp's ``DynamicLossScale``:
    the loss is multiplied by ``scale`` before differentiation, so that small
    float16 gradients do not flush to zero; ``update`` receives those scaled
    gradients and divides them by ``scale`` (in float32). Then:

    - all finite: ``optimizer``'s update; after ``growth_interval`` such
      steps in a row the scale is multiplied by ``factor``;
    - some not finite (the scaled gradients overflowed float16): zero
      updates, ``optimizer``'s state unchanged, the scale divided by
      ``factor``. A skipped step is the normal working of loss scaling, not a
      failure: `fn.train`'s steps report it as finite, with metrics
      ``overflow`` (1.0) and ``loss_scale``;
    - some not finite at ``min_scale``: lowering the scale cannot help, so
      the non-finite gradients go to ``optimizer`` as they are, and the
      training guard sees non-finite updates (``on_nan="raise"`` stops).

    `fn.train.objective_step`, `make_step` and `fit` find the scale in the
    optimizer state (`loss_scale`) and scale the loss themselves; wrap the
    whole optimizer (this must be the outermost transformation), e.g.
    ``fit(fn.precision.with_policy(net, "fp16"), loss,
    fn.precision.dynamic_loss_scale(fn.optim.adam(1e-3)), ...)``.

    Args:
        optimizer: a funcnets or optax gradient transformation.
        initial: the first scale (PyTorch starts at 2**16, jmp's examples at 2**15).
        growth_interval: finite steps in a row before the scale grows.
        factor: the scale's growth and back-off factor.
        min_scale: the scale is never lowered below this.

    Returns:
        A gradient transformation whose state is a `LossScaleState`.

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> tx = fn.precision.dynamic_loss_scale(fn.optim.sgd(0.1), initial=1024.0,
        ...                                      growth_interval=2)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> updates, state = tx.update({"w": jnp.array([jnp.inf, 1.0])}, state)
        >>> updates["w"], state.scale  # an overflow: skipped, the scale halved
        (Array([0., 0.], dtype=float32), Array(512., dtype=float32))
        >>> for _ in range(2):  # gradients of (512 * loss), where loss's gradient is 1
        ...     updates, state = tx.update({"w": jnp.full(2, 512.0)}, state)
        >>> updates["w"], state.scale  # sgd's -0.1 * 1; doubled after 2 good steps
        (Array([-0.1, -0.1], dtype=float32), Array(1024., dtype=float32))
    """
    if not (factor > 1 and min_scale > 0 and initial >= min_scale):
        raise ValueError(
            "dynamic_loss_scale: needs factor > 1 and initial >= min_scale > 0, got "
            f"factor={factor!r}, initial={initial!r}, min_scale={min_scale!r}"
        )
    if not (isinstance(growth_interval, int) and growth_interval >= 1):
        raise ValueError(
            f"dynamic_loss_scale: growth_interval must be a positive int, got {growth_interval!r}"
        )
    forwards_value = keywords_of(optimizer.update)("value")

    def init(params: Params) -> LossScaleState:
        scale = jnp.asarray(initial, jnp.float32)
        return LossScaleState(scale, jnp.zeros((), jnp.int32), optimizer.init(params))

    def update(
        scaled_grads: Updates, state: LossScaleState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, LossScaleState]:
        grads = jax.tree.map(
            lambda g: g.astype(jnp.promote_types(g.dtype, jnp.float32)) / state.scale,
            scaled_grads,
        )
        finite = _all_finite(grads)
        extra = extra if forwards_value else {}
        updates, inner = optimizer.update(grads, state.inner, params, **extra)
        skip = ~finite & (state.scale > min_scale)
        updates = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), updates)
        inner = jax.tree.map(lambda new, old: jnp.where(skip, old, new), inner, state.inner)
        grow = finite & (state.good_steps + 1 >= growth_interval)
        grown = jnp.where(jnp.isfinite(state.scale * factor), state.scale * factor, state.scale)
        lowered = jnp.maximum(state.scale / factor, jnp.float32(min_scale))
        scale = jnp.where(finite, jnp.where(grow, grown, state.scale), lowered)
        good_steps = jnp.where(finite & ~grow, state.good_steps + 1, 0).astype(jnp.int32)
        return updates, LossScaleState(scale.astype(jnp.float32), good_steps, inner)

    return GradientTransformation(init, update)
