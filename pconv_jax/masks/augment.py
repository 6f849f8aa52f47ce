"""Training masks from a folder of raw masks, augmented as the paper's authors describe.

NVIDIA's project page (nv-adlr.github.io/publication/partialconv-inpainting, FAQ): "threshold 0.6
to binarize the masks first and then use from 9 to 49 pixels dilation to randomly dilate the
holes, followed by random translation, rotation and cropping". Here: binarize at the threshold,
dilate the holes by a disc of random diameter in `dilation` (exact Euclidean disc via a distance
transform, ~1 ms at 512x512 whatever the diameter), then ONE nearest-neighbour affine warp does
the random rotation, flips, translation and the crop (a square window of random side, resampled
to the output size), so the result stays binary. Pixels the window takes from outside the raw
mask are known (no hole).
"""

from __future__ import annotations

import math
import os
import pathlib

import cv2
import numpy as np

from pconv_jax import images
from pconv_jax.errors import UserError
from pconv_jax.masks import protocol

CROP_SCALE = (0.5, 1.0)  # crop side as a fraction of the raw mask's short side


class RawMaskAugmenter:
    """Draws augmented training masks from a folder of raw masks (searched recursively).

    Refuses a folder that looks like a fixed test-mask set unless `force_test_masks`.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        size: int,
        threshold: float = 0.6,
        hole_is_white: bool = True,
        dilation: tuple[int, int] = (9, 49),
        hole_ratio: tuple[float, float] = (0.0, 1.0),
        tries: int = 4,
        force_test_masks: bool = False,
    ):
        """Args:
        directory: folder of raw mask images (png/jpg/bmp/webp), searched recursively.
        size: output side in px.
        threshold: fraction of white above which a raw pixel is white (NVIDIA: 0.6).
        hole_is_white: polarity of the raw files.
        dilation: (min, max) diameter in px of the disc the holes are dilated by (NVIDIA: 9-49);
          (0, 0) disables dilation.
        hole_ratio: (lo, hi): up to `tries` augmentations are drawn until the hole fraction lies
          in (lo, hi]; otherwise the closest one is used.
        tries: see hole_ratio.
        force_test_masks: allow a folder that looks like a TEST mask set.
        """
        root = pathlib.Path(directory)
        self.directory = str(root)
        files = images.list_image_files(root, recursive=True, what="mask")
        self.files = [str(p) for p in files]
        # Every folder that holds masks, so a test set nested below `directory` is caught too.
        for folder in sorted({root, *(p.parent for p in files)}):
            protocol.check_training_mask_dir(folder, force_test_masks)
        if not 0 <= dilation[0] <= dilation[1]:
            raise UserError(f"dilation must be (min, max) with 0 <= min <= max, got {dilation}")
        if not 0.0 <= hole_ratio[0] < hole_ratio[1] <= 1.0:
            raise UserError(f"hole_ratio must satisfy 0 <= lo < hi <= 1, got {hole_ratio}")
        self.size = size
        self.threshold = threshold
        self.hole_is_white = hole_is_white
        self.dilation = dilation
        self.hole_ratio = hole_ratio
        self.tries = max(1, tries)

    def __len__(self) -> int:
        return len(self.files)

    def sample_holes(self, rng: np.random.Generator) -> np.ndarray:
        """A random raw mask, augmented: uint8 [size, size], 1 = hole."""
        path = self.files[int(rng.integers(len(self.files)))]
        raw = images.read_holes(path, None, self.threshold, self.hole_is_white)
        return self.augment(raw, rng)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Like `sample_holes`, in the model's convention: float32 [size, size, 1], 1 = known."""
        return images.to_model_mask(self.sample_holes(rng))

    def augment(self, raw_holes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Dilation, rotation, flips, translation and crop of one raw hole map [h, w] (bool)."""
        lo, hi = self.hole_ratio
        best, best_gap = None, math.inf
        for _ in range(self.tries):
            holes = augment_holes(raw_holes, self.size, rng, self.dilation)
            ratio = float(np.count_nonzero(holes)) / holes.size
            gap = 0.0 if lo < ratio <= hi else max(lo - ratio, ratio - hi, 1e-9)
            if gap < best_gap:
                best, best_gap = holes, gap
            if gap == 0.0:
                break
        assert best is not None  # self.tries >= 1
        return best


def dilate_holes(holes: np.ndarray, diameter: int) -> np.ndarray:
    """Dilates a hole map [h, w] by a disc of `diameter` px: uint8 [h, w], 1 = hole."""
    holes = holes.astype(np.uint8)
    if diameter <= 1 or not holes.any():
        return holes
    # Distance of every known pixel to the nearest hole (L2, 5x5 mask: within ~2% of exact).
    distance = cv2.distanceTransform(1 - holes, cv2.DIST_L2, 5)
    return (distance <= (diameter - 1) / 2).astype(np.uint8)


def augment_holes(
    raw_holes: np.ndarray,
    size: int,
    rng: np.random.Generator,
    dilation: tuple[int, int] = (9, 49),
    crop_scale: tuple[float, float] = CROP_SCALE,
) -> np.ndarray:
    """One random augmentation of a raw hole map [h, w] -> uint8 [size, size], 1 = hole.

    The crop window is a square of side U(crop_scale) * min(h, w) raw pixels, centred at a
    uniformly random point of the raw mask (translation), rotated by U(0, 360) degrees and
    randomly flipped; nearest-neighbour sampling keeps the result binary. The dilation diameter
    is drawn in raw pixels and applied after the warp, scaled to output pixels (dilation by a disc
    commutes with rotation, flips and uniform scaling), on a canvas padded by the dilation radius
    so that holes just outside the window still grow into it. This makes the cost depend on the
    output size only.
    """
    height, width = raw_holes.shape
    diameter = int(rng.integers(dilation[0], dilation[1] + 1)) if dilation[1] > 0 else 0
    side = rng.uniform(*crop_scale) * min(height, width)
    center_x, center_y = rng.uniform(0, width), rng.uniform(0, height)
    theta = rng.uniform(0.0, 2.0 * math.pi)
    flip_x, flip_y = rng.choice((-1.0, 1.0), size=2)
    scale = side / size  # raw px per output px
    out_diameter = diameter / scale
    pad = int(math.ceil(out_diameter / 2)) + 1 if out_diameter > 1 else 0
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    # Padded output pixel (u, v) -> raw pixel:
    #   centre + R(theta) @ diag(flip) @ ((u, v) - pad - (size - 1) / 2) * scale
    half = (size - 1) / 2 + pad
    a, b = cos * flip_x, -sin * flip_y
    c, d = sin * flip_x, cos * flip_y
    inverse = np.array([[a, b, center_x - (a + b) * half], [c, d, center_y - (c + d) * half]])
    warped = cv2.warpAffine(
        raw_holes.astype(np.uint8),
        inverse,
        (size + 2 * pad, size + 2 * pad),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    dilated = dilate_holes(warped, int(round(out_diameter))) if pad else warped
    return np.ascontiguousarray(dilated[pad : pad + size, pad : pad + size])
