"""`Embedding`: a learned lookup table from integer ids to vectors."""

from __future__ import annotations

import jax.numpy as jnp

from funcnets import initializers
from funcnets.initializers import Initializer
from funcnets.layers.base import Layer, make_layer
from funcnets.layers.checks import positive_int


def Embedding(num: int, features: int, w_init: Initializer = initializers.normal(1.0)) -> Layer:
    """Maps integer ids in ``[0, num)`` to rows of a table: ``y = table[x]``.

    Params: ``table`` (num, features), initialised N(0, 1) as in PyTorch.
    Input: integers of any shape (batch, ...); output (batch, ..., features).
    An id outside ``[0, num)``, negative ones included, gives a row of NaNs
    (for a floating table, eagerly and under ``jit``), never a silent
    wrap-around to another row (``table[-1]`` would be the last).

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> emb = fn.Embedding(3, 2)
        >>> _, params, state = emb.init(jax.random.key(0), (4,))
        >>> y, _ = emb.apply(params, state, jnp.array([0, 2, 3, -1]))
        >>> jnp.isnan(y).all(axis=-1)
        Array([False, False,  True,  True], dtype=bool)
    """
    num = positive_int("Embedding", "num", num)
    features = positive_int("Embedding", "features", features)

    def init(key, input_shape):
        return (*input_shape, features), {"table": w_init(key, (num, features))}, {}

    def apply(params, state, x, *, key=None, train=False):
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"Embedding: expected integer ids, got {x.shape} of dtype {x.dtype}")
        table = params["table"]
        # `take` wraps negative ids as numpy does: send them past the end, to the fill
        # value. In the default int dtype, which holds the table size (int8 may not).
        ids = x.astype(int)
        ids = jnp.where(ids < 0, table.shape[0], ids)
        return jnp.take(table, ids, axis=0, mode="fill"), state

    return make_layer("Embedding", init, apply)
