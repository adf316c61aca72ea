"""Several processes, one training run: a thin layer over `jax.distributed.initialize`.

JAX's own multi-controller runtime is the distributed engine; funcnets adds none. Every process
runs the same script on its own host (or its own devices of a host), calls `initialize` before
any other JAX call, and from then on ``jax.devices()`` lists the devices of every process, so a
mesh over them (``fn.parallel.data_mesh()``) spans the whole cluster and ``fit(..., mesh=...)``
trains on all of them at once: each process feeds the same data and holds a copy of the
replicated state, and XLA's collectives (NCCL on GPUs; Gloo on CPUs) keep the copies equal.

`initialize` finds the cluster's description in one of three places, first match wins:

1. its arguments: ``coordinator_address`` (``"host:port"`` of process 0), ``num_processes`` and
   ``process_id``;
2. torchrun-style environment variables ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``,
   ``RANK`` (set by hand in each host's command, see docs/parallel.md, or by ``torchrun``);
   ``JAX_COORDINATOR_PORT``, if set, replaces ``MASTER_PORT`` (under ``torchrun``, whose own
   rendezvous store listens on ``MASTER_PORT``), and ``JAX_COORDINATOR_ADDRESS`` replaces both;
   ``LOCAL_RANK`` with ``LOCAL_WORLD_SIZE > 1`` (one process per GPU) limits the process to that
   one local device, as JAX does under SLURM;
3. JAX's own detection, when neither gives anything: SLURM (``srun``), Open MPI
   (``mpirun``), Cloud TPU, and ``JAX_COORDINATOR_ADDRESS`` (see `jax.distributed.initialize`).

A description that is incomplete or inconsistent (a rank not below the world size, an address
without a port) is one ``ValueError`` naming what is wrong, raised before JAX is touched.

CPU collectives: JAX runs cross-process collectives of CPU devices through Gloo over TCP
(``jax_cpu_collectives_implementation="gloo"``, the default of recent JAX); when the platform
is CPU (``JAX_PLATFORMS=cpu``) and the option is unset, as in older JAX, `initialize` sets it,
so several CPU processes on one machine test a multi-host run without a GPU.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax

__all__ = ["initialize", "is_main_process", "launch_arguments"]

#: The torchrun-style variables that together describe a cluster, and what each becomes.
TORCHRUN = {
    "MASTER_ADDR": "coordinator_address",
    "MASTER_PORT": "coordinator_address",
    "WORLD_SIZE": "num_processes",
    "RANK": "process_id",
}


def launch_arguments(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | Sequence[int] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The arguments `initialize` would pass to `jax.distributed.initialize`, checked.

    Explicit arguments come first; the missing ones are read from the torchrun-style variables
    of ``environ`` (see the module docstring). When nothing describes the cluster, every value
    is None: JAX then detects SLURM, Open MPI or a TPU pod itself.

    Args:
        coordinator_address: ``"host:port"`` where process 0 serves the coordinator, e.g.
            ``"10.0.0.1:29500"`` or ``"[fd00::1]:29500"``; every process passes the same one.
        num_processes: how many processes in all (>= 1).
        process_id: this process's rank, ``0 <= process_id < num_processes``.
        local_device_ids: the local devices (GPU ordinals) this process may use; None: all of
            them, or ``LOCAL_RANK`` when ``LOCAL_WORLD_SIZE > 1`` (one process per GPU).
        environ: the environment to read (default ``os.environ``).

    Returns:
        ``{"coordinator_address", "num_processes", "process_id", "local_device_ids"}``.

    Raises:
        ValueError: part of the description is missing, malformed or inconsistent; the message
            names the argument or variable.

    Example:
        >>> env = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "4",
        ...        "RANK": "1"}
        >>> launch_arguments(environ=env)  # doctest: +NORMALIZE_WHITESPACE
        {'coordinator_address': '10.0.0.1:29500', 'num_processes': 4, 'process_id': 1,
         'local_device_ids': None}
    """
    env = os.environ if environ is None else environ
    explicit = (coordinator_address, num_processes, process_id) != (None, None, None)
    set_vars = [name for name in TORCHRUN if env.get(name, "") != ""]
    if not explicit and not set_vars:
        return {
            "coordinator_address": None,
            "num_processes": None,
            "process_id": None,
            "local_device_ids": _device_ids(local_device_ids, env),
        }
    if coordinator_address is None:
        coordinator_address = _address_from(env)
    _check_address(coordinator_address)
    if num_processes is None:
        num_processes = _int_from(env, "WORLD_SIZE", "num_processes")
    if process_id is None:
        process_id = _int_from(env, "RANK", "process_id")
    _check_int(num_processes, "num_processes", 1)
    _check_int(process_id, "process_id", 0)
    if process_id >= num_processes:
        raise ValueError(
            f"process_id (rank) must be below num_processes (world size), got process_id="
            f"{process_id} and num_processes={num_processes}"
        )
    return {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
        "local_device_ids": _device_ids(local_device_ids, env),
    }


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: int | Sequence[int] | None = None,
    **options: Any,
) -> None:
    """Joins this process to a multi-process JAX run; call it first, in every process.

    Resolves the cluster's description with `launch_arguments` (explicit arguments, else
    torchrun-style variables, else JAX's detection of SLURM, Open MPI and TPU pods), sets CPU
    collectives up when the platform is CPU, and calls `jax.distributed.initialize`. Process 0
    serves the coordinator on ``coordinator_address``'s port; the others connect to it, waiting
    up to ``initialization_timeout`` seconds (300 by default). Afterwards
    ``jax.process_index()`` is this process's rank, ``jax.process_count()`` the number of
    processes, ``jax.devices()`` every process's devices and ``jax.local_devices()`` this one's.

    Args:
        coordinator_address: ``"host:port"`` of process 0's coordinator service.
        num_processes: how many processes in all.
        process_id: this process's rank, from 0.
        local_device_ids: the local devices this process may use (see `launch_arguments`).
        **options: passed on to `jax.distributed.initialize` unchanged, e.g.
            ``initialization_timeout=60`` (seconds), ``heartbeat_timeout_seconds``,
            ``coordinator_bind_address``, ``cluster_detection_method``.

    Raises:
        ValueError: the description is incomplete, malformed or inconsistent (nothing is
            started), or nothing describes a cluster (no arguments, no torchrun variables, and
            JAX detects no SLURM, MPI or TPU environment).
        RuntimeError: from JAX: called twice, or after JAX already made its devices.

    Example:
        >>> initialize("10.0.0.1", num_processes=2, process_id=0)
        Traceback (most recent call last):
        ...
        ValueError: coordinator_address must be "host:port", got '10.0.0.1' (no port)
    """
    arguments = launch_arguments(coordinator_address, num_processes, process_id, local_device_ids)
    if _on_cpu() and jax.config.values.get("jax_cpu_collectives_implementation") is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(**arguments, **options)
    except ValueError as error:
        if arguments["coordinator_address"] is not None:
            raise
        raise ValueError(
            "initialize: nothing describes the cluster: pass coordinator_address, "
            "num_processes and process_id; or set MASTER_ADDR, MASTER_PORT, WORLD_SIZE and "
            "RANK in every process; or launch under SLURM (srun), Open MPI (mpirun) or on a "
            f"TPU pod, which JAX detects. (JAX: {error})"
        ) from error


def is_main_process() -> bool:
    """Whether this is process 0, the one that writes files (checkpoints, logs, figures).

    With a single process it is always True. In a multi-process run every process computes
    the same thing, and one writes: ``if fn.parallel.is_main_process(): save_figure(...)``.
    (`fn.checkpoint.save` and `fn.train.Checkpoint` already write from process 0 only; call
    them in every process.)

    Example:
        >>> is_main_process()
        True
    """
    return jax.process_index() == 0


def _address_from(env: Mapping[str, str]) -> str:
    """``JAX_COORDINATOR_ADDRESS``, else ``MASTER_ADDR:PORT`` (an IPv6 host in brackets).

    ``PORT`` is ``JAX_COORDINATOR_PORT`` if set, else ``MASTER_PORT``.
    """
    if env.get("JAX_COORDINATOR_ADDRESS", ""):
        return env["JAX_COORDINATOR_ADDRESS"]
    port_name = "JAX_COORDINATOR_PORT" if env.get("JAX_COORDINATOR_PORT", "") else "MASTER_PORT"
    missing = [name for name in ("MASTER_ADDR", port_name) if env.get(name, "") == ""]
    if missing:
        raise ValueError(
            f"coordinator_address is missing: pass it, or set {' and '.join(missing)} "
            "(torchrun-style: MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK together)"
        )
    host, port = env["MASTER_ADDR"], env[port_name]
    if ":" in host and not host.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"MASTER_ADDR must be a host name or IP address without a port, got {host!r}"
            ) from None
        host = f"[{host}]"
    if not port.isdigit():
        raise ValueError(f"{port_name} must be a port number, got {port!r}")
    return f"{host}:{port}"


def _check_address(address: Any) -> None:
    """Raises unless ``address`` is ``"host:port"`` with a port in 1..65535."""
    if not isinstance(address, str):
        raise ValueError(f'coordinator_address must be a "host:port" string, got {address!r}')
    host, colon, port = address.rpartition(":")
    if not colon or host.endswith(":"):
        raise ValueError(f'coordinator_address must be "host:port", got {address!r} (no port)')
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"coordinator_address must end in a port number 1..65535, got {address!r}")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f'coordinator_address must be "host:port", got {address!r} (no host)')


def _int_from(env: Mapping[str, str], variable: str, argument: str) -> int:
    """An integer environment variable standing in for ``argument``."""
    text = env.get(variable, "")
    if text == "":
        raise ValueError(
            f"{argument} is missing: pass it, or set {variable} (torchrun-style: "
            "MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK together)"
        )
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{variable} must be an integer, got {text!r}") from None


def _check_int(value: Any, name: str, low: int) -> None:
    """Raises unless ``value`` is an int (not a bool) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _device_ids(ids: int | Sequence[int] | None, env: Mapping[str, str]) -> list[int] | None:
    """The checked local device ids: given, or ``[LOCAL_RANK]`` with one process per device."""
    if ids is None:
        local_world = env.get("LOCAL_WORLD_SIZE", "")
        if not (local_world.isdigit() and int(local_world) > 1):
            return None
        ids = _int_from(env, "LOCAL_RANK", "local_device_ids")
    listed = [ids] if isinstance(ids, int) else list(ids)
    for i in listed:
        _check_int(i, "local_device_ids", 0)
    if not listed or len(set(listed)) != len(listed):
        raise ValueError(f"local_device_ids must be distinct device ordinals, got {ids!r}")
    return listed


def _on_cpu() -> bool:
    """Whether JAX is set to run on CPU first (``JAX_PLATFORMS=cpu``)."""
    platforms = jax.config.values.get("jax_platforms") or ""
    return platforms.split(",")[0].strip() == "cpu"
