"""Training-input throughput at 256 and 512: in the caller, N threads, N processes, per core.

    python experiments/bench_data.py [--workers N] [--seconds 4] [--batch 32]

Runs `pconv_jax.data.pipeline.train_batches` (generated masks, inpainting) over real photos from
../shared: ImageNet JPEGs (~500x375) and Kodak PNGs (768x512); without ../shared it falls back
to scikit-image's photos (which the pipeline keeps decoded in memory, so those rows are not
representative). OpenCV's internal threads are off (cv2.setNumThreads(1); worker processes set
it themselves).

Rows: "caller" runs everything in the calling thread (num_workers=0); "N threads" and
"N processes" use data.worker_type=thread/process with num_workers=N (default: all cores) and
prefetch 4. Columns: img/wall-s = images per wall-clock second (what a trainer would see on
this machine); img/CPU-s = images per CPU-second of this process plus its worker processes (the
per-core figure; robust to other jobs on a shared machine); parent ms/img = CPU milliseconds of
this process per image (for processes: converting the uint8 rows the workers wrote into shared
memory to float32; the part that does not spread over workers). A second table splits the in-caller
per-image cost into its stages. Targets: >= 100 images/s per core at 256, and wall rates that
grow with N for processes (threads stop at ~1.5 cores: the GIL).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import time

import cv2
import numpy as np

from pconv_jax.config import DataConfig
from pconv_jax.data import pipeline as data
from pconv_jax.data import sources as image_sources
from pconv_jax.masks import generator as mask_generator

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def sources() -> list[tuple[str, DataConfig]]:
    found = []
    for name, folder in (("imagenet jpg", "imagenet_sample"), ("kodak png", "kodak")):
        if (SHARED / folder).is_dir():
            found.append((name, DataConfig(source="folder", dir=str(SHARED / folder))))
    return found or [("skimage (cached)", DataConfig(source="skimage"))]


def children_cpu_seconds(pids) -> float:
    """User + system CPU seconds of live processes (Linux /proc; 0 elsewhere)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def pipeline_rate(cfg: DataConfig, batch: int, seconds: float) -> tuple[float, float, float]:
    """(images per wall second, per CPU-second of all processes, parent CPU ms per image)."""
    with data.train_batches(cfg, batch, seed=0) as batches:
        for _ in range(2):  # warm-up: worker start, file cache
            next(batches)
        pool = batches._processes
        pids = list(pool._processes) if pool is not None else []
        count = 0
        cpu_start, children_start = time.process_time(), children_cpu_seconds(pids)
        wall_start = time.perf_counter()
        while time.perf_counter() - wall_start < seconds:
            next(batches)
            count += batch
        wall = time.perf_counter() - wall_start
        parent = time.process_time() - cpu_start
        children = children_cpu_seconds(pids) - children_start
    return count / wall, count / (parent + children), 1000 * parent / count


def stage_costs(cfg: DataConfig, count: int = 100) -> dict[str, float]:
    """Mean CPU milliseconds per image of each stage, in the caller."""
    source = data.open_source(cfg, cfg.train_split)
    min_side = int(np.ceil(cfg.image_size * cfg.train_scale_max))
    rng = np.random.default_rng(0)
    totals = dict.fromkeys(("decode", "crop+resize", "flip+float", "mask"), 0.0)
    out_image = np.empty((cfg.image_size, cfg.image_size, 3), np.float32)
    out_mask = np.empty((cfg.image_size, cfg.image_size, 1), np.float32)
    for i in range(count):
        t0 = time.thread_time()
        pixels = source.load(i % len(source), min_side)
        t1 = time.thread_time()
        box = image_sources.crop_box(*pixels.shape[:2], rng, cfg.train_scale_max)
        crop = image_sources.crop_resize(pixels, box, cfg.image_size)
        t2 = time.thread_time()
        np.multiply(np.ascontiguousarray(crop[:, ::-1]), np.float32(1 / 255), out=out_image)
        t3 = time.thread_time()
        holes = mask_generator.generate_holes(rng, cfg.image_size, (0.01, 0.6))
        np.subtract(1.0, holes[..., None], out=out_mask, dtype=np.float32)
        t4 = time.thread_time()
        for key, value in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += value
    return {key: 1000 * value / count for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="N (default: cores)")
    parser.add_argument("--seconds", type=float, default=4.0, help="wall time per row")
    parser.add_argument("--batch", type=int, default=32, help="local batch size")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    workers = args.workers
    modes = (
        ("caller", {"num_workers": 0, "prefetch": 0}),
        (f"{workers} threads", {"num_workers": workers, "worker_type": "thread", "prefetch": 4}),
        (f"{workers} processes", {"num_workers": workers, "worker_type": "process", "prefetch": 4}),
    )
    rows, stages = [], []
    for name, base in sources():
        for size in (256, 512):
            for label, fields in modes:
                cfg = dataclasses.replace(base, image_size=size, **fields)
                rows.append((name, size, label, *pipeline_rate(cfg, args.batch, args.seconds)))
            stages.append((name, size, stage_costs(dataclasses.replace(base, image_size=size))))
    print(f"{os.cpu_count()} CPU cores, batch {args.batch}")
    header = f"{'images':<17} {'size':>4}  {'mode':<13} {'img/wall-s':>10} {'img/CPU-s':>9}"
    print(header + f" {'parent ms/img':>13}")
    for name, size, label, per_wall, per_cpu, parent in rows:
        print(
            f"{name:<17} {size:>4}  {label:<13} {per_wall:>10.0f} {per_cpu:>9.0f} {parent:>13.2f}"
        )
    print()
    keys = list(stages[0][2])
    print(f"{'images':<17} {'size':>4}  " + " ".join(f"{k:>11}" for k in keys) + "  (CPU ms/img)")
    for name, size, costs in stages:
        print(f"{name:<17} {size:>4}  " + " ".join(f"{costs[k]:>11.2f}" for k in keys))


if __name__ == "__main__":
    main()
