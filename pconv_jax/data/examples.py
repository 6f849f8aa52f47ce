"""One training example as a pure function of its stream position, and the worker-process hooks.

`ExampleMaker.make(position)` does the CPU-heavy part of a training example in uint8: read the
image (the permutation of its epoch picks it, an unreadable file is replaced by the next
readable one), random crop/resize and flip, and the hole map (generated or an augmented raw mask)
or the super-resolution factor. `stack_examples` batches them (uint8) and `float_batch` makes
the float32 batch; `pipeline` runs them as grain map and batch functions, in the caller or in
grain's worker processes (`init_worker` is their worker_init_fn); `float_batch` always runs in
the trainer's process. Being pure functions of the position, they compute the same bits
wherever they run.

This module and everything it imports from pconv_jax must not import jax (grain itself does, in
every process, when jax is installed: see the README's data section for what that costs).
"""

from __future__ import annotations

import collections
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import typing

import cv2
import numpy as np

from pconv_jax.data import sources, sr_canvas
from pconv_jax.masks import generator

PERMUTATION, IMAGE, MASK = 0, 1, 2  # purposes mixed into the seeds


class RawExample(typing.NamedTuple):
    """The uint8 part of one training example.

    pixels: uint8 [S, S, 3], the flipped-or-not crop. holes: uint8 [S, S], 1 = hole (task
    inpaint) or None. factor: the super-resolution factor (task superres) or None. bad:
    ((index, name, message), ...) of unreadable images met for the first time by this maker
    while reading this example; the message says the error and which image replaced them.
    """

    pixels: np.ndarray
    holes: np.ndarray | None
    factor: int | None
    bad: tuple[tuple[int, str, str], ...]


class ExampleMaker:
    """Makes the examples of one process's rows of the global training stream (picklable).

    Args:
      cfg: the DataConfig.
      source: a FileSource or TfdsSource (sources.open_source): all images (every process sees
        them all and reads only those of its rows).
      seed: the run's seed.
      augmenter: a mask_augment.RawMaskAugmenter for data.masks=folder, else None.
      local_batch: B, this process's rows per step.
      global_batch: G, rows per step over all processes (position = step * G + global row).
      first_row: the global row of this process's local row 0.
    """

    def __init__(
        self, cfg, source, seed: int, augmenter, local_batch=1, global_batch=1, first_row=0
    ):
        self.cfg = cfg
        self.source = source
        self.seed = seed
        self.augmenter = augmenter
        self.local_batch = local_batch
        self.global_batch = global_batch
        self.first_row = first_row
        self._init_caches()

    def _init_caches(self) -> None:
        self._lock = threading.Lock()
        self._bad: set[int] = set()  # indices known unreadable (re-reading would fail again)
        self._permutations: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def __getstate__(self) -> dict:  # a lock does not pickle; caches start empty in a worker
        state = self.__dict__.copy()
        for key in ("_lock", "_bad", "_permutations"):
            del state[key]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def __call__(self, index: int) -> RawExample:
        """grain's map function: local stream index (step * B + local row) -> its example."""
        step, row = divmod(index, self.local_batch)
        return self.make(step * self.global_batch + self.first_row + row)

    def make(self, position: int) -> RawExample:
        """The example at global stream position `position` (= step * G + global row)."""
        cfg = self.cfg
        image_rng = np.random.default_rng([self.seed, position, IMAGE])
        mask_rng = np.random.default_rng([self.seed, position, MASK])
        pixels, bad = self._read(position)
        height, width = pixels.shape[:2]
        box = sources.crop_box(height, width, image_rng, cfg.train_scale_max)
        crop = sources.crop_resize(pixels, box, cfg.image_size)
        if image_rng.random() < 0.5:
            crop = np.ascontiguousarray(crop[:, ::-1])
        if cfg.task == "superres":
            factor = cfg.sr_factors[int(mask_rng.integers(len(cfg.sr_factors)))]
            return RawExample(crop, None, factor, bad)
        if self.augmenter is not None:
            holes = self.augmenter.sample_holes(mask_rng)
        else:
            ratio = (cfg.hole_ratio_min, cfg.hole_ratio_max)
            holes = generator.generate_holes(mask_rng, cfg.image_size, ratio)
        return RawExample(crop, holes, None, bad)

    def _permutation(self, epoch: int) -> np.ndarray:
        with self._lock:
            if epoch not in self._permutations:
                rng = np.random.default_rng([self.seed, epoch, PERMUTATION])
                self._permutations[epoch] = rng.permutation(len(self.source))
                while len(self._permutations) > 3:  # workers span at most two epochs at once
                    self._permutations.popitem(last=False)
            return self._permutations[epoch]

    def _read(self, position: int) -> tuple[np.ndarray, tuple[tuple[int, str, str], ...]]:
        """(the image at a stream position, newly found unreadable images before it)."""
        count = len(self.source)
        epoch, offset = divmod(position, count)
        order = self._permutation(epoch)
        min_side = math.ceil(self.cfg.image_size * self.cfg.train_scale_max)
        bad = []
        for attempt in range(count):
            index = int(order[(offset + attempt) % count])
            if index in self._bad:
                continue
            try:
                pixels = self.source.load(index, min_side)
            except Exception as e:  # any decoder failure: corrupt, truncated, not an image
                with self._lock:
                    self._bad.add(index)
                bad.append((index, self.source.name(index), f"{type(e).__name__}: {e}"))
                continue
            instead = f"; replaced by {self.source.name(index)}"
            return pixels, tuple((i, name, error + instead) for i, name, error in bad)
        raise ValueError(f"{self.source.description}: none of the {count} images is readable")


def stack_examples(examples: list[RawExample]) -> dict:
    """grain batch_fn: the uint8 part of a batch (B = len(examples), S = image side).

    Returns `pixels` uint8 [B, S, S, 3], `holes` uint8 [B, S, S] (1 = hole; task inpaint) or
    `factors` int64 [B] (task superres), and `skipped`: the unreadable images first met while
    making them ((index, name, message), ...). In a worker process the arrays are allocated in
    shared memory (grain's SharedMemoryArray), which grain hands to the trainer without a copy;
    uint8, a quarter of the float32 batch, because each batch's memory is fresh, and its page
    faults cost more CPU than the float32 conversion (README, Workers).
    """
    count, size = len(examples), examples[0].pixels.shape[0]
    shapes: dict[str, tuple[int, ...]] = {"pixels": (count, size, size, 3)}
    if examples[0].holes is not None:
        shapes["holes"] = (count, size, size)
    if _in_worker:
        # grain (and, through it, jax) is imported in grain's workers anyway; not at the top,
        # so that this module stays free of both in the trainer's own imports.
        from grain.multiprocessing import SharedMemoryArray

        batch = {key: SharedMemoryArray(shape, np.uint8) for key, shape in shapes.items()}
    else:
        batch = {key: np.empty(shape, np.uint8) for key, shape in shapes.items()}
    for row, example in enumerate(examples):
        batch["pixels"][row] = example.pixels
        if "holes" in batch:
            batch["holes"][row] = example.holes
    if examples[0].factor is not None:
        batch["factors"] = np.array([example.factor for example in examples])
    batch["skipped"] = tuple(entry for example in examples for entry in example.bad)
    return batch


def float_batch(raw: dict) -> dict:
    """The float32 batch (keys and ranges as in pconv_jax.data.pipeline) of `stack_examples`'
    output, and its `skipped` entries. Runs in the trainer's process."""
    pixels = raw["pixels"]
    count, size = pixels.shape[:2]
    image = np.multiply(pixels, np.float32(1 / 255), dtype=np.float32)
    batch = {"image": image, "skipped": raw["skipped"]}
    if "factors" in raw:
        batch["input"] = np.empty_like(image)
        batch["mask"] = np.empty((count, size, size, 1), np.float32)
        for row, factor in enumerate(raw["factors"]):
            made = sr_canvas.make_sr_example(image[row], int(factor))
            batch["input"][row], batch["mask"][row] = made
    else:
        batch["mask"] = np.subtract(1.0, raw["holes"][..., None], dtype=np.float32)
    return batch


_in_worker = False  # set by init_worker


def init_worker(worker_index: int, worker_count: int) -> None:
    """grain worker_init_fn: one OpenCV thread, no Ctrl-C, exit with the parent.

    Parallelism comes from the processes, so OpenCV's own thread pool would only oversubscribe
    the cores. SIGINT (Ctrl-C reaches the whole process group) is left to the parent, which
    closes the pipeline. A parent killed outright (SIGKILL, out of memory) cannot close it, and
    grain's workers would wait on their full output queue forever: a thread ends them instead
    (the one thing here grain does not do, tests/e2e/test_data_workers.py shows it).
    """
    global _in_worker
    del worker_index, worker_count
    _in_worker = True
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()


def _exit_with_parent() -> None:
    # The parent's end of the spawn pipe stays open as long as the parent process lives.
    parent = multiprocessing.parent_process()
    if parent is None:  # not a spawned worker: no parent to wait for
        return
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(1)
