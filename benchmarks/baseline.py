"""The baseline: each workload hand-written in plain jax.numpy + optax.

This is the obvious formulation a competent JAX user writes, no funcnets:
params are tuples of arrays, the step is ``value_and_grad`` of an optax
softmax cross-entropy, then ``optax.adam``, jitted (optionally donating the
params, the BatchNorm statistics and the optimizer state). Convolutions are
``lax.conv_general_dilated``, pooling ``lax.reduce_window``; BatchNorm (VGG,
ResNet-20) normalises with the batch's statistics in float32 and carries its
running statistics (``0.9 old + 0.1 batch``) in a ``state`` the step returns.
The LSTM and GRU are a ``lax.scan`` of the textbook cell, ``x_t @ wi + h @ wh
+ b`` (hoisting ``x @ wi`` out of the scan as one big matmul measured 1.5x
slower on XLA CPU, so the baseline does not). Parameters start from the
funcnets network's (`from_funcnets`), so the two compute the same thing from
the same point.

In bf16 (`make_step`'s ``precision``), the float32 params (the "master"
params Adam updates) and the inputs are cast to bfloat16 inside the loss, the
logits back to float32 for the cross-entropy, as in jmp-style mixed precision:
what ``fn.precision.with_policy(net, "bf16")`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from benchmarks.config import LEARNING_RATE, PRECISIONS
from benchmarks.workloads import VGG

Params = Any
State = Any  # BatchNorm's running statistics; () for the networks without
_NHWC = ("NHWC", "HWIO", "NHWC")
COMPUTE_DTYPES = {"float32": jnp.float32, "bf16": jnp.bfloat16}
# ResNet-20's nine blocks: three stages of three, the first of stages 2 and 3 halving the maps
# (its shortcut then a strided 1x1 convolution + BN: He et al.'s option B).
RESNET20_STRIDES = (1, 1, 1, 2, 1, 1, 2, 1, 1)


def mlp(params: Params, x: jax.Array) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def _pool(h: jax.Array, op: str) -> jax.Array:
    """2x2 max or average pooling, stride 2, VALID."""
    window = ((1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    if op == "max":
        return lax.reduce_window(h, np.array(-np.inf, h.dtype), lax.max, *window)
    return lax.reduce_window(h, np.array(0, h.dtype), lax.add, *window) / 4


def _conv(h: jax.Array, w: jax.Array, padding: str, stride: int = 1) -> jax.Array:
    return lax.conv_general_dilated(h, w, (stride, stride), padding, dimension_numbers=_NHWC)


def _lenet5(params: Params, x: jax.Array, act: Callable, pool: str) -> jax.Array:
    c1, c3, c5, f6, out = params
    h = _pool(act(_conv(x, c1[0], "SAME") + c1[1]), pool)
    h = _pool(act(_conv(h, c3[0], "VALID") + c3[1]), pool)
    h = h.reshape(x.shape[0], -1)
    h = act(h @ c5[0] + c5[1])
    h = act(h @ f6[0] + f6[1])
    return h @ out[0] + out[1]


def lenet5(params: Params, x: jax.Array) -> jax.Array:
    """Conv 5x5x6 SAME, tanh, avg pool 2; conv 5x5x16 VALID, tanh, avg pool 2; 120, 84, 10."""
    return _lenet5(params, x, jnp.tanh, "avg")


def lenet5_relu(params: Params, x: jax.Array) -> jax.Array:
    """LeNet-5 with relu for tanh and 2x2 max for average pooling."""
    return _lenet5(params, x, jax.nn.relu, "max")


def _batch_norm(h: jax.Array, scale, bias, stats, eps: float = 1e-5):
    """Training-mode BatchNorm over (N, H, W), in float32; returns ``(y, new running stats)``."""
    h32 = h.astype(jnp.promote_types(h.dtype, jnp.float32))
    mean = h32.mean(axis=(0, 1, 2))
    var = jnp.square(h32 - mean).mean(axis=(0, 1, 2))  # biased, two passes
    y = (h32 - mean) * (lax.rsqrt(var + eps) * scale) + bias
    batch = lax.stop_gradient((mean, var))
    running = tuple(0.9 * old + 0.1 * new for old, new in zip(stats, batch))
    return y.astype(h.dtype), running


def _conv_bn(h: jax.Array, unit, stats, stride: int = 1):
    """A bias-free 3x3 (or 1x1) SAME convolution, then BatchNorm: ``unit = (w, scale, bias)``."""
    w, scale, bias = unit
    return _batch_norm(_conv(h, w, "SAME", stride), scale, bias, stats)


def vgg(params: Params, state: State, x: jax.Array) -> tuple[jax.Array, State]:
    """`workloads.VGG`: 3x3 conv + BN + relu per number, 2x2 max-pool per "M"; Dense 10."""
    units, (w, b) = params
    h, new, i = x, [], 0
    for item in VGG:
        if item == "M":
            h = _pool(h, "max")
        else:
            h, stats = _conv_bn(h, units[i], state[i])
            h, i = jax.nn.relu(h), i + 1
            new.append(stats)
    return h.reshape(x.shape[0], -1) @ w + b, new


def resnet20(params: Params, state: State, x: jax.Array) -> tuple[jax.Array, State]:
    """Stem conv3x3/16 + BN + relu; 9 basic blocks ``relu(F(x) + shortcut(x))``; GAP; Dense."""
    (stem, blocks, (w, b)), (stem_stats, block_stats) = params, state
    h, stem_stats = _conv_bn(x, stem, stem_stats)
    h, new = jax.nn.relu(h), []
    for stride, units, stats in zip(RESNET20_STRIDES, blocks, block_stats):
        f, s1 = _conv_bn(h, units[0], stats[0], stride)
        f, s2 = _conv_bn(jax.nn.relu(f), units[1], stats[1])
        if len(units) == 3:  # the projection shortcut: strided 1x1 conv + BN
            shortcut, s3 = _conv_bn(h, units[2], stats[2], stride)
            new.append((s1, s2, s3))
        else:
            shortcut = h
            new.append((s1, s2))
        h = jax.nn.relu(f + shortcut)
    return h.mean(axis=(1, 2)) @ w + b, (stem_stats, new)


def _rows(x: jax.Array) -> jax.Array:
    """Image rows as 28 time steps of 28 features, time-major: ``(28, batch, 28)``."""
    return x.reshape(x.shape[0], 28, 28).swapaxes(0, 1)


def lstm(params: Params, x: jax.Array, unroll: int | bool = 1) -> jax.Array:
    """Image rows as 28 time steps; gates i, f, g, o; the last h into a linear head."""
    (wi, wh, b), (wo, bo) = params

    def cell(carry, x_t):
        h, c = carry
        i, f, g, o = jnp.split(x_t @ wi + h @ wh + b, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((x.shape[0], wh.shape[0]), x.dtype)
    (h, _), _ = lax.scan(cell, (zeros, zeros), _rows(x), unroll=unroll)
    return h @ wo + bo


def gru(params: Params, x: jax.Array, unroll: int | bool = 1) -> jax.Array:
    """Image rows as 28 time steps; PyTorch's GRU cell (gates r, z, n); the last h, linear."""
    (wi, wh, bi, bh), (wo, bo) = params

    def cell(h, x_t):
        x_r, x_z, x_n = jnp.split(x_t @ wi + bi, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ wh + bh, 3, axis=-1)
        r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h, None

    h, _ = lax.scan(cell, jnp.zeros((x.shape[0], wh.shape[0]), x.dtype), _rows(x), unroll=unroll)
    return h @ wo + bo


STATELESS = {"mlp": mlp, "lenet5": lenet5, "lenet5_relu": lenet5_relu}
RECURRENT = {"lstm": lstm, "gru": gru}
WITH_STATE = {"vgg": vgg, "resnet20": resnet20}


def forward(workload: str, unroll: int | bool = 1) -> Callable:
    """``apply(params, state, x) -> (logits, state)``; ``unroll`` (LSTM, GRU) goes to `lax.scan`."""
    if workload in WITH_STATE:
        return WITH_STATE[workload]
    if workload in RECURRENT:
        cell = RECURRENT[workload]
        return lambda params, state, x: (cell(params, x, unroll), state)
    if workload in STATELESS:
        net = STATELESS[workload]
        return lambda params, state, x: (net(params, x), state)
    raise ValueError(f"unknown workload {workload!r}")


def from_funcnets(workload: str, params: dict, state: dict) -> tuple[Params, State]:
    """The funcnets network's params and state (see workloads.py) in the baseline's layout."""

    def wb(layer):
        return (params[layer]["w"], params[layer]["b"])

    def unit(conv, bn, stats):  # a conv + BN: (w, scale, bias), (running mean, running var)
        return (conv["w"], bn["scale"], bn["bias"]), (stats["mean"], stats["var"])

    if workload == "mlp":
        return [wb("dense0"), wb("dense1"), wb("dense2")], ()
    if workload in ("lenet5", "lenet5_relu"):
        return tuple(wb(name) for name in ("c1", "c3", "c5", "f6", "output")), ()
    if workload == "lstm":
        cell = params["lstm0"]
        return ((cell["wi"], cell["wh"], cell["b"]), wb("head")), ()
    if workload == "gru":
        cell = params["gru0"]
        return ((cell["wi"], cell["wh"], cell["bi"], cell["bh"]), wb("head")), ()
    if workload == "vgg":
        convs = range(1, sum(item != "M" for item in VGG) + 1)
        units = [unit(params[f"conv{i}"], params[f"bn{i}"], state[f"bn{i}"]) for i in convs]
        return ([u for u, _ in units], wb("head")), [s for _, s in units]
    if workload == "resnet20":
        stem, stem_stats = unit(params["stem"]["conv"], params["stem"]["bn"], state["stem"]["bn"])
        blocks, stats = [], []
        for k in (1, 2, 3):
            for i in range(3):
                p, s = params[f"stage{k}"][str(i)], state[f"stage{k}"][str(i)]
                parts = [
                    unit(p["branch"][f"conv{j}"], p["branch"][f"bn{j}"], s["branch"][f"bn{j}"])
                    for j in (1, 2)
                ]
                if p["shortcut"]:  # the projection, where the block changes the shape
                    parts.append(unit(p["shortcut"]["conv"], p["shortcut"]["bn"],
                                      s["shortcut"]["bn"]))  # fmt: skip
                blocks.append(tuple(u for u, _ in parts))
                stats.append(tuple(s for _, s in parts))
        return (stem, blocks, wb("head")), (stem_stats, stats)
    raise ValueError(f"unknown workload {workload!r}")


def make_step(
    workload: str, donate: bool = False, precision: str = "float32", unroll: int | bool = 1
) -> tuple[Callable, optax.GradientTransformation]:
    """The jitted step ``(params, state, opt_state, x, y) -> (params, state, opt_state, loss)``.

    And its Adam. ``precision="bf16"`` computes in bfloat16 around the float32
    params (module docstring); ``unroll`` is for `step_flops`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    apply, compute = forward(workload, unroll), COMPUTE_DTYPES[precision]
    tx = optax.adam(LEARNING_RATE)

    def loss_fn(params, state, x, y):
        params, x = jax.tree.map(lambda a: a.astype(compute), (params, x))
        logits, state = apply(params, state, x)
        logits = logits.astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state

    def step(params, state, opt_state, x, y):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1, 2) if donate else ()), tx


def step_flops(workload: str, precision: str, params: Params, state: State, x, y) -> float:
    """The baseline step's floating-point operations, as XLA's cost analysis counts them.

    ``jax.jit(step).lower(...).cost_analysis()["flops"]``: XLA's HLO cost
    analysis of the step as written (a dict in jax 0.10; a list of one dict in
    older versions), without compiling it. The compiled step's count
    (``.compile().cost_analysis()``) was within 2% of it for every workload, in
    float32 and bf16 on CPU (the optimised program adds dtype conversions), but
    compiling takes seconds. XLA counts a ``while`` loop's body once, so the
    LSTM and GRU are counted with their `lax.scan` unrolled: every time step
    counted. Arguments may be arrays or ``jax.ShapeDtypeStruct``s.
    """
    step, tx = make_step(workload, precision=precision, unroll=True)
    opt_state = jax.eval_shape(tx.init, params)
    cost = step.lower(params, state, opt_state, x, y).cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"])
