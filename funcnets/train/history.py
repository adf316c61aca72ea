"""`History`: per-epoch metrics of a run, saved as JSON and drawn as curves."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class History(Mapping[str, list[float]]):
    """Per-epoch metrics: ``history["val_loss"]`` is a list with one float per epoch.

    Names are ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` and any
    user metric's name (with ``val_`` for its validation value).
    """

    def __init__(self, metrics: Mapping[str, list[float]] | None = None) -> None:
        self._metrics: dict[str, list[float]] = {k: list(v) for k, v in (metrics or {}).items()}

    def append(self, logs: Mapping[str, float]) -> None:
        """Adds one epoch's values."""
        for name, value in logs.items():
            self._metrics.setdefault(name, []).append(float(value))

    def __getitem__(self, name: str) -> list[float]:
        return self._metrics[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._metrics)

    def __len__(self) -> int:
        return len(self._metrics)

    def first(self, epochs: int) -> History:
        """The history of the first ``epochs`` epochs (what a run resumed there had)."""
        return History({name: values[:epochs] for name, values in self._metrics.items()})

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return max((len(v) for v in self._metrics.values()), default=0)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self._metrics.items() if v)
        return f"History({self.epochs} epochs: {last})"

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Writes ``{name: [value per epoch]}`` as JSON, atomically (temp file, rename)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self._metrics, indent=1))
        os.replace(tmp, target)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> History:
        """Reads a History written by `to_json`."""
        with open(path) as f:
            return cls(json.load(f))

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """Draws loss and metric curves (train and validation); returns the figure.

        One panel for the losses (if any) and one for every other metric, x-axis in
        epochs, on matplotlib's non-interactive Agg backend. With ``path`` the
        figure is also saved there as PNG; without, a notebook shows the
        returned figure.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        names = {k.removeprefix("val_") for k in self._metrics}
        panels = ["loss"] * ("loss" in names) + sorted(names - {"loss"}) or ["loss"]
        figure = Figure(figsize=(5 * len(panels), 4))
        FigureCanvasAgg(figure)
        for axes, panel in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
            for name, style in ((panel, "-"), (f"val_{panel}", "--")):
                if name in self._metrics:
                    values = self._metrics[name]
                    axes.plot(range(1, len(values) + 1), values, style, marker=".", label=name)
            axes.set_xlabel("epoch")
            axes.set_title(panel)
            axes.grid(alpha=0.3)
            if axes.lines:
                axes.legend()
        figure.tight_layout()
        if path is not None:
            figure.savefig(path, dpi=100)
        return figure
