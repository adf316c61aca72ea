"""funcnets: classic deep learning as pure functions over explicit pytrees, on JAX."""

__version__ = "0.1.0"
