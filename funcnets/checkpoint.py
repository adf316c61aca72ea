"""Save and load pytrees of arrays: one file, written atomically, never pickled.

A checkpoint is a zip archive (readable with ``np.load(path, allow_pickle=False)``) holding one
``.npy`` entry per leaf, named by the leaf's key path (``jax.tree_util.keystr``, e.g.
``['params']['0']['w'].npy``), and ``manifest.json``: the format name and version and, for every
leaf in flattening order, its path, logical shape and dtype and the sha256 of its entry. Typed PRNG
keys are stored as their ``jax.random.key_data`` plus the key implementation's name; dtypes that
``.npy`` cannot name (``bfloat16``, ``float8_*``, ``int4``, ...) are stored as a same-width
unsigned-integer view of their bytes. Loading never unpickles anything, so a file from a stranger
cannot run code.

Example:
    >>> import jax.numpy as jnp
    >>> tree = {"w": jnp.ones((2, 3)), "step": 0}
    >>> save("/tmp/ckpt.npz", tree)
    >>> restored = load("/tmp/ckpt.npz", like=tree)
    >>> restored["w"].shape, restored["step"]
    ((2, 3), 0)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import struct
import zipfile
import zlib
from typing import Any, BinaryIO

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CheckpointError", "load", "save"]

FORMAT = "funcnets.checkpoint"
VERSION = 1
_MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 256 * 2**20
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_PYTHON_KINDS = {bool: "b", int: "iu", float: "f", complex: "c"}
# What parsing a damaged or foreign archive can raise from zipfile, zlib, json and numpy.
_CORRUPTION = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    OverflowError,
)


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupted, foreign, or does not match ``like``."""


def save(path: str | os.PathLike[str], tree: Any) -> None:
    """Writes ``tree`` to the single file ``path``, atomically.

    The archive is written to a temporary file in the same directory, flushed and fsynced, then
    renamed onto ``path`` (``os.replace``) and the directory is fsynced. An exception at any
    point (even ``KeyboardInterrupt``) leaves the previous file untouched and removes the
    temporary file; a crash leaves either the old file or the new one, never a partial one. The
    same tree always produces the same bytes.

    Args:
        path: destination file; its directory must exist.
        tree: a pytree (dicts, lists, tuples, NamedTuples, ...) whose leaves are jax or numpy
            arrays, numpy scalars, Python ``bool``/``int``/``float``/``complex``, or typed
            ``jax.random.key`` arrays. Numeric dtypes of any width are supported, including
            ``bfloat16`` and the other ``ml_dtypes``.

    Raises:
        TypeError: a leaf is not a numeric array or scalar (e.g. a string); names its path.
        CheckpointError: two leaves have the same key path.
    """
    entries = []
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        entries.append(_encode(jax.tree_util.keystr(key_path), leaf))
    paths = [meta["path"] for meta, _ in entries]
    if len(set(paths)) != len(paths) or any("\0" in p for p in paths):
        raise CheckpointError(f"{os.fspath(path)}: leaf key paths must be unique and NUL-free")
    _atomic_write(path, lambda f: _write_archive(f, entries))


def load(path: str | os.PathLike[str], like: Any = None) -> Any:
    """Reads a checkpoint written by ``save``, verifying every entry's sha256.

    Args:
        path: the checkpoint file.
        like: a pytree with the expected structure, e.g. the freshly initialised ``TrainState``;
            its leaves may be arrays, scalars or ``jax.ShapeDtypeStruct``. Its treedef (including
            NamedTuple types) is reused, and each file leaf must have the same key path, shape
            and dtype as the matching leaf of ``like``. A Python scalar leaf accepts any 0-d file
            leaf of the same kind (bool, integer, float, complex).

    Returns:
        With ``like``: a tree with ``like``'s structure whose leaves have the kind of ``like``'s
        leaves: numpy arrays and scalars stay numpy, Python scalars stay Python scalars, and jax
        arrays (and ``ShapeDtypeStruct``) become jax arrays, on the same sharding when ``like``'s
        leaf is committed to one. Typed keys come back as typed keys. Without ``like``: a dict
        ``{key_path: value}`` in the saved order, each value a numpy array with its saved dtype,
        or a typed jax key array.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is empty, truncated, corrupted, foreign (not a funcnets
            checkpoint), or does not match ``like``; the message names the file and, for a
            mismatch, every leaf path that differs and how.
    """
    name = os.fspath(path)
    stored = {meta["path"]: (meta, value) for meta, value in _read(name)}
    if like is None:
        return {p: value for p, (_, value) in stored.items()}
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    problems, leaves = [], []
    for key_path, leaf in flat:
        p = jax.tree_util.keystr(key_path)
        if p not in stored:
            problems.append(f"{p}: missing in file")
            continue
        meta, value = stored[p]
        problem = _mismatch(meta, leaf)
        if problem:
            problems.append(f"{p}: {problem}")
        else:
            leaves.append(_like_kind(value, leaf))
    wanted = {jax.tree_util.keystr(key_path) for key_path, _ in flat}
    problems += [f"{p}: unexpected in file (not in `like`)" for p in stored if p not in wanted]
    if problems:
        details = "\n  ".join(problems)
        raise CheckpointError(f"{name}: checkpoint does not match `like`:\n  {details}")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _encode(path: str, leaf: Any) -> tuple[dict[str, Any], np.ndarray]:
    """Returns the manifest record (without sha256) and the array to store for one leaf."""
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        meta = {"path": path, "kind": "key", "impl": str(jax.random.key_impl(leaf))}
        stored = np.asarray(jax.random.key_data(leaf))
        return meta | {"dtype": str(leaf.dtype), "shape": list(leaf.shape)}, stored
    array = np.asarray(leaf)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype.kind in "biufc":
        stored = array
    elif _is_extended(array.dtype):
        stored = array.view(f"u{array.dtype.itemsize}")
    else:
        raise TypeError(
            f"{path}: cannot checkpoint a leaf of type {type(leaf).__name__} "
            f"with dtype {array.dtype}; only numeric arrays, scalars and PRNG keys"
        )
    meta = {"path": path, "kind": "array", "dtype": array.dtype.name, "shape": list(array.shape)}
    return meta, stored


def _is_extended(dtype: np.dtype) -> bool:
    """True for the ml_dtypes jax uses (bfloat16, float8_*, int4, ...), which .npy cannot name."""
    return dtype.kind == "V" and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )


def _write_archive(f: BinaryIO, entries: list[tuple[dict[str, Any], np.ndarray]]) -> None:
    """Writes the leaves' .npy entries and then the manifest to the open file ``f``."""
    manifest = []
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        for meta, array in entries:
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            data = buffer.getvalue()
            entry = meta["path"] + ".npy"
            zf.writestr(zipfile.ZipInfo(entry, _ZIP_DATE), data)
            manifest.append(meta | {"entry": entry, "sha256": hashlib.sha256(data).hexdigest()})
        header = {"format": FORMAT, "version": VERSION, "leaves": manifest}
        zf.writestr(zipfile.ZipInfo(_MANIFEST, _ZIP_DATE), json.dumps(header, indent=1))


def _atomic_write(path: str | os.PathLike[str], write: Any) -> None:
    """Calls ``write(f)`` on a temp file next to ``path``, fsyncs it and renames it onto path."""
    target = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(target)
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read(name: str) -> list[tuple[dict[str, Any], Any]]:
    """Returns ``(manifest record, decoded value)`` for every leaf of the checkpoint ``name``."""
    with open(name, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise CheckpointError(f"{name}: empty file, not a funcnets checkpoint")
        try:
            zf = zipfile.ZipFile(f)
        except _CORRUPTION as e:
            raise CheckpointError(
                f"{name}: not a funcnets checkpoint: not a zip archive, or truncated ({e})"
            ) from e
        with zf:
            try:
                leaves = _read_manifest(zf, name)
                return [(meta, _read_leaf(zf, meta, name)) for meta in leaves]
            except CheckpointError:
                raise
            except _CORRUPTION as e:
                raise CheckpointError(
                    f"{name}: corrupted or truncated checkpoint ({type(e).__name__}: {e})"
                ) from e


def _read_manifest(zf: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    """Reads and validates ``manifest.json``; returns its leaf records."""
    try:
        info = zf.getinfo(_MANIFEST)
    except KeyError:
        raise CheckpointError(
            f"{name}: not a funcnets checkpoint: zip archive without {_MANIFEST} "
            "(a plain .npz file?)"
        ) from None
    if any(i.compress_type != zipfile.ZIP_STORED for i in zf.infolist()):
        raise CheckpointError(f"{name}: not a funcnets checkpoint: it has compressed entries")
    if info.file_size > _MAX_MANIFEST_BYTES:
        raise CheckpointError(f"{name}: {_MANIFEST} is implausibly large ({info.file_size} bytes)")
    header = json.loads(zf.read(info))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not a funcnets checkpoint: unknown format in {_MANIFEST}")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{name}: checkpoint format version {header.get('version')!r} is not supported "
            f"(this funcnets reads version {VERSION})"
        )
    leaves = header.get("leaves")
    if not isinstance(leaves, list) or not all(_valid_record(meta) for meta in leaves):
        raise CheckpointError(f"{name}: malformed {_MANIFEST}")
    if len({meta["path"] for meta in leaves}) != len(leaves):
        raise CheckpointError(f"{name}: malformed {_MANIFEST}: duplicate leaf paths")
    return leaves


def _valid_record(meta: Any) -> bool:
    """Whether a manifest leaf record has every field with the right type."""
    if not isinstance(meta, dict) or meta.get("kind") not in ("array", "key"):
        return False
    fields = ("path", "entry", "dtype", "sha256") + (("impl",) if meta["kind"] == "key" else ())
    shape = meta.get("shape")
    return (
        all(isinstance(meta.get(k), str) for k in fields)
        and isinstance(shape, list)
        and all(type(d) is int and d >= 0 for d in shape)
    )


def _read_leaf(zf: zipfile.ZipFile, meta: dict[str, Any], name: str) -> Any:
    """Reads, verifies and decodes one leaf's entry."""
    where = f"{name}: leaf {meta['path']}"
    data = zf.read(meta["entry"])
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise CheckpointError(f"{where}: corrupted data (sha256 mismatch)")
    stored = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    shape = tuple(meta["shape"])
    if meta["kind"] == "key":
        if stored.dtype.kind != "u" or stored.shape[: len(shape)] != shape:
            raise CheckpointError(f"{where}: key data {stored.dtype}{stored.shape} is not {shape}")
        try:
            key = jax.random.wrap_key_data(stored, impl=meta["impl"])
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{where}: cannot rebuild PRNG key ({e})") from e
        if str(key.dtype) != meta["dtype"]:
            raise CheckpointError(f"{where}: key dtype {key.dtype} is not {meta['dtype']}")
        return key
    dtype = _dtype(meta["dtype"], where)
    if _is_extended(dtype) and stored.dtype == np.dtype(f"u{dtype.itemsize}"):
        stored = stored.view(dtype)
    if stored.dtype != dtype or stored.shape != shape:
        raise CheckpointError(
            f"{where}: entry holds {stored.dtype}{stored.shape}, manifest says {dtype}{shape}"
        )
    return stored


def _dtype(text: str, where: str) -> np.dtype:
    """Parses a manifest dtype name, accepting only numeric dtypes."""
    try:
        dtype = np.dtype(text)
    except TypeError:
        dtype = None
    if dtype is None or not (dtype.kind in "biufc" or _is_extended(dtype)):
        raise CheckpointError(f"{where}: unsupported dtype {text!r}")
    return dtype


def _mismatch(meta: dict[str, Any], leaf: Any) -> str | None:
    """Describes how the file leaf ``meta`` differs from ``like``'s ``leaf``, or returns None."""
    shape = tuple(meta["shape"])
    if type(leaf) in _PYTHON_KINDS:
        kinds = _PYTHON_KINDS[type(leaf)]
        if shape != () or meta["kind"] != "array" or np.dtype(meta["dtype"]).kind not in kinds:
            return f"{meta['dtype']}{shape} in file vs Python {type(leaf).__name__} expected"
        return None
    expected = np.shape(leaf)
    if shape != tuple(expected):
        return f"shape {shape} in file vs {tuple(expected)} expected"
    dtype = _dtype_name(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype)
    if meta["dtype"] != dtype:
        return f"dtype {meta['dtype']} in file vs {dtype} expected"
    return None


def _dtype_name(dtype: Any) -> str:
    """The name a dtype has in the manifest: ``float32``, ``bfloat16``, ``key<fry>``."""
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return str(dtype)
    return np.dtype(dtype).name


def _like_kind(value: Any, leaf: Any) -> Any:
    """Converts a loaded value to the kind of ``like``'s leaf (numpy, Python or jax)."""
    if type(leaf) in _PYTHON_KINDS:
        return type(leaf)(value.item())
    if isinstance(leaf, np.generic):
        return value[()]
    if isinstance(leaf, np.ndarray):
        return value
    if isinstance(leaf, jax.Array) and not leaf.committed:
        return jax.device_put(value)
    return jax.device_put(value, getattr(leaf, "sharding", None))
