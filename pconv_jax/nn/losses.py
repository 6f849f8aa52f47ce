"""The paper's inpainting loss, Eq. 3-7 (Liu et al. 2018, Sec. 3.3): images in [0,1], 1 = valid.

    I_comp       = M⊙I_gt + (1−M)⊙I_out
    L_valid      = ‖M⊙(I_out−I_gt)‖₁ / (N·C·H·W)        L_hole = ‖(1−M)⊙(I_out−I_gt)‖₁ / (N·C·H·W)
    L_perceptual = Σ_p mean|Ψp(I_out)−Ψp(I_gt)| + Σ_p mean|Ψp(I_comp)−Ψp(I_gt)|,  p = pool1..pool3
    Gp(I)        = Ψp(I)ᵀΨp(I) / (Cp·Hp·Wp)   per image, Cp×Cp
    L_style_out  = Σ_p mean|Gp(I_out)−Gp(I_gt)|          L_style_comp likewise with I_comp
    L_tv         = Σ_{(i,j),(i,j+1) ∈ P} |I_comp(i,j+1)−I_comp(i,j)| / (N·C·H·W) + vertical pairs,
                   P = the 3×3 (1-pixel) dilation of the hole
    L_total      = w_valid·L_valid + w_hole·L_hole + w_perceptual·L_perceptual
                   + w_style·(L_style_out + L_style_comp) + w_tv·L_tv     (1, 6, 0.05, 120, 0.1)

Convention: the paper's, as its author states it ("the L1 losses are all size-averaged": every mean
runs over ALL elements of the batch, hole or not), with pixel terms in [0,1] RGB. Public ports
deviate, and this module does not follow them: mmagic divides the hole/valid L1 by the hole/valid
area (a ~1/hole-ratio heavier hole term); naoto0804's port and NVIDIA's generic loss.py take the
pixel L1 in ImageNet-normalised units (~4.4× larger); naoto0804's TV runs over the whole image,
mmagic's over the undilated hole weighted by the first pixel of each pair only.

Every reduction and every Gram matrix is float32 whatever the dtype of the features.

Gridded (non-RGB) data: with w_perceptual = w_style = 0 no VGG16 is built or run (`features_fn`
may be None) and the three VGG terms are reported as 0; any channel count works. CRAI's loss
criteria (its config.py `set_lambdas`) without its VGG terms: criterion 0 = valid 1, hole 6, tv
0.1; criterion 1 = hole 1 only. CRAI sums its per-channel means over the C channels (C times the
mean over all elements taken here; equal for one variable) and takes its TV over the whole
composite, not the hole border.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array


def _check_images(output: Array, target: Array, mask: Array) -> None:
    if output.ndim != 4 or output.shape != target.shape:
        raise ValueError(
            f"output and target must be equal-shaped [N,H,W,C]; got {output.shape}, {target.shape}"
        )
    n, h, w, c = output.shape
    if mask.ndim != 4 or tuple(mask.shape[:3]) != (n, h, w) or mask.shape[3] not in (1, c):
        raise ValueError(f"mask shape {mask.shape} does not fit images {output.shape}")


def composite(output: Array, target: Array, mask: Array) -> Array:
    """I_comp = M⊙I_gt + (1−M)⊙I_out: the output with the known pixels set to the truth.

    Args:
      output: [N,H,W,C] float in [0,1], the network's output.
      target: [N,H,W,C] float in [0,1], the ground truth.
      mask: [N,H,W,1] or [N,H,W,C], 1 = valid.

    Returns:
      [N,H,W,C] float32.
    """
    m = mask.astype(jnp.float32)
    return m * target.astype(jnp.float32) + (1.0 - m) * output.astype(jnp.float32)


def l1_valid_hole(output: Array, target: Array, mask: Array) -> tuple[Array, Array]:
    """(L_valid, L_hole), each a float32 scalar, both averaged over all N·C·H·W elements."""
    _check_images(output, target, mask)
    m = mask.astype(jnp.float32)
    diff = jnp.abs(output.astype(jnp.float32) - target.astype(jnp.float32))
    return jnp.mean(m * diff), jnp.mean((1.0 - m) * diff)


def perceptual_loss(
    feats_out: Sequence[Array], feats_comp: Sequence[Array], feats_gt: Sequence[Array]
) -> Array:
    """Σ_p mean|Ψp(out)−Ψp(gt)| + mean|Ψp(comp)−Ψp(gt)| over [N,Hp,Wp,Cp] maps, float32 scalar."""
    total = jnp.zeros((), jnp.float32)
    for out, comp, gt in zip(feats_out, feats_comp, feats_gt, strict=True):
        gt = gt.astype(jnp.float32)
        total += jnp.mean(jnp.abs(out.astype(jnp.float32) - gt))
        total += jnp.mean(jnp.abs(comp.astype(jnp.float32) - gt))
    return total


def gram_matrix(feats_NxHxWxC: Array) -> Array:
    """ΨᵀΨ/(C·H·W) per image: [N,C,C] float32, accumulated in float32 even for bfloat16 input."""
    _, h, w, c = feats_NxHxWxC.shape
    gram = jnp.einsum(
        "nhwc,nhwd->ncd", feats_NxHxWxC, feats_NxHxWxC, preferred_element_type=jnp.float32
    )
    return gram / float(c * h * w)


def style_loss(feats: Sequence[Array], feats_gt: Sequence[Array]) -> Array:
    """Σ_p mean|Gp(I)−Gp(I_gt)| over the N·Cp·Cp Gram entries: L_style_out or L_style_comp."""
    total = jnp.zeros((), jnp.float32)
    for f, f_gt in zip(feats, feats_gt, strict=True):
        total += jnp.mean(jnp.abs(gram_matrix(f) - gram_matrix(f_gt)))
    return total


def hole_border_region(mask: Array) -> Array:
    """P: 1 where the 3×3 neighbourhood (inside the image) holds a hole pixel, else 0.

    Args: mask [N,H,W,K] with 1 = valid. Returns: [N,H,W,K] float32 in {0,1}.
    """
    hole = 1.0 - lax.stop_gradient(mask).astype(jnp.float32)
    pads = ((0, 0), (1, 1), (1, 1), (0, 0))
    dilated = lax.reduce_window(hole, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 1, 1, 1), pads)
    return (dilated > 0).astype(jnp.float32)


def tv_loss(comp: Array, mask: Array) -> Array:
    """L_tv of the composite [N,H,W,C] over neighbour pairs with both pixels in P; float32 scalar.

    Each direction's sum of |differences| is divided by N·C·H·W (the image size, not the pair
    count), as in the paper.
    """
    _check_images(comp, comp, mask)
    region = hole_border_region(mask)
    comp = comp.astype(jnp.float32)
    horizontal = jnp.abs(comp[:, :, 1:] - comp[:, :, :-1]) * (region[:, :, 1:] * region[:, :, :-1])
    vertical = jnp.abs(comp[:, 1:] - comp[:, :-1]) * (region[:, 1:] * region[:, :-1])
    return (jnp.sum(horizontal) + jnp.sum(vertical)) / float(comp.size)


def uses_vgg(weights) -> bool:
    """Whether a `LossConfig` needs VGG16 features (a perceptual or style weight not 0)."""
    return bool(weights.perceptual or weights.style)


def inpainting_loss(
    output: Array,
    target: Array,
    mask: Array,
    features_fn: Callable[[Array], Sequence[Array]] | None,
    weights,
) -> tuple[Array, dict[str, Array]]:
    """The total loss of Eq. 7 and its unweighted terms.

    Args:
      output: network output [N,H,W,3], float32 or bfloat16, nominally in [0,1] (not clipped).
      target: ground truth [N,H,W,3] float in [0,1]; never differentiated through the features.
      mask: [N,H,W,1] or [N,H,W,3], binary, 1 = valid.
      features_fn: images [B,H,W,3] in [0,1] -> list of feature maps [B,h,w,c] (VGG16 pool1-3;
        see `pconv_jax.nn.vgg.make_vgg_features_fn`). Called once on the truth (under
        stop_gradient) and once on output and composite stacked on the batch axis; never
        called (and may be None) when the perceptual and style weights are both 0.
      weights: a `pconv_jax.config.LossConfig` (fields valid, hole, perceptual, style, tv).
    Returns:
      (total, terms): total a float32 scalar; terms a dict of float32 scalars with keys
      valid, hole, perceptual, style_out, style_comp, tv (unweighted) and total.
    """
    _check_images(output, target, mask)
    named = {k: getattr(weights, k) for k in ("valid", "hole", "perceptual", "style", "tv")}
    negative = {k: v for k, v in named.items() if v < 0}
    if negative:
        raise ValueError(f"loss weights must be >= 0, got {negative}")
    output = output.astype(jnp.float32)
    target = target.astype(jnp.float32)
    comp = composite(output, target, mask)
    valid, hole = l1_valid_hole(output, target, mask)
    terms = {"valid": valid, "hole": hole, "tv": tv_loss(comp, mask)}
    if uses_vgg(weights):
        if features_fn is None or output.shape[-1] != 3:
            raise ValueError(
                f"the perceptual and style terms need VGG16 features of RGB images; got "
                f"{output.shape[-1]} channels and features_fn={features_fn}: set their weights to 0"
            )
        terms |= _vgg_terms(output, target, comp, features_fn)
    else:
        zero = jnp.zeros((), jnp.float32)
        terms |= {"perceptual": zero, "style_out": zero, "style_comp": zero}
    total = (
        named["valid"] * terms["valid"]
        + named["hole"] * terms["hole"]
        + named["perceptual"] * terms["perceptual"]
        + named["style"] * (terms["style_out"] + terms["style_comp"])
        + named["tv"] * terms["tv"]
    )
    terms["total"] = total
    return total, terms


def _vgg_terms(output, target, comp, features_fn) -> dict[str, Array]:
    """L_perceptual, L_style_out and L_style_comp of float32 [N,H,W,3] images."""
    n = output.shape[0]
    feats_gt = [lax.stop_gradient(f) for f in features_fn(target)]
    feats_both = features_fn(jnp.concatenate([output, comp], axis=0))
    if len(feats_both) != len(feats_gt) or any(f.shape[0] != 2 * n for f in feats_both):
        raise ValueError(
            f"features_fn returned {len(feats_both)} maps of batch "
            f"{[f.shape[0] for f in feats_both]} for {2 * n} images, and {len(feats_gt)} for {n}"
        )
    feats_out = [f[:n] for f in feats_both]
    feats_comp = [f[n:] for f in feats_both]
    return {
        "perceptual": perceptual_loss(feats_out, feats_comp, feats_gt),
        "style_out": style_loss(feats_out, feats_gt),
        "style_comp": style_loss(feats_comp, feats_gt),
    }
