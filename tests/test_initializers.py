"""Tests for funcnets.initializers: shapes, dtypes, variances, bounds, fans of dense and
conv kernels, orthogonality, determinism, and agreement with jax.nn.initializers.

Speed: the cost here is compiling the random samplers, once per shape and dtype, so the
tests call initializers eagerly (jax.random's samplers are jitted and shared by every
initializer) on a handful of shapes.
"""

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets import initializers as I

KEY = jax.random.key(0)
DENSE = (128, 256)  # wide as a matrix
CONV = (3, 3, 16, 32)  # HWIO: fan_in = 3*3*16 = 144, fan_out = 3*3*32 = 288; tall as a matrix
VECTOR = (4096,)
SHAPES = [VECTOR, DENSE, CONV]
SQUARE = (8, 8)

# name -> an initializer (factories called with their defaults unless the name says otherwise)
INITIALIZERS = {
    "zeros": I.zeros,
    "ones": I.ones,
    "constant": I.constant(0.25),
    "normal": I.normal(),
    "uniform": I.uniform(),
    "glorot_uniform": I.glorot_uniform(),
    "glorot_normal": I.glorot_normal(),
    "he_uniform": I.he_uniform(),
    "he_normal": I.he_normal(),
    "lecun_uniform": I.lecun_uniform(),
    "lecun_normal": I.lecun_normal(),
    "orthogonal": I.orthogonal(),
}
RANDOM = [name for name in INITIALIZERS if name not in ("zeros", "ones", "constant")]


def assert_orthonormal(w, scale=1.0, atol=1e-5):
    q = np.float64(w).reshape(-1, w.shape[-1]) / scale
    rows, cols = q.shape
    gram = q.T @ q if rows >= cols else q @ q.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=atol)


@pytest.fixture
def enable_x64():
    """Enables 64-bit types inside one test only, restoring the previous setting."""
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_shape_and_default_dtype_float32(name):
    init = INITIALIZERS[name]
    assert isinstance(init, I.Initializer)
    for shape in SHAPES[1:] if name == "orthogonal" else SHAPES:
        w = init(KEY, shape)
        assert w.shape == shape
        assert w.dtype == jnp.float32
        assert np.all(np.isfinite(w))


def test_float64_when_asked(enable_x64):
    for name, init in INITIALIZERS.items():
        w = init(KEY, SQUARE, jnp.float64)
        assert w.dtype == jnp.float64, name
        assert w.shape == SQUARE, name
    # orthogonal to double precision
    assert_orthonormal(INITIALIZERS["orthogonal"](KEY, SQUARE, jnp.float64), atol=1e-12)


def test_bfloat16_when_asked():
    for name in ("zeros", "he_normal", "orthogonal"):  # orthogonal computes QR in float32
        assert INITIALIZERS[name](KEY, SQUARE, jnp.bfloat16).dtype == jnp.bfloat16, name


@pytest.mark.parametrize("name", RANDOM)
def test_deterministic_per_key(name):
    init = INITIALIZERS[name]
    first = init(KEY, CONV)
    np.testing.assert_array_equal(init(KEY, CONV), first)
    assert not np.allclose(init(jax.random.key(1), CONV), first)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_traceable_under_jit(name):
    # eval_shape traces as jit does (no Python branching on traced values), without compiling.
    out = jax.eval_shape(lambda key: INITIALIZERS[name](key, CONV, jnp.bfloat16), KEY)
    assert out.shape == CONV and out.dtype == jnp.bfloat16


def test_constants():
    np.testing.assert_array_equal(I.zeros(KEY, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(I.ones(KEY, (2, 3)), np.ones((2, 3)))
    np.testing.assert_array_equal(I.constant(-1.5)(KEY, (4,)), np.full(4, -1.5))
    assert I.constant(3)(KEY, (2,), jnp.int32).dtype == jnp.int32


def fans(shape):
    """Written out: 1-D (n,), dense (in, out), conv (*kernel, in, out)."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = int(np.prod(shape[:-2]))
    return shape[-2] * receptive_field, shape[-1] * receptive_field


# name -> (distribution, variance as a function of (fan_in, fan_out))
VARIANCE_SCALING = {
    "glorot_uniform": ("uniform", lambda fi, fo: 2 / (fi + fo)),
    "glorot_normal": ("normal", lambda fi, fo: 2 / (fi + fo)),
    "he_uniform": ("uniform", lambda fi, fo: 2 / fi),
    "he_normal": ("normal", lambda fi, fo: 2 / fi),
    "lecun_uniform": ("uniform", lambda fi, fo: 1 / fi),
    "lecun_normal": ("normal", lambda fi, fo: 1 / fi),
}


@pytest.mark.parametrize("shape", SHAPES, ids=["vector", "dense", "conv"])
@pytest.mark.parametrize("name", VARIANCE_SCALING)
def test_variance_scaling(name, shape):
    distribution, variance_of = VARIANCE_SCALING[name]
    variance = variance_of(*fans(shape))
    w = np.float64(INITIALIZERS[name](jax.random.key(42), shape))
    n = w.size
    # Five standard errors of the sample mean and of the sample variance
    # (Var[s²] = σ⁴ (κ - 1) / n, with kurtosis κ = 3 for a Gaussian and 1.8 for a uniform).
    kurtosis = 3.0 if distribution == "normal" else 1.8
    assert abs(w.mean()) < 5 * math.sqrt(variance / n)
    assert abs(w.var() / variance - 1) < 5 * math.sqrt((kurtosis - 1) / n)
    if distribution == "uniform":
        limit = math.sqrt(3 * variance)
        assert np.all(np.abs(w) <= limit * (1 + 1e-6))
        assert np.abs(w).max() > 0.99 * limit
    else:
        # A plain Gaussian has 1.24% of its mass beyond 2.5 std; jax's and Keras's
        # rescaled truncated normal has none beyond 2.28 std.
        assert np.mean(np.abs(w) > 2.5 * math.sqrt(variance)) > 0.004


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
def test_uniform_variants_equal_jax_nn(shape):
    for name in ("glorot_uniform", "he_uniform", "lecun_uniform"):
        ours = INITIALIZERS[name](KEY, shape)
        theirs = getattr(jax.nn.initializers, name)()(KEY, shape, jnp.float32)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, err_msg=name)


def test_variance_scaling_rejects_scalar_shape():
    with pytest.raises(ValueError, match="0-d"):
        I.he_normal()(KEY, ())


@pytest.mark.parametrize("scale", [None, 0.5])
def test_normal_and_uniform_match_jax_nn_and_their_scale(scale):
    args = () if scale is None else (scale,)
    expected_scale = 1e-2 if scale is None else scale
    normal, uniform = I.normal(*args)(KEY, DENSE), I.uniform(*args)(KEY, DENSE)
    np.testing.assert_array_equal(normal, jax.nn.initializers.normal(*args)(KEY, DENSE))
    np.testing.assert_array_equal(uniform, jax.nn.initializers.uniform(*args)(KEY, DENSE))
    assert abs(np.float64(normal).std() / expected_scale - 1) < 0.01
    w = np.asarray(uniform)  # U[0, scale), as jax.nn.initializers.uniform
    assert w.min() >= 0 and w.max() < expected_scale
    assert w.min() < 0.01 * expected_scale and w.max() > 0.99 * expected_scale
    assert abs(w.mean() / (expected_scale / 2) - 1) < 0.01


@pytest.mark.parametrize("shape", [SQUARE, DENSE, CONV], ids=["square", "wide-dense", "tall-conv"])
def test_orthogonal(shape):
    assert_orthonormal(INITIALIZERS["orthogonal"](KEY, shape))


def test_orthogonal_scale():
    assert_orthonormal(I.orthogonal(2.0)(KEY, CONV), scale=2.0)


def test_orthogonal_rejects_one_dimensional_shape():
    with pytest.raises(ValueError, match=r"orthogonal.*\(5,\)"):
        I.orthogonal()(KEY, (5,))


def test_orthogonal_diagonal_signs_are_unbiased():
    # Without the sign correction about 1/4 of the diagonal of LAPACK's Q is positive;
    # for Haar-distributed Q it is 1/2 (here 128 draws, standard error 0.044).
    q = INITIALIZERS["orthogonal"](KEY, DENSE)
    assert 0.37 < np.mean(np.diag(q) > 0) < 0.63


TESTED = (set(INITIALIZERS) | {"Initializer"}) & set(I.__all__)


def test_every_public_name_is_tested():
    assert sorted(TESTED) == sorted(I.__all__)


def test_initializers_print_as_the_expression_that_made_them():
    """So that layer defaults read well in help(): ``w_init=lecun_normal()``, not an address."""
    assert repr(I.normal(0.1)) == "normal(stddev=0.1)"
    assert repr(I.orthogonal()) == "orthogonal(scale=1.0)"
    assert repr(I.glorot_uniform()) == "glorot_uniform()"
    assert (repr(I.zeros), repr(I.ones)) == ("zeros", "ones")
    signature = str(inspect.signature(fn.Dense))
    assert "w_init: 'Initializer' = lecun_normal()" in signature, signature
    assert "b_init: 'Initializer' = zeros" in signature, signature
    assert "normal(stddev=1.0)" in str(inspect.signature(fn.Embedding))


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializers_stay_plain_init_functions_under_jit(name):
    init = INITIALIZERS[name]
    jitted = jax.jit(init, static_argnums=(1, 2))(KEY, SQUARE, jnp.bfloat16)
    assert jitted.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.float32(jitted), np.float32(init(KEY, SQUARE, jnp.bfloat16)), rtol=1e-2
    )
