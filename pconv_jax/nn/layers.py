"""The partial convolution (paper Eq. 1-2) as a Flax linen module.

    Eq. 1:  x' = W^T (X ⊙ M) · sum(1)/sum(M) + b   where sum(M) > 0,   else 0
    Eq. 2:  m' = 1                                  where sum(M) > 0,   else 0

with the sums taken over the k×k window and over ALL input channels (the official layer's
multi-channel semantics): sum(1) = C·k·k, and a mask shared by all channels ([N,H,W,1]) counts as
C identical channels. Written as the official layer computes it, with S = sum(M) and
U = clip(S,0,1):

    y = conv(X ⊙ M) · (C·k·k)/(S + eps) · U + b · U,        new_mask = U.

The padded border counts as hole ("partial-convolution padding"). The mask path costs one channel
sum and one k×k window sum per call (S is the same for every output channel), kept in float32.

`ratio="mask_sum"` is naoto0804's variant (its net.py `PartialConv.forward`): the window's valid
count alone, y = conv(X ⊙ M) / S + b where S > 0, else 0, and new_mask = 1[S > 0]. It is the
official layer with the kernel C·k·k times larger, kept as its own option so that a converted
model keeps its parameter scale (which matters to Adam when fine-tuning).

Shape legend: N batch, H/W height/width, C input channels, F output channels (`features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from pconv_jax.nn.grid_ops import pad_global

Array = jax.Array
# He/Kaiming normal with fan-in, untruncated, as the paper (and torch's kaiming_normal_) use.
kaiming_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def _as_segments(x: Array | Sequence[Array], mask: Array | Sequence[Array]):
    """Normalises (x, mask) to equal-length lists of channel segments."""
    xs = list(x) if isinstance(x, list | tuple) else [cast(Array, x)]
    masks = list(mask) if isinstance(mask, list | tuple) else [cast(Array, mask)]
    if len(xs) != len(masks):
        raise ValueError(f"got {len(xs)} feature segments but {len(masks)} mask segments")
    for i, (xi, mi) in enumerate(zip(xs, masks)):
        if xi.ndim != 4 or mi.ndim != 4:
            raise ValueError(
                f"segment {i}: features and mask must be 4-D [N,H,W,C]; got shapes "
                f"{tuple(xi.shape)} and {tuple(mi.shape)}"
            )
        if tuple(mi.shape[:3]) != tuple(xi.shape[:3]) or mi.shape[3] not in (1, xi.shape[3]):
            raise ValueError(
                f"segment {i}: mask shape {tuple(mi.shape)} does not match features "
                f"{tuple(xi.shape)}; expected [N,H,W,1] or [N,H,W,{xi.shape[3]}]"
            )
    if len({tuple(xi.shape[:3]) for xi in xs}) != 1:
        raise ValueError(f"segments differ in [N,H,W]: {[tuple(xi.shape) for xi in xs]}")
    return xs, masks


def valid_count(masks: Sequence[Array], channels: Sequence[int]) -> Array:
    """Per-pixel number of valid input channels, [N,H,W,1] float32.

    A [N,H,W,1] mask stands for `channels` identical channels; a per-channel mask is summed.
    """
    total: Array | None = None
    for m, c in zip(masks, channels):
        m = m.astype(jnp.float32)
        part = m * c if m.shape[-1] == 1 else jnp.sum(m, axis=-1, keepdims=True)
        total = part if total is None else total + part
    if total is None:
        raise ValueError("valid_count needs at least one mask segment")
    return total


def same_pads(kernel_size: tuple[int, int]) -> list[tuple[int, int]]:
    """(k-1)//2 per side of H and W: an odd kernel at stride s gives ceil(H/s) outputs."""
    return [((k - 1) // 2, (k - 1) // 2) for k in kernel_size]


def window_sum(
    count_NxHxWx1: Array,
    kernel_size: tuple[int, int],
    strides: tuple[int, int],
    pads: Sequence[tuple[int, int]] | None = None,
):
    """Sum over each k×k window with the conv's stride and zero padding `pads` ((top, bottom),
    (left, right); default (k-1)//2 per side)."""
    pads = same_pads(kernel_size) if pads is None else pads
    # A convolution with a ones kernel, not lax.reduce_window: the same sum (exact for the
    # integer counts of binary masks), and ONNX runs it as a plain 2-D Conv where jax2onnx
    # writes reduce_window as a 4-D one that onnxruntime computes far slower.
    ones = jnp.ones((*kernel_size, 1, 1), count_NxHxWx1.dtype)
    return conv_nhwc(count_NxHxWx1, ones, strides, pads)


RATIOS = ("official", "mask_sum")
PADDINGS = ("zeros", "global")


def mask_update(
    masks, channels, kernel_size, strides, eps: float, ratio: str = "official", pads=None
):
    """Returns (ratio, new_mask), both [N,H',W',1] float32 and free of gradients.

    official: ratio = (C·k·k)/(S+eps)·U and new_mask = U = clip(S,0,1), S the window sum of valid
    entries. mask_sum: ratio = U/S (1/S where S > 0, else 0) and new_mask = U = 1[S > 0].
    `pads`: zero padding of the window sum (window_sum's default when None).
    """
    if ratio not in RATIOS:
        raise ValueError(f"ratio must be one of {RATIOS}, got {ratio!r}")
    count = lax.stop_gradient(valid_count(masks, channels))
    window_valid = window_sum(count, kernel_size, strides, pads)
    if ratio == "mask_sum":
        new_mask = (window_valid > 0).astype(jnp.float32)
        one = jnp.ones((), window_valid.dtype)  # typed, as in PartialConv (jax2onnx's `where`)
        return new_mask / jnp.where(window_valid > 0, window_valid, one), new_mask
    new_mask = jnp.clip(window_valid, 0.0, 1.0)
    window_size = float(sum(channels) * kernel_size[0] * kernel_size[1])
    ratio = window_size / (window_valid + eps) * new_mask
    return ratio, new_mask


def conv_nhwc(x: Array, kernel: Array, strides: tuple[int, int], padding) -> Array:
    return lax.conv_general_dilated(
        x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


class PartialConv(nn.Module):
    """Partial convolution with partial-convolution padding, Eq. 1-2 (official semantics).

    Attributes:
      features: output channels F.
      kernel_size: k or (kh, kw); odd sizes, padded by (k-1)//2 per side.
      strides: s or (sh, sw).
      use_bias: add a bias b (only where the window held a valid input).
      kernel_init: initializer of the HWIO kernel (He normal, fan-in).
      eps: added to the valid count S before dividing (float32 mask path; ratio="official").
      ratio: "official" (Eq. 1, sum(1)/sum(M)) or "mask_sum" (1/sum(M), naoto0804's layer).
      padding: "zeros" (the border is hole: zeros for features and mask) or "global" (CRAI's
        `--global-padding`: features AND masks padded circularly in W (longitude) and with zeros
        in H (beyond the poles), grid_ops.pad_global; the wrapped cells count as observed where
        the mask says so).
      dtype: compute dtype of the convolution (None = the input's); the ratio stays float32.
      param_dtype: dtype of `kernel` and `bias`.
    """

    features: int
    kernel_size: int | tuple[int, int]
    strides: int | tuple[int, int] = 1
    use_bias: bool = True
    kernel_init: Any = kaiming_normal
    bias_init: Any = nn.initializers.zeros
    eps: float = 1e-8
    ratio: str = "official"
    padding: str = "zeros"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, mask):
        """Applies the layer.

        Args:
          x: features [N,H,W,C], or a sequence of arrays concatenated along channels (the U-Net's
            skip connections, "features and masks concatenated separately").
          mask: [N,H,W,1] (shared by all channels) or [N,H,W,C] (per channel), values in [0,1],
            1 = valid; a sequence matching `x` segment by segment when `x` is one.
        Returns:
          (y [N,H',W',F], new_mask [N,H',W',1] float32), H' = ceil(H / stride).
        """
        xs, masks = _as_segments(x, mask)
        kernel_size = _pair(self.kernel_size)
        strides = _pair(self.strides)
        if any(k % 2 == 0 for k in kernel_size):
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {self.padding!r}")
        channels = [int(xi.shape[-1]) for xi in xs]
        in_features = sum(channels)
        kernel = self.param(
            "kernel", self.kernel_init, (*kernel_size, in_features, self.features), self.param_dtype
        )
        dtype = self.dtype or jnp.result_type(*xs)
        # `where` and not a bare product, so that NaN/Inf placed in holes cannot leak through.
        # The zero is typed: jax2onnx's `where` promotes a Python 0 to float64 (store/onnx_export).
        masked = [
            jnp.where(mi > 0, xi * mi.astype(xi.dtype), jnp.zeros((), xi.dtype))
            for xi, mi in zip(xs, masks)
        ]
        joined = masked[0] if len(masked) == 1 else jnp.concatenate(masked, axis=-1)
        pads = same_pads(kernel_size)
        if self.padding == "global":
            # Only the circular columns are added here; the zero rows beyond the poles stay the
            # convolution's own padding: XLA's CPU convolution of an already padded, odd-sized
            # input with no padding of its own runs ~8x slower than this (experiments/
            # bench_crai.py), with the same values.
            wrap = [(0, 0), pads[1]]
            joined = pad_global(joined, wrap)
            masks = [pad_global(mi.astype(jnp.float32), wrap) for mi in masks]
            pads = [pads[0], (0, 0)]
        raw = conv_nhwc(joined.astype(dtype), kernel.astype(dtype), strides, pads)
        ratio, new_mask = mask_update(
            masks, channels, kernel_size, strides, self.eps, self.ratio, pads
        )
        y = raw.astype(jnp.float32) * ratio
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            y = y + bias.astype(jnp.float32).reshape(1, 1, 1, -1) * new_mask
        return y.astype(dtype), new_mask


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)
