"""Input pipelines: decoding, sources, deterministic/resumable batches, corrupt files, tfds mock."""

import dataclasses
import logging
import pathlib

import numpy as np
import pytest

from pconv_jax import config, images
from pconv_jax.config import DataConfig
from pconv_jax.data import eval_set, sources, sr_canvas
from pconv_jax.data import pipeline as data
from pconv_jax.masks import protocol as masks

from data_folder import SIZE, folder_cfg, raw_mask_folder, save, take, write_mixed_folder


@pytest.fixture
def image_dir(tmp_path):
    """Every image kind plus one corrupt file (tests/data_folder.py)."""
    return write_mixed_folder(tmp_path / "images")


def test_decode_converts_every_mode_to_rgb(image_dir):
    grey = images.decode_file(image_dir / "b" / "grey.png")
    np.testing.assert_array_equal(grey, np.full((20, 20, 3), 77, np.uint8))
    # Alpha over white: (100 * 128 + 255 * 127 + 127) // 255 = 177 for red, 127 for green/blue.
    rgba = images.decode_file(image_dir / "b" / "rgba.png")
    np.testing.assert_array_equal(rgba[0, 0], [177, 127, 127])
    np.testing.assert_array_equal(
        images.decode_file(image_dir / "b" / "palette.png")[5, 5], [10, 200, 30]
    )
    np.testing.assert_array_equal(
        images.decode_file(image_dir / "b" / "grey16.png")[0, 0], [127] * 3
    )
    assert images.decode_file(image_dir / "a" / "rgb_0.jpg").shape == (24, 40, 3)
    # JPEG draft decoding keeps the short side >= min_side.
    big = image_dir / "big.jpg"
    save(big, np.zeros((200, 300, 3), np.uint8))
    assert images.decode_file(big, min_side=50).shape == (50, 75, 3)
    assert images.decode_file(big, min_side=60).shape == (100, 150, 3)
    with pytest.raises(OSError):  # PIL.UnidentifiedImageError
        images.decode_file(image_dir / "b" / "corrupt.jpg")


def test_folder_source_is_sorted_recursive_and_sharded(image_dir):
    source = sources.folder_source(image_dir)
    names = [source.name(i) for i in range(len(source))]
    assert names == [
        "a/rgb",
        "a/rgb_0",
        "a/rgb_1",
        "a/rgb_2",
        "b/corrupt",
        "b/grey",
        "b/grey16",
        "b/palette",
        "b/photo",
        "b/pic",
        "b/rgba",
    ]
    shards = [
        sources.open_source(DataConfig(source="folder", dir=str(image_dir)), "train", p, 3)
        for p in range(3)
    ]
    assert [len(s) for s in shards] == [4, 4, 3]
    assert sorted(f for s in shards for f in s.files) == sorted(source.files)
    assert shards[1].files == source.files[1::3]


def test_skimage_photos_are_rgb():
    source = sources.skimage_source()
    assert 1 <= len(source) <= len(sources.SKIMAGE_PHOTOS)
    assert source.name(0) == "astronaut"
    image = source.load(0)
    assert image.dtype == np.uint8 and image.shape == (512, 512, 3)
    assert source.load(0) is image  # decoded once, kept


def test_crop_box_and_resize():
    assert sources.crop_box(10, 20, None) == (0, 5, 10)
    assert sources.crop_box(21, 8, None) == (6, 0, 8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        top, left, side = sources.crop_box(30, 50, rng, scale_max=1.5)
        assert 20 <= side <= 30 and 0 <= top <= 30 - side and 0 <= left <= 50 - side
    image = np.arange(6 * 10 * 3, dtype=np.uint8).reshape(6, 10, 3)
    np.testing.assert_array_equal(sources.crop_resize(image, (0, 2, 6), 6), image[:, 2:8])
    assert sources.crop_resize(image, (0, 2, 6), 3).shape == (3, 3, 3)


def test_batches_shapes_ranges_and_masks(image_dir):
    cfg = folder_cfg(image_dir, hole_ratio_min=0.1, hole_ratio_max=0.3)
    batches, _, _ = take(cfg, 3)
    for batch in batches:
        assert set(batch) == {"image", "mask"}
        assert batch["image"].shape == (4, SIZE, SIZE, 3) and batch["image"].dtype == np.float32
        assert batch["mask"].shape == (4, SIZE, SIZE, 1) and batch["mask"].dtype == np.float32
        assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
        assert set(np.unique(batch["mask"])) <= {0.0, 1.0}
        for mask in batch["mask"]:
            assert 0.1 < masks.hole_ratio(mask) <= 0.3


def test_batches_deterministic_and_resumable(image_dir):
    # The same batches from worker processes: tests/e2e/test_data_workers.py.
    cfg = folder_cfg(image_dir)
    run, _, _ = take(cfg, 6)
    again, _, _ = take(cfg, 6)
    resumed, _, _ = take(cfg, 2, start_step=4)
    other_seed, _, _ = take(cfg, 1, seed=1)
    for step in range(6):
        for key in ("image", "mask"):
            np.testing.assert_array_equal(run[step][key], again[step][key])
    for step in (4, 5):
        for key in ("image", "mask"):  # bitwise: the batch is a function of (cfg, seed, step)
            assert run[step][key].tobytes() == resumed[step - 4][key].tobytes()
    assert not np.array_equal(run[0]["image"], other_seed[0]["image"])
    assert not np.array_equal(run[0]["mask"], run[1]["mask"])


def test_processes_make_their_rows_of_the_same_global_batch(image_dir):
    """2 processes' shards, stacked, are bitwise the 1-process global batch of every step."""
    cfg = folder_cfg(image_dir)
    whole, _, _ = take(cfg, 3, start_step=2, process_count=1)
    first, _, _ = take(cfg, 3, start_step=2, process_index=0, process_count=2)
    second, _, _ = take(cfg, 3, start_step=2, process_index=1, process_count=2)
    assert first[0]["image"].shape == (2, SIZE, SIZE, 3)  # global 4 over 2 processes
    assert not np.array_equal(first[0]["image"], second[0]["image"])
    for step in range(3):
        for key in ("image", "mask"):
            stacked = np.concatenate([first[step][key], second[step][key]])
            assert stacked.tobytes() == whole[step][key].tobytes()


def test_a_local_batch_of_one_is_its_row_of_the_global_batch(image_dir):
    """4 processes of 1 row each (the local batch of one device training alone): once an
    OverflowError in grain before the first batch; each row is bitwise the 1-process row."""
    cfg = folder_cfg(image_dir)
    whole, _, _ = take(cfg, 2, start_step=3, process_count=1)
    for index in range(4):
        row, _, _ = take(cfg, 2, start_step=3, process_index=index, process_count=4)
        for step in range(2):
            for key in ("image", "mask"):
                assert row[step][key].shape[0] == 1
                assert row[step][key].tobytes() == whole[step][key][index : index + 1].tobytes()


def test_batch_size_must_divide_over_devices(image_dir):
    with pytest.raises(ValueError, match="not divisible by the 4 devices"):
        data.train_batches(folder_cfg(image_dir), 6, seed=0)
    with pytest.raises(ValueError, match="per-process"):
        data.train_batches(folder_cfg(image_dir), 4, seed=0, process_count=3)


def _replacement(image_dir, seed=0, process=0):
    """The file that replaces b/corrupt where the stream first meets it (epoch 0): the next one
    of the epoch's permutation, cyclically (numpy's permutation seeded as the docstring of
    pconv_jax.data.pipeline specifies)."""
    names = [sources.folder_source(image_dir).name(i) for i in range(11)]
    order = list(np.random.default_rng([seed, process, 0, 0]).permutation(11))
    return names[order[(order.index(names.index("b/corrupt")) + 1) % 11]]


def test_corrupt_files_are_skipped_counted_and_replaced(image_dir, caplog):
    cfg = folder_cfg(image_dir)
    with caplog.at_level(logging.WARNING, logger="pconv_jax.data.pipeline"):
        batches, skipped, names = take(cfg, 9)  # 36 examples: every image of 3 epochs
    assert skipped == 1 and names == ["b/corrupt"]
    (warning,) = [r.getMessage() for r in caplog.records if "b/corrupt" in r.getMessage()]
    assert warning.endswith(f"replaced by {_replacement(image_dir)}")  # warned once, with which
    assert all(b["image"].shape == (4, SIZE, SIZE, 3) for b in batches)
    bad = image_dir.parent / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match="none of the 1 images is readable"):
        take(folder_cfg(bad), 1)  # in a worker process: tests/e2e/test_data_workers.py


def test_single_image_crop_is_whole_image_or_its_mirror(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    save(tmp_path / "one" / "x.png", image)
    cfg = folder_cfg(tmp_path / "one", train_scale_max=1)
    batches, _, _ = take(cfg, 3)
    expected = image * np.float32(1 / 255)
    flips = 0
    for example in np.concatenate([b["image"] for b in batches]):
        if np.array_equal(example, expected[:, ::-1]):
            flips += 1
        else:
            np.testing.assert_array_equal(example, expected)
    assert 0 < flips < 12


def test_superres_batches(image_dir):
    cfg = folder_cfg(image_dir, task="superres", sr_factors=(2, 4))
    (batch,), _, _ = take(cfg, 1, batch=8)
    assert set(batch) == {"image", "mask", "input"}
    factors = set()
    for image, mask, canvas in zip(batch["image"], batch["mask"], batch["input"]):
        factor = {64: 2, 16: 4}[int(mask.sum())]  # one known pixel per cell
        factors.add(factor)
        expected_canvas, expected_mask = sr_canvas.make_sr_example(image, factor)
        np.testing.assert_array_equal(canvas, expected_canvas)
        np.testing.assert_array_equal(mask, expected_mask)
    assert factors == {2, 4}


def test_mask_folder_training_and_test_set_refusal(image_dir, tmp_path):
    raw = raw_mask_folder(tmp_path / "raw", centres_x=(10, 25), radius=6)
    cfg = folder_cfg(image_dir, masks="folder", mask_dir=str(raw), mask_dilation=(3, 9))
    (batch,), _, _ = take(cfg, 1)
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0}
    assert batch["mask"].min() == 0.0  # holes were drawn
    (raw / masks.MANIFEST_NAME).write_text("file,bucket,border,hole_ratio\n")
    with pytest.raises(ValueError, match="refusing to train"):
        data.train_batches(cfg, 4, seed=0)
    forced = folder_cfg(image_dir, masks="folder", mask_dir=str(raw), force_test_masks=True)
    data.train_batches(forced, 4, seed=0).close()


def test_eval_images_folder_is_deterministic(image_dir):
    evaluation = eval_set.eval_images(str(image_dir), 8)
    assert len(evaluation) == 11
    first = list(evaluation)
    assert evaluation.num_skipped == 1 and evaluation.skipped == ["b/corrupt"]
    assert [name for name, _ in first][:2] == ["a/rgb", "a/rgb_0"]
    assert all(image.shape == (8, 8, 3) and image.dtype == np.uint8 for _, image in first)
    for (n1, i1), (n2, i2) in zip(first, eval_set.eval_images(image_dir, 8)):
        assert n1 == n2 and np.array_equal(i1, i2)
    # Centre crop of the short side, no resize when it already has the requested size.
    image = np.arange(6 * 10 * 3, dtype=np.uint8).reshape(6, 10, 3)
    save(image_dir.parent / "exact" / "x.png", image)
    ((name, crop),) = list(eval_set.eval_images(image_dir.parent / "exact", 6))
    assert name == "x"
    np.testing.assert_array_equal(crop, image[:, 2:8])
    cfg = DataConfig(source="folder", dir=str(image_dir), image_size=12)
    assert len(eval_set.eval_images(cfg, limit=3)) == 3
    assert eval_set.eval_images(cfg).load(0).shape == (12, 12, 3)


def test_tfds_sources_under_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        cfg = DataConfig(source="tfds", tfds_name="places365_small", image_size=SIZE)
        batches, skipped, _ = take(dataclasses.replace(cfg, num_workers=0), 2)
        assert batches[0]["image"].shape == (4, SIZE, SIZE, 3) and skipped == 0
        again, _, _ = take(dataclasses.replace(cfg, num_workers=0), 2)
        np.testing.assert_array_equal(batches[1]["image"], again[1]["image"])
        evaluation = eval_set.eval_images("tfds:places365_small", 32, split="validation")
        items = list(evaluation)
        assert len(items) == 6 and items[0][0] == "validation_0000000"
        assert items[0][1].shape == (32, 32, 3)
        grey = eval_set.eval_images(
            DataConfig(source="tfds", tfds_name="mnist", eval_split="test"), 8
        )
        _, digit = next(iter(grey))
        assert digit.shape == (8, 8, 3)
        np.testing.assert_array_equal(digit[..., 0], digit[..., 2])  # greyscale replicated


def test_validate_names_the_bad_field(image_dir):
    bad = [
        ({"source": "web"}, "data.source"),
        ({"source": "folder", "dir": ""}, "data.dir"),
        ({"source": "tfds"}, "tfds_name"),
        ({"masks": "folder"}, "mask_dir"),
        ({"task": "superres", "sr_factors": (3,)}, "sr_factors"),
        ({"hole_ratio_min": 0.7}, "hole_ratio"),
        ({"train_scale_max": 0.5}, "train_scale_max"),
    ]
    for fields, message in bad:
        cfg = DataConfig(**{"source": "folder", "dir": str(image_dir), **fields})
        with pytest.raises(ValueError, match=message):
            data.validate(cfg)
    with pytest.raises(ValueError, match="seed"):
        data.train_batches(folder_cfg(image_dir), 4, seed=-1)


def test_gpu_configs_use_process_workers():
    configs = pathlib.Path(__file__).resolve().parents[3] / "experiments" / "configs"
    for name in ("imagenet_sample_256.py", "imagenet_sample_256_conv.py", "superres_256.py"):
        assert config.load(str(configs / name)).data.num_workers >= 8, name
