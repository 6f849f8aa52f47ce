"""LaMa's evaluation masks (Suvorov et al. 2022): thin / medium / thick, at 256 and 512 px.

The parameters are those of LaMa's `configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml`
(advimman/lama, read 2026); the drawing follows the semantics of its
`saicinpainting/training/data/masks.py` (irregular strokes, rectangles) and
`bin/gen_mask_dataset.py` (a mask covering more than `max_tamper_area` = 50% is discarded). The
code here is our own, seeded with numpy Generators, so mask i of a preset is a pure function of
(seed, i); it does not reproduce LaMa's files bit for bit (they come from numpy's global RNG).

A mask is one of two kinds, chosen with probabilities proportional to `irregular_proba` = 1 and
`box_proba` (0 for thin, 0.3 for medium and thick):
- strokes: n ~ U{min_times..max_times} polylines; each starts at a uniform pixel and has
  1 + U{0..4} segments; a segment turns to angle 0.01 + U{0..max_angle-1} rad (mirrored to
  2 pi - angle for even-numbered polylines), runs 10 + U{0..max_len-1} px (end clipped to the
  image) and is drawn as an OpenCV line of width 5 + U{0..max_width-1} px (round caps);
- boxes: n ~ U{min_times..max_times} axis-aligned rectangles of side U[bbox_min, bbox_max')
  px, bbox_max' = min(bbox_max_size, side - 2 margin), placed at least `margin` px inside.

Deviation from LaMa (stated in the tables): LaMa draws on the photo resized to short side = size
(full aspect ratio), then takes a random square crop that overlaps the holes; we draw on the
size x size square (the centre crop) directly.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from pconv_jax.errors import UserError

KINDS = ("thin", "medium", "thick")
SIZES_PX = (256, 512)
MAX_HOLE_RATIO = 0.5  # gen_mask_dataset.py: max_tamper_area
MAX_DRAWS = 1000  # rejection sampling; the largest presets keep ~90% of draws


@dataclasses.dataclass(frozen=True)
class Strokes:
    min_times: int
    max_times: int
    max_width: int
    max_angle: int
    max_len: int


@dataclasses.dataclass(frozen=True)
class Boxes:
    margin: int
    bbox_min_size: int
    bbox_max_size: int
    min_times: int
    max_times: int


@dataclasses.dataclass(frozen=True)
class Preset:
    kind: str
    size: int
    strokes: Strokes
    boxes: Boxes | None  # None: box_proba = 0
    box_proba: float  # against irregular_proba = 1


# (kind, size) -> the yaml's mask_generator_kwargs.
PRESETS = {
    ("thin", 256): Preset("thin", 256, Strokes(4, 50, 10, 4, 40), None, 0.0),
    ("thin", 512): Preset("thin", 512, Strokes(4, 70, 20, 4, 100), None, 0.0),
    ("medium", 256): Preset("medium", 256, Strokes(4, 5, 50, 4, 100), Boxes(0, 10, 50, 1, 5), 0.3),
    ("medium", 512): Preset(
        "medium", 512, Strokes(4, 10, 100, 4, 200), Boxes(0, 30, 150, 1, 5), 0.3
    ),
    ("thick", 256): Preset("thick", 256, Strokes(1, 5, 100, 4, 200), Boxes(10, 30, 150, 1, 3), 0.3),
    ("thick", 512): Preset("thick", 512, Strokes(1, 5, 250, 4, 450), Boxes(10, 30, 300, 1, 4), 0.3),
}


def get_preset(kind: str, size: int) -> Preset:
    if (kind, size) not in PRESETS:
        raise UserError(
            f"LaMa's {kind!r} masks are defined for kinds {KINDS} at {SIZES_PX} px, not "
            f"{kind!r} at {size} px (use --size 256 or 512)"
        )
    return PRESETS[(kind, size)]


def stroke_segments(rng: np.random.Generator, size: int, p: Strokes) -> list[list[tuple]]:
    """The polylines of a stroke mask: per polyline, its segments ((x0, y0), (x1, y1), width)
    in px (integers), before drawing."""
    polylines = []
    for i in range(int(rng.integers(p.min_times, p.max_times + 1))):
        x, y = int(rng.integers(size)), int(rng.integers(size))
        segments = []
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(p.max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = 10 + int(rng.integers(p.max_len))
            width = 5 + int(rng.integers(p.max_width))
            # int() truncates toward zero, then clipped to [0, size] as in LaMa.
            x1 = min(max(int(x + length * math.sin(angle)), 0), size)
            y1 = min(max(int(y + length * math.cos(angle)), 0), size)
            segments.append(((x, y), (x1, y1), width))
            x, y = x1, y1
        polylines.append(segments)
    return polylines


def boxes(rng: np.random.Generator, size: int, p: Boxes) -> list[tuple[int, int, int, int]]:
    """Rectangles (x0, y0, width, height) in px of a box mask."""
    largest = min(p.bbox_max_size, size - 2 * p.margin)
    out = []
    for _ in range(int(rng.integers(p.min_times, p.max_times + 1))):
        w, h = (
            int(rng.integers(p.bbox_min_size, largest)),
            int(rng.integers(p.bbox_min_size, largest)),
        )
        x0 = int(rng.integers(p.margin, size - p.margin - w + 1))
        y0 = int(rng.integers(p.margin, size - p.margin - h + 1))
        out.append((x0, y0, w, h))
    return out


def draw(size: int, polylines=(), rects=()) -> np.ndarray:
    """Rasterises strokes and boxes: bool [size, size], True = hole."""
    canvas = np.zeros((size, size), np.uint8)
    for segments in polylines:
        for start, end, width in segments:
            cv2.line(canvas, start, end, 1, width)
    for x0, y0, w, h in rects:
        canvas[y0 : y0 + h, x0 : x0 + w] = 1
    return canvas.astype(bool)


def draw_once(rng: np.random.Generator, preset: Preset) -> np.ndarray:
    """One mask of the preset, before the area limit: bool [size, size], True = hole."""
    if preset.boxes is not None and rng.random() < preset.box_proba / (1.0 + preset.box_proba):
        return draw(preset.size, rects=boxes(rng, preset.size, preset.boxes))
    return draw(preset.size, polylines=stroke_segments(rng, preset.size, preset.strokes))


def lama_holes(seed: int, index: int, kind: str, size: int) -> np.ndarray:
    """Mask `index` of the (kind, size) preset: bool [size, size], True = hole, covering at most
    MAX_HOLE_RATIO (draws above it are discarded and redrawn, as LaMa discards them).

    A pure function of (seed, index, kind, size).
    """
    preset = get_preset(kind, size)
    rng = np.random.default_rng([seed, KINDS.index(kind), size, index])
    for _ in range(MAX_DRAWS):
        holes = draw_once(rng, preset)
        if holes.mean() <= MAX_HOLE_RATIO:
            return holes
    raise RuntimeError(f"no {kind} mask under {MAX_HOLE_RATIO} in {MAX_DRAWS} draws")  # a bug


# LaMa's area grouping (saicinpainting/evaluation/evaluator.py): hole ratio in 10 bins
# [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0] (the last one closed).
NUM_AREA_BINS = 10


def area_bin(hole_ratio: float) -> int:
    """LaMa's area bin 0..9 of a hole ratio in [0, 1]."""
    edges = np.linspace(0.0, 1.0, NUM_AREA_BINS + 1)
    index = int(np.searchsorted(edges, hole_ratio, side="right")) - 1
    return min(index, NUM_AREA_BINS - 1)


def area_bin_title(index: int) -> str:
    """'0-10%', '10-20%', ..., '90-100%' as LaMa names its groups."""
    return f"{10 * index}-{10 * (index + 1)}%"
