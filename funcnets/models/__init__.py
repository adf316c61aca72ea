"""Classic architectures, each a function returning a `Layer`."""

from funcnets.models.lenet import lenet5
from funcnets.models.lstm import lstm_classifier
from funcnets.models.mlp import mlp

__all__ = ["lenet5", "lstm_classifier", "mlp"]
