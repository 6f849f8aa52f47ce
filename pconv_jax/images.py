"""Reading image and mask files: the one decoder that training, evaluation and inference share.

Images become uint8 RGB [H, W, 3]: EXIF orientation applied, greyscale replicated, palette and
CMYK converted, alpha composited over white, 16-bit scaled to 8-bit (v * 255 // 65535).

Masks: files store white = hole (NVIDIA's test masks and ours; `hole_is_white=False` reads black
= hole); arrays store 1 (True) = known pixel, 0 = hole. Reading a mask is an explicit threshold
(a pixel is white when its value exceeds `threshold` times the format's full scale: 1 for
bilevel, 255 for 8-bit, 65535 for 16-bit; colour is converted to luma first) and a polarity
flip. Masks are only ever resized with nearest neighbour, so they stay binary (a bilinear resize
gives fractional masks and wrong partial-conv ratios, ANCHORS G.3); `fit_holes` also refuses a
different aspect ratio (inference: a mask must belong to its image).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import pathlib
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pconv_jax import atomic
from pconv_jax.errors import UserError

# Every folder reader (training folders, mask folders, `pconv inpaint --images`) lists these.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")
# Failures of Pillow on a missing, truncated, corrupt or non-image file.
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError)


def decode_error(error: Exception) -> str:
    """What a DECODE_ERRORS exception says about the file, without Pillow's internals (its
    "cannot identify image file <_io.BytesIO object at 0x...>" names a buffer, not the file)."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image file (or a format Pillow cannot decode)"
    return str(error)


def is_image_file(path: pathlib.Path) -> bool:
    """A file whose suffix (any case) is one of IMAGE_EXTENSIONS."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def list_image_files(
    directory: str | os.PathLike, *, recursive: bool, what: str = "image"
) -> list[pathlib.Path]:
    """The image files in `directory` (and its subfolders when `recursive`), sorted by path.

    Raises:
      UserError: the folder does not exist, or holds no image file (`what` names them).
    """
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise UserError(f"{what} folder not found: {directory}")
    files = sorted(
        p for p in (root.rglob("*") if recursive else root.iterdir()) if is_image_file(p)
    )
    if not files:
        raise UserError(f"no {what} files ({'/'.join(IMAGE_EXTENSIONS)}) in {directory}")
    return files


def to_rgb(array: np.ndarray) -> np.ndarray:
    """[H, W], [H, W, 1|2|3|4] of uint8/uint16 -> uint8 [H, W, 3]; alpha composited over white."""
    if array.dtype == np.uint16:
        array = (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if array.dtype != np.uint8:
        raise UserError(f"images must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise UserError(f"expected an image [H, W] or [H, W, 1..4], got shape {array.shape}")
    channels = array.shape[-1]
    if channels in (2, 4):  # grey+alpha or RGBA
        alpha = array[..., -1:].astype(np.uint16)
        color = array[..., :-1].astype(np.uint16)
        array = ((color * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        channels -= 1
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def decode_file(path: str | os.PathLike | BinaryIO, min_side: int | None = None) -> np.ndarray:
    """Decodes an image file to uint8 RGB [H, W, 3] (the training sources' fast path).

    Args:
      path: a file (or an open binary stream) in any format Pillow reads (see
        IMAGE_EXTENSIONS). EXIF orientation is applied.
      min_side: if given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, much
        faster) as long as its short side stays >= min_side.

    Raises:
      One of DECODE_ERRORS (from Pillow) for missing, unreadable or corrupt files.
    """
    image: Image.Image  # the opened file, then its transposed or converted copies
    with Image.open(path) as image:
        if min_side and image.format == "JPEG":
            width, height = image.size
            factor = min_side / min(width, height)
            if factor < 1:
                image.draft("RGB", (math.ceil(width * factor), math.ceil(height * factor)))
        image = ImageOps.exif_transpose(image)
        if image.mode in _SIXTEEN_BIT:
            array = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
            return to_rgb((array * 255 // 65535).astype(np.uint8))
        if image.mode in ("P", "PA"):
            image = image.convert("RGBA")
        elif image.mode not in ("L", "LA", "RGB", "RGBA"):  # 1, CMYK, YCbCr, RGBX, F, ...
            image = image.convert("RGB")
        return to_rgb(np.asarray(image))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """`decode_file` for one user-named file: uint8 RGB [H, W, 3].

    Raises:
      FileNotFoundError when the file is missing; ValueError naming the file when it cannot be
      decoded.
    """
    if not pathlib.Path(path).is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        return decode_file(path)
    except DECODE_ERRORS as e:
        raise UserError(f"cannot read image {path}: {decode_error(e)}") from e


@dataclasses.dataclass
class Photo:
    """A photo file as the inpainting tools need it (`read_photo`).

    Attributes:
      rgb: uint8 [H, W, 3], upright (EXIF orientation applied), alpha composited over white.
      rgb16: uint16 [H, W, 3] the same pixels at full depth for a 16-bit PNG, else None.
      alpha: uint8 or uint16 [H, W] opacity (upright) when the file has an alpha channel.
      exif: the file's EXIF block with the orientation reset to 1 (the pixels are upright), or None.
      icc: the embedded ICC colour profile (bytes) or None.
      dpi: (x, y) resolution in dots per inch, or None.
    """

    rgb: np.ndarray
    rgb16: np.ndarray | None = None
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    icc: bytes | None = None
    dpi: tuple[float, float] | None = None


def _upright_index(image: Image.Image, height: int, width: int) -> np.ndarray | None:
    """Flat indices that reorder a [H, W] array as `ImageOps.exif_transpose` reorders `image`
    (None when upright), so that cv2-decoded 16-bit pixels follow Pillow's rule exactly."""
    orientation = image.getexif().get(0x0112, 1)
    if orientation in (None, 1):
        return None
    index = Image.fromarray(np.arange(height * width, dtype=np.int32).reshape(height, width))
    index.info["exif"] = image.getexif().tobytes()
    index.getexif()[0x0112] = orientation
    return np.asarray(ImageOps.exif_transpose(index))


def _read_sixteen(data: bytes, image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(rgb uint16 [H, W, 3] over white, alpha uint16 or None) of a 16-bit PNG, upright."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise UserError("cannot decode the 16-bit PNG")
    array: np.ndarray = decoded
    if array.ndim == 2:
        array = array[..., None]
    array = array[..., [2, 1, 0, 3][: array.shape[-1]]] if array.shape[-1] >= 3 else array
    height, width = array.shape[:2]
    order = _upright_index(image, height, width)
    if order is not None:
        array = array.reshape(-1, array.shape[-1])[order]
    alpha = None
    if array.shape[-1] in (2, 4):
        alpha = array[..., -1]
        a = alpha[..., None].astype(np.uint64)
        over = (array[..., :-1].astype(np.uint64) * a + 65535 * (65535 - a) + 32767) // 65535
        array = over.astype(np.uint16)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array), alpha


def read_photo(source: str | os.PathLike | bytes, name: str | None = None) -> Photo:
    """Reads an image file (a path, or its bytes with `name` for messages) with its metadata.

    `rgb` is what `read_image` returns, except for a 16-bit PNG, which gives `rgb16` (alpha over
    white at 16 bits) and `rgb` = rgb16 * 255 // 65535; the EXIF block comes back with
    orientation 1, since the pixels are upright.

    Raises:
      FileNotFoundError for a missing path; UserError naming the file when it cannot be decoded.
    """
    if not isinstance(source, bytes):
        name = name or os.fspath(source)
        if not pathlib.Path(source).is_file():
            raise FileNotFoundError(f"image file not found: {source}")
        source = pathlib.Path(source).read_bytes()
    try:
        with Image.open(io.BytesIO(source)) as image:
            rgb = decode_file(io.BytesIO(source))
            photo = Photo(rgb, icc=image.info.get("icc_profile") or None)
            if image.info.get("dpi"):
                dpi_x, dpi_y = image.info["dpi"][:2]
                photo.dpi = (float(dpi_x), float(dpi_y))
            if image.format == "PNG" and source[24] == 16:  # IHDR bit depth
                photo.rgb16, photo.alpha = _read_sixteen(source, image)
                photo.rgb = to_rgb(photo.rgb16)  # the 8-bit rule of this module, not Pillow's
            elif "A" in image.mode or "transparency" in image.info:
                rgba = ImageOps.exif_transpose(image).convert("RGBA")
                photo.alpha = np.asarray(rgba)[..., 3].copy()
            exif = image.getexif()  # last: setting the orientation changes Pillow's cached copy
            if len(exif):
                exif[0x0112] = 1
                photo.exif = exif.tobytes()
    except DECODE_ERRORS as e:
        raise UserError(f"cannot read image {name}: {decode_error(e)}") from e
    return photo


def holes_from_gray(gray: np.ndarray, threshold: float = 0.5, hole_is_white: bool = True):
    """Binarises a grey mask image into a hole map.

    Args:
      gray: uint8 [H, W] (full scale 255), uint16 (65535), bool (1) or float in [0, 1].
      threshold: fraction of full scale; a pixel is "white" when strictly above it. In [0, 1).
      hole_is_white: True for NVIDIA's and our files (white = hole); False for black = hole.

    Returns:
      bool [H, W], True = hole.
    """
    if not 0.0 <= threshold < 1.0:
        raise UserError(f"mask threshold must lie in [0, 1), got {threshold}")
    full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(gray.dtype, 1.0)
    white = gray > threshold * full
    return white if hole_is_white else ~white


def read_gray(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """A mask file (a path, or its bytes with `name` for messages) as grey [H, W] at its own
    depth: bool, uint8 or uint16 (colour -> luma)."""
    stream: str | os.PathLike | BinaryIO
    if isinstance(source, bytes):
        name, stream = name or "mask", io.BytesIO(source)
    else:
        name, stream = name or os.fspath(source), source
        if not pathlib.Path(source).is_file():
            raise FileNotFoundError(f"mask file not found: {source}")
    image: Image.Image  # the opened file, then its transposed copy
    try:
        with Image.open(stream) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode == "1":
                return np.asarray(image, dtype=bool)
            if image.mode in _SIXTEEN_BIT:
                return np.clip(np.asarray(image).astype(np.int64), 0, 65535).astype(np.uint16)
            if image.mode in ("LA", "PA", "RGBA", "P"):  # alpha: composite over white first
                return cv2.cvtColor(to_rgb(np.asarray(image.convert("RGBA"))), cv2.COLOR_RGB2GRAY)
            return np.asarray(image if image.mode == "L" else image.convert("L"))
    except DECODE_ERRORS as e:
        raise UserError(f"cannot read mask file {name}: {decode_error(e)}") from e


def resize_nearest(array: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of [H, W] or [H, W, C] to `size` (int: square, or (H, W))."""
    height, width = (size, size) if isinstance(size, int) else size
    if array.shape[:2] == (height, width):
        return array
    is_bool = array.dtype == np.bool_
    work = array.astype(np.uint8) if is_bool else array
    out = cv2.resize(work, (width, height), interpolation=cv2.INTER_NEAREST)
    if array.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out.astype(bool) if is_bool else out


def fit_holes(holes: np.ndarray, size: int | tuple[int, int], name: str = "mask") -> np.ndarray:
    """Nearest-resizes a hole map [H, W] to `size`; ValueError if the aspect ratio differs."""
    height, width = (size, size) if isinstance(size, int) else size
    mh, mw = holes.shape[:2]
    if abs(mh * width - mw * height) > max(height, width, mh, mw):  # > ~1 pixel of aspect
        raise UserError(
            f"{name} is {mh}x{mw} (HxW) but must become {height}x{width}: different aspect ratios"
        )
    return resize_nearest(holes, (height, width))


def read_holes(path, size=None, threshold: float = 0.5, hole_is_white: bool = True) -> np.ndarray:
    """Reads a mask file as a bool hole map [H, W] (True = hole), nearest-resized to `size`.

    Args:
      path: mask file (PNG recommended); white = hole unless `hole_is_white=False`.
      size: None (the file's size), an int (square) or (height, width).
      threshold: see `holes_from_gray`.
    """
    holes = holes_from_gray(read_gray(path), threshold, hole_is_white)
    return holes if size is None else resize_nearest(holes, size)


def to_model_mask(holes: np.ndarray) -> np.ndarray:
    """bool/uint8 hole map [H, W] (nonzero = hole) -> float32 [H, W, 1], 1 = known, 0 = hole."""
    return np.equal(holes, 0).astype(np.float32)[..., None]


def read_mask(path, size=None, threshold: float = 0.5, hole_is_white: bool = True) -> np.ndarray:
    """Reads a mask file in the model's convention: float32 [H, W, 1] in {0, 1}, 1 = known.

    Arguments as for `read_holes`.
    """
    return to_model_mask(read_holes(path, size, threshold, hole_is_white))


def write_holes(path: str | os.PathLike, holes: np.ndarray) -> None:
    """Writes a hole map [H, W] (nonzero = hole) as an 8-bit PNG, white (255) = hole."""
    with atomic.replacing(path) as temporary:
        if not cv2.imwrite(os.fspath(temporary), np.where(holes != 0, 255, 0).astype(np.uint8)):
            raise UserError(f"cannot write mask file {path}")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0,1] (values outside are clipped) -> uint8, rounding to nearest."""
    return np.round(np.clip(np.asarray(images, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def image_grid(columns: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Lays out K batches [N,H,W,3] in [0,1] as N rows × K columns, uint8 [N·(H+p), K·(W+p), 3]."""
    n, h, w, _ = columns[0].shape
    grid = np.full((n * (h + pad) + pad, len(columns) * (w + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(columns):
        col = np.broadcast_to(col, (n, h, w, 3))
        for i in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = to_uint8(col[i])
    return grid


def save_png(array_uint8: np.ndarray, path: str | pathlib.Path) -> None:
    """Writes uint8 [H, W, 3] (or [H, W]) as a PNG, creating its folder (whole or not at all)."""
    with atomic.replacing(path) as temporary:
        Image.fromarray(array_uint8).save(temporary, format="PNG")
