"""Benchmarks of funcnets against hand-written JAX and PyTorch: ``python -m benchmarks``."""
