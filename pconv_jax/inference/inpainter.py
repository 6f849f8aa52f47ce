"""Inference on images of any size: pad to a shape bucket (padding = hole), run, crop, composite.

The U-Net needs H and W divisible by 2**num_layers. Each image is zero-padded at the bottom and
right to its *shape bucket*, with the padding marked as hole (mask 0), so the partial convolutions
ignore it; the output is cropped back and composited: known pixels are returned exactly as given
(bit for bit for uint8 input), only hole pixels come from the network.

Shape buckets, so that a new image size rarely means a new compilation: each side is rounded up
to a multiple of `bucket_step` (default max(2**num_layers, 64)); beyond 8 steps it is rounded up
further, to 8 sizes per doubling (bucket_side below), so the padding stays under 12.5% per side
and the number of distinct buckets grows with the logarithm of the image size. The batch is
padded to the backend's batch unit (the device count for JAX) times a power of two (at most
`batch_size`). One compilation per (batch, bucket height, bucket width).

The `Inpainter` owns all of this pre- and post-processing; the network itself is a forward
backend it calls on the padded batch: `jax_forward.JaxForward` (jitted, split over a 1-D `data`
mesh of the local devices) or `onnx_runtime.OnnxForward` (onnxruntime, no JAX).
"""

from __future__ import annotations

import dataclasses
import pathlib
import warnings

import numpy as np
from PIL import Image

from pconv_jax.errors import UserError
from pconv_jax.images import to_uint8
from pconv_jax.inference.crop_strategy import STRATEGIES, crop_inpaint
from pconv_jax.inference.jax_forward import JaxForward
from pconv_jax.inference.load import load_forward
from pconv_jax.inference.onnx_runtime import OnnxForward
from pconv_jax.store import trained


class NoHoleWarning(UserWarning):
    """A mask without hole pixels: the image is returned unchanged."""


def bucket_side(side: int, step: int) -> int:
    """The padded length of an image side: a multiple of `step`, 8 bucket sizes per doubling.

    Example with step=64: 1..64 -> 64, 65 -> 128, 512 -> 512, 513 -> 576, 1025 -> 1152.
    """
    units = -(-side // step)
    if units > 8:
        granularity = 2 ** (units.bit_length() - 4)  # units in [8g, 16g)
        units = -(-units // granularity) * granularity
    return units * step


@dataclasses.dataclass
class _Item:
    index: int
    image: np.ndarray  # as given: uint8 or float [H,W,3]
    known: np.ndarray  # bool [H,W]
    # Set by Inpainter._prepare: the network's input, float32 [h,w,3] in [0,1] with holes zeroed,
    # and its known pixels, bool [h,w].
    net_image: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 3)))
    net_known: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), bool))


class Inpainter:
    """Fills the holes of images of any size with a trained PConvUNet (JAX or ONNX backend).

    Strategies for images larger than the training resolution (`strategy=`):

    - `'full'`: run at the image's own resolution. Fills keep the image's detail, but cost
      memory and time in proportion to the pixel count, and a hole much larger than the holes
      seen in training (relative to the receptive field) gets a flatter, blurrier fill.
    - `'downscale'`: shrink the image so its longer side is `train_size` (a low-resolution pixel
      counts as known only if all of its footprint is known), run there, upsample the result
      (bicubic) and use it only inside the holes. Bounded memory and holes at the scale the
      model was trained on, but the fill is as blurry as the upsampling; known pixels are still
      returned exactly. Images not larger than `train_size` run at full resolution either way.
    - `'crop'`: each group of holes is filled on a square crop around it, run at `train_size`
      (native resolution for holes up to `train_size / 2`), and pasted back; groups too large
      for a crop fall back to `'downscale'` (the rule: `crop_strategy`).
    """

    def __init__(
        self,
        forward: JaxForward | OnnxForward,
        *,
        train_size: int | None = None,
        bucket_step: int | None = None,
        batch_size: int | None = None,
        strategy: str = "full",
    ):
        """An Inpainter around a forward backend; `load`, `from_trained` and `from_model` build one.

        Args:
          forward: `jax_forward.JaxForward` or `onnx_runtime.OnnxForward`: the network on a
            padded batch.
          train_size: training resolution in pixels, used by strategies 'downscale' and 'crop'.
          bucket_step: padded sides are multiples of this (a multiple of `2**num_layers`;
            default `max(2**num_layers, 64)`).
          batch_size: images per forward pass, a multiple of `forward.batch_unit` (the device
            count for JAX; default one pass per unit).
          strategy: 'full', 'downscale' or 'crop' (see the class docstring); callers may
            override it.
        """
        self.forward = forward
        self.multiple = 2**forward.num_layers
        self.bucket_step = bucket_step or max(self.multiple, 64)
        if self.bucket_step % self.multiple:
            raise UserError(
                f"bucket_step={self.bucket_step} is not a multiple of 2**num_layers={self.multiple}"
            )
        self.batch_unit = forward.batch_unit
        self.batch_size = batch_size or self.batch_unit
        if self.batch_size % self.batch_unit:
            raise UserError(
                f"batch_size={self.batch_size} is not a multiple of {self.batch_unit} "
                "(the devices a pass is split over)"
            )
        self.train_size = train_size
        self.strategy = _check_strategy(strategy, train_size)

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path,
        step: int | None = None,
        dtype=None,
        *,
        devices=None,
        providers: list[str] | None = None,
        **kw,
    ):
        """Any trained model: a run directory (`step`, default the latest), a .npz export (`pconv
        export`, `pconv convert`), or an .onnx export (run by onnxruntime, no JAX).

        `dtype` and `devices` apply to JAX models, `providers` to .onnx; `train_size` defaults to
        the model's training resolution; other keywords as for `__init__`.
        """
        loaded = load_forward(path, step, dtype, devices=devices, providers=providers)
        kw = {"train_size": loaded.config.data.image_size, **kw}
        return cls(loaded.forward, **kw)

    @classmethod
    def from_trained(cls, model: trained.TrainedModel, *, devices=None, **kw):
        """An Inpainter for a loaded `store.trained.TrainedModel` (train_size from its config)."""
        kw = {"train_size": model.config.data.image_size, **kw}
        return cls.from_model(model.model, model.variables, devices=devices, **kw)

    @classmethod
    def from_model(cls, model, variables: dict, *, devices=None, **kw):
        """An Inpainter for a PConvUNet and its {'params', 'batch_stats'} (JAX backend)."""
        return cls(JaxForward(model, variables, devices), **kw)

    @property
    def num_compilations(self) -> int:
        """Distinct (batch, height, width) shapes the backend compiled or planned so far."""
        return self.forward.num_compilations

    def __call__(self, images, masks, *, strategy: str | None = None, composite: bool = True):
        """Inpaints one image or a batch.

        Args:
          images: uint8 [H,W,3], or float [H,W,3] with known pixels in [0,1] (hole pixels may
            hold anything, NaN included); or a list of such (sizes may differ), or an array
            [N,H,W,3].
          masks: matching [H,W] or [H,W,1] (list, or [N,H,W(,1)] array), bool or 0/1 numbers,
            1 = known, 0 = hole.
          strategy: 'full', 'downscale' or 'crop' for this call (default: the Inpainter's).
          composite: True (default): known pixels are returned as given. False: the network's
            output everywhere, known pixels included (strategy 'full' only; a mask without hole
            is run too). Super-resolution uses it, where the known value is not the truth.
        Returns:
          The same kind as `images` (array or list, same dtype and size): known pixels as given,
          holes filled (clipped to [0,1] or rounded to uint8).
        Raises:
          ValueError: bad shapes or dtypes, non-binary masks, a mask with no known pixel.
        Warns:
          NoHoleWarning: a mask without hole; that image is returned unchanged.
        """
        strategy = _check_strategy(strategy or self.strategy, self.train_size)
        if not composite and strategy != "full":
            raise UserError(f"composite=False needs strategy='full', got {strategy!r}")
        single = not isinstance(images, list | tuple) and np.ndim(images) == 3
        if single:
            images, masks = [images], [masks]
        if len(images) != len(masks):
            raise UserError(f"got {len(images)} images but {len(masks)} masks")
        items = [_validate(i, img, m) for i, (img, m) in enumerate(zip(images, masks))]
        results: list[np.ndarray | None] = [None] * len(items)
        buckets: dict[tuple[int, int], list[_Item]] = {}
        for item in items:
            if composite and item.known.all():
                warnings.warn(
                    f"image {item.index}: the mask has no hole; the image is returned unchanged",
                    NoHoleWarning,
                    stacklevel=2,
                )
                results[item.index] = item.image.copy()
                continue
            if strategy == "crop" and max(item.known.shape) > self.train_size:
                results[item.index] = crop_inpaint(self, item.image, item.known)
                continue
            self._prepare(item, strategy)
            h, w = item.net_known.shape
            key = (bucket_side(h, self.bucket_step), bucket_side(w, self.bucket_step))
            buckets.setdefault(key, []).append(item)
        for shape, group in buckets.items():
            for start in range(0, len(group), self.batch_size):
                chunk = group[start : start + self.batch_size]
                for item, output in zip(chunk, self._run(chunk, shape)):
                    results[item.index] = (
                        _composite(item, output) if composite else _network_output(item, output)
                    )
        filled = [r for r in results if r is not None]
        assert len(filled) == len(results)  # every image took one of the paths above
        if single:
            return filled[0]
        return filled if isinstance(images, list | tuple) else np.stack(filled)

    def _prepare(self, item: _Item, strategy: str) -> None:
        image = item.image.astype(np.float32) / (255.0 if item.image.dtype == np.uint8 else 1.0)
        image = np.where(item.known[..., None], image, 0.0).astype(np.float32)
        height, width = item.known.shape
        if strategy == "downscale" and max(height, width) > self.train_size:
            scale = self.train_size / max(height, width)
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            item.net_image, item.net_known = downscale_known(image, item.known, size)
            if not item.net_known.any():
                raise UserError(
                    f"image {item.index}: at {size[0]}x{size[1]} (strategy='downscale') no pixel "
                    f"is entirely known; use strategy='full'"
                )
        else:
            item.net_image, item.net_known = image, item.known

    def _run(self, chunk: list[_Item], shape: tuple[int, int]) -> list[np.ndarray]:
        padded = self.batch_unit
        while padded < len(chunk):
            padded *= 2
        padded = min(padded, self.batch_size)
        image = np.zeros((padded, *shape, 3), np.float32)
        mask = np.zeros((padded, *shape, 1), np.float32)  # padding rows: all hole, output unused
        for j, item in enumerate(chunk):
            h, w = item.net_known.shape
            image[j, :h, :w] = item.net_image
            mask[j, :h, :w, 0] = item.net_known
        output = self.forward(image, mask)
        return [
            output[j, : it.net_known.shape[0], : it.net_known.shape[1]]
            for j, it in enumerate(chunk)
        ]


def _check_strategy(strategy: str, train_size: int | None) -> str:
    if strategy not in STRATEGIES:
        raise UserError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy in ("downscale", "crop") and not train_size:
        raise UserError(f"strategy={strategy!r} needs train_size (the model's training resolution)")
    return strategy


def _validate(index: int, image, mask) -> _Item:
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise UserError(f"image {index}: expected [H,W,3] RGB, got shape {image.shape}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise UserError(f"image {index}: expected uint8 or float values, got dtype {image.dtype}")
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise UserError(f"mask {index}: expected [H,W] or [H,W,1], got shape {mask.shape}")
    if mask.shape != image.shape[:2]:
        raise UserError(
            f"image {index} is {image.shape[0]}x{image.shape[1]} (HxW) but its mask is "
            f"{mask.shape[0]}x{mask.shape[1]}"
        )
    if mask.dtype != bool:
        binary = (mask == 0) | (mask == 1)
        if not binary.all():
            bad = np.unique(mask[~binary])[:5].tolist()
            raise UserError(
                f"mask {index} must hold only 0 (hole) and 1 (known); found values {bad}. "
                f"Binarise it first, e.g. mask > 0.5"
            )
        mask = mask == 1
    if not mask.any():
        raise UserError(
            f"mask {index} has no known pixel (all zeros, 0 = hole): nothing to inpaint from. "
            f"Is the polarity inverted?"
        )
    if image.dtype != np.uint8:
        known_values = image[mask]
        lo, hi = float(known_values.min()), float(known_values.max())
        if not (np.isfinite(lo + hi) and lo >= 0.0 and hi <= 1.0):
            raise UserError(
                f"image {index}: float known pixels must be finite and in [0,1]; got min {lo}, "
                f"max {hi} (pass uint8 for 0..255 values)"
            )
    return _Item(index, image, mask)


def _resize(channel_HxW: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """float32 [H,W] -> [h,w] with PIL (mode 'F': no quantisation)."""
    pil = Image.fromarray(np.ascontiguousarray(channel_HxW, np.float32))
    return np.asarray(pil.resize((size[1], size[0]), resample), np.float32)


def downscale_known(image_HxWx3: np.ndarray, known_HxW: np.ndarray, size: tuple[int, int]):
    """Area-downscales an image and its mask so that only wholly-known pixels count as known.

    Args:
      image_HxWx3: float32 [H,W,3] in [0,1] (hole values are ignored).
      known_HxW: bool [H,W], True = known.
      size: (h, w) target size.
    Returns:
      (image float32 [h,w,3], averaged over the known part of each footprint, 0 in holes;
       known bool [h,w], True where the whole footprint is known).
    """
    weight = known_HxW.astype(np.float32)
    coverage = _resize(weight, size, Image.Resampling.BOX)
    # Float32 box sums of ones can land a few ulps under 1.
    known = coverage > 1.0 - 1e-4
    channels = [_resize(image_HxWx3[..., c] * weight, size, Image.Resampling.BOX) for c in range(3)]
    safe = np.where(known, coverage, 1.0)
    image = np.stack([np.where(known, ch / safe, 0.0) for ch in channels], axis=-1)
    return image.astype(np.float32), known


def _network_output(item: _Item, output: np.ndarray) -> np.ndarray:
    """The clipped network output at full resolution in the input's dtype, nothing kept."""
    fill = np.clip(output, 0.0, 1.0)
    return to_uint8(fill) if item.image.dtype == np.uint8 else fill.astype(item.image.dtype)


def _composite(item: _Item, output: np.ndarray) -> np.ndarray:
    fill = np.clip(output, 0.0, 1.0)
    height, width = item.known.shape
    if fill.shape[:2] != (height, width):
        # strategy='downscale': composite at low resolution first, so that the upsampled fill
        # blends into the real surroundings at the hole border, then upsample.
        fill = np.where(item.net_known[..., None], item.net_image, fill)
        fill = np.stack(
            [_resize(fill[..., c], (height, width), Image.Resampling.BICUBIC) for c in range(3)],
            axis=-1,
        )
        fill = np.clip(fill, 0.0, 1.0)
    fill = to_uint8(fill) if item.image.dtype == np.uint8 else fill.astype(item.image.dtype)
    return np.where(item.known[..., None], item.image, fill)
