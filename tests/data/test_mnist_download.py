"""MNIST-style loading and downloading, against a real HTTP server on 127.0.0.1."""

import gzip
import hashlib
import http.server
import os
import socket
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from funcnets.data import DataError, load_fashion_mnist, load_mnist
from funcnets.data.mnist import FASHION_MNIST, MNIST, IdxDataset, load_idx_dataset

FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture
def fake(to_idx):
    """Small MNIST-format files: 20 train and 10 test 6x5 images, with their labels."""
    rng = np.random.default_rng(0)
    arrays = {
        FILES[0]: rng.integers(0, 256, (20, 6, 5), dtype=np.uint8),
        FILES[1]: np.arange(20, dtype=np.uint8) % 10,
        FILES[2]: rng.integers(0, 256, (10, 6, 5), dtype=np.uint8),
        FILES[3]: np.arange(10, dtype=np.uint8)[::-1].copy(),
    }
    files = {name: gzip.compress(to_idx(a), mtime=0) for name, a in arrays.items()}
    sha256 = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return arrays, files, sha256


class Server:
    """An HTTP server in a thread serving ``files`` under any path prefix, logging requests.

    ``mode`` is "ok", "drop" (close the connection halfway through the body) or "wrong"
    (serve other bytes of the same length).
    """

    def __init__(self, files: dict[str, bytes]):
        self.files, self.mode, self.requests = files, "ok", []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path.rsplit("/", 1)[-1])
                if body is None or not self.path.startswith("/good/"):
                    self.send_error(404)
                    return
                if server.mode == "wrong":
                    body = bytes(len(body))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if server.mode == "drop" else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}
        )

    def spec(self, sha256, *prefixes):
        return IdxDataset("fake", tuple(f"{self.url}/{p}/" for p in prefixes), sha256)


@pytest.fixture
def server(fake):
    s = Server(fake[1])
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()
    s.thread.join()


def test_download_is_verified_cached_and_decoded(tmp_path, fake, server):
    arrays, files, sha256 = fake
    (x_train, y_train), (x_test, y_test) = load_idx_dataset(
        server.spec(sha256, "good"), root=tmp_path
    )
    assert server.requests == [f"/good/{name}" for name in FILES]
    assert sorted(os.listdir(tmp_path / "fake")) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / "fake" / name).read_bytes() == files[name]
    assert x_train.shape == (20, 6, 5, 1) and x_test.shape == (10, 6, 5, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    np.testing.assert_allclose(x_train[..., 0] * 255, arrays[FILES[0]], atol=1e-4)
    np.testing.assert_array_equal(y_train, arrays[FILES[1]])
    np.testing.assert_array_equal(y_test, arrays[FILES[3]])

    again = load_idx_dataset(server.spec(sha256, "good"), root=tmp_path, download=False)
    load_idx_dataset(server.spec(sha256, "good"), root=tmp_path)
    assert len(server.requests) == 4
    np.testing.assert_array_equal(again[0][0], x_train)


def test_mirror_is_tried_first_then_public_mirrors_in_order(tmp_path, fake, server, monkeypatch):
    sha256 = fake[2]
    spec = server.spec(sha256, "missing", "good")
    load_idx_dataset(spec, root=tmp_path / "a", mirror=f"{server.url}/mirror")
    assert server.requests[:3] == [
        f"/mirror/{FILES[0]}",
        f"/missing/{FILES[0]}",
        f"/good/{FILES[0]}",
    ]
    server.requests.clear()
    monkeypatch.setenv("FUNCNETS_MIRROR", f"{server.url}/good/")
    monkeypatch.setenv("FUNCNETS_DATA", str(tmp_path / "b"))
    load_idx_dataset(spec, progress=True)
    assert server.requests == [f"/good/{name}" for name in FILES]
    assert sorted(os.listdir(tmp_path / "b" / "fake")) == sorted(FILES)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("drop", "truncated download: expected"),
        ("wrong", "checksum mismatch"),
    ],
)
def test_failed_download_leaves_nothing_in_the_cache(tmp_path, fake, server, mode, message):
    server.mode = mode
    with pytest.raises(DataError) as info:
        load_idx_dataset(server.spec(fake[2], "good", "missing"), root=tmp_path)
    text = str(info.value)
    assert message in text and "404" in text
    assert str(tmp_path / "fake" / FILES[0]) in text
    assert list((tmp_path / "fake").iterdir()) == []


def test_unreachable_server_is_reported(tmp_path, fake):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = IdxDataset("fake", (f"http://127.0.0.1:{port}/good/",), fake[2])
    with pytest.raises(DataError, match="could not download it from any mirror"):
        load_idx_dataset(spec, root=tmp_path)
    assert list((tmp_path / "fake").iterdir()) == []


def test_download_false_says_where_it_looked_and_how_to_get_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNCNETS_DATA", str(tmp_path))
    monkeypatch.delenv("FUNCNETS_MIRROR", raising=False)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(download=False)
    text = str(info.value)
    assert str(tmp_path / "mnist") in text
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in text
    assert "$FUNCNETS_DATA" in text and "$FUNCNETS_MIRROR" in text
    assert not (tmp_path / "mnist").exists()


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_corrupted_local_file_is_detected_without_network(tmp_path, loader, monkeypatch):
    name = (MNIST if loader is load_mnist else FASHION_MNIST).name
    (tmp_path / name).mkdir()
    (tmp_path / name / FILES[0]).write_bytes(b"\x1f\x8b not really")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network used"))
    with pytest.raises(DataError, match="checksum mismatch") as info:
        loader(root=tmp_path)
    assert str(tmp_path / name / FILES[0]) in str(info.value)


def test_local_file_corrupted_after_download_is_detected(tmp_path, fake, server):
    spec = server.spec(fake[2], "good")
    load_idx_dataset(spec, root=tmp_path)
    path = tmp_path / "fake" / FILES[2]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_idx_dataset(spec, root=tmp_path)
    assert len(server.requests) == 4


def test_checksum_valid_but_malformed_file_names_file_and_problem(tmp_path, fake, to_idx):
    files = dict(fake[1])
    files[FILES[1]] = gzip.compress(b"\x08\x03" + to_idx(fake[0][FILES[1]])[2:])
    files[FILES[3]] = gzip.compress(to_idx(np.zeros(3, np.uint8)))
    (tmp_path / "fake").mkdir()
    for name, data in files.items():
        (tmp_path / "fake" / name).write_bytes(data)
    sha256 = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    spec = IdxDataset("fake", (), sha256)
    with pytest.raises(DataError, match="wrong magic 0803") as info:
        load_idx_dataset(spec, root=tmp_path, download=False)
    assert FILES[1] in str(info.value)
    files[FILES[1]] = fake[1][FILES[1]]
    (tmp_path / "fake" / FILES[1]).write_bytes(files[FILES[1]])
    sha256[FILES[1]] = fake[2][FILES[1]]
    with pytest.raises(DataError, match=f"{FILES[3]}: expected 10 labels, got shape"):
        load_idx_dataset(spec, root=tmp_path, download=False)


def linked_root(tmp_path: Path, real_data: Path, name: str) -> Path:
    source = real_data / name
    if not all((source / f).exists() for f in FILES):
        pytest.skip(f"real {name} files not found in {source}")
    (tmp_path / name).mkdir()
    for f in FILES:
        (tmp_path / name / f).symlink_to(source / f)
    return tmp_path


MNIST_COUNTS = (
    [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
)
FASHION_COUNTS = ([6000] * 10, [1000] * 10)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loader", "name", "counts"),
    [(load_mnist, "mnist", MNIST_COUNTS), (load_fashion_mnist, "fashion-mnist", FASHION_COUNTS)],
)
def test_real_files(tmp_path, real_data, loader, name, counts):
    root = linked_root(tmp_path, real_data, name)
    splits = loader(root=root, download=False)
    for (x, y), n, count in zip(splits, (60000, 10000), counts, strict=True):
        assert x.shape == (n, 28, 28, 1) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        assert x.min() == 0.0 and x.max() == 1.0
        assert np.bincount(y, minlength=10).tolist() == count
