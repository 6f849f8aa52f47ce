"""Per-image quality metrics of the paper's Table 1: l1 (%), PSNR, SSIM, and the hole-only l1.

Every function takes batches of NHWC float images in [0, 1] (the composited output
`out * hole + gt * known` and the ground truth) and returns one float32 value per image, shape
[N], so the evaluation can bucket images by hole ratio. All are pure jnp code (jittable, no
Python control flow on values). Values are not clipped here: clip model outputs to [0, 1] before
compositing, as the evaluation does.

Two l1 conventions exist (ANCHORS G.14): the paper's l1 (%) averages over every pixel of the
composited image (`l1_percent`); mmagic and other toolkits report the mean over the hole only
(`hole_l1_percent`). Both are x100.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# SSIM of Wang et al. 2004 as in skimage: an 11-tap Gaussian (sigma 1.5, truncated at 3.5 sigma).
SSIM_SIGMA = 1.5
SSIM_RADIUS_PX = int(3.5 * SSIM_SIGMA + 0.5)  # 5, scipy.ndimage's radius rule
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# A perfect image has MSE 0 and infinite PSNR; averaged per bucket it would make the bucket inf
# (mmagic's psnr.py does exactly that). Capping at 100 dB keeps the average finite; 100 dB is an
# MSE of 1e-10, below the error of a single uint8 step in one pixel of a 256x256 image.
PSNR_MAX_DB = 100.0


def _check_pair(output, target) -> None:
    if output.ndim != 4 or output.shape[-1] != 3 or output.shape != target.shape:
        raise ValueError(
            f"expected output and target of equal shape [N, H, W, 3], got {output.shape} "
            f"and {target.shape}"
        )


def l1_percent(output, target):
    """The paper's l1 error in percent: mean |output - target| over all pixels and channels, x100.

    Args:
      output: [N, H, W, 3] float in [0, 1], the composited output.
      target: [N, H, W, 3] float in [0, 1], the ground truth.

    Returns:
      [N] float32, per image.
    """
    _check_pair(output, target)
    err = jnp.abs(output.astype(jnp.float32) - target.astype(jnp.float32))
    return 100.0 * err.mean(axis=(1, 2, 3))


def hole_l1_percent(output, target, mask):
    """Hole-only l1 in percent, the "l1 error" of mmagic and other toolkits (not the paper's).

    sum(|output - target| * hole) / (sum(hole) * 3) x 100, with hole = 1 - mask. An image whose
    mask has no hole has no defined value: it gets NaN, so that a bucket average cannot silently
    include it as 0 (average with np.nanmean, or skip such images).

    Args:
      output: [N, H, W, 3] float in [0, 1], the composited output.
      target: [N, H, W, 3] float in [0, 1], the ground truth.
      mask: [N, H, W, 1] in {0, 1}, 1 = known pixel, 0 = hole.

    Returns:
      [N] float32, per image; NaN where the mask has no hole.
    """
    _check_pair(output, target)
    if mask.shape != output.shape[:3] + (1,):
        raise ValueError(f"expected mask of shape {output.shape[:3] + (1,)}, got {mask.shape}")
    hole = 1.0 - mask.astype(jnp.float32)
    err = jnp.abs(output.astype(jnp.float32) - target.astype(jnp.float32)) * hole
    hole_values = hole.sum(axis=(1, 2, 3)) * output.shape[-1]
    safe = jnp.where(hole_values > 0, hole_values, 1.0)
    return jnp.where(hole_values > 0, 100.0 * err.sum(axis=(1, 2, 3)) / safe, jnp.nan)


def psnr(output, target, max_db: float = PSNR_MAX_DB):
    """Peak signal-to-noise ratio in dB for data range 1: 10 log10(1 / MSE), capped at `max_db`.

    MSE is over all pixels and channels of each image. A perfect image (MSE 0) gives `max_db`
    rather than inf, so bucket averages stay finite (ANCHORS G.13).

    Args:
      output: [N, H, W, 3] float in [0, 1].
      target: [N, H, W, 3] float in [0, 1].
      max_db: the cap, default 100 dB.

    Returns:
      [N] float32, per image, at most `max_db`.
    """
    _check_pair(output, target)
    diff = output.astype(jnp.float32) - target.astype(jnp.float32)
    mse = jnp.square(diff).mean(axis=(1, 2, 3))
    db = -10.0 * jnp.log10(jnp.where(mse > 0, mse, 1.0))
    return jnp.where(mse > 0, jnp.minimum(db, max_db), max_db)


def _gaussian_taps() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS_PX, SSIM_RADIUS_PX + 1, dtype=np.float64)
    taps = np.exp(-0.5 * x**2 / SSIM_SIGMA**2)
    return (taps / taps.sum()).astype(np.float32)


def _blur_valid(x_NxHxWxC):
    """Separable 11x11 Gaussian, 'valid' region only: [N, H, W, C] -> [N, H-10, W-10, C].

    Written as shifted multiply-adds rather than a convolution so that GPUs cannot run it in
    TF32 (JAX's default precision for float32 convolutions there), which would break the 1e-4
    agreement with scikit-image.
    """
    taps = _gaussian_taps()
    k = len(taps)
    h, w = x_NxHxWxC.shape[1:3]
    rows = sum(float(t) * x_NxHxWxC[:, i : h - k + 1 + i] for i, t in enumerate(taps))
    return sum(float(t) * rows[:, :, i : w - k + 1 + i] for i, t in enumerate(taps))


def ssim(output, target):
    """Mean SSIM of Wang et al. (2004) per image, equal to scikit-image's (to ~1e-5 in float32).

    Gaussian window 11x11 with sigma 1.5, K1 0.01, K2 0.03, data range 1, population
    covariances; computed per channel and averaged over channels. Like
    `skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1)`, the SSIM map is averaged only
    where the window lies fully inside the image (skimage filters with reflection then crops
    (11 - 1) // 2 = 5 pixels per side, so padding never reaches the averaged region).

    Args:
      output: [N, H, W, 3] float in [0, 1], H and W at least 11.
      target: [N, H, W, 3] float in [0, 1].

    Returns:
      [N] float32, per image, in [-1, 1].
    """
    _check_pair(output, target)
    size = 2 * SSIM_RADIUS_PX + 1
    if min(output.shape[1:3]) < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size}, got {output.shape[1:3]}")
    x = output.astype(jnp.float32)
    y = target.astype(jnp.float32)
    mu_x, mu_y = _blur_valid(x), _blur_valid(y)
    var_x = _blur_valid(x * x) - mu_x * mu_x
    var_y = _blur_valid(y * y) - mu_y * mu_y
    cov_xy = _blur_valid(x * y) - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    # Mean over rows, then columns, then channels: shorter float32 sums than one flat mean.
    return ssim_map.mean(axis=2).mean(axis=1).mean(axis=1)
