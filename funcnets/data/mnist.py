"""MNIST and Fashion-MNIST from their original IDX gzip files, checksum-verified.

Files live under ``<root>/<dataset.name>/`` with their original names. ``root`` defaults to
``$FUNCNETS_DATA``, then ``~/.cache/funcnets``. Missing files are downloaded from ``mirror`` (or
``$FUNCNETS_MIRROR``) first, then from the dataset's public mirrors. Every file, downloaded or
already present, must match its pinned sha256.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from funcnets.data.files import DataError, fetch, verify
from funcnets.data.idx import read_idx

__all__ = [
    "FASHION_MNIST",
    "MNIST",
    "IdxDataset",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_mnist",
]

Split = tuple[np.ndarray, np.ndarray]
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class IdxDataset(NamedTuple):
    """Where an MNIST-layout dataset lives and what its files must hash to.

    Attributes:
        name: the directory under the data root, e.g. ``"mnist"``.
        mirrors: base URLs serving the four files, tried in order.
        sha256: the hex sha256 of each of the four gzip files, by file name.
    """

    name: str
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]


MNIST = IdxDataset(
    "mnist",
    (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
)

FASHION_MNIST = IdxDataset(
    "fashion-mnist",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
)


def load_mnist(
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirror: str | None = None,
    *,
    progress: bool | None = None,
) -> tuple[Split, Split]:
    """Loads MNIST (LeCun, Cortes and Burges): 60,000 train and 10,000 test digits.

    Args:
        root: data root; the files are read from ``<root>/mnist/``. Defaults to
            ``$FUNCNETS_DATA``, then ``~/.cache/funcnets``.
        download: fetch missing files; with ``False`` a missing file raises.
        mirror: a base URL tried before the public mirrors; defaults to ``$FUNCNETS_MIRROR``.
        progress: show download progress bars; ``None`` shows them when stderr is a terminal.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: x float32 ``(N, 28, 28, 1)`` in [0, 1], y
        int32 ``(N,)`` in 0..9, with N = 60000 and 10000.

    Raises:
        FileNotFoundError: a file is missing and ``download`` is False; says where to get it.
        DataError: a file fails its checksum, is not valid IDX, or cannot be downloaded.
    """
    return load_idx_dataset(MNIST, root, download, mirror, progress=progress)


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirror: str | None = None,
    *,
    progress: bool | None = None,
) -> tuple[Split, Split]:
    """Loads Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28x28 clothing images, 10 classes.

    Same arguments, layout and errors as ``load_mnist``, reading ``<root>/fashion-mnist/``.
    Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
    7 Sneaker, 8 Bag, 9 Ankle boot.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: x float32 ``(N, 28, 28, 1)`` in [0, 1], y
        int32 ``(N,)``, with N = 60000 and 10000.
    """
    return load_idx_dataset(FASHION_MNIST, root, download, mirror, progress=progress)


def load_idx_dataset(
    dataset: IdxDataset,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirror: str | None = None,
    *,
    progress: bool | None = None,
) -> tuple[Split, Split]:
    """Loads any dataset laid out like MNIST (four IDX gzip files), checking every sha256.

    A file that is present and matches its checksum is used without any network request; a
    present file that does not match raises (it is never silently replaced).

    Args:
        dataset: the dataset's directory name, mirrors and checksums.
        root, download, mirror, progress: as in ``load_mnist``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: x float32 ``(N, H, W, 1)`` scaled from
        0..255 to [0, 1], y int32 ``(N,)``.
    """
    directory = data_root(root) / dataset.name
    mirror = mirror or os.environ.get("FUNCNETS_MIRROR")
    mirrors = ((mirror,) if mirror else ()) + dataset.mirrors
    for name in TRAIN_FILES + TEST_FILES:
        path = directory / name
        if path.exists():
            verify(path, dataset.sha256[name])
        elif download:
            urls = [base.rstrip("/") + "/" + name for base in mirrors]
            fetch(urls, path, dataset.sha256[name], progress=progress)
        else:
            raise FileNotFoundError(
                f"{path} not found (looked in {directory}). Call with download=True, or put "
                f"the files {', '.join(TRAIN_FILES + TEST_FILES)} there from one of "
                f"{', '.join(mirrors)}; set $FUNCNETS_DATA to use another data root, or "
                "$FUNCNETS_MIRROR (or mirror=) to download from another base URL."
            )
    return _decode(directory, TRAIN_FILES), _decode(directory, TEST_FILES)


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root``, else ``$FUNCNETS_DATA``, else ``~/.cache/funcnets``."""
    if root is None:
        root = os.environ.get("FUNCNETS_DATA") or Path.home() / ".cache" / "funcnets"
    return Path(root).expanduser()


def _decode(directory: Path, files: tuple[str, str]) -> Split:
    """Reads an (images, labels) pair of IDX files into float32 NHWC images and int32 labels."""
    images, labels = (read_idx(directory / name) for name in files)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{directory / files[0]}: expected uint8 images (N, H, W), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.shape != images.shape[:1]:
        raise DataError(
            f"{directory / files[1]}: expected {len(images)} labels, got shape {labels.shape}"
        )
    x = images.astype(np.float32)[..., None]
    x /= 255
    return x, labels.astype(np.int32)
