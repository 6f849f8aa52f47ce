"""Deterministic evaluation images: a fixed, ordered set of centre crops for validation and
`pconv evaluate` (every process sees the whole set; evaluation splits the pairs itself).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from pconv_jax.config import DataConfig
from pconv_jax.data import sources

log = logging.getLogger(__name__)


class EvalImages:
    """Deterministic evaluation images: (name, uint8 [size, size, 3]) in a fixed order.

    Each image is its short side resized to `size` and centre-cropped. Iterating skips
    unreadable images with a warning (`num_skipped`, `skipped`); `load(i)` raises instead.
    """

    def __init__(self, source, size: int, limit: int | None = None):
        self.source = source
        self.size = size
        self.count = len(source) if limit is None else min(limit, len(source))
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return self.count

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def name(self, index: int) -> str:
        return self.source.name(index)

    def load(self, index: int) -> np.ndarray:
        pixels = self.source.load(index, self.size)
        height, width = pixels.shape[:2]
        return sources.crop_resize(pixels, sources.crop_box(height, width, None), self.size)

    def __iter__(self):
        self.skipped = []
        for index in range(self.count):
            try:
                image = self.load(index)
            except Exception as e:  # any decoder failure
                self.skipped.append(self.name(index))
                log.warning("skipping unreadable image %s: %s", self.name(index), e)
                continue
            yield self.name(index), image


def eval_images(
    source: DataConfig | str | os.PathLike,
    size: int | None = None,
    *,
    split: str | None = None,
    tfds_data_dir: str = "",
    limit: int | None = None,
) -> EvalImages:
    """Deterministic evaluation images.

    Args:
      source: a DataConfig (its source, dir/tfds_name, eval_split, image_size); or "skimage";
        or "tfds:NAME" (e.g. "tfds:places365_small"); or a folder path.
      size: output side in px (default: the DataConfig's image_size; required otherwise).
      split: tfds split, e.g. "validation[:500]" (default: the DataConfig's eval_split, or
        "validation").
      tfds_data_dir: where tfds finds prepared data (a DataConfig brings its own).
      limit: use only the first `limit` images.

    Returns:
      EvalImages: len(), iteration over (name, uint8 [size, size, 3]), load(i).
    """
    if isinstance(source, DataConfig):
        cfg = source
        size = cfg.image_size if size is None else size
        split = cfg.eval_split if split is None else split
    else:
        text = os.fspath(source)
        if text == "skimage":
            cfg = DataConfig(source="skimage")
        elif text.startswith("tfds:"):
            cfg = DataConfig(source="tfds", tfds_name=text[5:], tfds_data_dir=tfds_data_dir)
        else:
            cfg = DataConfig(source="folder", dir=text)
        split = "validation" if split is None else split
    if size is None or size < 1:
        raise ValueError(f"eval_images needs a positive size, got {size}")
    return EvalImages(sources.open_source(cfg, split), size, limit)
