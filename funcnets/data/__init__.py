"""Datasets, minibatches and augmentation.

- ``load_mnist``, ``load_fashion_mnist``: the original IDX files, downloaded once into
  ``$FUNCNETS_DATA`` (default ``~/.cache/funcnets``) and checksum-verified on every load.
- ``load_digits``: the 8x8 UCI digits bundled with funcnets, with a fixed train/test split.
- ``xor``, ``spirals``, ``moons``, ``sine``: synthetic sets, pure functions of a key.
- ``read_idx``: any IDX file, raw or gzip-compressed, as a numpy array.
- ``split``: a validation split held out of the training data, by a key.
- ``batches``: minibatches of in-memory arrays, shuffled by a key.
- ``random_crop``, ``random_flip``, ``gaussian_noise``: jittable, key-first augmentation.

Datasets are returned as ``((x_train, y_train), (x_test, y_test))`` numpy arrays, images NHWC
float32 in [0, 1] and labels int32.
"""

from funcnets.data.augment import gaussian_noise, random_crop, random_flip
from funcnets.data.batching import batches
from funcnets.data.digits import load_digits
from funcnets.data.files import DataError
from funcnets.data.idx import read_idx
from funcnets.data.mnist import load_fashion_mnist, load_mnist
from funcnets.data.split import split
from funcnets.data.synthetic import moons, sine, spirals, xor

__all__ = [
    "DataError",
    "batches",
    "gaussian_noise",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "moons",
    "random_crop",
    "random_flip",
    "read_idx",
    "sine",
    "spirals",
    "split",
    "xor",
]
