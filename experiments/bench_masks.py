"""Mask throughput per CPU core: the irregular-mask generator and the raw-mask augmentation.

    python experiments/bench_masks.py [--seconds 2]

Everything runs in one thread with OpenCV's own threading off (cv2.setNumThreads(1)); rates are
per CPU-second of that thread (= per core, unaffected by other processes on a shared machine),
with the wall-clock rate beside them. Rows: the generator over the default training range
(0.01, 0.6] and per test bucket (B and N modes, as make-test-masks draws them), and
RawMaskAugmenter (decode a 512x512 PNG + dilation + warp) fed with ../shared's NVIDIA test
masks as stand-in raw masks (forced past the test-set refusal; only the speed is measured).
Target: >= 500 masks/s per core at 512x512 for the generator.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time

import cv2
import numpy as np

from pconv_jax.masks import augment as mask_augment
from pconv_jax.masks import generator as mask_generator
from pconv_jax.masks import protocol as masks

SHARED_MASKS = pathlib.Path(__file__).resolve().parents[2] / "shared/data/nvidia_test_masks"


def rate(draw, seconds: float) -> tuple[float, float]:
    """Calls draw(i), i = 0, 1, ..., for about `seconds` of CPU time.

    Returns (calls per CPU-second of this thread, calls per wall-clock second). The first is the
    per-core figure; it is robust to other processes sharing the machine, the second is not.
    """
    for i in range(5):  # warm-up
        draw(i)
    count, cpu_start, wall_start = 0, time.thread_time(), time.perf_counter()
    while time.thread_time() - cpu_start < seconds:
        draw(count)
        count += 1
    return count / (time.thread_time() - cpu_start), count / (time.perf_counter() - wall_start)


def draw_generated(i, size, hole_ratio, border, margin):
    return mask_generator.generate_holes(np.random.default_rng(i), size, hole_ratio, border, margin)


def draw_augmented(i, augmenter):
    return augmenter.sample(np.random.default_rng(i))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per row")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows = []
    for size in (256, 512):
        margin = masks.no_border_margin(size)
        draw = functools.partial(
            draw_generated, size=size, hole_ratio=(0.01, 0.6), border=None, margin=0
        )
        rows.append((size, "generator (0.01,0.6] free", rate(draw, args.seconds)))
        for lo, hi in masks.HOLE_RATIO_BUCKETS:
            for border, label in ((True, "B"), (False, "N")):
                draw = functools.partial(
                    draw_generated, size=size, hole_ratio=(lo, hi), border=border, margin=margin
                )
                rows.append((size, f"generator ({lo},{hi}] {label}", rate(draw, args.seconds / 4)))
        if SHARED_MASKS.is_dir():
            augmenter = mask_augment.RawMaskAugmenter(SHARED_MASKS, size, force_test_masks=True)
            draw = functools.partial(draw_augmented, augmenter=augmenter)
            rows.append((size, "augmented raw 512 PNG (9-49 px)", rate(draw, args.seconds)))
    print(f"{'size':>5}  {'source':<34} {'masks/CPU-s':>11} {'masks/wall-s':>12}")
    for size, name, (per_cpu, per_wall) in rows:
        print(f"{size:>5}  {name:<34} {per_cpu:>11.0f} {per_wall:>12.0f}")


if __name__ == "__main__":
    main()
