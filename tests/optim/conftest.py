"""Shared fixtures for the optimizer tests: a noisy quadratic and a step runner.

The gradient at step t is ``a * (p - c) + noise_t``: it depends on the
parameters (so weight decay and every parameter-dependent term matter) and on
a fixed noise sequence, the same for funcnets and optax.
"""

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnets.optim as fo

STEPS = 1000
RTOL, ATOL = 1e-5, 1e-6


class Quadratic(NamedTuple):
    params: Any
    curvature: Any
    target: Any
    noise: Any  # each leaf has a leading axis of STEPS


def _quadratic() -> Quadratic:
    rng = np.random.default_rng(0)
    shapes = {"dense": {"w": (4, 3), "b": (3,)}, "scale": ()}

    def tree(make: Callable[[tuple[int, ...]], np.ndarray]) -> Any:
        return jax.tree.map(
            lambda s: jnp.asarray(make(s), jnp.float32),
            shapes,
            is_leaf=lambda x: isinstance(x, tuple),
        )

    return Quadratic(
        params=tree(rng.standard_normal),
        curvature=tree(lambda s: rng.uniform(0.5, 2.0, s)),
        target=tree(rng.standard_normal),
        noise=tree(lambda s: 0.1 * rng.standard_normal((STEPS, *s))),
    )


def _grad(problem: Quadratic, params: Any, noise: Any) -> Any:
    return jax.tree.map(
        lambda p, a, c, n: a * (p - c) + n, params, problem.curvature, problem.target, noise
    )


def _scan(tx: Any, apply: Callable, problem: Quadratic, noise: Any) -> Any:
    def step(carry: tuple[Any, Any], noise_t: Any) -> tuple[tuple[Any, Any], None]:
        params, state = carry
        updates, state = tx.update(_grad(problem, params, noise_t), state, params)
        return (apply(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (problem.params, tx.init(problem.params)), noise)
    return params


def _loop(tx: Any, apply: Callable, problem: Quadratic, noise: Any, steps: int) -> Any:
    params, state = problem.params, tx.init(problem.params)
    for t in range(steps):
        grads = _grad(problem, params, jax.tree.map(operator.itemgetter(t), noise))
        updates, state = tx.update(grads, state, params)
        params = apply(params, updates)
    return params


@pytest.fixture(scope="session")
def quadratic() -> Quadratic:
    return _quadratic()


@pytest.fixture(scope="session")
def run(quadratic: Quadratic) -> Callable[..., Any]:
    """``run(fn_tx, optax_tx, steps=STEPS, jit=True)``: both final params after ``steps`` updates.

    funcnets' transformation is applied with ``fo.apply_updates``, optax's with
    ``optax.apply_updates``. Jitted, both runs are ``lax.scan``s compiled
    together (one compilation); un-jitted, each is a Python loop of eager updates.
    """

    def run_(fn_tx: Any, optax_tx: Any, steps: int = STEPS, jit: bool = True) -> Any:
        noise = jax.tree.map(lambda n: n[:steps], quadratic.noise)
        runs = [(fn_tx, fo.apply_updates), (optax_tx, optax.apply_updates)]
        if not jit:
            return [_loop(tx, apply, quadratic, noise, steps) for tx, apply in runs]
        return jax.jit(lambda q, n: [_scan(tx, apply, q, n) for tx, apply in runs])(
            quadratic, noise
        )

    return run_


def assert_trees_close(actual: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Same structure, and every leaf close, compared by key path."""
    got, got_def = jax.tree_util.tree_flatten_with_path(actual)
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    assert got_def == want_def, f"structures differ: {got_def} != {want_def}"
    for (path, x), (_, y) in zip(got, want, strict=True):
        name = jax.tree_util.keystr(path)
        assert jnp.shape(x) == jnp.shape(y) and jnp.result_type(x) == jnp.result_type(y), name
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=name)


@pytest.fixture(scope="session")
def trees_close() -> Callable[..., None]:
    return assert_trees_close
