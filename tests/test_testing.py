"""fn.testing.check_grads accepts right gradients and names the leaf of wrong ones."""

import jax
import jax.numpy as jnp
import pytest

import funcnets as fn


def test_check_grads_accepts_correct_gradients(x64):
    params = {"a": jnp.arange(3.0), "b": {"c": jnp.ones((2, 2))}}
    fn.testing.check_grads(
        lambda p, x: jnp.sum(jnp.sin(p["a"]) * x) + jnp.sum(p["b"]["c"] ** 3),
        (params, jnp.arange(3.0)),
    )


def test_check_grads_names_the_leaf_with_a_wrong_gradient(x64):
    @jax.custom_jvp
    def wrong_square(x):
        return x**2

    @wrong_square.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return x**2, 3 * x * t  # should be 2 x t

    params = {"good": jnp.arange(1.0, 4.0), "bad": jnp.arange(1.0, 4.0)}
    loss = lambda p: jnp.sum(p["good"] ** 2) + jnp.sum(wrong_square(p["bad"]))
    with pytest.raises(AssertionError, match=r"argument 0 at \['bad'\]"):
        fn.testing.check_grads(loss, (params,))
