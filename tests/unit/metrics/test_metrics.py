"""Metrics against hand-computed values, scikit-image and numpy, on random and real images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pconv_jax.metrics import pixel as metrics

from conftest import shared_path

# |ssim - skimage's| in float32: measured <= 2.4e-7 (random pairs 11x11 to 64x48, a Kodak crop);
# the README's metrics table states the same 1e-6 bound.
SSIM_ATOL = 1e-6


def _skimage_ssim(a, b):
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=-1,
    )


def _noisy_pair(shape, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    target = rng.random(shape)
    output = np.clip(target + noise * rng.standard_normal(shape), 0.0, 1.0)
    return output, target


def test_l1_and_hole_l1_hand_values():
    target = np.zeros((3, 2, 2, 3), np.float32)
    output = np.zeros_like(target)
    output[0, 0, 0, :] = 0.5  # one pixel of four off by 0.5 in every channel
    output[1] = 0.1
    mask = np.ones((3, 2, 2, 1), np.float32)
    mask[0, 0, 0] = 0  # image 0: the hole is exactly the wrong pixel
    mask[1, 1, :] = 0  # image 1: half the image is hole
    # image 2: no hole at all
    l1 = np.asarray(metrics.l1_percent(jnp.asarray(output), jnp.asarray(target)))
    np.testing.assert_allclose(l1, [12.5, 10.0, 0.0], rtol=1e-6)
    hole = np.asarray(metrics.hole_l1_percent(output, target, mask))
    np.testing.assert_allclose(hole[:2], [50.0, 10.0], rtol=1e-6)
    assert np.isnan(hole[2]), "an image without hole must give NaN, not 0"


def test_psnr_matches_skimage_and_caps_perfect_images():
    output, target = _noisy_pair((3, 20, 17, 3))
    ours = np.asarray(jax.jit(metrics.psnr)(output.astype(np.float32), target.astype(np.float32)))
    ref = [peak_signal_noise_ratio(target[i], output[i], data_range=1) for i in range(3)]
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    # MSE exactly 0.01 -> 20 dB by hand; a perfect image -> the cap, never inf.
    half = np.full((2, 4, 4, 3), 0.5, np.float32)
    off = half.copy()
    off[0] += 0.1
    np.testing.assert_allclose(metrics.psnr(off, half), [20.0, metrics.PSNR_MAX_DB], rtol=1e-5)
    np.testing.assert_allclose(metrics.psnr(half, half, max_db=60.0), [60.0, 60.0])


def test_ssim_matches_skimage_on_random_images():
    output, target = _noisy_pair((2, 23, 31, 3), noise=0.2)
    ours = np.asarray(jax.jit(metrics.ssim)(output.astype(np.float32), target.astype(np.float32)))
    ref = [_skimage_ssim(output[i], target[i]) for i in range(2)]
    np.testing.assert_allclose(ours, ref, atol=SSIM_ATOL)
    # Identical images -> 1; the smallest allowed size (11x11) is one window.
    np.testing.assert_allclose(
        metrics.ssim(target[:, :11, :11], target[:, :11, :11]), 1.0, atol=1e-6
    )
    small_out, small_gt = output[:1, :11, :11], target[:1, :11, :11]
    np.testing.assert_allclose(
        metrics.ssim(small_out, small_gt),
        [_skimage_ssim(small_out[0], small_gt[0])],
        atol=SSIM_ATOL,
    )


def test_metrics_on_a_real_photo_with_an_inpainted_hole():
    from PIL import Image

    path = shared_path("data", "kodak", "01.png")
    target = np.asarray(Image.open(path).convert("RGB"), np.float32)[:96, :128] / 255.0
    # A crude "inpainting": the hole gets the image's mean colour, then composited.
    mask = np.ones(target.shape[:2] + (1,), np.float32)
    mask[30:60, 40:90] = 0
    fill = np.broadcast_to(target.mean(axis=(0, 1)), target.shape)
    output = target * mask + fill * (1 - mask)
    out_b, gt_b, mask_b = output[None], target[None], mask[None]
    np.testing.assert_allclose(
        metrics.ssim(out_b, gt_b), [_skimage_ssim(output, target)], atol=SSIM_ATOL
    )
    np.testing.assert_allclose(
        metrics.psnr(out_b, gt_b),
        [peak_signal_noise_ratio(target, output, data_range=1)],
        rtol=1e-5,
    )
    err = np.abs(output - target)
    np.testing.assert_allclose(metrics.l1_percent(out_b, gt_b), [100 * err.mean()], rtol=1e-5)
    hole = mask[..., 0] == 0
    np.testing.assert_allclose(
        metrics.hole_l1_percent(out_b, gt_b, mask_b), [100 * err[hole].mean()], rtol=1e-5
    )


def test_bad_shapes_are_errors():
    a = np.zeros((1, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="equal shape"):
        metrics.l1_percent(a, a[:, :8])
    with pytest.raises(ValueError, match="equal shape"):
        metrics.psnr(a[..., :1], a[..., :1])
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(a[:, :10], a[:, :10])
    with pytest.raises(ValueError, match="mask of shape"):
        metrics.hole_l1_percent(a, a, np.ones((1, 16, 16, 3)))
