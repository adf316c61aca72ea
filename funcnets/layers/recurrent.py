"""Recurrent layers: `SimpleRNN`, `LSTM`, `GRU`, `Bidirectional`, `WithLengths`, and cells.

Inputs are batch-major ``(batch, time, features)``. Each layer runs its cell
in a `lax.scan` over time, so backpropagation through time is ``jax.grad`` of
that scan. The input projection ``x_t @ wi`` stays inside the scan body: on
XLA CPU, hoisting it into one matmul over all steps made the LSTM's training
step 2x slower (its gradient becomes a stacked (time, batch, 4h) buffer).

Parameter layouts follow PyTorch's gate conventions (``torch.nn.LSTM``'s
``weight_ih_l0`` is ``wi.T``, ``weight_hh_l0`` is ``wh.T``; its two biases
sum to our ``b``, except for the GRU, which keeps both as ``bi`` and ``bh``):

- SimpleRNN: ``wi`` (in, h), ``wh`` (h, h), ``b`` (h,);
  ``h' = tanh(x @ wi + h @ wh + b)``.
- LSTM: ``wi`` (in, 4h), ``wh`` (h, 4h), ``b`` (4h,), gate blocks in order
  input, forget, cell, output; carry ``(h, c)``.
- GRU: ``wi`` (in, 3h), ``wh`` (h, 3h), ``bi`` (3h,), ``bh`` (3h,), gate
  blocks in order reset, update, new, with the reset gate applied to
  ``h @ wh_n + bh_n`` (PyTorch's, and cuDNN's, variant).

Every layer's ``apply`` takes, besides ``key`` and ``train``:
``mask`` (bool ``(batch, time)``, True for real steps: a padded step keeps
the carry and outputs zeros, so a padded sequence gives the same result as the
unpadded one), ``initial_carry`` (zeros by default), and ``reverse`` (run from
the last step to the first; outputs stay aligned with the input's time order).
Combinators pass ``mask`` on to the recurrent layers inside them, and
`WithLengths` builds it from ``(x, lengths)`` inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from funcnets import initializers
from funcnets.initializers import Initializer
from funcnets.layers.base import Layer, check_rank, layer_name, make_layer, shape_error
from funcnets.layers.combinators import is_shape

Carry = Any  # h (batch, hidden), or (h, c) for the LSTM

__all__ = [
    "GRU",
    "LSTM",
    "Bidirectional",
    "SimpleRNN",
    "WithLengths",
    "gru_cell",
    "lstm_cell",
    "sequence_mask",
    "simple_rnn_cell",
]


# --- cells: one time step, as functions of (params, carry, input) ---------------------------


def simple_rnn_cell(params: dict, h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One Elman RNN step: ``h' = tanh(x @ wi + h @ wh + b)``.

    Args:
        params: ``{"wi": (in, h), "wh": (h, h), "b": (h,)}``.
        h: the hidden state ``(batch, h)``.
        x: the input ``(batch, in)``.

    Returns:
        ``(h', h')``: the new carry and the step's output, as `lax.scan` wants.
    """
    h = jnp.tanh(x @ params["wi"] + h @ params["wh"] + params["b"])
    return h, h


def lstm_cell(
    params: dict, carry: tuple[jax.Array, jax.Array], x: jax.Array
) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
    """One LSTM step (Hochreiter & Schmidhuber 1997, with a forget gate).

    ``i, f, g, o = split(x @ wi + h @ wh + b)``;
    ``c' = σ(f) c + σ(i) tanh(g)``; ``h' = σ(o) tanh(c')``.

    Args:
        params: ``{"wi": (in, 4h), "wh": (h, 4h), "b": (4h,)}``, gate blocks i, f, g, o.
        carry: ``(h, c)``, each ``(batch, h)``.
        x: the input ``(batch, in)``.

    Returns:
        ``((h', c'), h')``: the new carry and the step's output.
    """
    h, c = carry
    i, f, g, o = jnp.split(x @ params["wi"] + h @ params["wh"] + params["b"], 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h


def gru_cell(params: dict, h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One GRU step (Cho et al. 2014), PyTorch's variant.

    ``r = σ(x wi_r + bi_r + h wh_r + bh_r)``, ``z = σ(x wi_z + bi_z + h wh_z + bh_z)``,
    ``n = tanh(x wi_n + bi_n + r (h wh_n + bh_n))``, ``h' = (1 - z) n + z h``.

    Args:
        params: ``{"wi": (in, 3h), "wh": (h, 3h), "bi": (3h,), "bh": (3h,)}``, blocks r, z, n.
        h: the hidden state ``(batch, h)``.
        x: the input ``(batch, in)``.

    Returns:
        ``(h', h')``: the new carry and the step's output.
    """
    x_r, x_z, x_n = jnp.split(x @ params["wi"] + params["bi"], 3, axis=-1)
    h_r, h_z, h_n = jnp.split(h @ params["wh"] + params["bh"], 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    h = (1.0 - z) * n + z * h
    return h, h


def sequence_mask(lengths: jax.Array, time: int) -> jax.Array:
    """The ``mask`` for sequences of the given lengths padded at the end to ``time`` steps.

    >>> sequence_mask(jnp.array([1, 3]), 4)
    Array([[ True, False, False, False],
           [ True,  True,  True, False]], dtype=bool)
    """
    return jnp.arange(time) < jnp.asarray(lengths)[:, None]


# --- the layers ------------------------------------------------------------------------------


class _Kind(NamedTuple):
    """What each recurrent layer type supplies to `_recurrent`."""

    name: str
    gates: int  # hidden-width blocks in wi and wh
    cell: Callable  # (params, carry, x_t) -> (carry, h)
    biases: Callable  # (key, width) -> the bias params, e.g. {"b": (width,)}
    carry: Callable  # zeros (batch, hidden) -> the zero carry, whose first leaf is h


def _one_bias(b_init: Initializer, fill: Callable = lambda b: b) -> Callable:
    """``{"b": fill(b_init(key, (width,)))}``."""
    return lambda key, width: {"b": fill(b_init(key, (width,)))}


def _input_and_hidden_biases(b_init: Initializer) -> Callable:
    """``{"bi": ..., "bh": ...}``, each from ``b_init`` with its own key (the GRU's)."""

    def biases(key, width):
        bi_key, bh_key = jax.random.split(key)
        return {"bi": b_init(bi_key, (width,)), "bh": b_init(bh_key, (width,))}

    return biases


_RECURRENT = {"SimpleRNN", "LSTM", "GRU"}


def _recurrent(
    kind: _Kind,
    hidden: int,
    return_sequences: bool,
    unroll: int,
    w_init: Initializer,
    h_init: Initializer,
) -> Layer:
    """Builds the layer for one `_Kind`."""
    if hidden < 1:
        raise ValueError(f"{kind.name}: hidden must be a positive int, got {hidden!r}")
    if unroll < 1:
        raise ValueError(f"{kind.name}: unroll must be a positive int, got {unroll!r}")
    width = kind.gates * hidden

    def init(key, input_shape):
        check_rank(kind.name, input_shape, 3, "(batch, time, features)")
        batch, _, features = input_shape
        wi_key, wh_key, b_key = jax.random.split(key, 3)
        # Each gate's recurrent block is initialised on its own (e.g. orthogonal per gate).
        wh_blocks = [h_init(k, (hidden, hidden)) for k in jax.random.split(wh_key, kind.gates)]
        params = {"wi": w_init(wi_key, (features, width)), "wh": jnp.concatenate(wh_blocks, 1)}
        params.update(kind.biases(b_key, width))
        out_shape = (batch, input_shape[1], hidden) if return_sequences else (batch, hidden)
        return out_shape, params, {}

    def apply(
        params, state, x, *, key=None, train=False, mask=None, initial_carry=None, reverse=False
    ):
        features = params["wi"].shape[0]
        if x.ndim != 3 or x.shape[-1] != features:
            raise shape_error(kind.name, f"(batch, time, {features})", x.shape)
        batch, time, _ = x.shape
        xs = jnp.swapaxes(x, 0, 1)  # time-major for the scan
        dtype = jnp.result_type(x.dtype, params["wh"].dtype)  # as the cell computes
        carry = _initial_carry(kind, jnp.zeros((batch, hidden), dtype), initial_carry)

        if mask is None:

            def step(carry, x_t):
                carry, h = kind.cell(params, carry, x_t)
                return carry, h if return_sequences else None

            carry, ys = jax.lax.scan(step, carry, xs, reverse=reverse, unroll=unroll)
        else:
            mask = jnp.asarray(mask)
            if mask.shape != (batch, time):
                raise ValueError(
                    f"{kind.name}: mask must be a bool array (batch, time) = {(batch, time)}, "
                    f"got shape {mask.shape}"
                )
            keep = jnp.swapaxes(mask.astype(bool), 0, 1)[..., None]  # (time, batch, 1)

            def step(carry, inputs):
                x_t, real = inputs
                new, h = kind.cell(params, carry, x_t)
                carry = jax.tree.map(lambda n, o: jnp.where(real, n, o), new, carry)
                return carry, jnp.where(real, h, 0.0) if return_sequences else None

            carry, ys = jax.lax.scan(step, carry, (xs, keep), reverse=reverse, unroll=unroll)
        last_h = jax.tree.leaves(carry)[0]
        return (jnp.swapaxes(ys, 0, 1) if return_sequences else last_h), state

    return make_layer(kind.name, init, apply)


def _initial_carry(kind: _Kind, zeros: jax.Array, given: Carry | None) -> Carry:
    """The zero carry, or the user's after checking it has the zero carry's structure and shapes."""
    carry = kind.carry(zeros)
    if given is None:
        return carry
    structure, leaves = jax.tree.structure(carry), jax.tree.leaves(given)
    wrong_count = len(leaves) != len(jax.tree.leaves(carry))
    if wrong_count or any(jnp.shape(a) != zeros.shape for a in leaves):
        raise ValueError(
            f"{kind.name}: initial_carry must be shaped as the zero carry, (batch, hidden) per "
            f"array: {jax.tree.map(jnp.shape, carry)}, got {jax.tree.map(jnp.shape, given)}"
        )
    return jax.tree.unflatten(structure, [jnp.asarray(a, zeros.dtype) for a in leaves])


def SimpleRNN(
    hidden: int,
    return_sequences: bool = False,
    *,
    unroll: int = 1,
    w_init: Initializer = initializers.glorot_uniform(),
    h_init: Initializer = initializers.orthogonal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """An Elman RNN over ``(batch, time, features)``: ``h_t = tanh(x_t @ wi + h_{t-1} @ wh + b)``.

    Params: ``wi`` (in, hidden), ``wh`` (h, h), ``b`` (h,). Output ``(batch, time,
    hidden)`` with ``return_sequences``, else the last real step's ``h``
    ``(batch, hidden)``. ``apply`` also takes ``mask``, ``initial_carry`` (h) and
    ``reverse``; see the module docstring. ``unroll`` steps per `lax.scan` iteration.
    """
    kind = _Kind("SimpleRNN", 1, simple_rnn_cell, _one_bias(b_init), lambda h: h)
    return _recurrent(kind, hidden, return_sequences, unroll, w_init, h_init)


def LSTM(
    hidden: int,
    return_sequences: bool = False,
    *,
    forget_bias: float = 1.0,
    unroll: int = 1,
    w_init: Initializer = initializers.glorot_uniform(),
    h_init: Initializer = initializers.orthogonal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """A long short-term memory layer over ``(batch, time, features)``; see `lstm_cell`.

    Params: ``wi`` (in, 4h), ``wh`` (h, 4h), ``b`` (4h,), gate blocks in order input,
    forget, cell, output (PyTorch's; ``b = bias_ih + bias_hh``). The forget gate's bias
    starts at ``forget_bias`` (Jozefowicz et al. 2015; 0 gives PyTorch-like zeros), so the
    cell remembers by default. Carry ``(h, c)``. Output as for `SimpleRNN`.
    """

    def open_forget_gate(b: jax.Array) -> jax.Array:
        return b.at[hidden : 2 * hidden].add(forget_bias)

    kind = _Kind("LSTM", 4, lstm_cell, _one_bias(b_init, open_forget_gate), lambda h: (h, h))
    return _recurrent(kind, hidden, return_sequences, unroll, w_init, h_init)


def GRU(
    hidden: int,
    return_sequences: bool = False,
    *,
    unroll: int = 1,
    w_init: Initializer = initializers.glorot_uniform(),
    h_init: Initializer = initializers.orthogonal(),
    b_init: Initializer = initializers.zeros,
) -> Layer:
    """A gated recurrent unit layer over ``(batch, time, features)``; see `gru_cell`.

    Params: ``wi`` (in, 3h), ``wh`` (h, 3h), ``bi`` (3h,), ``bh`` (3h,), gate blocks in
    order reset, update, new (PyTorch's layout). Carry ``h``. Output as for `SimpleRNN`.
    """
    kind = _Kind("GRU", 3, gru_cell, _input_and_hidden_biases(b_init), lambda h: h)
    return _recurrent(kind, hidden, return_sequences, unroll, w_init, h_init)


def Bidirectional(rnn: Layer) -> Layer:
    """Runs ``rnn`` forwards and (with fresh params) backwards in time; concatenates outputs.

    Params ``{"forward": ..., "backward": ...}``. With ``return_sequences`` the
    output is ``(batch, time, 2 * hidden)``: ``[forward_t, backward_t]``, the
    backward outputs aligned to the input's time order (PyTorch's convention);
    otherwise ``[h_forward after the last real step, h_backward after the first]``.
    ``mask`` goes to both directions; ``initial_carry`` is a pair
    ``(forward_carry, backward_carry)``.
    """
    if layer_name(rnn) not in _RECURRENT:
        raise ValueError(
            f"Bidirectional: expected a SimpleRNN, LSTM or GRU layer, got {layer_name(rnn)}"
        )

    def init(key, input_shape):
        forward_key, backward_key = jax.random.split(key)
        shape, forward, _ = rnn.init(forward_key, input_shape)
        _, backward, _ = rnn.init(backward_key, input_shape)
        return (*shape[:-1], 2 * shape[-1]), {"forward": forward, "backward": backward}, {}

    def apply(params, state, x, *, key=None, train=False, mask=None, initial_carry=None):
        carries = (None, None) if initial_carry is None else initial_carry
        if len(carries) != 2:
            raise ValueError("Bidirectional: initial_carry must be (forward_carry, backward_carry)")
        outputs = [
            rnn.apply(params[direction], {}, x, mask=mask, initial_carry=carry, reverse=reverse)[0]
            for direction, carry, reverse in zip(("forward", "backward"), carries, (False, True))
        ]
        return jnp.concatenate(outputs, axis=-1), state

    return make_layer("Bidirectional", init, apply, children=(("forward", rnn), ("backward", rnn)))


def WithLengths(layer: Layer) -> Layer:
    """``layer`` on right-padded sequences given with their lengths, ``(x, lengths)``.

    ``apply`` takes ``(x, lengths)``: ``x`` (batch, time, ...) padded at the
    end, ``lengths`` int (batch,); it calls ``layer`` on ``x`` with
    ``mask=sequence_mask(lengths, time)``, which combinators pass on to every
    layer inside that takes ``mask`` (the recurrent ones), so each sequence
    gets the result it would get unpadded. ``x`` alone (every step real)
    works too. ``init`` takes the matching shapes, ``((batch, time, ...),
    (batch,))`` or ``x``'s. Params and state are ``layer``'s, unnested; the
    output is ``layer``'s (the lengths stop here). Other per-call keywords go
    to ``layer``.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> net = fn.WithLengths(fn.Sequential(fn.Embedding(10, 4), fn.LSTM(3)))
        >>> _, params, state = net.init(jax.random.key(0), ((2, 5), (2,)))
        >>> tokens, lengths = jnp.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]), jnp.array([3, 5])
        >>> y, _ = net.apply(params, state, (tokens, lengths))
        >>> bool(jnp.allclose(y[0], net.apply(params, state, tokens[:1, :3])[0][0]))
        True
    """
    if not layer.accepts("mask"):
        raise TypeError(f"WithLengths: {layer_name(layer)} takes no mask=, nor any layer inside it")

    def init(key, input_shape):
        return layer.init(key, input_shape if is_shape(input_shape) else _checked(input_shape)[0])

    def apply(params, state, x, *, key=None, train=False, **kwargs):
        mask = {}
        if isinstance(x, tuple | list):
            x, lengths = _checked(x, jnp.shape)
            mask = {"mask": sequence_mask(lengths, x.shape[1])}
        return layer.apply(params, state, x, key=key, train=train, **mask, **kwargs)

    return make_layer(
        "WithLengths",
        init,
        apply,
        (("", layer),),
        child_input=lambda shape, _: shape if is_shape(shape) else shape[0],
        accepts=layer.accepts,
    )


def _checked(pair: Any, shape: Callable = tuple) -> tuple[Any, Any]:
    """An ``(x, lengths)`` pair (of arrays, or of their ``shape``s), checked to match."""
    if len(pair) == 2:
        x, lengths = pair
        if len(shape(x)) >= 2 and tuple(shape(lengths)) == tuple(shape(x))[:1]:
            return x, lengths
    raise ValueError(
        "WithLengths: expected (x, lengths) of shapes ((batch, time, ...), (batch,)), "
        f"got {tuple(tuple(shape(part)) for part in pair)}"
    )
