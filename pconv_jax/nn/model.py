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

Gridded data (CRAI, Kadow et al. 2020; each a `ModelConfig` option, the paper's as default):
`in_channels`/`out_channels` variables; widths `width`·2^i capped at `max_width`; encoder kernels
`encoder_kernels` (decoder kernels are 3x3); BN on enc1 (`first_bn`); `masked_bn`; the decoder's
`leaky_slope`; per-channel `channel_mean`/`channel_std` (the model maps physical values to
(x - mean)/std and its output back with the first `out_channels` statistics); `output_min`/
`output_max` (grid_ops.bounded, applied in normalised units before the output is mapped back).

How the net pads and crops (`input_sizes`, `padding`). Every convolution has an odd kernel k and
pads (k-1)//2 cells on each side: with `padding="zeros"` those cells are holes (mask 0); with
`padding="global"` features and masks wrap around in W (longitude) and are zero beyond H's ends
(the poles). A stride-2 encoder layer maps a side of n cells to ceil(n/2). Each decoder layer
upsamples its input (features and mask) by nearest neighbour TO THE SIZE OF ITS SKIP (the encoder
output one level up, or the input for dec1): output cell j reads input cell
min(floor(j·(n_in/n_out)), n_in - 1), PyTorch's rule, float32 (grid_ops.upsample_nearest_to). So a
side of 5 goes 5 -> 3 -> 2 -> 1 down and 1 -> 2 -> 3 -> 5 up, nothing is cropped, and the output
has the input's size. When n divides by 2^L every step is an exact ×2 repeat. `input_sizes=
"multiple"` (the paper's image model) still refuses other sizes so that callers pad; "any" (CRAI)
takes every size.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from pconv_jax.nn.grid_ops import MaskedBatchNorm, bounded, upsample_nearest_to
from pconv_jax.nn.layers import PartialConv, kaiming_normal
from pconv_jax.nn.model_checks import check_inputs, check_options

# io_range -> (mean, std) per RGB channel: network pixels = (x - mean) / std, x in [0,1].
IO_AFFINE = {
    "unit": None,
    "symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # mmagic: (p - 127.5) / 127.5
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),  # naoto0804: torchvision Normalize
}


def encoder_spec(num_layers: int) -> list[tuple[int, int]]:
    """(kernel_size, features) of enc1..encL of the paper's image model."""
    if num_layers < 4:
        raise ValueError(f"num_layers must be at least 4 (the paper uses 7 or 8), got {num_layers}")
    return layer_spec(num_layers)


def layer_spec(
    num_layers: int, width: int = 64, max_width: int = 512, kernels: tuple[int, ...] = ()
) -> list[tuple[int, int]]:
    """(kernel_size, features) of enc1..encL: min(width·2^(i-1), max_width) features, kernels
    `kernels` or, when empty, the paper's 7, 5, 5, 3, 3, ..."""
    if num_layers < 1 or width < 1 or max_width < width:
        raise ValueError(
            f"need num_layers >= 1 and 1 <= width <= max_width; got num_layers={num_layers}, "
            f"width={width}, max_width={max_width}"
        )
    kernels = tuple(kernels) or ((7, 5, 5) + (3,) * num_layers)[:num_layers]
    if len(kernels) != num_layers or any(k < 1 or k % 2 == 0 for k in kernels):
        raise ValueError(f"encoder_kernels must be {num_layers} odd sizes, got {kernels}")
    return [(k, min(width * 2**i, max_width)) for i, k in enumerate(kernels)]


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
    padding: str = "zeros"
    masked_bn: bool = False
    leaky_slope: float = 0.2

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
                padding=self.padding,
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
        if self.batch_norm and self.masked_bn and new_mask is not None:
            bn = MaskedBatchNorm(self.bn_momentum, 1e-5, self.dtype, name="bn")
            y = bn(y, new_mask, use_running_average=not use_batch_stats)
        elif self.batch_norm:
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
            y = nn.leaky_relu(y, self.leaky_slope)
        return y, new_mask


class PConvUNet(nn.Module):
    """Partial-convolution U-Net (or, with partial=False, the paper's Conv baseline).

    Attributes:
      num_layers: encoder depth L (the paper: 7 or 8; CRAI: 3 by default).
      partial: True for partial convolutions; False for ordinary convolutions with the holes of
        the input filled with `hole_fill`.
      hole_fill: per input channel, placed in holes by the Conv baseline (ImageNet mean); None or
        () keeps whatever values the caller left in the holes (ignored when partial=True).
      bn_momentum: decay of the BN running averages (0.9 = PyTorch's momentum 0.1).
      io_range: the network's pixel space, a key of `IO_AFFINE` ("unit" = [0,1], the paper's).
      ratio: partial-conv re-weighting, "official" or "mask_sum" (layers.PartialConv).
      conv_bias: "without_bn" (the layers without BN: enc1 unless first_bn, and dec1) or
        "last_only" (dec1 only).
      in_channels, out_channels: channels of the input and of the output.
      width, max_width: enc1's features, doubling per level up to max_width.
      encoder_kernels: enc1..encL kernel sides; () = the paper's 7, 5, 5, 3, ...
      padding: "zeros" or "global" (layers.PartialConv; module docstring).
      input_sizes: "multiple" (H, W divisible by 2**L) or "any" (module docstring).
      first_bn: BN on enc1.  masked_bn: training BN statistics over observed cells only.
      leaky_slope: slope of the decoder's LeakyReLU.
      channel_mean, channel_std: per input channel, physical units; () = none.
      output_min, output_max: per output channel, physical units (+-inf = none); () = none.
      dtype: compute dtype (None = float32); parameters stay float32.
    """

    num_layers: int = 7
    partial: bool = True
    hole_fill: tuple[float, ...] | None = IMAGENET_MEAN
    bn_momentum: float = 0.9
    io_range: str = "unit"
    ratio: str = "official"
    conv_bias: str = "without_bn"
    in_channels: int = 3
    out_channels: int = 3
    width: int = 64
    max_width: int = 512
    encoder_kernels: tuple[int, ...] = ()
    padding: str = "zeros"
    input_sizes: str = "multiple"
    first_bn: bool = False
    masked_bn: bool = False
    leaky_slope: float = 0.2
    channel_mean: tuple[float, ...] = ()
    channel_std: tuple[float, ...] = ()
    output_min: tuple[float, ...] = ()
    output_max: tuple[float, ...] = ()
    dtype: Any = None

    @nn.compact
    def __call__(self, image, mask, train: bool = False, freeze_encoder_bn: bool = False):
        """Inpaints `image` where `mask` is 0.

        Args:
          image: [N,H,W,in_channels] float: RGB in [0,1] for image models, physical values for
            gridded data (values in holes are ignored, NaN included).
          mask: [N,H,W,1] or [N,H,W,in_channels], values in [0,1] (binary in practice),
            1 = known.
          train: batch statistics (and their running averages) instead of running statistics.
          freeze_encoder_bn: with train=True, the encoder's BN layers still use (and never
            update) their running statistics — the paper's fine-tuning stage.
        Returns:
          The raw network output [N,H,W,out_channels] mapped back to the input's units ([0,1]
          RGB, or physical) (not clipped, not composited).
        """
        self._check_options()
        check_inputs(image, mask, self.num_layers, self.in_channels, self.input_sizes)
        dtype = self.dtype or jnp.float32
        image = image.astype(dtype)
        mask = mask.astype(jnp.float32)
        if not self.partial:
            if self.hole_fill:
                fill = jnp.asarray(self.hole_fill, dtype).reshape(1, 1, 1, -1)
                image = jnp.where(mask > 0, image * mask.astype(dtype) + fill * (1 - mask), fill)
            mask = None
        affine: tuple[tuple[float, ...], tuple[float, ...]] | None = IO_AFFINE[self.io_range]
        if self.channel_mean:
            affine = (self.channel_mean, self.channel_std)
        if affine is not None:
            mean, std = (jnp.asarray(v, dtype).reshape(1, 1, 1, -1) for v in affine)
            image = (image - mean) / std

        block = dict(
            partial=self.partial,
            ratio=self.ratio,
            bn_momentum=self.bn_momentum,
            dtype=self.dtype,
            padding=self.padding,
            masked_bn=self.masked_bn,
            leaky_slope=self.leaky_slope,
        )
        spec = layer_spec(self.num_layers, self.width, self.max_width, self.encoder_kernels)
        skips = [(image, mask)]
        h, m = image, mask
        for i, (k, features) in enumerate(spec, start=1):
            bn = i > 1 or self.first_bn
            bias = not bn and self.conv_bias == "without_bn"
            blk = _Block(features, k, 2, bn, "relu", bias, name=f"enc{i}", **block)
            h, m = blk(h, m, use_batch_stats=train and not freeze_encoder_bn)
            skips.append((h, m))

        for i in range(self.num_layers, 0, -1):
            skip_h, skip_m = skips[i - 1]
            size = (skip_h.shape[1], skip_h.shape[2])  # symbolic in an ONNX export's trace
            last = i == 1
            features = self.out_channels if last else int(skip_h.shape[-1])
            activation = "none" if last else "leaky_relu"
            blk = _Block(features, 3, 1, not last, activation, last, name=f"dec{i}", **block)
            segments_m = None if m is None else [upsample_nearest_to(m, size), skip_m]
            h, m = blk([upsample_nearest_to(h, size), skip_h], segments_m, use_batch_stats=train)
        if self.output_min:
            h = bounded(h, *self._normalised_bounds())
        if affine is not None:
            h = h * std[..., : self.out_channels] + mean[..., : self.out_channels]
        return h

    def _normalised_bounds(self) -> tuple[list[float], list[float]]:
        """output_min/max in the network's units: (b - mean)/std in float64, as CRAI's numpy."""
        lower = np.asarray(self.output_min, np.float64)
        upper = np.asarray(self.output_max, np.float64)
        if self.channel_mean:
            mean = np.asarray(self.channel_mean[: self.out_channels], np.float64)
            std = np.asarray(self.channel_std[: self.out_channels], np.float64)
            lower, upper = (lower - mean) / std, (upper - mean) / std
        return lower.tolist(), upper.tolist()

    def _check_options(self) -> None:
        problems = check_options(self)
        if problems:
            raise ValueError(problems[0])


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
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        width=cfg.width,
        max_width=cfg.max_width,
        encoder_kernels=tuple(cfg.encoder_kernels),
        padding=cfg.padding,
        input_sizes=cfg.input_sizes,
        first_bn=cfg.first_bn,
        masked_bn=cfg.masked_bn,
        leaky_slope=cfg.leaky_slope,
        channel_mean=tuple(cfg.channel_mean),
        channel_std=tuple(cfg.channel_std),
        output_min=tuple(cfg.output_min),
        output_max=tuple(cfg.output_max),
        dtype=dtype,
    )


def abstract_variables(model: PConvUNet) -> dict:
    """{'params', 'batch_stats'} of `model` as jax.ShapeDtypeStruct trees (nothing computed).

    Variable shapes do not depend on the input size; the smallest valid side is used.
    """
    side = 2**model.num_layers
    image = jnp.zeros((1, side, side, model.in_channels))
    return jax.eval_shape(
        lambda: model.init(jax.random.key(0), image, jnp.ones(image.shape[:3] + (1,)))
    )
