"""Embedding: lookups, and ids outside [0, num) give NaN rows, eagerly and under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn


@pytest.fixture(scope="module")
def embedding():
    layer = fn.Embedding(4, 3)
    _, params, state = layer.init(jax.random.key(0), (2, 3))
    return layer, params, state


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.uint8])
def test_out_of_range_ids_give_nan_rows_never_a_wrap_around(embedding, jit, dtype):
    layer, params, state = embedding
    apply = jax.jit(layer.apply) if jit else layer.apply
    # int8 reads 200 as -56; uint8 reads -1, -4 as 255, 252: all out of range.
    ids = np.array([[0, 3, -1], [-4, 4, 200]]).astype(dtype)
    y, new_state = apply(params, state, jnp.asarray(ids))
    assert y.shape == (2, 3, 3) and new_state == {}
    np.testing.assert_array_equal(y[0, 0], params["table"][0])
    np.testing.assert_array_equal(y[0, 1], params["table"][3])
    assert np.isnan(y[0, 2]).all() and np.isnan(y[1]).all()


def test_rejects_non_integer_ids_and_bad_sizes(embedding):
    layer, params, state = embedding
    with pytest.raises(ValueError, match=r"Embedding: expected integer ids"):
        layer.apply(params, state, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Embedding: num must be a positive int, got 0"):
        fn.Embedding(0, 3)
    with pytest.raises(TypeError, match=r"Embedding: features must be a positive int, got 2.5"):
        fn.Embedding(4, 2.5)
