"""Shared fixtures: float64 for finite differences, strict dtype promotion, the real data."""

import os
from pathlib import Path

import jax
import pytest

#: Where the real MNIST / Fashion-MNIST files are: $FUNCNETS_DATA, else ../shared/data
#: beside the repository (the package itself never looks there).
REAL_DATA = Path(
    os.environ.get("FUNCNETS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture
def real_data() -> Path:
    """The directory holding ``mnist/`` and ``fashion-mnist/`` (may not exist)."""
    return REAL_DATA


@pytest.fixture
def x64():
    """Runs a test with 64-bit floats enabled (finite differences need them)."""
    with jax.enable_x64(True):
        yield
