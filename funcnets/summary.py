"""`summary`: a printable table of a network's layers, shapes and parameter counts."""

from __future__ import annotations

import inspect
import math
from typing import Any

import jax

from funcnets.layers.base import Layer, layer_children, layer_name


def _abstract_init(layer: Layer, input_shape) -> tuple[object, int, int]:
    """Runs ``layer.init`` abstractly: (output shape, #params, #state scalars), no arrays made.

    A jitted init would return the output shape as arrays; the function it wraps
    (`inspect.unwrap`) returns the same shape as ints.
    """
    box = {}

    def init(key):
        box["shape"], params, state = inspect.unwrap(layer.init)(key, input_shape)
        return params, state

    params, state = jax.eval_shape(init, jax.random.key(0))
    count = lambda tree: sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))  # noqa: E731
    return box["shape"], count(params), count(state)


def summary(net: Layer, input_shape: Any) -> str:
    """A table of every layer's path, type, output shape and parameter count.

    Shapes include the batch dimension. ``input_shape`` is a shape, or a tuple
    of shapes for a net whose input is a tuple (``((batch, time), (batch,))``
    for ``(tokens, lengths)``). Combinators are listed with their
    children indented below them; the count on a combinator's line is the
    total of its children. The last lines give the total number of trainable
    parameters (the number of scalars in ``params``) and of state scalars.

    Example:
        >>> import funcnets as fn
        >>> print(fn.summary(fn.Sequential(fn.Dense(4), fn.relu), (1, 3)))
        path  layer       output shape  params
        --------------------------------------
        .     Sequential  (1, 4)            16
          0   Dense       (1, 4)            16
          1   relu        (1, 4)             0
        --------------------------------------
        Total params: 16
        Total state (non-trainable): 0
        Input shape: (1, 3)
    """
    rows: list[tuple[str, str, str, str]] = []

    def visit(layer: Layer, path: str, depth: int, shape) -> object:
        out, n_params, _ = _abstract_init(layer, shape)
        rows.append(("  " * depth + (path or "."), layer_name(layer), str(out), f"{n_params:,}"))
        previous = shape
        for key, child in layer_children(layer):
            child_path = f"{path}/{key}".strip("/") if key else path
            previous = visit(child, child_path, depth + 1, layer.child_input(shape, previous))
        return out

    input_shape = tuple(input_shape)
    visit(net, "", 0, input_shape)
    _, total, total_state = _abstract_init(net, input_shape)
    header = ("path", "layer", "output shape", "params")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def line(r):
        return "  ".join(
            [
                r[0].ljust(widths[0]),
                r[1].ljust(widths[1]),
                r[2].ljust(widths[2]),
                r[3].rjust(widths[3]),
            ]
        ).rstrip()

    rule = "-" * len(line(header))
    body = [line(header), rule, *map(line, rows), rule]
    body.append(f"Total params: {total:,}")
    body.append(f"Total state (non-trainable): {total_state:,}")
    body.append(f"Input shape: {input_shape}")
    return "\n".join(body)
