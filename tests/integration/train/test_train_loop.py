"""The training loop's run controls: `train.max_seconds` (stop with a checkpoint, then resume),
checkpoint retention (`train.keep_last`, `train.keep_every`) and training the paper's Conv
baseline (`model.partial=false`)."""

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
from pconv_jax.store import checkpoint
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
