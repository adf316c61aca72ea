"""Tests for funcnets.checkpoint: round trips, atomic saves, mismatch messages, hostile files,
provenance (container types and metadata), and the files a save leaves around."""

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnets as fn
from funcnets import checkpoint
from funcnets.checkpoint import CheckpointError


class TrainState(NamedTuple):
    params: dict
    state: dict
    opt_state: tuple
    step: int
    key: jax.Array


def make_state() -> TrainState:
    params = {
        "dense": {"w": jnp.arange(12.0).reshape(3, 4), "b": jnp.ones(4, jnp.bfloat16)},
        "embed": [jnp.full((2, 2), 7, jnp.int32), (jnp.array([True, False]),)],
    }
    state = {
        "mean": np.linspace(0, 1, 5, dtype=np.float16),
        "count": np.int64(3),
        "empty": np.zeros((0, 3), np.float32),
        "legacy_key": jax.random.PRNGKey(5),
        "fp8": jnp.array([0.5, -2.0], jnp.float8_e4m3fn),
        "cplx": np.array([1 + 2j], np.complex64),
        "flag": True,
        "lr": 0.125,
    }
    opt_state = optax.adam(1e-3).init(params["dense"])
    return TrainState(params, state, opt_state, 42, jax.random.key(3))


def assert_same(a, b):
    """Same structure, same leaf kinds, dtypes and values (typed keys by their data)."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert type(x) is type(y)
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_preserves_structure_kinds_and_values(tmp_path):
    ts = make_state()
    path = tmp_path / "ckpt"
    checkpoint.save(path, ts)
    restored = checkpoint.load(path, like=ts)
    assert_same(restored, ts)
    assert type(restored) is TrainState
    assert type(restored.opt_state[0]) is optax.ScaleByAdamState
    assert isinstance(restored.state["mean"], np.ndarray)
    assert isinstance(restored.state["count"], np.int64)
    assert type(restored.step) is int and type(restored.state["flag"]) is bool
    np.testing.assert_array_equal(
        jax.random.normal(restored.key, (3,)), jax.random.normal(ts.key, (3,))
    )


def test_save_writes_exactly_path_and_is_deterministic(tmp_path):
    ts = make_state()
    checkpoint.save(tmp_path / "a.ckpt", ts)
    first = (tmp_path / "a.ckpt").read_bytes()
    checkpoint.save(tmp_path / "a.ckpt", ts)
    assert os.listdir(tmp_path) == ["a.ckpt"]
    assert (tmp_path / "a.ckpt").read_bytes() == first


def test_load_without_like_returns_flat_dict_and_file_is_a_plain_npz(tmp_path):
    tree = {"w": np.ones((2, 3), np.float32), "n": [np.int8(4)], "k": jax.random.key(0)}
    checkpoint.save(tmp_path / "c", tree)
    flat = checkpoint.load(tmp_path / "c")
    assert list(flat) == ["['k']", "['n'][0]", "['w']"]
    np.testing.assert_array_equal(flat["['w']"], tree["w"])
    assert flat["['n'][0]"].dtype == np.int8
    assert flat["['k']"].dtype == tree["k"].dtype
    with np.load(tmp_path / "c", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["['w']"], tree["w"])


def test_shape_dtype_struct_like_and_empty_tree(tmp_path):
    tree = {"w": jnp.ones((2, 3)), "k": jax.random.key(1)}
    checkpoint.save(tmp_path / "c", tree)
    restored = checkpoint.load(tmp_path / "c", like=jax.eval_shape(lambda: tree))
    assert_same(restored, tree)
    checkpoint.save(tmp_path / "e", {})
    assert checkpoint.load(tmp_path / "e", like={}) == {}


@pytest.mark.parametrize("target", ["write_array", "fsync", "replace"])
def test_interrupted_save_keeps_previous_checkpoint_and_leaves_no_temp_file(
    tmp_path, monkeypatch, target
):
    old = {"v": jnp.zeros(2), "w": jnp.zeros((4, 4))}
    path = tmp_path / "ckpt"
    checkpoint.save(path, old)
    calls = []
    write_array = np.lib.format.write_array

    def fail_on_second_leaf(*args, **kwargs):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return write_array(*args, **kwargs)

    def fail(*args, **kwargs):
        calls.append(target)
        raise OSError("disk on fire")

    if target == "write_array":
        monkeypatch.setattr(np.lib.format, "write_array", fail_on_second_leaf)
    else:
        monkeypatch.setattr(os, target, fail)
    with pytest.raises((KeyboardInterrupt, OSError)):
        checkpoint.save(path, {"v": jnp.ones(2), "w": jnp.ones((4, 4))})
    monkeypatch.undo()
    assert calls
    assert os.listdir(tmp_path) == ["ckpt"]
    assert_same(checkpoint.load(path, like=old), old)


@pytest.mark.parametrize(
    ("like", "message"),
    [
        (
            {"a": {"w": jnp.zeros((4, 4))}, "k": jax.random.key(0)},
            "['a']['w']: shape (3, 4) in file vs (4, 4) expected",
        ),
        (
            {"a": {"w": jnp.zeros((3, 4), jnp.float16)}, "k": jax.random.key(0)},
            "['a']['w']: dtype float32 in file vs float16 expected",
        ),
        (
            {"a": {"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)}, "k": jax.random.key(0)},
            "['a']['b']: missing in file",
        ),
        ({"a": {}, "k": jax.random.key(0)}, "['a']['w']: unexpected in file"),
        (
            {"a": {"w": jnp.zeros((3, 4))}, "k": jax.random.PRNGKey(0)},
            "['k']: shape () in file vs (2,) expected",
        ),
        ({"a": {"w": jnp.zeros((3, 4))}, "k": 0}, "['k']: key<fry>() in file vs Python int"),
    ],
)
def test_mismatch_names_the_leaf_path_and_file(tmp_path, like, message):
    path = tmp_path / "model.ckpt"
    checkpoint.save(path, {"a": {"w": jnp.zeros((3, 4))}, "k": jax.random.key(0)})
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, like=like)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_python_scalar_like_accepts_same_kind(tmp_path):
    checkpoint.save(tmp_path / "c", {"step": np.int32(9), "lr": jnp.float32(0.5)})
    assert checkpoint.load(tmp_path / "c", like={"step": 0, "lr": 1.0}) == {"step": 9, "lr": 0.5}
    with pytest.raises(CheckpointError, match=r"\['lr'\]: float32\(\) in file vs Python int"):
        checkpoint.load(tmp_path / "c", like={"step": 0, "lr": 1})


def test_unsupported_leaf_is_a_type_error_naming_the_path(tmp_path):
    with pytest.raises(TypeError, match=r"\['name'\]"):
        checkpoint.save(tmp_path / "c", {"name": "resnet"})
    assert os.listdir(tmp_path) == []


def good_bytes(tmp_path) -> bytes:
    checkpoint.save(
        tmp_path / "good", {"w": np.arange(6, dtype=np.float32), "k": jax.random.key(2)}
    )
    return (tmp_path / "good").read_bytes()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda good: b"", "empty file"),
        (lambda good: b"step,loss\n1,0.5\n", "not a zip archive"),
        (lambda good: PNG, "not a zip archive"),
        (lambda good: good[: len(good) // 2], "not a zip archive, or truncated"),
        (lambda good: good[:-1], "truncated"),
        (lambda good: good[:30], "truncated"),
    ],
    ids=["empty", "text", "png", "half", "minus-one-byte", "header-only"],
)
def test_broken_files_raise_checkpoint_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(make(good_bytes(tmp_path)))
    with pytest.raises(CheckpointError, match=message) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)


def test_plain_npz_is_foreign(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    with pytest.raises(CheckpointError, match="without manifest.json"):
        checkpoint.load(tmp_path / "plain.npz")


class Exploit:
    """Unpickling this creates a directory: proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def object_npy(target) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([Exploit(target)], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def test_pickled_object_arrays_are_refused_without_running_code(tmp_path):
    pwned = str(tmp_path / "pwned")
    np.savez(tmp_path / "evil.npz", w=np.array([Exploit(pwned)], dtype=object))
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path / "evil.npz")
    # A forged checkpoint: valid manifest and checksum, but the entry is a pickle.
    forged = tmp_path / "forged.ckpt"
    payload = object_npy(pwned)
    with zipfile.ZipFile(forged, "w") as zf:
        zf.writestr("['w'].npy", payload)
        leaf = {
            "path": "['w']",
            "entry": "['w'].npy",
            "kind": "array",
            "dtype": "object",
            "shape": [1],
            "sha256": hashlib.sha256(payload).hexdigest(),
            "types": ["dict"],
        }
        header = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "leaves": [leaf]}
        zf.writestr("manifest.json", json.dumps(header | {"empty": [], "metadata": {}}))
    with pytest.raises(CheckpointError, match=str(forged)):
        checkpoint.load(forged)
    assert not os.path.exists(pwned)


def test_newer_format_version_is_reported(tmp_path):
    path = tmp_path / "v9.ckpt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "manifest.json", json.dumps({"format": checkpoint.FORMAT, "version": 9, "leaves": []})
        )
    with pytest.raises(CheckpointError, match="version 9 is not supported"):
        checkpoint.load(path)


def test_every_flipped_byte_is_detected_or_harmless(tmp_path):
    good = good_bytes(tmp_path)
    expected = checkpoint.load(tmp_path / "good")
    data_at = good.index(np.arange(6, dtype=np.float32).tobytes())
    path = tmp_path / "flipped"
    detected = set()
    for i in range(len(good)):
        path.write_bytes(good[:i] + bytes([good[i] ^ 0x5A]) + good[i + 1 :])
        try:
            loaded = checkpoint.load(path)
        except CheckpointError:
            detected.add(i)
            continue
        assert list(loaded) == list(expected), i
        np.testing.assert_array_equal(loaded["['w']"], expected["['w']"])
        assert (
            jax.random.key_data(loaded["['k']"]) == jax.random.key_data(expected["['k']"])
        ).all()
    assert set(range(data_at, data_at + 24)) <= detected


# Provenance: container types and metadata.


class ScaleByAdamaxState(NamedTuple):
    """Another optimizer's state with the field names of optax's ScaleByAdamState."""

    count: jax.Array
    mu: dict
    nu: dict


def with_opt_state(ts: TrainState, opt_state) -> TrainState:
    return ts._replace(opt_state=opt_state)


def test_container_types_are_checked_and_the_first_differing_one_is_named(tmp_path):
    ts = make_state()
    path = tmp_path / "adam.ckpt"
    checkpoint.save(path, ts)
    adam, rest = ts.opt_state[0], ts.opt_state[1:]
    like = with_opt_state(ts, (ScaleByAdamaxState(*adam), *rest))
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, like=like)
    message = str(info.value)
    assert ".opt_state[0]: ScaleByAdamState in file vs ScaleByAdamaxState expected" in message
    assert message.count("ScaleByAdamaxState") == 1  # one line for the node, not one per leaf
    checkpoint.save(path, [np.ones(2)])
    with pytest.raises(CheckpointError, match=r"\(root\): list in file vs tuple expected"):
        checkpoint.load(path, like=(np.ones(2),))


def test_empty_subtrees_are_part_of_the_structure(tmp_path):
    params = {"w": jnp.ones(3)}
    path = tmp_path / "adam.ckpt"
    checkpoint.save(path, fn.optim.adam(1e-3).init(params))
    adamw = fn.optim.adamw(1e-3).init(params)  # adam's leaves plus one more EmptyState
    with pytest.raises(CheckpointError, match=r"\[2\]: missing in file \(an empty EmptyState\)"):
        checkpoint.load(path, like=adamw)
    checkpoint.save(path, adamw)
    with pytest.raises(CheckpointError, match=r"\[2\]: unexpected in file \(an empty Empty"):
        checkpoint.load(path, like=fn.optim.adam(1e-3).init(params))
    checkpoint.save(path, {"a": None, "b": {}, "w": np.ones(2)})
    with pytest.raises(CheckpointError, match=r"\['a'\]: NoneType in file vs dict expected"):
        checkpoint.load(path, like={"a": {}, "b": {}, "w": np.ones(2)})
    assert checkpoint.load(path, like={"a": None, "b": {}, "w": np.ones(2)})["a"] is None


def test_types_are_compared_by_name_so_optax_and_funcnets_states_interchange(tmp_path):
    params = {"w": jnp.arange(3.0)}
    state = fn.optim.adam(1e-3).init(params)
    checkpoint.save(tmp_path / "c", state)
    restored = checkpoint.load(tmp_path / "c", like=optax.adam(1e-3).init(params))
    assert type(restored[0]) is optax.ScaleByAdamState


def test_metadata_tells_apart_optimizers_whose_states_agree(tmp_path):
    """adam and adamax have the same state tree; the metadata records which one made it."""
    init = fn.train.init
    net, key, shape = fn.Dense(2), jax.random.key(0), (1, 3)
    adam = init(net, fn.optim.adam(1e-3), key, shape)
    adamax = init(net, fn.optim.adamax(1e-3), key, shape)
    path = tmp_path / "run.ckpt"
    metadata = {"optimizer": "adam", "model": {"name": "mlp", "sizes": (64, 10)}, "lr": 1e-3}
    checkpoint.save(path, adam, metadata=metadata)
    assert checkpoint.read_metadata(path) == {
        "optimizer": "adam",
        "model": {"name": "mlp", "sizes": [64, 10]},
        "lr": 1e-3,
    }
    checkpoint.load(path, like=adamax)  # the trees alone cannot tell them apart
    same = {"model": {"sizes": (64, 10), "name": "mlp"}, "optimizer": "adam"}
    assert_same(checkpoint.load(path, like=adam, expect=same), adam)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, like=adamax, expect={"optimizer": "adamax", "lr": 1e-3, "seed": 0})
    message = str(info.value)
    assert str(path) in message and "does not match `expect`" in message
    assert 'optimizer: "adam" in file vs "adamax" expected' in message
    assert "seed: missing in file vs 0 expected" in message
    assert "lr" not in message


@pytest.mark.parametrize(
    "metadata", [["adam"], {"lr": float("nan")}, {"opt": object()}], ids=["list", "nan", "object"]
)
def test_metadata_must_be_a_json_object(tmp_path, metadata):
    with pytest.raises(TypeError, match="metadata (must be a dict|is not JSON-serialisable)"):
        checkpoint.save(tmp_path / "c", {"w": np.ones(2)}, metadata=metadata)
    assert os.listdir(tmp_path) == []


def edit_manifest(path, edit) -> None:
    """Rewrites the checkpoint ``path`` with ``edit(manifest)`` as its manifest."""
    with zipfile.ZipFile(path) as zf:
        entries = {info.filename: zf.read(info) for info in zf.infolist()}
    manifest = edit(json.loads(entries.pop("manifest.json")))
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest))


def test_read_metadata_refuses_a_corrupt_or_malformed_manifest(tmp_path):
    path = tmp_path / "c"
    checkpoint.save(path, {"w": np.ones(2)}, metadata={"optimizer": "adam"})
    good = path.read_bytes()
    at = good.index(b'"optimizer"')
    path.write_bytes(good[:at] + b"X" + good[at + 1 :])
    with pytest.raises(CheckpointError, match=str(path)):
        checkpoint.read_metadata(path)
    for fields in [{"metadata": ["adam"]}, {"empty": {}}, {"empty": [{"path": "x"}]}]:
        path.write_bytes(good)
        edit_manifest(path, lambda m, fields=fields: m | fields)
        with pytest.raises(CheckpointError, match="malformed manifest.json"):
            checkpoint.read_metadata(path)


def as_version_1(manifest: dict) -> dict:
    """The manifest that format version 1 wrote: no container types, empty subtrees, metadata."""
    leaves = [{k: v for k, v in leaf.items() if k != "types"} for leaf in manifest["leaves"]]
    return {"format": manifest["format"], "version": 1, "leaves": leaves}


def test_version_1_files_load_without_type_checks_and_with_empty_metadata(tmp_path):
    ts = make_state()
    path = tmp_path / "v1.ckpt"
    checkpoint.save(path, ts, metadata={"optimizer": "adam"})
    edit_manifest(path, as_version_1)
    assert_same(checkpoint.load(path, like=ts), ts)
    adam, rest = ts.opt_state[0], ts.opt_state[1:]
    checkpoint.load(path, like=with_opt_state(ts, (ScaleByAdamaxState(*adam), *rest, ())))
    assert checkpoint.read_metadata(path) == {}
    with pytest.raises(CheckpointError, match='optimizer: missing in file vs "adam" expected'):
        checkpoint.load(path, like=ts, expect={"optimizer": "adam"})


# The files around a checkpoint: stale temp files, symlinks, permissions, wrong paths.

KILLED_SAVE = """
import os, sys, time
import numpy as np
from funcnets import checkpoint

def stall(fd):  # the archive is written; a SIGKILL now leaves its temp file behind
    print("written", flush=True)
    time.sleep(600)

os.fsync = stall
checkpoint.save(sys.argv[1], {"w": np.zeros(2**20, np.float32)})
"""


@pytest.mark.skipif(os.name != "posix", reason="stale temp files are cleaned on POSIX only")
def test_next_save_removes_the_temp_file_of_a_killed_save_and_no_other(tmp_path):
    path = tmp_path / "ckpt"
    checkpoint.save(path, {"w": np.ones(2)})
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline() == "written\n"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    (stale,) = [name for name in os.listdir(tmp_path) if name != "ckpt"]
    match = re.fullmatch(rf"\.ckpt\.([0-9a-f]{{8}})\.{proc.pid}\.[0-9a-f]{{16}}\.tmp", stale)
    assert match, stale
    assert (tmp_path / stale).stat().st_size > 4 * 2**20
    host, dead, hex16 = match[1], proc.pid, "0123456789abcdef"
    others = [
        f".ckpt.{host}.{os.getpid()}.{hex16}.tmp",  # a save in progress (this live process)
        f".ckpt.{int(host, 16) ^ 1:08x}.{dead}.{hex16}.tmp",  # another host
        f".other.{host}.{dead}.{hex16}.tmp",  # another target
        f".ckpt.1.{host}.{dead}.{hex16}.tmp",  # another target whose name extends this one's
    ]
    for name in others:
        (tmp_path / name).write_bytes(b"partial")
    checkpoint.save(path, {"w": np.zeros(2)})
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt", *others])
    np.testing.assert_array_equal(checkpoint.load(path)["['w']"], np.zeros(2))


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "links").mkdir()
    real, link = tmp_path / "runs" / "model.ckpt", tmp_path / "links" / "latest.ckpt"
    checkpoint.save(real, {"w": np.zeros(2)})
    link.symlink_to("../runs/model.ckpt")
    checkpoint.save(link, {"w": np.ones(2)})
    assert link.is_symlink() and os.readlink(link) == "../runs/model.ckpt"
    np.testing.assert_array_equal(checkpoint.load(real)["['w']"], np.ones(2))
    assert os.listdir(tmp_path / "links") == ["latest.ckpt"]
    assert os.listdir(tmp_path / "runs") == ["model.ckpt"]
    dangling = tmp_path / "links" / "next.ckpt"
    dangling.symlink_to("../runs/next.ckpt")
    checkpoint.save(dangling, {"w": np.ones(2)})  # like open(link, "w"): creates the target
    assert dangling.is_symlink() and (tmp_path / "runs" / "next.ckpt").is_file()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_overwriting_keeps_the_file_mode_and_a_new_file_follows_the_umask(tmp_path):
    path = tmp_path / "c"
    checkpoint.save(path, {"w": np.zeros(2)})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o7777 == 0o666 & ~umask
    for mode in (0o604, 0o400):
        path.chmod(mode)
        checkpoint.save(path, {"w": np.ones(2)})
        assert path.stat().st_mode & 0o7777 == mode


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_loading_a_directory_or_a_broken_symlink_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file"):
        checkpoint.load(tmp_path)
    link = tmp_path / "latest.ckpt"
    link.symlink_to("epoch-0003.ckpt")
    for read in (checkpoint.load, checkpoint.read_metadata):
        with pytest.raises(FileNotFoundError, match="broken symlink to 'epoch-0003.ckpt'") as info:
            read(link)
        assert str(link) in str(info.value)
