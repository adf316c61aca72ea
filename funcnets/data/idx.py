"""IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the rank), the rank's
dimensions as big-endian uint32, then the array's elements, big-endian, in row-major order.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from funcnets.data.files import DataError

__all__ = ["read_idx"]

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an IDX file, raw or gzip-compressed (detected from its first bytes).

    Args:
        path: the file.

    Returns:
        A writable numpy array in native byte order with the file's shape and dtype: ``uint8``
        (type code 0x08), ``int8`` (0x09), ``int16`` (0x0B), ``int32`` (0x0C), ``float32``
        (0x0D) or ``float64`` (0x0E). MNIST images come back as ``uint8 (N, 28, 28)``.

    Raises:
        DataError: the file is not valid IDX (wrong magic, unknown type code), is truncated, has
            trailing bytes, or is corrupt gzip; the message names the file.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e
    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, shorter than the 4-byte IDX magic")
    if raw[:2] != b"\0\0":
        raise DataError(f"{path}: wrong magic {raw[:4].hex()}: IDX files start with two zero bytes")
    code, rank = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02X} (expected one of {known})")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(
            f"{path}: truncated header: expected {header} bytes for rank {rank}, got {len(raw)}"
        )
    shape = struct.unpack(f">{rank}I", raw[4:header])
    dtype = IDX_DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    described = f"{dtype.newbyteorder('=').name} array of shape {shape}"
    if len(raw) < expected:
        raise DataError(
            f"{path}: truncated: expected {expected} bytes for a {described}, got {len(raw)}"
        )
    if len(raw) > expected:
        raise DataError(
            f"{path}: {len(raw) - expected} trailing bytes after a {described} "
            f"(expected {expected} bytes)"
        )
    data = np.frombuffer(raw, dtype, offset=header, count=math.prod(shape))
    return data.astype(dtype.newbyteorder("=")).reshape(shape)
