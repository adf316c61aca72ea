"""read_idx on small generated files: every dtype, several ranks, gzip or raw, and corrupt ones."""

import gzip

import numpy as np
import pytest

from funcnets.data import DataError, read_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
SHAPES = [(), (0,), (7,), (3, 4, 5), (2, 1, 3, 2)]


def sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype.startswith("float"):
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_dtype_and_rank(tmp_path, to_idx, dtype, compress):
    for i, shape in enumerate(SHAPES):
        array = sample(dtype, shape)
        data = to_idx(array)
        path = tmp_path / f"{i}.idx"
        path.write_bytes(gzip.compress(data) if compress else data)
        loaded = read_idx(path)
        assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
        assert loaded.shape == shape
        assert loaded.flags.writeable
        np.testing.assert_array_equal(loaded, array)


def test_mnist_like_images_and_labels(tmp_path, to_idx):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    (tmp_path / "images.gz").write_bytes(gzip.compress(to_idx(images)))
    (tmp_path / "labels").write_bytes(to_idx(np.array([3, 9], np.uint8)))
    assert read_idx(tmp_path / "images.gz").shape == (2, 28, 28)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [3, 9])
    assert (tmp_path / "labels").read_bytes()[:4] == b"\x00\x00\x08\x01"  # magic 2049


GOOD = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated: 0 bytes"),
        (b"\x00\x00", "truncated: 2 bytes"),
        (b"\x01\x00\x08\x01" + GOOD[4:], "wrong magic 01000801"),
        (b"label,image\n1,2\n", "wrong magic"),
        (b"\x00\x00\x0a\x02" + GOOD[4:], "unknown IDX dtype code 0x0A"),
        (GOOD[:10], "truncated header: expected 12 bytes for rank 2, got 10"),
        (GOOD[:-1], "truncated: expected 18 bytes for a uint8 array of shape (2, 3), got 17"),
        (GOOD + b"\x00\x01", "2 trailing bytes after a uint8 array of shape (2, 3)"),
        (gzip.compress(GOOD)[:-5], "corrupt or truncated gzip"),
        (gzip.compress(GOOD[:-1]), "truncated: expected 18 bytes"),
    ],
    ids=[
        "empty",
        "short",
        "magic",
        "text",
        "dtype-code",
        "header",
        "data",
        "trailing",
        "gzip-stream",
        "gzip-content",
    ],
)
def test_corrupt_files_raise_data_error_naming_the_file(tmp_path, data, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
