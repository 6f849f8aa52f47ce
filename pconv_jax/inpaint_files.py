"""Inpainting image files and folders: reading images and mask files, pairing, writing PNGs.

Mask files are binarised explicitly: a pixel is "white" when its value exceeds `threshold`
times the format's full scale (255 for 8-bit, 65535 for 16-bit, 1 for bilevel); colour masks
are converted to luminance first. `hole_color='white'` (the NVIDIA mask convention, default)
makes white pixels holes, 'black' makes black pixels holes. A mask whose size differs from its
image's but with the same aspect ratio is resized with nearest neighbour (after binarising, so
no fractional values appear) and a warning; a different aspect ratio is an error.
Outputs are 8-bit RGB PNG, so known pixels are saved bit for bit as decoded from the input.
"""

from __future__ import annotations

import dataclasses
import pathlib
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pconv_jax.writers import save_png

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
HOLE_COLORS = ("white", "black")
# PIL modes that convert to 8-bit RGB without losing range.
_RGB_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
_FULL_SCALE = {"1": 1, "I;16": 65535, "I;16L": 65535, "I;16B": 65535}


def _open(path: pathlib.Path, what: str) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise ValueError(f"cannot read {what} {path}: {e}") from e


def read_image(path: str | pathlib.Path) -> np.ndarray:
    """An image file as uint8 [H,W,3] RGB (EXIF orientation applied, alpha dropped)."""
    path = pathlib.Path(path)
    im = _open(path, "image")
    if im.mode not in _RGB_MODES:
        raise ValueError(f"image {path}: pixel mode {im.mode} is not supported (use 8-bit RGB)")
    return np.asarray(im.convert("RGB"))


def read_mask(
    path: str | pathlib.Path,
    size_hw: tuple[int, int],
    *,
    hole_color: str = "white",
    threshold: float = 0.5,
) -> np.ndarray:
    """A mask file as bool [H,W], True = known pixel, at the image size `size_hw`.

    Args:
      path: mask image (any PIL-readable format; PNG recommended).
      size_hw: (H, W) of the image it belongs to.
      hole_color: 'white' (white = hole, default) or 'black' (black = hole).
      threshold: fraction of full scale; values above it are white. In [0, 1).
    """
    path = pathlib.Path(path)
    if hole_color not in HOLE_COLORS:
        raise ValueError(f"hole_color must be one of {HOLE_COLORS}, got {hole_color!r}")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    im = _open(path, "mask")
    if im.mode in _FULL_SCALE:
        values, full_scale = np.asarray(im).astype(np.int64), _FULL_SCALE[im.mode]
    elif im.mode in _RGB_MODES:
        values, full_scale = np.asarray(im.convert("L")), 255
    else:
        raise ValueError(f"mask {path}: pixel mode {im.mode} is not supported")
    white = values > threshold * full_scale
    known = ~white if hole_color == "white" else white
    height, width = size_hw
    if known.shape != (height, width):
        mh, mw = known.shape
        if abs(mh * width - mw * height) > max(height, width, mh, mw):  # > ~1 pixel of aspect
            raise ValueError(
                f"mask {path} is {mh}x{mw} (HxW) but its image is {height}x{width}: different "
                f"aspect ratios"
            )
        warnings.warn(
            f"mask {path} is {mh}x{mw}, its image {height}x{width}: resized with nearest neighbour",
            stacklevel=2,
        )
        resized = Image.fromarray(known.astype(np.uint8) * 255).resize(
            (width, height), Image.Resampling.NEAREST
        )
        known = np.asarray(resized) > 127
    return known


def _check_png(path: pathlib.Path) -> None:
    if path.suffix.lower() != ".png":
        raise ValueError(f"output must be a .png file (lossless, keeps known pixels); got {path}")


def inpaint_file(inpainter, image_path, mask_path, out_path, *, hole_color="white", threshold=0.5):
    """Reads an image and its mask file, inpaints, writes an 8-bit PNG to `out_path`."""
    out_path = pathlib.Path(out_path)
    _check_png(out_path)
    image = read_image(image_path)
    known = read_mask(mask_path, image.shape[:2], hole_color=hole_color, threshold=threshold)
    save_png(inpainter(image, known), out_path)


@dataclasses.dataclass
class FolderReport:
    written: list[pathlib.Path] = dataclasses.field(default_factory=list)
    unchanged: list[pathlib.Path] = dataclasses.field(default_factory=list)  # mask had no hole
    skipped: list[tuple[pathlib.Path, str]] = dataclasses.field(default_factory=list)
    notes: list[tuple[pathlib.Path, str]] = dataclasses.field(default_factory=list)  # resized masks


def pair_by_stem(
    images_dir, masks_dir
) -> tuple[list[tuple[str, pathlib.Path, pathlib.Path]], list]:
    """Pairs files of two folders by name without suffix (`a.jpg` with `a.png`).

    Returns:
      (sorted [(stem, image_path, mask_path)], [(path, reason)] for every file left out: not an
      image, no partner, or a stem shared by several files).
    """
    found, skipped = [], []
    for folder in (pathlib.Path(images_dir), pathlib.Path(masks_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"not a folder: {folder}")
        by_stem: dict[str, list[pathlib.Path]] = {}
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((path, "not an image file"))
                continue
            by_stem.setdefault(path.stem, []).append(path)
        for stem, paths in list(by_stem.items()):
            if len(paths) > 1:
                skipped += [(p, f"several files named {stem}.*; cannot pair") for p in paths]
                del by_stem[stem]
        found.append(by_stem)
    images, masks = found
    pairs = [(s, images[s][0], masks[s][0]) for s in sorted(set(images) & set(masks))]
    skipped += [(images[s][0], "no mask with this name") for s in sorted(set(images) - set(masks))]
    skipped += [(masks[s][0], "no image with this name") for s in sorted(set(masks) - set(images))]
    return pairs, skipped


def inpaint_folder(
    inpainter, images_dir, masks_dir, out_dir, *, hole_color="white", threshold=0.5, progress=True
) -> FolderReport:
    """Inpaints every image of `images_dir` with the mask of the same stem in `masks_dir`.

    Writes `out_dir/<stem>.png`. Unreadable, unpaired and non-image files and masks without a
    known pixel are skipped and listed in the report; images whose mask has no hole are written
    unchanged. Images go to the inpainter `inpainter.batch_size` at a time.
    """
    from tqdm import tqdm

    pairs, skipped = pair_by_stem(images_dir, masks_dir)
    report = FolderReport(skipped=skipped)
    out_dir = pathlib.Path(out_dir)
    with tqdm(total=len(pairs), unit="image", disable=not progress) as bar:
        for start in range(0, len(pairs), inpainter.batch_size):
            batch = []
            for stem, image_path, mask_path in pairs[start : start + inpainter.batch_size]:
                try:
                    image = read_image(image_path)
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        known = read_mask(
                            mask_path, image.shape[:2], hole_color=hole_color, threshold=threshold
                        )
                    report.notes += [(mask_path, str(w.message)) for w in caught]
                except (ValueError, FileNotFoundError) as e:
                    report.skipped.append((image_path, str(e)))
                    continue
                out_path = out_dir / f"{stem}.png"
                if not known.any():
                    report.skipped.append((image_path, f"mask {mask_path.name} has no known pixel"))
                elif known.all():
                    save_png(image, out_path)
                    report.unchanged.append(out_path)
                else:
                    batch.append((image, known, out_path))
            if batch:
                outputs = inpainter([b[0] for b in batch], [b[1] for b in batch])
                for (_, _, out_path), output in zip(batch, outputs):
                    save_png(output, out_path)
                    report.written.append(out_path)
            bar.update(min(inpainter.batch_size, len(pairs) - start))
    return report
