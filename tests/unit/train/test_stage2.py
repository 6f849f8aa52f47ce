"""Stage 2 (paper Sec. 4, fine-tuning): the train step's forward pass normalises the encoder with
its RUNNING statistics, not the batch's. Restoring the kept statistics after the step (what
tests/unit/train/test_train.py checks) would hide a forward pass that used batch statistics;
these tests look at the loss the step computes instead (the function it differentiates)."""

import dataclasses
import functools

import jax
import numpy as np
import pytest

from pconv_jax import config
from pconv_jax.nn.model import build_model
from pconv_jax.parallel import sharding
from pconv_jax.train import step as train_step

from tiny_train import loss_rtol, setup, tiny_batch, tiny_cfg, unet_rtol

STAGE2 = dict(freeze_encoder_bn_stats=True, freeze_encoder_bn_params=True, learning_rate=5e-5)


def _batch_statistics(cfg, variables, batch):
    """Each BN layer's mean and biased variance on `batch` in a stage-1 forward pass: the same
    network with BN momentum 0, whose running averages are then exactly the batch statistics."""
    model = build_model(dataclasses.replace(cfg.model, bn_momentum=0.0))
    _, updates = model.apply(
        variables, batch["image"] * batch["mask"], batch["mask"], train=True, mutable="batch_stats"
    )
    return jax.device_get(updates["batch_stats"])


def _with_encoder_stats(state, encoder_stats):
    stats = {
        k: (encoder_stats[k] if k.startswith("enc") else v) for k, v in state.batch_stats.items()
    }
    return state.replace(batch_stats=stats)


_LOSSES = {}


def _loss(cfg, state, batch, vgg_params, mesh):
    """L_total as the train step computes it: `train_step.loss_and_updates`, the function the step
    differentiates (its `total` metric is this value), jitted once per config with the step's
    shardings. Without the backward pass and the optimizer: those do not enter the loss, and
    compiling them was most of this file's time."""
    key = cfg.train
    if key not in _LOSSES:
        model = build_model(cfg.model)
        fn = functools.partial(train_step.loss_and_updates, model=model, cfg=cfg)
        repl, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
        _LOSSES[key] = jax.jit(fn, in_shardings=(repl, repl, split, repl))
    sharded = sharding.shard_batch(batch, mesh)
    total, _ = _LOSSES[key](state.params, state.batch_stats, sharded, vgg_params)
    return float(total)


@pytest.fixture(scope="module")
def case():
    """(mesh, stage-1 config, stage-2 config, a fresh stage-1 state, a batch)."""
    mesh = sharding.make_mesh()
    stage1 = tiny_cfg()
    _, _, state = setup(stage1, mesh)
    batch = tiny_batch(n=4, seed=21)
    return mesh, stage1, tiny_cfg(**STAGE2), jax.device_get(state), batch


def test_stage2_loss_uses_the_encoders_running_statistics(case, vgg_params):
    mesh, stage1, stage2, state, batch = case
    batch_stats = _batch_statistics(stage1, state.model_vars(), batch)
    # Running statistics set to this batch's own statistics: stage 2 must then compute exactly
    # the stage-1 loss (encoder normalised with the same numbers, decoder with batch statistics).
    matching = _with_encoder_stats(state, batch_stats)
    stage1_loss = _loss(stage1, matching, batch, vgg_params, mesh)
    # Two programs (running statistics equal to the batch's vs batch statistics): the float32
    # rounding bound of the tiny training loss, tiny_train.loss_rtol (tests/tolerances.py).
    stage2_loss = _loss(stage2, matching, batch, vgg_params, mesh)
    assert stage2_loss == pytest.approx(stage1_loss, rel=loss_rtol(4))

    # Other running statistics: stage 1 ignores them, stage 2's loss must change.
    shifted = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.5 * np.abs(x).mean() + 0.1 if p[-1].key == "mean" else 3.0 * x,
        batch_stats,
    )
    other = _with_encoder_stats(state, shifted)
    assert _loss(stage1, other, batch, vgg_params, mesh) == pytest.approx(stage1_loss, rel=1e-6)
    stage2_other = _loss(stage2, other, batch, vgg_params, mesh)
    assert abs(stage2_other - stage1_loss) > 1e-3 * stage1_loss, (stage2_other, stage1_loss)


def test_stage2_decoder_still_uses_batch_statistics(case, vgg_params):
    """Only the encoder is frozen: the decoder's running statistics do not enter the loss."""
    mesh, _, stage2, state, batch = case
    base = _loss(stage2, state, batch, vgg_params, mesh)
    decoder_shifted = {
        k: (jax.tree_util.tree_map(lambda x: 3.0 * x + 0.2, v) if k.startswith("dec") else v)
        for k, v in state.batch_stats.items()
    }
    shifted = _loss(stage2, state.replace(batch_stats=decoder_shifted), batch, vgg_params, mesh)
    assert shifted == pytest.approx(base, rel=1e-6)


def test_model_flag_alone_switches_the_encoder_statistics(case):
    """The model-level switch the train step passes: freeze_encoder_bn=True with train=True
    gives the output of an encoder in eval mode whose statistics equal the batch's."""
    _, stage1, _, state, batch = case
    model = build_model(config.ModelConfig(num_layers=4))
    inputs = batch["image"] * batch["mask"]
    stats = _batch_statistics(stage1, state.model_vars(), batch)
    matching = {
        "params": state.params,
        "batch_stats": _with_encoder_stats(state, stats).batch_stats,
    }
    train_out, _ = model.apply(matching, inputs, batch["mask"], train=True, mutable="batch_stats")
    frozen_out, _ = model.apply(
        matching, inputs, batch["mask"], train=True, freeze_encoder_bn=True, mutable="batch_stats"
    )
    # Two BN paths, one output: tiny_train.unet_rtol at the output's scale (tests/tolerances.py).
    atol = unet_rtol(4) * float(np.abs(np.asarray(train_out)).max())
    np.testing.assert_allclose(frozen_out, train_out, rtol=0, atol=atol)
    assert np.abs(np.asarray(train_out)).max() > 0.05
