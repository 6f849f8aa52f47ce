"""Inpainting image files and folders (`pconv inpaint`): pairing, batches, writing results.

Each image goes through the one fill flow (`fill.load`: the holes from a `fill.MaskSource`, the
mask operations, the size limit and the known-pixel check; `edit.run`: the network, or the image
unchanged when there is no hole), several images per `Inpainter` call. Results are written by
`output` in the format of their suffix, with the input's metadata; PNG keeps known pixels bit
for bit, a 16-bit PNG stays 16-bit.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
from tqdm import tqdm

from pconv_jax import images
from pconv_jax.errors import UserError
from pconv_jax.inference import fill, output
from pconv_jax.inference.edit import NO_OPS, Edit, run


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


def inpaint_jobs(
    inpainter,
    jobs,
    out_paths,
    source: fill.MaskSource,
    *,
    ops=NO_OPS,
    extend=None,
    max_side: int | None = None,
    outputs=DEFAULT_OUTPUTS,
    progress=False,
    report=None,
) -> FolderReport:
    """Inpaints [(image path, paired mask path or None)] into `out_paths`, batch by batch.

    Unreadable images, unusable masks, images beyond `max_side` px and holes that leave no known
    pixel are skipped with a reason in the report; images without hole are written unchanged
    (through the same writer, so format and metadata follow the same rules).
    """
    report = report or FolderReport()
    step = inpainter.batch_size
    with tqdm(total=len(jobs), unit="image", disable=not progress) as bar:
        for start in range(0, len(jobs), step):
            batch = []
            for job, out_path in zip(jobs[start : start + step], out_paths[start : start + step]):
                image_path, paired = job
                try:
                    photo, edit = fill.load(
                        image_path,
                        source,
                        ops=ops,
                        extend=extend,
                        max_side=max_side,
                        paired=paired,
                        notes=report.notes,
                    )
                except (UserError, FileNotFoundError) as e:
                    report.skipped.append((pathlib.Path(image_path), str(e)))
                    continue
                batch.append((photo, edit, out_path))
            results = run(inpainter, [e for _, e, _ in batch])
            for (photo, edit, out_path), result in zip(batch, results):
                _write(edit, result, photo, out_path, outputs)
                kept = report.written if edit.net_hole.any() else report.unchanged
                kept.append(pathlib.Path(out_path))
            bar.update(len(jobs[start : start + step]))
    return report


def inpaint_file(
    inpainter, image_path, out_path, source: fill.MaskSource, **options
) -> FolderReport:
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
    inpainter, images_dir, out_dir, source: fill.MaskSource, masks_dir=None, *, fmt="png", **options
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
