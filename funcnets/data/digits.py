"""The bundled 8x8 UCI handwritten digits (1,797 images), with a fixed train/test split.

The data are ``funcnets/data/digits.csv.gz`` (see ``DIGITS.md`` there for origin and licence:
Alpaydin and Kaynak, UCI, CC BY 4.0), verified against its sha256 before parsing.

The split is fixed: the rows are shuffled by ``np.random.RandomState(0).permutation`` (whose
stream NumPy guarantees never to change), stably sorted by label, and every fifth row of that
order (positions 0, 5, 10, ...) goes to the test set. That gives 1,437 train and 360 test
images, 35 to 37 test images per class, both sets in the shuffled order.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from importlib import resources

import numpy as np

from funcnets.data.files import DataError

__all__ = ["load_digits"]

Split = tuple[np.ndarray, np.ndarray]
FILE = "digits.csv.gz"
SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
SPLIT_SEED = 0
TEST_EVERY = 5


def load_digits() -> tuple[Split, Split]:
    """Loads the bundled 8x8 handwritten digits with the fixed split described above.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: x float32 ``(N, 8, 8, 1)``, the 0..16 pixel
        counts scaled to [0, 1]; y int32 ``(N,)`` in 0..9; N = 1437 (train) and 360 (test).

    Raises:
        DataError: the bundled file does not match its sha256 (a damaged installation).
    """
    resource = resources.files(__package__).joinpath(FILE)
    raw = resource.read_bytes()
    if hashlib.sha256(raw).hexdigest() != SHA256:
        raise DataError(f"{resource}: checksum mismatch; the funcnets installation is damaged")
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int32)
    x = (table[:, :64].astype(np.float32) / 16).reshape(-1, 8, 8, 1)
    y = table[:, 64]
    order = np.random.RandomState(SPLIT_SEED).permutation(len(y))
    test = np.zeros(len(y), dtype=bool)
    test[order[np.argsort(y[order], kind="stable")][::TEST_EVERY]] = True
    train_rows, test_rows = order[~test[order]], order[test[order]]
    return (x[train_rows], y[train_rows]), (x[test_rows], y[test_rows])
