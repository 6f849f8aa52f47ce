"""The paper's PConv U-Net (appendix table) and its "Conv" baseline.

Encoder (num_layers = L; 8 for 512x512 inputs, 7 for 256x256), every layer stride 2:
  enc1 7x7/64 (no BN, bias) ReLU; enc2 5x5/128, enc3 5x5/256, enc4..encL 3x3/512, BN, ReLU.
Decoder, from decL down to dec1: nearest x2 upsampling of features AND mask, concatenation with
the matching encoder output (features with features, masks with masks), 3x3/1 partial conv, BN,
LeakyReLU(0.2), channels 512..512, 256, 128, 64; dec1 (the paper's PConv16) concatenates with the
input image and mask and maps to 3 channels with a bias, no BN, no activation.

Module paths: params/batch_stats `enc{i}/{conv,bn}` and `dec{i}/{conv,bn}`, so the encoder's BN
layers can be frozen on their own (stage-2 fine-tuning).

Models trained elsewhere (`pconv convert`) differ in three ways, each a `ModelConfig` option with
the paper's behaviour as default: the pixel space the network works in (`io_range`: the model
maps its [0,1] RGB input there and its output back, as a step of the model, because a mean
subtraction does not fold into the first kernel: the masked window sum of the mean depends on the
mask), the partial-conv re-weighting (`ratio`, see layers.py) and which layers have a bias
(`conv_bias`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from pconv_jax.nn.layers import PartialConv, kaiming_normal

# io_range -> (mean, std) per RGB channel: network pixels = (x - mean) / std, x in [0,1].
IO_AFFINE = {
    "unit": None,
    "symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # mmagic: (p - 127.5) / 127.5
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),  # naoto0804: torchvision Normalize
}
CONV_BIAS = ("without_bn", "last_only")


def encoder_spec(num_layers: int) -> list[tuple[int, int]]:
    """(kernel_size, features) of enc1..encL."""
    if num_layers < 4:
        raise ValueError(f"num_layers must be at least 4 (the paper uses 7 or 8), got {num_layers}")
    return [(7, 64), (5, 128), (5, 256)] + [(3, 512)] * (num_layers - 3)


class _Block(nn.Module):
    features: int
    kernel_size: int
    strides: int
    batch_norm: bool
    activation: str  # relu | leaky_relu | none
    use_bias: bool
    partial: bool
    ratio: str
    bn_momentum: float
    dtype: Any

    @nn.compact
    def __call__(self, x, mask, use_batch_stats: bool):
        k = self.kernel_size
        if self.partial:
            y, new_mask = PartialConv(
                self.features,
                k,
                self.strides,
                use_bias=self.use_bias,
                ratio=self.ratio,
                dtype=self.dtype,
                name="conv",
            )(x, mask)
        else:
            x = jnp.concatenate(x, axis=-1) if isinstance(x, list | tuple) else x
            y = nn.Conv(
                self.features,
                (k, k),
                self.strides,
                padding=[((k - 1) // 2,) * 2] * 2,
                use_bias=self.use_bias,
                kernel_init=kaiming_normal,
                dtype=self.dtype,
                name="conv",
            )(x)
            new_mask = None
        if self.batch_norm:
            y = nn.BatchNorm(
                use_running_average=not use_batch_stats,
                momentum=self.bn_momentum,
                epsilon=1e-5,
                dtype=self.dtype,
                name="bn",
            )(y)
        if self.activation == "relu":
            y = nn.relu(y)
        elif self.activation == "leaky_relu":
            y = nn.leaky_relu(y, 0.2)
        return y, new_mask


def _upsample2(x):
    return None if x is None else jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class PConvUNet(nn.Module):
    """Partial-convolution U-Net (or, with partial=False, the paper's Conv baseline).

    Attributes:
      num_layers: encoder depth L; H and W must be divisible by 2**L.
      partial: True for partial convolutions; False for ordinary convolutions with the holes of
        the input filled with `hole_fill`.
      hole_fill: RGB colour in [0,1] placed in holes by the Conv baseline (ImageNet mean); None or
        () keeps whatever values the caller left in the holes (ignored when partial=True).
      bn_momentum: decay of the BN running averages (0.9 = PyTorch's momentum 0.1).
      io_range: the network's pixel space, a key of `IO_AFFINE` ("unit" = [0,1], the paper's).
      ratio: partial-conv re-weighting, "official" or "mask_sum" (layers.PartialConv).
      conv_bias: "without_bn" (enc1 and dec1 have a bias) or "last_only" (dec1 only).
      dtype: compute dtype (None = float32); parameters stay float32.
    """

    num_layers: int = 7
    partial: bool = True
    hole_fill: tuple[float, ...] | None = IMAGENET_MEAN
    bn_momentum: float = 0.9
    io_range: str = "unit"
    ratio: str = "official"
    conv_bias: str = "without_bn"
    dtype: Any = None

    @nn.compact
    def __call__(self, image, mask, train: bool = False, freeze_encoder_bn: bool = False):
        """Inpaints `image` where `mask` is 0.

        Args:
          image: [N,H,W,3] float, RGB in [0,1] (hole pixels are ignored).
          mask: [N,H,W,1] or [N,H,W,3], values in [0,1] (binary in practice), 1 = known pixel.
          train: batch statistics (and their running averages) instead of running statistics.
          freeze_encoder_bn: with train=True, the encoder's BN layers still use (and never
            update) their running statistics — the paper's fine-tuning stage.
        Returns:
          The raw network output [N,H,W,3] mapped back to [0,1] RGB space (not clipped, not
          composited).
        """
        _check_inputs(image, mask, self.num_layers)
        if self.io_range not in IO_AFFINE or self.conv_bias not in CONV_BIAS:
            raise ValueError(
                f"io_range must be one of {tuple(IO_AFFINE)} and conv_bias one of {CONV_BIAS}; "
                f"got {self.io_range!r}, {self.conv_bias!r}"
            )
        dtype = self.dtype or jnp.float32
        image = image.astype(dtype)
        mask = mask.astype(jnp.float32)
        if not self.partial:
            if self.hole_fill:
                if len(self.hole_fill) != 3:
                    raise ValueError(f"hole_fill must be an RGB triple, got {self.hole_fill}")
                fill = jnp.asarray(self.hole_fill, dtype).reshape(1, 1, 1, 3)
                image = jnp.where(mask > 0, image * mask.astype(dtype) + fill * (1 - mask), fill)
            mask = None
        affine = IO_AFFINE[self.io_range]
        if affine is not None:
            mean, std = (jnp.asarray(v, dtype).reshape(1, 1, 1, 3) for v in affine)
            image = (image - mean) / std

        block = dict(
            partial=self.partial, ratio=self.ratio, bn_momentum=self.bn_momentum, dtype=self.dtype
        )
        skips = [(image, mask)]
        h, m = image, mask
        for i, (k, features) in enumerate(encoder_spec(self.num_layers), start=1):
            bias = i == 1 and self.conv_bias == "without_bn"
            blk = _Block(features, k, 2, i > 1, "relu", bias, name=f"enc{i}", **block)
            h, m = blk(h, m, use_batch_stats=train and not freeze_encoder_bn)
            skips.append((h, m))

        for i in range(self.num_layers, 0, -1):
            skip_h, skip_m = skips[i - 1]
            last = i == 1
            features = 3 if last else int(skip_h.shape[-1])
            activation = "none" if last else "leaky_relu"
            blk = _Block(features, 3, 1, not last, activation, last, name=f"dec{i}", **block)
            segments_m = None if m is None else [_upsample2(m), skip_m]
            h, m = blk([_upsample2(h), skip_h], segments_m, use_batch_stats=train)
        if affine is not None:
            h = h * std + mean
        return h


def _check_inputs(image, mask, num_layers: int) -> None:
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"image must be [N,H,W,3] RGB, got shape {tuple(image.shape)}")
    if mask.ndim != 4 or mask.shape[-1] not in (1, 3):
        raise ValueError(f"mask must be [N,H,W,1] or [N,H,W,3], got shape {tuple(mask.shape)}")
    if tuple(mask.shape[:3]) != tuple(image.shape[:3]):
        raise ValueError(
            f"image and mask differ in [N,H,W]: {tuple(image.shape)} vs {tuple(mask.shape)}"
        )
    multiple = 2**num_layers
    h, w = image.shape[1:3]
    if h % multiple or w % multiple:
        raise ValueError(
            f"image height and width must be divisible by 2**num_layers = {multiple} "
            f"(num_layers={num_layers}); got {h}x{w}. Pad the image (marking the padding as "
            f"hole) or use pconv_jax's inference helpers, which do so."
        )
    if not isinstance(mask, jax.core.Tracer):
        lo, hi = float(np.min(mask)), float(np.max(mask))
        if lo < 0.0 or hi > 1.0 or not np.isfinite(lo + hi):
            raise ValueError(f"mask values must lie in [0, 1] (1 = known); got min {lo}, max {hi}")


def count_kernel_weights(params) -> int:
    """Number of convolution-kernel weights (the appendix table's total)."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return sum(
        int(np.prod(v.shape)) for path, v in leaves if getattr(path[-1], "key", None) == "kernel"
    )


def build_model(cfg: ModelConfig, dtype=None) -> PConvUNet:
    """The U-Net a config's `model` section describes; `dtype` is the compute dtype."""
    return PConvUNet(
        num_layers=cfg.num_layers,
        partial=cfg.partial,
        hole_fill=tuple(cfg.hole_fill) or None,
        bn_momentum=cfg.bn_momentum,
        io_range=cfg.io_range,
        ratio=cfg.ratio,
        conv_bias=cfg.conv_bias,
        dtype=dtype,
    )


def abstract_variables(model: PConvUNet) -> dict:
    """{'params', 'batch_stats'} of `model` as jax.ShapeDtypeStruct trees (nothing computed).

    Variable shapes do not depend on the input size; the smallest valid side is used.
    """
    side = 2**model.num_layers
    return jax.eval_shape(
        lambda: model.init(
            jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.ones((1, side, side, 1))
        )
    )
