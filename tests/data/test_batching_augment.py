"""Minibatching and augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funcnets.data import batches, gaussian_noise, random_crop, random_flip

KEY = jax.random.key(0)
X = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
Y = np.arange(10, dtype=np.int32)


def sizes(iterator):
    return [len(xb) for xb, _ in iterator]


def test_batches_in_order_with_last_partial_batch():
    out = list(batches(X, Y, 3))
    assert [len(xb) for xb, _ in out] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in out]), X)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in out]), Y)
    assert sizes(batches(X, Y, 3, drop_remainder=True)) == [3, 3, 3]
    assert sizes(batches(X, Y, 5, drop_remainder=True)) == [5, 5]
    assert sizes(batches(X, Y, 32)) == [10]
    assert sizes(batches(X, Y, 32, drop_remainder=True)) == []


def test_shuffled_batches_cover_every_sample_once_and_keep_pairs():
    out = list(batches(X, Y, 4, key=KEY))
    assert [len(xb) for xb, _ in out] == [4, 4, 2]
    ys = np.concatenate([yb for _, yb in out])
    assert sorted(ys.tolist()) == list(range(10)) and ys.tolist() != list(range(10))
    for xb, yb in out:
        np.testing.assert_array_equal(xb, X[yb])
    again = np.concatenate([yb for _, yb in batches(X, Y, 4, key=KEY)])
    other = np.concatenate([yb for _, yb in batches(X, Y, 4, key=jax.random.key(1))])
    np.testing.assert_array_equal(again, ys)
    assert other.tolist() != ys.tolist()
    dropped = np.concatenate([yb for _, yb in batches(X, Y, 4, key=KEY, drop_remainder=True)])
    np.testing.assert_array_equal(dropped, ys[:8])


def test_batches_keep_the_array_kind():
    xb, yb = next(batches(jnp.asarray(X), jnp.asarray(Y), 4, key=KEY))
    assert isinstance(xb, jax.Array) and isinstance(yb, jax.Array)
    xb, yb = next(batches(X, Y, 4, key=KEY))
    assert isinstance(xb, np.ndarray) and isinstance(yb, np.ndarray)


def test_batches_validate_eagerly():
    with pytest.raises(ValueError, match="same length, got 10 and 9"):
        batches(X, Y[:9], 2)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        batches(X, Y, 0)


IMAGES = jax.random.uniform(jax.random.key(7), (16, 5, 6, 2))


def test_augmentations_preserve_shape_and_dtype():
    for augment in (random_crop, random_flip, gaussian_noise):
        out = augment(KEY, IMAGES)
        assert out.shape == IMAGES.shape and out.dtype == IMAGES.dtype
    half = IMAGES.astype(jnp.bfloat16)
    assert gaussian_noise(KEY, half).dtype == jnp.bfloat16


def test_random_crop_translates_each_example_within_padding():
    np.testing.assert_array_equal(random_crop(KEY, IMAGES, padding=0), IMAGES)
    padding = 2
    out = np.asarray(random_crop(KEY, IMAGES, padding=padding))
    padded = np.pad(np.asarray(IMAGES), ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0)))
    offsets = set()
    for i in range(len(out)):
        matches = [
            (dy, dx)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if np.array_equal(out[i], padded[i, dy : dy + 5, dx : dx + 6])
        ]
        assert len(matches) == 1, i
        offsets.add(matches[0])
    assert len(offsets) > 3  # per-example offsets
    with pytest.raises(ValueError, match="padding must be >= 0"):
        random_crop(KEY, IMAGES, padding=-1)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\), got shape \(5, 6, 2\)"):
        random_crop(KEY, IMAGES[0])


def test_random_flip():
    flipped = random_flip(KEY, IMAGES, p=1.0)
    np.testing.assert_array_equal(flipped, IMAGES[:, :, ::-1, :])
    np.testing.assert_array_equal(random_flip(jax.random.key(3), flipped, p=1.0), IMAGES)
    np.testing.assert_array_equal(random_flip(KEY, IMAGES, p=0.0), IMAGES)
    out = np.asarray(random_flip(KEY, IMAGES))
    same = [np.array_equal(o, x) for o, x in zip(out, np.asarray(IMAGES), strict=True)]
    mirrored = [np.array_equal(o, f) for o, f in zip(out, np.asarray(flipped), strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 0 < sum(mirrored) < len(out)


def test_gaussian_noise_statistics():
    zeros = jnp.zeros_like(IMAGES)
    noise = np.asarray(gaussian_noise(KEY, zeros, stddev=0.5))
    assert abs(noise.mean()) < 0.06 and abs(noise.std() - 0.5) < 0.05
    assert not np.array_equal(noise, gaussian_noise(jax.random.key(1), zeros, stddev=0.5))
    np.testing.assert_array_equal(gaussian_noise(KEY, zeros, stddev=0.0), zeros)


def augment_all(key, x):
    crop_key, flip_key, noise_key = jax.random.split(key, 3)
    x = random_flip(flip_key, random_crop(crop_key, x, padding=1))
    return gaussian_noise(noise_key, x, stddev=0.01)


def test_augmentation_inside_jit_and_scan_equals_eager():
    keys = jax.random.split(KEY, 3)
    scan = jax.jit(lambda keys: jax.lax.scan(lambda c, k: (c, augment_all(k, IMAGES)), 0, keys))
    _, out = scan(keys)
    assert out.shape == (3, *IMAGES.shape)
    assert not np.array_equal(out[0], out[1])
    np.testing.assert_allclose(out[2], augment_all(keys[2], IMAGES), atol=1e-6)
