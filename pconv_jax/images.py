"""Decoding image files to uint8 RGB arrays [H, W, 3].

Greyscale is replicated, alpha composited over white, 16-bit scaled to 8-bit, EXIF orientation
applied. Every reader of image files (training sources, inference) goes through here.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def to_rgb(array: np.ndarray) -> np.ndarray:
    """[H, W], [H, W, 1|2|3|4] of uint8/uint16 -> uint8 [H, W, 3]; alpha composited over white."""
    if array.dtype == np.uint16:
        array = (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if array.dtype != np.uint8:
        raise ValueError(f"images must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image [H, W] or [H, W, 1..4], got shape {array.shape}")
    channels = array.shape[-1]
    if channels in (2, 4):  # grey+alpha or RGBA
        alpha = array[..., -1:].astype(np.uint16)
        color = array[..., :-1].astype(np.uint16)
        array = ((color * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        channels -= 1
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def decode_file(path: str | os.PathLike, min_side: int | None = None) -> np.ndarray:
    """Decodes an image file to uint8 RGB [H, W, 3].

    Args:
      path: jpg/png/webp/bmp/... (anything Pillow reads). EXIF orientation is applied.
      min_side: if given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, much
        faster) as long as its short side stays >= min_side.

    Raises:
      OSError/ValueError/SyntaxError (from Pillow) for unreadable or corrupt files.
    """
    with Image.open(path) as image:
        if min_side and image.format == "JPEG":
            width, height = image.size
            factor = min_side / min(width, height)
            if factor < 1:
                image.draft("RGB", (math.ceil(width * factor), math.ceil(height * factor)))
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            array = np.asarray(image).astype(np.uint32)
            return to_rgb((np.clip(array, 0, 65535) * 255 // 65535).astype(np.uint8))
        if image.mode == "P":
            image = image.convert("RGBA")
        elif image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGB")
        return to_rgb(np.asarray(image))
