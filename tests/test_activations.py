"""Tests for funcnets.activations: values against numpy formulas and jax.nn, gradients,
numerical stability, and properties of softmax and maxout."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funcnets import activations as A

# Speed: tests call jitted functions, and each table of cases below is evaluated by one
# compiled program (cached), several times faster than compiling per case or op by op.


def table_outputs(table, compute, x):
    """``{name: compute(x, *entry)}`` for a table of cases, from one compiled program.

    ``x`` is passed as an argument, not closed over: jax 0.10.2 fails an internal
    assertion on a closed-over numpy constant under jit(vmap(grad(custom_jvp function))).
    """
    return jax.jit(lambda x: {name: compute(x, *entry) for name, entry in table.items()})(x)


X = np.linspace(-6.0, 6.0, 49, dtype=np.float32)  # includes 0.0
X64 = X.astype(np.float64)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


# name -> (funcnets function with its arguments bound, numpy reference in float64)
NUMPY_REFERENCES = {
    "identity": (A.identity, lambda x: x),
    "binary_step": (A.binary_step, lambda x: (x >= 0).astype(x.dtype)),
    "binary_step_ste": (A.binary_step_ste, lambda x: (x >= 0).astype(x.dtype)),
    "sigmoid": (A.sigmoid, np_sigmoid),
    "tanh": (A.tanh, np.tanh),
    "relu": (A.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (A.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    "leaky_relu(0.2)": (lambda x: A.leaky_relu(x, 0.2), lambda x: np.where(x >= 0, x, 0.2 * x)),
    "elu": (A.elu, np_elu),
    "elu(0.5)": (lambda x: A.elu(x, alpha=0.5), lambda x: np_elu(x, 0.5)),
    "selu": (A.selu, lambda x: SELU_SCALE * np_elu(x, SELU_ALPHA)),
    "gelu": (A.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "gelu(approximate)": (
        lambda x: A.gelu(x, approximate=True),
        lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    ),
    "swish": (A.swish, lambda x: x * np_sigmoid(x)),
    "swish(2)": (lambda x: A.swish(x, beta=2.0), lambda x: x * np_sigmoid(2 * x)),
    "silu": (A.silu, lambda x: x * np_sigmoid(x)),
    "softplus": (A.softplus, lambda x: np.log1p(np.exp(x))),
    "softsign": (A.softsign, lambda x: x / (1 + np.abs(x))),
    "softmax": (A.softmax, lambda x: np.exp(x) / np.exp(x).sum()),
    "log_softmax": (A.log_softmax, lambda x: x - np.log(np.exp(x).sum())),
}


@functools.cache
def numpy_reference_outputs():
    return table_outputs(NUMPY_REFERENCES, lambda x, f, _: f(x), X)


@pytest.mark.parametrize("name", NUMPY_REFERENCES)
def test_values_match_numpy_formula(name):
    _, reference = NUMPY_REFERENCES[name]
    y = numpy_reference_outputs()[name]
    assert y.dtype == jnp.float32
    assert y.shape == X.shape
    np.testing.assert_allclose(y, reference(X64), rtol=1e-5, atol=1e-6)


JAX_NN = {
    "sigmoid": (A.sigmoid, jax.nn.sigmoid),
    "relu": (A.relu, jax.nn.relu),
    "leaky_relu": (A.leaky_relu, jax.nn.leaky_relu),
    "elu": (A.elu, jax.nn.elu),
    "selu": (A.selu, jax.nn.selu),
    "gelu": (A.gelu, lambda x: jax.nn.gelu(x, approximate=False)),
    "gelu(approximate)": (lambda x: A.gelu(x, True), lambda x: jax.nn.gelu(x, approximate=True)),
    "silu": (A.silu, jax.nn.silu),
    "softplus": (A.softplus, jax.nn.softplus),
    "softsign": (A.softsign, jax.nn.soft_sign),
    "softmax": (A.softmax, jax.nn.softmax),
    "log_softmax": (A.log_softmax, jax.nn.log_softmax),
}


@functools.cache
def jax_nn_outputs():
    return table_outputs(JAX_NN, lambda x, f, reference: (f(x), reference(x)), X)


@pytest.mark.parametrize("name", JAX_NN)
def test_values_match_jax_nn(name):
    ours, theirs = jax_nn_outputs()[name]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_gelu_is_exact_by_default_unlike_jax_nn():
    default, exact, jax_default = jax.jit(
        lambda x: (A.gelu(x), A.gelu(x, approximate=False), jax.nn.gelu(x))
    )(X)
    np.testing.assert_array_equal(default, exact)
    assert not np.allclose(default, jax_default, rtol=0, atol=1e-5)


def test_binary_step_keeps_dtype():
    dtypes = (jnp.float32, jnp.bfloat16, jnp.int32)
    inputs = [jnp.array([-2, 0, 3], dtype) for dtype in dtypes]
    for dtype, y in zip(
        dtypes, jax.jit(lambda xs: [A.binary_step(x) for x in xs])(inputs), strict=True
    ):
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, np.array([0, 1, 1]))


def test_binary_step_has_zero_gradient_and_ste_has_identity_gradient():
    def both(x):
        grads = [jax.vmap(jax.grad(f))(x) for f in (A.binary_step, A.binary_step_ste)]
        return grads, A.binary_step_ste(x), A.binary_step(x)

    (step_grad, ste_grad), ste, step = jax.jit(both)(X)
    np.testing.assert_array_equal(step_grad, np.zeros_like(X))
    np.testing.assert_array_equal(ste_grad, np.ones_like(X))
    np.testing.assert_array_equal(ste, step)
    np.testing.assert_array_equal(A.binary_step_ste(X[:3]), A.binary_step(X[:3]))  # eager


def test_binary_step_ste_forward_is_exact_for_large_inputs():
    x = jnp.array([-3e8, -1e-30, 1e-30, 3e8])
    np.testing.assert_array_equal(A.binary_step_ste(x), [0.0, 0.0, 1.0, 1.0])


def _phi(x):
    return np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)


# name -> (function, derivative written out in numpy)
DERIVATIVES = {
    "identity": (A.identity, np.ones_like),
    "sigmoid": (A.sigmoid, lambda x: np_sigmoid(x) * (1 - np_sigmoid(x))),
    "tanh": (A.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "relu": (A.relu, lambda x: (x > 0).astype(x.dtype)),
    "leaky_relu": (A.leaky_relu, lambda x: np.where(x >= 0, 1.0, 0.01)),
    "elu": (A.elu, lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    "selu": (A.selu, lambda x: SELU_SCALE * np.where(x > 0, 1, SELU_ALPHA * np.exp(x))),
    "gelu": (A.gelu, lambda x: 0.5 * (1 + _erf(x / np.sqrt(2))) + x * _phi(x)),
    "swish(2)": (
        lambda x: A.swish(x, 2.0),
        lambda x: np_sigmoid(2 * x) + 2 * x * np_sigmoid(2 * x) * (1 - np_sigmoid(2 * x)),
    ),
    "silu": (A.silu, lambda x: np_sigmoid(x) * (1 + x * (1 - np_sigmoid(x)))),
    "softplus": (A.softplus, np_sigmoid),
    "softsign": (A.softsign, lambda x: 1 / (1 + np.abs(x)) ** 2),
}


@functools.cache
def derivative_outputs():
    return table_outputs(DERIVATIVES, lambda x, f, _: jax.vmap(jax.grad(f))(x), X)


@pytest.mark.parametrize("name", DERIVATIVES)
def test_gradients_match_derivatives(name):
    _, derivative = DERIVATIVES[name]
    grads = derivative_outputs()[name]
    np.testing.assert_allclose(grads, derivative(X64), rtol=1e-5, atol=1e-6)


def test_softmax_gradient_is_its_jacobian():
    x = jnp.array([0.3, -1.2, 2.0, 0.0])
    s = np.exp(np.float64(x)) / np.exp(np.float64(x)).sum()
    jacobians = jax.jit(lambda x: (jax.jacobian(A.softmax)(x), jax.jacobian(A.log_softmax)(x)))
    softmax_jacobian, log_softmax_jacobian = jacobians(x)
    np.testing.assert_allclose(softmax_jacobian, np.diag(s) - np.outer(s, s), atol=1e-6)
    np.testing.assert_allclose(log_softmax_jacobian, np.eye(4) - np.outer(np.ones(4), s), atol=1e-6)


STABLE = {
    "sigmoid": (A.sigmoid, [0.0, 1.0]),
    "softplus": (A.softplus, [0.0, 1e3]),
    "gelu": (A.gelu, [0.0, 1e3]),
    "gelu(approximate)": (lambda x: A.gelu(x, True), [0.0, 1e3]),
    "elu": (A.elu, [-1.0, 1e3]),
    "selu": (A.selu, [-SELU_SCALE * SELU_ALPHA, SELU_SCALE * 1e3]),
    "swish": (A.swish, [0.0, 1e3]),
    "silu": (A.silu, [0.0, 1e3]),
    "tanh": (A.tanh, [-1.0, 1.0]),
    "softsign": (A.softsign, [-1e3 / 1001, 1e3 / 1001]),
}


@functools.cache
def stable_outputs():
    def values_and_gradients(x, f, _):
        return f(x), jax.vmap(jax.grad(f))(x)

    return table_outputs(STABLE, values_and_gradients, jnp.array([-1e3, 1e3]))


@pytest.mark.parametrize("name", STABLE)
def test_elementwise_finite_at_plus_minus_1e3(name):
    _, expected = STABLE[name]
    y, grads = stable_outputs()[name]
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert np.all(np.isfinite(grads))


@pytest.mark.parametrize("f", [A.softmax, A.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_finite_at_plus_minus_1e3(f):
    x = jnp.array([[1e3, -1e3, 0.0], [1e3, 1e3, -1e3], [-1e3, -1e3, -1e3]])
    y, grads = jax.jit(lambda x: (f(x), jax.grad(lambda x: jnp.sum(f(x) * jnp.arange(3.0)))(x)))(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grads))
    probs = np.exp(y) if f is A.log_softmax else y
    np.testing.assert_allclose(probs[0], [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(probs[1], [0.5, 0.5, 0], atol=1e-7)
    np.testing.assert_allclose(probs[2], [1 / 3] * 3, rtol=1e-6)


def test_softmax_axis():
    x = X[:48].reshape(4, 3, 4)

    def along_every_axis(x):
        return [
            (A.softmax(x, axis), A.log_softmax(x, axis), jax.nn.log_softmax(x, axis))
            for axis in (0, 1, -1)
        ]

    for axis, (s, log_s, log_s_jax) in zip((0, 1, -1), jax.jit(along_every_axis)(x), strict=True):
        np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-6)
        np.testing.assert_allclose(log_s, log_s_jax, atol=1e-6)


def test_softmax_with_minus_inf_masks():
    x = jnp.array([0.0, -jnp.inf, 0.0])
    s, log_s = jax.jit(lambda x: (A.softmax(x), A.log_softmax(x)))(x)
    np.testing.assert_allclose(s, [0.5, 0.0, 0.5])
    np.testing.assert_allclose(log_s, [-np.log(2), -np.inf, -np.log(2)])


def test_eager_jit_and_vmap_agree():
    x = X.reshape(7, 7)
    for f in (A.gelu, A.binary_step_ste):
        eager = f(x)
        np.testing.assert_allclose(jax.jit(f)(x), eager, rtol=1e-6)
        np.testing.assert_allclose(jax.jit(jax.vmap(f))(x), eager, rtol=1e-6)


def floats32(bound):
    return st.floats(-bound, bound, width=32, allow_subnormal=False)


# A fixed shape and jitted functions: hypothesis examples then reuse one compiled program.
moderate = hnp.arrays(np.float32, (4, 6), elements=floats32(30))
softmax_jit = jax.jit(A.softmax)
log_softmax_jit = jax.jit(A.log_softmax)


@settings(max_examples=30, deadline=None)
@given(x=moderate, shift=floats32(50))
def test_softmax_sums_to_one_and_is_shift_invariant(x, shift):
    s = softmax_jit(x)
    assert np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(softmax_jit(x + shift), s, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(x=moderate)
def test_log_softmax_is_log_of_softmax(x):
    np.testing.assert_allclose(log_softmax_jit(x), np.log(softmax_jit(x)), atol=1e-4)


maxout_jit = jax.jit(A.maxout, static_argnums=1)


@settings(max_examples=20, deadline=None)
@given(features=st.integers(1, 2), pieces=st.integers(1, 3), data=st.data())
def test_maxout_is_max_over_consecutive_groups(features, pieces, data):
    x = data.draw(hnp.arrays(np.float32, (2, features * pieces), elements=floats32(10)))
    expected = x.reshape(2, features, pieces).max(axis=-1)
    np.testing.assert_array_equal(maxout_jit(x, pieces), expected)


def test_maxout_on_another_axis():
    x = np.arange(24.0, dtype=np.float32).reshape(2, 6, 2) * np.array([1.0, -1.0], np.float32)
    y, y_negative_axis, y_one_piece = jax.jit(
        lambda x: (A.maxout(x, 3, axis=1), A.maxout(x, 3, axis=-2), A.maxout(x, 1))
    )(x)
    assert y.shape == (2, 2, 2)
    np.testing.assert_array_equal(y, x.reshape(2, 2, 3, 2).max(axis=2))
    np.testing.assert_array_equal(y_negative_axis, y)
    np.testing.assert_array_equal(y_one_piece, x)


def test_maxout_groups_consecutive_units_and_routes_gradient_to_the_max():
    x = jnp.array([1.0, 5.0, 40.0, 30.0])
    y, grads = jax.jit(jax.value_and_grad(lambda x: A.maxout(x, 2).sum()))(x)
    assert float(y) == 45.0  # max(1, 5) + max(40, 30), not max(1, 40) + max(5, 30)
    np.testing.assert_array_equal(grads, [0, 1, 1, 0])


def test_maxout_errors():
    with pytest.raises(ValueError, match=r"maxout.*\(10\).*pieces=3"):
        A.maxout(jnp.zeros((2, 10)), 3)
    with pytest.raises(ValueError, match="positive"):
        A.maxout(jnp.zeros((2, 10)), 0)
    with pytest.raises(ValueError, match="out of range"):
        A.maxout(jnp.zeros((2, 10)), 2, axis=2)


TABLES = (NUMPY_REFERENCES, JAX_NN, DERIVATIVES, STABLE, {"maxout": A.maxout})
TESTED = {name for table in TABLES for name in table} & set(A.__all__)


def test_every_public_name_is_tested():
    assert sorted(TESTED) == sorted(A.__all__)
