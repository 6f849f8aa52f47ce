"""strategy='crop': grouping, crop boxes, and fills equal to running each crop by hand."""

import numpy as np
import pytest

from pconv_jax import Inpainter
from pconv_jax.inference.crop_strategy import crop_box, hole_groups


@pytest.fixture(scope="module")
def inpainter(run_dir):
    return Inpainter.load(run_dir, batch_size=4)  # tiny run: train_size 32


def _photo(height, width, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([np.sin(xx / 11 + c) * 0.4 + 0.5 + 0.1 * np.cos(yy / 5) for c in range(3)], -1)
    return np.round(np.clip(base + 0.02 * rng.normal(size=base.shape), 0, 1) * 255).astype(np.uint8)


def test_hole_groups_join_near_holes_only():
    hole = np.zeros((100, 200), bool)
    hole[10:14, 10:14] = True
    hole[10:14, 17:20] = True  # 3 px away from the first: same group with join_px=8
    hole[80:90, 150:160] = True  # far away: its own group
    groups = hole_groups(hole, join_px=8)
    assert sorted(int(g.sum()) for g in groups) == [16 + 12, 100]
    np.testing.assert_array_equal(np.logical_or.reduce(groups), hole)


def test_crop_box_rule():
    group = np.zeros((200, 300), bool)
    group[5:15, 290:296] = True  # e = 10: side T = 32, shifted inside the image
    assert crop_box(group, 32) == (0, 268, 32)
    group[:] = False
    group[100:160, 50:90] = True  # e = 60: side 120, centred on (130, 70)
    assert crop_box(group, 32) == (70, 10, 120)
    group[:] = False
    group[20:130, 20:40] = True  # e = 110: side 220 > 200 -> fallback
    assert crop_box(group, 32) is None


def test_crop_fills_equal_each_crop_run_by_hand(inpainter):
    image = _photo(120, 200)
    known = np.ones((120, 200), bool)
    known[20:26, 30:36] = False  # small: native-resolution 32x32 crop at (7, 17)
    known[50:90, 110:150] = False  # e = 40: 80x80 crop at (30, 90), shrunk to 32
    known[100:118, 2:80] = False  # e = 78: 156 > 120 -> whole-image downscale
    out = inpainter(image, known, strategy="crop")
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[known], image[known])

    # Independent: each crop cut and run by hand with the documented strategies.
    small = inpainter(image[7:39, 17:49], known[7:39, 17:49], strategy="full")
    np.testing.assert_array_equal(out[20:26, 30:36], small[13:19, 13:19])
    medium = inpainter(image[30:110, 90:170], known[30:110, 90:170], strategy="downscale")
    np.testing.assert_array_equal(out[50:90, 110:150], medium[20:60, 20:60])
    whole = inpainter(image, known, strategy="downscale")
    np.testing.assert_array_equal(out[100:118, 2:80], whole[100:118, 2:80])
    # And the crop result differs from plain downscale where a crop was used.
    assert (out[20:26, 30:36] != whole[20:26, 30:36]).any()


def test_crop_on_small_images_is_full(inpainter):
    image = _photo(30, 32)
    known = np.ones((30, 32), bool)
    known[10:20, 10:20] = False
    np.testing.assert_array_equal(
        inpainter(image, known, strategy="crop"), inpainter(image, known, strategy="full")
    )
