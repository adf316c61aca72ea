"""Data parallelism and FSDP over a `jax.sharding.Mesh` with an axis named ``"data"``.

Data parallelism: every minibatch is split over the mesh's ``"data"`` axis
(each of its ``D`` devices computes ``1/D`` of the examples), the training
state is replicated, and XLA's SPMD partitioner (GSPMD) inserts the
all-reduces that make every reduction over the batch global: the mean loss,
its gradients and BatchNorm's batch statistics are those of the whole
minibatch, so training equals one device up to float rounding. (Rounding
can matter where a gradient is zero in exact arithmetic, e.g. a bias just
before BatchNorm: Adam divides its rounding noise by its own size and takes
full steps either way, differently on each layout.) FSDP (fully sharded
data parallelism; ZeRO, Rajbhandari et al. 2020) further splits each large
parameter, and the optimizer state that mirrors it, over the same axis
(`fsdp_shardings`); XLA gathers a parameter where it is used, choosing the
collectives itself.

How a batch whose size ``B`` is not divisible by ``D`` is split (decision):
the engine works on an Auto-axes view of the user's mesh (`auto_mesh`: the
same devices and axis names, every axis `jax.sharding.AxisType.Auto`) and
lays batches out with ``lax.with_sharding_constraint`` inside the compiled
step. On Auto axes the partitioner accepts any ``B``: it pads each shard to
``ceil(B / D)`` rows and masks the padding out of every reduction (the
compiled program compares an iota against ``B`` before each reduce), so the
last, smaller minibatch of an epoch is sharded like the others and its
loss, metrics and BatchNorm statistics are exactly those of its ``B``
examples (measured with JAX 0.10.2; tests/parallel/test_data_parallel.py
checks both the batch's sharding inside the step and equality with one
device). On Explicit axes
(what ``jax.make_mesh`` makes by default) ``jax.sharding.reshard`` refuses
such a batch ("does not evenly divide"), and padding by hand would need a
mask threaded through every user's loss and metric; the Auto view needs
neither, and works for divisible batches alike. The step is traced under
``jax.set_mesh`` of that view (see `run`), so a user's own ``jax.set_mesh``
of an Explicit mesh around training does not clash with it; a step is
written as for one device.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

if TYPE_CHECKING:
    from funcnets.train.state import TrainState

DATA = "data"

#: Leaves with fewer elements than this stay replicated under FSDP: for them a
#: per-step all-gather costs more in latency than the memory it saves.
FSDP_MIN_SIZE = 1024


def check_mesh(mesh: Any, what: str = "mesh") -> Mesh:
    """Returns ``mesh`` if it is a `jax.sharding.Mesh` with an axis ``"data"``; else raises.

    Example:
        >>> import jax
        >>> from funcnets.parallel.sharding import check_mesh, data_mesh
        >>> check_mesh(data_mesh()).axis_names
        ('data',)
    """
    if not isinstance(mesh, Mesh):
        raise ValueError(f"{what} must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if DATA not in mesh.axis_names:
        raise ValueError(f"{what} needs an axis named 'data', got axes {mesh.axis_names}")
    return mesh


def data_mesh(devices: Any = None) -> Mesh:
    """A one-axis mesh ``("data",)`` over ``devices`` (default: every device of every host).

    Its axis is Auto (GSPMD), the type training uses inside (module
    docstring); any mesh with a ``"data"`` axis is accepted by ``run`` and
    ``fit`` all the same.

    Example:
        >>> import jax
        >>> from funcnets.parallel.sharding import data_mesh
        >>> mesh = data_mesh()
        >>> mesh.axis_names, mesh.shape["data"] == jax.device_count()
        (('data',), True)
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return jax.make_mesh((len(devices),), (DATA,), axis_types=(AxisType.Auto,), devices=devices)


def auto_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` with every axis Auto: the same devices, axis names and shape.

    Example:
        >>> import jax
        >>> from funcnets.parallel.sharding import auto_mesh
        >>> auto_mesh(jax.make_mesh((1,), ("data",))).axis_types
        (Auto,)
    """
    check_mesh(mesh)
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * mesh.devices.ndim)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Examples (the leading axis) split over ``"data"``, on `auto_mesh` of ``mesh``.

    Example:
        >>> from funcnets.parallel.sharding import batch_sharding, data_mesh
        >>> batch_sharding(data_mesh()).spec
        P('data',)
    """
    return NamedSharding(auto_mesh(mesh), PartitionSpec(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    """A whole copy on every device of ``mesh`` (on `auto_mesh` of it).

    Example:
        >>> from funcnets.parallel.sharding import data_mesh, replicated
        >>> replicated(data_mesh()).is_fully_replicated
        True
    """
    return NamedSharding(auto_mesh(mesh), PartitionSpec())


def fsdp_spec(shape: tuple[int, ...], devices: int, min_size: int = FSDP_MIN_SIZE) -> PartitionSpec:
    """The FSDP layout of one array of ``shape`` over ``devices`` devices on ``"data"``.

    The rule: an array of at least ``min_size`` elements is split along its
    largest axis whose length ``devices`` divides (the first of equally long
    ones), so each device holds ``1/devices`` of it; a smaller array, or one
    with no such axis, is replicated (``P()``).

    Example:
        >>> from funcnets.parallel.sharding import fsdp_spec
        >>> fsdp_spec((64, 256), 4), fsdp_spec((6, 250), 4), fsdp_spec((10,), 4)
        (P(None, 'data'), P(), P())
    """
    if math.prod(shape) < min_size:
        return PartitionSpec()
    divisible = [(length, -axis) for axis, length in enumerate(shape) if length % devices == 0]
    if not divisible:
        return PartitionSpec()
    axis = -max(divisible)[1]
    return PartitionSpec(*[None] * axis, DATA)


def fsdp_shardings(tree: Any, mesh: Mesh, *, min_size: int = FSDP_MIN_SIZE) -> Any:
    """FSDP shardings of every leaf of ``tree`` (arrays or ``jax.ShapeDtypeStruct``).

    Each leaf's layout follows `fsdp_spec` with the size of ``mesh``'s
    ``"data"`` axis (the mesh's other axes, if any, hold copies); the
    shardings live on `auto_mesh` of ``mesh``.

    Args:
        tree: a pytree of arrays, e.g. parameters or an optimizer state.
        mesh: a mesh with an axis ``"data"``.
        min_size: leaves with fewer elements are replicated.

    Returns:
        a pytree of `jax.sharding.NamedSharding` shaped like ``tree``.

    Example:
        >>> import jax.numpy as jnp
        >>> from funcnets.parallel.sharding import data_mesh, fsdp_shardings
        >>> params = {"w": jnp.zeros((64, 256)), "b": jnp.zeros(256)}
        >>> shardings = fsdp_shardings(params, data_mesh())
        >>> {name: s.spec for name, s in shardings.items()}
        {'b': P(), 'w': P(None, 'data')}
    """
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ValueError(f"min_size must be an int >= 0, got {min_size!r}")
    view = auto_mesh(mesh)
    devices = view.shape[DATA]
    return jax.tree.map(
        lambda leaf: NamedSharding(view, fsdp_spec(tuple(np.shape(leaf)), devices, min_size)),
        tree,
    )


def put(tree: Any, shardings: Any) -> Any:
    """`jax.device_put` of ``tree`` by ``shardings`` (one sharding, or a matching tree), keys too.

    ``device_put`` places arrays on devices of other processes (every process
    passing the same value), but not a typed PRNG key array (JAX 0.10 refuses
    it): keys travel as their ``key_data`` and are wrapped again.

    Example:
        >>> import jax
        >>> from funcnets.parallel.sharding import data_mesh, put, replicated
        >>> key = put({"key": jax.random.key(0)}, replicated(data_mesh()))["key"]
        >>> key.dtype, key.sharding.is_fully_replicated
        (key<fry>, True)
    """
    if isinstance(shardings, jax.sharding.Sharding):
        shardings = jax.tree.map(lambda _: shardings, tree)

    def one(leaf: Any, sharding: jax.sharding.Sharding) -> Any:
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(leaf)), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        return jax.device_put(leaf, sharding)

    return jax.tree.map(one, tree, shardings)


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """``batch`` (a pytree of arrays sharing a leading example axis) placed on ``mesh``.

    Split over ``"data"`` (`batch_sharding`) when the axis' size divides the
    batch; otherwise replicated, for a compiled step's sharding constraint to
    split unevenly (module docstring): ``device_put`` lays out only even
    splits. Either way the compiled step gets committed inputs, never an
    input layout left for XLA to choose (which may be one that no
    `NamedSharding` of ``mesh`` can express).

    Example:
        >>> import jax.numpy as jnp
        >>> from funcnets.parallel.sharding import data_mesh, shard_batch
        >>> x, y = shard_batch((jnp.zeros((8, 3)), jnp.zeros(8)), data_mesh())
        >>> x.sharding.spec, y.sharding.spec
        (P('data',), P('data',))
    """
    view = auto_mesh(mesh)
    leaves = jax.tree.leaves(batch)
    if leaves and np.shape(leaves[0])[0] % view.shape[DATA] == 0:
        return jax.device_put(batch, NamedSharding(view, PartitionSpec(DATA)))
    return jax.device_put(batch, NamedSharding(view, PartitionSpec()))


def state_shardings(ts: TrainState, mesh: Mesh, *, fsdp: bool = False) -> TrainState:
    """Shardings of a whole `TrainState` for training on ``mesh``.

    Everything is replicated, except under ``fsdp`` the parameters and the
    optimizer state, laid out by `fsdp_shardings` (BatchNorm statistics, the
    step, key and epoch stay replicated).

    Example:
        >>> import jax, funcnets as fn
        >>> from funcnets.parallel.sharding import data_mesh, state_shardings
        >>> ts = fn.train.init(fn.Dense(256), fn.optim.adam(1e-3), jax.random.key(0), (8, 64))
        >>> layout = state_shardings(ts, data_mesh(), fsdp=True)
        >>> layout.params["w"].spec, layout.opt_state[0].mu["w"].spec, layout.step.spec
        (P(None, 'data'), P(None, 'data'), P())
    """
    copy = replicated(mesh)
    everywhere = jax.tree.map(lambda _: copy, ts)
    if not fsdp:
        return everywhere
    return everywhere._replace(
        params=fsdp_shardings(ts.params, mesh), opt_state=fsdp_shardings(ts.opt_state, mesh)
    )
