"""Checkpoints (store/checkpoint.py): a damaged checkpoint is named, set aside on a writable
resume and skipped for the newest intact one; retention keeps the last n and every kth. Training
past a damaged checkpoint: tests/integration/train/test_train_loop.py; the workdir lock:
tests/unit/train/test_workdir_lock.py."""

import logging
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax.store import checkpoint, checksums


def _steps(workdir: pathlib.Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


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


def test_retention_keeps_the_last_n_and_every_kth(tmp_path):
    """Orbax's policies as `Checkpoints` combines them: keep_last=2 keeps 6, 7 of 1..7 and
    keep_every=3 adds 3 and 6 (the union, not either alone)."""
    tree = {"w": jnp.arange(3.0)}
    for keep_every, expected in ((0, [6, 7]), (3, [3, 6, 7])):
        folder = tmp_path / f"every{keep_every}"
        ckpts = checkpoint.Checkpoints(folder, keep_last=2, keep_every=keep_every)
        for step in range(1, 8):
            ckpts.save(step, tree, {"step": jnp.int32(step)})
        ckpts.close()
        assert _steps(folder) == expected
        reader = checkpoint.Checkpoints(folder, read_only=True)
        assert reader.all_steps() == expected and reader.latest_step() == 7
        restored, _ = reader.restore(
            3 if keep_every else 6, {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}
        )
        reader.close()
        np.testing.assert_array_equal(restored["w"], [0.0, 1.0, 2.0])
