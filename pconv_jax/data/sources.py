"""Image sources with random access (scikit-image photos, a folder, a tfds dataset) and crops.

Every source returns uint8 RGB arrays [H, W, 3] (see `pconv_jax.images`). Sources are sharded per
process by index striding (folders) or `tfds.split_for_jax_process` (tfds). tfds is imported
lazily: the GPU image has no tfds, and `tfds.data_source` needs no TensorFlow.
"""

from __future__ import annotations

import os
import pathlib

import cv2
import numpy as np

from pconv_jax.config import DataConfig
from pconv_jax.errors import UserError
from pconv_jax.images import decode_file, list_image_files, to_rgb

# The RGB photographs shipped inside scikit-image's data folder (no download needed); greyscale,
# synthetic test patterns and the stereo twin motorcycle_right are left out.
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "color.png",  # skimage.data.colorwheel()
    "hubble_deep_field.jpg",
    "ihc.png",  # skimage.data.immunohistochemistry()
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)


class FileSource:
    """Images from a list of files; `load(i)` decodes the i-th.

    With `keep_decoded`, decoded images stay in memory (for tiny sources such as the nine
    scikit-image photos, whose PNG decoding would otherwise dominate a CPU demo).
    """

    def __init__(
        self,
        files: list[pathlib.Path],
        root: pathlib.Path,
        description: str,
        keep_decoded: bool = False,
    ):
        self.files = files
        self.root = root
        self.description = description
        self.keep_decoded = keep_decoded
        self._decoded: dict[tuple[int, int | None], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.files)

    def name(self, index: int) -> str:
        """Path relative to the source's root, without extension (POSIX separators)."""
        return self.files[index].relative_to(self.root).with_suffix("").as_posix()

    def load(self, index: int, min_side: int | None = None) -> np.ndarray:
        """uint8 RGB [H, W, 3] of file `index` (callers must not modify it)."""
        if not self.keep_decoded:
            return decode_file(self.files[index], min_side)
        key = (index, min_side)
        if key not in self._decoded:  # a race decodes twice, harmlessly (same result)
            self._decoded[key] = decode_file(self.files[index], min_side)
        return self._decoded[key]


class TfdsSource:
    """The `image` feature of a tfds dataset via `tfds.data_source` (random access, no TF)."""

    def __init__(self, data_source, name: str, split: str):
        self.data_source = data_source
        self.description = f"tfds {name} split {split}"
        self.split = split

    def __len__(self) -> int:
        return len(self.data_source)

    def name(self, index: int) -> str:
        return f"{self.split}_{index:07d}"

    def load(self, index: int, min_side: int | None = None) -> np.ndarray:
        example = self.data_source[index]
        if "image" not in example:
            raise UserError(f"{self.description} has no 'image' feature (has {sorted(example)})")
        return to_rgb(np.asarray(example["image"]))


def skimage_source() -> FileSource:
    """scikit-image's bundled RGB photos that are present offline (see SKIMAGE_PHOTOS)."""
    import skimage

    root = pathlib.Path(skimage.__file__).parent / "data"
    files = [root / name for name in SKIMAGE_PHOTOS if (root / name).is_file()]
    if not files:
        raise UserError(f"none of scikit-image's photos {SKIMAGE_PHOTOS} are in {root}")
    return FileSource(files, root, f"scikit-image photos in {root}", keep_decoded=True)


def folder_source(directory: str | os.PathLike) -> FileSource:
    files = list_image_files(directory, recursive=True)
    return FileSource(files, pathlib.Path(directory), f"folder {directory}")


def tfds_source(
    name: str,
    split: str,
    data_dir: str = "",
    download: bool = False,
    process_index: int = 0,
    process_count: int = 1,
) -> TfdsSource:
    """`tfds.data_source(name, split)`, this process's shard when process_count > 1."""
    import tensorflow_datasets as tfds

    shard = split
    if process_count > 1:
        shard = tfds.split_for_jax_process(
            split, process_index=process_index, process_count=process_count
        )
    try:
        data_source = tfds.data_source(
            name, split=shard, data_dir=data_dir or None, download=download
        )
    except Exception as e:  # tfds raises several types; add what we were asked for
        raise UserError(
            f"cannot open tfds dataset {name!r} split {split!r} (data_dir={data_dir or 'default'}, "
            f"download={download}): {e}"
        ) from e
    return TfdsSource(data_source, name, split)


def shard_files(source: FileSource, process_index: int, process_count: int) -> FileSource:
    """This process's files: every process_count-th, starting at process_index."""
    if process_count == 1:
        return source
    files = source.files[process_index::process_count]
    if not files:
        raise UserError(
            f"{source.description}: {len(source.files)} images cannot feed "
            f"{process_count} processes"
        )
    return FileSource(files, source.root, source.description, source.keep_decoded)


def crop_box(
    height: int, width: int, rng: np.random.Generator | None, scale_max: float = 1.0
) -> tuple[int, int, int]:
    """A square crop window (top, left, side) in source pixels.

    rng=None: the centred square of side min(H, W) (eval: resize the short side, centre crop).
    Otherwise: side = min(H, W) / U(1, scale_max) (the short side is resized to
    image_size * U(1, scale_max) before cropping image_size) at a uniformly random position.
    """
    short = min(height, width)
    if rng is None:
        return (height - short) // 2, (width - short) // 2, short
    side = max(1, int(round(short / rng.uniform(1.0, scale_max))))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    return top, left, side


def crop_resize(image: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    """Crops the square `box` of a uint8 [H, W, 3] image and resizes it to uint8 [size, size, 3].

    Area averaging when shrinking (no aliasing), bicubic when enlarging.
    """
    top, left, side = box
    crop = image[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(crop)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def open_source(cfg: DataConfig, split: str, process_index: int = 0, process_count: int = 1):
    """The image source of `cfg` (folder/skimage sharded by striding, tfds by split)."""
    if cfg.source == "tfds":
        return tfds_source(
            cfg.tfds_name, split, cfg.tfds_data_dir, cfg.tfds_download, process_index, process_count
        )
    source = skimage_source() if cfg.source == "skimage" else folder_source(cfg.dir)
    return shard_files(source, process_index, process_count)
