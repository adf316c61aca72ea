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
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from funcnets import checkpoint
from funcnets.train.state import TrainState
from funcnets.train.step import all_finite


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
    ``min_delta``: lower is better with ``mode="min"``, higher with
    ``"max"``; ``"auto"`` picks ``"max"`` for names containing "acc" and
    ``"min"`` otherwise. After ``patience`` epochs in a row without
    improvement, training stops. With ``restore_best``, training returns the
    `TrainState` as it was at the end of the best epoch (params, state,
    optimizer state, step and key), so a later run resumes from there.

    Attributes (read after training):
        best: the best value of ``monitor`` seen (NaN before any epoch).
        best_epoch: the epoch that reached it (0 before any epoch).
        stopped_epoch: the epoch after which training stopped (0 if it ran
            all its epochs).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best: bool = True,
        mode: str = "auto",
    ) -> None:
        if patience < 0 or min_delta < 0:
            raise ValueError(
                f"EarlyStopping: patience and min_delta must be >= 0, got {patience}, {min_delta}"
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(f'EarlyStopping: mode must be "auto", "min" or "max", got {mode!r}')
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        self.higher_is_better = mode == "max" or (mode == "auto" and "acc" in monitor)

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
            # A copy: the engine donates the buffers of the state it trains on.
            self.best_ts = jax.tree.map(jnp.copy, ts) if self.restore_best else None
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, ts: TrainState) -> TrainState:
        return self.best_ts if self.restore_best and self.best_ts is not None else ts


_all_finite = jax.jit(all_finite)  # one compile per state structure, not one op per leaf


def _key_data(ts: TrainState) -> list[int]:
    return np.asarray(jax.random.key_data(ts.key)).ravel().tolist()


class Checkpoint(Callback):
    """Saves the `TrainState` every ``every`` epochs, keeping this run's newest ``keep`` files.

    A directory may hold several runs, and a run never touches another's
    files. Each file is ``directory/epoch-0007-<run>.ckpt``, written atomically
    by `funcnets.checkpoint.save` with metadata ``{"run", "epoch", "step",
    "key"}`` plus ``metadata`` (e.g. the run's configuration, for
    ``fn.checkpoint.load(..., expect=...)``), and read back with
    ``fn.checkpoint.load(path, like=ts)``. A run that starts from a state
    saved in ``directory`` (same step and key) continues that run's files;
    any other run gets a new run id, and a warning when the directory already
    holds other runs' checkpoints, which it never rotates away. `latest`
    finds the newest file of the run written last.

    In a multi-process run (`fn.parallel.initialize`) every process runs the
    callback: process 0 alone names the run, writes and rotates the files,
    and every process continues once each file is in place, so any of them
    can resume from it (through a file system they share).
    """

    PATTERN = re.compile(r"epoch-(\d+)(?:-([0-9a-f]+))?\.ckpt$")

    def __init__(
        self,
        directory: str | os.PathLike[str],
        every: int = 1,
        keep: int | None = 3,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if every < 1 or (keep is not None and keep < 1):
            raise ValueError(f"Checkpoint: every and keep must be >= 1, got {every}, {keep}")
        self.directory, self.every, self.keep = Path(directory), every, keep
        self.metadata = dict(metadata or {})
        self.run: str | None = None

    def on_train_begin(self, ts: TrainState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        run = self._find_run(ts) if jax.process_index() == 0 else ""
        self.run = _from_process_zero(run)

    def _find_run(self, ts: TrainState) -> str:
        """The run that ``ts`` continues (by step and key), or a new run id."""
        found = self.files(self.directory)
        step, key = int(ts.step), _key_data(ts)
        for path in found:
            meta = _metadata(path)
            run = meta.get("run")
            if meta.get("step") == step and meta.get("key") == key and _is_run_id(run):
                return run
        run = secrets.token_hex(4)
        if found:
            warnings.warn(
                f"Checkpoint: {self.directory} already holds {len(found)} checkpoint(s) of "
                f"other runs ({found[0].name} ...); they are kept, and this run's files are "
                f"named epoch-NNNN-{run}.ckpt",
                stacklevel=3,
            )
        return run

    def on_epoch_end(self, epoch: int, ts: TrainState, logs: Mapping[str, float]) -> bool:
        if epoch % self.every == 0:
            if not bool(_all_finite(ts.params, ts.state, ts.opt_state)):
                raise FloatingPointError(
                    f"Checkpoint: the state after epoch {epoch} is not finite; not saved"
                )
            meta = {**self.metadata, "run": self.run, "epoch": epoch, "step": int(ts.step),
                    "key": _key_data(ts)}  # fmt: skip
            checkpoint.save(self.directory / f"epoch-{epoch:04d}-{self.run}.ckpt", ts,
                            metadata=meta)  # fmt: skip
            if self.keep is not None and jax.process_index() == 0:
                for old in self.files(self.directory, run=self.run)[: -self.keep]:
                    old.unlink()
        return False

    @classmethod
    def files(cls, directory: str | os.PathLike[str], run: str | None = None) -> list[Path]:
        """The checkpoint files in ``directory`` (of one ``run``, if given), oldest first.

        Oldest means written first (then lower epoch first).
        """
        found = []
        for path in Path(directory).glob("epoch-*.ckpt"):
            if cls.PATTERN.search(path.name):
                epoch, owner = cls._parse(path)
                if run is None or owner == run:
                    try:
                        found.append((path.stat().st_mtime_ns, epoch, path))
                    except FileNotFoundError:  # removed meanwhile, by another process's rotation
                        continue
        return [path for *_, path in sorted(found)]

    @classmethod
    def latest(cls, directory: str | os.PathLike[str]) -> Path | None:
        """The newest checkpoint of the run that wrote last in ``directory``, or None."""
        files = cls.files(directory)
        if not files:
            return None
        run = cls._parse(files[-1])[1]
        return max((p for p in files if cls._parse(p)[1] == run), key=lambda p: cls._parse(p)[0])

    @classmethod
    def _parse(cls, path: Path) -> tuple[int, str | None]:
        """``(epoch, run)`` of a checkpoint file's name (run None for unnamed old files)."""
        match = cls.PATTERN.search(path.name)
        if match is None:
            raise ValueError(f"{path.name} is not a checkpoint file name")
        return int(match.group(1)), match.group(2)


def _is_run_id(run: Any) -> TypeGuard[str]:
    """Whether ``run`` (from a file's metadata) can name this run's files: 1 to 64 hex digits."""
    return isinstance(run, str) and re.fullmatch(r"[0-9a-f]{1,64}", run) is not None


def _from_process_zero(text: str) -> str:
    """Process 0's ``text`` (at most 64 ASCII characters), in every process."""
    if jax.process_count() == 1:
        return text
    codes = np.zeros(64, np.int32)
    codes[: len(text)] = np.frombuffer(text.encode("ascii"), np.uint8)
    received = np.asarray(multihost_utils.broadcast_one_to_all(codes))
    return bytes(received[received > 0].astype(np.uint8)).decode("ascii")


def _metadata(path: Path) -> dict:
    try:
        return checkpoint.read_metadata(path)
    except (checkpoint.CheckpointError, OSError):
        return {}


class CSVLogger(Callback):
    """Writes one row of metrics per epoch to a CSV file, continuing it across resumes.

    A run that continues from epoch ``e`` (``ts.epoch``) keeps the file's rows
    of epochs ``1..e`` and drops later ones (epochs of an interrupted attempt
    that are trained again), so every epoch appears once. A fresh run
    (``ts.epoch == 0``) refuses a file holding another run's log unless
    ``overwrite=True``. The file is rewritten atomically after each epoch;
    new metric names become new columns. With several processes, process 0
    writes it.
    """

    def __init__(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        self.path, self.overwrite = Path(path), overwrite

    def on_train_begin(self, ts: TrainState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] = ["epoch"]
        self.rows: list[dict[str, str]] = []
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        start = int(ts.epoch)
        if start == 0 and not self.overwrite:
            raise ValueError(
                f"CSVLogger: {self.path} holds the log of another run; pass a new path, or "
                "overwrite=True to replace it"
            )
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            self.columns = list(reader.fieldnames or ["epoch"])
            self.rows = [row for row in reader if start and int(row["epoch"]) <= start]

    def on_epoch_end(self, epoch: int, ts: TrainState, logs: Mapping[str, float]) -> bool:
        row = {"epoch": str(epoch), **{k: repr(float(v)) for k, v in logs.items()}}
        self.columns += [name for name in row if name not in self.columns]
        self.rows.append(row)
        if jax.process_index() != 0:  # every process has the same logs; process 0 writes them
            return False
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)
        return False
