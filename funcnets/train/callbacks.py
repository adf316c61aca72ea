"""Callbacks run on the host between epochs: early stopping, checkpoints, CSV logs.

A callback has three hooks, each optional to override:
``on_train_begin(ts)``, ``on_epoch_end(epoch, ts, logs) -> bool`` (True stops
training) and ``on_train_end(ts) -> ts`` (may replace the final state).
``epoch`` counts from 1 over the whole run, including epochs before a resume.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp

from funcnets import checkpoint
from funcnets.train.state import TrainState


class Callback:
    """Base class: hooks that do nothing."""

    def on_train_begin(self, ts: TrainState) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, epoch: int, ts: TrainState, logs: Mapping[str, float]) -> bool:
        """Called after each epoch with its metrics; return True to stop training."""
        return False

    def on_train_end(self, ts: TrainState) -> TrainState:
        """Called once after training; returns the state `fit` hands back."""
        return ts


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved for ``patience`` epochs (Keras's rule).

    An epoch improves when its value beats the best so far by more than
    ``min_delta`` (lower is better, or higher for names containing
    "acc"). After ``patience`` epochs in a row without improvement, training
    stops. With ``restore_best``, `fit` returns the `TrainState` as it was at
    the end of the best epoch (params, state, optimizer state, step and key),
    so a later ``fit(ts=...)`` resumes from there.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if patience < 0 or min_delta < 0:
            raise ValueError(
                f"EarlyStopping: patience and min_delta must be >= 0, got {patience}, {min_delta}"
            )
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        self.higher_is_better = "acc" in monitor

    def on_train_begin(self, ts: TrainState) -> None:
        self.best, self.best_epoch, self.best_ts, self.wait = math.nan, 0, None, 0
        self.stopped_epoch = 0

    def _improved(self, value: float) -> bool:
        if math.isnan(self.best):
            return True
        if self.higher_is_better:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch: int, ts: TrainState, logs: Mapping[str, float]) -> bool:
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, but the metrics are {sorted(logs)}"
                + (" (pass val_data to fit)" if self.monitor.startswith("val_") else "")
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            # A copy: fit donates the buffers of the state it trains on.
            self.best_ts = jax.tree.map(jnp.copy, ts) if self.restore_best else None
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, ts: TrainState) -> TrainState:
        return self.best_ts if self.restore_best and self.best_ts is not None else ts


class Checkpoint(Callback):
    """Saves the `TrainState` every ``every`` epochs, keeping the newest ``keep`` files.

    Files are ``directory/epoch-0007.ckpt``, written atomically by
    `funcnets.checkpoint.save` and read back with
    ``fn.checkpoint.load(path, like=ts)``. `latest` finds the newest one.
    """

    PATTERN = re.compile(r"epoch-(\d+)\.ckpt$")

    def __init__(
        self, directory: str | os.PathLike[str], every: int = 1, keep: int | None = 3
    ) -> None:
        if every < 1 or (keep is not None and keep < 1):
            raise ValueError(f"Checkpoint: every and keep must be >= 1, got {every}, {keep}")
        self.directory, self.every, self.keep = Path(directory), every, keep

    def on_train_begin(self, ts: TrainState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch: int, ts: TrainState, logs: Mapping[str, float]) -> bool:
        if epoch % self.every == 0:
            checkpoint.save(self.directory / f"epoch-{epoch:04d}.ckpt", ts)
            if self.keep is not None:
                for old in self.files(self.directory)[: -self.keep]:
                    old.unlink()
        return False

    @classmethod
    def files(cls, directory: str | os.PathLike[str]) -> list[Path]:
        """The checkpoint files in ``directory``, oldest first."""
        found = [p for p in Path(directory).glob("epoch-*.ckpt") if cls.PATTERN.search(p.name)]
        return sorted(found, key=lambda p: int(cls.PATTERN.search(p.name).group(1)))

    @classmethod
    def latest(cls, directory: str | os.PathLike[str]) -> Path | None:
        """The newest checkpoint file in ``directory``, or None."""
        files = cls.files(directory)
        return files[-1] if files else None


class CSVLogger(Callback):
    """Appends one row of metrics per epoch to a CSV file (header on the first row)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def on_train_begin(self, ts: TrainState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] | None = None

    def on_epoch_end(self, epoch: int, ts: TrainState, logs: Mapping[str, float]) -> bool:
        row = {"epoch": epoch, **logs}
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self.columns])
        return False
