"""One photo and its hole -> the result: the flow `pconv inpaint`, the REST API and the page share.

    photo, edit = fill.load(image, MaskSource(file=mask), ops=..., extend=..., max_side=4096)
    result = edit.run(inpainter, [edit])[0]          # or, for one photo:
    done = fill.fill(inpainter, image, MaskSource(file=mask))     # done.result, done.photo

`image` is a path, the file's bytes or a uint8/uint16 RGB array; the hole comes from a
`MaskSource` (a mask file as path, bytes or grey array; the image's alpha; a colour) joined with a
bool hole array (the page's painted strokes). The hole stays a hole (True = fill here) until
`edit.Edit.network_input` turns it into the known mask `Inpainter` takes. `edit.prepare` owns the
size limit, the mask operations and the known-pixel check; `edit.run` the no-hole shortcut.

Mask files: `hole_is_white=True` (the NVIDIA mask convention, default) makes white pixels holes,
False makes black pixels holes. A mask whose size differs from its image's but with the same
aspect ratio is resized with nearest neighbour (after binarising, so no fractional values
appear); a different aspect ratio (beyond ~1 px) is an error.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import pathlib
import warnings

import numpy as np
from PIL import Image

from pconv_jax import images
from pconv_jax.errors import UserError
from pconv_jax.inference import edit, mask_ops
from pconv_jax.inference.mask_ops import Extension, MaskOps

ImageSource = str | os.PathLike | bytes | np.ndarray  # a path, the file's bytes, or RGB pixels
MaskFile = str | os.PathLike | bytes | np.ndarray  # a path, the file's bytes, or grey pixels


def read_hole(path, size_hw: tuple[int, int], *, hole_is_white=True, threshold=0.5) -> np.ndarray:
    """A mask file as bool [H, W], True = hole, at its image's size `size_hw`.

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
    return holes


@dataclasses.dataclass(frozen=True)
class MaskSource:
    """Where the holes of each image come from; the holes of all given sources are joined.

    Attributes:
      file: one mask for every image (a path, the file's bytes, or a grey array [h, w]),
        nearest-resized to each (the aspect ratio must agree within ~1 px), or None.
      from_alpha: the image's transparent pixels (alpha <= threshold of full scale) are hole.
      color: (r, g, b): pixels within `tolerance` of it in every channel are hole.
      hole_is_white, threshold: how mask files are read (`images.holes_from_gray`).
      file_name: the name of `file` in messages (the REST API: the uploaded file's name).
    """

    file: MaskFile | None = None
    from_alpha: bool = False
    color: tuple[int, int, int] | None = None
    tolerance: int = 0
    hole_is_white: bool = True
    threshold: float = 0.5
    file_name: str | None = None  # how messages name `file` (default: its path)

    @functools.cached_property
    def file_holes(self) -> np.ndarray:
        """The one mask `file` as bool [h, w] holes at its own size, read once."""
        if isinstance(self.file, np.ndarray):
            gray = self.file
            if gray.ndim == 3:  # colour: luma, as read_gray converts a colour file
                gray = np.asarray(Image.fromarray(images.to_rgb(gray)).convert("L"))
            return images.holes_from_gray(gray, self.threshold, self.hole_is_white)
        if self.file is None:
            raise ValueError("MaskSource.file is None: no mask file to read")
        gray = images.read_gray(self.file, self.file_name)
        return images.holes_from_gray(gray, self.threshold, self.hole_is_white)

    def hole(self, photo: images.Photo, name: str, paired=None, notes=None) -> np.ndarray | None:
        """bool [H, W] hole of `photo` (image `name`), or None when no source is set.

        `paired` is the mask file paired with this image by stem; its resizing is noted in
        `notes` (a list), while the one `file` for a folder is resized silently.
        """
        size = photo.rgb.shape[:2]
        holes = []
        if self.file is not None:
            what = self.file_name or "file"
            if isinstance(self.file, (str, os.PathLike)):
                what = self.file_name or os.fspath(self.file)
            holes.append(images.fit_holes(self.file_holes, size, f"mask {what} for {name}"))
        if paired is not None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                holes.append(
                    read_hole(
                        paired, size, hole_is_white=self.hole_is_white, threshold=self.threshold
                    )
                )
            if notes is not None:
                notes += [(pathlib.Path(paired), str(w.message)) for w in caught]
        if self.from_alpha:
            if photo.alpha is None:
                raise UserError(f"{name} has no alpha channel (--mask-from-alpha)")
            holes.append(mask_ops.hole_from_alpha(photo.alpha, self.threshold))
        if self.color is not None:
            holes.append(mask_ops.hole_from_color(photo.rgb, self.color, self.tolerance))
        return np.logical_or.reduce(holes) if holes else None


NO_SOURCE = MaskSource()


def _photo(image: ImageSource, name: str, max_side: int | None) -> images.Photo:
    """The photo, its size checked from the file's header before its pixels are decoded."""
    if isinstance(image, np.ndarray):
        pixels = np.asarray(image)
        edit.check_side(pixels.shape[0], pixels.shape[1], max_side, name)
        if pixels.dtype == np.uint16:
            return images.Photo(rgb=images.to_rgb(pixels), rgb16=pixels)
        return images.Photo(rgb=pixels)
    if not isinstance(image, bytes):
        if not pathlib.Path(image).is_file():
            raise FileNotFoundError(f"image file not found: {image}")
        image = pathlib.Path(image).read_bytes()
    try:
        with Image.open(io.BytesIO(image)) as header:
            width, height = header.size
    except images.DECODE_ERRORS as e:
        raise UserError(f"cannot read image {name}: {images.decode_error(e)}") from e
    edit.check_side(height, width, max_side, f"image {name}")  # before decoding: no work
    return images.read_photo(image, name)


def load(
    image: ImageSource,
    source: MaskSource = NO_SOURCE,
    hole: np.ndarray | None = None,
    *,
    ops: MaskOps = edit.NO_OPS,
    extend: Extension | str | None = None,
    max_side: int | None = None,
    name: str | None = None,
    paired=None,
    notes=None,
) -> tuple[images.Photo, edit.Edit]:
    """(the photo with its metadata, the prepared `edit.Edit`) of one image and its hole.

    Args:
      image: a path, the file's bytes, or uint8/uint16 RGB [H, W, 3].
      source: mask file, alpha, colour (`MaskSource`); `paired`: this image's own mask file.
      hole: bool [H, W], more hole (True = fill here), joined with the source's.
      ops, extend, max_side: as for `edit.prepare`.
      name: the image in messages (default: its path, or "the image").
      notes: a list that gets (path, message) for each resized `paired` mask.

    Raises:
      UserError (FileNotFoundError for a missing path) naming the image: unreadable, no hole
      source at all, no known pixel left; edit.TooLarge beyond `max_side`.
    """
    if name is None:
        name = "the image" if isinstance(image, (bytes, np.ndarray)) else os.fspath(image)
    photo = _photo(image, name, max_side)
    holes = [h for h in (source.hole(photo, name, paired, notes), hole) if h is not None]
    if not holes and not extend:
        raise UserError(
            f"no hole for {name}: give a mask, --mask-from-alpha, --mask-color or --extend"
        )
    pixels = photo.rgb16 if photo.rgb16 is not None else photo.rgb
    joined = np.logical_or.reduce(holes) if holes else None
    return photo, edit.prepare(pixels, joined, ops, extend, max_side)


@dataclasses.dataclass
class Filled:
    """What `fill` returns: the result (dtype of the photo, on the extended canvas), the photo
    with its metadata and the prepared edit (its `hole` is what was filled)."""

    result: np.ndarray
    photo: images.Photo
    prepared: edit.Edit

    @property
    def had_hole(self) -> bool:
        """Whether the network ran (False: the result is the photo, unchanged)."""
        return bool(self.prepared.net_hole.any())


def fill(
    inpainter,
    image: ImageSource,
    source: MaskSource = NO_SOURCE,
    hole: np.ndarray | None = None,
    *,
    strategy: str | None = None,
    **options,
) -> Filled:
    """One photo and its hole -> the result: `load` (options as there), then `edit.run`
    (`strategy` as for `Inpainter.__call__`); without hole the photo comes back unchanged."""
    photo, prepared = load(image, source, hole, **options)
    return Filled(edit.run(inpainter, [prepared], strategy)[0], photo, prepared)
