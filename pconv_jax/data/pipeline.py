"""Input pipelines: deterministic, resumable training batches and deterministic eval images.

Training batch for step k, global row j: stream position pos = k * G + j (G = global batch);
epoch e = pos // N over all N images, image = perm_e[pos % N] with perm_e a permutation seeded
by (seed, e); the crop, flip, mask and super-resolution factor are drawn from generators seeded
by (seed, pos). Process p of P makes (and reads the images of) only its rows p * G/P ...
(p + 1) * G/P - 1. So the global batch is a pure function of (config, seed, step), whatever the
process count, and resuming at step k reproduces an uninterrupted run bit for bit. An
unreadable image is replaced by the next readable one of the same permutation (a warning is
logged once per file and the file counted), which keeps batch shapes fixed and the stream
deterministic.

Gridded fields (`data.source=grids`) take the same stream with data/grid_train.py's maker:
anomaly fields under coverage masks, `image` float32 [B, H, W, C] in the variable's units.

Batches are dicts of numpy arrays: `image` float32 [B, S, S, 3] in [0, 1] (ground truth), `mask`
float32 [B, S, S, 1] in {0, 1} (1 = known), and for task=superres `input` float32 [B, S, S, 3]
(the Sec. 5.2 canvas). `prefetch` batches are prepared ahead of the one being consumed.

Workers (`data.num_workers`; 0 = everything in the caller) are grain's worker processes
(`mp_prefetch`): decoding, crop/resize and mask drawing hold the GIL much of the time, so only
processes scale with cores. grain starts them with "spawn" (never fork: the parent may be running
JAX's threads); each makes whole batches and hands them over in shared memory. Each worker
imports the main script, like any spawned process, so a script that builds a pipeline at top
level needs the `if __name__ == "__main__":` guard. The worker count never changes the batches.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import absl.flags
import grain
import grain.experimental
import numpy as np

from pconv_jax import config
from pconv_jax.config import DataConfig
from pconv_jax.data import examples, grid_train, sources
from pconv_jax.errors import UserError
from pconv_jax.masks import augment

log = logging.getLogger(__name__)

# The end of the training stream's positions: never reached. Not sys.maxsize: grain 0.2 sizes
# a batched MapDataset as math.ceil(n / B), a float, and float(sys.maxsize) rounds up to 2**63,
# which overflows len() for B = 1. Every n <= 2**62 keeps that length within an index for all B.
# The positions themselves (start_step * B + i) and so the batches do not depend on this value.
STREAM_END = 2**62
# How long close() waits for grain to stop the workers (grain itself gives a worker that will not
# stop 25 s before killing it) before it kills them itself.
CLOSE_TIMEOUT_S = 60.0
GRAIN_WORKER_NAME = "grain-process-prefetch-"  # the name prefix of grain 0.2's worker processes


def validate(cfg: DataConfig) -> None:
    """Raises UserError naming the first bad or inconsistent DataConfig field."""
    config.validate(cfg, "data.")  # the Literal choices (a DataConfig built in Python)
    if cfg.source == "folder" and not cfg.dir:
        raise UserError("data.source=folder needs data.dir")
    if cfg.source == "tfds" and not cfg.tfds_name:
        raise UserError("data.source=tfds needs data.tfds_name")
    if cfg.source == "grids":
        grid_train.validate(cfg)
        if cfg.task != "inpaint":
            raise UserError("data.source=grids trains infilling: data.task must be inpaint")
    if cfg.masks == "folder" and not cfg.mask_dir and cfg.task == "inpaint":
        raise UserError("data.masks=folder needs data.mask_dir")
    if cfg.image_size < 1:
        raise UserError(f"data.image_size must be positive, got {cfg.image_size}")
    if cfg.train_scale_max < 1.0:
        raise UserError(f"data.train_scale_max must be >= 1, got {cfg.train_scale_max}")
    if not 0.0 <= cfg.hole_ratio_min < cfg.hole_ratio_max <= 1.0:
        raise UserError(
            "data.hole_ratio_min/max must satisfy 0 <= min < max <= 1, got "
            f"{cfg.hole_ratio_min}, {cfg.hole_ratio_max}"
        )
    if cfg.task == "superres":
        bad = [f for f in cfg.sr_factors if f < 1 or cfg.image_size % f]
        if not cfg.sr_factors or bad:
            raise UserError(
                f"data.sr_factors {cfg.sr_factors} must be non-empty factors >= 1 dividing "
                f"data.image_size={cfg.image_size}"
            )
    if cfg.prefetch < 0 or cfg.num_workers < 0:
        raise UserError(
            f"data.prefetch/num_workers must be >= 0: {cfg.prefetch}, {cfg.num_workers}"
        )


def local_batch_size(global_batch_size: int, process_count: int | None = None) -> int:
    """This process's share of the global batch, checked against the device counts."""
    import jax

    devices = jax.device_count()
    process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size < 1 or global_batch_size % devices:
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by the {devices} devices"
        )
    local = global_batch_size // process_count
    local_devices = max(1, devices // process_count)
    if global_batch_size % process_count or local % local_devices:
        raise ValueError(
            f"global batch size {global_batch_size} does not split into {process_count} equal "
            f"per-process batches divisible by the {local_devices} local devices"
        )
    return local


class TrainBatches:
    """Iterator over training batches for steps start_step, start_step + 1, ... (never ends).

    A grain pipeline: MapDataset.range over stream positions (from start_step * B), mapped by the
    ExampleMaker, batched by B (uint8), read in the caller (data.num_workers=0) or by grain's
    worker processes (mp_prefetch), each making whole batches, and converted to float32 here
    (by one grain thread when there are workers). Use as a context manager or call
    `close()` to stop the workers. `num_skipped` counts the distinct unreadable images met so far
    (`skipped` names them; the warnings are logged in this process, once per file).
    """

    def __init__(self, cfg, source, batch_size, seed, start_step, global_batch=None, first_row=0):
        self.step = start_step  # the step of the next batch returned
        self._bad: dict[int, str] = {}
        self._children_before = {p.pid for p in multiprocessing.active_children()}
        augmenter = None
        # The example maker, the batch function and the float conversion of this source (grain
        # map and batch functions; to_float None: the batch is float32 already).
        maker: Callable[[int], Any]
        batch_fn: Callable[[list], dict]
        to_float: Callable[[dict], dict] | None
        if cfg.source == "grids":  # float fields under coverage masks: data/grid_train.py
            maker = grid_train.make_example_maker(
                cfg, seed, batch_size, global_batch or batch_size, first_row
            )
            batch_fn, to_float = grid_train.stack_examples, None
        elif cfg.task == "inpaint" and cfg.masks == "folder":
            augmenter = augment.RawMaskAugmenter(
                cfg.mask_dir,
                cfg.image_size,
                threshold=cfg.mask_threshold,
                hole_is_white=cfg.mask_hole_is_white,
                dilation=cfg.mask_dilation,
                hole_ratio=(cfg.hole_ratio_min, cfg.hole_ratio_max),
                force_test_masks=cfg.force_test_masks,
            )
        if cfg.source != "grids":
            # Local stream index i (from start_step * B) is global row first_row + i % B of
            # step i // B.
            maker = examples.ExampleMaker(
                cfg, source, seed, augmenter, batch_size, global_batch or batch_size, first_row
            )
            batch_fn, to_float = examples.stack_examples, examples.float_batch
        positions = grain.MapDataset.range(start_step * batch_size, STREAM_END)
        batches = positions.map(maker).batch(batch_size, batch_fn=batch_fn)
        # No reading threads: each process (the caller or a worker) makes its batches in one
        # thread (threads would only contend for the GIL).
        dataset = batches.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
        if cfg.num_workers:
            if not absl.flags.FLAGS.is_parsed():
                # grain 0.2.18 reads an absl flag when it starts workers, which fails unless
                # some absl.app parsed the command line (google/grain#1355, fixed after 0.2.18).
                absl.flags.FLAGS.mark_as_parsed()
            per_worker = max(1, math.ceil(cfg.prefetch / cfg.num_workers))
            dataset = dataset.mp_prefetch(
                grain.MultiprocessingOptions(cfg.num_workers, per_worker_buffer_size=per_worker),
                worker_init_fn=examples.init_worker,
            )
        if to_float is not None:
            dataset = dataset.map(to_float)
        if cfg.num_workers:
            # One thread of the trainer's process converts to float32 ahead of the train step
            # (numpy releases the GIL there).
            dataset = grain.experimental.ThreadPrefetchIterDataset(dataset, prefetch_buffer_size=1)
        self._iterator = iter(dataset)
        self._closed = False

    @property
    def num_skipped(self) -> int:
        return len(self._bad)

    @property
    def skipped(self) -> list[str]:
        return sorted(self._bad.values())

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self._closed:
            raise StopIteration
        batch = next(self._iterator)
        for index, name, message in batch.pop("skipped"):
            if index not in self._bad:  # each worker process reports a file it met once
                self._bad[index] = name
                log.warning("skipping unreadable image %s: %s", name, message)
        self.step += 1
        return batch

    def close(self) -> None:
        """Stops the workers (grain joins them); closing twice is harmless.

        A worker killed from outside (say by the out-of-memory killer) at the moment it holds
        the lock of grain's state counter leaves that lock taken, and grain's close then waits on
        it forever. So grain's close runs in a thread; if it has not returned within
        CLOSE_TIMEOUT_S, this process kills the workers this pipeline started, logs a warning,
        and returns (the error that the dead worker caused is still raised by the caller).
        """
        if self._closed:
            return
        self._closed = True
        errors = []

        def close_grain():
            try:
                self._iterator.close()
            except BaseException as e:  # re-raised in the caller's thread below
                errors.append(e)

        closing = threading.Thread(target=close_grain, name="close-data-workers", daemon=True)
        closing.start()
        closing.join(CLOSE_TIMEOUT_S)
        if closing.is_alive():
            workers = [
                p
                for p in multiprocessing.active_children()
                if p.name.startswith(GRAIN_WORKER_NAME) and p.pid not in self._children_before
            ]
            log.warning(
                "grain did not stop the data workers within %.0f s (a worker that died can leave "
                "its queue locked); killing the %d left: %s",
                CLOSE_TIMEOUT_S,
                len(workers),
                [p.pid for p in workers],
            )
            for process in workers:
                process.kill()
            for process in workers:
                process.join(10)
        elif errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def train_batches(
    data_cfg: DataConfig,
    global_batch_size: int,
    seed: int,
    start_step: int = 0,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
) -> TrainBatches:
    """Training batches of this process for steps start_step, start_step + 1, ...

    Args:
      data_cfg: the data section of the config.
      global_batch_size: examples per step over all processes; divisible by jax.device_count().
      seed: non-negative int; with the config and step it fixes each global batch.
      start_step: the first step to produce (resume).
      process_index, process_count: default jax.process_index()/process_count() (override to
        test sharding in one process): this process makes rows process_index * L ... of each
        global batch, L = global_batch_size // process_count.

    Returns:
      A TrainBatches iterator of dicts (see the module docstring) with local batch
      global_batch_size // process_count.
    """
    import jax

    validate(data_cfg)
    if seed < 0 or start_step < 0:
        raise ValueError(f"seed and start_step must be >= 0, got {seed}, {start_step}")
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    batch = local_batch_size(global_batch_size, process_count)
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in 0..{process_count - 1}")
    # Every process sees all images and reads only those of its rows of the global batch.
    grid = data_cfg.source == "grids"  # the grid maker reads its own files
    source = None if grid else sources.open_source(data_cfg, data_cfg.train_split)
    return TrainBatches(
        data_cfg, source, batch, seed, start_step, global_batch_size, process_index * batch
    )
