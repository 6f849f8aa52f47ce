"""Run outputs: JSON-lines metrics, TensorBoard event files and a progress bar.

TensorBoard events are written with tensorboardX's public `SummaryWriter` (no TensorFlow).
Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
from tensorboardX import SummaryWriter
from tqdm import tqdm


class MetricWriter:
    """Appends `{"step": s, **scalars}` to workdir/metrics.jsonl and to TensorBoard events."""

    def __init__(self, workdir: str | pathlib.Path):
        self.enabled = jax.process_index() == 0
        self._jsonl = None
        self._events = None
        if self.enabled:
            workdir = pathlib.Path(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
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
