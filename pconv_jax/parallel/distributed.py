"""Several processes, one run: launching JAX's distributed runtime and agreeing across processes.

Launch settings come from `--coordinator HOST:PORT --num-processes N --process-id I`, else from
the environment (`PCONV_COORDINATOR`, `PCONV_NUM_PROCESSES`, `PCONV_PROCESS_ID`), else, when
asked for (`--distributed`), from the cluster: `jax.distributed.initialize()` auto-detects SLURM,
Open MPI, Cloud TPU and GKE. Without any of them the run is one process.

Every decision that changes what the processes do next (stop for time, for a signal) must be
taken by all of them together, or one process leaves a collective that the others wait in
forever: `any_process` turns a local flag into the same answer everywhere. Arrays sharded over
the batch span devices of other processes; `first_rows` replicates the first rows of such arrays
so that process 0 can read them (sample grids).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from pconv_jax.errors import UserError

log = logging.getLogger("pconv_jax.parallel.distributed")

ENV = {
    "coordinator": "PCONV_COORDINATOR",
    "num_processes": "PCONV_NUM_PROCESSES",
    "process_id": "PCONV_PROCESS_ID",
}


@dataclasses.dataclass(frozen=True)
class Launch:
    """Explicit launch settings: the coordinator's "HOST:PORT", the process count, this index."""

    coordinator: str
    num_processes: int
    process_id: int


def resolve_launch(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    environ=None,
) -> Launch | None:
    """Launch settings from the arguments, each falling back to its PCONV_* variable.

    Returns None when none is set (single process, or cluster auto-detection); raises
    UserError naming what is missing or wrong when only some are set or a value is invalid.
    """
    environ = os.environ if environ is None else environ
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    values: dict[str, Any] = {}  # an argument's str/int or an environment variable's str
    for key, value in given.items():
        if value is None and environ.get(ENV[key], "") != "":
            value = environ[ENV[key]]
        values[key] = value
    missing = [k for k, v in values.items() if v is None]
    if len(missing) == 3:
        return None
    if missing:
        names = ", ".join(f"--{k.replace('_', '-')} (or {ENV[k]})" for k in missing)
        raise UserError(f"a multi-process launch also needs {names}")
    host, _, port = str(values["coordinator"]).rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--coordinator must be HOST:PORT, got {values['coordinator']!r}")
    try:
        count, index = int(values["num_processes"]), int(values["process_id"])
    except ValueError:
        raise UserError(
            f"--num-processes and --process-id must be integers, got "
            f"{values['num_processes']!r} and {values['process_id']!r}"
        ) from None
    if count < 1 or not 0 <= index < count:
        raise UserError(f"need --num-processes >= 1 and 0 <= --process-id < {count}, got {index}")
    return Launch(str(values["coordinator"]), count, index)


def initialize(launch: Launch | None, auto: bool = False) -> None:
    """Starts JAX's distributed runtime (explicit settings, or auto-detection when `auto`) and
    logs this process's index and its local and global devices. Does nothing for one process."""
    if launch is not None:
        jax.distributed.initialize(
            coordinator_address=launch.coordinator,
            num_processes=launch.num_processes,
            process_id=launch.process_id,
        )
    elif auto:
        jax.distributed.initialize()
    else:
        return
    log.info(
        "process %d of %d on %s: %d local devices %s, %d global devices",
        jax.process_index(),
        jax.process_count(),
        socket.gethostname(),
        jax.local_device_count(),
        [d.id for d in jax.local_devices()],
        jax.device_count(),
    )


def any_processes(*flags: bool) -> tuple[bool, ...]:
    """For each flag: True on every process when it is true on at least one (a collective: all
    processes must call it at the same point, with the same number of flags)."""
    if jax.process_count() == 1:
        return tuple(bool(f) for f in flags)
    gathered = multihost_utils.process_allgather(np.asarray(flags, np.int32))  # [P, len(flags)]
    agreed = np.asarray(gathered).reshape(-1, len(flags)).any(axis=0)  # bool [len(flags)]
    return tuple(bool(v) for v in np.atleast_1d(agreed))


def any_process(flag: bool) -> bool:
    """`any_processes` for one flag."""
    return any_processes(flag)[0]


@functools.lru_cache(maxsize=8)
def _first_rows_fn(mesh: Mesh, rows: int):
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(
        lambda tree: jax.tree_util.tree_map(lambda x: x[:rows], tree), out_shardings=replicated
    )


def first_rows(tree, rows: int, mesh: Mesh):
    """The first `rows` rows of each batch-sharded global array of `tree`, as numpy arrays on
    every process (a collective). `jax.device_get` of the sharded arrays themselves fails when
    they span devices of other processes."""
    return jax.device_get(_first_rows_fn(mesh, rows)(tree))


def wait_for_all(name: str, timeout_s: float = 3600.0) -> None:
    """Waits (up to `timeout_s`) until every process got here, through the coordination service
    (the gRPC service `jax.distributed.initialize` starts) rather than a device collective.

    Why: before the first train step. On CPU, gloo sets up its connections at the processes'
    first collective and gives the others only 30 s to join ("Gloo context initialization
    failed: ... GetKeyValue() timed out ... 30s"), less than the skew in compilation times on a
    busy host; a collective barrier (`multihost_utils.sync_global_devices`) is itself such a
    collective. jax 0.10 has no public accessor for the coordination-service client (its
    `wait_at_barrier` lives in `jax._src.distributed`) and no setting for gloo's timeout, so
    this uses orbax's public, documented `orbax.checkpoint.multihost.get_barrier_sync_fn`, a
    barrier on that same service with a timeout, kept in step with jax by orbax's releases
    (orbax is already the checkpoint library). Names must be unique per run: a barrier name
    is used once. Without the distributed runtime (several processes started some other way)
    it falls back to the collective barrier.
    """
    if jax.process_count() == 1:
        return
    if not jax.distributed.is_initialized():
        multihost_utils.sync_global_devices(name)
        return
    # Imported here: a single-process run, and everything that never trains, need no orbax.
    from orbax.checkpoint import multihost as orbax_multihost

    orbax_multihost.get_barrier_sync_fn()(key=name, timeout_ms=int(timeout_s * 1000))


def barrier(name: str) -> None:
    """Waits until every process got here (no-op for one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
