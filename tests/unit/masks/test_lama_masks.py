"""LaMa's thin/medium/thick masks (masks/lama.py) against the parameters of LaMa's
configs/data_gen/random_*_{256,512}.yaml, and LaMa's 10 area bins."""

import math
import random

import numpy as np
import pytest

from pconv_jax.masks import lama

# The yaml files' mask_generator_kwargs, typed again here from advimman/lama (2026):
# irregular_kwargs (min_times, max_times, max_width, max_angle, max_len) and box_kwargs
# (margin, bbox_min_size, bbox_max_size, min_times, max_times) or None when box_proba = 0.
YAML = {
    ("thin", 256): ((4, 50, 10, 4, 40), None),
    ("thin", 512): ((4, 70, 20, 4, 100), None),
    ("medium", 256): ((4, 5, 50, 4, 100), (0, 10, 50, 1, 5)),
    ("medium", 512): ((4, 10, 100, 4, 200), (0, 30, 150, 1, 5)),
    ("thick", 256): ((1, 5, 100, 4, 200), (10, 30, 150, 1, 3)),
    ("thick", 512): ((1, 5, 250, 4, 450), (10, 30, 300, 1, 4)),
}


@pytest.mark.parametrize("kind,size", sorted(YAML))
def test_presets_are_the_yaml_parameters(kind, size):
    strokes, box = YAML[(kind, size)]
    preset = lama.get_preset(kind, size)
    assert dataclass_tuple(preset.strokes) == strokes
    assert (box is None) == (preset.boxes is None) and preset.box_proba == (0.3 if box else 0)
    if box:
        assert dataclass_tuple(preset.boxes) == box


def dataclass_tuple(x):
    return tuple(getattr(x, f) for f in x.__dataclass_fields__)


@pytest.mark.parametrize("kind,size", sorted(YAML))
def test_drawn_primitives_cover_exactly_the_parameter_ranges(kind, size):
    (min_t, max_t, max_w, max_angle, max_len), box = YAML[(kind, size)]
    rng = np.random.default_rng(0)
    preset = lama.get_preset(kind, size)
    polylines = [lama.stroke_segments(rng, size, preset.strokes) for _ in range(1500)]
    counts = [len(p) for p in polylines]
    assert (min(counts), max(counts)) == (min_t, max_t)
    segments = [s for p in polylines for poly in p for s in poly]
    per_polyline = [len(poly) for p in polylines for poly in p]
    assert (min(per_polyline), max(per_polyline)) == (1, 5)
    widths = np.array([w for _, _, w in segments])
    assert (widths.min(), widths.max()) == (5, 4 + max_w)
    # Uniform widths: mean within 4 standard errors of 5 + (max_w - 1) / 2.
    se = math.sqrt((max_w**2 - 1) / 12 / len(widths))
    assert abs(widths.mean() - (5 + (max_w - 1) / 2)) < 4 * se
    lengths = np.array([math.dist(a, b) for a, b, _ in segments])
    # int() truncates each end coordinate toward zero: up to 1 px longer per axis.
    assert lengths.max() <= 9 + max_len + math.sqrt(2)
    allowed = [a for k in range(max_angle) for a in (0.01 + k, 2 * math.pi - 0.01 - k)]
    for (x0, y0), (x1, y1), _ in segments:
        assert 0 <= x1 <= size and 0 <= y1 <= size
        if 0 < x1 < size and 0 < y1 < size and math.dist((x0, y0), (x1, y1)) > 30:
            # Not clipped, and long enough for the truncation to blur the angle little.
            angle = math.atan2(x1 - x0, y1 - y0)
            gaps = [abs((angle - a + math.pi) % (2 * math.pi) - math.pi) for a in allowed]
            assert min(gaps) < 0.05
    if box:
        margin, lo, hi, bmin, bmax = box
        rects = [lama.boxes(rng, size, preset.boxes) for _ in range(1500)]
        assert (min(map(len, rects)), max(map(len, rects))) == (bmin, bmax)
        sides = [s for r in rects for x0, y0, w, h in r for s in (w, h)]
        assert (min(sides), max(sides)) == (lo, min(hi, size - 2 * margin) - 1)
        for x0, y0, w, h in (b for r in rects for b in r):
            assert x0 >= margin and y0 >= margin
            assert x0 + w <= size - margin and y0 + h <= size - margin


@pytest.mark.parametrize("width", [5, 6, 14, 49])
def test_stroke_width_on_the_drawn_mask(width):
    """A horizontal segment drawn with width w is w..w+2 px thick across (OpenCV rounds the
    thickness up); a diagonal one the same, give or take the sqrt(2) px sampling of the
    anti-diagonal on either side."""
    horizontal = lama.draw(128, polylines=[[((20, 64), (100, 64), width)]])
    assert width <= horizontal[:, 60].sum() <= width + 2
    diagonal = lama.draw(128, polylines=[[((20, 20), (100, 100), width)]])
    across = sum(diagonal[60 + k, 60 - k] for k in range(-40, 41)) * math.sqrt(2)
    assert width - math.sqrt(2) <= across <= width + 2 + 2 * math.sqrt(2)


def _independent_hole_ratios(kind, size, count, seed):
    """Hole ratios of `count` masks simulated from the YAML numbers alone: Python's `random`,
    strokes rasterised as capsules of radius w / 2 + 0.75 (OpenCV's lines of width w are
    w + 1.5 px thick on average, see test_stroke_width_on_the_drawn_mask), area > 0.5 redrawn."""
    (min_t, max_t, max_w, max_angle, max_len), box = YAML[(kind, size)]
    r = random.Random(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ratios = []
    while len(ratios) < count:
        hole = np.zeros((size, size), bool)
        if box and r.random() < 0.3 / 1.3:
            margin, lo, hi, bmin, bmax = box
            hi = min(hi, size - 2 * margin)
            for _ in range(r.randint(bmin, bmax)):
                w, h = r.randrange(lo, hi), r.randrange(lo, hi)
                x0, y0 = r.randint(margin, size - margin - w), r.randint(margin, size - margin - h)
                hole[y0 : y0 + h, x0 : x0 + w] = True
        else:
            for i in range(r.randint(min_t, max_t)):
                x, y = r.randrange(size), r.randrange(size)
                for _ in range(r.randint(1, 5)):
                    angle = 0.01 + r.randrange(max_angle)
                    angle = 2 * math.pi - angle if i % 2 == 0 else angle
                    length, width = 10 + r.randrange(max_len), 5 + r.randrange(max_w)
                    x1 = min(max(int(x + length * math.sin(angle)), 0), size)
                    y1 = min(max(int(y + length * math.cos(angle)), 0), size)
                    dx, dy = x1 - x, y1 - y
                    t = ((xx - x) * dx + (yy - y) * dy) / max(dx * dx + dy * dy, 1e-9)
                    t = np.clip(t, 0.0, 1.0)
                    dist2 = (xx - x - t * dx) ** 2 + (yy - y - t * dy) ** 2
                    hole |= dist2 <= (width / 2 + 0.75) ** 2
                    x, y = x1, y1
        if hole.mean() <= 0.5:
            ratios.append(hole.mean())
    return np.array(ratios)


@pytest.mark.parametrize("kind", lama.KINDS)
def test_hole_ratio_histograms_match_a_simulation_of_the_parameters(kind):
    """10-bin hole-ratio histograms (LaMa's bins) of 300 masks at 256 px against 300
    independently simulated ones: total variation < 0.15, means within 0.03 (measured: TV
    0.04-0.08, mean gaps <= 0.01)."""
    ours = np.array([lama.lama_holes(0, i, kind, 256).mean() for i in range(300)])
    theirs = _independent_hole_ratios(kind, 256, 300, seed=1)
    assert ours.max() <= lama.MAX_HOLE_RATIO and ours.min() > 0
    hist = lambda r: np.bincount([lama.area_bin(x) for x in r], minlength=10) / len(r)
    tv = 0.5 * np.abs(hist(ours) - hist(theirs)).sum()
    assert tv < 0.15, (hist(ours), hist(theirs))
    assert abs(ours.mean() - theirs.mean()) < 0.03


def test_masks_are_deterministic_and_distinct():
    first = lama.lama_holes(3, 7, "medium", 256)
    assert first.dtype == bool and first.shape == (256, 256)
    assert np.array_equal(first, lama.lama_holes(3, 7, "medium", 256))
    assert not np.array_equal(first, lama.lama_holes(4, 7, "medium", 256))
    assert not np.array_equal(first, lama.lama_holes(3, 8, "medium", 256))
    assert not np.array_equal(
        lama.lama_holes(3, 7, "thin", 256), lama.lama_holes(3, 7, "thick", 256)
    )
    with pytest.raises(ValueError, match="at \\(256, 512\\) px"):
        lama.lama_holes(0, 0, "thin", 128)


def test_area_bins_are_lamas():
    # saicinpainting/evaluation/evaluator.py: searchsorted(linspace(0, 1, 11), area, 'right')
    # - 1, with area 1 in the last bin.
    assert [lama.area_bin(x) for x in (0.0, 0.0999, 0.1, 0.25, 0.5, 0.95, 1.0)] == [
        0, 0, 1, 2, 5, 9, 9,
    ]  # fmt: skip
    assert [lama.area_bin_title(b) for b in (0, 9)] == ["0-10%", "90-100%"]
