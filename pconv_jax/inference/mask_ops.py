"""Mask tools: holes from an image's alpha or a colour, invert, dilate, erode, feather, extend.

Pure NumPy and OpenCV (no JAX), on hole maps: bool [H, W], True = hole (the files' white).

The operations apply in one fixed order, the same in `pconv inpaint`, the Python API
(`inference.edit`), the REST API and the page:

  1. the hole source: a mask file, the image's alpha (transparent = hole) or a colour;
  2. `invert`: hole <-> known;
  3. `dilate N`: every pixel within Euclidean distance N of a hole becomes hole;
  4. `erode N`: a hole pixel within distance N of a known pixel becomes known (a hole touching
     the image border is not eroded from that side: outside the image is not known);
  5. `extend L,T,R,B`: the canvas grows by that many pixels (or %), the new border is hole;
  6. `feather N`: the fill is blended into the photo over N pixels outside the hole.

Dilate and erode use a disk of radius N, that is all offsets (dy, dx) with dy^2 + dx^2 <= N^2:
no pixel is moved further than N. Dilate then erode is a closing (it fills gaps narrower than
about 2N). Feather: the network sees a binary hole, the hole grown by N (so that it fills the band
too); the result takes the fill with weight 1 in the hole, (N + 1 - d) / (N + 1) at distance
d <= N outside it, and the photo exactly (weight 0) beyond N, so no seam is left at either edge.
"""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.images import holes_from_gray


@dataclasses.dataclass(frozen=True)
class MaskOps:
    """The binary mask operations and the feather width, in pixels (see the module docstring)."""

    invert: bool = False
    dilate: int = 0
    erode: int = 0
    feather: int = 0

    def __post_init__(self):
        for name in ("dilate", "erode", "feather"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise UserError(f"{name} must be a whole number of pixels >= 0, got {value!r}")


def _distance_to(zero_where: np.ndarray) -> np.ndarray:
    """float32 [H, W]: exact Euclidean distance of each pixel to the nearest True of `zero_where`
    (0 there; about 1.8e19 everywhere when there is none)."""
    source = np.where(zero_where, 0, 1).astype(np.uint8)
    return cv2.distanceTransform(source, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def dilate(hole: np.ndarray, radius: int) -> np.ndarray:
    """bool [H, W]: the hole grown by a disk of `radius` px (pixels at distance <= radius)."""
    if radius <= 0 or not hole.any():
        return hole.copy()
    # d^2 is an integer, so d <= radius exactly when d^2 <= radius^2; the margin absorbs float32.
    return _distance_to(hole) <= radius + 1e-3


def erode(hole: np.ndarray, radius: int) -> np.ndarray:
    """bool [H, W]: the hole shrunk by a disk of `radius` px; the image border is not known."""
    if radius <= 0 or hole.all():
        return hole.copy()
    return hole & (_distance_to(~hole) > radius + 1e-3)


def feather_weight(hole: np.ndarray, width: int) -> np.ndarray:
    """float64 [H, W] in [0, 1]: 1 in the hole, (width + 1 - d) / (width + 1) at distance
    0 < d <= width outside it, 0 beyond (and everywhere when `width` is 0 outside the hole).

    Float64 so that blends that land on exactly x.5 (integer distances) round the same way as
    any float64 reference would."""
    distance = _distance_to(hole).astype(np.float64)
    weight = np.clip((width + 1 - distance) / (width + 1), 0.0, 1.0)
    return np.where(distance <= width + 1e-3, weight, 0.0)


def apply_binary(hole: np.ndarray, ops: MaskOps) -> np.ndarray:
    """Steps 2-4 of the order: invert, dilate, erode. bool [H, W] -> bool [H, W]."""
    hole = np.asarray(hole, bool)
    if ops.invert:
        hole = ~hole
    return erode(dilate(hole, ops.dilate), ops.erode)


def hole_from_alpha(alpha: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """bool [H, W] hole where the alpha (uint8 or uint16 [H, W]) is not above `threshold` of
    full scale: transparent = hole, opaque = known."""
    return holes_from_gray(alpha, threshold, hole_is_white=False)


def parse_color(text: str) -> tuple[int, int, int]:
    """'R,G,B' (0..255 each) or '#rrggbb' -> (r, g, b)."""
    text = text.strip()
    if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        red, green, blue = (int(text[i : i + 2], 16) for i in (1, 3, 5))
        return red, green, blue
    parts = text.split(",")
    try:
        rgb = tuple(int(p) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise UserError(f"a mask colour is R,G,B with values 0..255 (or #rrggbb), got {text!r}")
    return rgb[0], rgb[1], rgb[2]


def hole_from_color(rgb: np.ndarray, color, tolerance: int = 0) -> np.ndarray:
    """bool [H, W] hole where every channel of uint8 [H, W, 3] `rgb` is within `tolerance` of
    `color` ((r, g, b) or text for `parse_color`)."""
    if isinstance(color, str):
        color = parse_color(color)
    if not 0 <= tolerance <= 255:
        raise UserError(f"the colour tolerance must lie in 0..255, got {tolerance}")
    difference = np.abs(rgb.astype(np.int16) - np.asarray(color, np.int16))
    return np.asarray((difference <= tolerance).all(axis=-1))


@dataclasses.dataclass(frozen=True)
class Extension:
    """Pixels added on each side of the canvas (step 5 of the order)."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def __post_init__(self):
        for name, value in dataclasses.asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise UserError(f"extend {name} must be a whole number of pixels >= 0: {value!r}")

    def __bool__(self) -> bool:
        return any((self.left, self.top, self.right, self.bottom))


def parse_extend(text: str, size_hw: tuple[int, int]) -> Extension:
    """'LEFT,TOP,RIGHT,BOTTOM', each in pixels ('64') or percent of that side's axis ('25%':
    of the width for left/right, of the height for top/bottom), rounded to whole pixels."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise UserError(f"extend takes LEFT,TOP,RIGHT,BOTTOM (pixels or %), got {text!r}")
    height, width = size_hw
    values = []
    for part, axis in zip(parts, (width, height, width, height)):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", part)
        if not match:
            raise UserError(f"extend: {part!r} is not a number of pixels or a percentage >= 0")
        number = float(match.group(1))
        if match.group(2):
            values.append(round(number * axis / 100))
        elif number.is_integer():
            values.append(int(number))
        else:
            raise UserError(f"extend: {part!r} pixels must be a whole number (or use %)")
    return Extension(*values)


def extend_canvas(image: np.ndarray, hole: np.ndarray, extension: Extension):
    """(image [H', W', C] with zeros in the new border, hole bool [H', W'] with the border hole);
    the old pixels sit at rows top..top+H, columns left..left+W, unchanged."""
    e = extension
    pad = ((e.top, e.bottom), (e.left, e.right))
    image = np.pad(image, (*pad, (0, 0)))
    return image, np.pad(hole, pad, constant_values=True)
