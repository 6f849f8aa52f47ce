"""The paper's loss (Eq. 3-7): hand-computed cases, a PyTorch cross-check, identities, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.draw
import torch

from pconv_jax.config import LossConfig
from pconv_jax.nn import losses, vgg

import tolerances
from torch_ref import loss as torch_loss

PAPER_WEIGHTS = LossConfig()  # 1, 6, 0.05, 120, 0.1
TERM_KEYS = ["hole", "perceptual", "style_comp", "style_out", "total", "tv", "valid"]


def draw_hole(rng: np.random.Generator, size: int) -> np.ndarray:
    """A [size,size] bool hole like the irregular-mask sets: thick random-walk strokes + a blob."""
    hole = np.zeros((size, size), bool)
    for _ in range(rng.integers(2, 4)):
        y, x = rng.uniform(0, size, 2)
        radius = rng.uniform(1.0, size / 14)
        for _ in range(rng.integers(3, 7)):
            angle, step = rng.uniform(0, 2 * np.pi), rng.uniform(3, size / 4)
            ny, nx = y + step * np.sin(angle), x + step * np.cos(angle)
            for t in np.linspace(0.0, 1.0, 10):
                rr, cc = skimage.draw.disk(
                    (y + t * (ny - y), x + t * (nx - x)), radius, shape=hole.shape
                )
                hole[rr, cc] = True
            y, x = ny, nx
    cy, cx = rng.uniform(0, size, 2)
    rr, cc = skimage.draw.ellipse(
        cy, cx, size / 8, size / 5, shape=hole.shape, rotation=rng.uniform(0, np.pi)
    )
    hole[rr, cc] = True
    return hole


def draw_masks(seed: int, n: int, size: int, channels: int) -> np.ndarray:
    """[n,size,size,channels] float32 masks, 1 = valid; with 3 channels the blue one differs."""
    rng = np.random.default_rng(seed)
    masks = np.ones((n, size, size, channels), np.float32)
    for i in range(n):
        hole = draw_hole(rng, size)
        masks[i][hole] = 0.0
        if channels == 3:
            masks[i, :, :, 2] = ~draw_hole(rng, size)
    ratio = 1.0 - masks.mean()
    assert 0.03 < ratio < 0.6, ratio  # a real-looking hole ratio, not empty and not everything
    return masks


def random_images(seed: int, n: int, size: int):
    rng = np.random.default_rng(seed)
    target = rng.random((n, size, size, 3), dtype=np.float32)
    output = np.clip(target + rng.normal(0, 0.2, target.shape), -0.1, 1.1).astype(np.float32)
    return output, target


# |JAX float32 - PyTorch float64| / |PyTorch float64| allowed for every loss term, derived from
# float32 rounding (tests/tolerances.py). float64's own rounding is 2**29 times smaller, so only
# the float32 side counts: half the bound for two float32 evaluations. The longest chain of sums
# behind a term is the perceptual and style path: VGG16 to pool3 (reductions of 8091 terms in
# all, test_vgg.pool_rtol), a Gram matrix's sum over the 32x32 pool1 positions of a 64x64 input,
# then the mean over the largest feature map (pool1 of 2 images: 2*32*32*64 values). The L1
# terms are means of non-negative values, whose partial sums stay within the result, so the
# bound is relative to the term itself: one sum of 8091 + 1024 + 131072 terms, 1.3e-4. Measured
# <= 1.3e-7 (64x64, 1- and 3-channel masks); a wrong weight, formula or VGG preprocessing moves
# a term by far more (the paper's weights are 1, 6, 0.05, 120, 0.1).
LOSS_RTOL = tolerances.network_atol([8091, 32 * 32, 2 * 32 * 32 * 64], 1.0) / 2


@pytest.fixture(scope="module")
def torch_vgg64(vgg_params):
    """torch_ref's VGG16 to pool3 in float64, with the same (shipped) weights."""
    state = {}
    for name, _, _, index in vgg.VGG16_CONVS:
        kernel = vgg_params[name]["kernel"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
        state[f"features.{index}.weight"] = torch.from_numpy(kernel.copy())
        state[f"features.{index}.bias"] = torch.from_numpy(vgg_params[name]["bias"])
    return torch_loss.VGG16Pool3(state).double()


def nchw(a: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def nchw64(a: np.ndarray):
    return nchw(a).double()


def jitted_loss(vgg_params, weights=PAPER_WEIGHTS, dtype=None):
    @jax.jit
    def loss(output, target, mask):
        features_fn = vgg.make_vgg_features_fn(vgg_params, dtype)
        return losses.inpainting_loss(output, target, mask, features_fn, weights)

    return loss


def rel_err(ours, ref) -> float:
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(np.asarray(ours, np.float64) - ref)) / np.max(np.abs(ref)))


# ---- exact small cases, worked out by hand --------------------------------------------------


def test_l1_by_hand():
    output = np.array([0.5, 1.0], np.float32).reshape(1, 1, 2, 1)
    target = np.array([0.0, 0.25], np.float32).reshape(1, 1, 2, 1)
    mask = np.array([1.0, 0.0], np.float32).reshape(1, 1, 2, 1)
    valid, hole = losses.valid_hole(output, target, mask)
    # Both divided by all 2 elements, not by the 1 valid / 1 hole element.
    assert float(valid) == 0.25 and float(hole) == 0.375


def test_gram_by_hand():
    feats = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 1, 2, 2)  # 2 positions, C=2
    # (1,2)(1,2)^T + (3,4)(3,4)^T = [[10,14],[14,20]], divided by C*H*W = 4.
    np.testing.assert_array_equal(losses.gram_matrix(feats)[0], [[2.5, 3.5], [3.5, 5.0]])


@pytest.mark.parametrize(
    "hole_at,expected",
    [
        # P = rows 0-2 x cols 0-2: 6 horizontal pairs (diff 1) + 6 vertical pairs (diff 4) = 30.
        ((1, 1), 30 / 16),
        # At the corner P = rows 0-1 x cols 0-1: 2 horizontal (1) + 2 vertical (4) = 10.
        ((0, 0), 10 / 16),
    ],
)
def test_tv_by_hand(hole_at, expected):
    comp = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    mask = np.ones((1, 4, 4, 1), np.float32)
    mask[0, hole_at[0], hole_at[1], 0] = 0.0
    assert float(losses.tv_loss(comp, mask)) == pytest.approx(expected, rel=1e-7)


def test_perceptual_and_style_by_hand():
    gt = [np.zeros((1, 1, 2, 2), np.float32)]
    out = [np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 1, 2, 2)]
    comp = [np.full((1, 1, 2, 2), 0.5, np.float32)]
    assert float(losses.perceptual_loss(out, comp, gt)) == 2.5 + 0.5
    assert float(losses.style_loss(out, gt)) == (2.5 + 3.5 + 3.5 + 5.0) / 4


# ---- against the independent PyTorch computation --------------------------------------------


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_every_term_matches_torch(vgg_params, torch_vgg64, mask_channels):
    output, target = random_images(seed=3, n=2, size=64)
    mask = draw_masks(seed=4, n=2, size=64, channels=mask_channels)
    total, terms = jitted_loss(vgg_params)(output, target, mask)
    ref = torch_loss.paper_loss(nchw64(output), nchw64(target), nchw64(mask), torch_vgg64)
    assert sorted(terms) == TERM_KEYS
    assert float(total) == float(terms["total"])
    for key in TERM_KEYS:
        assert terms[key].dtype == jnp.float32 and terms[key].shape == ()
        assert rel_err(terms[key], ref[key].item()) < LOSS_RTOL, key
        assert float(terms[key]) > 0, key


def test_pieces_match_torch():
    rng = np.random.default_rng(5)
    feats = rng.random((2, 8, 6, 16), dtype=np.float32)
    ref_gram = torch_loss.gram(nchw(feats)).numpy()
    # Both float32: each Gram entry sums 8*6 products of values in [0, 1] (non-negative partial
    # sums, within the result), then divides once: tolerances.sum_atol(48, 1), 5e-6 relative.
    assert rel_err(losses.gram_matrix(feats), ref_gram) < tolerances.sum_atol(8 * 6, 1.0)
    mask = draw_masks(seed=6, n=2, size=48, channels=1)
    region = losses.hole_border_region(mask)
    np.testing.assert_array_equal(
        region, torch_loss.hole_border_region(nchw(mask)).numpy().transpose(0, 2, 3, 1)
    )
    comp = rng.random((2, 48, 48, 3), dtype=np.float32)
    mask3 = np.repeat(mask, 3, axis=-1)
    # Both float32: a mean of |neighbour differences| (non-negative) over at most both directions
    # of every value: tolerances.sum_atol(2 * comp.size, 1), 1.2e-4 relative.
    tv_ref = torch_loss.tv(nchw(comp), nchw(mask3)).item()
    assert rel_err(losses.tv_loss(comp, mask), tv_ref) < tolerances.sum_atol(2 * comp.size, 1.0)


# ---- identities ----------------------------------------------------------------------------


def test_output_equal_to_truth(vgg_params):
    _, target = random_images(seed=7, n=2, size=32)
    mask = draw_masks(seed=8, n=2, size=32, channels=1)
    _, terms = jitted_loss(vgg_params)(target, target, mask)
    for key in ("valid", "hole", "perceptual", "style_out", "style_comp"):
        assert abs(float(terms[key])) < 1e-6, key
    # L_tv measures the composite's roughness in P, which the truth has too.
    assert float(terms["tv"]) == pytest.approx(float(losses.tv_loss(target, mask)), rel=1e-6)
    assert float(terms["tv"]) > 0


def test_all_valid_mask(vgg_params):
    output, target = random_images(seed=9, n=2, size=32)
    mask = np.ones((2, 32, 32, 1), np.float32)
    np.testing.assert_array_equal(losses.composite(output, target, mask), target)
    _, terms = jitted_loss(vgg_params)(output, target, mask)
    assert float(terms["hole"]) == 0.0 and float(terms["tv"]) == 0.0
    assert float(terms["style_comp"]) < 1e-6  # comp == gt
    assert float(terms["valid"]) == pytest.approx(float(np.mean(np.abs(output - target))), rel=1e-6)


def test_weights_come_from_the_config(vgg_params):
    output, target = random_images(seed=10, n=1, size=32)
    mask = draw_masks(seed=11, n=1, size=32, channels=1)
    _, terms = jitted_loss(vgg_params)(output, target, mask)
    weights = LossConfig(valid=2.0, hole=3.0, perceptual=0.5, style=7.0, tv=11.0)
    total, _ = jitted_loss(vgg_params, weights)(output, target, mask)
    expected = (
        2 * terms["valid"]
        + 3 * terms["hole"]
        + 0.5 * terms["perceptual"]
        + 7 * (terms["style_out"] + terms["style_comp"])
        + 11 * terms["tv"]
    )
    assert float(total) == pytest.approx(float(expected), rel=1e-6)


# ---- gradients -----------------------------------------------------------------------------


def test_gradients_reach_the_output_only(vgg_params):
    output, target = random_images(seed=12, n=2, size=32)
    mask = draw_masks(seed=13, n=2, size=32, channels=1)
    features_fn = vgg.make_vgg_features_fn(vgg_params)

    def total(out, tgt, msk):
        return losses.inpainting_loss(out, tgt, msk, features_fn, PAPER_WEIGHTS)[0]

    grad_out = jax.jit(jax.grad(total))(output, target, mask)
    assert np.all(np.isfinite(grad_out)) and np.any(np.asarray(grad_out) != 0)

    # The composite terms reach the output only inside the hole: I_comp = I_gt at valid pixels.
    comp_only = LossConfig(valid=0.0, hole=0.0, perceptual=0.0, style=1.0, tv=1.0)

    def style_comp_and_tv(out):
        terms = losses.inpainting_loss(out, target, mask, features_fn, comp_only)[1]
        return terms["style_comp"] + terms["tv"]

    grad_comp = np.asarray(jax.jit(jax.grad(style_comp_and_tv))(output))
    assert np.all(grad_comp[np.broadcast_to(mask, grad_comp.shape) == 1] == 0)
    assert np.any(grad_comp != 0)

    # With an all-hole mask the truth enters only through L_hole and the ground-truth features;
    # the latter are under stop_gradient, so d total / d target is exactly L_hole's gradient.
    holes = np.zeros_like(mask)
    grad_target = jax.jit(jax.grad(total, argnums=1))(output, target, holes)
    expected = -PAPER_WEIGHTS.hole * np.sign(output - target) / output.size
    np.testing.assert_allclose(grad_target, expected, rtol=1e-6, atol=1e-12)


def test_fake_feature_extractor_and_call_pattern():
    """Any extractor works; the truth is seen once (N) and output+composite together (2N)."""
    calls = []

    def features_fn(images):
        calls.append(images.shape)
        pooled = images.reshape(images.shape[0], 8, 2, 8, 2, 3).mean(axis=(2, 4))
        return [images, pooled]

    output, target = random_images(seed=14, n=2, size=16)
    mask = np.ones((2, 16, 16, 1), np.float32)
    mask[:, 4:10, 3:12] = 0.0
    _, terms = losses.inpainting_loss(output, target, mask, features_fn, PAPER_WEIGHTS)
    assert calls == [(2, 16, 16, 3), (4, 16, 16, 3)]
    comp = losses.composite(output, target, mask)
    feats = [features_fn(x) for x in (output, comp, target)]
    assert float(terms["perceptual"]) == pytest.approx(
        float(losses.perceptual_loss(*feats)), rel=1e-6
    )
    assert float(terms["style_comp"]) == pytest.approx(
        float(losses.style_loss(feats[1], feats[2])), rel=1e-6
    )


def test_bfloat16_output_and_features(vgg_params):
    output, target = random_images(seed=16, n=1, size=32)
    mask = draw_masks(seed=17, n=1, size=32, channels=1)
    total32, _ = jitted_loss(vgg_params)(output, target, mask)
    total16, terms16 = jitted_loss(vgg_params, dtype=jnp.bfloat16)(
        jnp.asarray(output, jnp.bfloat16), target, mask
    )
    assert all(v.dtype == jnp.float32 for v in terms16.values())
    assert float(total16) == pytest.approx(float(total32), rel=0.03)


def test_bad_inputs():
    x = np.zeros((1, 8, 8, 3), np.float32)
    fn = lambda images: [images]
    with pytest.raises(ValueError, match="equal-shaped"):
        losses.inpainting_loss(x, x[:, :4], np.ones((1, 8, 8, 1)), fn, PAPER_WEIGHTS)
    with pytest.raises(ValueError, match=r"mask shape \(1, 8, 8, 2\)"):
        losses.inpainting_loss(x, x, np.ones((1, 8, 8, 2)), fn, PAPER_WEIGHTS)
    with pytest.raises(ValueError, match="'tv': -1.0"):
        losses.inpainting_loss(x, x, np.ones((1, 8, 8, 1)), fn, LossConfig(tv=-1.0))


# ---- golden value --------------------------------------------------------------------------


def _golden_inputs():
    """Deterministic images and mask built from formulas (no random generator involved)."""
    yy, xx = np.meshgrid(np.arange(64) / 64.0, np.arange(64) / 64.0, indexing="ij")
    target = np.stack(
        [
            0.5 + 0.4 * np.sin(6.0 * xx + 2.0 * yy),
            0.5 + 0.3 * np.cos(9.0 * yy) * np.sin(3.0 * xx),
            np.clip(xx * yy + 0.2, 0.0, 1.0),
        ],
        axis=-1,
    )
    output = 0.8 * target + 0.1 * np.stack([np.cos(15.0 * xx), np.sin(11.0 * yy), xx], axis=-1)
    mask = np.ones((64, 64, 1))
    mask[10:30, 12:40] = 0.0
    rr, cc = skimage.draw.disk((48, 20), 9, shape=(64, 64))
    mask[rr, cc] = 0.0
    mask[40:64, 50:54] = 0.0  # a stroke touching the border
    as_batch = lambda a: a[None].astype(np.float32)
    return as_batch(output), as_batch(target), as_batch(mask)


# 64x64 inputs of _golden_inputs (hole ratio 0.221), the shipped ImageNet VGG16, paper weights:
# computed by the independent PyTorch reference (tests/torch_ref/loss.py paper_loss) in float64
# on CPU, NOT by pconv_jax; test_golden_terms_are_the_torch_reference_values recomputes them.
GOLDEN_TERMS = {
    "valid": 0.06379434941060562,
    "hole": 0.016205694789249492,
    "perceptual": 4.823248226527262,
    "style_out": 0.0157626051538575,
    "style_comp": 0.03575705306806907,
    "tv": 0.010084623737782294,
    "total": 6.585558378477432,
}


def test_golden_terms_are_the_torch_reference_values(torch_vgg64):
    ref = torch_loss.paper_loss(*map(nchw64, _golden_inputs()), torch_vgg64)
    for key, value in GOLDEN_TERMS.items():
        assert ref[key].item() == pytest.approx(value, rel=1e-10), key


def test_golden_total(vgg_params):
    _, terms = jitted_loss(vgg_params)(*_golden_inputs())
    got = {k: float(v) for k, v in terms.items()}
    for key, value in GOLDEN_TERMS.items():
        assert got[key] == pytest.approx(value, rel=LOSS_RTOL), (
            f"L_{key} = {got[key]!r}, PyTorch reference {value!r}: the loss (its formulas, default "
            "weights, the VGG preprocessing or the shipped weights) no longer computes Eq. 3-7."
        )
