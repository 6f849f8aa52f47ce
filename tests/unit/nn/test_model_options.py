"""The ModelConfig options that reproduce other projects' models (`pconv convert`).

`ratio="mask_sum"` against a by-hand window mean, and against the official layer with the kernel
divided by C*k*k (the relation the option stands for); `conv_bias` and `io_range` in the model;
config validation of the new choices. Their end-to-end exactness against the sources' own code
is tests/test_convert.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax import config
from pconv_jax.errors import UserError
from pconv_jax.nn.layers import PartialConv
from pconv_jax.nn.model import abstract_variables, build_model


def _apply(layer, kernel, bias, x, mask):
    params = {"kernel": jnp.asarray(kernel)}
    if bias is not None:
        params["bias"] = jnp.asarray(bias)
    return layer.apply({"params": params}, jnp.asarray(x), jnp.asarray(mask))


def test_mask_sum_is_the_mean_of_the_valid_window_plus_bias():
    """Ones kernel, one channel: output = mean of the valid x in the 3x3 window + b, 0 (bias
    included) where the window holds no valid pixel; new mask = 1[any valid]. By hand with loops."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 6, 7, 1)).astype(np.float32)
    mask = np.ones((1, 6, 7, 1), np.float32)
    mask[0, 1:5, 1:5] = 0  # the window around (2..3, 2..3) sees no valid pixel
    layer = PartialConv(1, 3, ratio="mask_sum")
    y, new_mask = _apply(
        layer, np.ones((3, 3, 1, 1), np.float32), np.array([0.5], np.float32), x, mask
    )
    for i in range(6):
        for j in range(7):
            window = [
                x[0, a, b, 0]
                for a in range(i - 1, i + 2)
                for b in range(j - 1, j + 2)
                if 0 <= a < 6 and 0 <= b < 7 and mask[0, a, b, 0]
            ]
            expected = np.mean(window) + 0.5 if window else 0.0
            assert float(y[0, i, j, 0]) == pytest.approx(expected, abs=1e-5), (i, j)
            assert float(new_mask[0, i, j, 0]) == float(bool(window))
    assert float(y[0, 2, 3, 0]) == 0.0


def test_mask_sum_is_official_with_the_kernel_divided_by_the_window_size():
    rng = np.random.default_rng(1)
    c, k = 5, 3
    x = rng.normal(size=(2, 8, 8, c)).astype(np.float32)
    mask = (rng.uniform(size=(2, 8, 8, 1)) > 0.4).astype(np.float32)
    kernel = rng.normal(size=(k, k, c, 4)).astype(np.float32)
    bias = rng.normal(size=(4,)).astype(np.float32)
    ours, m1 = _apply(PartialConv(4, k, 2, ratio="mask_sum"), kernel, bias, x, mask)
    official, m2 = _apply(PartialConv(4, k, 2), kernel / (c * k * k), bias, x, mask)
    np.testing.assert_allclose(ours, official, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m1, m2)  # binary masks: clip(S, 0, 1) = 1[S > 0]


def test_conv_bias_last_only_leaves_enc1_without_bias():
    def biased(model_cfg):
        params = abstract_variables(build_model(model_cfg))["params"]
        return sorted(name for name, layer in params.items() if "bias" in layer["conv"])

    assert biased(config.ModelConfig(num_layers=4)) == ["dec1", "enc1"]
    assert biased(config.ModelConfig(num_layers=4, conv_bias="last_only")) == ["dec1"]


@pytest.mark.parametrize("io_range,mean,std", [("symmetric", 0.5, 0.5), ("imagenet", None, None)])
def test_io_range_maps_input_and_output(io_range, mean, std):
    """A model in another pixel space = the unit model fed (x - mean)/std, output * std + mean,
    with the same variables (the affine is a step of the model, not of the weights)."""
    if mean is None:
        mean, std = np.array(config.IMAGENET_MEAN), np.array(config.IMAGENET_STD)
    rng = np.random.default_rng(2)
    image = rng.uniform(size=(1, 32, 32, 3)).astype(np.float32)
    mask = (rng.uniform(size=(1, 32, 32, 1)) > 0.3).astype(np.float32)
    unit = build_model(config.ModelConfig(num_layers=4))
    other = build_model(config.ModelConfig(num_layers=4, io_range=io_range))
    variables = jax.jit(unit.init)(jax.random.key(0), image, mask)  # eager: op by op, slower
    shifted = ((image - mean) / std).astype(np.float32)
    expected = np.asarray(jax.jit(unit.apply)(variables, shifted, mask)) * std + mean
    got = jax.jit(other.apply)(variables, image, mask)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_new_choices_are_validated():
    cfg = config.default()
    for key, bad in [("io_range", "bgr"), ("ratio", "keras"), ("conv_bias", "all")]:
        with pytest.raises(UserError, match=f"model.{key} must be one of"):
            config.override(cfg, [f"model.{key}={bad}"])
    assert config.override(cfg, ["model.ratio=mask_sum"]).model.ratio == "mask_sum"
    with pytest.raises(UserError, match="model.io_range"):
        config.from_dict({**config.to_dict(cfg), "model": {"io_range": "x"}})
