"""Bit-for-bit comparison of pytrees of arrays, typed PRNG keys included (shared by the tests)."""

import jax
import jax.numpy as jnp
import numpy as np


def raw(leaf):
    """A leaf as plain numbers: a typed key's data, any other array as it is."""
    return jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf


def leaves_equal(a, b) -> bool:
    """Whether two pytrees have the same leaves, bit for bit."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(raw(x), raw(y)) for x, y in pairs)


def assert_bit_identical(a, b) -> None:
    """Like `leaves_equal`, failing with numpy's report of the first leaf that differs."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(raw(x), raw(y))
