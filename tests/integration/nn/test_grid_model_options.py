"""The ModelConfig options for gridded data in the U-Net: variable shapes, grid sizes, checks.

Expected shapes come from the option definitions (config.py comments, nn/model.py docstring);
numerical exactness against CRAI's own forward is tests/integration/store/test_convert_crai.py.
"""

import math

import jax
import numpy as np
import pytest

from pconv_jax import config
from pconv_jax.errors import UserError
from pconv_jax.nn.model import abstract_variables, build_model, layer_spec

CRAI_LIKE = dict(
    num_layers=4,
    in_channels=3,
    out_channels=2,
    width=4,
    max_width=16,
    encoder_kernels=(7, 5, 5, 3),
    first_bn=True,
    input_sizes="any",
    ratio="mask_sum",
    conv_bias="last_only",
    hole_fill=(),
)


def test_layer_spec_doubles_to_the_cap_and_keeps_the_paper_default():
    assert layer_spec(5, 18, 72) == [(7, 18), (5, 36), (5, 72), (3, 72), (3, 72)]
    assert layer_spec(2) == [(7, 64), (5, 128)]
    assert layer_spec(7) == [(7, 64), (5, 128), (5, 256)] + [(3, 512)] * 4
    with pytest.raises(ValueError, match="encoder_kernels must be 3 odd sizes"):
        layer_spec(3, kernels=(7, 4, 3))


def test_variable_shapes_follow_the_options():
    model = build_model(config.ModelConfig(**CRAI_LIKE))
    shapes = jax.tree_util.tree_map(lambda a: a.shape, abstract_variables(model))
    params = shapes["params"]
    assert params["enc1"]["conv"]["kernel"] == (7, 7, 3, 4)
    assert params["enc1"]["bn"]["scale"] == (4,)  # first_bn
    assert "bias" not in params["enc1"]["conv"]  # last_only
    assert params["enc4"]["conv"]["kernel"] == (3, 3, 16, 16)  # capped at 16
    assert params["dec4"]["conv"]["kernel"] == (3, 3, 16 + 16, 16)
    assert params["dec2"]["conv"]["kernel"] == (3, 3, 8 + 4, 4)
    assert params["dec1"]["conv"]["kernel"] == (3, 3, 4 + 3, 2)
    assert params["dec1"]["conv"]["bias"] == (2,) and "bn" not in params["dec1"]


@pytest.mark.parametrize("padding", ["zeros", "global"])
@pytest.mark.parametrize("side", [(5, 9), (13, 7), (72, 72)])
def test_any_grid_size_gives_the_input_size_back(padding, side):
    model = build_model(config.ModelConfig(**CRAI_LIKE, padding=padding))
    rng = np.random.default_rng(0)
    values = rng.normal(size=(1, *side, 3)).astype(np.float32)
    mask = (rng.random((1, *side, 3)) > 0.5).astype(np.float32)  # one mask per variable
    # jitted: one compilation is far cheaper than running the net op by op
    variables = jax.jit(model.init)(jax.random.key(0), values, mask)
    out = jax.jit(model.apply)(variables, np.where(mask > 0, values, np.nan), mask)
    assert out.shape == (1, *side, 2) and np.all(np.isfinite(np.asarray(out)))


def test_image_models_still_refuse_sizes_that_are_not_multiples():
    model = build_model(config.ModelConfig(num_layers=4))
    image, mask = np.zeros((1, 40, 48, 3), np.float32), np.ones((1, 40, 48, 1), np.float32)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*num_layers = 16"):
        model.init(jax.random.key(0), image, mask)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(channel_mean=(1.0,), channel_std=(1.0,)), "must hold in_channels=3 values each"),
        (dict(channel_mean=(1.0,) * 3, channel_std=(1.0, 0.0, 1.0)), "channel_std > 0"),
        (dict(output_min=(0.0,), output_max=(1.0,)), "must hold out_channels=2 values each"),
        (dict(output_min=(1.0, -math.inf), output_max=(0.0, math.inf)), "output_min < output_max"),
        (dict(io_range="imagenet"), "is an RGB space; the model maps 3 -> 2"),
        (dict(leaky_slope=-0.1), "leaky_slope must be >= 0"),
    ],
)
def test_inconsistent_options_are_one_sentence(fields, message):
    model = build_model(config.ModelConfig(**{**CRAI_LIKE, **fields}))
    with pytest.raises(ValueError, match=message):
        abstract_variables(model)


def test_new_literal_choices_are_validated():
    cfg = config.default()
    for key, bad in [("padding", "reflect"), ("input_sizes", "odd")]:
        with pytest.raises(UserError, match=f"model.{key} must be one of"):
            config.override(cfg, [f"model.{key}={bad}"])
    changed = config.override(cfg, ["model.output_max=inf,330", "model.encoder_kernels=7,5,3"])
    assert changed.model.output_max == (math.inf, 330.0)
    assert changed.model.encoder_kernels == (7, 5, 3)
    assert config.from_dict(config.to_dict(changed)) == changed
