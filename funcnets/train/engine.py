"""The guarded step and the cache of its compiled runners.

`Engine` wraps a user's ``step(ts, batch) -> (ts, metrics)`` with the
non-finite guard and the per-epoch metric sums, and compiles it once per
``(steps, batch_size)``: one minibatch from a permutation, ``steps`` of them
in a ``lax.scan``, or a given batch (the iterator path). The sums and the
state are donated, so parameters are updated in place.

The guard: a step is good when its metrics are finite and, if it reports
``metrics["finite"]`` (funcnets' steps do), that flag is True; such a step
promises that it applied nothing when it says False. For a step that does
not report it, the engine checks the new params, state and optimizer state
itself and falls back to the old ones (a select over the state: one more pass
over it per step). With ``on_nan="raise"`` the state freezes at the last good
step (no later step runs) and `run` raises once the compiled call returns;
with ``"skip"`` a bad step is dropped and the next one runs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from funcnets.train.state import TrainState
from funcnets.train.step import FINITE, Step, all_finite, either

Sums = dict[str, jax.Array]


class Layout(NamedTuple):
    """Where training's arrays live on a mesh (funcnets.parallel.sharding)."""

    mesh: jax.sharding.Mesh  #: the user's mesh with Auto axes, where all of the below live
    batch: jax.sharding.NamedSharding  #: every minibatch leaf, split over "data"
    state: TrainState  #: a NamedSharding per leaf of the TrainState
    replicated: jax.sharding.NamedSharding  #: everything else (the epoch's sums)


def batch_size_of(batch: Any) -> int:
    """The leading (example) dimension shared by every leaf of ``batch``."""
    return jax.tree.leaves(batch)[0].shape[0]


class Engine:
    """The compiled pieces of one run of ``step``; see the module docstring."""

    def __init__(
        self,
        step: Step,
        metric_shapes: dict[str, Any],
        on_nan: str,
        layout: Layout | None = None,
    ) -> None:
        self.step, self.on_nan, self.layout = step, on_nan, layout
        self.names = sorted(set(metric_shapes) - {FINITE}, key=lambda n: (n != "loss", n))
        self.zero_metrics = {n: jnp.zeros((), metric_shapes[n].dtype) for n in self.names}
        self.runners: dict[Any, jax.stages.Wrapped] = {}

    def empty_sums(self) -> Sums:
        """The per-epoch accumulator: metric sums, example count, first bad step, skips."""
        sums = {name: jnp.zeros((), jnp.float32) for name in self.names}
        sums["count"] = jnp.zeros((), jnp.float32)
        sums["bad_step"] = jnp.full((), -1, jnp.int32)
        sums["skipped"] = jnp.zeros((), jnp.int32)
        return sums if self.layout is None else jax.device_put(sums, self.layout.replicated)

    def _attempt(self, ts: TrainState, batch: Any) -> tuple[TrainState, dict, jax.Array]:
        """Runs the step; returns the state to keep, its metrics and whether it was good."""
        new_ts, metrics = self.step(ts, batch)
        metrics = dict(metrics)
        vouched = metrics.pop(FINITE, None)
        values = {name: metrics[name] for name in self.names}
        if vouched is not None:
            ok = all_finite(values) & vouched
        else:
            trained = (new_ts.params, new_ts.state, new_ts.opt_state)
            ok = all_finite(values, trained)
            before = (ts.params, ts.state, ts.opt_state)
            kept = jax.tree.map(lambda a, b: jnp.where(ok, a, b), trained, before)
            new_ts = new_ts._replace(params=kept[0], state=kept[1], opt_state=kept[2])
        if self.on_nan == "raise":  # freeze at the last good state: run raises afterwards
            new_ts = new_ts._replace(step=jnp.where(ok, new_ts.step, ts.step))
        return new_ts, values, ok

    def guarded(self, ts: TrainState, sums: Sums, batch: Any) -> tuple[TrainState, Sums]:
        """One step, guarded, with its metrics added to the epoch's sums."""
        if self.layout is not None:
            batch = lax.with_sharding_constraint(batch, self.layout.batch)
        no_bad_yet = sums["bad_step"] < 0
        new_ts, values, ok = self._attempt(ts, batch)
        if self.on_nan == "raise":  # after a bad step, later steps of the call change nothing
            # The step runs either way and only its result is chosen: a step inside a
            # conditional runs its convolutions 20x slower on CPU (benchmarks/README.md).
            new_ts, values, ok = either(
                no_bad_yet,
                lambda: (new_ts, values, ok),
                lambda: (ts, self.zero_metrics, jnp.asarray(False)),
            )
        weight = jnp.where(ok, jnp.float32(batch_size_of(batch)), 0.0)
        new_sums = {
            name: sums[name] + jnp.where(ok, values[name].astype(jnp.float32), 0.0) * weight
            for name in self.names
        }
        new_sums["count"] = sums["count"] + weight
        new_sums["bad_step"] = jnp.where(no_bad_yet & ~ok, ts.step, sums["bad_step"])
        new_sums["skipped"] = sums["skipped"] + (~ok).astype(jnp.int32)
        if self.layout is not None:
            new_ts = lax.with_sharding_constraint(new_ts, self.layout.state)
        return new_ts, new_sums

    def runner(self, steps: int, batch_size: int) -> jax.stages.Wrapped:
        """A compiled call training on ``steps`` minibatches of ``batch_size`` from a permutation.

        ``run(ts, sums, data, perm, offset)`` trains on ``data[perm[offset:]]``
        in order, one minibatch after another; ``ts`` and ``sums`` are donated.
        """
        if (steps, batch_size) not in self.runners:

            def one(carry, i, data, perm, offset):
                idx = lax.dynamic_slice_in_dim(perm, offset + i * batch_size, batch_size)
                return self.guarded(*carry, jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data))

            def run(ts, sums, data, perm, offset):
                if steps == 1:
                    return one((ts, sums), 0, data, perm, offset)
                body = lambda carry, i: (one(carry, i, data, perm, offset), None)
                return lax.scan(body, (ts, sums), jnp.arange(steps))[0]

            self.runners[steps, batch_size] = jax.jit(run, donate_argnums=(0, 1))
        return self.runners[steps, batch_size]

    def batch_runner(self) -> jax.stages.Wrapped:
        """A compiled step on a given batch (the iterator path): ``(ts, sums, batch)``."""
        if "batch" not in self.runners:
            self.runners["batch"] = jax.jit(self.guarded, donate_argnums=(0, 1))
        return self.runners["batch"]
