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

Batches are dicts of numpy arrays: `image` float32 [B, S, S, 3] in [0, 1] (ground truth), `mask`
float32 [B, S, S, 1] in {0, 1} (1 = known), and for task=superres `input` float32 [B, S, S, 3]
(the Sec. 5.2 canvas). `prefetch` batches are prepared ahead of the one being consumed.

Workers (`data.num_workers`; 0 = everything in the caller) are processes by default
(`data.worker_type=process`): decoding, crop/resize and mask drawing hold the GIL much of the
time, so threads stop scaling at ~1.5 cores, which starves a GPU. Processes are started with
"spawn" (never fork: the parent may be running JAX's threads), import only numpy/OpenCV/Pillow
(pconv_jax.data.examples, no jax), and write uint8 images and masks into shared memory
((prefetch + 2) x B x S x S x 4 bytes); threads here convert them to float32. Each worker
imports the main script, like any spawned process, so a script that builds a pipeline at top
level needs the `if __name__ == "__main__":` guard.
The worker kind and count never change the batches (pconv_jax.data.examples).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import multiprocessing
import os
import threading

import numpy as np

from pconv_jax.config import DataConfig
from pconv_jax.data import examples as train_examples
from pconv_jax.data import sources
from pconv_jax.masks import augment as mask_augment

log = logging.getLogger(__name__)

ASSEMBLERS = 2  # worker_type=process: threads converting the workers' uint8 results to float32


def validate(cfg: DataConfig) -> None:
    """Raises ValueError naming the first inconsistent DataConfig field."""
    choices = {"source": ("skimage", "folder", "tfds"), "task": ("inpaint", "superres")}
    choices["masks"] = ("generate", "folder")
    choices["worker_type"] = ("process", "thread")
    for field, allowed in choices.items():
        if getattr(cfg, field) not in allowed:
            raise ValueError(f"data.{field} must be one of {allowed}, got {getattr(cfg, field)!r}")
    if cfg.source == "folder" and not cfg.dir:
        raise ValueError("data.source=folder needs data.dir")
    if cfg.source == "tfds" and not cfg.tfds_name:
        raise ValueError("data.source=tfds needs data.tfds_name")
    if cfg.masks == "folder" and not cfg.mask_dir and cfg.task == "inpaint":
        raise ValueError("data.masks=folder needs data.mask_dir")
    if cfg.image_size < 1:
        raise ValueError(f"data.image_size must be positive, got {cfg.image_size}")
    if cfg.train_scale_max < 1.0:
        raise ValueError(f"data.train_scale_max must be >= 1, got {cfg.train_scale_max}")
    if not 0.0 <= cfg.hole_ratio_min < cfg.hole_ratio_max <= 1.0:
        raise ValueError(
            "data.hole_ratio_min/max must satisfy 0 <= min < max <= 1, got "
            f"{cfg.hole_ratio_min}, {cfg.hole_ratio_max}"
        )
    if cfg.task == "superres":
        bad = [f for f in cfg.sr_factors if f < 1 or cfg.image_size % f]
        if not cfg.sr_factors or bad:
            raise ValueError(
                f"data.sr_factors {cfg.sr_factors} must be non-empty factors >= 1 dividing "
                f"data.image_size={cfg.image_size}"
            )
    if cfg.prefetch < 0 or cfg.num_workers < 0:
        raise ValueError(
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


def open_source(cfg: DataConfig, split: str, process_index: int = 0, process_count: int = 1):
    """The image source of `cfg` (folder/skimage sharded by striding, tfds by split)."""
    if cfg.source == "tfds":
        return sources.tfds_source(
            cfg.tfds_name, split, cfg.tfds_data_dir, cfg.tfds_download, process_index, process_count
        )
    source = sources.skimage_source() if cfg.source == "skimage" else sources.folder_source(cfg.dir)
    return sources.shard_files(source, process_index, process_count)


class TrainBatches:
    """Iterator over training batches for steps start_step, start_step + 1, ... (never ends).

    Use as a context manager or call `close()` to stop the workers (threads or processes).
    `num_skipped` counts the distinct unreadable images met so far (`skipped` names them; the
    warnings too are logged in this process, once per file, whatever the worker kind).
    Process workers take tasks of a few examples each (about two tasks per worker per batch,
    so that one inter-process message carries several images).
    """

    def __init__(self, cfg, source, batch_size, seed, start_step, global_batch=None, first_row=0):
        self.cfg = cfg
        self.source = source
        self.batch_size = batch_size  # this process's rows of each global batch
        self.global_batch = batch_size if global_batch is None else global_batch
        self.first_row = first_row  # the global row of local row 0
        self.seed = seed
        self.step = start_step  # the step of the next batch returned
        self._next_scheduled = start_step
        self._bad: dict[int, str] = {}
        self._lock = threading.Lock()
        augmenter = None
        if cfg.task == "inpaint" and cfg.masks == "folder":
            augmenter = mask_augment.RawMaskAugmenter(
                cfg.mask_dir,
                cfg.image_size,
                threshold=cfg.mask_threshold,
                hole_is_white=cfg.mask_hole_is_white,
                dilation=cfg.mask_dilation,
                hole_ratio=(cfg.hole_ratio_min, cfg.hole_ratio_max),
                force_test_masks=cfg.force_test_masks,
            )
        self._maker = train_examples.ExampleMaker(
            cfg, source, self.global_batch, seed, 0, augmenter, first_row
        )
        self._threads = self._processes = self._slots = None
        workers = cfg.num_workers
        if workers and cfg.worker_type == "process":
            # Batch k uses slot k % slots. Step k + slots is scheduled once batch k + 1 was
            # returned (prefetch + 1 batches in flight), so batch k was read out long before.
            self._slots = train_examples.SharedSlots(
                cfg.prefetch + 2, batch_size, cfg.image_size, with_holes=cfg.task == "inpaint"
            )
            self._processes = concurrent.futures.ProcessPoolExecutor(
                workers,
                # Not fork: the parent may run JAX's threads, which a forked child would inherit
                # in whatever state they were (locks held). spawn starts a clean interpreter.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=train_examples.init_worker,
                initargs=(self._maker, self._slots),
            )
            self._chunk = max(1, math.ceil(batch_size / (2 * workers)))
            # Converting the workers' uint8 results to float32 releases the GIL (numpy), so
            # threads in this process can do it beside the caller's training loop.
            self._threads = concurrent.futures.ThreadPoolExecutor(min(workers, ASSEMBLERS))
        elif workers:
            self._threads = concurrent.futures.ThreadPoolExecutor(workers)
        self._pending: collections.deque = collections.deque()
        self._closed = False

    @property
    def num_skipped(self) -> int:
        return len(self._bad)

    @property
    def skipped(self) -> list[str]:
        with self._lock:
            return sorted(self._bad.values())

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self._closed:
            raise StopIteration
        if not self._pending:
            self._schedule()
        step, batch, futures = self._pending.popleft()
        while len(self._pending) < self.cfg.prefetch:
            self._schedule()
        # All of them first: a failed batch must not leave workers writing into its slot.
        concurrent.futures.wait(futures)
        try:
            for future in futures:
                future.result()  # re-raises a worker's exception here
        except concurrent.futures.process.BrokenProcessPool as e:
            raise RuntimeError(
                "a data worker process died or could not start (its traceback, if any, is on "
                "stderr): killed or out of memory, a source that does not unpickle, or a main "
                "script without the `if __name__ == '__main__':` guard (each spawned worker "
                "imports it); data.worker_type=thread runs the workers as threads instead"
            ) from e
        self.step = step + 1
        return batch

    def close(self) -> None:
        """Stops the workers: queued work is dropped, running examples finish, processes exit."""
        self._closed = True
        for _, _, futures in self._pending:
            for future in futures:
                future.cancel()
        # Processes first: the threads of process mode wait on their results.
        for pool in (self._processes, self._threads):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self._slots = None  # frees the shared memory once the workers have exited

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):  # a forgotten close(): drop queued work, let running examples finish
        if not getattr(self, "_closed", True):
            for pool in (self._processes, self._threads):
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self) -> None:
        step = self._next_scheduled
        self._next_scheduled += 1
        size, count = self.cfg.image_size, self.batch_size
        batch = {
            "image": np.empty((count, size, size, 3), np.float32),
            "mask": np.empty((count, size, size, 1), np.float32),
        }
        if self.cfg.task == "superres":
            batch["input"] = np.empty((count, size, size, 3), np.float32)
        if self._processes is not None:
            futures, slot = [], step % self._slots.shape[0]
            for start in range(0, count, self._chunk):
                stop = min(count, start + self._chunk)
                made = self._processes.submit(train_examples.make_examples, step, start, stop, slot)
                futures.append(self._threads.submit(self._write_rows, batch, start, made, slot))
        elif self._threads is not None:
            futures = [self._threads.submit(self._fill, batch, step, j) for j in range(count)]
        else:
            for j in range(count):
                self._fill(batch, step, j)
            futures = []
        self._pending.append((step, batch, futures))

    def _fill(self, batch: dict[str, np.ndarray], step: int, row: int) -> None:
        """Makes and writes example `row` of `step` (in the caller or a worker thread)."""
        example = self._maker.make(step * self.global_batch + self.first_row + row)
        self._note_unreadable(example.bad)
        train_examples.write_example(batch, row, example)

    def _write_rows(self, batch: dict[str, np.ndarray], start: int, made, slot: int) -> None:
        """Writes rows start, start + 1, ... that worker processes put into `slot` (future
        `made` holds the rest of each example)."""
        for row, rest in enumerate(made.result(), start):
            self._note_unreadable(rest.bad)
            train_examples.write_example(batch, row, self._slots.example(slot, row, rest))

    def _note_unreadable(self, bad) -> None:
        """Counts and warns once about each unreadable image (makers may each find it once)."""
        for index, name, message in bad:
            with self._lock:
                if index in self._bad:
                    continue
                self._bad[index] = name
            log.warning("skipping unreadable image %s: %s", name, message)


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
      seed: non-negative int; with the config, step and process it fixes each batch.
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
    # Every process sees all images and makes only its rows of the global batch.
    source = open_source(data_cfg, data_cfg.train_split)
    return TrainBatches(
        data_cfg, source, batch, seed, start_step, global_batch_size, process_index * batch
    )


class EvalImages:
    """Deterministic evaluation images: (name, uint8 [size, size, 3]) in a fixed order.

    Each image is its short side resized to `size` and centre-cropped. Iterating skips
    unreadable images with a warning (`num_skipped`, `skipped`); `load(i)` raises instead.
    """

    def __init__(self, source, size: int, limit: int | None = None):
        self.source = source
        self.size = size
        self.count = len(source) if limit is None else min(limit, len(source))
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return self.count

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def name(self, index: int) -> str:
        return self.source.name(index)

    def load(self, index: int) -> np.ndarray:
        pixels = self.source.load(index, self.size)
        return sources.crop_resize(pixels, sources.crop_box(*pixels.shape[:2], None), self.size)

    def __iter__(self):
        self.skipped = []
        for index in range(self.count):
            try:
                image = self.load(index)
            except Exception as e:  # any decoder failure
                self.skipped.append(self.name(index))
                log.warning("skipping unreadable image %s: %s", self.name(index), e)
                continue
            yield self.name(index), image


def eval_images(
    source: DataConfig | str | os.PathLike,
    size: int | None = None,
    *,
    split: str | None = None,
    tfds_data_dir: str = "",
    limit: int | None = None,
    shard: bool = False,
) -> EvalImages:
    """Deterministic evaluation images.

    Args:
      source: a DataConfig (its source, dir/tfds_name, eval_split, image_size); or "skimage";
        or "tfds:NAME" (e.g. "tfds:places365_small"); or a folder path.
      size: output side in px (default: the DataConfig's image_size; required otherwise).
      split: tfds split, e.g. "validation[:500]" (default: the DataConfig's eval_split, or
        "validation").
      tfds_data_dir: where tfds finds prepared data (a DataConfig brings its own).
      limit: use only the first `limit` images.
      shard: only this process's share (folder: every process_count-th image; tfds:
        tfds.split_for_jax_process).

    Returns:
      EvalImages: len(), iteration over (name, uint8 [size, size, 3]), load(i).
    """
    if isinstance(source, DataConfig):
        cfg = source
        size = cfg.image_size if size is None else size
        split = cfg.eval_split if split is None else split
    else:
        text = os.fspath(source)
        if text == "skimage":
            cfg = DataConfig(source="skimage")
        elif text.startswith("tfds:"):
            cfg = DataConfig(source="tfds", tfds_name=text[5:], tfds_data_dir=tfds_data_dir)
        else:
            cfg = DataConfig(source="folder", dir=text)
        split = "validation" if split is None else split
    if size is None or size < 1:
        raise ValueError(f"eval_images needs a positive size, got {size}")
    process_index, process_count = 0, 1
    if shard:
        import jax

        process_index, process_count = jax.process_index(), jax.process_count()
    return EvalImages(open_source(cfg, split, process_index, process_count), size, limit)
