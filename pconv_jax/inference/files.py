"""Inpainting image files and folders: where the holes come from, batches, writing results.

Files are read by `pconv_jax.images` (the decoder training uses too): `hole_is_white=True` (the
NVIDIA mask convention, default) makes white pixels holes, False makes black pixels holes. A mask
whose size differs from its image's but with the same aspect ratio is resized with nearest
neighbour (after binarising, so no fractional values appear); a different aspect ratio (beyond
~1 px) is an error. Holes may also come from one mask file for a whole folder, the image's alpha
or a colour (`MaskSource`); the mask operations follow (`mask_ops`, `edit`). Results are written
by `output` in the format of their suffix, with the input's metadata; PNG keeps known pixels bit
for bit, a 16-bit PNG stays 16-bit.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import warnings

import numpy as np
from tqdm import tqdm

from pconv_jax import images
from pconv_jax.errors import UserError
from pconv_jax.inference import mask_ops, output
from pconv_jax.inference.edit import NO_OPS, Edit, check_known, prepare, run
from pconv_jax.inference.mask_ops import MaskOps


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


@dataclasses.dataclass(frozen=True)
class MaskSource:
    """Where the holes of each image come from; the holes of all given sources are joined.

    Attributes:
      file: one mask file for every image (nearest-resized to each; the aspect ratio must
        agree within ~1 px), or None.
      from_alpha: the image's transparent pixels (alpha <= threshold of full scale) are hole.
      color: (r, g, b): pixels within `tolerance` of it in every channel are hole.
      hole_is_white, threshold: how mask files are read (`images.holes_from_gray`).
      file_name: the name of `file` in messages (the REST API: the uploaded file's name).
    """

    file: str | os.PathLike | None = None
    from_alpha: bool = False
    color: tuple[int, int, int] | None = None
    tolerance: int = 0
    hole_is_white: bool = True
    threshold: float = 0.5
    file_name: str | None = None  # how messages name `file` (default: its path)

    @functools.cached_property
    def file_holes(self) -> np.ndarray:
        """The one mask `file` as bool [h, w] holes at its own size, read once."""
        return images.read_holes(self.file, None, self.threshold, self.hole_is_white)

    def hole(self, photo: images.Photo, name: str, paired=None, notes=None) -> np.ndarray | None:
        """bool [H, W] hole of `photo` (image `name`), or None when no source is set.

        `paired` is the mask file paired with this image by stem; its resizing is noted in
        `notes` (a list), while the one `file` for a folder is resized silently.
        """
        size = photo.rgb.shape[:2]
        holes = []
        if self.file is not None:
            holes.append(
                images.fit_holes(
                    self.file_holes, size, f"mask {self.file_name or self.file} for {name}"
                )
            )
        if paired is not None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                known = read_known(
                    paired, size, hole_is_white=self.hole_is_white, threshold=self.threshold
                )
            if notes is not None:
                notes += [(pathlib.Path(paired), str(w.message)) for w in caught]
            holes.append(~known)
        if self.from_alpha:
            if photo.alpha is None:
                raise UserError(f"{name} has no alpha channel (--mask-from-alpha)")
            holes.append(mask_ops.hole_from_alpha(photo.alpha, self.threshold))
        if self.color is not None:
            holes.append(mask_ops.hole_from_color(photo.rgb, self.color, self.tolerance))
        return np.logical_or.reduce(holes) if holes else None


@dataclasses.dataclass(frozen=True)
class Outputs:
    """How results are written: `quality` for JPEG/WebP; `concat`: input | hole | result."""

    quality: int = 95
    concat: bool = False


DEFAULT_OUTPUTS = Outputs()


def _write(edit: Edit, result: np.ndarray, photo: images.Photo, path, outputs: Outputs) -> None:
    if outputs.concat:
        result = output.concat_panels(edit.image, edit.hole, result)
    output.write_image(path, result, photo, outputs.quality)


@dataclasses.dataclass
class FolderReport:
    written: list[pathlib.Path] = dataclasses.field(default_factory=list)
    unchanged: list[pathlib.Path] = dataclasses.field(default_factory=list)  # mask had no hole
    skipped: list[tuple[pathlib.Path, str]] = dataclasses.field(default_factory=list)
    notes: list[tuple[pathlib.Path, str]] = dataclasses.field(default_factory=list)  # resized masks

    def summary(self, out_dir) -> str:
        """One line: how many were written, filled, unchanged and skipped (reasons: `skipped`)."""
        return (
            f"wrote {len(self.written) + len(self.unchanged)} images to {out_dir} (filled "
            f"{len(self.written)}, {len(self.unchanged)} unchanged: no hole); skipped "
            f"{len(self.skipped)}" + (" (reasons below)" if self.skipped else "")
        )


def _load(job, source: MaskSource, ops: MaskOps, extend, notes) -> tuple[images.Photo, Edit]:
    image_path, paired = job
    photo = images.read_photo(image_path)
    hole = source.hole(photo, str(image_path), paired, notes)
    if hole is None and not extend:
        raise UserError(
            f"no hole for {image_path}: give a mask, --mask-from-alpha, --mask-color or --extend"
        )
    pixels = photo.rgb16 if photo.rgb16 is not None else photo.rgb
    return photo, prepare(pixels, hole, ops, extend)


def inpaint_jobs(
    inpainter,
    jobs,
    out_paths,
    source: MaskSource,
    *,
    ops=NO_OPS,
    extend=None,
    outputs=DEFAULT_OUTPUTS,
    progress=False,
    report=None,
) -> FolderReport:
    """Inpaints [(image path, paired mask path or None)] into `out_paths`, batch by batch.

    Unreadable images, unusable masks and holes that leave no known pixel are skipped with a
    reason in the report; images without hole are written unchanged (through the same writer,
    so format and metadata follow the same rules).
    """
    report = report or FolderReport()
    step = inpainter.batch_size
    with tqdm(total=len(jobs), unit="image", disable=not progress) as bar:
        for start in range(0, len(jobs), step):
            batch = []
            for job, out_path in zip(jobs[start : start + step], out_paths[start : start + step]):
                try:
                    photo, edit = _load(job, source, ops, extend, report.notes)
                    check_known(edit)
                except (UserError, FileNotFoundError) as e:
                    report.skipped.append((pathlib.Path(job[0]), str(e)))
                    continue
                if not edit.net_hole.any():
                    _write(edit, edit.image, photo, out_path, outputs)
                    report.unchanged.append(pathlib.Path(out_path))
                else:
                    batch.append((photo, edit, out_path))
            if batch:
                results = run(inpainter, [e for _, e, _ in batch])
                for (photo, edit, out_path), result in zip(batch, results):
                    _write(edit, result, photo, out_path, outputs)
                    report.written.append(pathlib.Path(out_path))
            bar.update(len(jobs[start : start + step]))
    return report


def inpaint_file(inpainter, image_path, out_path, source: MaskSource, **options) -> FolderReport:
    """One image file into `out_path` (format from its suffix); options as for `inpaint_jobs`.

    Raises:
      UserError (or FileNotFoundError) for what `inpaint_jobs` would skip.
    """
    output.check_suffix(out_path)
    report = inpaint_jobs(inpainter, [(image_path, None)], [out_path], source, **options)
    if report.skipped:
        raise UserError(report.skipped[0][1])
    return report


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


def _explain_no_pairs(images_dir, masks_dir) -> None:
    """UserError saying why no image of `images_dir` found a mask in `masks_dir`."""
    count = {
        folder: sum(images.is_image_file(p) for p in pathlib.Path(folder).iterdir() if p.is_file())
        for folder in (images_dir, masks_dir)
    }
    if not count[images_dir]:
        raise UserError(f"no image files in {images_dir}")
    if not count[masks_dir]:
        raise UserError(f"no mask files in {masks_dir}")
    raise UserError(
        f"none of the {count[images_dir]} images in {images_dir} has a mask of the same name "
        f"(without suffix) among the {count[masks_dir]} in {masks_dir}"
    )


def inpaint_folder(
    inpainter, images_dir, out_dir, source: MaskSource, masks_dir=None, *, fmt="png", **options
) -> FolderReport:
    """Inpaints every image of `images_dir` into `out_dir/<stem>.<fmt>`.

    Holes: the mask of the same stem in `masks_dir` when given (files without a partner are
    skipped and listed), plus those of `source` (one mask file for all, alpha, colour).
    """
    out_dir = pathlib.Path(out_dir)
    output.check_suffix(f"x.{fmt}")
    if masks_dir is not None:
        pairs, skipped = pair_by_stem(images_dir, masks_dir)
        jobs: list[tuple[pathlib.Path, pathlib.Path | None]]
        jobs = [(image, mask) for _, image, mask in pairs]
        if not jobs:  # nothing to write: an error, not "wrote 0 images"
            _explain_no_pairs(images_dir, masks_dir)
    else:
        jobs, skipped = [], []
        for path in sorted(pathlib.Path(images_dir).iterdir()):
            if images.is_image_file(path):
                jobs.append((path, None))
            elif path.is_file():
                skipped.append((path, "not an image file"))
        if not jobs:
            raise UserError(f"no image files in {images_dir}")
    out_paths = [out_dir / f"{pathlib.Path(image).stem}.{fmt}" for image, _ in jobs]
    report = FolderReport(skipped=skipped)
    return inpaint_jobs(inpainter, jobs, out_paths, source, report=report, **options)
