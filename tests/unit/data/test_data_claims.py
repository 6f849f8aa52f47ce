"""README claims about training batches, checked through the public `train_batches` API:
which image replaces an unreadable one, and the polarity of folder masks in training."""

import numpy as np
import pytest
from PIL import Image

from pconv_jax.config import DataConfig
from pconv_jax.data import pipeline as data

N = 6
LEVELS = [30, 70, 110, 150, 190, 230]  # flat grey photo i has level LEVELS[i]


def _flat_photos(folder, levels=LEVELS):
    folder.mkdir()
    for i, level in enumerate(levels):
        Image.fromarray(np.full((64, 64, 3), level, np.uint8)).save(folder / f"{i}.png")
    return folder


def _level_stream(cfg, steps):
    """The grey level of every example, in stream order (steps x global batch 4)."""
    levels = []
    with data.train_batches(cfg, 4, seed=3) as batches:
        for _ in range(steps):
            images = next(batches)["image"]
            flat = images.reshape(len(images), -1)
            assert np.all(np.ptp(flat, axis=1) < 1e-3)
            levels += [int(round(v)) for v in flat.mean(axis=1) * 255]
        skipped = batches.num_skipped
    return levels, skipped


def test_unreadable_image_is_replaced_by_the_next_one_of_its_epoch_permutation(tmp_path):
    """Expected stream from the clean stream and the README's rule: the slot of the broken photo
    takes the photo that follows it in that epoch's order (cyclically within the epoch)."""
    steps = N * N // 4  # 36 examples: 6 whole epochs of the 6 photos
    clean_cfg = DataConfig(
        source="folder", dir=str(_flat_photos(tmp_path / "clean")), image_size=32, num_workers=0
    )
    clean, _ = _level_stream(clean_cfg, steps)
    for epoch in range(len(clean) // N):
        assert sorted(clean[epoch * N : (epoch + 1) * N]) == LEVELS, "each epoch is a permutation"

    broken_dir = _flat_photos(tmp_path / "broken")
    broken_level = LEVELS[2]
    (broken_dir / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    cfg = DataConfig(source="folder", dir=str(broken_dir), image_size=32, num_workers=0)
    got, skipped = _level_stream(cfg, steps)
    assert skipped == 1

    expected = []
    for pos, level in enumerate(clean):
        epoch, offset = divmod(pos, N)
        order = clean[epoch * N : (epoch + 1) * N]
        expected.append(order[(offset + 1) % N] if level == broken_level else level)
    assert broken_level not in got
    assert got == expected


def _raw_masks(folder, hole_is_white: bool):
    """Raw mask files with a hole disc of ~7% of the image, in the requested polarity."""
    folder.mkdir()
    yy, xx = np.mgrid[:64, :64]
    for i, (cy, cx) in enumerate([(20, 24), (40, 36), (30, 30)]):
        hole = (yy - cy) ** 2 + (xx - cx) ** 2 < 9.5**2
        white = hole if hole_is_white else ~hole
        Image.fromarray((white * 255).astype(np.uint8)).save(folder / f"raw_{i}.png")
    return folder


@pytest.mark.parametrize("hole_is_white", [True, False])
def test_folder_masks_keep_their_polarity_in_training(tmp_path, hole_is_white):
    """Holes are the small part of each raw mask, so a batch mask (1 = known) must be mostly 1:
    an inverted reading would give hole ratios around 0.9."""
    cfg = DataConfig(
        source="folder",
        dir=str(_flat_photos(tmp_path / "photos")),
        image_size=32,
        num_workers=0,
        masks="folder",
        mask_dir=str(_raw_masks(tmp_path / "raw", hole_is_white)),
        mask_hole_is_white=hole_is_white,
        mask_dilation=(3, 5),
        hole_ratio_min=0.01,
        hole_ratio_max=0.3,
    )
    with data.train_batches(cfg, 4, seed=0) as batches:
        masks = np.concatenate([next(batches)["mask"] for _ in range(4)])
    assert set(np.unique(masks)) <= {0.0, 1.0}
    hole_ratio = 1.0 - masks.reshape(len(masks), -1).mean(axis=1)
    assert np.all(hole_ratio > 0.0), "every example has a hole"
    assert np.all(hole_ratio < 0.5), hole_ratio
    assert 0.02 < hole_ratio.mean() < 0.35, hole_ratio
