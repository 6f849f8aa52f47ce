"""Super-resolution canvases (paper Sec. 5.2): exact layouts."""

import numpy as np
import pytest

from pconv_jax.data import sr_canvas


def test_canvas_factor_2_default_offset():
    low = np.array([[[1.0], [2.0]], [[3.0], [4.0]]], np.float32)  # [2, 2, 1]
    canvas, mask = sr_canvas.make_sr_canvas(low, 2)
    # Offset floor(2/2) = 1: each pixel goes to (2i+1, 2j+1).
    expected = np.array(
        [
            [0, 0, 0, 0],
            [0, 1, 0, 2],
            [0, 0, 0, 0],
            [0, 3, 0, 4],
        ],
        np.float32,
    )[..., None]
    np.testing.assert_array_equal(canvas, expected)
    np.testing.assert_array_equal(mask, (expected > 0).astype(np.float32))
    assert canvas.dtype == np.float32 and mask.dtype == np.float32


def test_canvas_factor_3_is_cell_centre_and_custom_offset():
    low = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3)  # one row, two pixels, 3 channels
    canvas, mask = sr_canvas.make_sr_canvas(low, 3)
    assert canvas.shape == (3, 6, 3) and mask.shape == (3, 6, 1)
    assert sr_canvas.default_offset(3) == (1, 1)
    np.testing.assert_array_equal(np.argwhere(mask[..., 0]), [[1, 1], [1, 4]])
    np.testing.assert_array_equal(canvas[1, 1], [1, 2, 3])
    np.testing.assert_array_equal(canvas[1, 4], [4, 5, 6])
    assert canvas.sum() == 21
    _, corner = sr_canvas.make_sr_canvas(low, 3, offset=(0, 2))
    np.testing.assert_array_equal(np.argwhere(corner[..., 0]), [[0, 2], [0, 5]])
    with pytest.raises(ValueError, match="inside"):
        sr_canvas.make_sr_canvas(low, 3, offset=(3, 0))


def test_canvas_batched_and_factor_4_density():
    low = np.random.default_rng(0).random((2, 5, 4, 3)).astype(np.float32)
    canvas, mask = sr_canvas.make_sr_canvas(low, 4)
    assert canvas.shape == (2, 20, 16, 3) and mask.shape == (2, 20, 16, 1)
    np.testing.assert_array_equal(canvas[:, 2::4, 2::4], low)
    assert mask.sum() == 2 * 5 * 4  # one known pixel per 4x4 cell
    assert np.all(canvas[np.broadcast_to(mask == 0, canvas.shape)] == 0)


def test_downsample_box_and_example():
    high = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    low = sr_canvas.downsample_box(high, 2)
    # Cell means: (0+1+4+5)/4 = 2.5, (2+3+6+7)/4 = 4.5, 10.5, 12.5.
    np.testing.assert_array_equal(low[..., 0], [[2.5, 4.5], [10.5, 12.5]])
    canvas, mask = sr_canvas.make_sr_example(high, 2)
    np.testing.assert_array_equal(canvas[1::2, 1::2], low)
    assert mask.sum() == 4
    with pytest.raises(ValueError, match="divisible"):
        sr_canvas.downsample_box(np.zeros((6, 4, 3)), 4)
    with pytest.raises(ValueError, match=">= 1"):
        sr_canvas.make_sr_canvas(np.zeros((2, 2, 3)), 0)
