"""Super-resolution canvases (paper Sec. 5.2): the numpy code training and inference share.

Each low-res pixel (i, j) is placed at (K*i + K//2, K*j + K//2) of a K-times larger canvas and
marked known (mask 1); every other canvas pixel is a hole. Training builds the low-res image
from a high-res crop by box averaging (`downsample_box`). See `pconv_jax.inference.superres`
for inference and for what the kept cell means imply.
"""

from __future__ import annotations

import numpy as np


def default_offset(factor: int) -> tuple[int, int]:
    """The paper's (row, column) offset of a low-res pixel inside its cell: (K // 2, K // 2)."""
    return factor // 2, factor // 2


def make_sr_canvas(
    low_res: np.ndarray, factor: int, offset: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Spreads a low-res image over a factor-times larger canvas with a sparse known-pixel mask.

    Args:
      low_res: [h, w, C] or [B, h, w, C], any dtype (typically float32 in [0, 1]).
      factor: K >= 1.
      offset: (row, column) position of each low-res pixel inside its KxK cell, each in
        [0, K); default the paper's (K // 2, K // 2).

    Returns:
      (canvas, mask): canvas [..., K*h, K*w, C] of low_res's dtype with
      canvas[..., K*i + row, K*j + col, :] = low_res[..., i, j, :] and 0 elsewhere; mask float32
      [..., K*h, K*w, 1], 1 at those positions, 0 elsewhere (holes).
    """
    if factor < 1:
        raise ValueError(f"super-resolution factor must be >= 1, got {factor}")
    if low_res.ndim not in (3, 4):
        raise ValueError(f"low_res must be [h, w, C] or [B, h, w, C], got shape {low_res.shape}")
    row, col = default_offset(factor) if offset is None else offset
    if not (0 <= row < factor and 0 <= col < factor):
        raise ValueError(f"offset {offset} must lie inside the {factor}x{factor} cell")
    *lead, height, width, channels = low_res.shape
    canvas = np.zeros((*lead, factor * height, factor * width, channels), low_res.dtype)
    canvas[..., row::factor, col::factor, :] = low_res
    mask = np.zeros((*lead, factor * height, factor * width, 1), np.float32)
    mask[..., row::factor, col::factor, :] = 1.0
    return canvas, mask


def downsample_box(high_res: np.ndarray, factor: int) -> np.ndarray:
    """Area (box) downsampling: the mean of each KxK cell.

    Args:
      high_res: [H, W, C] or [B, H, W, C] with H and W divisible by `factor`.
      factor: K >= 1.

    Returns:
      float32 [..., H // K, W // K, C].
    """
    *lead, height, width, channels = high_res.shape
    if factor < 1 or height % factor or width % factor:
        raise ValueError(f"image {height}x{width} is not divisible by the factor {factor}")
    cells = high_res.astype(np.float32).reshape(
        *lead, height // factor, factor, width // factor, factor, channels
    )
    return cells.mean(axis=(-4, -2))


def make_sr_example(
    high_res: np.ndarray, factor: int, offset: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Training input from a high-res crop: (canvas, mask) of `make_sr_canvas(downsample_box())`.

    Args:
      high_res: float32 [S, S, 3] in [0, 1] (or batched), S divisible by `factor`.

    Returns:
      canvas float32 [S, S, 3] (the network input), mask float32 [S, S, 1].
    """
    return make_sr_canvas(downsample_box(high_res, factor), factor, offset)
