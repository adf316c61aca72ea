"""What a run measures: the workloads, the frameworks, the precisions, and how many repetitions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BATCH = 128
LEARNING_RATE = 1e-3
SEED = 0

WORKLOADS = {
    "mlp": "MLP 784-512-512-10",
    "lenet5": "LeNet-5",
    "lenet5_relu": "LeNet-5, ReLU + max-pool",
    "vgg": "VGG-style CNN",
    "resnet20": "ResNet-20",
    "lstm": "LSTM 28x28, h128",
    "gru": "GRU 28x28, h128",
}
# --quick on CPU runs these unless --workloads says otherwise (the convolutional VGG and
# ResNet-20 steps take 0.1-1 s each on 2 CPU cores); a full run, or --quick on a GPU, runs all.
QUICK_WORKLOADS = ("mlp", "lenet5", "lstm")
# A full CPU run times these over fewer steps per repetition and shorter epochs: their
# steps take 0.2-0.5 s on 2 cores, so a 60,000-sample epoch would take 2-4 minutes for each
# framework and repetition. Options given on the command line take precedence.
CPU_HEAVY_WORKLOADS = {"vgg": {"steps_per_rep": 5, "epoch_samples": 6_400},
                       "resnet20": {"steps_per_rep": 5, "epoch_samples": 6_400}}  # fmt: skip
# Flax NNX and Equinox mirrors exist for these only (benchmarks/jax_frameworks.py).
JAX_FRAMEWORK_WORKLOADS = ("mlp", "lenet5", "lstm")
# "baseline" is the hand-written jax + optax step (benchmarks/baseline.py).
FRAMEWORKS = ("baseline", "funcnets", "torch", "flax", "equinox")
# --quick keeps to these unless --frameworks names others: all five took 2m03s on 2 cores.
QUICK_FRAMEWORKS = ("baseline", "funcnets", "torch")
# Compute precisions: float32 throughout, or bfloat16 arithmetic around float32 master
# parameters (funcnets: fn.precision.with_policy(net, "bf16"); the baseline casts params and
# inputs inside its loss; torch: torch.autocast). Flax and Equinox run float32 only.
PRECISIONS = ("float32", "bf16")


def case(workload: str, precision: str) -> str:
    """The key of one column of the report: ``"mlp"`` (float32) or ``"mlp/bf16"``."""
    return workload if precision == "float32" else f"{workload}/{precision}"


def split_case(key: str) -> tuple[str, str]:
    """``(workload, precision)`` of a `case` key."""
    workload, _, precision = key.partition("/")
    return workload, precision or "float32"


def case_label(key: str) -> str:
    """The column heading of a case: the workload's name, and the precision unless float32."""
    workload, precision = split_case(key)
    return WORKLOADS[workload] + ("" if precision == "float32" else f" ({precision})")


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
    peak_size: int | None = None  # the square matmul of the peak rate; None: 1024 CPU, 4096 GPU
    given: tuple[str, ...] = ()  # the fields set on the command line (kept per workload)

    @classmethod
    def for_run(cls, quick: bool, device: str = "cpu", **overrides: int | None) -> Settings:
        """The full settings, or the ``--quick`` ones (a few minutes in all)."""
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
        return dataclasses.replace(base, **given, given=tuple(given))

    def for_workload(self, workload: str) -> Settings:
        """These settings, with `CPU_HEAVY_WORKLOADS`' sizes for ``workload`` in a full CPU run."""
        if self.quick or self.device != "cpu" or workload not in CPU_HEAVY_WORKLOADS:
            return self
        sizes = CPU_HEAVY_WORKLOADS[workload]
        return dataclasses.replace(self, **{k: v for k, v in sizes.items() if k not in self.given})

    @property
    def matmul_size(self) -> int:
        """The side of the square matmul whose best rate is the measured peak."""
        return self.peak_size or (4096 if self.device == "gpu" else 1024)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        return cls(**{**data, "given": tuple(data.get("given", ()))})
