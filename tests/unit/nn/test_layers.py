"""PartialConv against hand-computed values, an independent PyTorch computation, and properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax.nn.layers import PartialConv

import tolerances


def _apply(layer, x, mask, seed=0):
    variables = layer.init(jax.random.key(seed), x, mask)
    return variables, layer.apply(variables, x, mask)


def _blob_mask(rng, n, h, w, c=1):
    """Binary masks with rectangular holes, some of them touching the border."""
    mask = np.ones((n, h, w, c), np.float32)
    for i in range(n):
        for _ in range(3):
            y0, x0 = rng.integers(-2, h - 2), rng.integers(-2, w - 2)
            ch = slice(None) if c == 1 else slice(rng.integers(0, c), None)
            mask[i, max(y0, 0) : y0 + rng.integers(2, h // 2), max(x0, 0) : x0 + 5, ch] = 0
    return mask


def test_hand_computed_3x3_single_channel():
    # 1 channel, 3x3 ones kernel, bias 0.5, a 3x3 image of values 1..9 with the centre a hole.
    x = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    mask = jnp.ones((1, 3, 3, 1)).at[0, 1, 1, 0].set(0.0)
    layer = PartialConv(1, 3, use_bias=True)
    variables = {"params": {"kernel": jnp.ones((3, 3, 1, 1)), "bias": jnp.full((1,), 0.5)}}
    y, new_mask = layer.apply(variables, x, mask)
    # Centre window: 8 valid taps summing to 45 - 5 = 40; ratio 9/8 -> 45, plus bias.
    assert float(y[0, 1, 1, 0]) == pytest.approx(45.0 + 0.5, rel=1e-6)
    # Corner (0,0): in-image taps (0,0),(0,1),(1,0),(1,1) minus the hole -> 3 valid, values
    # 1+2+4 = 7; ratio 9/3 -> 21, plus bias.
    assert float(y[0, 0, 0, 0]) == pytest.approx(21.0 + 0.5, rel=1e-6)
    # Edge (0,1): taps rows 0-1, cols 0-2 minus the hole -> 5 valid, 1+2+3+4+6 = 16; ratio 9/5.
    assert float(y[0, 0, 1, 0]) == pytest.approx(16.0 * 9 / 5 + 0.5, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(new_mask), np.ones((1, 3, 3, 1)))


def test_ratio_uses_all_input_channels():
    # Two channels, a 1x1 kernel of ones: one of the two channels valid -> ratio 2/1 (C*k*k / S),
    # a port that divides by k*k alone would give ratio 1.
    x = jnp.ones((1, 1, 1, 2)) * jnp.array([3.0, 7.0]).reshape(1, 1, 1, 2)
    mask = jnp.array([1.0, 0.0]).reshape(1, 1, 1, 2)
    layer = PartialConv(1, 1, use_bias=False)
    y, _ = layer.apply({"params": {"kernel": jnp.ones((1, 1, 2, 1))}}, x, mask)
    assert float(y[0, 0, 0, 0]) == pytest.approx(6.0)


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels", [3, 64])
@pytest.mark.parametrize("per_channel", [False, True])
def test_matches_pytorch_official_semantics(k, stride, channels, per_channel):
    import torch

    from torch_ref.pconv import PartialConv2d

    rng = np.random.default_rng(k * 100 + stride * 10 + channels + per_channel)
    n, h, w, features = 2, 17, 14, 8
    x = rng.normal(size=(n, h, w, channels)).astype(np.float32)
    mask = _blob_mask(rng, n, h, w, channels if per_channel else 1)
    mask[:, 4:13, 3:12] = 0.0  # a 9x9 hole: some 7x7 windows see no valid input at all
    mask[:, 0, :5] = 0.0  # and holes touching the border
    layer = PartialConv(features, k, stride)
    variables = layer.init(jax.random.key(1), x, mask)
    bias = rng.normal(size=(features,)).astype(np.float32)
    variables = {"params": {"kernel": variables["params"]["kernel"], "bias": jnp.asarray(bias)}}
    y, new_mask = layer.apply(variables, x, mask)

    ref = PartialConv2d(channels, features, k, stride, padding=(k - 1) // 2, bias=True)
    with torch.no_grad():
        kernel = np.array(variables["params"]["kernel"])
        ref.weight.copy_(torch.from_numpy(kernel).permute(3, 2, 0, 1))
        ref.bias.copy_(torch.from_numpy(bias))
        y_ref, m_ref = ref(
            torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(mask).permute(0, 3, 1, 2)
        )
    y_ref = y_ref.permute(0, 2, 3, 1).numpy()
    m_ref = m_ref.permute(0, 2, 3, 1).numpy()
    assert y.shape == y_ref.shape
    # Two float32 programs (XLA, PyTorch) of one layer: a sum of k*k*channels products, rescaled
    # once by the window's valid fraction (a ratio of small integers, exact); derived bound
    # tolerances.sum_atol(k*k*channels) relative to the output's scale (tests/tolerances.py):
    # 1.5e-5 to 4.0e-5. A wrong window, ratio or bias is off by order 1.
    rel = np.max(np.abs(np.asarray(y) - y_ref)) / np.max(np.abs(y_ref))
    assert rel < tolerances.sum_atol(k * k * channels, 1.0)
    # The official layer's updated mask has F identical channels; ours keeps one.
    np.testing.assert_array_equal(np.asarray(new_mask)[..., 0], m_ref[..., 0])
    np.testing.assert_array_equal(m_ref, np.broadcast_to(m_ref[..., :1], m_ref.shape))
    assert 0.0 < float(np.mean(m_ref)) < 1.0  # the case exercises windows with no valid input


def test_all_valid_mask_is_plain_convolution_in_the_interior():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 12, 12, 4)).astype(np.float32)
    layer = PartialConv(6, 5, use_bias=True)
    variables, (y, new_mask) = _apply(layer, x, np.ones((1, 12, 12, 1), np.float32))
    kernel = variables["params"]["kernel"]
    plain = jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    # The layer and lax's convolution are two XLA programs summing 5*5*4 products in their own
    # orders: tolerances.sum_atol(100) at the largest output (tests/tolerances.py).
    atol = tolerances.sum_atol(5 * 5 * 4, float(np.abs(np.asarray(y)).max()))
    np.testing.assert_allclose(np.asarray(y)[:, 2:-2, 2:-2], np.asarray(plain), rtol=0, atol=atol)
    np.testing.assert_array_equal(np.asarray(new_mask), 1.0)
    # At the corner the window holds 3x3 of its 5x5 taps inside the image (partial padding):
    # the output is the zero-padded convolution rescaled by 25/9.
    padded = jax.lax.conv_general_dilated(
        x, kernel, (1, 1), [(2, 2), (2, 2)], dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    bias = np.asarray(variables["params"]["bias"])
    np.testing.assert_allclose(
        np.asarray(y)[0, 0, 0], np.asarray(padded)[0, 0, 0] * 25 / 9 + bias, rtol=0, atol=atol
    )


def test_all_hole_window_gives_zero_output_and_mask_even_with_bias():
    x = jnp.full((1, 9, 9, 3), 5.0)
    mask = jnp.ones((1, 9, 9, 1)).at[:, 2:7, 2:7].set(0.0)
    layer = PartialConv(4, 3, use_bias=True, bias_init=jax.nn.initializers.ones)
    _, (y, new_mask) = _apply(layer, x, mask)
    # Windows centred in rows/cols 3..5 see only holes.
    np.testing.assert_array_equal(np.asarray(y)[:, 3:6, 3:6], 0.0)
    np.testing.assert_array_equal(np.asarray(new_mask)[:, 3:6, 3:6], 0.0)
    np.testing.assert_array_equal(np.asarray(new_mask)[:, 2, 2:7], 1.0)


def test_all_hole_input_has_finite_values_and_gradients():
    layer = PartialConv(4, 3)
    x = jnp.ones((2, 8, 8, 3))
    mask = jnp.zeros((2, 8, 8, 1))
    variables = layer.init(jax.random.key(0), x, mask)

    def loss(params, x):
        y, m = layer.apply({"params": params}, x, mask)
        return jnp.sum(y**2) + jnp.sum(m)

    value, grads = jax.value_and_grad(loss, argnums=(0, 1))(variables["params"], x)
    assert float(value) == 0.0
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(np.asarray(leaf)))


def test_gradients_finite_with_partial_holes_and_none_reach_hole_pixels():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, 10, 10, 3)).astype(np.float32))
    mask = jnp.asarray(_blob_mask(rng, 2, 10, 10))
    layer = PartialConv(5, 3, strides=2)
    variables = layer.init(jax.random.key(0), x, mask)
    grad_x = jax.grad(lambda x: jnp.sum(layer.apply(variables, x, mask)[0] ** 2))(x)
    assert np.all(np.isfinite(np.asarray(grad_x)))
    np.testing.assert_array_equal(np.asarray(grad_x) * (1 - np.asarray(mask)), 0.0)


def test_hole_values_do_not_matter_even_nan():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 11, 11, 3)).astype(np.float32)
    mask = _blob_mask(rng, 1, 11, 11)
    x2 = np.where(mask > 0, x, np.nan).astype(np.float32)
    layer = PartialConv(4, 5)
    variables, (y, _) = _apply(layer, x, mask)
    y2, _ = layer.apply(variables, x2, mask)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y2))


def test_repeated_layers_grow_one_valid_pixel_to_all_ones():
    mask = jnp.zeros((1, 15, 15, 1)).at[0, 7, 7, 0].set(1.0)
    x = jnp.ones((1, 15, 15, 2))
    layer = PartialConv(2, 3)
    variables = layer.init(jax.random.key(0), x, mask)
    sizes = []
    for _ in range(7):
        x, mask = layer.apply(variables, x, mask)
        sizes.append(int(np.sum(np.asarray(mask))))
    # The valid square grows by one pixel per side and layer: 3x3, 5x5, ..., 15x15.
    assert sizes == [9, 25, 49, 81, 121, 169, 225]


def test_shared_mask_equals_per_channel_copy_and_segments_equal_concatenation():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    b = rng.normal(size=(2, 8, 8, 5)).astype(np.float32)
    ma, mb = _blob_mask(rng, 2, 8, 8), _blob_mask(rng, 2, 8, 8)
    layer = PartialConv(4, 3)
    full_x = np.concatenate([a, b], -1)
    full_mask = np.concatenate([np.repeat(ma, 3, -1), np.repeat(mb, 5, -1)], -1)
    variables, (y_full, m_full) = _apply(layer, full_x, full_mask)
    y_seg, m_seg = layer.apply(variables, [a, b], [ma, mb])
    np.testing.assert_allclose(np.asarray(y_seg), np.asarray(y_full), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(m_seg), np.asarray(m_full))
    y_shared, _ = layer.apply(variables, full_x, np.repeat(ma, 8, -1))
    y_one, _ = layer.apply(variables, full_x, ma)
    np.testing.assert_allclose(np.asarray(y_one), np.asarray(y_shared), rtol=1e-6, atol=1e-6)


def test_jit_and_vmap_agree_with_eager():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 2, 8, 8, 3)).astype(np.float32)
    mask = np.stack([_blob_mask(rng, 2, 8, 8) for _ in range(3)])
    layer = PartialConv(4, 3, strides=2)
    variables = layer.init(jax.random.key(0), x[0], mask[0])
    eager = [layer.apply(variables, x[i], mask[i])[0] for i in range(3)]
    batched = jax.jit(jax.vmap(lambda x, m: layer.apply(variables, x, m)[0]))(x, mask)
    # One jitted, vmapped program against per-example eager ones: sums of 3*3*3 products in
    # their own orders, tolerances.sum_atol(27) at the largest output (tests/tolerances.py).
    eager = np.stack(eager)
    atol = tolerances.sum_atol(3 * 3 * 3, float(np.abs(eager).max()))
    np.testing.assert_allclose(np.asarray(batched), eager, rtol=0, atol=atol)


def test_bfloat16_compute_keeps_mask_path_float32():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1, 8, 8, 16)).astype(np.float32)
    mask = _blob_mask(rng, 1, 8, 8)
    layer32 = PartialConv(8, 3)
    variables, (y32, _) = _apply(layer32, x, mask)
    y16, m16 = PartialConv(8, 3, dtype=jnp.bfloat16).apply(variables, x, mask)
    assert y16.dtype == jnp.bfloat16 and m16.dtype == jnp.float32
    assert variables["params"]["kernel"].dtype == jnp.float32
    rel = np.linalg.norm(np.asarray(y16, np.float32) - np.asarray(y32)) / np.linalg.norm(y32)
    assert rel < 2e-2


def test_params_are_hwio_and_he_initialised():
    layer = PartialConv(256, 3, use_bias=True)
    variables = layer.init(jax.random.key(0), jnp.zeros((1, 4, 4, 128)), jnp.ones((1, 4, 4, 1)))
    kernel = np.asarray(variables["params"]["kernel"])
    assert kernel.shape == (3, 3, 128, 256)
    assert variables["params"]["bias"].shape == (256,)
    # He normal, fan-in: std = sqrt(2 / (3*3*128)).
    assert np.std(kernel) == pytest.approx(np.sqrt(2 / (9 * 128)), rel=0.02)


@pytest.mark.parametrize(
    "x_shape, mask_shape, match",
    [
        ((1, 8, 8, 3), (1, 8, 7, 1), "does not match features"),
        ((1, 8, 8, 3), (1, 8, 8, 2), "expected \\[N,H,W,1\\] or \\[N,H,W,3\\]"),
        ((8, 8, 3), (8, 8, 1), "must be 4-D"),
    ],
)
def test_shape_errors_name_the_shapes(x_shape, mask_shape, match):
    with pytest.raises(ValueError, match=match):
        PartialConv(4, 3).init(jax.random.key(0), jnp.zeros(x_shape), jnp.ones(mask_shape))


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        PartialConv(4, 4).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), jnp.ones((1, 8, 8, 1)))
