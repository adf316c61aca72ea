"""Fixtures for the data tests."""

import struct

import numpy as np
import pytest

IDX_CODES = {
    "uint8": 0x08,
    "int8": 0x09,
    "int16": 0x0B,
    "int32": 0x0C,
    "float32": 0x0D,
    "float64": 0x0E,
}


@pytest.fixture
def to_idx():
    """Returns a function encoding a numpy array as IDX bytes (uncompressed)."""

    def encode(array: np.ndarray) -> bytes:
        header = bytes([0, 0, IDX_CODES[array.dtype.name], array.ndim])
        dims = struct.pack(f">{array.ndim}I", *array.shape)
        return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()

    return encode
