"""Checks of the U-Net's options and inputs (nn/model.py), each failure one sentence."""

from __future__ import annotations

import math

import jax
import numpy as np

from pconv_jax.nn.layers import PADDINGS

IO_RANGES = ("unit", "symmetric", "imagenet")
CONV_BIAS = ("without_bn", "last_only")
INPUT_SIZES = ("multiple", "any")


def check_options(model) -> list[str]:
    """Problems with a `PConvUNet`'s attributes (empty when it is consistent)."""
    problems = []
    choices = {
        "io_range": IO_RANGES,
        "conv_bias": CONV_BIAS,
        "padding": PADDINGS,
        "input_sizes": INPUT_SIZES,
    }
    for name, allowed in choices.items():
        if getattr(model, name) not in allowed:
            problems.append(f"{name} must be one of {allowed}, got {getattr(model, name)!r}")
    c_in, c_out = model.in_channels, model.out_channels
    if c_in < 1 or c_out < 1:
        problems.append(f"in_channels and out_channels must be >= 1, got {c_in}, {c_out}")
    if model.io_range != "unit" and (c_in, c_out) != (3, 3):
        problems.append(
            f"io_range={model.io_range!r} is an RGB space; the model maps {c_in} -> {c_out}"
        )
    if not model.partial and model.hole_fill and len(model.hole_fill) != c_in:
        problems.append(
            f"hole_fill must hold {c_in} values (one per channel), got {model.hole_fill}"
        )
    mean, std = tuple(model.channel_mean), tuple(model.channel_std)
    if mean or std:
        if len(mean) != c_in or len(std) != c_in:
            problems.append(
                f"channel_mean and channel_std must hold in_channels={c_in} values each, got "
                f"{len(mean)} and {len(std)}"
            )
        elif not all(math.isfinite(v) for v in mean) or not all(
            s > 0 and math.isfinite(s) for s in std
        ):
            problems.append(f"channel_mean must be finite and channel_std > 0; got {mean}, {std}")
        if model.io_range != "unit":
            problems.append("channel_mean/channel_std and io_range != 'unit' cannot both be set")
        if c_out > c_in:
            problems.append(
                f"channel statistics map the output back with the first out_channels of them: "
                f"out_channels={c_out} exceeds in_channels={c_in}"
            )
    low, high = tuple(model.output_min), tuple(model.output_max)
    if low or high:
        if len(low) != c_out or len(high) != c_out:
            problems.append(
                f"output_min and output_max must hold out_channels={c_out} values each, got "
                f"{len(low)} and {len(high)}"
            )
        elif any(lo >= hi or lo == math.inf or hi == -math.inf for lo, hi in zip(low, high)):
            problems.append(f"need output_min < output_max per channel; got {low}, {high}")
    if model.leaky_slope < 0:
        problems.append(f"leaky_slope must be >= 0, got {model.leaky_slope}")
    return problems


def check_inputs(image, mask, num_layers: int, channels: int, input_sizes: str) -> None:
    """ValueError for inputs the model cannot take (shapes, sizes, mask values)."""
    if image.ndim != 4 or image.shape[-1] != channels:
        raise ValueError(f"image must be [N,H,W,{channels}], got shape {tuple(image.shape)}")
    if mask.ndim != 4 or mask.shape[-1] not in (1, channels):
        raise ValueError(
            f"mask must be [N,H,W,1] or [N,H,W,{channels}], got shape {tuple(mask.shape)}"
        )
    if tuple(mask.shape[:3]) != tuple(image.shape[:3]):
        raise ValueError(
            f"image and mask differ in [N,H,W]: {tuple(image.shape)} vs {tuple(mask.shape)}"
        )
    multiple = 2**num_layers
    h, w = image.shape[1:3]
    if input_sizes == "multiple" and (h % multiple or w % multiple):
        raise ValueError(
            f"image height and width must be divisible by 2**num_layers = {multiple} "
            f"(num_layers={num_layers}); got {h}x{w}. Pad the image (marking the padding as "
            f"hole) or use pconv_jax's inference helpers, which do so."
        )
    if not isinstance(mask, jax.core.Tracer):
        lo, hi = float(np.min(mask)), float(np.max(mask))
        if lo < 0.0 or hi > 1.0 or not np.isfinite(lo + hi):
            raise ValueError(f"mask values must lie in [0, 1] (1 = known); got min {lo}, max {hi}")
