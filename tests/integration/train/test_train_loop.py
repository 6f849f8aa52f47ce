"""The training loop's run controls, in-process training runs: `train.max_seconds` (stop with a
checkpoint, then resume), training the paper's Conv baseline (`model.partial=false`) and a
resume past a damaged newest checkpoint. Retention and damage detection on their own:
tests/unit/store/test_checkpoint.py."""

import json
import logging
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax import config
from pconv_jax.nn.model import build_model
from pconv_jax.parallel import sharding
from pconv_jax.store import checkpoint, checksums
from pconv_jax.train import loop

from tiny_train import run_steps, setup, tiny_batch, tiny_cfg

ROOT = pathlib.Path(__file__).resolve().parents[3]
TINY = ROOT / "experiments" / "configs" / "tiny.py"
QUIET = ["train.sample_every=1000", "train.log_every=1000"]


def _tiny(image_dir, *overrides) -> config.Config:
    return config.override(config.load(str(TINY)), [f"data.dir={image_dir}", *overrides])


def _steps(workdir) -> list[int]:
    folder = pathlib.Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def _params(workdir, step):
    """The checkpointed model variables of `workdir` at `step`, restored onto one device."""
    cfg = checkpoint.read_config(workdir)
    model = build_model(cfg.model)
    side = 2**cfg.model.num_layers
    shapes = jax.eval_shape(
        lambda: model.init(
            jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.ones((1, side, side, 1))
        )
    )
    ckpts = checkpoint.Checkpoints(workdir, read_only=True)
    try:
        variables, _ = ckpts.restore(step, shapes)
    finally:
        ckpts.close()
    return jax.device_get(variables)


def _truncate_largest_file(workdir, step: int) -> str:
    """Cuts the largest data file of checkpoint `step` in half; returns its path in the step."""
    root = workdir / "checkpoints" / str(step)
    data_file = max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    return str(data_file.relative_to(root))


def _logged_steps(workdir) -> list[int]:
    lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


@pytest.mark.slow
def test_max_seconds_stops_with_a_checkpoint_and_the_rerun_resumes(
    tmp_path, wave_image_dir, caplog
):
    steps = ["train.num_steps=3", "train.ckpt_every=100", *QUIET]
    caplog.set_level(logging.INFO, logger="pconv_jax.train.loop")
    stopped = tmp_path / "stopped"
    # The first step alone (it includes compilation) takes longer than a millisecond.
    loop.train_and_evaluate(_tiny(wave_image_dir, *steps, "train.max_seconds=0.001"), stopped)
    assert "train.max_seconds=0.001 reached" in caplog.text
    assert _steps(stopped) == [1], "stopped after one step, with a checkpoint of it"
    assert _logged_steps(stopped) == [1]

    caplog.clear()
    loop.train_and_evaluate(_tiny(wave_image_dir, *steps), stopped)
    assert "resuming" in caplog.text and "from its checkpoint at step 1" in caplog.text
    assert _steps(stopped) == [1, 3] and _logged_steps(stopped) == [1, 3]

    # The same 3 steps without a stop (checkpointing every step, which changes nothing else)
    # end bit-identical; its retention (keep_last=1, keep_every=2) comes from the config.
    straight = tmp_path / "straight"
    retention = ["train.ckpt_every=1", "train.keep_last=1", "train.keep_every=2"]
    loop.train_and_evaluate(_tiny(wave_image_dir, *steps, *retention), straight)
    assert _steps(straight) == [2, 3]
    chex.assert_trees_all_equal(_params(stopped, 3), _params(straight, 3))


@pytest.mark.slow
def test_conv_baseline_trains_and_its_run_restores(tmp_path, wave_image_dir, vgg_params):
    """partial=False: ordinary convolutions with holes filled with the ImageNet mean."""
    conv = config.ModelConfig(num_layers=4, partial=False)
    cfg = tiny_cfg(model=conv, learning_rate=1e-3)
    mesh = sharding.make_mesh()
    model, tx, state = setup(cfg, mesh)
    assert model.partial is False
    batch = tiny_batch(seed=41)
    _, history = run_steps(cfg, state, model, tx, vgg_params, [batch] * 12, mesh)
    totals = [float(h["total"]) for h in history]
    assert all(h["finite"] == 1.0 for h in history)
    assert totals[-1] < totals[0] / 5, totals

    # End to end: the run directory says partial=false and its checkpoint restores into the
    # Conv network (whose dec1 sees the image's 3 channels, no mask channels).
    workdir = tmp_path / "conv"
    loop.train_and_evaluate(
        _tiny(wave_image_dir, "model.partial=false", "train.num_steps=2", *QUIET), workdir
    )
    assert checkpoint.read_config(workdir).model.partial is False
    variables = _params(workdir, 2)
    assert variables["params"]["dec1"]["conv"]["kernel"].shape == (3, 3, 64 + 3, 3)
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(variables))


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_is_set_aside_and_training_goes_past_it(
    tmp_path, wave_image_dir, caplog
):
    """Once a crash loop: the resume from step 4 died at step 6 (orbax: the step exists)."""
    workdir = tmp_path / "run"
    tiny = _tiny(wave_image_dir, *QUIET)  # checkpoints every 2 steps, keeps 10
    loop.train_and_evaluate(config.override(tiny, ["train.num_steps=6"]), workdir)
    damaged_file = _truncate_largest_file(workdir, 6)
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
