"""Shared by tests/unit/data/test_data.py and tests/e2e/test_data_workers.py: a folder of
every image kind (plus one corrupt file), raw mask files, and the data-pipeline calls they make."""

import cv2
import numpy as np
from PIL import Image

from pconv_jax.config import DataConfig
from pconv_jax.data import pipeline as data

SIZE = 16


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_mixed_folder(root):
    """RGB jpg/png/webp/bmp, greyscale, RGBA, palette, 16-bit, one corrupt file and a text file
    under `root`: 11 image files in a/ and b/, one of them corrupt. Returns `root`."""
    rng = np.random.default_rng(0)
    for i in range(3):
        save(root / "a" / f"rgb_{i}.jpg", rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    save(root / "a" / "rgb.png", rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))
    save(root / "b" / "photo.webp", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    save(root / "b" / "pic.bmp", rng.integers(0, 256, (20, 26, 3), dtype=np.uint8))
    save(root / "b" / "grey.png", np.full((20, 20), 77, np.uint8))
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 100, 128
    save(root / "b" / "rgba.png", rgba)
    palette = Image.fromarray(np.full((18, 18, 3), (10, 200, 30), np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE
    )
    palette.save(root / "b" / "palette.png")
    Image.fromarray(np.full((20, 20), 32768, np.uint16)).save(root / "b" / "grey16.png")
    (root / "b" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "b" / "notes.txt").write_text("not an image")
    return root


def raw_mask_folder(folder, centres_x, radius):
    """Writes one 40x40 raw mask PNG per centre: a white disc (hole) at (x, 20) on black."""
    folder.mkdir()
    for i, x in enumerate(centres_x):
        gray = np.zeros((40, 40), np.uint8)
        cv2.circle(gray, (x, 20), radius, 255, -1)
        assert cv2.imwrite(str(folder / f"r{i}.png"), gray)
    return folder


def folder_cfg(image_dir, **kwargs):
    """The folder's DataConfig at SIZE px, batches made in the caller (no worker processes, no
    prefetch) unless kwargs ask for workers (tests/e2e/test_data_workers.py compares them)."""
    kwargs = {"num_workers": 0, "prefetch": 0, **kwargs}
    return DataConfig(source="folder", dir=str(image_dir), image_size=SIZE, **kwargs)


def take(cfg, steps, seed=0, start_step=0, batch=4, **kwargs):
    """(batches, num_skipped, skipped names) of the first `steps` batches of `train_batches`."""
    with data.train_batches(cfg, batch, seed, start_step, **kwargs) as batches:
        return [next(batches) for _ in range(steps)], batches.num_skipped, batches.skipped
