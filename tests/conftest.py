"""Shared fixtures: float64 for finite differences, strict dtype promotion."""

import jax
import pytest


@pytest.fixture
def x64():
    """Runs a test with 64-bit floats enabled (finite differences need them)."""
    with jax.enable_x64(True):
        yield
