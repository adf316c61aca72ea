"""Training beyond one device, on JAX's own runtime (`jax.sharding`, `jax.distributed`).

- `initialize`: join a multi-process run (a thin layer over
  `jax.distributed.initialize`: explicit arguments, torchrun-style environment
  variables, or JAX's own cluster detection such as SLURM); `launch_arguments`
  resolves the same settings without starting anything; `is_main_process`.

Checkpoints (`fn.checkpoint.save`, `fn.train.Checkpoint`) are written by
process 0 alone and can be loaded by every process, on any device count.
See docs/parallel.md for the launch recipes.
"""

from funcnets.parallel.distributed import initialize, is_main_process, launch_arguments

__all__ = ["initialize", "is_main_process", "launch_arguments"]
