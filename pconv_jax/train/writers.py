"""Run outputs: JSON-lines metrics, TensorBoard event files, a progress bar, and the per-step
metrics of training averaged over each log interval.

TensorBoard events are written with tensorboardX's public `SummaryWriter` (no TensorFlow).
Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

import json
import logging
import pathlib
import sys
import time
from collections.abc import Callable

import jax
import numpy as np
from tqdm import tqdm

from pconv_jax import atomic

log = logging.getLogger(__name__)
# The loss terms the log line shows (every term still goes to the metric files).
LOGGED_TERMS = ("valid", "hole", "perceptual", "style_out", "tv")


class MetricWriter:
    """Appends `{"step": s, **scalars}` to workdir/metrics.jsonl and to TensorBoard events."""

    def __init__(self, workdir: str | pathlib.Path):
        self.enabled = jax.process_index() == 0
        self._jsonl = None
        self._events = None
        if self.enabled:
            # Imported here: tensorboardX imports torch when it is installed (~5 s), which every
            # `pconv` command would pay at start-up through cli -> train; only a run writes events.
            from tensorboardX import SummaryWriter

            workdir = pathlib.Path(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            atomic.cut_torn_line(workdir / "metrics.jsonl")  # a killed run's half line
            self._jsonl = open(workdir / "metrics.jsonl", "a", encoding="utf-8")
            self._events = SummaryWriter(str(workdir / "tensorboard"))

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        if self._jsonl is None or self._events is None:  # not process 0
            return
        values = {k: float(v) for k, v in scalars.items()}
        self._jsonl.write(json.dumps({"step": int(step), **values}) + "\n")
        self._jsonl.flush()
        for tag, value in values.items():
            self._events.add_scalar(tag, value, int(step))
        self._events.flush()

    def close(self) -> None:
        if self._jsonl is not None and self._events is not None:
            self._jsonl.close()
            self._events.close()


class ProgressBar:
    """Training progress: a tqdm bar (ETA, loss, images/s) on a terminal, process 0 only."""

    def __init__(self, start: int, total: int):
        self.bar = None
        if jax.process_index() == 0 and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(self, steps: int, scalars: dict) -> None:
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix(
                loss=f"{scalars['train/total']:.4f}", img_s=f"{scalars['train/images_per_sec']:.1f}"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StepMetrics:
    """The train step's device metrics, fetched and averaged once per log interval.

    Steps are dispatched before their metrics are read (reading each would make the host wait
    for the device every step). `add` keeps a step's metrics; `flush` fetches the pending ones,
    stops on a non-finite loss, and writes their means with images/s and the learning rate to
    the metric files, the progress bar and the log. The first step includes compilation and is
    not timed (`start_timing` after it).
    """

    def __init__(
        self,
        writer: MetricWriter,
        progress: ProgressBar,
        global_batch: int,
        learning_rate_at: Callable[[int], float],
        last_good_step: Callable[[], int | None],
    ):
        self.writer, self.progress = writer, progress
        self.global_batch = global_batch
        self.learning_rate_at, self.last_good_step = learning_rate_at, last_good_step
        self.pending: list[tuple[int, dict]] = []
        self.last: dict[str, float] = {}
        self.t_mark: float | None = None
        self.timed_steps = 0

    def add(self, step: int, metrics: dict) -> None:
        """Keeps the device metrics of the step that made `step` steps done."""
        self.pending.append((step - 1, metrics))
        if self.t_mark is not None:
            self.timed_steps += 1

    def start_timing(self) -> None:
        self.t_mark = time.time()

    def flush(self, step: int) -> None:
        """Writes the mean of the pending steps' metrics at `step`; FloatingPointError naming the
        first step whose loss was not finite (the state kept the step before it)."""
        if not self.pending:
            return
        fetched = jax.device_get([m for _, m in self.pending])
        for (s, _), m in zip(self.pending, fetched):
            if m["finite"] < 1:
                raise FloatingPointError(
                    f"non-finite loss at step {s + 1}; stopped, the last good checkpoint is "
                    f"step {self.last_good_step()}"
                )
        scalars = {
            f"train/{k}": float(np.mean([m[k] for m in fetched]))
            for k in fetched[0]
            if k != "finite"
        }
        now = time.time()
        elapsed = now - self.t_mark if self.t_mark is not None else 0.0
        images = self.timed_steps * self.global_batch
        scalars["train/images_per_sec"] = images / elapsed if elapsed else 0.0
        scalars["train/learning_rate"] = self.learning_rate_at(step - 1)
        self.writer.write_scalars(step, scalars)
        self.progress.update(len(self.pending), scalars)
        terms = ", ".join(
            f"{k} {scalars[f'train/{k}']:.4g}" for k in LOGGED_TERMS if f"train/{k}" in scalars
        )
        log.info(
            "step %d: loss %.4f (%s), %.1f images/s",
            step,
            scalars["train/total"],
            terms,
            scalars["train/images_per_sec"],
        )
        self.pending.clear()
        if self.t_mark is not None:
            self.t_mark, self.timed_steps = now, 0
        self.last = scalars
