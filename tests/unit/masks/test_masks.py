"""Mask files: polarity, nearest resizing, buckets, NVIDIA's test-set layout, manifests."""

import csv
import os

import cv2
import numpy as np
import pytest

from pconv_jax import cli, images
from pconv_jax.masks import augment as mask_augment
from pconv_jax.masks import benchmark_sets
from pconv_jax.masks import protocol as masks

from conftest import shared_path

NVIDIA = ("data", "nvidia_test_masks")


def _write_gray(path, array):
    assert cv2.imwrite(str(path), np.asarray(array, np.uint8))


def test_holes_from_gray_threshold_and_polarity():
    gray = np.array([[0, 100, 153], [154, 200, 255]], np.uint8)
    # 0.6 * 255 = 153: strictly above is white.
    white = np.array([[0, 0, 0], [1, 1, 1]], bool)
    np.testing.assert_array_equal(images.holes_from_gray(gray, 0.6), white)
    np.testing.assert_array_equal(images.holes_from_gray(gray, 0.6, hole_is_white=False), ~white)
    np.testing.assert_array_equal(
        images.to_model_mask(white), np.array([[1, 1, 1], [0, 0, 0]], np.float32)[..., None]
    )
    with pytest.raises(ValueError, match="threshold"):
        images.holes_from_gray(gray, 1.0)


def test_read_mask_resizes_with_nearest_and_stays_binary(tmp_path):
    gray = np.zeros((4, 4), np.uint8)
    gray[0, 0] = gray[2, 3] = 255  # two hole pixels
    gray[1, 1] = 120  # below the threshold: known
    _write_gray(tmp_path / "m.png", gray)
    mask = images.read_mask(tmp_path / "m.png")
    expected = np.ones((4, 4, 1), np.float32)
    expected[0, 0] = expected[2, 3] = 0
    np.testing.assert_array_equal(mask, expected)
    # Nearest x2: every pixel becomes a 2x2 block, nothing fractional.
    big = images.read_mask(tmp_path / "m.png", size=8)
    np.testing.assert_array_equal(big, np.repeat(np.repeat(expected, 2, 0), 2, 1))
    assert big.dtype == np.float32 and big.shape == (8, 8, 1)
    assert images.read_mask(tmp_path / "m.png", size=(2, 6)).shape == (2, 6, 1)
    with pytest.raises(FileNotFoundError, match="mask file not found"):
        images.read_mask(tmp_path / "absent.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ValueError, match="cannot read mask"):
        images.read_mask(tmp_path / "broken.png")
    with pytest.raises(ValueError, match="different aspect ratios"):
        images.fit_holes(np.zeros((4, 4), bool), (2, 8))


def test_bucket_edges_and_border_distance():
    assert masks.bucket_of(0.01) is None  # buckets are (lo, hi]
    assert masks.bucket_of(0.0100001) == 0
    assert masks.bucket_of(0.1) == 0
    assert masks.bucket_of(0.1000001) == 1
    assert masks.bucket_of(0.6) == 5
    assert masks.bucket_of(0.61) is None
    holes = np.zeros((10, 12), bool)
    holes[3:5, 4:9] = True  # rows 3-4, cols 4-8: distances 3 (top), 5 (bottom), 4, 3 (right)
    assert masks.border_distance(holes) == 3
    holes[9, 6] = True
    assert masks.border_distance(holes) == 0
    assert masks.no_border_margin(512) == 50 and masks.no_border_margin(256) == 25


def test_nvidia_layout_border_half_measured():
    """Evidence for the N/B mapping (README and ANCHORS D.1 disagree): on the shared subset
    every mask of the first half of each 2000-block keeps its holes >= 50 px from the border
    and every mask of the second half comes closer."""
    folder = shared_path(*NVIDIA)
    files = sorted(folder.glob("*.png"))
    assert len(files) == 3000
    for path in files[::25]:  # 120 masks, 10 per (bucket, half)
        index = int(path.stem)
        holes = images.read_holes(path)
        lo, hi = masks.HOLE_RATIO_BUCKETS[index // 2000]
        assert lo < holes.mean() <= hi, path.name
        distance = masks.border_distance(holes)
        if index % 2000 < 1000:
            assert distance >= 50, path.name
        else:
            assert distance < 50, path.name


@pytest.mark.slow
def test_load_mask_set_on_all_shared_nvidia_masks():
    records = masks.load_mask_set(shared_path(*NVIDIA))
    assert len(records) == 3000
    assert set(masks.bucket_counts(records).values()) == {250}
    by_name = {r.name: r for r in records}
    assert (by_name["00000"].bucket, by_name["00000"].border) == (0, False)
    assert (by_name["01000"].bucket, by_name["01000"].border) == (0, True)
    assert (by_name["11249"].bucket, by_name["11249"].border) == (5, True)
    assert (by_name["10249"].bucket, by_name["10249"].border) == (5, False)
    assert min(r.border_distance for r in records if not r.border) == 50
    assert max(r.border_distance for r in records if r.border) < 50


def _nvidia_subset(tmp_path, names):
    folder = shared_path(*NVIDIA)
    out = tmp_path / "subset"
    out.mkdir()
    for name in names:
        os.symlink(folder / f"{name}.png", out / f"{name}.png")
    return out


def test_load_mask_set_nvidia_subset_and_inverted_polarity(tmp_path):
    names = ["00003", "01003", "04100", "05100", "10007", "11007"]
    subset = _nvidia_subset(tmp_path, names)
    records = masks.load_mask_set(subset)
    assert [(r.name, r.bucket, r.border) for r in records] == [
        ("00003", 0, False),
        ("01003", 0, True),
        ("04100", 2, False),
        ("05100", 2, True),
        ("10007", 5, False),
        ("11007", 5, True),
    ]
    for record in records:
        mask = images.read_mask(record.path)
        assert record.hole_ratio == pytest.approx(masks.hole_ratio(mask), abs=1e-9)
    with pytest.raises(ValueError, match="polarity looks wrong"):
        masks.load_mask_set(subset, hole_is_white=False)


def test_refuses_test_masks_for_training(tmp_path):
    subset = _nvidia_subset(tmp_path, ["00003", "03003", "06100", "11007"])
    with pytest.raises(ValueError, match="force_test_masks"):
        masks.check_training_mask_dir(subset)
    masks.check_training_mask_dir(subset, force=True)
    # Nested one level below a training-mask folder: still refused.
    with pytest.raises(ValueError, match="refusing to train on .*subset"):
        mask_augment.RawMaskAugmenter(tmp_path, 32)
    assert len(mask_augment.RawMaskAugmenter(tmp_path, 32, force_test_masks=True)) == 4
    raw = tmp_path / "raw"
    raw.mkdir()
    _write_gray(raw / "00001.png", np.zeros((8, 8)))  # NVIDIA-like name, but no bucket fits
    assert masks.looks_like_test_set(raw) is None
    masks.check_training_mask_dir(raw)


def test_make_test_masks_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "set"
    argv = ["make-test-masks", str(out), "--size", "64", "--per-bucket", "2", "--seed", "5"]
    assert cli.main(argv) == 0
    assert "wrote 24 masks" in capsys.readouterr().out
    with open(out / masks.MANIFEST_NAME) as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [f"{i:05d}.png" for i in range(24)]
    # index = (2 * bucket + border) * per_bucket + j
    assert [(int(r["bucket"]), int(r["border"])) for r in rows[::2]] == [
        (b, s) for b in range(6) for s in (0, 1)
    ]
    records = masks.load_mask_set(out)
    for row, record in zip(rows, records):
        gray = cv2.imread(record.path, cv2.IMREAD_GRAYSCALE)
        assert gray.shape == (64, 64) and set(np.unique(gray)) <= {0, 255}
        assert float(row["hole_ratio"]) == pytest.approx((gray == 255).mean(), abs=1e-6)
        lo, hi = masks.HOLE_RATIO_BUCKETS[record.bucket]
        assert lo < record.hole_ratio <= hi
        if record.border:
            assert record.border_distance == 0
        else:
            assert record.border_distance >= masks.no_border_margin(64) == 6
    assert masks.looks_like_test_set(out)
    # Same seed, same masks; the folder must be new.
    benchmark_sets.make_test_mask_set(tmp_path / "again", size=64, per_bucket=2, seed=5)
    for name in ("00000.png", "00023.png"):
        np.testing.assert_array_equal(
            cv2.imread(str(out / name)), cv2.imread(str(tmp_path / "again" / name))
        )
    assert cli.main(argv) == 2  # not empty


def test_manifest_bucket_mismatch_is_an_error(tmp_path):
    out = tmp_path / "set"
    benchmark_sets.make_test_mask_set(out, size=32, per_bucket=1, seed=0)
    manifest = out / masks.MANIFEST_NAME
    text = manifest.read_text().splitlines()
    text[1] = text[1].replace("00000.png,0,", "00000.png,4,")
    manifest.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match="00000.png"):
        masks.load_mask_set(out)


def test_load_mask_set_needs_a_layout(tmp_path):
    _write_gray(tmp_path / "holes_a.png", np.zeros((8, 8)))
    with pytest.raises(ValueError, match="not an NVIDIA test-mask name"):
        masks.load_mask_set(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no mask files"):
        masks.load_mask_set(empty)


def test_make_test_masks_from_raw_folder(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # raw masks with sizeable random blobs, white = hole
        gray = np.zeros((96, 96), np.uint8)
        for _ in range(3 + 3 * i):
            center = tuple(int(v) for v in rng.integers(0, 96, 2))
            cv2.circle(gray, center, int(rng.integers(6, 20)), 255, -1)
        _write_gray(raw / f"raw_{i}.png", gray)
    records = benchmark_sets.make_test_mask_set(
        tmp_path / "set", size=48, per_bucket=1, seed=1, from_dir=raw
    )
    assert [r.label for r in records] == [f"{b}{s}" for b in range(6) for s in "NB"]
    loaded = masks.load_mask_set(tmp_path / "set")
    assert [(r.bucket, r.border) for r in loaded] == [(r.bucket, r.border) for r in records]
