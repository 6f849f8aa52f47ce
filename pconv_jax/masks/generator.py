"""Fast seeded irregular-mask generator: free-form strokes and ellipses hitting a hole-ratio range.

For users without NVIDIA's mask dataset, for tests, and for `pconv make-test-masks`. Shapes are
drawn with OpenCV (no anti-aliasing, so masks are binary) until the hole area reaches a target
drawn uniformly from the requested range; a shape that would overshoot the range is undone and
redrawn smaller. Each shape's area is a fraction of the area still missing, so a mask needs only
a handful of shapes (about 0.4 ms per 256x256 mask and 0.6 ms per 512x512 on one core over
the range (0.01, 0.6], experiments/bench_masks.py). Output is a pure function of the rng state.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MAX_SHAPES = 400  # a safety cap; typical masks need 2-20 shapes
STROKE_PROBABILITY = 0.7  # otherwise a filled ellipse ("blob")


def generate_holes(
    rng: np.random.Generator,
    size: int | tuple[int, int],
    hole_ratio: tuple[float, float] = (0.01, 0.6),
    border: bool | None = None,
    margin: int = 0,
) -> np.ndarray:
    """Draws one irregular hole map.

    Args:
      rng: numpy Generator; the result depends only on its state.
      size: int (square) or (height, width) in px.
      hole_ratio: (lo, hi); the hole fraction of the result lies in (lo, hi].
      border: None = holes anywhere (shapes start slightly outside the image too, so some touch
        the border); True = at least one hole touches the image edge; False = every hole keeps
        at least `margin` px from the edge (the paper's "no border" masks: 50 px at 512).
      margin: see `border=False`.

    Returns:
      uint8 [height, width], 1 = hole, 0 = known.

    Raises:
      ValueError: an empty or impossible range (e.g. more hole area than fits inside the margin).
    """
    height, width = (size, size) if isinstance(size, int) else size
    lo, hi = hole_ratio
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"hole_ratio must satisfy 0 <= lo < hi <= 1, got {hole_ratio}")
    total = height * width
    n_lo, n_hi = math.floor(lo * total) + 1, math.floor(hi * total)
    inner = margin if border is False else 0
    if inner < 0 or 2 * inner >= min(height, width):
        raise ValueError(f"margin {margin} leaves no room in a {height}x{width} mask")
    canvas = np.zeros((height - 2 * inner, width - 2 * inner), np.uint8)
    if n_lo > n_hi or n_lo > canvas.size:
        raise ValueError(
            f"no {height}x{width} mask has a hole ratio in ({lo}, {hi}] "
            f"with {canvas.size} drawable pixels"
        )
    target = int(rng.integers(n_lo, n_hi + 1))
    count, shrink = 0, 1.0
    need_edge = border is True
    for _ in range(MAX_SHAPES):
        if count >= target and not need_edge:
            break
        missing = max(target - count, 16)
        area = min(missing * rng.uniform(0.5, 1.2) * shrink, 0.2 * total)
        draw, (x0, y0, x1, y1) = _plan_shape(canvas.shape, rng, area, need_edge, border is None)
        # Count and undo inside the shape's bounding box only: cost grows with the shape, not
        # with the canvas.
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
        if x0 >= x1 or y0 >= y1:
            continue  # the shape lies outside the canvas
        region = canvas[y0:y1, x0:x1]
        saved = region.copy()
        before = int(np.count_nonzero(saved))
        draw(canvas)
        new_count = count + int(np.count_nonzero(region)) - before
        if new_count > n_hi:
            region[...] = saved
            shrink *= 0.5
            continue
        count = new_count
        if need_edge:
            need_edge = not _touches_edge(canvas)
    if not n_lo <= count <= n_hi or need_edge:
        raise RuntimeError(f"mask generation did not converge ({count} hole px, want {target})")
    if inner:
        canvas = np.pad(canvas, inner)
    return canvas


def _touches_edge(canvas: np.ndarray) -> bool:
    return bool(canvas[0].any() or canvas[-1].any() or canvas[:, 0].any() or canvas[:, -1].any())


def _edge_point(rng: np.random.Generator, height: int, width: int) -> tuple[float, float]:
    side, t = rng.integers(4), rng.random()
    return [
        (t * width, 0.0),
        (t * width, height - 1.0),
        (0.0, t * height),
        (width - 1.0, t * height),
    ][side]


def _plan_shape(shape, rng, area: float, from_edge: bool, free: bool):
    """One stroke or ellipse of roughly `area` px (before overlap and clipping).

    Returns (draw, bbox): draw(canvas) draws it; bbox = (x0, y0, x1, y1) bounds every pixel it
    can touch (exclusive upper ends, possibly outside the canvas).
    """
    height, width = shape
    side = min(height, width)
    if from_edge:
        x, y = _edge_point(rng, height, width)
    elif free:  # anywhere; long strokes and big blobs still run off the border now and then
        x, y = rng.random() * width, rng.random() * height
    else:
        x, y = rng.random() * (width - 1), rng.random() * (height - 1)
    if from_edge or rng.random() < STROKE_PROBABILITY:
        return _plan_stroke(rng, x, y, area, side)
    return _plan_ellipse(rng, x, y, area, side)


def _plan_stroke(rng, x: float, y: float, area: float, side: int):
    """A free-form brush stroke: 2-8 segments with turning direction and varying width."""
    width = max(2.0, rng.uniform(0.012, 0.07) * side)
    max_length = rng.uniform(0.3, 1.2) * side
    if area > width * max_length:  # too much area for one thin stroke: widen it, up to a limit
        width = min(area / max_length, 0.12 * side)
    width = min(width, max(2.0, math.sqrt(area)))  # a small area gets a short thin stroke
    num_segments = int(rng.integers(2, 9))
    length = min(area / width, max_length) / num_segments
    angles = rng.uniform(0.0, 2.0 * math.pi) + np.cumsum(rng.normal(0.0, 0.9, num_segments))
    xs = np.concatenate([[x], x + length * np.cumsum(np.cos(angles))]).astype(int)
    ys = np.concatenate([[y], y + length * np.cumsum(np.sin(angles))]).astype(int)
    thicknesses = np.maximum(1, np.rint(width * rng.uniform(0.7, 1.3, num_segments))).astype(int)
    reach = int(thicknesses.max()) // 2 + 2
    bbox = (xs.min() - reach, ys.min() - reach, xs.max() + reach + 1, ys.max() + reach + 1)

    def draw(canvas):
        points = list(zip(xs.tolist(), ys.tolist()))
        for (p, q), thickness in zip(zip(points[:-1], points[1:]), thicknesses.tolist()):
            cv2.line(canvas, p, q, 1, thickness, cv2.LINE_8)

    return draw, tuple(int(v) for v in bbox)


def _plan_ellipse(rng, x: float, y: float, area: float, side: int):
    elongation = rng.uniform(1.0, 3.0)
    axis_a = max(1, int(round(min(math.sqrt(area * elongation / math.pi), side / 2))))
    axis_b = max(1, int(round(min(area / (math.pi * axis_a), side / 2))))
    angle = rng.uniform(0.0, 180.0)
    center = (int(x), int(y))
    reach = max(axis_a, axis_b) + 2
    bbox = (center[0] - reach, center[1] - reach, center[0] + reach + 1, center[1] + reach + 1)

    def draw(canvas):
        cv2.ellipse(canvas, center, (axis_a, axis_b), angle, 0.0, 360.0, 1, -1, cv2.LINE_8)

    return draw, bbox
