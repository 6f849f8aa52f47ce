"""Irregular-mask generator (ratio targeting, determinism, border modes); mask augmentation."""

import cv2
import numpy as np
import pytest

from pconv_jax import images
from pconv_jax.masks import augment as mask_augment
from pconv_jax.masks import generator as mask_generator
from pconv_jax.masks import protocol as masks


@pytest.mark.parametrize("bucket", range(6))
def test_generator_hits_every_bucket(bucket):
    lo, hi = masks.HOLE_RATIO_BUCKETS[bucket]
    for seed in range(15):
        for border in (None, True, False):
            holes = mask_generator.generate_holes(
                np.random.default_rng([bucket, seed]), 64, (lo, hi), border=border, margin=6
            )
            ratio = holes.mean()
            assert lo < ratio <= hi, (seed, border, ratio)
            if border is True:
                assert masks.border_distance(holes) == 0
            if border is False:
                assert masks.border_distance(holes) >= 6


def test_generator_is_deterministic_binary_and_spread():
    def draw(seed):
        return mask_generator.generate_holes(np.random.default_rng(seed), (48, 80), (0.05, 0.5))

    first, again, other = draw(7), draw(7), draw(8)
    assert first.dtype == np.uint8 and first.shape == (48, 80)
    assert set(np.unique(first)) <= {0, 1}
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    ratios = [draw(s).mean() for s in range(60)]
    # The target is drawn uniformly from the range: both halves of it get used.
    assert min(ratios) < 0.2 and max(ratios) > 0.35
    # Free mode: some masks touch the border and some do not (at small ratios).
    small = [
        mask_generator.generate_holes(np.random.default_rng(s), 128, (0.01, 0.05))
        for s in range(40)
    ]
    touching = sum(masks.border_distance(h) == 0 for h in small)
    assert 0 < touching < 40


def test_generator_rejects_impossible_ranges():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="hole_ratio"):
        mask_generator.generate_holes(rng, 32, (0.3, 0.2))
    with pytest.raises(ValueError, match="no 4x4 mask"):
        mask_generator.generate_holes(rng, 4, (0.01, 0.05))  # 16 px: no count in (0.16, 0.8]
    with pytest.raises(ValueError, match="drawable"):
        mask_generator.generate_holes(rng, 32, (0.5, 0.6), border=False, margin=10)
    with pytest.raises(ValueError, match="margin"):
        mask_generator.generate_holes(rng, 32, (0.1, 0.2), border=False, margin=16)


def test_dilate_holes_is_a_disc():
    holes = np.zeros((11, 11), np.uint8)
    holes[5, 5] = 1
    dilated = mask_augment.dilate_holes(holes, 5)  # radius 2
    rows, cols = np.mgrid[:11, :11]
    # Exact Euclidean disc of radius 2: (1, 1) is in (sqrt 2), (2, 1) is out (sqrt 5).
    np.testing.assert_array_equal(
        dilated, ((rows - 5) ** 2 + (cols - 5) ** 2 <= 4).astype(np.uint8)
    )
    np.testing.assert_array_equal(mask_augment.dilate_holes(holes, 1), holes)


def test_augmentation_geometry_matches_direct_sampling():
    """Without dilation, the warp equals sampling the raw mask at
    centre + R(theta) @ diag(flips) @ ((u, v) - (size - 1) / 2) * side / size, computed here
    point by point with numpy (draws taken in the function's order: side, centre, theta, flips).
    """
    raw = np.zeros((60, 90), bool)
    raw[10:30, 20:70] = True
    raw[40:55, 5:25] = True
    size = 40
    for seed in range(6):
        out = mask_augment.augment_holes(raw, size, np.random.default_rng(seed), dilation=(0, 0))
        rng = np.random.default_rng(seed)
        side = rng.uniform(*mask_augment.CROP_SCALE) * 60
        cx, cy = rng.uniform(0, 90), rng.uniform(0, 60)
        theta = rng.uniform(0.0, 2.0 * np.pi)
        fx, fy = rng.choice((-1.0, 1.0), size=2)
        v, u = np.mgrid[:size, :size].astype(np.float64)
        du, dv = (u - (size - 1) / 2) * fx * side / size, (v - (size - 1) / 2) * fy * side / size
        x = cx + np.cos(theta) * du - np.sin(theta) * dv
        y = cy + np.sin(theta) * du + np.cos(theta) * dv
        xi, yi = np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int)
        inside = (xi >= 0) & (xi < 90) & (yi >= 0) & (yi < 60)
        expected = np.zeros((size, size), np.uint8)
        expected[inside] = raw[yi[inside], xi[inside]]
        # Pixels exactly between two source pixels may round either way.
        assert np.mean(out != expected) < 0.02, seed
        assert set(np.unique(out)) <= {0, 1}


def test_augmenter_keeps_masks_binary_and_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        gray = np.zeros((80, 100), np.uint8)
        for _ in range(4):
            center = tuple(int(v) for v in rng.integers(0, 80, 2))
            cv2.line(gray, center, (center[0] + 30, center[1] + 5), 200, 3)  # 200 > 0.6 * 255
            cv2.circle(gray, center, 4, 120, -1)  # grey 120 < 153: not a hole after threshold
        assert cv2.imwrite(str(tmp_path / f"m{i}.png"), gray)
    augmenter = mask_augment.RawMaskAugmenter(tmp_path, 32, threshold=0.6, hole_ratio=(0.02, 0.9))
    assert len(augmenter) == 3
    for seed in range(10):
        mask = augmenter.sample(np.random.default_rng(seed))
        assert mask.shape == (32, 32, 1) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        np.testing.assert_array_equal(mask, augmenter.sample(np.random.default_rng(seed)))
    # Dilation grows holes: the same draw with a larger disc has at least as many hole pixels.
    raw = images.read_holes(augmenter.files[0], threshold=0.6)
    grown = 0
    for seed in range(10):
        thin = mask_augment.augment_holes(raw, 32, np.random.default_rng(seed), dilation=(1, 1))
        thick = mask_augment.augment_holes(raw, 32, np.random.default_rng(seed), dilation=(25, 25))
        assert np.all(thick >= thin)
        grown += thick.sum() > thin.sum()
    assert grown >= 5


def test_augmenter_input_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        mask_augment.RawMaskAugmenter(tmp_path / "nope", 32)
    with pytest.raises(ValueError, match="no mask files"):
        mask_augment.RawMaskAugmenter(tmp_path, 32)
