"""Training: `TrainState`, `make_step`, `fit`, `evaluate`, `predict` and callbacks.

The recipe under everything here: the loss returns ``(loss, new_state)``
through ``jax.value_and_grad(..., has_aux=True)``, so layer state (BatchNorm
statistics) rides along without gradients, and one optimizer update follows.
"""

from funcnets.train.callbacks import Callback, Checkpoint, CSVLogger, EarlyStopping
from funcnets.train.history import History
from funcnets.train.loop import STRATEGIES, choose_strategy, evaluate, fit, predict
from funcnets.train.metrics import accuracy
from funcnets.train.state import TrainState, init
from funcnets.train.step import make_step, step_key

__all__ = [
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "STRATEGIES",
    "TrainState",
    "accuracy",
    "choose_strategy",
    "evaluate",
    "fit",
    "init",
    "make_step",
    "predict",
    "step_key",
]
