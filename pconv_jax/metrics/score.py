"""Scoring a batch of fills against the truth, jittable: the metrics of `pconv evaluate`
and of validation during training.

The metrics are computed on the composite `truth * mask + clip(output, 0, 1) * (1 - mask)`
(or on the clipped output itself, "raw"): l1 (%), hole l1 (%), PSNR (dB), SSIM and, from 32 px
up, LPIPS (AlexNet-lin, or VGG16-lin).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from pconv_jax.metrics import lpips, pixel


def score(lpips_params, truth_u8, mask, output, composite: bool = True, lpips_net: str = "alex"):
    """(output_u8, composite_u8, metrics) of a batch; `output` is the raw fill, any range.

    `lpips_params`: `lpips.load_params(lpips_net)`; LPIPS is left out below lpips.MIN_SIZE_PX.
    `composite`: False scores the clipped output as it is ("raw": a fill whose known pixels
    the tool changed keeps them); composite_u8 is then the output. Static under jit.
    """
    truth = truth_u8.astype(jnp.float32) / 255.0
    output = jnp.clip(output.astype(jnp.float32), 0.0, 1.0)
    if composite:
        composite = truth * mask + output * (1.0 - mask)
    else:
        composite = output
    values = {
        "l1": pixel.l1_percent(composite, truth),
        "hole_l1": pixel.hole_l1_percent(composite, truth, mask),
        "psnr": pixel.psnr(composite, truth),
        "ssim": pixel.ssim(composite, truth),
    }
    if min(truth.shape[1:3]) >= lpips.MIN_SIZE_PX:
        values["lpips"] = lpips.lpips_distance(lpips_params, composite, truth, lpips_net)

    def to_u8(x):
        return jnp.round(x * 255.0).astype(jnp.uint8)

    return to_u8(output), to_u8(composite), values


def pad_to(batch_size: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """Each array [n, ...] extended to [batch_size, ...] by repeating its last row."""
    n = len(arrays[0])
    if n == batch_size:
        return list(arrays)
    return [np.concatenate([a, np.repeat(a[-1:], batch_size - n, axis=0)]) for a in arrays]
