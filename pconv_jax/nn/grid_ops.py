"""Operations the U-Net needs for gridded (climate) data, as CRAI's network computes them.

CRAI (FREVA-CLINT/climatereconstructionAI, Kadow et al. 2020) runs the PConv U-Net on grids of
any size, on the sphere, with batch statistics over observed cells and bounded outputs:

- `upsample_nearest_to`: nearest upsampling to a given size, PyTorch's `nn.Upsample(size,
  mode='nearest')` index rule src = min(floor(dst * (in/out)), in - 1) with the scale and the
  product in float32 (for out = 2·in it is src = dst // 2, today's ×2 repeat, bit for bit).
- `pad_global`: CRAI's `bound_pad` (`--global-padding`): zeros beyond the poles (H, latitude),
  circular in longitude (W); the corners are zero.
- `MaskedBatchNorm`: CRAI's `masked_batch_norm` (`--masked-bn`); its variables are named as
  `flax.linen.BatchNorm`'s, so a converted BN maps to either.
- `bounded`: CRAI's `constrain_bounds` (`--min-bounds`/`--max-bounds`): sigmoid between two finite
  bounds, exp above a lower bound, pass-through where both are infinite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Source index of each of `size_out` outputs, PyTorch's nearest rule (float32 arithmetic)."""
    scale = np.float32(size_in) / np.float32(size_out)
    positions = np.arange(size_out, dtype=np.float32) * scale
    return np.minimum(np.floor(positions).astype(np.int64), size_in - 1)


def upsample_nearest_to(x: Array | None, size: tuple[int, int]) -> Array | None:
    """[N,h,w,C] -> [N,H,W,C] with (H, W) = `size`, nearest as `nn.Upsample(size)`; None stays."""
    if x is None:
        return None
    if all(out == 2 * n for out, n in zip(size, x.shape[1:3])):
        # The exact x2 case (src = dst // 2, the same values) as a repeat: it also takes the
        # symbolic sides that an ONNX export traces (store/onnx_export.py), where int() fails.
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    rows = nearest_indices(int(x.shape[1]), size[0])
    cols = nearest_indices(int(x.shape[2]), size[1])
    return jnp.take(jnp.take(x, rows, axis=1), cols, axis=2)


def pad_global(x: Array, pads: Sequence[tuple[int, int]]) -> Array:
    """[N,H,W,C] padded by pads = ((top, bottom), (left, right)): zeros in H, circular in W."""
    (top, bottom), (left, right) = pads
    if left > x.shape[2] or right > x.shape[2]:
        raise ValueError(
            f"global padding wraps {max(left, right)} columns around a grid only "
            f"{x.shape[2]} wide (shape {tuple(x.shape)})"
        )
    x = jnp.pad(x, ((0, 0), (top, bottom), (0, 0), (0, 0)))
    # jnp.pad(mode="wrap") as slices: its own index arithmetic cannot take the symbolic width of
    # an ONNX export's trace (store/onnx_export.py); the values are the same for pads <= W. And
    # lax's concatenate: jax2onnx's jnp.concatenate gives parts of symbolic sizes a wrong sum.
    # The last `left` columns as the first of the reversed grid: no symbolic "W - left" either.
    first = lax.slice_in_dim  # (a static slice: jnp's [:, :, :k] on a symbolic side is a gather)
    parts = [lax.rev(first(lax.rev(x, (2,)), 0, left, axis=2), (2,))] if left else []
    parts += [x, first(x, 0, right, axis=2)] if right else [x]
    return lax.concatenate(parts, dimension=2)


class MaskedBatchNorm(nn.Module):
    """CRAI's masked batch norm over [N,H,W,C] features with the layer's output mask.

    Training: with K = the number of observed entries per channel (the mask's sum over N, H, W),
    mean = sum(x) / K over ALL cells (CRAI sums x unmasked: the partial conv has already set the
    holes to 0, so this is the mean over observed cells), var = sum(((x - mean)·mask)²) / K
    (biased); the running averages take these with `momentum` (0.9 = PyTorch's 0.1). Evaluation:
    the running statistics, as `flax.linen.BatchNorm` computes it. y = (x - mean)/sqrt(var + eps)
    · scale + bias. Variables: params scale, bias; batch_stats mean, var.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, mask: Array, use_running_average: bool) -> Array:
        features = int(x.shape[-1])
        scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        x32 = x.astype(jnp.float32)
        if use_running_average:
            mean, var = ra_mean.value, ra_var.value
        else:
            m = jnp.broadcast_to(mask.astype(jnp.float32), x32.shape)
            count = jnp.sum(m, axis=(0, 1, 2))
            mean = jnp.sum(x32, axis=(0, 1, 2)) / count
            var = jnp.sum(((x32 - mean.reshape(1, 1, 1, -1)) * m) ** 2, axis=(0, 1, 2)) / count
            if not self.is_initializing():
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        mul = lax.rsqrt(var + self.epsilon) * scale
        y = (x32 - mean.reshape(1, 1, 1, -1)) * mul.reshape(1, 1, 1, -1) + bias.reshape(1, 1, 1, -1)
        return y.astype(self.dtype or x.dtype)


def bounded(h_NxHxWxC: Array, lower: Sequence[float], upper: Sequence[float]) -> Array:
    """CRAI's `constrain_bounds` on each output channel c, bounds in the network's units:

    both finite: sigmoid(h)·(upper - lower) + lower; lower only: exp(h) + lower; upper only:
    upper - exp(-h) (CRAI's `bnd_exp` with sign -1, which its code means to select; its test
    `bounds[i, 0] == inf` never holds for a lower bound of -inf, so CRAI itself returns -inf
    there); neither: h. The span upper - lower is taken in float64, as CRAI's numpy does.
    """
    if not lower:
        return h_NxHxWxC
    channels = []
    for c, (lo, hi) in enumerate(zip(lower, upper, strict=True)):
        # a static slice, [N,H,W,1]: jnp's [..., c] is a gather when H and W are symbolic (ONNX)
        h = lax.slice_in_dim(h_NxHxWxC, c, c + 1, axis=3)
        if np.isfinite(lo) and np.isfinite(hi):
            h = jax.nn.sigmoid(h) * np.float32(np.float64(hi) - np.float64(lo)) + np.float32(lo)
        elif np.isfinite(lo):
            h = jnp.exp(h) + np.float32(lo)
        elif np.isfinite(hi):
            h = -jnp.exp(-h) + np.float32(hi)
        channels.append(h)
    return lax.concatenate(channels, dimension=3)
