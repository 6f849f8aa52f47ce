"""One training example as a pure function of its stream position, and the worker-process side.

`ExampleMaker.make(position)` does the CPU-heavy part of a training example in uint8: read the
image (the permutation of its epoch picks it, an unreadable file is replaced by the next
readable one), random crop/resize and flip, and the hole map (generated or an augmented raw mask)
or the super-resolution factor. `write_example` turns that into the float32 rows of a batch.
`pipeline` runs `make` in the caller, in threads, or in worker processes (`init_worker` +
`make_examples`) and always runs `write_example` in the parent, so every worker kind computes the
same bits. Worker processes write the uint8 images and hole maps into `SharedSlots`, batch-sized
buffers in shared memory, and send back only the small rest (factor, unreadable files): sending
the arrays through a pipe cost more CPU than making them at 512 px (README, Workers).

This module and everything it imports must not import jax: worker processes import it, and a
jax import would cost each of them seconds and hundreds of MB for nothing.
"""

from __future__ import annotations

import collections
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import typing

import cv2
import numpy as np

from pconv_jax.data import sources, sr_canvas
from pconv_jax.masks import generator as mask_generator

PERMUTATION, IMAGE, MASK = 0, 1, 2  # purposes mixed into the seeds


class RawExample(typing.NamedTuple):
    """The uint8 part of one training example.

    pixels: uint8 [S, S, 3], the flipped-or-not crop. holes: uint8 [S, S], 1 = hole (task
    inpaint) or None. factor: the super-resolution factor (task superres) or None. bad:
    ((index, name, error message), ...) of unreadable images met for the first time by this
    maker while reading this example.
    """

    pixels: np.ndarray
    holes: np.ndarray | None
    factor: int | None
    bad: tuple[tuple[int, str, str], ...]


class ExampleMaker:
    """Makes the examples of one process's training stream (thread-safe, picklable).

    Args:
      cfg: the DataConfig.
      source: a FileSource or TfdsSource (data.open_source), already sharded for this process.
      batch_size: the GLOBAL batch size G (position = step * G + first_row + row).
      seed: the run's seed.
      process_index: mixed into every seed; 0 for the global training stream.
      augmenter: a mask_augment.RawMaskAugmenter for data.masks=folder, else None.
      first_row: the global row of this process's first local row.
    """

    def __init__(
        self, cfg, source, batch_size: int, seed: int, process_index: int, augmenter, first_row=0
    ):
        self.cfg = cfg
        self.source = source
        self.batch_size = batch_size
        self.first_row = first_row
        self.seed = seed
        self.process_index = process_index
        self.augmenter = augmenter
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

    def make(self, position: int) -> RawExample:
        """The example at stream position `position` (= step * batch_size + row)."""
        cfg = self.cfg
        image_rng = np.random.default_rng([self.seed, self.process_index, position, IMAGE])
        mask_rng = np.random.default_rng([self.seed, self.process_index, position, MASK])
        pixels, bad = self._read(position)
        box = sources.crop_box(*pixels.shape[:2], image_rng, cfg.train_scale_max)
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
            holes = mask_generator.generate_holes(mask_rng, cfg.image_size, ratio)
        return RawExample(crop, holes, None, bad)

    def _permutation(self, epoch: int) -> np.ndarray:
        with self._lock:
            if epoch not in self._permutations:
                rng = np.random.default_rng([self.seed, self.process_index, epoch, PERMUTATION])
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
                return self.source.load(index, min_side), tuple(bad)
            except Exception as e:  # any decoder failure: corrupt, truncated, not an image
                with self._lock:
                    self._bad.add(index)
                bad.append((index, self.source.name(index), f"{type(e).__name__}: {e}"))
        raise ValueError(f"{self.source.description}: none of the {count} images is readable")


def write_example(batch: dict[str, np.ndarray], row: int, example: RawExample) -> None:
    """Writes `example` as row `row` of the float32 batch arrays (see pconv_jax.data.pipeline)."""
    image = batch["image"][row]
    np.multiply(example.pixels, np.float32(1 / 255), out=image)
    if example.factor is not None:
        batch["input"][row], batch["mask"][row] = sr_canvas.make_sr_example(image, example.factor)
    else:
        np.subtract(1.0, example.holes[..., None], out=batch["mask"][row], dtype=np.float32)


class SharedSlots:
    """uint8 batch buffers in shared memory: `pixels` [slots, B, S, S, 3], `holes` [slots, B, S, S].

    Worker processes write the examples of a batch into one slot, the parent reads them from
    there. The memory (`multiprocessing.RawArray`: /dev/shm when it has room, else a temporary
    file; unlinked at once, freed with the last mapping) can only be handed to processes as they
    are spawned (ProcessPoolExecutor initargs).
    """

    def __init__(self, slots: int, batch_size: int, size: int, with_holes: bool):
        self.shape = (slots, batch_size, size, size)
        context = multiprocessing.get_context("spawn")
        self._pixels = context.RawArray("B", math.prod(self.shape) * 3)
        self._holes = context.RawArray("B", math.prod(self.shape)) if with_holes else None
        self._make_views()

    def _make_views(self) -> None:
        self.pixels = np.frombuffer(self._pixels, np.uint8).reshape(*self.shape, 3)
        self.holes = None
        if self._holes is not None:
            self.holes = np.frombuffer(self._holes, np.uint8).reshape(self.shape)

    def __getstate__(self) -> dict:  # the shared buffers travel, the numpy views are remade
        return {"shape": self.shape, "_pixels": self._pixels, "_holes": self._holes}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._make_views()

    def example(self, slot: int, row: int, rest: RawExample) -> RawExample:
        """The full example from a worker's `rest` (arrays None) and the slot's row."""
        holes = None if self.holes is None or rest.factor is not None else self.holes[slot, row]
        return rest._replace(pixels=self.pixels[slot, row], holes=holes)


# The worker-process side: a ProcessPoolExecutor runs init_worker once per process, then
# make_examples for each task.
_worker_maker: ExampleMaker | None = None
_worker_slots: SharedSlots | None = None


def init_worker(maker: ExampleMaker, slots: SharedSlots) -> None:
    """Initialiser of a worker process: keeps `maker` and `slots`, one OpenCV thread, no Ctrl-C,
    exit with the parent.

    Parallelism comes from the processes, so OpenCV's own thread pool would only oversubscribe
    the cores. SIGINT (Ctrl-C reaches the whole process group) is left to the parent, which
    shuts the pool down; a worker killed mid-task would only add tracebacks. A parent killed
    outright (SIGKILL, out of memory) cannot shut the pool down, and the workers, which hold
    both ends of their task queue, would wait on it forever: a thread ends them instead.
    """
    global _worker_maker, _worker_slots
    _worker_maker, _worker_slots = maker, slots
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()


def _exit_with_parent() -> None:
    # The parent's end of the spawn pipe stays open as long as the parent process lives.
    multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])
    os._exit(1)


def make_examples(step: int, start: int, stop: int, slot: int) -> list[RawExample]:
    """Rows start..stop-1 of the batch of `step`, written into `slot` of the shared slots.

    Runs in a worker process set up by init_worker. Returns the examples without their arrays
    (pixels and holes None; SharedSlots.example puts them back).
    """
    first = step * _worker_maker.batch_size + _worker_maker.first_row
    rests = []
    for row in range(start, stop):
        example = _worker_maker.make(first + row)
        _worker_slots.pixels[slot, row] = example.pixels
        if example.holes is not None:
            _worker_slots.holes[slot, row] = example.holes
        rests.append(example._replace(pixels=None, holes=None))
    return rests


def worker_facts() -> dict:
    """What a worker process looks like from inside: pid, whether jax was imported (tests)."""
    return {"pid": os.getpid(), "jax_imported": "jax" in sys.modules}
