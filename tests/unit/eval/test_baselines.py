"""Classical baselines: each fills the hole, keeps known pixels bit-identical, is deterministic."""

import sys

import numpy as np
import pytest

from pconv_jax.eval import baselines


def _image_with_hole():
    """A smooth 24x28 RGB ramp, a 8x12 hole (zeroed in the input), mask 1 = known."""
    rows, cols = np.mgrid[0:24, 0:28]
    truth = np.stack([cols * 9, np.full_like(cols, 90), rows * 10], axis=-1).astype(np.uint8)
    mask = np.ones((24, 28, 1), np.float32)
    mask[8:16, 6:18] = 0
    image = truth.copy()
    image[mask[..., 0] == 0] = 0
    return truth, image, mask


@pytest.mark.parametrize("name", baselines.BASELINES)
def test_baseline_fills_hole_and_keeps_known_pixels(name):
    pytest.importorskip("patchmatch" if name == "patchmatch" else "cv2")
    fill = baselines.get_baseline(name)
    truth, image, mask = _image_with_hole()
    out = fill(image, mask)
    assert out.dtype == np.uint8 and out.shape == image.shape
    known = mask[..., 0] == 1
    np.testing.assert_array_equal(out[known], image[known])
    # The hole is filled from its surroundings: far closer to the ramp than the zeros were.
    hole_err = np.abs(out.astype(int) - truth)[~known].mean()
    zero_err = np.abs(image.astype(int) - truth)[~known].mean()
    assert hole_err < 0.15 * zero_err, (hole_err, zero_err)
    # A flat image comes back flat (up to OpenCV's rounding).
    flat = np.full_like(image, 77)
    flat[~known] = 0
    assert np.abs(fill(flat, mask).astype(int) - 77).max() <= 2
    # Deterministic, also across calls with other inputs in between; bool masks work alike.
    np.testing.assert_array_equal(fill(image, mask.astype(bool)), out)


def test_patchmatch_seed_is_used():
    pytest.importorskip("patchmatch")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # noise: many equally good patches
    mask = np.ones((32, 32, 1))
    mask[8:24, 8:24] = 0
    runs = [baselines.patchmatch_inpaint(image, mask, seed=s) for s in (0, 1, 0)]
    np.testing.assert_array_equal(runs[0], runs[2])
    assert (runs[0] != runs[1]).any(), "a different seed should change the random search"


def test_bad_inputs_and_missing_packages(monkeypatch):
    pytest.importorskip("cv2")
    _, image, mask = _image_with_hole()
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.get_baseline("deepfill")
    fill = baselines.get_baseline("telea")
    with pytest.raises(ValueError, match="only 0"):
        fill(image, mask * 0.5)
    with pytest.raises(ValueError, match="mask of shape"):
        fill(image, mask[..., 0])
    with pytest.raises(ValueError, match="uint8 image"):
        fill(image.astype(np.float32), mask)
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setitem(sys.modules, "patchmatch", None)
    with pytest.raises(ImportError, match="opencv-python-headless"):
        baselines.get_baseline("ns")
    with pytest.raises(ImportError, match="pip install pypatchmatch"):
        baselines.get_baseline("patchmatch")
