"""`Trainable`: what a model that is more than one `Layer` offers the engine and the CLI.

A classifier is a `Layer` trained by `fn.train.fit`. An autoencoder, a VAE, a
GAN or an RBM has its own objective (or, for the RBM, its own gradient
estimator), several networks, or state that is not a layer's; each model
factory in `fn.models` returns an object with these three methods, so that
`fn.train.run`, the experiments and ``funcnets train --model NAME`` treat
them alike:

- ``init(key, input_shape, optimizer) -> TrainState``: fresh parameters, the
  optimizer state(s) and the run's key (``input_shape`` includes the batch).
- ``step(optimizer) -> step``: the pure step ``(ts, batch) -> (ts, metrics)``
  for `fn.train.run`, where ``batch`` is an array of examples; its metrics
  include ``"finite"`` (the engine's guard) when the step guards its updates.
- ``evaluate(ts, x, key) -> dict[str, float]``: the model's own numbers on
  held-out examples ``x`` (a reconstruction error, a bound on the negative
  log-likelihood, ...), named so that lower-is-better or higher-is-better is
  clear from the name.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax

from funcnets.train.state import TrainState
from funcnets.train.step import Step


class Trainable(Protocol):
    """A model with its own training step; see the module docstring."""

    def init(self, key: jax.Array, input_shape: tuple[int, ...], optimizer: Any) -> TrainState:
        """A fresh `TrainState` for examples of ``input_shape`` (batch included)."""
        ...

    def step(self, optimizer: Any) -> Step:
        """The pure training step ``(ts, batch) -> (ts, metrics)``."""
        ...

    def evaluate(self, ts: TrainState, x: jax.Array, key: jax.Array) -> dict[str, float]:
        """The model's numbers on held-out examples ``x``."""
        ...
