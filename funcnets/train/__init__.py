"""Training: one epoch engine (`run`) for any pure step, and supervised `fit` on top of it.

- `TrainState`, `init`: a run as one pytree of arrays.
- `objective_step`, `make_step`, `guarded_update`: pure steps ``(ts, batch) -> (ts, metrics)``.
- `run`: epochs of any step over arrays or batches, with the non-finite guard,
  callbacks, checkpoints and progress; `fit`: `run` over `make_step` plus validation.
- `evaluate`, `predict`, `confusion_matrix`; `accuracy` and `metrics`.
- Callbacks `EarlyStopping`, `Checkpoint`, `CSVLogger`; `History`.

The recipe under every step: the loss returns ``(loss, (new_state, metrics))``
through ``jax.value_and_grad(..., has_aux=True)``, so layer state (BatchNorm
statistics) rides along without gradients, and one optimizer update follows.
"""

from funcnets.train import metrics
from funcnets.train.callbacks import Callback, Checkpoint, CSVLogger, EarlyStopping
from funcnets.train.evaluation import confusion_matrix, evaluate, predict
from funcnets.train.fit import fit
from funcnets.train.history import History
from funcnets.train.metrics import accuracy
from funcnets.train.run import run
from funcnets.train.state import TrainState, init, new_state
from funcnets.train.step import (
    all_finite,
    global_norm,
    guarded_update,
    make_step,
    objective_step,
    step_key,
)
from funcnets.train.strategy import STRATEGIES, choose_strategy, epoch_plan

__all__ = [
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "STRATEGIES",
    "TrainState",
    "accuracy",
    "all_finite",
    "choose_strategy",
    "confusion_matrix",
    "epoch_plan",
    "evaluate",
    "fit",
    "global_norm",
    "guarded_update",
    "init",
    "make_step",
    "metrics",
    "new_state",
    "objective_step",
    "predict",
    "run",
    "step_key",
]
