"""Input pipelines: decoding, sources, deterministic/resumable batches, corrupt files, tfds mock."""

import dataclasses
import gc
import json
import logging
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from pconv_jax import config, images
from pconv_jax.config import DataConfig
from pconv_jax.data import pipeline as data
from pconv_jax.data import sources, sr_canvas
from pconv_jax.masks import protocol as masks

SIZE = 16


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def image_dir(tmp_path):
    """A tiny folder: RGB jpg/png/webp/bmp, greyscale, RGBA, palette, 16-bit, one corrupt file."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for i in range(3):
        _save(root / "a" / f"rgb_{i}.jpg", rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    _save(root / "a" / "rgb.png", rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))
    _save(root / "b" / "photo.webp", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    _save(root / "b" / "pic.bmp", rng.integers(0, 256, (20, 26, 3), dtype=np.uint8))
    _save(root / "b" / "grey.png", np.full((20, 20), 77, np.uint8))
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 100, 128
    _save(root / "b" / "rgba.png", rgba)
    palette = Image.fromarray(np.full((18, 18, 3), (10, 200, 30), np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE
    )
    palette.save(root / "b" / "palette.png")
    Image.fromarray(np.full((20, 20), 32768, np.uint16)).save(root / "b" / "grey16.png")
    (root / "b" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "b" / "notes.txt").write_text("not an image")
    return root


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
    _save(big, np.zeros((200, 300, 3), np.uint8))
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
        data.open_source(DataConfig(source="folder", dir=str(image_dir)), "train", p, 3)
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


def _cfg(image_dir, **kwargs):
    """In the caller unless kwargs ask for workers (the worker tests below compare them)."""
    kwargs = {"num_workers": 0, "prefetch": 0, **kwargs}
    return DataConfig(source="folder", dir=str(image_dir), image_size=SIZE, **kwargs)


def _take(cfg, steps, seed=0, start_step=0, batch=4, **kwargs):
    with data.train_batches(cfg, batch, seed, start_step, **kwargs) as batches:
        return [next(batches) for _ in range(steps)], batches.num_skipped, batches.skipped


def test_batches_shapes_ranges_and_masks(image_dir):
    cfg = _cfg(image_dir, hole_ratio_min=0.1, hole_ratio_max=0.3)
    batches, _, _ = _take(cfg, 3)
    for batch in batches:
        assert set(batch) == {"image", "mask"}
        assert batch["image"].shape == (4, SIZE, SIZE, 3) and batch["image"].dtype == np.float32
        assert batch["mask"].shape == (4, SIZE, SIZE, 1) and batch["mask"].dtype == np.float32
        assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
        assert set(np.unique(batch["mask"])) <= {0.0, 1.0}
        for mask in batch["mask"]:
            assert 0.1 < masks.hole_ratio(mask) <= 0.3


def test_batches_deterministic_resumable_and_worker_independent(image_dir):
    cfg = _cfg(image_dir)
    run, _, _ = _take(cfg, 6)
    again, _, _ = _take(cfg, 6)
    serial, _, _ = _take(_cfg(image_dir, num_workers=2, prefetch=2), 6)
    resumed, _, _ = _take(cfg, 2, start_step=4)
    other_seed, _, _ = _take(cfg, 1, seed=1)
    for step in range(6):
        for key in ("image", "mask"):
            np.testing.assert_array_equal(run[step][key], again[step][key])
            np.testing.assert_array_equal(run[step][key], serial[step][key])
    for step in (4, 5):
        for key in ("image", "mask"):  # bitwise: the batch is a function of (cfg, seed, step)
            assert run[step][key].tobytes() == resumed[step - 4][key].tobytes()
    assert not np.array_equal(run[0]["image"], other_seed[0]["image"])
    assert not np.array_equal(run[0]["mask"], run[1]["mask"])


def test_processes_make_their_rows_of_the_same_global_batch(image_dir):
    """2 processes' shards, stacked, are bitwise the 1-process global batch of every step."""
    cfg = _cfg(image_dir)
    whole, _, _ = _take(cfg, 3, start_step=2, process_count=1)
    first, _, _ = _take(cfg, 3, start_step=2, process_index=0, process_count=2)
    second, _, _ = _take(cfg, 3, start_step=2, process_index=1, process_count=2)
    assert first[0]["image"].shape == (2, SIZE, SIZE, 3)  # global 4 over 2 processes
    assert not np.array_equal(first[0]["image"], second[0]["image"])
    for step in range(3):
        for key in ("image", "mask"):
            stacked = np.concatenate([first[step][key], second[step][key]])
            assert stacked.tobytes() == whole[step][key].tobytes()


def test_batch_size_must_divide_over_devices(image_dir):
    with pytest.raises(ValueError, match="not divisible by the 4 devices"):
        data.train_batches(_cfg(image_dir), 6, seed=0)
    with pytest.raises(ValueError, match="per-process"):
        data.train_batches(_cfg(image_dir), 4, seed=0, process_count=3)


def _replacement(image_dir, seed=0, process=0):
    """The file that replaces b/corrupt where the stream first meets it (epoch 0): the next one
    of the epoch's permutation, cyclically (numpy's permutation seeded as the docstring of
    pconv_jax.data.pipeline specifies)."""
    names = [sources.folder_source(image_dir).name(i) for i in range(11)]
    order = list(np.random.default_rng([seed, process, 0, 0]).permutation(11))
    return names[order[(order.index(names.index("b/corrupt")) + 1) % 11]]


def test_corrupt_files_are_skipped_counted_and_replaced(image_dir, caplog):
    cfg = _cfg(image_dir)
    with caplog.at_level(logging.WARNING, logger="pconv_jax.data.pipeline"):
        batches, skipped, names = _take(cfg, 9)  # 36 examples: every image of 3 epochs
    assert skipped == 1 and names == ["b/corrupt"]
    (warning,) = [r.getMessage() for r in caplog.records if "b/corrupt" in r.getMessage()]
    assert warning.endswith(f"replaced by {_replacement(image_dir)}")  # warned once, with which
    assert all(b["image"].shape == (4, SIZE, SIZE, 3) for b in batches)
    bad = image_dir.parent / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    for workers in (0, 2):  # a worker's exception reaches the trainer as itself
        with pytest.raises(ValueError, match="none of the 1 images is readable"):
            _take(_cfg(bad, num_workers=workers), 1)


def test_single_image_crop_is_whole_image_or_its_mirror(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    _save(tmp_path / "one" / "x.png", image)
    cfg = _cfg(tmp_path / "one", train_scale_max=1)
    batches, _, _ = _take(cfg, 3)
    expected = image * np.float32(1 / 255)
    flips = 0
    for example in np.concatenate([b["image"] for b in batches]):
        if np.array_equal(example, expected[:, ::-1]):
            flips += 1
        else:
            np.testing.assert_array_equal(example, expected)
    assert 0 < flips < 12


def test_superres_batches(image_dir):
    cfg = _cfg(image_dir, task="superres", sr_factors=(2, 4))
    (batch,), _, _ = _take(cfg, 1, batch=8)
    assert set(batch) == {"image", "mask", "input"}
    factors = set()
    for image, mask, canvas in zip(batch["image"], batch["mask"], batch["input"]):
        factor = {64: 2, 16: 4}[int(mask.sum())]  # one known pixel per cell
        factors.add(factor)
        expected_canvas, expected_mask = sr_canvas.make_sr_example(image, factor)
        np.testing.assert_array_equal(canvas, expected_canvas)
        np.testing.assert_array_equal(mask, expected_mask)
    assert factors == {2, 4}


def _raw_mask_folder(folder, centres_x, radius):
    """Writes one 40x40 raw mask PNG per centre: a white disc (hole) at (x, 20) on black."""
    folder.mkdir()
    for i, x in enumerate(centres_x):
        gray = np.zeros((40, 40), np.uint8)
        cv2.circle(gray, (x, 20), radius, 255, -1)
        assert cv2.imwrite(str(folder / f"r{i}.png"), gray)
    return folder


def test_mask_folder_training_and_test_set_refusal(image_dir, tmp_path):
    raw = _raw_mask_folder(tmp_path / "raw", centres_x=(10, 25), radius=6)
    cfg = _cfg(image_dir, masks="folder", mask_dir=str(raw), mask_dilation=(3, 9))
    (batch,), _, _ = _take(cfg, 1)
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0}
    assert batch["mask"].min() == 0.0  # holes were drawn
    (raw / masks.MANIFEST_NAME).write_text("file,bucket,border,hole_ratio\n")
    with pytest.raises(ValueError, match="refusing to train"):
        data.train_batches(cfg, 4, seed=0)
    forced = _cfg(image_dir, masks="folder", mask_dir=str(raw), force_test_masks=True)
    data.train_batches(forced, 4, seed=0).close()


def test_eval_images_folder_is_deterministic(image_dir):
    evaluation = data.eval_images(str(image_dir), 8)
    assert len(evaluation) == 11
    first = list(evaluation)
    assert evaluation.num_skipped == 1 and evaluation.skipped == ["b/corrupt"]
    assert [name for name, _ in first][:2] == ["a/rgb", "a/rgb_0"]
    assert all(image.shape == (8, 8, 3) and image.dtype == np.uint8 for _, image in first)
    for (n1, i1), (n2, i2) in zip(first, data.eval_images(image_dir, 8)):
        assert n1 == n2 and np.array_equal(i1, i2)
    # Centre crop of the short side, no resize when it already has the requested size.
    image = np.arange(6 * 10 * 3, dtype=np.uint8).reshape(6, 10, 3)
    _save(image_dir.parent / "exact" / "x.png", image)
    ((name, crop),) = list(data.eval_images(image_dir.parent / "exact", 6))
    assert name == "x"
    np.testing.assert_array_equal(crop, image[:, 2:8])
    cfg = DataConfig(source="folder", dir=str(image_dir), image_size=12)
    assert len(data.eval_images(cfg, limit=3)) == 3
    assert data.eval_images(cfg).load(0).shape == (12, 12, 3)


def test_tfds_sources_under_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        cfg = DataConfig(source="tfds", tfds_name="places365_small", image_size=SIZE)
        batches, skipped, _ = _take(dataclasses.replace(cfg, num_workers=0), 2)
        assert batches[0]["image"].shape == (4, SIZE, SIZE, 3) and skipped == 0
        again, _, _ = _take(dataclasses.replace(cfg, num_workers=0), 2)
        np.testing.assert_array_equal(batches[1]["image"], again[1]["image"])
        evaluation = data.eval_images("tfds:places365_small", 32, split="validation")
        items = list(evaluation)
        assert len(items) == 6 and items[0][0] == "validation_0000000"
        assert items[0][1].shape == (32, 32, 3)
        grey = data.eval_images(DataConfig(source="tfds", tfds_name="mnist", eval_split="test"), 8)
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
        data.train_batches(_cfg(image_dir), 4, seed=-1)


# Workers: grain's processes or the caller. Batches must not depend on them.

KINDS = {
    "processes": {"num_workers": 2},
    "3 processes, no prefetch": {"num_workers": 3, "prefetch": 0},
    "1 process": {"num_workers": 1, "prefetch": 1},
    "caller": {"num_workers": 0, "prefetch": 0},
}


def _assert_same_batches(expected, actual):
    assert len(expected) == len(actual)
    for one, other in zip(expected, actual):
        assert set(one) == set(other)
        for key in one:  # bitwise, dtype and shape included
            assert type(one[key]) is np.ndarray and type(other[key]) is np.ndarray
            assert one[key].dtype == other[key].dtype and one[key].shape == other[key].shape
            assert one[key].tobytes() == other[key].tobytes(), key


def test_worker_counts_give_identical_batches_resume_and_skips(image_dir, caplog):
    results = {}
    for kind, fields in KINDS.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pconv_jax.data.pipeline"):
            results[kind] = _take(_cfg(image_dir, **fields), 9)  # 3 epochs: meets b/corrupt
        warnings = [r.getMessage() for r in caplog.records if "b/corrupt" in r.getMessage()]
        assert len(warnings) == 1, (kind, warnings)  # reported in this process, once
        assert results[kind][1:] == (1, ["b/corrupt"]), kind
    for kind in KINDS:
        _assert_same_batches(results["caller"][0], results[kind][0])
    for start in (6, 7):  # a resume at a step that is not a multiple of the worker count
        resumed, _, _ = _take(_cfg(image_dir, **KINDS["processes"]), 9 - start, start_step=start)
        _assert_same_batches(results["caller"][0][start:], resumed)


def test_process_workers_superres_and_mask_folder_batches(image_dir, tmp_path):
    raw = _raw_mask_folder(tmp_path / "raw", centres_x=(8, 20, 32), radius=5)
    for fields in (
        {"task": "superres", "sr_factors": (2, 4)},
        {"masks": "folder", "mask_dir": str(raw), "mask_dilation": (3, 9)},
    ):
        caller, _, _ = _take(_cfg(image_dir, **fields, **KINDS["caller"]), 2, batch=8)
        processes, _, _ = _take(_cfg(image_dir, **fields, **KINDS["processes"]), 2, batch=8)
        _assert_same_batches(caller, processes)
    assert set(processes[0]) == {"image", "mask"} and set(caller[0]) == {"image", "mask"}


def test_process_workers_read_tfds_sources():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        cfg = DataConfig(source="tfds", tfds_name="places365_small", image_size=SIZE)
        caller, _, _ = _take(dataclasses.replace(cfg, **KINDS["caller"]), 2)
        # The tfds data source is pickled to the workers (it reopens its files there).
        processes, skipped, _ = _take(dataclasses.replace(cfg, **KINDS["processes"]), 2)
    _assert_same_batches(caller, processes)
    assert skipped == 0


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (an exited orphan that nobody reaped counts as gone)."""
    if not pathlib.Path("/proc").is_dir():  # not Linux: zombies would count as alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids, seconds=30.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(pid) for pid in pids)


def _worker_pids() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def _next(batches, count):
    """The last of `count` batches (grain starts each worker for its first batch)."""
    for _ in range(count):
        batch = next(batches)
    return batch


def test_process_workers_are_spawned_and_stop(image_dir):
    cfg = _cfg(image_dir, **KINDS["processes"])
    assert not _worker_pids()
    with data.train_batches(cfg, 4, seed=0) as batches:
        _next(batches, 3)
        pids = _worker_pids()
        assert len(pids) == 2 and os.getpid() not in pids
        assert all(_alive(pid) for pid in pids)
        if pathlib.Path("/proc").is_dir():  # started by spawn, not forked from this process
            for pid in pids:
                assert b"multiprocessing.spawn" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    assert _wait_gone(pids)  # the context manager stopped them
    with pytest.raises(StopIteration):
        next(batches)
    assert not multiprocessing.active_children()

    batches = data.train_batches(cfg, 4, seed=0)
    _next(batches, 3)
    pids = _worker_pids()
    batches.close()
    assert _wait_gone(pids)
    batches.close()  # closing twice is harmless

    batches = data.train_batches(cfg, 4, seed=0)
    _next(batches, 3)
    pids = _worker_pids()
    del batches  # forgotten without close(): the workers still exit
    gc.collect()
    assert _wait_gone(pids)


def test_worker_side_modules_import_no_jax():
    """What runs in the workers (example making, sources, masks) imports no jax of its own.

    grain does import jax in every process where it is installed (grain's tree helpers), so
    the workers do carry it; see the README's data section for the measured cost."""
    code = (
        "import sys, pconv_jax.data.examples; print(sorted(m for m in sys.modules if m == 'jax'))"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_dead_worker_process_is_a_clear_error(image_dir, monkeypatch):
    # Killed at the wrong moment, a worker leaves grain's close blocked (next test); the
    # shorter bound keeps this test quick when that happens.
    monkeypatch.setattr(data, "CLOSE_TIMEOUT_S", 10.0)
    with data.train_batches(_cfg(image_dir, **KINDS["processes"]), 4, seed=0) as batches:
        _next(batches, 3)
        pids = _worker_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match="terminated unexpectedly"):
            for _ in range(6):  # the prefetched batches may have been finished already
                next(batches)
    assert _wait_gone(pids)


def test_close_kills_the_workers_when_grain_cannot_stop_them(image_dir, monkeypatch, caplog):
    """grain's close blocked for good (as when a killed worker left its queue's lock taken):
    close() returns after CLOSE_TIMEOUT_S with a warning, and the workers are gone."""
    monkeypatch.setattr(data, "CLOSE_TIMEOUT_S", 2.0)
    batches = data.train_batches(_cfg(image_dir, **KINDS["processes"]), 4, seed=0)
    _next(batches, 3)
    pids = _worker_pids()
    assert len(pids) == 2
    grain_close = batches._iterator.close
    released = threading.Event()
    # Without the bound, close() would return only when this wait ends (after 60 s).
    monkeypatch.setattr(batches._iterator, "close", lambda: released.wait(60.0))
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=data.__name__):
        batches.close()
    assert 2.0 <= time.monotonic() - start < 20.0
    assert "killing the 2 left" in caplog.text
    assert all(str(pid) in caplog.text for pid in pids)
    assert _wait_gone(pids, seconds=5.0)
    released.set()
    grain_close()  # grain's own cleanup (its shared memory); the workers are already gone


SCRIPT = """
import json, multiprocessing, sys, time

from pconv_jax.data import pipeline as data
from pconv_jax.config import DataConfig

if __name__ == "__main__":  # spawned workers import this file too, without running this part
    import jax

    jax.numpy.ones(3).block_until_ready()  # JAX initialised, its threads running
    cfg = DataConfig(source="folder", dir=sys.argv[1], image_size=16, num_workers=2)
    with data.train_batches(cfg, 4, seed=0, process_count=1) as batches:
        batch = next(batches)
        for _ in range(2):  # grain starts each worker for its first batch
            next(batches)
        pids = [p.pid for p in multiprocessing.active_children()]
        print(json.dumps({"sum": float(batch["image"].sum()), "pids": pids}), flush=True)
        time.sleep(120)  # until the test kills this process
"""


def test_process_workers_from_a_script_that_runs_jax_and_dies(image_dir, tmp_path):
    """The trainer's situation: a main script (re-imported by every spawned worker), JAX live;
    then the trainer is killed outright (SIGKILL: no close()), and its workers must not stay.
    (grain's own workers would: they wait on their full queue; pipeline.init_worker ends them.)"""
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    trainer = subprocess.Popen(
        [sys.executable, str(script), str(image_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    pids = []
    try:
        line = trainer.stdout.readline()  # blocks until the report (or the script's end)
        if not line:
            trainer.wait(timeout=60)
            pytest.fail(f"the script printed no report: {trainer.stderr.read()[-3000:]}")
        report = json.loads(line)
        pids = report["pids"]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        trainer.kill()
        trainer.wait(timeout=60)
        assert _wait_gone(pids)  # orphaned workers notice and exit
    finally:
        trainer.kill()
        for pid in filter(_alive, pids):  # only after a failure: do not leak them
            os.kill(pid, signal.SIGKILL)
        trainer.stdout.close()
        trainer.stderr.close()
    (expected,), _, _ = _take(_cfg(image_dir, **KINDS["caller"]), 1)
    assert report["sum"] == float(expected["image"].sum())


def test_gpu_configs_use_process_workers():
    configs = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"
    for name in ("imagenet_sample_256.py", "imagenet_sample_256_conv.py", "superres_256.py"):
        assert config.load(str(configs / name)).data.num_workers >= 8, name
