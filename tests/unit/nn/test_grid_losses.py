"""Losses for gridded (non-RGB) data: valid + hole (+ tv) without any VGG16, and a train step.

Expected values: numpy computations of the paper's definitions (nn/losses.py docstring) on the
same arrays; CRAI's criteria 0 and 1 without VGG terms as its config.py `set_lambdas` sets them.
"""

import dataclasses

import jax
import numpy as np
import pytest

from pconv_jax import config
from pconv_jax.nn import losses
from pconv_jax.nn.model import build_model
from pconv_jax.parallel import sharding

from tiny_train import SIDE, run_steps, setup, tiny_cfg

CRAI_0 = config.LossConfig(valid=1.0, hole=6.0, perceptual=0.0, style=0.0, tv=0.1)
CRAI_1 = config.LossConfig(valid=0.0, hole=1.0, perceptual=0.0, style=0.0, tv=0.0)


def never_called(_):
    raise AssertionError("VGG features must not be computed when their weights are 0")


def _arrays(channels, seed=0):
    rng = np.random.default_rng(seed)
    output = rng.normal(size=(2, 6, 7, channels)).astype(np.float32)
    target = rng.normal(size=(2, 6, 7, channels)).astype(np.float32)
    mask = (rng.random((2, 6, 7, channels)) > 0.5).astype(np.float32)
    return output, target, mask


@pytest.mark.parametrize("channels", [1, 2, 5])
def test_no_vgg_terms_with_crai_criterion_0(channels):
    output, target, mask = _arrays(channels)
    total, terms = jax.jit(lambda o, t, m: losses.inpainting_loss(o, t, m, never_called, CRAI_0))(
        output, target, mask
    )
    diff = np.abs(output.astype(np.float64) - target)
    valid, hole = (mask * diff).mean(), ((1 - mask) * diff).mean()
    comp = mask * target + (1 - mask) * output.astype(np.float64)
    hole_cells = 1 - mask
    padded = np.pad(hole_cells, ((0, 0), (1, 1), (1, 1), (0, 0)))
    region = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            region = np.maximum(region, padded[:, dy : dy + 6, dx : dx + 7])
    tv = (
        np.sum(np.abs(np.diff(comp, axis=2)) * region[:, :, 1:] * region[:, :, :-1])
        + np.sum(np.abs(np.diff(comp, axis=1)) * region[:, 1:] * region[:, :-1])
    ) / comp.size
    np.testing.assert_allclose(float(terms["valid"]), valid, rtol=1e-5)
    np.testing.assert_allclose(float(terms["hole"]), hole, rtol=1e-5)
    np.testing.assert_allclose(float(terms["tv"]), tv, rtol=1e-5)
    assert float(terms["perceptual"]) == float(terms["style_out"]) == 0.0
    np.testing.assert_allclose(float(total), valid + 6 * hole + 0.1 * tv, rtol=1e-5)


def test_crai_criterion_1_is_the_hole_term_alone():
    output, target, mask = _arrays(1, seed=1)
    total, terms = losses.inpainting_loss(output, target, mask, None, CRAI_1)
    assert float(total) == float(terms["hole"]) > 0


def test_vgg_terms_on_non_rgb_data_are_refused():
    output, target, mask = _arrays(2)
    with pytest.raises(ValueError, match="need VGG16 features of RGB images; got 2 channels"):
        losses.inpainting_loss(output, target, mask, never_called, config.LossConfig())
    assert not losses.uses_vgg(CRAI_0) and losses.uses_vgg(config.LossConfig())


def test_train_step_on_a_gridded_model_without_vgg():
    """One variable in physical units (K) with its statistics in the model, CRAI's layer options,
    no VGG16 (vgg_params None): the loss falls when overfitting one batch."""
    model = config.ModelConfig(
        num_layers=3,
        in_channels=1,
        out_channels=1,
        width=8,
        max_width=32,
        padding="global",
        input_sizes="any",
        first_bn=True,
        masked_bn=True,
        leaky_slope=0.01,
        ratio="mask_sum",
        conv_bias="last_only",
        hole_fill=(),
        channel_mean=(280.0,),
        channel_std=(7.0,),
    )
    cfg = dataclasses.replace(tiny_cfg(model, learning_rate=1e-2), loss=CRAI_0)
    mesh = sharding.make_mesh()
    _, tx, state = setup(cfg, mesh)
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:SIDE, :SIDE] / SIDE
    field = (280 + 10 * np.sin(6 * xx) * np.cos(3 * yy))[None, :, :, None]
    image = np.repeat(field, 4, axis=0) + 0.1 * rng.normal(size=(4, SIDE, SIDE, 1))
    mask = (rng.random((4, SIDE, SIDE, 1)) > 0.7).astype(np.float32)
    batch = {"image": image.astype(np.float32), "mask": mask}
    net = build_model(cfg.model)
    _, history = run_steps(cfg, state, net, tx, None, [batch] * 40, mesh)
    assert all(h["finite"] == 1.0 for h in history)
    assert history[-1]["total"] < history[0]["total"] / 2, (history[0], history[-1])
