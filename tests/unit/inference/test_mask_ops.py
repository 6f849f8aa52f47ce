"""Mask tools (inference/mask_ops.py) against scipy's morphology, on NVIDIA's test masks."""

import numpy as np
import pytest
from scipy import ndimage

from pconv_jax.errors import UserError
from pconv_jax.images import read_holes
from pconv_jax.inference import mask_ops
from pconv_jax.inference.mask_ops import Extension, MaskOps

from conftest import shared_path


def _disk(radius: int) -> np.ndarray:
    """The structuring element the module documents: offsets with dy^2 + dx^2 <= r^2."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


def _nvidia_holes(count: int = 3) -> list[np.ndarray]:
    folder = shared_path("data", "nvidia_test_masks")
    paths = sorted(folder.glob("*.png"))[:: max(1, len(list(folder.glob("*.png"))) // count)]
    # Cropped to 200x240 to keep scipy's brute-force morphology quick.
    return [read_holes(p)[100:300, 50:290] for p in paths[:count]]


@pytest.mark.parametrize("radius", [1, 3, 7])
def test_dilate_and_erode_equal_scipy_disk_morphology(radius):
    for hole in _nvidia_holes():
        assert 0.02 < hole.mean() < 0.9  # real holes, not an empty crop
        expected = ndimage.binary_dilation(hole, _disk(radius))
        np.testing.assert_array_equal(mask_ops.dilate(hole, radius), expected)
        # Erosion: outside the image counts as hole (border_value=1), as documented.
        expected = ndimage.binary_erosion(hole, _disk(radius), border_value=1)
        np.testing.assert_array_equal(mask_ops.erode(hole, radius), expected)


def test_operations_apply_in_the_documented_order():
    hole = _nvidia_holes(1)[0]
    ops = MaskOps(invert=True, dilate=2, erode=5)
    expected = ndimage.binary_erosion(
        ndimage.binary_dilation(~hole, _disk(2)), _disk(5), border_value=1
    )
    np.testing.assert_array_equal(mask_ops.apply_binary(hole, ops), expected)
    unchanged = mask_ops.apply_binary(hole, MaskOps())
    np.testing.assert_array_equal(unchanged, hole)
    assert not np.shares_memory(unchanged, hole)  # a copy: the caller's mask is never changed


def test_feather_weight_by_hand_and_exact_zero_outside_its_band():
    hole = np.zeros((9, 11), bool)
    hole[4, 5] = True
    weight = mask_ops.feather_weight(hole, 2)
    # Distances from (4, 5): 1 -> 2/3, sqrt(2) -> (3 - 1.414)/3, 2 -> 1/3, sqrt(5) > 2 -> 0.
    assert weight[4, 5] == 1.0
    np.testing.assert_allclose(weight[4, 6], 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(weight[5, 6], (3 - np.sqrt(2)) / 3, rtol=1e-6)
    np.testing.assert_allclose(weight[4, 7], 1 / 3, rtol=1e-6)
    assert weight[5, 7] == 0.0 and weight[4, 8] == 0.0
    real = _nvidia_holes(1)[0]
    weight = mask_ops.feather_weight(real, 6)
    band = ndimage.binary_dilation(real, _disk(6))
    assert (weight[~band] == 0).all() and (weight[band] > 0).all() and (weight[real] == 1).all()


def test_alpha_and_color_sources():
    alpha = np.array([[0, 127, 128, 255]], np.uint8)
    assert mask_ops.hole_from_alpha(alpha).tolist() == [[True, True, False, False]]
    rgb = np.array([[[255, 0, 0], [250, 4, 3], [240, 0, 0], [0, 0, 0]]], np.uint8)
    assert mask_ops.hole_from_color(rgb, "255,0,0").tolist() == [[True, False, False, False]]
    assert mask_ops.hole_from_color(rgb, (255, 0, 0), 5).tolist() == [[True, True, False, False]]
    assert mask_ops.parse_color("#ff0080") == (255, 0, 128)
    with pytest.raises(UserError, match="R,G,B with values 0..255"):
        mask_ops.parse_color("255,0")


def test_extend_parse_and_canvas():
    assert mask_ops.parse_extend("10,0,25%,50%", (100, 40)) == Extension(10, 0, 10, 50)
    with pytest.raises(UserError, match="extend left must be a whole number"):
        Extension(-1, 0, 0, 0)
    for bad in ("1,2,3", "1,2,3,-4", "1,2,3,1.5", "a,b,c,d"):
        with pytest.raises(UserError, match="extend"):
            mask_ops.parse_extend(bad, (10, 10))
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    hole = np.array([[True, False, False], [False, False, False]])
    canvas, new_hole = mask_ops.extend_canvas(image, hole, Extension(1, 2, 0, 1))
    assert canvas.shape == (5, 4, 3) and new_hole.shape == (5, 4)
    np.testing.assert_array_equal(canvas[2:4, 1:4], image)
    np.testing.assert_array_equal(new_hole[2:4, 1:4], hole)
    border = np.ones((5, 4), bool)
    border[2:4, 1:4] = False
    assert new_hole[border].all() and (canvas[border] == 0).all()


def test_bad_widths_are_user_errors():
    for field in ("dilate", "erode", "feather"):
        with pytest.raises(UserError, match=f"{field} must be a whole number"):
            MaskOps(**{field: -1})
