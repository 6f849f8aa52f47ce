"""Writing inpainted images: the format from the suffix, the input's metadata kept.

PNG (lossless: known pixels are saved bit for bit), JPEG and WebP (lossy, `quality` 1..100).
A 16-bit result (uint16, from a 16-bit PNG) is written as a 16-bit PNG; other formats get it
scaled to 8 bits. The EXIF block (with orientation 1: the pixels were made upright on reading),
the ICC colour profile and the resolution (DPI) of the input are written back where the format
holds them (WebP has no DPI field).
"""

from __future__ import annotations

import io
import os
import pathlib
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

from pconv_jax import atomic
from pconv_jax.errors import UserError
from pconv_jax.images import Photo, to_rgb

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
OVERLAY_RGB = (255, 0, 255)  # the hole's tint in `concat_panels` (the page's brush colour)


def check_suffix(path: str | os.PathLike) -> str:
    """The Pillow format name for `path`'s suffix; UserError for any other suffix."""
    suffix = pathlib.Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(
            f"output must end in {', '.join(FORMATS)} (the suffix picks the format); got {path}"
        )
    return FORMATS[suffix]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_metadata(png: bytes, *, exif=None, icc=None, dpi=None) -> bytes:
    """A PNG file's bytes with eXIf, iCCP and pHYs chunks inserted after its IHDR chunk."""
    chunks = b""
    if icc:
        chunks += _chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    if dpi:
        per_metre = [round(v / 0.0254) for v in dpi]
        chunks += _chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1))
    if exif:
        chunks += _chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, length + type, IHDR data, CRC
    return png[:end_of_ihdr] + chunks + png[end_of_ihdr:]


def encode(pixels: np.ndarray, fmt: str, photo: Photo | None = None, quality: int = 95) -> bytes:
    """uint8 or uint16 RGB [H, W, 3] -> the file's bytes in `fmt` ('PNG', 'JPEG', 'WEBP'),
    with `photo`'s EXIF, ICC profile and DPI."""
    if not 1 <= quality <= 100:
        raise UserError(f"quality must lie in 1..100, got {quality}")
    meta = photo or Photo(rgb=np.zeros((0, 0, 3), np.uint8))
    if pixels.dtype == np.uint16 and fmt == "PNG":
        ok, png = cv2.imencode(".png", np.ascontiguousarray(pixels[..., ::-1]))
        if not ok:
            raise UserError("cannot encode the 16-bit PNG")
        return png_with_metadata(png.tobytes(), exif=meta.exif, icc=meta.icc, dpi=meta.dpi)
    options: dict[str, object] = {}
    if meta.exif:
        options["exif"] = meta.exif
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.dpi and fmt != "WEBP":
        options["dpi"] = meta.dpi
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    buffer = io.BytesIO()
    Image.fromarray(to_rgb(pixels)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_image(path, pixels: np.ndarray, photo: Photo | None = None, quality: int = 95) -> None:
    """Writes `pixels` (uint8 or uint16 [H, W, 3]) to `path`, the format from its suffix."""
    fmt = check_suffix(path)
    data = encode(pixels, fmt, photo, quality)
    atomic.write_bytes(path, data)


def concat_panels(before: np.ndarray, hole: np.ndarray, after: np.ndarray, gap: int = 4):
    """uint8 [H, 3W + 2*gap, 3]: the input | the input with the hole tinted | the result.

    Args:
      before: uint8 or uint16 [H, W, 3], the input on the result's canvas (zeros where extended).
      hole: bool [H, W], the hole the network filled.
      after: the result, same size and dtype as `before`.
    """
    before, after = to_rgb(before), to_rgb(after)
    overlay = before.astype(np.float32)
    overlay[hole] = 0.5 * overlay[hole] + 0.5 * np.asarray(OVERLAY_RGB, np.float32)
    spacer = np.full((before.shape[0], gap, 3), 255, np.uint8)
    panels = [before, spacer, np.round(overlay).astype(np.uint8), spacer, after]
    return np.concatenate(panels, axis=1)
