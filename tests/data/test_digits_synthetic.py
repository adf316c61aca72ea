"""The bundled digits and the synthetic datasets."""

import hashlib

import jax
import numpy as np
import pytest

from funcnets.data import digits as digits_module
from funcnets.data import load_digits, moons, sine, spirals, xor

KEY = jax.random.key(0)
PINNED_SPLIT = "c3521feaeea22bea84be52670289cff9b4acd08150be67a30ff21f762b619fce"


def test_digits_shapes_ranges_and_split():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int32
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(x * 16)) <= set(range(17))
    assert np.bincount(y_test).tolist() == [36, 36, 36, 36, 37, 36, 36, 36, 35, 36]
    total = np.bincount(y_train, minlength=10) + np.bincount(y_test, minlength=10)
    assert total.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    flat = np.concatenate([x_train, x_test]).reshape(1797, -1)
    assert len(np.unique(flat, axis=0)) == len(np.unique(flat[:1437], axis=0)) + len(
        np.unique(flat[1437:], axis=0)
    )  # no image is in both sets


def test_digits_split_is_fixed():
    (x_train, y_train), (x_test, y_test) = load_digits()
    again = load_digits()
    np.testing.assert_array_equal(again[0][0], x_train)
    np.testing.assert_array_equal(again[1][1], y_test)
    digest = hashlib.sha256(y_train.tobytes() + y_test.tobytes()).hexdigest()
    assert digest == PINNED_SPLIT
    assert y_train[:10].tolist() == [8, 2, 6, 6, 7, 1, 9, 8, 5, 2]


def test_digits_damaged_file_is_detected(monkeypatch):
    monkeypatch.setattr(digits_module, "SHA256", "0" * 64)
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_digits()


def as_numpy(xy):
    return tuple(np.asarray(a) for a in xy)


SETS = {"xor": (xor, 200, 2), "spirals": (spirals, 300, 3), "moons": (moons, 200, 2)}


@pytest.mark.parametrize("name", SETS)
def test_classification_sets_shapes_balance_and_determinism(name):
    make, n, classes = SETS[name]
    x, y = as_numpy(make(KEY))
    assert x.shape == (n, 2) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int32
    assert np.bincount(np.asarray(y)).tolist() == [n // classes] * classes
    x_again, y_again = as_numpy(make(KEY))
    np.testing.assert_array_equal(x_again, x)
    np.testing.assert_array_equal(y_again, y)
    assert not np.allclose(make(jax.random.key(1))[0], x)


def test_xor_geometry():
    x, y = as_numpy(xor(KEY, noise=0.0))
    np.testing.assert_array_equal(np.abs(x), 1.0)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(np.int32))
    x_noisy, _ = as_numpy(xor(KEY, noise=0.1))
    assert 0.08 < float(np.std(x_noisy - x)) < 0.12


def test_spirals_geometry():
    x, y = as_numpy(spirals(KEY, noise=0.0))
    radius = np.linalg.norm(x, axis=1)
    assert float(radius.max()) == pytest.approx(1.0) and float(radius.min()) == 0.0
    # Noise-free, each point lies on its arm: angle 4 (c + r) measured from the y axis.
    on_arm = np.arctan2(x[:, 0], x[:, 1]) - 4 * (y + radius)
    np.testing.assert_allclose(np.sin(on_arm[radius > 0]), 0.0, atol=1e-5)
    x_small, y_small = spirals(jax.random.PRNGKey(0), n=7)  # legacy keys work too
    assert x_small.shape == (7, 2) and y_small.tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="classes must be at least 2"):
        spirals(KEY, classes=1)


def test_moons_geometry():
    x, y = as_numpy(moons(KEY, noise=0.0))
    np.testing.assert_allclose(np.linalg.norm(x[y == 0], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(x[y == 1] - np.array([1.0, 0.5]), axis=1), 1.0, atol=1e-6
    )


def test_sine():
    x, y = as_numpy(sine(KEY, noise=0.1))
    assert x.shape == y.shape == (200, 1) and x.dtype == y.dtype == np.float32
    assert float(x.min()) >= -np.pi and float(x.max()) <= np.pi
    assert 0.08 < float(np.std(y - np.sin(x))) < 0.12
    clean_x, clean_y = as_numpy(sine(KEY, noise=0.0))
    np.testing.assert_allclose(clean_y, np.sin(clean_x), atol=1e-6)
    assert not np.allclose(sine(jax.random.key(1))[0], clean_x)
    with pytest.raises(ValueError, match="n must be at least 1"):
        sine(KEY, n=0)
