"""One inpainting edit: the mask operations and the canvas extension around an `Inpainter` call.

The thin wrapper that `pconv inpaint`, the REST API and the page share (through `fill`), so that
the order of the mask operations (`mask_ops`: invert, dilate, erode, extend, feather), the size
limit (`--max-side`), the known-pixel check and the no-hole shortcut are one piece of code each.
It takes 8-bit and 16-bit photos: a uint16 image runs through the network as float in [0, 1], and
its known pixels come back exactly as given, at 16 bits.

    result = edit.inpaint(inpainter, image, hole, ops=MaskOps(dilate=4, feather=8),
                          extend="0,0,25%,0")
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.inference.mask_ops import (
    Extension,
    MaskOps,
    apply_binary,
    dilate,
    extend_canvas,
    feather_weight,
    parse_extend,
)

NO_OPS = MaskOps()
# The default --max-side of `pconv inpaint` and `pconv serve`: memory grows with the pixel count
# (a 6000x4000 photo took 12.2 GB and 2 minutes on CPU in `pconv inpaint`, full strategy).
MAX_SIDE_PX = 4096


class TooLarge(UserError):
    """An image whose long side exceeds the --max-side limit (the REST API answers 413)."""


def check_side(height: int, width: int, max_side: int | None, what: str = "the image") -> None:
    """TooLarge naming the size and the limit when the long side exceeds `max_side` (None: no
    limit)."""
    if max_side is not None and max(height, width) > max_side:
        raise TooLarge(
            f"{what} is {width}x{height} px; at most {max_side} px on the long side are accepted "
            f"(--max-side; memory grows with the pixel count)"
        )


@dataclasses.dataclass
class Edit:
    """A photo and its hole after the mask operations, ready for the network.

    Attributes:
      image: uint8 or uint16 [H, W, 3], the photo on the (possibly extended) canvas, zeros in
        the new border.
      hole: bool [H, W], the hole after invert, dilate, erode and extend (True = fill here).
      net_hole: bool [H, W], the hole the network sees: `hole` grown by the feather width.
      weight: float64 [H, W] in [0, 1], the fill's share of each result pixel (1 on `hole`,
        0 outside `net_hole`).
    """

    image: np.ndarray
    hole: np.ndarray
    net_hole: np.ndarray
    weight: np.ndarray

    def network_input(self) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 [H,W,3] or float32 in [0,1], known bool [H,W]) for `Inpainter`."""
        image = self.image
        if image.dtype == np.uint16:
            image = image.astype(np.float32) / 65535.0
        return image, ~self.net_hole

    def finish(self, filled: np.ndarray) -> np.ndarray:
        """The result, dtype of `image`: the fill blended in with `weight`; exact where it is 0.

        Args:
          filled: what `Inpainter` returned for `network_input()`: uint8 [H,W,3], or float
            [H,W,3] in [0,1] for a uint16 image.
        """
        if self.image.dtype == np.uint16:
            scale = 65535.0
            filled = np.round(np.clip(filled, 0.0, 1.0) * scale).astype(np.uint16)
        else:
            scale = 255.0
        w = self.weight[..., None]
        blend = np.round(w * filled.astype(np.float64) + (1 - w) * self.image.astype(np.float64))
        blend = np.clip(blend, 0, scale).astype(self.image.dtype)
        return np.where(w > 0, blend, self.image)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype not in (np.uint8, np.uint16):
        raise UserError(
            f"expected a uint8 or uint16 RGB image [H,W,3], got {image.dtype} {image.shape}"
        )
    return image


def prepare(
    image: np.ndarray,
    hole: np.ndarray | None,
    ops: MaskOps = NO_OPS,
    extend: Extension | str | None = None,
    max_side: int | None = None,
) -> Edit:
    """Applies the mask operations in their order (`mask_ops` docstring) to one photo.

    Args:
      image: uint8 or uint16 RGB [H, W, 3].
      hole: bool [H, W] (True = hole), or None for no hole (e.g. only extending the canvas).
      ops: invert, dilate, erode, feather.
      extend: an `Extension`, or 'LEFT,TOP,RIGHT,BOTTOM' text in px or % (`parse_extend`).
      max_side: the longest side accepted, before and after `extend`, in px (None: any).

    Raises:
      UserError for a bad image or hole, or a hole that leaves no known pixel; TooLarge.
    """
    image = _check_image(image)
    size = image.shape[:2]
    check_side(size[0], size[1], max_side)
    hole = np.zeros(size, bool) if hole is None else np.asarray(hole, bool)
    if hole.shape != size:
        raise UserError(
            f"the hole is {hole.shape[0]}x{hole.shape[1]} (HxW) but the image {size[0]}x{size[1]}"
        )
    hole = apply_binary(hole, ops)
    if isinstance(extend, str):
        extend = parse_extend(extend, size)
    if extend:
        image, hole = extend_canvas(image, hole, extend)
        check_side(image.shape[0], image.shape[1], max_side, "the extended image")
    net_hole = dilate(hole, ops.feather)
    if net_hole.all():
        raise UserError(
            "no known pixel left to inpaint from (after the mask operations: is --invert meant, "
            "or the dilation too large?)"
        )
    weight = feather_weight(hole, ops.feather) if ops.feather else hole.astype(np.float64)
    return Edit(image, hole, net_hole, weight)


def run(inpainter, edits: list[Edit], strategy: str | None = None) -> list[np.ndarray]:
    """The results of several prepared edits: those with a hole filled in one `Inpainter` call
    (batched by shape bucket), those without returned unchanged (a copy, no network call)."""
    results = [e.image.copy() for e in edits]
    todo = [i for i, e in enumerate(edits) if e.net_hole.any()]
    if todo:
        inputs = [edits[i].network_input() for i in todo]
        filled = inpainter([x for x, _ in inputs], [k for _, k in inputs], strategy=strategy)
        for i, f in zip(todo, filled):
            results[i] = edits[i].finish(f)
    return results


def inpaint(
    inpainter,
    image: np.ndarray,
    hole: np.ndarray | None = None,
    *,
    ops: MaskOps = NO_OPS,
    extend: Extension | str | None = None,
    strategy: str | None = None,
    max_side: int | None = None,
) -> np.ndarray:
    """`Inpainter.__call__` with the mask operations: the result, dtype of `image`.

    Args as for `prepare`; `strategy` as for `Inpainter.__call__`. The result has the extended
    size; pixels outside the hole grown by the feather width are returned exactly as given (all
    of them when there is no hole: no network call). Files, bytes and hole sources: `fill`.
    """
    return run(inpainter, [prepare(image, hole, ops, extend, max_side)], strategy)[0]
