"""The paper's mask test protocol: hole-ratio buckets, border distances and fixed test-mask sets.

Mask files are read by `pconv_jax.images` (white = hole in files, 1 = known in arrays).

The paper's test protocol (Sec. 4.1) sorts masks into six hole-to-image ratio buckets
(0.01,0.1], (0.1,0.2], ..., (0.5,0.6], each split into "N" (every hole at least 50 px from the
border of a 512x512 mask) and "B" (holes may touch the border).
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import os
import pathlib
import re

import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.images import is_image_file, list_image_files, read_holes

HOLE_RATIO_BUCKETS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
# The 12 cells of Table 1: hole-ratio bucket x N (holes away from the border) / B (touching it).
CELLS = tuple(f"{b}{side}" for b in range(len(HOLE_RATIO_BUCKETS)) for side in "NB")
NO_BORDER_MARGIN_512 = 50  # paper Sec. 4.1: "N" holes keep >= 50 px from the border at 512x512
MANIFEST_NAME = "manifest.csv"  # written by `pconv make-test-masks`
MANIFEST_COLUMNS = ("file", "bucket", "border", "hole_ratio")

# NVIDIA test-mask file names: 00000.png ... 11999.png, 2000 per bucket. Which half of each block
# of 2000 is "border"? ../shared/README.md says the SECOND half (index % 2000 >= 1000), ANCHORS.md
# D.1 (quoting a re-publication of the set) says the first. Measured on the 3000 masks in
# ../shared/data/nvidia_test_masks (250 per half-block): in every first half the closest hole
# pixel is 50..195 px from the border (exactly 50 for buckets 1-5, i.e. a 50-px band was
# cleared), in every second half it is 0..23 px. So the first 1000 are "N", the second 1000 "B";
# tests/unit/masks/test_masks.py re-measures this.
NVIDIA_NAME = re.compile(r"^(\d{5})$")
NVIDIA_PER_HALF = 1000


@dataclasses.dataclass(frozen=True)
class MaskRecord:
    """One mask of a fixed test set.

    Attributes:
      path: the mask file.
      name: file name without extension (e.g. "01234"); unique within a set.
      bucket: 0..5, the index of the hole-ratio interval in HOLE_RATIO_BUCKETS.
      border: True for "B" (holes may touch the border), False for "N".
      hole_ratio: measured fraction of hole pixels at the file's own resolution.
      border_distance: measured distance in px from the image edge to the closest hole pixel
        (0 = a hole touches the edge).
    """

    path: str
    name: str
    bucket: int | None  # None: a generated mask outside the paper's buckets (LaMa protocol)
    border: bool | None
    hole_ratio: float
    border_distance: int

    @property
    def label(self) -> str:
        """Table-1 column label, e.g. "3B" or "0N"."""
        return f"{self.bucket}{'B' if self.border else 'N'}"


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a model mask [..., 1] (1 = known) in [0, 1]."""
    return float(1.0 - np.mean(mask))


def bucket_of(ratio: float) -> int | None:
    """Index of the bucket (lo, hi] of HOLE_RATIO_BUCKETS holding `ratio`, or None."""
    for index, (lo, hi) in enumerate(HOLE_RATIO_BUCKETS):
        if lo < ratio <= hi:
            return index
    return None


def border_distance(holes: np.ndarray) -> int:
    """Distance in px from the image edge to the closest hole pixel of a [H, W] hole map.

    0 means a hole touches the edge; an image without holes returns min(H, W) // 2.
    """
    rows = np.flatnonzero(holes.any(axis=1))
    cols = np.flatnonzero(holes.any(axis=0))
    height, width = holes.shape
    if rows.size == 0:
        return min(height, width) // 2
    return int(min(rows[0], cols[0], height - 1 - rows[-1], width - 1 - cols[-1]))


def no_border_margin(size: int) -> int:
    """The "N" margin scaled to a mask of side `size` (50 px at 512)."""
    return int(round(NO_BORDER_MARGIN_512 * size / 512))


def _expected_layout(directory: pathlib.Path) -> dict[str, tuple[int, bool]]:
    """file name -> (bucket, border) from a manifest, or from NVIDIA's test-set naming."""
    manifest = directory / MANIFEST_NAME
    if manifest.is_file():
        layout = {}
        with open(manifest, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
                raise UserError(
                    f"{manifest}: expected columns {MANIFEST_COLUMNS}, got {reader.fieldnames}"
                )
            for row in reader:
                bucket = int(row["bucket"])
                if not 0 <= bucket < len(HOLE_RATIO_BUCKETS):
                    raise UserError(f"{manifest}: {row['file']} has bucket {bucket}, not 0..5")
                layout[row["file"]] = (bucket, row["border"] in ("1", "B", "True"))
        if not layout:
            raise UserError(f"{manifest} lists no masks")
        return layout
    layout = {}
    files = list_image_files(directory, recursive=False, what="mask")
    for path in files:
        match = NVIDIA_NAME.match(path.stem)
        if not match or int(match.group(1)) >= 12 * NVIDIA_PER_HALF:
            raise UserError(
                f"{directory} has no {MANIFEST_NAME} and {path.name} is not an NVIDIA test-mask "
                "name (00000.png ... 11999.png): cannot tell its bucket"
            )
        index = int(match.group(1))
        layout[path.name] = (index // (2 * NVIDIA_PER_HALF), index % (2 * NVIDIA_PER_HALF) >= 1000)
    return layout


def _measure(path: pathlib.Path, threshold: float, hole_is_white: bool) -> tuple[float, int, int]:
    """(hole ratio, border distance, short side) of one mask file."""
    holes = read_holes(path, None, threshold, hole_is_white)
    return float(holes.mean()), border_distance(holes), min(holes.shape)


def load_mask_set(
    directory: str | os.PathLike,
    threshold: float = 0.5,
    hole_is_white: bool = True,
    tolerance: float = 0.005,
    num_workers: int = 4,
) -> list[MaskRecord]:
    """Loads a fixed test-mask set and checks every mask against its bucket.

    Works for NVIDIA's test masks (names 00000..11999: bucket = index // 2000, "B" when
    index % 2000 >= 1000) and for a folder written by `pconv make-test-masks` (manifest.csv).

    Args:
      directory: the mask folder.
      threshold: binarisation threshold of the files, a fraction of full scale (see
        `pconv_jax.images.read_holes`).
      hole_is_white: polarity of the files: True when white marks the hole.
      tolerance: how far outside its bucket a measured ratio may lie before it is an error.
      num_workers: threads reading the files.

    Returns:
      MaskRecords sorted by file name.

    Raises:
      ValueError: unknown layout, or a measured hole ratio outside the bucket (the message says
        when the inverted masks would fit, i.e. the polarity is wrong), or an "N" mask with a
        hole closer than the margin to the border.
    """
    directory = pathlib.Path(directory)
    layout = _expected_layout(directory)
    paths = [directory / name for name in sorted(layout)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{directory}: {len(missing)} listed masks are missing, e.g. {missing[0]}")
    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        measured = list(pool.map(lambda p: _measure(p, threshold, hole_is_white), paths))
    records, wrong, inverted_fit, too_close = [], [], 0, []
    for path, (ratio, distance, side) in zip(paths, measured):
        bucket, border = layout[path.name]
        lo, hi = HOLE_RATIO_BUCKETS[bucket]
        if not lo - tolerance < ratio <= hi + tolerance:
            wrong.append(f"{path.name}: {ratio:.4f} not in ({lo}, {hi}]")
            inverted_fit += lo - tolerance < 1.0 - ratio <= hi + tolerance
        margin = no_border_margin(side)
        if not border and distance < margin:
            too_close.append(f"{path.name}: hole {distance} px from the border (< {margin})")
        records.append(MaskRecord(str(path), path.stem, bucket, border, ratio, distance))
    if wrong:
        hint = (
            f"; {inverted_fit} of them would fit if inverted: the polarity looks wrong "
            f"(hole_is_white={hole_is_white})"
            if inverted_fit > len(wrong) // 2
            else ""
        )
        raise UserError(
            f"{directory}: {len(wrong)} of {len(paths)} masks have a hole ratio outside their "
            f"bucket, e.g. {wrong[0]}{hint}"
        )
    if too_close:
        raise UserError(
            f"{directory}: {len(too_close)} 'no border' masks have holes near the border, "
            f"e.g. {too_close[0]}"
        )
    return records


def looks_like_test_set(directory: str | os.PathLike) -> str | None:
    """Why `directory` looks like a fixed TEST mask set, or None.

    Signs: a make-test-masks manifest; the NVIDIA folder name `testing_mask_dataset`; or
    NVIDIA test names (5 digits < 12000) whose measured ratios fit bucket = index // 2000 for
    a sample of up to 12 files spread over the folder.
    """
    root = pathlib.Path(directory)
    if (root / MANIFEST_NAME).is_file():
        return f"it holds {MANIFEST_NAME} (a set written by make-test-masks)"
    if root.name == "testing_mask_dataset":
        return "it is named testing_mask_dataset (NVIDIA's test masks)"
    # Not list_image_files: a folder holding only subfolders of masks is no test set, no error.
    files = sorted(p for p in root.iterdir() if is_image_file(p) and NVIDIA_NAME.match(p.stem))
    files = [p for p in files if int(p.stem) < 12 * NVIDIA_PER_HALF]
    if not files:
        return None
    sample = [files[i] for i in np.linspace(0, len(files) - 1, min(12, len(files))).astype(int)]
    for path in sample:
        lo, hi = HOLE_RATIO_BUCKETS[int(path.stem) // (2 * NVIDIA_PER_HALF)]
        if not lo < read_holes(path).mean() <= hi:
            return None
    return f"its files are named and bucketed like NVIDIA's test masks (e.g. {sample[0].name})"


def check_training_mask_dir(directory: str | os.PathLike, force: bool = False) -> None:
    """Refuses a test-mask folder as training masks (test-set contamination) unless forced."""
    reason = looks_like_test_set(directory)
    if reason and not force:
        raise UserError(
            f"refusing to train on {directory}: {reason}. Training on test masks contaminates "
            "the evaluation; set data.force_test_masks=true if this is really intended"
        )


def bucket_counts(records: list[MaskRecord]) -> dict[str, int]:
    """Number of records per label ("0N", "0B", ...), in bucket order."""
    counts = {f"{b}{s}": 0 for b in range(len(HOLE_RATIO_BUCKETS)) for s in "NB"}
    for record in records:
        counts[record.label] += 1
    return counts


@dataclasses.dataclass(frozen=True)
class Pair:
    index: int  # position in the plan; image_index * masks_per_image + k
    image_index: int
    mask: MaskRecord


def pair_masks(num_images: int, records, seed: int, masks_per_image: int = 1) -> list[Pair]:
    """Pairs every image with `masks_per_image` masks, no mask used twice, stratified by cell.

    A pure function of (num_images, the records' names and cells, seed). The masks of each of
    the 12 cells (bucket x N/B) are shuffled (generator seeded by (seed, cell)); the first
    num_images * masks_per_image of the round-robin sequence cell 0N, 0B, ..., 5B, 0N, ... are
    used, so every cell gets an equal share (the first cells one more when it does not divide;
    an exhausted cell is skipped); a seeded permutation of that sequence then assigns masks to
    (image, k) so that image order and cell are unrelated.

    Returns:
      Pairs ordered by index = image_index * masks_per_image + k.
    """
    need = num_images * masks_per_image
    if num_images < 1 or masks_per_image < 1:
        raise UserError(f"need >= 1 image and mask per image, got {num_images}, {masks_per_image}")
    if need > len(records):
        raise UserError(
            f"{num_images} images x {masks_per_image} masks per image need {need} distinct "
            f"masks; the mask set has {len(records)}"
        )
    by_cell = [sorted((r for r in records if r.label == c), key=lambda r: r.name) for c in CELLS]
    by_cell = [
        [cell[i] for i in np.random.default_rng([seed, n]).permutation(len(cell))]
        for n, cell in enumerate(by_cell)
    ]
    depth = max(len(cell) for cell in by_cell)
    sequence = [cell[d] for d in range(depth) for cell in by_cell if d < len(cell)][:need]
    slots = np.random.default_rng([seed, len(CELLS)]).permutation(need)
    return [Pair(i, i // masks_per_image, sequence[s]) for i, s in enumerate(slots)]
