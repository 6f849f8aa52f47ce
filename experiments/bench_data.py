"""Training-input throughput per CPU core at 256 and 512: decode + crop/resize + flip + mask.

    python experiments/bench_data.py [--seconds 4]

Runs `pconv_jax.data.train_batches` (generated masks, inpainting) over real photos from
../shared: ImageNet JPEGs (~500x375) and Kodak PNGs (768x512); without ../shared it falls back
to scikit-image's photos (which the pipeline keeps decoded in memory, so those rows are not
representative). OpenCV's internal threads are off (cv2.setNumThreads(1)).

Columns: img/CPU-s = images per CPU-second of the whole process (the per-core figure; robust to
other processes on a shared machine); img/wall-s = images per wall-clock second. Rows "serial"
run everything in the calling thread (num_workers=0); rows "2 workers" use the pipeline's
background threads (num_workers=2, prefetch=4), whose wall rate is what a trainer would see on
this machine. A second table splits the serial per-image cost into its stages.
Target: >= 100 images/s per core at 256.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time

import cv2
import numpy as np

from pconv_jax import data, images, mask_generator
from pconv_jax.config import DataConfig

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
BATCH = 8


def sources() -> list[tuple[str, DataConfig]]:
    found = []
    for name, folder in (("imagenet jpg", "imagenet_sample"), ("kodak png", "kodak")):
        if (SHARED / folder).is_dir():
            found.append((name, DataConfig(source="folder", dir=str(SHARED / folder))))
    return found or [("skimage (cached)", DataConfig(source="skimage"))]


def pipeline_rate(cfg: DataConfig, seconds: float) -> tuple[float, float]:
    """(images per process CPU-second, images per wall second) of train_batches."""
    with data.train_batches(cfg, BATCH, seed=0) as batches:
        for _ in range(2):  # warm-up: thread start, file cache
            next(batches)
        count, cpu_start, wall_start = 0, time.process_time(), time.perf_counter()
        while time.perf_counter() - wall_start < seconds:
            next(batches)
            count += BATCH
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    return count / cpu, count / wall


def stage_costs(cfg: DataConfig, count: int = 100) -> dict[str, float]:
    """Mean CPU milliseconds per image of each stage, serial."""
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
        box = images.crop_box(*pixels.shape[:2], rng, cfg.train_scale_max)
        crop = images.crop_resize(pixels, box, cfg.image_size)
        t2 = time.thread_time()
        np.multiply(crop[:, ::-1], np.float32(1 / 255), out=out_image)
        t3 = time.thread_time()
        holes = mask_generator.generate_holes(rng, cfg.image_size, (0.01, 0.6))
        np.subtract(1.0, holes[..., None], out=out_mask, dtype=np.float32)
        t4 = time.thread_time()
        for key, value in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += value
    return {key: 1000 * value / count for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="wall time per row")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows, stages = [], []
    for name, base in sources():
        for size in (256, 512):
            for label, workers, prefetch in (("serial", 0, 0), ("2 workers", 2, 4)):
                cfg = dataclasses.replace(
                    base, image_size=size, num_workers=workers, prefetch=prefetch
                )
                rows.append((name, size, label, *pipeline_rate(cfg, args.seconds)))
            stages.append((name, size, stage_costs(dataclasses.replace(base, image_size=size))))
    print(f"{'images':<17} {'size':>4}  {'mode':<10} {'img/CPU-s':>9} {'img/wall-s':>10}")
    for name, size, label, per_cpu, per_wall in rows:
        print(f"{name:<17} {size:>4}  {label:<10} {per_cpu:>9.0f} {per_wall:>10.0f}")
    print()
    keys = list(stages[0][2])
    print(f"{'images':<17} {'size':>4}  " + " ".join(f"{k:>11}" for k in keys) + "  (CPU ms/img)")
    for name, size, costs in stages:
        print(f"{name:<17} {size:>4}  " + " ".join(f"{costs[k]:>11.2f}" for k in keys))


if __name__ == "__main__":
    main()
