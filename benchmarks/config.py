"""What a run measures: the workloads, the frameworks, and how many repetitions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BATCH = 128
LEARNING_RATE = 1e-3
SEED = 0

WORKLOADS = {
    "mlp": "MLP 784-512-512-10",
    "lenet5": "LeNet-5",
    "lstm": "LSTM 28x28, h128",
}
# "baseline" is the hand-written jax + optax step (benchmarks/baseline.py).
FRAMEWORKS = ("baseline", "funcnets", "torch", "flax", "equinox")
# --quick keeps to these unless --frameworks names others: all five took 2m03s on 2 cores.
QUICK_FRAMEWORKS = ("baseline", "funcnets", "torch")


@dataclass(frozen=True)
class Settings:
    """Repetition counts and sizes; every timed number is a median over ``reps``.

    A step repetition times ``steps_per_rep`` consecutive steps ended by one
    ``block_until_ready`` (per-step time = the repetition's time / steps);
    an epoch repetition times one pass over ``epoch_samples`` samples.
    """

    quick: bool = False
    reps: int = 7
    steps_per_rep: int = 20
    warmup_steps: int = 5
    step_batches: int = 8  # distinct pre-made batches the step benchmarks cycle through
    epoch_samples: int = 60_000
    epoch_reps: int = 5
    batch: int = BATCH
    seed: int = SEED
    device: str = "cpu"
    donated: bool = True  # also time the steps jitted with donate_argnums
    rounds: int = 1  # processes per framework and workload, interleaved; medians across them
    torch_threads: int | None = None  # None: PyTorch's default (one per core)

    @classmethod
    def for_run(cls, quick: bool, device: str = "cpu", **overrides: int | None) -> Settings:
        """The full settings, or the ``--quick`` ones (the whole run in under 2 minutes)."""
        base = cls(
            quick=quick,
            device=device,
            **(
                dict(reps=5, steps_per_rep=4, warmup_steps=2, epoch_samples=1_280, epoch_reps=3)
                if quick
                else {}
            ),
        )
        given = {name: value for name, value in overrides.items() if value is not None}
        return dataclasses.replace(base, **given)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        return cls(**data)
