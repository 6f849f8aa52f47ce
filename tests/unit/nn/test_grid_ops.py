"""nn/grid_ops.py against PyTorch and CRAI's own code (tests/torch_ref/crai.py, written from it).

Expected values are independent computations: torch.nn.functional.interpolate for the nearest
upsampling, CRAI's `bound_pad`, `masked_batch_norm` and `constrain_bounds` re-written in torch.
"""

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pconv_jax.nn import grid_ops
from pconv_jax.nn.layers import PartialConv

from tolerances import sum_atol
from torch_ref import crai


def _nchw(x_nhwc):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(x_nhwc, (0, 3, 1, 2))))


def _nhwc(t):
    return np.transpose(t.detach().numpy(), (0, 2, 3, 1))


@pytest.mark.parametrize(
    "size_in, size_out", [((5, 3), (9, 5)), ((3, 2), (5, 3)), ((1, 1), (2, 3)), ((36, 9), (72, 18))]
)
def test_upsample_nearest_to_matches_torch_interpolate(size_in, size_out):
    # Distinct integers in every cell: any wrong source index shows; a gather is exact.
    x = np.arange(2 * size_in[0] * size_in[1] * 3, dtype=np.float32).reshape(2, *size_in, 3)
    expected = _nhwc(F.interpolate(_nchw(x), size=size_out, mode="nearest"))
    got = np.asarray(grid_ops.upsample_nearest_to(x, size_out))
    np.testing.assert_array_equal(got, expected)


def test_upsample_by_two_is_the_paper_repeat():
    x = np.random.default_rng(0).normal(size=(1, 4, 6, 2)).astype(np.float32)
    repeated = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(np.asarray(grid_ops.upsample_nearest_to(x, (8, 12))), repeated)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_pad_global_matches_crai_bound_pad(k):
    x = np.random.default_rng(k).normal(size=(2, 6, 8, 3)).astype(np.float32)
    p = k // 2
    expected = _nhwc(crai.bound_pad(_nchw(x), (p, p, p, p)))
    got = np.asarray(grid_ops.pad_global(x, ((p, p), (p, p))))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [3, 7])
def test_global_partial_conv_matches_crai_block(k, stride):
    """PartialConv(padding="global", ratio="mask_sum") = CRAI's PConvBlock with global padding,
    on an odd grid (7x9) with a per-channel mask and masked-out NaNs."""
    rng = np.random.default_rng(10 * k + stride)
    x = rng.normal(size=(2, 7, 9, 3)).astype(np.float32)
    mask = (rng.random((2, 7, 9, 3)) > 0.6).astype(np.float32)
    block = crai.PConvBlock(3, 4, k, stride, True, None, False, True, False).eval()
    crai.randomize(block, seed=k)
    with torch.no_grad():
        out_t, mask_t = block(_nchw(x * mask), _nchw(mask))
    layer = PartialConv(4, k, stride, use_bias=True, ratio="mask_sum", padding="global")
    kernel = block.input_conv.weight.detach().numpy().transpose(2, 3, 1, 0)
    params = {"params": {"kernel": kernel, "bias": block.input_conv.bias.detach().numpy()}}
    holes_nan = np.where(mask > 0, x, np.nan)
    out, new_mask = layer.apply(params, holes_nan, mask)
    np.testing.assert_array_equal(np.asarray(new_mask)[..., 0], _nhwc(mask_t)[..., 0])
    # mask_sum: each output is a sum of k*k*3 terms divided by their count; scale = the largest
    # |term| sum, bounded by max|x|·sum|w| over the window.
    scale = float(np.abs(x).max() * np.abs(kernel).sum(axis=(0, 1, 2)).max())
    atol = sum_atol(k * k * 3, scale)
    np.testing.assert_allclose(np.asarray(out), _nhwc(out_t), rtol=0, atol=atol)


def test_masked_batch_norm_matches_crai_in_training():
    rng = np.random.default_rng(3)
    mask = (rng.random((3, 5, 6, 1)) > 0.4).astype(np.float32)
    x = rng.normal(2.0, 3.0, size=(3, 5, 6, 4)).astype(np.float32) * mask  # holes are 0 (CRAI)
    ref = crai.MaskedBatchNorm2d(4).train()
    crai.randomize(ref, seed=1)
    state = {k: v.numpy().copy() for k, v in ref.state_dict().items()}  # before the update
    with torch.no_grad():
        expected = _nhwc(ref(_nchw(x), _nchw(np.broadcast_to(mask, x.shape).copy())))
    layer = grid_ops.MaskedBatchNorm()
    variables = {
        "params": {"scale": state["weight"], "bias": state["bias"]},
        "batch_stats": {"mean": state["running_mean"], "var": state["running_var"]},
    }
    got, updated = layer.apply(variables, x, mask, False, mutable=["batch_stats"])
    # 90 cells per channel: sums of 90 terms of size <= max|x| (mean) and max|x|² (var).
    scale = float(np.abs(x).max()) ** 2 * float(np.abs(state["weight"]).max())
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=sum_atol(90, scale))
    ra = {k: v.numpy() for k, v in ref.state_dict().items()}  # after CRAI's update
    stats = updated["batch_stats"]
    np.testing.assert_allclose(stats["mean"], ra["running_mean"], atol=sum_atol(90, 10.0))
    np.testing.assert_allclose(stats["var"], ra["running_var"], atol=sum_atol(90, 100.0))
    # Evaluation: running statistics, as flax's BatchNorm.
    evaluated = layer.apply(updated | {"params": variables["params"]}, x, mask, True)
    assert np.all(np.isfinite(np.asarray(evaluated)))


def test_masked_batch_norm_mean_is_the_observed_cells_mean():
    """With the holes at 0 (the partial conv's output), CRAI's unmasked sum divided by the
    observed count is the observed cells' mean (hand derivation), not the all-cell mean."""
    rng = np.random.default_rng(4)
    mask = (rng.random((2, 4, 4, 1)) > 0.5).astype(np.float32)
    x = rng.normal(size=(2, 4, 4, 2)).astype(np.float32) * mask
    variables = grid_ops.MaskedBatchNorm().init(jax.random.key(0), x, mask, False)
    _, updated = grid_ops.MaskedBatchNorm().apply(
        variables, x, mask, False, mutable=["batch_stats"]
    )
    per_channel = [x[..., c][mask[..., 0] > 0] for c in range(2)]
    expected_mean = 0.1 * np.array([v.mean() for v in per_channel])  # 0.9·0 + 0.1·mean
    np.testing.assert_allclose(updated["batch_stats"]["mean"], expected_mean, atol=1e-6)
    assert not np.allclose(expected_mean, 0.1 * x.mean(axis=(0, 1, 2)), atol=1e-3)


@pytest.mark.parametrize(
    "lower, upper",
    [((-1.0, 0.5), (2.0, np.inf)), ((-np.inf, -np.inf), (np.inf, np.inf)), ((0.0,), (1.5,))],
)
def test_bounded_matches_crai_constrain_bounds(lower, upper):
    h = np.random.default_rng(5).normal(size=(2, 3, 4, len(lower))).astype(np.float32)
    bounds = np.stack([lower, upper], axis=1).astype(np.float64)
    expected = _nhwc(crai.constrain_bounds(_nchw(h), bounds))
    got = np.asarray(grid_ops.bounded(h, lower, upper))
    # sigmoid/exp of float32 in two libraries: a few ulps of the bound span.
    span = np.where(np.isfinite(bounds).all(axis=1), bounds[:, 1] - bounds[:, 0], np.e**3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=8 * 2**-23 * float(span.max() + 3))


def test_bounded_upper_only_is_what_crai_means():
    """CRAI's code returns -inf for an upper bound alone (its test `bounds[i, 0] == inf` never
    holds); pconv_jax applies the branch it means: upper - exp(-h), below the bound."""
    h = np.linspace(-3, 3, 7, dtype=np.float32).reshape(1, 1, 7, 1)
    got = np.asarray(grid_ops.bounded(h, (-np.inf,), (2.0,)))
    np.testing.assert_allclose(got, 2.0 - np.exp(-h), rtol=1e-6)
    assert np.all(got < 2.0)
    crai_own = _nhwc(crai.constrain_bounds(_nchw(h), np.array([[-np.inf, 2.0]])))
    assert np.all(np.isneginf(crai_own))
