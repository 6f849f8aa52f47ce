"""Classical baselines of the evaluation: PatchMatch (the paper's PM row), Telea, NS for
inpainting; bicubic resizing (`bicubic_upscale`) for super-resolution.

All three share one signature, `fill(image, mask) -> image`: image uint8 [H, W, 3], mask
[H, W, 1] (bool or float in {0, 1}, 1 = known pixel, 0 = hole), result uint8 [H, W, 3] whose
known pixels are bit-identical to the input. They run on the CPU, one image at a time.

Dependencies are optional (`pip install pconv_jax[baselines]`): OpenCV
(`opencv-python-headless`) for Telea and NS, `pypatchmatch` for PatchMatch; a missing one is an
ImportError naming the package.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from pconv_jax.errors import UserError

BASELINES = ("patchmatch", "telea", "ns")
# cv2.inpaint's neighbourhood radius in pixels (OpenCV's documented example uses 3).
OPENCV_RADIUS_PX = 3
# pypatchmatch's patch_size is a radius: 3 compares 7x7 patches, the patch size of Barnes et al.
PATCHMATCH_PATCH_RADIUS_PX = 3
PATCHMATCH_SEED = 0


def _import_cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError(
            "the telea and ns baselines need OpenCV: pip install opencv-python-headless "
            "(or pconv_jax[baselines])"
        ) from e
    return cv2


def _import_patch_match():
    try:
        from patchmatch import patch_match
    except ImportError as e:
        raise ImportError(
            "the patchmatch baseline needs pypatchmatch: pip install pypatchmatch "
            "(or pconv_jax[baselines])"
        ) from e
    if not patch_match.patchmatch_available:
        raise ImportError("pypatchmatch is installed but its native library failed to load")
    return patch_match


def _hole_mask_u8(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Validates the pair and returns the hole as uint8 [H, W], 255 = hole."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a uint8 image [H, W, 3], got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2] + (1,):
        raise ValueError(f"expected a mask of shape {image.shape[:2] + (1,)}, got {mask.shape}")
    values = np.unique(mask)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"mask must hold only 0 (hole) and 1 (known), got values {values[:8]}")
    return np.where(mask[..., 0] == 0, 255, 0).astype(np.uint8)


def _keep_known(image: np.ndarray, filled: np.ndarray, hole_u8: np.ndarray) -> np.ndarray:
    # The libraries already leave known pixels alone; this makes it a guarantee.
    return np.where(hole_u8[..., None] > 0, filled, image).astype(np.uint8)


def opencv_inpaint(
    image: np.ndarray, mask: np.ndarray, method: str, radius_px: int = OPENCV_RADIUS_PX
) -> np.ndarray:
    """OpenCV's cv2.inpaint: `method` 'telea' (Telea 2004, fast marching) or 'ns'
    (Bertalmio et al. 2001, Navier-Stokes).

    Args:
      image: uint8 [H, W, 3] RGB.
      mask: [H, W, 1], 1 = known, 0 = hole.
      method: 'telea' or 'ns'.
      radius_px: neighbourhood considered around each filled pixel.

    Returns:
      uint8 [H, W, 3], known pixels unchanged.
    """
    cv2 = _import_cv2()
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    if method not in flags:
        raise ValueError(f"unknown OpenCV inpainting method {method!r}; expected telea or ns")
    hole = _hole_mask_u8(image, mask)
    # cv2 treats channels alike, so RGB order needs no conversion.
    filled = cv2.inpaint(np.ascontiguousarray(image), hole, radius_px, flags[method])
    return _keep_known(image, filled, hole)


def patchmatch_inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    patch_radius_px: int = PATCHMATCH_PATCH_RADIUS_PX,
    seed: int = PATCHMATCH_SEED,
) -> np.ndarray:
    """PatchMatch inpainting (Barnes et al. 2009) from the PyPI package `pypatchmatch`.

    The randomised search is seeded before every call, so equal inputs give equal outputs.

    Args:
      image: uint8 [H, W, 3] RGB.
      mask: [H, W, 1], 1 = known, 0 = hole.
      patch_radius_px: patches of (2 r + 1)^2 pixels are compared.
      seed: of the randomised search.

    Returns:
      uint8 [H, W, 3], known pixels unchanged.
    """
    patch_match = _import_patch_match()
    hole = _hole_mask_u8(image, mask)
    patch_match.set_random_seed(seed)
    filled = patch_match.inpaint(
        np.ascontiguousarray(image), hole[..., None], patch_size=patch_radius_px
    )
    return _keep_known(image, filled, hole)


def get_baseline(name: str):
    """The fill function of a classical baseline: 'patchmatch', 'telea' or 'ns'.

    The optional dependency is imported here, so a missing one fails before any work.

    Returns:
      fn(image uint8 [H, W, 3], mask [H, W, 1] with 1 = known) -> uint8 [H, W, 3].
    """
    if name == "patchmatch":
        _import_patch_match()
        return patchmatch_inpaint
    if name in ("telea", "ns"):
        _import_cv2()
        return functools.partial(opencv_inpaint, method=name)
    raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINES}")


def bicubic_upscale(low_res: np.ndarray, factor: int) -> np.ndarray:
    """The bicubic baseline: Pillow's BICUBIC resize by `factor` (a = -0.5, pixel centres).

    Args:
      low_res: uint8 [h, w, 3] (resized as 8-bit RGB, rounded), or float [h, w, 3] in [0, 1]
        (resized per channel in float32, then clipped to [0, 1]).
      factor: K >= 1.
    Returns:
      [K*h, K*w, 3] of the input's dtype (float inputs give float32).
    """
    low_res = np.asarray(low_res)
    if low_res.ndim != 3 or low_res.shape[-1] != 3:
        raise UserError(f"low-res image: expected [h, w, 3] RGB, got shape {low_res.shape}")
    if low_res.dtype != np.uint8 and not np.issubdtype(low_res.dtype, np.floating):
        raise UserError(f"low-res image: expected uint8 or float, got {low_res.dtype}")
    if factor < 1:
        raise UserError(f"the upscaling factor must be >= 1, got {factor}")
    height, width = low_res.shape[:2]
    size = (factor * width, factor * height)  # PIL sizes are (width, height)
    if low_res.dtype == np.uint8:
        return np.asarray(Image.fromarray(low_res).resize(size, Image.Resampling.BICUBIC))
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(low_res[..., c], np.float32)).resize(
                size, Image.Resampling.BICUBIC
            )
        )
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)
