"""`check_grads`: reverse-mode gradients checked against central finite differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_grads(
    f: Callable[..., jax.Array],
    args: tuple[Any, ...],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    directions: int = 2,
    seed: int = 0,
) -> None:
    """Checks ``jax.grad(f)`` against finite differences, leaf by leaf.

    For every floating-point array leaf ``p`` of every argument (pytrees are
    fine) and a few random unit directions ``v`` in that leaf alone, compares
    the directional derivative ``<grad f, v>`` with the central difference
    ``(f(p + eps v) - f(p - eps v)) / (2 eps)``. Run it in float64
    (``jax.config.update("jax_enable_x64", True)`` and float64 arguments):
    in float32 the differences are mostly rounding.

    Args:
        f: a scalar-valued, jittable function of ``args`` (compiled once here).
        args: the point at which to check, a tuple of pytrees.
        eps: the finite-difference step.
        rtol: relative tolerance on each directional derivative.
        atol: absolute tolerance on each directional derivative.
        directions: random directions tried per leaf.
        seed: seed of the directions.

    Raises:
        AssertionError: naming the argument and leaf path that disagree.
    """
    grads = jax.jit(jax.grad(f, argnums=tuple(range(len(args)))))(*args)
    f = jax.jit(f)
    rng = np.random.default_rng(seed)
    for index, (arg, grad) in enumerate(zip(args, grads)):
        leaves = jax.tree_util.tree_flatten_with_path(arg)[0]
        grad_leaves = jax.tree.leaves(grad)
        for leaf_number, ((path, leaf), g) in enumerate(zip(leaves, grad_leaves)):
            if not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
                continue
            for _ in range(directions):
                v = rng.standard_normal(np.shape(leaf))
                v = jnp.asarray(v / max(np.linalg.norm(v), 1e-12), jnp.asarray(leaf).dtype)

                def along(t, index=index, leaf_number=leaf_number, v=v):
                    flat, tree = jax.tree.flatten(args[index])
                    flat[leaf_number] = flat[leaf_number] + t * v
                    moved = jax.tree.unflatten(tree, flat)
                    return f(*args[:index], moved, *args[index + 1 :])

                numeric = (along(eps) - along(-eps)) / (2 * eps)
                analytic = jnp.vdot(g, v)
                if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
                    where = jax.tree_util.keystr(path) or "(the whole argument)"
                    raise AssertionError(
                        f"gradient mismatch in argument {index} at {where}: autodiff "
                        f"{float(analytic):.10g} vs finite differences {float(numeric):.10g}"
                    )
