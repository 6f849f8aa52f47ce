"""Super-resolution on Kodak: the PConv U-Net (paper Sec. 5.2) against bicubic, PSNR and SSIM.

Protocol: the centred crop x crop square of every image in a folder (sorted by name; images
with a shorter side are skipped and listed); low-res = the crop box-downsampled by K (the mean
of each KxK cell, as in training) and rounded to 8 bits, as a low-res file would be; each
method upscales it back by K to 8 bits; PSNR and SSIM (pconv_jax.metrics.pixel: data range 1, RGB,
the whole image, no border shaved; SSIM as scikit-image's Gaussian SSIM) against the crop,
averaged over images. Rows:
  bicubic: Pillow's BICUBIC (a = -0.5, pixel-centre alignment), `baselines.bicubic_upscale`
    (Kodak 512, CPU: x2 28.95 dB / 0.8596, x4 25.16 dB / 0.6889; OpenCV's INTER_CUBIC, a = -0.75,
    would score 29.09 / 25.21 dB);
  PConv, LR pixels kept (paper): the network's output with the low-res pixels put back exactly
    at (K*i + K//2, K*j + K//2), as `inference.superres.upscale(...)` returns it;
  PConv, network output: the prediction everywhere (`upscale(..., keep_low_res=False)`; see
    pconv_jax/inference/superres.py on why the kept cell means are not the true pixels there).
Both PConv rows come from one forward pass per image, by the `upscale` function the caller hands
in (evaluation never loads a model itself). `sr_table` returns one Markdown table with notes
above it; experiments/eval_superres.py is its command line, loading the checkpoint.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np

from pconv_jax.data import sr_canvas
from pconv_jax.errors import UserError
from pconv_jax.eval.baselines import bicubic_upscale
from pconv_jax.images import decode_file, list_image_files
from pconv_jax.metrics import pixel

# The model under test: (low-res uint8 images [h, w, 3], factor K) -> the network's uint8
# [K*h, K*w, 3] prediction at every pixel, e.g. `functools.partial(inference.superres.upscale,
# inpainter, keep_low_res=False)`.
Upscale = Callable[[list[np.ndarray], int], Sequence[np.ndarray]]

ROWS = ("bicubic", "PConv, LR pixels kept (paper)", "PConv, network output")


def centre_crop(image_HxWx3: np.ndarray, side: int) -> np.ndarray | None:
    """The centred side x side square of a uint8 image, or None when the image is smaller."""
    height, width = image_HxWx3.shape[:2]
    if min(height, width) < side:
        return None
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(image_HxWx3[top : top + side, left : left + side])


def make_low_res(high_res_uint8: np.ndarray, factor: int) -> np.ndarray:
    """Box downsampling by `factor`, rounded to uint8 [S/K, S/K, 3] (an 8-bit low-res image)."""
    return np.round(sr_canvas.downsample_box(high_res_uint8, factor)).astype(np.uint8)


def load_crops(folder: str | pathlib.Path, side: int, limit: int | None = None):
    """([(name, uint8 [side, side, 3])], [names skipped as too small]) from an image folder."""
    files = list_image_files(folder, recursive=True)
    crops, skipped = [], []
    for path in files[:limit]:
        crop = centre_crop(decode_file(path), side)
        if crop is None:
            skipped.append(path.name)
        else:
            crops.append((path.name, crop))
    if not crops:
        raise UserError(f"no image in {folder} has a short side >= {side} (the crop side)")
    return crops, skipped


@jax.jit
def _psnr_ssim(output_uint8, target_uint8):
    output = output_uint8[None].astype(np.float32) / 255.0
    target = target_uint8[None].astype(np.float32) / 255.0
    return pixel.psnr(output, target)[0], pixel.ssim(output, target)[0]


def evaluate(crops, factors, upscale: Upscale | None = None) -> dict[str, dict[int, tuple]]:
    """Mean (PSNR dB, SSIM) per row and factor.

    Args:
      crops: [(name, uint8 [S, S, 3])], S divisible by every factor.
      factors: upscaling factors (each >= 2).
      upscale: the model (see `Upscale`), or None for bicubic only.
    Returns:
      {row name: {factor: (mean PSNR, mean SSIM)}}, rows as in ROWS.
    """
    scores: dict[str, dict[int, list]] = {}
    for factor in factors:
        low = [make_low_res(crop, factor) for _, crop in crops]
        outputs = {ROWS[0]: [bicubic_upscale(lr, factor) for lr in low]}
        if upscale is not None:
            raw = list(upscale(low, factor))
            offset = factor // 2
            kept = [r.copy() for r in raw]
            for image, lr in zip(kept, low):
                image[offset::factor, offset::factor] = lr
            outputs[ROWS[1]], outputs[ROWS[2]] = kept, raw
        for row, images in outputs.items():
            values = [_psnr_ssim(out, crop) for out, (_, crop) in zip(images, crops)]
            scores.setdefault(row, {})[factor] = values
    return {
        row: {
            k: (float(np.mean([p for p, _ in v])), float(np.mean([s for _, s in v])))
            for k, v in by.items()
        }
        for row, by in scores.items()
    }


def to_markdown(results, factors, trained_factors=None) -> str:
    """One table: a row per method, PSNR and SSIM columns per factor."""

    def label(k):
        untrained = trained_factors is not None and k not in trained_factors
        return f"x{k}{' (untrained)' if untrained else ''}"

    header = ["method"] + [f"{label(k)} {m}" for k in factors for m in ("PSNR (dB)", "SSIM")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, by_factor in results.items():
        cells = [f"{by_factor[k][0]:.2f} | {by_factor[k][1]:.4f}" for k in factors]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sr_table(
    images: str | pathlib.Path,
    factors=(2, 4),
    crop: int = 512,
    *,
    upscale: Upscale | None = None,
    model_note: str | None = None,
    trained_factors: tuple[int, ...] | None = None,
    limit: int | None = None,
) -> str:
    """The Markdown table (notes above it) of bicubic and, given `upscale`, the two PConv rows,
    on the centre crops of the images in `images`.

    Args:
      upscale: the model (see `Upscale`), or None for the bicubic row only.
      model_note: a sentence about the model (checkpoint, step, training) for the notes.
      trained_factors: the factors the model was trained for; others are marked "untrained".
    Raises UserError: a factor < 2 or not dividing `crop`, no usable image.
    """
    bad = [k for k in factors if k < 2 or crop % k]
    if bad:
        raise UserError(f"factors {bad} must be >= 2 and divide the crop side {crop}")
    crops, skipped = load_crops(images, crop, limit)
    notes = [
        f"{len(crops)} images from {images}, centre crops {crop}x{crop}, low-res = "
        f"box mean rounded to 8 bits; PSNR/SSIM on RGB, whole image, averaged over images."
    ]
    if skipped:
        notes.append(f"Skipped (short side < {crop}): {', '.join(skipped)}.")
    if model_note:
        notes.append(f"{model_note}; device {jax.devices()[0].device_kind}.")
    start = time.time()
    results = evaluate(crops, factors, upscale)
    seconds = time.time() - start
    notes.append(f"Evaluated in {seconds:.0f} s.")
    return "\n".join(notes) + "\n\n" + to_markdown(results, factors, trained_factors)
