"""A workdir has one trainer (lock, stale lock), damaged checkpoints are named and skipped, launch
settings come from flags or PCONV_* variables. Multi-process runs: tests/e2e/."""

import json
import logging
import os
import pathlib
import socket

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax import cli, config
from pconv_jax.parallel import distributed
from pconv_jax.store import checkpoint, checksums
from pconv_jax.train import loop, workdir_lock

ROOT = pathlib.Path(__file__).resolve().parents[3]
TINY = str(ROOT / "experiments" / "configs" / "tiny.py")


def test_second_trainer_refuses_naming_the_holder(tmp_path, capsys):
    with workdir_lock.WorkdirLock(tmp_path / "run"):  # a second open file: flock conflicts
        # A valid config (the lock is checked after the config): the tiny config's own folder.
        argv = ["train", "--config", TINY, "--set", f"data.dir={tmp_path}"]
        code = cli.main([*argv, "--workdir", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"is being trained by pid {os.getpid()} on host {socket.gethostname()}" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "run" / workdir_lock.LOCK_NAME).exists()  # released and removed


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    # The holder's flock died with it; its pid is only named. No process has this one: Linux
    # pids stay below pid_max <= 2**22.
    dead_pid = 2**22 + 1
    lock_file = tmp_path / workdir_lock.LOCK_NAME
    lock_file.write_text(json.dumps({"host": "h1", "pid": dead_pid, "started": 0, "command": "x"}))
    with caplog.at_level(logging.WARNING, logger="pconv_jax.train.workdir_lock"):
        with workdir_lock.WorkdirLock(tmp_path):
            holder = json.loads(lock_file.read_text())
            assert holder["pid"] == os.getpid()
    assert f"taking over the stale lock of pid {dead_pid} on host h1" in caplog.text
    assert not lock_file.exists()


def _two_checkpoints(workdir):
    rng = np.random.default_rng(0)
    ckpts = checkpoint.Checkpoints(workdir)
    kept = {}
    for step in (5, 7):
        kept[step] = rng.normal(size=(64, 64)).astype(np.float32)  # incompressible
        ckpts.save(step, {"params": {"k": jnp.asarray(kept[step])}}, {"step": jnp.int32(step)})
    ckpts.close()
    return kept


def _damage(workdir, step: int, how: str) -> str:
    """Truncates, overwrites or flips one bit of the largest data file of checkpoint `step`."""
    root = workdir / "checkpoints" / str(step)
    data_file = max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(data_file.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "overwrite":
        data = np.random.default_rng(1).bytes(len(data))
    else:
        data[len(data) // 2] ^= 0x10
    data_file.write_bytes(bytes(data))
    return str(data_file.relative_to(root))


def _restore(workdir):
    target = {"params": {"k": jax.ShapeDtypeStruct((64, 64), jnp.float32)}}
    ckpts = checkpoint.Checkpoints(workdir, read_only=True)
    try:
        return checkpoint.restore_newest_intact(
            ckpts, target, {"step": jax.ShapeDtypeStruct((), jnp.int32)}
        )
    finally:
        ckpts.close()


@pytest.mark.parametrize(
    "how, manifest, reason",
    [
        ("truncate", True, "{file} does not match its SHA-256"),
        ("overwrite", True, "{file} does not match its SHA-256"),
        ("flip", True, "{file} does not match its SHA-256"),
        # Without the manifest (a run killed between commit and hashing), TensorStore's reason.
        ("truncate", False, "OUT_OF_RANGE"),
        ("overwrite", False, "ZSTD_decompressStream"),
    ],
)
def test_damaged_newest_checkpoint_is_named_and_the_previous_one_restored(
    tmp_path, caplog, how, manifest, reason
):
    kept = _two_checkpoints(tmp_path)
    assert sorted(p.name for p in (tmp_path / "checksums").iterdir()) == ["5.json", "7.json"]
    if not manifest:
        (tmp_path / "checksums" / "7.json").unlink()
    reason = reason.format(file=_damage(tmp_path, 7, how))
    with caplog.at_level(logging.WARNING, logger="pconv_jax.store.checkpoint"):
        step, model, train = _restore(tmp_path)
    assert step == 5 and int(train["step"]) == 5
    np.testing.assert_array_equal(np.asarray(model["params"]["k"]), kept[5])
    assert "checkpoint step 7 is damaged or unreadable" in caplog.text
    assert reason in caplog.text
    assert "resuming from step 5, the newest intact checkpoint" in caplog.text
    assert (tmp_path / "checkpoints" / "7").is_dir(), "a read-only reader moves nothing"
    assert not (tmp_path / checkpoint.DAMAGED).exists()


def test_a_writable_resume_sets_damaged_steps_aside_and_saves_them_again(tmp_path, caplog):
    _two_checkpoints(tmp_path)
    _damage(tmp_path, 7, "truncate")
    target = {"params": {"k": jax.ShapeDtypeStruct((64, 64), jnp.float32)}}
    ckpts = checkpoint.Checkpoints(tmp_path)
    try:
        with caplog.at_level(logging.WARNING, logger="pconv_jax.store.checkpoint"):
            step, _, _ = checkpoint.restore_newest_intact(ckpts, target)
        assert step == 5 and ckpts.all_steps() == [5]
        (aside,) = (tmp_path / checkpoint.DAMAGED).iterdir()
        assert f"set aside damaged checkpoint step 7 as {aside.resolve()}" in caplog.text
        assert not (tmp_path / "checksums" / "7.json").exists()  # moved beside the files
        ckpts.save(7, {"params": {"k": jnp.zeros((64, 64))}}, {"step": jnp.int32(7)})
    finally:
        ckpts.close()
    assert checksums.verify(tmp_path / "checkpoints", 7) is None  # a new manifest, matching


def test_a_flipped_bit_without_manifest_goes_unnoticed(tmp_path):
    """Why the manifests exist: the compressed chunk still decodes, into other numbers."""
    kept = _two_checkpoints(tmp_path)
    (tmp_path / "checksums" / "7.json").unlink()
    _damage(tmp_path, 7, "flip")
    step, model, _ = _restore(tmp_path)
    assert step == 7 and not np.array_equal(np.asarray(model["params"]["k"]), kept[7])


def test_no_intact_checkpoint_refuses_to_start_from_scratch(tmp_path):
    _two_checkpoints(tmp_path)
    _damage(tmp_path, 7, "truncate")
    _damage(tmp_path, 5, "overwrite")
    with pytest.raises(checkpoint.NoIntactCheckpoint, match="not training from scratch"):
        _restore(tmp_path)


def test_empty_run_directory_starts_fresh(tmp_path):
    checkpoint.Checkpoints(tmp_path).close()
    assert _restore(tmp_path) is None


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_is_set_aside_and_training_goes_past_it(
    tmp_path, wave_image_dir, caplog
):
    """Once a crash loop: the resume from step 4 died at step 6 (orbax: the step exists)."""
    workdir = tmp_path / "run"
    quiet = [f"data.dir={wave_image_dir}", "train.sample_every=1000", "train.log_every=1000"]
    tiny = config.override(config.load(TINY), quiet)  # checkpoints every 2 steps, keeps 10
    loop.train_and_evaluate(config.override(tiny, ["train.num_steps=6"]), workdir)
    damaged_file = _damage(workdir, 6, "truncate")
    step6 = workdir / "checkpoints" / "6"
    damaged = {str(p.relative_to(step6)): p.read_bytes() for p in step6.rglob("*") if p.is_file()}
    manifest = (workdir / "checksums" / "6.json").read_text()

    with caplog.at_level(logging.INFO):
        loop.train_and_evaluate(config.override(tiny, ["train.num_steps=8"]), workdir)
    assert f"checkpoint step 6 is damaged or unreadable: {damaged_file}" in caplog.text
    assert "resuming from step 4, the newest intact checkpoint" in caplog.text
    (aside,) = (workdir / checkpoint.DAMAGED).iterdir()
    assert aside.name.startswith("6-")
    assert f"set aside damaged checkpoint step 6 as {aside.resolve()}" in caplog.text
    moved = aside / "checkpoint"
    assert {str(p.relative_to(moved)): p.read_bytes() for p in moved.rglob("*") if p.is_file()} == (
        damaged
    ), "the damaged files are moved as they were"
    assert (aside / "checksums.json").read_text() == manifest
    assert damaged_file in (aside / "reason.txt").read_text()
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [2, 4, 6, 8]
    # The new step 6 and step 8 have their own manifests and read back whole.
    for step in (6, 8):
        assert checksums.verify(workdir / "checkpoints", step) is None
    reader = checkpoint.Checkpoints(workdir, read_only=True)
    try:
        assert reader.latest_step() == 8
    finally:
        reader.close()


def test_launch_settings_from_flags_then_environment():
    env = {"PCONV_COORDINATOR": "10.0.0.1:1234", "PCONV_NUM_PROCESSES": "4"}
    env["PCONV_PROCESS_ID"] = "3"
    assert distributed.resolve_launch(environ=env) == distributed.Launch("10.0.0.1:1234", 4, 3)
    assert distributed.resolve_launch(process_id=1, environ=env).process_id == 1
    assert distributed.resolve_launch(environ={}) is None
    with pytest.raises(ValueError, match=r"also needs --process-id \(or PCONV_PROCESS_ID\)"):
        distributed.resolve_launch("h:1", 2, environ={})
    with pytest.raises(ValueError, match="HOST:PORT"):
        distributed.resolve_launch("host", 2, 0, environ={})
    with pytest.raises(ValueError, match="0 <= --process-id < 2"):
        distributed.resolve_launch("h:1", 2, 2, environ={})
