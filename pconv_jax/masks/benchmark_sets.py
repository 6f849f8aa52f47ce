"""Builds a fixed test-mask set in the paper's layout (`pconv make-test-masks`).

Six hole-ratio buckets x {N: holes >= 50 px (at 512) from the border, B: a hole touches the
border} x `per_bucket` masks, written as PNG (white = hole) with NVIDIA-style index names:
index = (2 * bucket + border) * per_bucket + j, so with per_bucket=1000 the names follow NVIDIA's
test set exactly (bucket = index // 2000, B = index % 2000 >= 1000). `manifest.csv` lists
file, bucket, border (1 = B), hole_ratio; `masks.load_mask_set` reads it back and re-checks.

From the generator, mask i is a pure function of (seed, i). From a folder of raw masks,
augmented candidates (seeded by (seed, attempt)) are sorted into the cells they fit; a candidate
with a hole inside the border band may also serve as an "N" mask after clearing the band, which
is what NVIDIA's own N masks show (their closest hole pixel is exactly 50 px from the border).
"""

from __future__ import annotations

import concurrent.futures
import csv
import os
import pathlib

import numpy as np

from pconv_jax import atomic, images
from pconv_jax.errors import UserError
from pconv_jax.masks import augment, generator, protocol

MAX_CANDIDATES_PER_MASK = 50  # from a folder: give up when the raw masks cannot fill a cell


def make_test_mask_set(
    out_dir: str | os.PathLike,
    size: int = 512,
    per_bucket: int = 1000,
    seed: int = 0,
    from_dir: str | os.PathLike | None = None,
    threshold: float = 0.6,
    hole_is_white: bool = True,
    num_workers: int = 2,
) -> list[protocol.MaskRecord]:
    """Writes 12 * per_bucket masks and manifest.csv into a new or empty `out_dir`.

    Args:
      out_dir: destination folder (created; must not already hold masks).
      size: mask side in px.
      per_bucket: masks per (bucket, N/B) cell; 1000 reproduces NVIDIA's 12,000 layout.
      seed: non-negative int.
      from_dir: None = the irregular-mask generator; else a folder of raw masks augmented as
        for training (threshold, dilation 9-49 px, rotation, flips, translation, crop).
      threshold, hole_is_white: how to read the raw masks of from_dir.
      num_workers: threads drawing and writing masks.

    Returns:
      The MaskRecords of the written set, in file order.
    """
    if size < 8 or per_bucket < 1 or seed < 0:
        raise UserError(
            f"need size >= 8, per_bucket >= 1, seed >= 0; got {size}, {per_bucket}, {seed}"
        )
    out = pathlib.Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; make-test-masks writes into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    margin = protocol.no_border_margin(size)
    cells = [(b, border) for b in range(len(protocol.HOLE_RATIO_BUCKETS)) for border in (0, 1)]
    if from_dir is None:
        holes_by_index = _from_generator(size, per_bucket, seed, margin, cells, num_workers)
    else:
        augmenter = augment.RawMaskAugmenter(
            from_dir, size, threshold, hole_is_white, force_test_masks=True
        )
        holes_by_index = _from_folder(augmenter, per_bucket, seed, margin, cells)
    width = max(5, len(str(len(holes_by_index) - 1)))
    names = [f"{index:0{width}d}.png" for index in range(len(holes_by_index))]
    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        list(pool.map(lambda n, h: images.write_holes(out / n, h), names, holes_by_index))
    records = []
    for index, (name, holes) in enumerate(zip(names, holes_by_index)):
        bucket, border = cells[index // per_bucket]
        ratio = float(np.count_nonzero(holes)) / holes.size
        distance = protocol.border_distance(holes)
        records.append(
            protocol.MaskRecord(str(out / name), name[:-4], bucket, bool(border), ratio, distance)
        )
    manifest = out / protocol.MANIFEST_NAME
    with atomic.replacing(manifest) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(protocol.MANIFEST_COLUMNS)
        for name, record in zip(names, records):
            writer.writerow(
                [name, record.bucket, int(bool(record.border)), f"{record.hole_ratio:.6f}"]
            )
    return records


def _from_generator(size, per_bucket, seed, margin, cells, num_workers) -> list[np.ndarray]:
    def draw(index: int) -> np.ndarray:
        bucket, border = cells[index // per_bucket]
        rng = np.random.default_rng([seed, index])
        ratio = protocol.HOLE_RATIO_BUCKETS[bucket]
        return generator.generate_holes(rng, size, ratio, border=bool(border), margin=margin)

    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        return list(pool.map(draw, range(len(cells) * per_bucket)))


def _from_folder(augmenter, per_bucket, seed, margin, cells) -> list[np.ndarray]:
    filled: dict[tuple[int, int], list[np.ndarray]] = {cell: [] for cell in cells}
    budget = MAX_CANDIDATES_PER_MASK * len(cells) * per_bucket
    for attempt in range(budget):
        if all(len(v) == per_bucket for v in filled.values()):
            break
        holes = augmenter.sample_holes(np.random.default_rng([seed, attempt]))
        touches = protocol.border_distance(holes) < margin
        bucket = protocol.bucket_of(float(np.count_nonzero(holes)) / holes.size)
        if touches and bucket is not None and len(filled[(bucket, 1)]) < per_bucket:
            filled[(bucket, 1)].append(holes)
            continue
        if touches:  # clear the border band, as NVIDIA's own "N" masks show
            holes = holes.copy()
            holes[:margin], holes[-margin:], holes[:, :margin], holes[:, -margin:] = 0, 0, 0, 0
            bucket = protocol.bucket_of(float(np.count_nonzero(holes)) / holes.size)
        if bucket is not None and len(filled[(bucket, 0)]) < per_bucket:
            filled[(bucket, 0)].append(holes)
    short = {f"{b}{'B' if s else 'N'}": per_bucket - len(v) for (b, s), v in filled.items()}
    short = {k: v for k, v in short.items() if v}
    if short:
        raise UserError(
            f"the raw masks in {augmenter.directory} could not fill every "
            f"cell after {budget} augmented candidates; missing per cell: {short}"
        )
    return [holes for cell in cells for holes in filled[cell]]
