"""Save and load pytrees of arrays: one file, written atomically, never pickled.

A checkpoint is a zip archive (readable with ``np.load(path, allow_pickle=False)``) holding one
``.npy`` entry per leaf, named by the leaf's key path (``jax.tree_util.keystr``, e.g.
``['params']['0']['w'].npy``), and ``manifest.json`` with these fields:

- ``format`` (``"funcnets.checkpoint"``) and ``version`` (2; version-1 files, which lack the next
  three fields, are still read, with no type check and empty metadata);
- ``leaves``: for every leaf in flattening order, its ``path``, ``entry``, logical ``shape`` and
  ``dtype``, the ``sha256`` of its entry, and ``types``: the class names of the containers from
  the root down to it (``["TrainState", "tuple", "ScaleByAdamState", "dict"]``);
- ``empty``: the ``path`` and ``types`` (ending with its own) of every subtree without leaves
  (``None``, ``{}``, an optimizer's ``EmptyState()``), so that the whole structure is recorded;
- ``metadata``: the JSON object given to `save` (what made the file: optimizer, model, ...).

Typed PRNG keys are stored as their ``jax.random.key_data`` plus the key implementation's name
(``impl``); dtypes that ``.npy`` cannot name (``bfloat16``, ``float8_*``, ``int4``, ...) are stored
as a same-width unsigned-integer view of their bytes. Loading never unpickles anything, so a file
from a stranger cannot run code.

With several processes (`fn.parallel.initialize`), every process calls `save`, process 0 writes
the file, and every process can `load` it, onto any number of devices.

Example:
    >>> import jax.numpy as jnp
    >>> tree = {"w": jnp.ones((2, 3)), "step": 0}
    >>> save("/tmp/ckpt.npz", tree, metadata={"optimizer": "adam"})
    >>> restored = load("/tmp/ckpt.npz", like=tree, expect={"optimizer": "adam"})
    >>> restored["w"].shape, restored["step"]
    ((2, 3), 0)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
import socket
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

__all__ = ["CheckpointError", "load", "read_metadata", "save"]

FORMAT = "funcnets.checkpoint"
VERSION = 2
_READABLE = (1, 2)
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
_KeyPath = tuple[Any, ...]


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupted, foreign, or does not match ``like``."""


def save(
    path: str | os.PathLike[str], tree: Any, *, metadata: dict[str, Any] | None = None
) -> None:
    """Writes ``tree`` to the single file ``path``, atomically.

    The archive is written to a temporary file next to the target, flushed and fsynced, then
    renamed onto it (``os.replace``) and the directory is fsynced. An exception at any point (even
    ``KeyboardInterrupt``) leaves the previous file untouched and removes the temporary file; a
    crash leaves either the old file or the new one, never a partial one. The same tree and
    metadata always produce the same bytes.

    If ``path`` is a symlink, the file it resolves to is replaced and the link is kept. An
    existing file keeps its permission bits; a new one gets ``0o666`` minus the umask.

    The temporary file is ``.NAME.HOST.PID.RANDOM.tmp`` (``HOST``: 8 hex digits hashed from the
    host name, ``PID``: the writer's process id). A save killed by a signal or a power cut leaves
    it behind; the next save of the same target on the same host removes it once its writer has
    exited (``os.kill(pid, 0)`` finds no such process). Temporary files of other targets, of a
    save still running (in this or another process), and of other hosts sharing the directory
    (whose pids mean nothing here) are never touched. A reused pid only delays the removal. This
    cleanup is best effort and POSIX only.

    In a multi-process run (`fn.parallel.initialize`) every process calls `save` with the same
    tree and path: arrays split across processes (FSDP) are gathered, process 0 alone writes
    the file, and every process returns once it is in place, so any of them may `load` it next
    (from a shared file system). If process 0 fails to write, every process raises. Calling
    `save` in process 0 only would leave it waiting for the others.

    Args:
        path: destination file; its directory must exist.
        tree: a pytree (dicts, lists, tuples, NamedTuples, ...) whose leaves are jax or numpy
            arrays, numpy scalars, Python ``bool``/``int``/``float``/``complex``, or typed
            ``jax.random.key`` arrays. Numeric dtypes of any width are supported, including
            ``bfloat16`` and the other ``ml_dtypes``.
        metadata: a JSON-serialisable dict recording what made the checkpoint (e.g.
            ``{"optimizer": "adam", "model": {"sizes": [64, 10]}}``), read back by
            `read_metadata` and checked by ``load(..., expect=...)``. Stored after a JSON round
            trip: tuples become lists and keys become strings.

    Raises:
        TypeError: a leaf is not a numeric array or scalar (e.g. a string), naming its path; or
            ``metadata`` is not a JSON-serialisable dict.
        CheckpointError: two leaves have the same key path.
        OSError: the file could not be written (in a process other than 0: process 0 could
            not write it).
    """
    leaves, empty = _flatten(tree)
    entries = []
    for key_path, leaf, types in leaves:
        meta, array = _encode(jax.tree_util.keystr(key_path), leaf)
        entries.append((meta | {"types": types}, array))
    paths = [meta["path"] for meta, _ in entries] + [jax.tree_util.keystr(kp) for kp, _ in empty]
    if len(set(paths)) != len(paths) or any("\0" in p for p in paths):
        raise CheckpointError(f"{os.fspath(path)}: leaf key paths must be unique and NUL-free")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "empty": [{"path": jax.tree_util.keystr(kp), "types": types} for kp, types in empty],
        "metadata": _as_json({} if metadata is None else metadata, "metadata"),
    }
    _on_process_zero(
        path, lambda: _atomic_write(path, lambda f: _write_archive(f, header, entries))
    )


def load(
    path: str | os.PathLike[str], like: Any = None, *, expect: dict[str, Any] | None = None
) -> Any:
    """Reads a checkpoint written by ``save``, verifying every entry's sha256.

    Args:
        path: the checkpoint file.
        like: a pytree with the expected structure, e.g. the freshly initialised ``TrainState``;
            its leaves may be arrays, scalars or ``jax.ShapeDtypeStruct``. Its treedef is reused,
            and the file must hold the same tree: each leaf with the same key path, shape and
            dtype; the same containers along every path, compared by class name (so an optax
            and a funcnets ``ScaleByAdamState`` are interchangeable, ``ScaleByAdamState`` and
            ``ScaleByLionState`` are not); the same empty subtrees. A Python scalar leaf accepts
            any 0-d file leaf of the same kind (bool, integer, float, complex). Files of format
            version 1 recorded no container types, so only leaves are compared.
        expect: metadata that the file must have been saved with: every key must be in the
            file's metadata with an equal value (compared after a JSON round trip, as `save`
            stores it). A key missing from the file (as in every version-1 file) is a mismatch.
            This tells apart runs whose trees agree, e.g. ``adam`` and ``adamax`` states.

    Returns:
        With ``like``: a tree with ``like``'s structure whose leaves have the kind of ``like``'s
        leaves: numpy arrays and scalars stay numpy, Python scalars stay Python scalars, and jax
        arrays (and ``ShapeDtypeStruct``) become jax arrays, on the same sharding when ``like``'s
        leaf is committed to one. Typed keys come back as typed keys. Without ``like``: a dict
        ``{key_path: value}`` in the saved order, each value a numpy array with its saved dtype,
        or a typed jax key array.

    Raises:
        FileNotFoundError: ``path`` does not exist, or is a broken symlink (said so).
        CheckpointError: ``path`` is a directory; the file is empty, truncated, corrupted,
            foreign (not a funcnets checkpoint); or it does not match ``expect`` or ``like``.
            The message names the file and, for a mismatch, every metadata key or leaf path
            that differs and how, e.g. ``.opt_state[0]: ScaleByAdamState in file vs
            ScaleByLionState expected``.
    """
    name = os.fspath(path)
    header, values = _read(name)
    if expect is not None:
        _check_metadata(name, header["metadata"], expect)
    stored = {meta["path"]: (meta, value) for meta, value in zip(header["leaves"], values)}
    if like is None:
        return {p: value for p, (_, value) in stored.items()}
    flat, empty = _flatten(like)
    problems, leaves = [], []
    for key_path, leaf, types in flat:
        p = jax.tree_util.keystr(key_path)
        if p not in stored:
            problems.append(f"{p}: missing in file")
            continue
        meta, value = stored[p]
        problem = _type_mismatch(key_path, meta["types"], types)
        if problem is None and (detail := _mismatch(meta, leaf)):
            problem = f"{p}: {detail}"
        if problem:
            problems.append(problem)
        else:
            leaves.append(_like_kind(value, leaf))
    wanted = {jax.tree_util.keystr(key_path) for key_path, _, _ in flat}
    problems += [f"{p}: unexpected in file (not in `like`)" for p in stored if p not in wanted]
    if header["empty"] is not None:
        problems += _empty_mismatches(header["empty"], empty)
    if problems:
        details = "\n  ".join(dict.fromkeys(problems))
        raise CheckpointError(f"{name}: checkpoint does not match `like`:\n  {details}")
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Returns the ``metadata`` a checkpoint was saved with (``{}`` for a version-1 file).

    Only the manifest is read (its CRC-32 checked and its fields validated), not the leaves, so
    this is cheap on a large file; `load` verifies everything.

    Raises:
        FileNotFoundError: ``path`` does not exist, or is a broken symlink.
        CheckpointError: ``path`` is a directory, or not a readable funcnets checkpoint.

    Example:
        >>> save("/tmp/meta.ckpt", {"w": jnp.ones(2)}, metadata={"optimizer": "adam", "lr": 0.1})
        >>> read_metadata("/tmp/meta.ckpt")
        {'optimizer': 'adam', 'lr': 0.1}
    """
    return _read(os.fspath(path), data=False)[0]["metadata"]


def _flatten(
    tree: Any,
) -> tuple[list[tuple[_KeyPath, Any, list[str]]], list[tuple[_KeyPath, list[str]]]]:
    """Splits ``tree`` into its leaves and its empty subtrees, with the types along their paths.

    Returns ``(key_path, leaf, types)`` for each leaf and ``(key_path, types)`` for each empty
    subtree; ``types`` are the class names of the containers from the root down to the leaf (down
    to and including the empty subtree).
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_empty)
    leaves, empty = [], []
    for (key_path, x), types in zip(flat, _container_types(treedef), strict=True):
        if _is_empty(x):
            empty.append((key_path, [*types, type(x).__name__]))
        else:
            leaves.append((key_path, x, types))
    return leaves, empty


def _is_empty(x: Any) -> bool:
    """Whether ``x`` is a pytree without leaves (``None``, ``{}``, ``()``, ``EmptyState()``)."""
    return not jax.tree_util.tree_leaves(x)


def _container_types(treedef: Any) -> list[list[str]]:
    """For each leaf of ``treedef``, the class names of the nodes from the root down to it."""
    if treedef.node_data() is None:
        return [[]]
    name = treedef.node_data()[0].__name__
    return [[name, *types] for child in treedef.children() for types in _container_types(child)]


def _type_mismatch(
    key_path: _KeyPath, in_file: list[str] | None, expected: list[str]
) -> str | None:
    """Names the first container along ``key_path`` whose type differs, or returns None.

    ``in_file`` is None for a version-1 file, which recorded no types: nothing to compare.
    """
    for depth, (found, wanted) in enumerate(zip(in_file or (), expected)):
        if found != wanted:
            where = jax.tree_util.keystr(key_path[:depth]) or "(root)"
            return f"{where}: {found} in file vs {wanted} expected"
    return None


def _empty_mismatches(
    in_file: list[dict[str, Any]], expected: list[tuple[_KeyPath, list[str]]]
) -> list[str]:
    """Describes how the file's empty subtrees differ from ``like``'s."""
    found = {record["path"]: record["types"] for record in in_file}
    problems = []
    for key_path, types in expected:
        p = jax.tree_util.keystr(key_path)
        if p not in found:
            problems.append(f"{p}: missing in file (an empty {types[-1]})")
        elif problem := _type_mismatch(key_path, found[p], types):
            problems.append(problem)
    wanted = {jax.tree_util.keystr(key_path) for key_path, _ in expected}
    return problems + [
        f"{p}: unexpected in file (an empty {types[-1]}, not in `like`)"
        for p, types in found.items()
        if p not in wanted
    ]


def _as_json(value: Any, what: str) -> dict[str, Any]:
    """``value`` after a JSON round trip; a TypeError unless it is a JSON-serialisable dict."""
    if not isinstance(value, dict):
        raise TypeError(f"checkpoint {what} must be a dict, not {type(value).__name__}")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint {what} is not JSON-serialisable: {e}") from None


def _check_metadata(name: str, metadata: dict[str, Any], expect: dict[str, Any]) -> None:
    """Raises a CheckpointError listing every key of ``expect`` that ``metadata`` does not match."""
    problems = [
        f"{key}: {json.dumps(metadata[key]) if key in metadata else 'missing'} in file "
        f"vs {json.dumps(value)} expected"
        for key, value in _as_json(expect, "expect").items()
        if key not in metadata or metadata[key] != value
    ]
    if problems:
        details = "\n  ".join(problems)
        raise CheckpointError(f"{name}: checkpoint metadata does not match `expect`:\n  {details}")


def _on_process_zero(path: str | os.PathLike[str], write: Callable[[], None]) -> None:
    """Calls ``write()`` in process 0 only; every process returns once it has finished.

    With several processes the others wait for process 0 (a broadcast of its outcome, which is a
    barrier), so any process may read the file next; if the write failed, every process raises.
    """
    if jax.process_count() == 1:
        write()
        return
    failure = None
    if jax.process_index() == 0:
        try:
            write()
        except Exception as error:  # re-raised below, once the others know
            failure = error
    written = multihost_utils.broadcast_one_to_all(np.int32(failure is None))
    if failure is not None:
        raise failure
    if not int(written):
        raise OSError(
            f"{os.fspath(path)}: process 0 failed to write the checkpoint (see its error)"
        )


def _whole(leaf: Any) -> Any:
    """``leaf`` with its whole value readable here: an array split across processes is gathered.

    Gathering is a collective, which every process runs for the same leaves in the same order.
    A replicated array (the `TrainState` of data-parallel training) needs none: every process
    holds all of it.
    """
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable or leaf.is_fully_replicated:
        return leaf
    if _is_key(leaf):
        data = multihost_utils.process_allgather(jax.random.key_data(leaf), tiled=True)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    return multihost_utils.process_allgather(leaf, tiled=True)


def _encode(path: str, leaf: Any) -> tuple[dict[str, Any], np.ndarray]:
    """Returns the manifest record (without sha256) and the array to store for one leaf."""
    leaf = _whole(leaf)
    if _is_key(leaf):
        meta: dict[str, Any] = {"path": path, "kind": "key", "impl": str(jax.random.key_impl(leaf))}
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


def _write_archive(
    f: BinaryIO, header: dict[str, Any], entries: list[tuple[dict[str, Any], np.ndarray]]
) -> None:
    """Writes the leaves' .npy entries, then the manifest: ``header`` plus the leaf records."""
    manifest = []
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        for meta, array in entries:
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            data = buffer.getvalue()
            entry = meta["path"] + ".npy"
            zf.writestr(zipfile.ZipInfo(entry, _ZIP_DATE), data)
            manifest.append(meta | {"entry": entry, "sha256": hashlib.sha256(data).hexdigest()})
        text = json.dumps(header | {"leaves": manifest}, indent=1)
        zf.writestr(zipfile.ZipInfo(_MANIFEST, _ZIP_DATE), text)


def _atomic_write(path: str | os.PathLike[str], write: Any) -> None:
    """Calls ``write(f)`` on a temp file, fsyncs it and renames it onto the file ``path``.

    The temp file goes next to the file ``path`` resolves to (through symlinks), and gets its
    permission bits when it exists.
    """
    target = os.path.realpath(path)
    directory, base = os.path.split(target)
    prefix = f".{base}.{hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]}."
    _remove_stale_temps(directory, prefix)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = os.path.join(directory, f"{prefix}{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
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


def _remove_stale_temps(directory: str, prefix: str) -> None:
    """Removes the temp files ``prefix + PID.RANDOM.tmp`` whose writer process has exited.

    ``prefix`` names one target and this host (see `save`). Best effort: errors are ignored.
    """
    if os.name != "posix":  # os.kill(pid, 0) would not probe the process there
        return
    pattern = re.compile(re.escape(prefix) + r"(\d{1,7})\.[0-9a-f]{16}\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _running(int(match[1])):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (signal 0 probes it without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        pass
    return True


def _open(name: str) -> BinaryIO:
    """Opens a checkpoint for reading; a directory or a broken symlink gets a clear error."""
    if os.path.isdir(name):
        raise CheckpointError(f"{name}: is a directory, not a checkpoint file")
    if os.path.islink(name) and not os.path.exists(name):
        raise FileNotFoundError(errno.ENOENT, f"broken symlink to {os.readlink(name)!r}", name)
    return open(name, "rb")


def _read(name: str, *, data: bool = True) -> tuple[dict[str, Any], list[Any]]:
    """Returns the validated manifest and (if ``data``) every leaf's value, in manifest order."""
    with _open(name) as f:
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
                header = _read_manifest(zf, name)
                leaves = header["leaves"] if data else []
                return header, [_read_leaf(zf, meta, name) for meta in leaves]
            except CheckpointError:
                raise
            except _CORRUPTION as e:
                raise CheckpointError(
                    f"{name}: corrupted or truncated checkpoint ({type(e).__name__}: {e})"
                ) from e


def _read_manifest(zf: zipfile.ZipFile, name: str) -> dict[str, Any]:
    """Reads and validates ``manifest.json``; version-1 manifests lack the version-2 fields."""
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
    version = header.get("version")
    if version not in _READABLE:
        raise CheckpointError(
            f"{name}: checkpoint format version {version!r} is not supported "
            f"(this funcnets reads versions {_READABLE[0]} to {VERSION})"
        )
    typed = version > 1
    leaves = header.get("leaves")
    if not (
        isinstance(leaves, list)
        and all(_valid_record(meta, typed) for meta in leaves)
        and (not typed or _valid_structure(header))
    ):
        raise CheckpointError(f"{name}: malformed {_MANIFEST}")
    if len({meta["path"] for meta in leaves}) != len(leaves):
        raise CheckpointError(f"{name}: malformed {_MANIFEST}: duplicate leaf paths")
    if not typed:  # recorded neither container types nor metadata: unknown, so not checked
        leaves = [meta | {"types": None} for meta in leaves]
        return header | {"leaves": leaves, "empty": None, "metadata": {}}
    return header


def _valid_record(meta: Any, typed: bool) -> bool:
    """Whether a manifest leaf record has every field with the right type."""
    if not isinstance(meta, dict) or meta.get("kind") not in ("array", "key"):
        return False
    fields = ("path", "entry", "dtype", "sha256") + (("impl",) if meta["kind"] == "key" else ())
    shape = meta.get("shape")
    return (
        all(isinstance(meta.get(k), str) for k in fields)
        and isinstance(shape, list)
        and all(type(d) is int and d >= 0 for d in shape)
        and (not typed or _names(meta.get("types")))
    )


def _valid_structure(header: dict[str, Any]) -> bool:
    """Whether a version-2 manifest's ``metadata`` and ``empty`` fields are well formed."""
    empty = header.get("empty")
    return (
        isinstance(header.get("metadata"), dict)
        and isinstance(empty, list)
        and all(isinstance(e, dict) and isinstance(e.get("path"), str) for e in empty)
        and all(_names(e.get("types")) and e["types"] for e in empty)
    )


def _names(types: Any) -> bool:
    """Whether ``types`` is a list of class names."""
    return isinstance(types, list) and all(isinstance(t, str) for t in types)


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
            # Annotated as taking a jax.Array, but takes numpy data too; jnp.asarray would
            # silently narrow a corrupt uint64 key to uint32 instead of failing the dtype check.
            key = jax.random.wrap_key_data(stored, impl=meta["impl"])  # type: ignore[arg-type]
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
    sharding = getattr(leaf, "sharding", None)
    if _is_key(value) and sharding is not None and not sharding.is_fully_addressable:
        # device_put places host data on other processes' devices, but not a key array: its data.
        data = jax.device_put(np.asarray(jax.random.key_data(value)), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(value))
    return jax.device_put(value, sharding)


def _is_key(x: Any) -> bool:
    """Whether ``x`` is a typed PRNG key array."""
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
