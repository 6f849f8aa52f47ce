"""Inpainting image files and folders: pairing images with masks, writing PNGs.

Files are read by `pconv_jax.images` (the decoder training uses too): `hole_is_white=True` (the
NVIDIA mask convention, default) makes white pixels holes, False makes black pixels holes. A mask
whose size differs from its image's but with the same aspect ratio is resized with nearest
neighbour (after binarising, so no fractional values appear) and a warning; a different aspect
ratio is an error. Outputs are 8-bit RGB PNG, so known pixels are saved bit for bit as decoded
from the input.
"""

from __future__ import annotations

import dataclasses
import pathlib
import warnings

import numpy as np
from tqdm import tqdm

from pconv_jax import images
from pconv_jax.errors import UserError
from pconv_jax.images import save_png


def read_known(path, size_hw: tuple[int, int], *, hole_is_white=True, threshold=0.5) -> np.ndarray:
    """A mask file as bool [H, W], True = known pixel, at its image's size `size_hw`.

    A mask of another size but the same aspect ratio is nearest-resized with a UserWarning.
    """
    holes = images.read_holes(path, None, threshold, hole_is_white)
    if holes.shape != tuple(size_hw):
        (mh, mw), (height, width) = holes.shape, size_hw
        holes = images.fit_holes(holes, size_hw, f"mask {path}")
        warnings.warn(
            f"mask {path} is {mh}x{mw}, its image {height}x{width}: resized with nearest neighbour",
            stacklevel=2,
        )
    return ~holes


def _check_png(path: pathlib.Path) -> None:
    if path.suffix.lower() != ".png":
        raise UserError(f"output must be a .png file (lossless, keeps known pixels); got {path}")


def inpaint_file(inpainter, image_path, mask_path, out_path, *, hole_is_white=True, threshold=0.5):
    """Reads an image and its mask file, inpaints, writes an 8-bit PNG to `out_path`."""
    out_path = pathlib.Path(out_path)
    _check_png(out_path)
    image = images.read_image(image_path)
    known = read_known(mask_path, image.shape[:2], hole_is_white=hole_is_white, threshold=threshold)
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
            if not images.is_image_file(path):
                skipped.append((path, "not an image file"))
                continue
            by_stem.setdefault(path.stem, []).append(path)
        for stem, paths in list(by_stem.items()):
            if len(paths) > 1:
                skipped += [(p, f"several files named {stem}.*; cannot pair") for p in paths]
                del by_stem[stem]
        found.append(by_stem)
    image_by, mask_by = found
    pairs = [(s, image_by[s][0], mask_by[s][0]) for s in sorted(set(image_by) & set(mask_by))]
    skipped += [
        (image_by[s][0], "no mask with this name") for s in sorted(set(image_by) - set(mask_by))
    ]
    skipped += [
        (mask_by[s][0], "no image with this name") for s in sorted(set(mask_by) - set(image_by))
    ]
    return pairs, skipped


def inpaint_folder(
    inpainter, images_dir, masks_dir, out_dir, *, hole_is_white=True, threshold=0.5, progress=True
) -> FolderReport:
    """Inpaints every image of `images_dir` with the mask of the same stem in `masks_dir`.

    Writes `out_dir/<stem>.png`. Unreadable, unpaired and non-image files and masks without a
    known pixel are skipped and listed in the report; images whose mask has no hole are written
    unchanged. Images go to the inpainter `inpainter.batch_size` at a time.
    """
    pairs, skipped = pair_by_stem(images_dir, masks_dir)
    report = FolderReport(skipped=skipped)
    out_dir = pathlib.Path(out_dir)
    with tqdm(total=len(pairs), unit="image", disable=not progress) as bar:
        for start in range(0, len(pairs), inpainter.batch_size):
            batch = []
            for stem, image_path, mask_path in pairs[start : start + inpainter.batch_size]:
                try:
                    image = images.read_image(image_path)
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        known = read_known(
                            mask_path,
                            image.shape[:2],
                            hole_is_white=hole_is_white,
                            threshold=threshold,
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
