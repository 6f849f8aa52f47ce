"""Super-resolution as inpainting (paper Sec. 5.2): offset the low-res pixels, holes in between.

Paper: "given a low resolution image I with height H and width W and up-scaling factor K, we
construct the input I' with height K*H and width K*W for the network using the following: for
each pixel (x, y) in I, we put it at (K*x + floor(K/2), K*y + floor(K/2)) in I' and mark this
position to have mask value be 1." (The symbols are lost in ../shared/PAPER.txt; the offset
floor(K/2) is the published text.) So each low-res pixel sits at offset (K//2, K//2) of its KxK
cell: the cell centre for odd K, the pixel just below-right of the centre for even K. Every other
canvas pixel is a hole (mask 0, value 0).

For training, the low-res image comes from a high-res crop by box (area) averaging over the KxK
cells, `downsample_box`.

Inference (`upscale`): canvas -> the trained U-Net (an `Inpainter`, at full resolution, any
size) -> a K-times larger image in which, by default, the low-res pixels come back exactly at
their canvas positions. What that implies: the "known" value placed at (K*i + K//2, K*j + K//2)
is the mean of the KxK cell, not the high-res pixel there. It is a blurred value, and for even K
(the trained 2 and 4) it is also off-centre: the cell's mean belongs to its centre
(K*i + (K-1)/2), half a high-res pixel up-left of where the paper puts it. In training the
loss composites with the true high-res pixels (`image`), never with the cell means, and its
valid term pulls the raw output at those positions towards the true pixel: the network learns
to predict the real pixel there, and only inference's composite replaces that prediction by the
cell mean. On the 24 Kodak 512x512 centre crops (8-bit box-downsampled low-res), the cell means
kept at those positions score 27.96 dB PSNR there at K=2, where bicubic's estimate of the same
pixels scores 28.90 dB (K=4: 26.25 vs 26.28 dB). `upscale(..., keep_low_res=False)` returns the
network's output everywhere instead; pconv_jax/eval/superres.py reports both.

The bicubic baseline (`bicubic_upscale`) is Pillow's: Keys' cubic with a = -0.5 (MATLAB's
`imresize` kernel, the usual "bicubic" of super-resolution tables) and the pixel-centre
convention, in which low-res pixel i covers high-res [K*i, K*i + K) and sits at its centre
K*i + (K-1)/2: the alignment of box downsampling, so the baseline is not shifted.
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np

from pconv_jax.data.sr_canvas import make_sr_canvas
from pconv_jax.errors import UserError
from pconv_jax.inference.inpainter import Inpainter
from pconv_jax.store import trained


class UntrainedFactorWarning(UserWarning):
    """Upscaling by a factor the checkpoint was not trained on (not in data.sr_factors)."""


def check_trained_for(cfg, factor: int, *, force: bool = False) -> None:
    """Checks that a run's config trained a super-resolution model for `factor`.

    Args:
      cfg: the run's `Config` (config.json of the run, or the export's).
      factor: the upscaling factor K asked for.
      force: accept a model trained for another task (inpainting) without error.
    Raises:
      ValueError: cfg.data.task is not 'superres' and not `force`.
    Warns:
      UntrainedFactorWarning: a super-resolution model not trained on `factor`.
    """
    if cfg.data.task != "superres":
        if not force:
            raise UserError(
                f"this checkpoint was trained for data.task={cfg.data.task!r}, not 'superres': "
                f"an inpainting model fills the canvas's regular grid of holes poorly. Train "
                f"with experiments/configs/superres_256.py, or pass --force (force=True) to run "
                f"it anyway"
            )
        return
    if factor not in cfg.data.sr_factors:
        warnings.warn(
            f"factor {factor} is not one the model was trained on (data.sr_factors="
            f"{tuple(cfg.data.sr_factors)}): expect a worse result",
            UntrainedFactorWarning,
            stacklevel=2,
        )


def load_upscaler(
    checkpoint: str | pathlib.Path,
    step: int | None = None,
    *,
    batch_size: int | None = None,
    dtype=None,
):
    """An `Inpainter` for a super-resolution run directory or `pconv export` .npz file.

    Like `pconv inpaint`, a file is read as an export and a folder as a run directory. Does not
    check the task: call `check_trained_for(cfg, factor)`.

    Args:
      checkpoint: `pconv train` run directory, or an exported .npz.
      step: checkpoint step (run directories only; default the latest).
      batch_size: images per forward pass (default one per device).
      dtype: compute dtype (None = float32).
    Returns:
      (Inpainter with strategy 'full', the run's Config, the step of the weights).
    """
    model = trained.load(checkpoint, step, dtype)
    # 'full' only: 'downscale' would average the sparse grid away (no wholly-known pixel left).
    inpainter = Inpainter.from_trained(model, batch_size=batch_size, strategy="full")
    return inpainter, model.config, model.step


def _check_low_res(index: int, low_res) -> np.ndarray:
    low_res = np.asarray(low_res)
    if low_res.ndim != 3 or low_res.shape[-1] != 3:
        raise UserError(f"low-res image {index}: expected [h, w, 3] RGB, got shape {low_res.shape}")
    if low_res.dtype != np.uint8 and not np.issubdtype(low_res.dtype, np.floating):
        raise UserError(f"low-res image {index}: expected uint8 or float, got {low_res.dtype}")
    return low_res


def upscale(inpainter, low_res, factor: int, *, keep_low_res: bool = True):
    """Super-resolves images with a PConv U-Net trained on SR canvases (paper Sec. 5.2).

    Each low-res image becomes a canvas `make_sr_canvas(low_res, factor)` (paper offset
    (K//2, K//2)), which the inpainter fills at full resolution (padded to its shape bucket with
    the padding marked as hole, so any size works; memory grows with the K*h x K*w output).

    Args:
      inpainter: an `Inpainter` of a super-resolution model (`load_upscaler`).
      low_res: uint8 [h, w, 3], or float [h, w, 3] in [0, 1]; or a list of such (sizes may
        differ), batched by the inpainter.
      factor: K >= 2, ideally one of the model's data.sr_factors (see `check_trained_for`).
      keep_low_res: True (paper, default): the low-res pixels are returned exactly, bit for bit,
        at (K*i + K//2, K*j + K//2); False: the network's prediction there instead (see the
        module docstring for why it can be the better estimate).
    Returns:
      [K*h, K*w, 3] of the input's dtype (uint8, or float clipped to [0, 1]); a list for a list.
    Raises:
      ValueError: a factor below 2, a bad shape, dtype or value range.
    """
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 2:
        raise UserError(f"the upscaling factor must be an integer >= 2, got {factor!r}")
    single = not isinstance(low_res, list | tuple)
    images = [low_res] if single else list(low_res)
    canvases, masks = [], []
    for index, image in enumerate(images):
        canvas, mask = make_sr_canvas(_check_low_res(index, image), int(factor))
        canvases.append(canvas)
        masks.append(mask)
    outputs = inpainter(canvases, masks, strategy="full", composite=keep_low_res)
    return outputs[0] if single else outputs
