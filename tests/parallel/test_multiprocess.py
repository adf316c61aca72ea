"""Two processes, one training run: `fn.parallel.initialize`, checkpoints, resume.

The 2-process test starts two Python processes on 127.0.0.1 (JAX's coordinator on a free port,
Gloo collectives between CPU devices), each with 2 devices, and checks that they train the MLP
of a 1-process run to the same parameters, that only process 0 writes checkpoints, and that
every process resumes from them. The rest checks how `launch_arguments` reads arguments and
torchrun-style variables, without starting anything.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import funcnets as fn
from funcnets.parallel.distributed import initialize, is_main_process, launch_arguments

ROOT = Path(__file__).resolve().parents[2]
TIME_LIMIT = 120  # seconds for both processes together, start to finish

WORKER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    import numpy as np
    import jax
    from funcnets.parallel.distributed import initialize, is_main_process

    # From MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK; the coordinator listens on 127.0.0.1.
    initialize(initialization_timeout=30,
               coordinator_bind_address=f"127.0.0.1:{os.environ['MASTER_PORT']}")
    import funcnets as fn
    from funcnets import checkpoint
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    out = Path(sys.argv[1])
    rank = jax.process_index()
    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
    assert is_main_process() == (rank == 0)

    writes = []  # every file this process writes through fn.checkpoint
    atomic_write = checkpoint._atomic_write
    def spy(path, write):
        writes.append(os.path.basename(path))
        return atomic_write(path, write)
    checkpoint._atomic_write = spy

    mesh = Mesh(np.array(jax.devices()), ("data",))  # the 4 devices of both processes
    everywhere = NamedSharding(mesh, P())

    def replicate(tree):
        # A copy of each leaf on every device, built from this process's own value.
        # (jax.device_put cannot place a key array on other processes' devices.)
        def one(leaf):
            if jax.numpy.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(one(jax.random.key_data(leaf)),
                                                impl=jax.random.key_impl(leaf))
            value = np.asarray(leaf)
            return jax.make_array_from_callback(value.shape, everywhere, lambda i: value[i])
        return jax.tree.map(one, tree)

    x = np.random.default_rng(1).normal(size=(128, 2)).astype(np.float32)  # the same data
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)  # in every process: XOR of the signs
    net, opt = fn.models.mlp([8, 2]), fn.optim.adam(1e-2)
    start = fn.train.init(net, opt, jax.random.key(0), (32, 2))  # local: fit places it

    def fit(ts, callbacks):
        return fn.train.fit(net, fn.losses.sparse_cross_entropy, opt, (x, y), epochs=1,
                            batch_size=32, ts=ts, progress=False, mesh=mesh,
                            callbacks=callbacks)[0]

    directory = out / "checkpoints"
    first = fn.train.Checkpoint(directory, keep=None)
    fit(start, [first])
    saved = fn.train.Checkpoint.latest(directory)  # in place in every process after fit
    resumed = fn.checkpoint.load(saved, like=replicate(start))  # straight onto all 4
    assert int(resumed.epoch) == 1 and resumed.key.sharding == everywhere
    second = fn.train.Checkpoint(directory, keep=None)
    final = fit(resumed, [second])
    np.savez(out / f"params{rank}.npz", *map(np.asarray, jax.tree.leaves(final.params)))

    # An array and a key array split over the 4 devices: gathered, written by process 0.
    split = NamedSharding(mesh, P("data"))
    whole = np.arange(24, dtype=np.float32).reshape(8, 3)
    keys = jax.random.split(jax.random.key(5), 4)
    tree = {"a": jax.device_put(whole, split),
            "keys": jax.random.wrap_key_data(
                jax.device_put(np.asarray(jax.random.key_data(keys)), split))}
    fn.checkpoint.save(out / "split.ckpt", tree)
    back = fn.checkpoint.load(out / "split.ckpt", like=tree)
    assert back["a"].sharding == split and back["keys"].sharding == tree["keys"].sharding
    gathered = multihost_utils.process_allgather(back["a"], tiled=True)
    key_data = multihost_utils.process_allgather(jax.random.key_data(back["keys"]), tiled=True)
    assert np.array_equal(gathered, whole)
    assert np.array_equal(key_data, jax.random.key_data(keys))

    # Process 0 cannot write: every process raises.
    try:
        fn.checkpoint.save(out / "missing" / "x.ckpt", tree)
        failed = None
    except OSError as error:
        failed = type(error).__name__

    report = {"writes": writes, "runs": [first.run, second.run], "failed": failed}
    (out / f"report{rank}.json").write_text(json.dumps(report))
    """
)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out: Path, port: int) -> list[tuple[subprocess.Popen, Path]]:
    """Starts the two worker processes, each in its own process group, logging to files."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env |= {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}  # fmt: skip
    workers = []
    for rank in range(2):
        log = out / f"stderr{rank}.txt"
        with open(log, "w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(out)], cwd=ROOT, env=env | {"RANK": str(rank)},
                stdout=stderr, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        workers.append((process, log))
    return workers


def finish(workers: list[tuple[subprocess.Popen, Path]], port: int) -> None:
    """Waits for both workers; kills both (by process group) at TIME_LIMIT or once one fails.

    A worker that fails leaves the other waiting on it (up to its initialization timeout, or
    in a collective), so the first failure ends the run; the failure shows both logs.
    """
    deadline = time.monotonic() + TIME_LIMIT
    try:
        while time.monotonic() < deadline:
            codes = [process.poll() for process, _ in workers]
            if None not in codes or any(code for code in codes if code is not None):
                break
            time.sleep(0.1)
    finally:
        for process, _ in workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # the worker's group: itself and children
                process.wait()
    codes = [process.returncode for process, _ in workers]
    if codes != [0, 0]:
        logs = "\n".join(f"--- process {r} (exit {c}):\n{log.read_text()[-3000:]}"
                         for r, (c, (_, log)) in enumerate(zip(codes, workers)))  # fmt: skip
        busy = "address already in use" in logs.lower() or "failed to add port" in logs.lower()
        reason = f"coordinator port {port} was taken" if busy else "workers failed or timed out"
        pytest.fail(f"{reason} (exit codes {codes}; -9: killed)\n{logs}")


def test_two_processes_train_like_one_and_process_zero_writes_the_checkpoints(tmp_path):
    port = free_port()
    workers = launch(tmp_path, port)
    # Meanwhile, the 1-process reference: the same 2 epochs, straight.
    x = np.random.default_rng(1).normal(size=(128, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    reference, _ = fn.train.fit(
        fn.models.mlp([8, 2]), fn.losses.sparse_cross_entropy, fn.optim.adam(1e-2), (x, y),
        epochs=2, batch_size=32, key=jax.random.key(0), progress=False,
    )  # fmt: skip
    finish(workers, port)

    expected = jax.tree.leaves(reference.params)
    for rank in range(2):
        with np.load(tmp_path / f"params{rank}.npz") as params:
            found = [params[f"arr_{i}"] for i in range(len(params.files))]
        assert len(found) == len(expected)
        for a, b in zip(found, expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    reports = [json.loads((tmp_path / f"report{r}.json").read_text()) for r in range(2)]
    zero, one = reports
    run = zero["runs"][0]
    assert zero["runs"] == one["runs"] == [run, run]  # the resumed run continues the first
    names = [f"epoch-0001-{run}.ckpt", f"epoch-0002-{run}.ckpt"]
    assert zero["writes"] == [*names, "split.ckpt", "x.ckpt"] and one["writes"] == []
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == names  # no temp files
    meta = fn.checkpoint.read_metadata(tmp_path / "checkpoints" / names[1])
    assert (meta["epoch"], meta["step"], meta["run"]) == (2, 8, run)
    assert zero["failed"] == "FileNotFoundError" and one["failed"] == "OSError"


TORCHRUN = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "4", "RANK": "3"}


def test_launch_arguments_come_from_arguments_then_torchrun_variables():
    assert launch_arguments(environ=TORCHRUN) == {
        "coordinator_address": "10.0.0.1:29500", "num_processes": 4, "process_id": 3,
        "local_device_ids": None,
    }  # fmt: skip
    # Explicit arguments win, each on its own.
    found = launch_arguments("host:1234", process_id=0, environ=TORCHRUN)
    assert list(found.values())[:3] == ["host:1234", 4, 0]
    ipv6 = launch_arguments("[fd00::1]:80", 1, 0, environ={})
    assert ipv6["coordinator_address"] == "[fd00::1]:80"
    ipv6 = launch_arguments(environ=TORCHRUN | {"MASTER_ADDR": "fd00::1"})
    assert ipv6["coordinator_address"] == "[fd00::1]:29500"
    # JAX's own variables name the coordinator instead (torchrun's store holds MASTER_PORT).
    other_port = launch_arguments(environ=TORCHRUN | {"JAX_COORDINATOR_PORT": "29501"})
    assert other_port["coordinator_address"] == "10.0.0.1:29501"
    other_host = launch_arguments(environ=TORCHRUN | {"JAX_COORDINATOR_ADDRESS": "h:5"})
    assert other_host["coordinator_address"] == "h:5"
    # Nothing given: all None, for JAX to detect SLURM, Open MPI or a TPU pod.
    assert set(launch_arguments(environ={"SLURM_JOB_ID": "7"}).values()) == {None}


def test_launch_arguments_local_devices():
    one_per_gpu = TORCHRUN | {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}
    assert launch_arguments(environ=one_per_gpu)["local_device_ids"] == [1]
    one_per_host = TORCHRUN | {"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
    assert launch_arguments(environ=one_per_host)["local_device_ids"] is None
    assert launch_arguments(local_device_ids=2, environ=one_per_gpu)["local_device_ids"] == [2]
    assert launch_arguments(local_device_ids=(0, 3), environ={})["local_device_ids"] == [0, 3]


@pytest.mark.parametrize(
    "arguments, environ, message",
    [
        ({}, {"MASTER_ADDR": "10.0.0.1"}, "set MASTER_PORT"),
        ({}, TORCHRUN | {"RANK": ""}, "process_id is missing.*set RANK"),
        ({}, {k: v for k, v in TORCHRUN.items() if k != "WORLD_SIZE"}, "set WORLD_SIZE"),
        ({}, TORCHRUN | {"RANK": "4"}, r"below num_processes.*process_id=4.*num_processes=4"),
        ({}, TORCHRUN | {"RANK": "one"}, "RANK must be an integer, got 'one'"),
        ({}, TORCHRUN | {"MASTER_PORT": "http"}, "MASTER_PORT must be a port number"),
        ({}, TORCHRUN | {"JAX_COORDINATOR_PORT": "x"}, "JAX_COORDINATOR_PORT must be a port"),
        ({}, TORCHRUN | {"JAX_COORDINATOR_ADDRESS": "h"}, r"host:port.*\(no port\)"),
        ({}, TORCHRUN | {"MASTER_ADDR": "10.0.0.1:29500"}, "MASTER_ADDR must be a host name"),
        ({}, TORCHRUN | {"WORLD_SIZE": "0"}, "num_processes must be an integer >= 1, got 0"),
        ({"coordinator_address": "10.0.0.1", "num_processes": 2, "process_id": 0}, {},
         r"host:port.*\(no port\)"),
        ({"coordinator_address": ":80", "num_processes": 2, "process_id": 0}, {}, "no host"),
        ({"coordinator_address": "h:99999", "num_processes": 2, "process_id": 0}, {},
         "port number 1..65535"),
        ({"coordinator_address": "h:1", "num_processes": 2}, {}, "process_id is missing"),
        ({"coordinator_address": "h:1", "num_processes": 2, "process_id": -1}, {},
         "process_id must be an integer >= 0"),
        ({"coordinator_address": "h:1", "num_processes": True, "process_id": 0}, {},
         "num_processes must be an integer"),
        ({"local_device_ids": [0, 0]}, {}, "distinct"),
        ({"local_device_ids": []}, {}, "distinct"),
        ({"local_device_ids": [-1]}, {}, "local_device_ids must be an integer >= 0"),
        ({}, TORCHRUN | {"LOCAL_WORLD_SIZE": "2"}, "set LOCAL_RANK"),
    ],
)  # fmt: skip
def test_launch_arguments_name_what_is_missing_or_wrong(arguments, environ, message):
    with pytest.raises(ValueError, match=message):
        launch_arguments(**arguments, environ=environ)


def test_initialize_checks_before_starting_anything(monkeypatch):
    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="process_id .*must be below"):
        initialize("127.0.0.1:1", num_processes=2, process_id=2)
    assert not jax.distributed.is_initialized()
    assert is_main_process()
