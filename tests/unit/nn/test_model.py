"""PConvUNet: the appendix table, the hole-invariance claim, BN addressing, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax.nn.model import PConvUNet, count_kernel_weights, encoder_spec


def _inputs(side, n=2, seed=0, mask_channels=1):
    rng = np.random.default_rng(seed)
    image = rng.uniform(size=(n, side, side, 3)).astype(np.float32)
    mask = np.ones((n, side, side, mask_channels), np.float32)
    mask[:, side // 4 : side // 2, side // 8 : side // 2] = 0.0
    mask[:, : side // 8, -side // 4 :] = 0.0  # touching the border
    return image, mask


@pytest.fixture(scope="module")
def small_unet():
    model = PConvUNet(num_layers=5)
    image, mask = _inputs(64)
    variables = jax.jit(model.init)(jax.random.key(0), image, mask)
    return model, variables


@pytest.mark.parametrize("num_layers, side, expected", [(8, 512, 32_848_849), (7, 256, 25_770_961)])
def test_kernel_weight_totals_match_the_appendix_table(num_layers, side, expected):
    model = PConvUNet(num_layers=num_layers)
    shapes = jax.eval_shape(
        model.init, jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.ones((1, side, side, 1))
    )
    assert count_kernel_weights(shapes["params"]) == expected
    params = shapes["params"]
    # Bias only where there is no BN: PConv1 and PConv16.
    with_bias = sorted(name for name, p in params.items() if "bias" in p["conv"])
    assert with_bias == ["dec1", "enc1"]
    assert "bn" not in params["enc1"] and "bn" not in params["dec1"]
    assert params["enc1"]["conv"]["kernel"].shape == (7, 7, 3, 64)
    assert params["enc2"]["conv"]["kernel"].shape == (5, 5, 64, 128)
    assert params["enc3"]["conv"]["kernel"].shape == (5, 5, 128, 256)
    assert params[f"enc{num_layers}"]["conv"]["kernel"].shape == (3, 3, 512, 512)
    assert params[f"dec{num_layers}"]["conv"]["kernel"].shape == (3, 3, 1024, 512)
    assert params["dec4"]["conv"]["kernel"].shape == (3, 3, 512 + 256, 256)
    assert params["dec2"]["conv"]["kernel"].shape == (3, 3, 128 + 64, 64)
    assert params["dec1"]["conv"]["kernel"].shape == (3, 3, 64 + 3, 3)


def test_encoder_spec_matches_the_paper():
    assert encoder_spec(8) == [(7, 64), (5, 128), (5, 256)] + [(3, 512)] * 5
    with pytest.raises(ValueError, match="num_layers"):
        encoder_spec(3)


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_output_shape_and_finite(small_unet, mask_channels):
    model, variables = small_unet
    image, mask = _inputs(64, mask_channels=mask_channels)
    out = jax.jit(model.apply)(variables, image, mask)  # jitted: eager runs op by op, slower
    assert out.shape == (2, 64, 64, 3) and out.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(out)))


def test_changing_hole_pixels_leaves_pconv_output_bit_identical(small_unet):
    model, variables = small_unet
    image, mask = _inputs(64, seed=1)
    other = np.where(mask > 0, image, np.random.default_rng(9).uniform(size=image.shape))
    for train in (False, True):
        out_a = model.apply(variables, image, mask, train=train, mutable=["batch_stats"])[0]
        out_b = model.apply(
            variables, other.astype(np.float32), mask, train=train, mutable=["batch_stats"]
        )[0]
        np.testing.assert_array_equal(np.asarray(out_a), np.asarray(out_b))


def test_the_conv_baseline_depends_on_hole_values():
    image, mask = _inputs(64, seed=1)
    other = np.where(mask > 0, image, 0.9).astype(np.float32)
    keep = PConvUNet(num_layers=5, partial=False, hole_fill=None)
    variables = jax.jit(keep.init)(jax.random.key(0), image, mask)
    # Holes left as the caller filled them: different hole pixels, different output.
    assert not np.array_equal(
        np.asarray(keep.apply(variables, image, mask)),
        np.asarray(keep.apply(variables, other, mask)),
    )
    # With a placeholder colour the output depends on that colour instead ...
    grey = PConvUNet(num_layers=5, partial=False, hole_fill=(0.5, 0.5, 0.5))
    mean = PConvUNet(num_layers=5, partial=False)
    out_grey = np.asarray(grey.apply(variables, image, mask))
    assert not np.array_equal(out_grey, np.asarray(mean.apply(variables, image, mask)))
    # ... and equals feeding the filled image with no holes at all.
    filled = np.where(mask > 0, image, 0.5).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(keep.apply(variables, filled, np.ones_like(mask))), out_grey
    )


def test_conv_baseline_has_the_same_parameter_tree(small_unet):
    _, variables = small_unet
    conv = PConvUNet(num_layers=5, partial=False)
    image, mask = _inputs(64)
    shapes = jax.eval_shape(conv.init, jax.random.key(0), image, mask)
    same = jax.tree_util.tree_map(lambda a, b: a.shape == b.shape, variables, shapes)
    assert all(jax.tree_util.tree_leaves(same))


def test_batch_stats_are_split_into_encoder_and_decoder(small_unet):
    model, variables = small_unet
    stats = variables["batch_stats"]
    assert sorted(stats) == ["dec2", "dec3", "dec4", "dec5", "enc2", "enc3", "enc4", "enc5"]
    image, mask = _inputs(64, seed=2)
    _, updated = model.apply(variables, image, mask, train=True, mutable=["batch_stats"])
    for name in stats:
        assert not np.array_equal(
            updated["batch_stats"][name]["bn"]["mean"], stats[name]["bn"]["mean"]
        )
    _, frozen = model.apply(
        variables, image, mask, train=True, freeze_encoder_bn=True, mutable=["batch_stats"]
    )
    for name in stats:
        same = np.array_equal(frozen["batch_stats"][name]["bn"]["mean"], stats[name]["bn"]["mean"])
        assert same == name.startswith("enc"), name


def test_bfloat16_compute(small_unet):
    model, variables = small_unet
    image, mask = _inputs(64)
    out32 = jax.jit(model.apply)(variables, image, mask)
    out16 = jax.jit(PConvUNet(num_layers=5, dtype=jnp.bfloat16).apply)(variables, image, mask)
    assert out16.dtype == jnp.bfloat16
    rel = np.linalg.norm(np.asarray(out16, np.float32) - out32) / np.linalg.norm(out32)
    assert rel < 0.05


def test_gradients_finite_for_an_all_hole_mask(small_unet):
    model, variables = small_unet
    image, _ = _inputs(64)
    mask = np.zeros((2, 64, 64, 1), np.float32)

    def loss(params):
        out, _ = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            image,
            mask,
            train=True,
            mutable=["batch_stats"],
        )
        return jnp.mean(out**2)

    grads = jax.jit(jax.grad(loss))(variables["params"])
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))


@pytest.mark.parametrize(
    "image_shape, mask_shape, match",
    [
        ((1, 80, 64, 3), (1, 80, 64, 1), "divisible by 2\\*\\*num_layers = 32.*80x64"),
        ((1, 64, 64, 4), (1, 64, 64, 1), "image must be \\[N,H,W,3\\].*\\(1, 64, 64, 4\\)"),
        ((1, 64, 64, 3), (1, 64, 64, 2), "mask must be \\[N,H,W,1\\] or \\[N,H,W,3\\]"),
        ((1, 64, 64, 3), (1, 64, 32, 1), "differ in \\[N,H,W\\]"),
    ],
)
def test_shape_errors(small_unet, image_shape, mask_shape, match):
    model, variables = small_unet
    with pytest.raises(ValueError, match=match):
        model.apply(variables, np.zeros(image_shape, np.float32), np.ones(mask_shape, np.float32))


@pytest.mark.parametrize("bad", [255.0, -1.0, np.nan])
def test_mask_values_outside_unit_interval_are_rejected(small_unet, bad):
    model, variables = small_unet
    image, mask = _inputs(64)
    mask[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match="mask values must lie in \\[0, 1\\]"):
        model.apply(variables, image, mask)
