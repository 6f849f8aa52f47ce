"""Data parallelism over every device: a 1-D `data` mesh, replicated state, sharded batches.

The mesh uses Auto axes (`jax.sharding.Mesh`), with which jit propagates shardings through the
convolutions; `jax.make_mesh`'s default Explicit axes need per-op output shardings (STYLE.md §3).
BatchNorm needs no `axis_name`: jit sees the global batch, so statistics are global.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh named `data` over `devices` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
    if global_batch_size % mesh.size:
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by the {mesh.size} devices"
        )


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    """Numpy arrays holding this process's share of the batch -> global arrays split on `data`."""
    sharding = batch_sharded(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
    }
