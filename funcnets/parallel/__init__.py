"""Training beyond one device, on JAX's own runtime (`jax.sharding`, `jax.distributed`).

- Data parallel: ``fit(..., mesh=fn.parallel.data_mesh())`` or ``run(...,
  mesh=...)`` on any mesh with an axis ``"data"`` (made by `jax.make_mesh` or
  `jax.sharding.Mesh`): each batch split over ``"data"`` (unevenly when the
  devices do not divide it: XLA pads and masks), the state replicated, the
  results those of one device. ``fsdp=True`` shards the parameters and the
  optimizer state too (`fsdp_shardings`), gathered where used.
- `data_mesh`, `auto_mesh`, `batch_sharding`, `replicated`, `fsdp_spec`,
  `fsdp_shardings`, `state_shardings`, `shard_batch`, `put`: the layouts.
- `initialize`: join a multi-process run (a thin layer over
  `jax.distributed.initialize`: explicit arguments, torchrun-style environment
  variables, or JAX's own cluster detection such as SLURM); `launch_arguments`
  resolves the same settings without starting anything; `is_main_process`.

Checkpoints (`fn.checkpoint.save`, `fn.train.Checkpoint`) are written by
process 0 alone and can be loaded by every process, on any device count.
See docs/parallel.md for the launch recipes.
"""

from funcnets.parallel.distributed import initialize, is_main_process, launch_arguments
from funcnets.parallel.sharding import (
    FSDP_MIN_SIZE,
    auto_mesh,
    batch_sharding,
    data_mesh,
    fsdp_shardings,
    fsdp_spec,
    put,
    replicated,
    shard_batch,
    state_shardings,
)

__all__ = [
    "FSDP_MIN_SIZE",
    "auto_mesh",
    "batch_sharding",
    "data_mesh",
    "fsdp_shardings",
    "fsdp_spec",
    "initialize",
    "is_main_process",
    "launch_arguments",
    "put",
    "replicated",
    "shard_batch",
    "state_shardings",
]
