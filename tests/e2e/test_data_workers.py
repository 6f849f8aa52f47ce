"""grain's worker processes: the same batches as the caller for any worker count, and workers
that start by spawn, stop with the pipeline, and exit when the trainer dies."""

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

import numpy as np
import pytest

from pconv_jax.config import DataConfig
from pconv_jax.data import pipeline as data

from data_folder import SIZE, folder_cfg, raw_mask_folder, take, write_mixed_folder


@pytest.fixture
def image_dir(tmp_path):
    return write_mixed_folder(tmp_path / "images")  # tests/data_folder.py


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
            results[kind] = take(folder_cfg(image_dir, **fields), 9)  # 3 epochs: meets b/corrupt
        warnings = [r.getMessage() for r in caplog.records if "b/corrupt" in r.getMessage()]
        assert len(warnings) == 1, (kind, warnings)  # reported in this process, once
        assert results[kind][1:] == (1, ["b/corrupt"]), kind
    for kind in KINDS:
        _assert_same_batches(results["caller"][0], results[kind][0])
    for start in (6, 7):  # a resume at a step that is not a multiple of the worker count
        resumed, _, _ = take(
            folder_cfg(image_dir, **KINDS["processes"]), 9 - start, start_step=start
        )
        _assert_same_batches(results["caller"][0][start:], resumed)


def test_process_workers_superres_and_mask_folder_batches(image_dir, tmp_path):
    raw = raw_mask_folder(tmp_path / "raw", centres_x=(8, 20, 32), radius=5)
    for fields in (
        {"task": "superres", "sr_factors": (2, 4)},
        {"masks": "folder", "mask_dir": str(raw), "mask_dilation": (3, 9)},
    ):
        caller, _, _ = take(folder_cfg(image_dir, **fields, **KINDS["caller"]), 2, batch=8)
        processes, _, _ = take(folder_cfg(image_dir, **fields, **KINDS["processes"]), 2, batch=8)
        _assert_same_batches(caller, processes)
    assert set(processes[0]) == {"image", "mask"} and set(caller[0]) == {"image", "mask"}


def test_process_workers_read_tfds_sources():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        cfg = DataConfig(source="tfds", tfds_name="places365_small", image_size=SIZE)
        caller, _, _ = take(dataclasses.replace(cfg, **KINDS["caller"]), 2)
        # The tfds data source is pickled to the workers (it reopens its files there).
        processes, skipped, _ = take(dataclasses.replace(cfg, **KINDS["processes"]), 2)
    _assert_same_batches(caller, processes)
    assert skipped == 0


def test_a_workers_exception_reaches_the_trainer_as_itself(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match="none of the 1 images is readable"):
        take(folder_cfg(bad, num_workers=2), 1)


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
    cfg = folder_cfg(image_dir, **KINDS["processes"])
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
    root = pathlib.Path(__file__).resolve().parents[3]
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
    with data.train_batches(folder_cfg(image_dir, **KINDS["processes"]), 4, seed=0) as batches:
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
    batches = data.train_batches(folder_cfg(image_dir, **KINDS["processes"]), 4, seed=0)
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
    root = pathlib.Path(__file__).resolve().parents[3]
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
    (expected,), _, _ = take(folder_cfg(image_dir, **KINDS["caller"]), 1)
    assert report["sum"] == float(expected["image"].sum())
