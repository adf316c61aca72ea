"""Tests for funcnets.checkpoint: round trips, atomic saves, mismatch messages, hostile files."""

import hashlib
import io
import json
import os
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

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
        }
        zf.writestr(
            "manifest.json",
            json.dumps(
                {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "leaves": [leaf]}
            ),
        )
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
