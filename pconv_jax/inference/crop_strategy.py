"""The 'crop' strategy for large photos: each group of holes is filled on a crop around it.

The rule (T = the model's training size, `Inpainter.train_size`):
  1. Groups: hole pixels closer than T/8 to each other form one group (the connected components
     of the hole dilated by T/16), so that nearby specks share one crop.
  2. Crop: a square of side S = max(T, 2*e), e = the longer side of the group's bounding box,
     centred on the group and shifted to lie inside the image. The hole group spans at most half
     of the crop, leaving on average e/2 or more of real context on each side.
  3. Scale: the crop is run by the 'downscale' strategy at T x T: at native resolution when
     e <= T/2 (S = T: the sharpest possible fill, at the scale the model was trained on), else
     shrunk by T/S, which is still finer than shrinking the whole photo.
  4. Paste: only the group's own hole pixels are taken from the crop's result; other pixels,
     including other groups' holes, come from their own crops. Known pixels stay exact.
  5. Fallback: a group whose crop would not fit in the image (S > the image's shorter side) is
     filled by 'downscale' on the whole image, computed once for all such groups.
All crops have the same size, so they share one shape bucket and are run in batches.
"""

from __future__ import annotations

import cv2
import numpy as np

# How `Inpainter` fits a large photo to the model: as is ('full'), shrunk to the training size
# ('downscale'), or by this module's crops around the holes ('crop').
STRATEGIES = ("full", "downscale", "crop")


def hole_groups(hole_HxW: np.ndarray, join_px: int) -> list[np.ndarray]:
    """Hole pixels grouped by proximity: bool masks [H,W], one per group, covering `hole_HxW`.

    Args:
      hole_HxW: bool [H,W], True = hole.
      join_px: holes closer than about this many pixels join one group (dilation by join_px/2).
    """
    radius = max(1, join_px // 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(hole_HxW.astype(np.uint8), kernel)
    count, labels = cv2.connectedComponents(grown, connectivity=8)
    groups = [(labels == k) & hole_HxW for k in range(1, count)]
    return [g for g in groups if g.any()]


def crop_box(group_HxW: np.ndarray, train_size: int) -> tuple[int, int, int] | None:
    """(top, left, side) of the group's square crop, or None when it does not fit (fallback)."""
    rows, cols = np.nonzero(group_HxW.any(axis=1))[0], np.nonzero(group_HxW.any(axis=0))[0]
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    extent = max(bottom - top, right - left)
    side = max(train_size, 2 * extent)
    height, width = group_HxW.shape
    if side > min(height, width):
        return None
    centre_y, centre_x = (top + bottom) // 2, (left + right) // 2
    y0 = int(np.clip(centre_y - side // 2, 0, height - side))
    x0 = int(np.clip(centre_x - side // 2, 0, width - side))
    return y0, x0, int(side)


def crop_inpaint(inpainter, image: np.ndarray, known_HxW: np.ndarray) -> np.ndarray:
    """Fills the holes of one large image by the crop rule above.

    Args:
      inpainter: an `Inpainter` with `train_size` set.
      image: uint8 [H,W,3], or float [H,W,3] in [0,1] on known pixels.
      known_HxW: bool [H,W], True = known; at least one hole pixel.
    Returns:
      Same dtype and shape as `image`: known pixels as given, holes filled.
    """
    size = inpainter.train_size
    hole = ~known_HxW
    result = image.copy()
    crops, fallback = [], []
    for group in hole_groups(hole, size // 8):
        box = crop_box(group, size)
        if box is None:
            fallback.append(group)
        else:
            crops.append((group, box))
    if crops:
        windows = [
            (image[y : y + s, x : x + s], known_HxW[y : y + s, x : x + s]) for _, (y, x, s) in crops
        ]
        filled = inpainter([w[0] for w in windows], [w[1] for w in windows], strategy="downscale")
        for (group, (y, x, s)), out in zip(crops, filled):
            own = group[y : y + s, x : x + s]
            result[y : y + s, x : x + s][own] = out[own]
    if fallback:
        whole = inpainter(image, known_HxW, strategy="downscale")
        for group in fallback:
            result[group] = whole[group]
    return result
