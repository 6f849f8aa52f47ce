"""The (image, mask) pairs of an evaluation: from their sources under a protocol, or from a
folder exported by `pconv evaluate --export-pairs`; and that export.

Protocols:
- "paper": a fixed test-mask set (NVIDIA's or `pconv make-test-masks`), nearest-resized, paired
  without replacement and stratified over the 12 cells (`masks.protocol.pair_masks`);
- "lama-thin", "lama-medium", "lama-thick": pair i gets mask i of LaMa's generator at the
  evaluation size (`masks.lama`, 256 or 512 px), a pure function of (seed, i).

An exported folder holds, per pair NAME (its index, 6 digits): images/NAME.png (the ground truth
at the evaluation size, uint8 RGB: also what a tool is given, with the hole: a tool must not use
the hole's pixels, so black them out first when it reads them, as our baselines do; OpenCV's
cv2.inpaint does read them), masks/NAME.png (8-bit, white = hole) and pairs.json {"settings":
what fixes the pairs, "pairs": {NAME: {image, image_index, mask, bucket, border, hole_ratio,
border_distance}}}.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import pathlib
from collections.abc import Callable

import numpy as np

from pconv_jax import atomic
from pconv_jax.data import eval_set
from pconv_jax.errors import UserError
from pconv_jax.images import read_image, read_mask, save_png, to_model_mask, write_holes
from pconv_jax.masks import lama
from pconv_jax.masks.protocol import MaskRecord, Pair, border_distance, load_mask_set, pair_masks

PROTOCOLS = ("paper",) + tuple(f"lama-{kind}" for kind in lama.KINDS)
MODEL_METHODS = ("pconv", "conv")  # the methods that run a checkpoint
METHODS = MODEL_METHODS + ("patchmatch", "telea", "ns")
KNOWN = ("composited", "raw")  # how the known pixels of a fill are scored
PAIRS_JSON = "pairs.json"


@dataclasses.dataclass(frozen=True)
class Plan:
    """pairs (by index); names: image names by Pair.image_index; settings: what fixes the
    pairs; load(pair) -> (truth uint8 [S, S, 3], mask float32 [S, S, 1] with 1 = known)."""

    pairs: list[Pair]
    names: list[str]
    settings: dict
    load: Callable[[Pair], tuple[np.ndarray, np.ndarray]]


def pair_name(pair: Pair) -> str:
    return f"{pair.index:06d}"


def resolved_path(path) -> str | None:
    """The absolute form of `path` for settings.json (None or "" stay as they are)."""
    return path and str(pathlib.Path(path).resolve())


def _lama_records(kind, size, seed, count, num_workers) -> list[MaskRecord]:
    """Records of LaMa masks 0..count-1 (path "", bucket and border None: not the paper's)."""

    def record(index: int) -> MaskRecord:
        holes = lama.lama_holes(seed, index, kind, size)
        ratio, distance = float(holes.mean()), border_distance(holes)
        return MaskRecord("", f"lama-{kind}-{index:06d}", None, None, ratio, distance)

    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        return list(pool.map(record, range(count)))


def from_sources(
    images: str,
    mask_dir: str | None,
    *,
    protocol: str = "paper",
    size: int = 256,
    seed: int = 0,
    split: str | None = None,
    limit: int | None = None,
    masks_per_image: int = 1,
    num_workers: int = 4,
) -> Plan:
    """The pairs of `images` under `protocol` (arguments as `pconv evaluate`)."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if size < 11 or (limit is not None and limit < 1):
        raise UserError(f"need size >= 11 (SSIM's window) and limit >= 1, got {size}, {limit}")
    if (protocol == "paper") != (mask_dir is not None):
        raise UserError(
            "--masks (a test-mask folder) is needed by --protocol paper and not allowed with "
            f"the generated LaMa masks of --protocol {protocol}"
        )
    source = eval_set.eval_images(images, size, split=split, limit=limit)
    names = [source.name(i) for i in range(len(source))]
    if protocol == "paper":
        assert mask_dir is not None  # checked above
        records = load_mask_set(mask_dir)
        pairs = pair_masks(len(names), records, seed, masks_per_image)

        def load_mask(pair):
            return read_mask(pair.mask.path, size)
    else:
        kind = protocol.split("-", 1)[1]
        lama.get_preset(kind, size)  # a UserError for sizes other than 256 and 512
        if masks_per_image < 1:
            raise UserError(f"need >= 1 mask per image, got {masks_per_image}")
        records = _lama_records(kind, size, seed, len(names) * masks_per_image, num_workers)
        pairs = [Pair(i, i // masks_per_image, r) for i, r in enumerate(records)]

        def load_mask(pair):
            return to_model_mask(lama.lama_holes(seed, pair.index, kind, size))

    is_tfds, is_folder = images.startswith("tfds:"), images != "skimage"
    settings = {
        "protocol": protocol,
        "images": resolved_path(images) if is_folder and not is_tfds else images,
        "split": (split or "validation") if is_tfds else None,
        "limit": limit,
        "num_images": len(names),
        "masks": resolved_path(mask_dir) if protocol == "paper" else f"generated ({protocol})",
        "num_masks": len(records),
        "size": size,
        "seed": seed,
        "masks_per_image": masks_per_image,
    }
    return Plan(pairs, names, settings, lambda p: (source.load(p.image_index), load_mask(p)))


def from_export(pairs_dir: str | os.PathLike) -> Plan:
    """The pairs of a folder written by `export`."""
    root = pathlib.Path(pairs_dir)
    if not (root / PAIRS_JSON).is_file():
        raise UserError(f"{root} has no {PAIRS_JSON}: not a folder of `--export-pairs`")
    exported = json.loads((root / PAIRS_JSON).read_text(encoding="utf-8"))
    settings, listed = exported["settings"], exported["pairs"]
    size = settings["size"]
    names = [""] * settings["num_images"]
    pairs = []
    for name in sorted(listed):
        entry = listed[name]
        names[entry["image_index"]] = entry["image"]
        record = MaskRecord(
            str(root / "masks" / f"{name}.png"),
            entry["mask"],
            entry["bucket"],
            entry["border"],
            entry["hole_ratio"],
            entry["border_distance"],
        )
        pairs.append(Pair(int(name), entry["image_index"], record))
    if [p.index for p in pairs] != list(range(len(pairs))):
        raise UserError(f"{root / PAIRS_JSON}: pair names are not 000000 ... {len(pairs) - 1:06d}")

    def load(pair: Pair):
        truth = read_image(root / "images" / f"{pair_name(pair)}.png")
        if truth.shape != (size, size, 3):
            raise UserError(f"{root}/images/{pair_name(pair)}.png is not {size}x{size} RGB")
        return truth, read_mask(pair.mask.path, size)

    return Plan(pairs, names, settings, load)


def rebuild(settings: dict) -> Plan:
    """The plan of an evaluation, from its settings.json (for figures of its pairs)."""
    if settings.get("pairs_dir"):
        return from_export(settings["pairs_dir"])
    protocol = settings.get("protocol", "paper")
    return from_sources(
        settings["images"],
        settings["masks"] if protocol == "paper" else None,
        protocol=protocol,
        size=settings["size"],
        seed=settings["seed"],
        split=settings["split"],
        limit=settings["limit"],
        masks_per_image=settings["masks_per_image"],
    )


def export(plan: Plan, out_dir: str | os.PathLike, num_workers: int = 4) -> pathlib.Path:
    """Writes the plan's pairs as files (see the module docstring) into a new or empty folder."""
    out = pathlib.Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; --export-pairs writes into a new folder")

    def write(pair: Pair) -> dict:
        truth, mask = plan.load(pair)
        save_png(truth, out / "images" / f"{pair_name(pair)}.png")
        write_holes(out / "masks" / f"{pair_name(pair)}.png", mask[..., 0] == 0)
        return {
            "image": plan.names[pair.image_index],
            "image_index": pair.image_index,
            "mask": pair.mask.name,
            "bucket": pair.mask.bucket,
            "border": pair.mask.border,
            "hole_ratio": float(1.0 - mask.mean()),  # at the evaluation size
            "border_distance": pair.mask.border_distance,
        }

    (out / "masks").mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        entries = list(pool.map(write, plan.pairs))
    listed = {pair_name(p): e for p, e in zip(plan.pairs, entries)}
    text = json.dumps({"settings": plan.settings, "pairs": listed}, indent=1, sort_keys=True)
    atomic.write_text(out / PAIRS_JSON, text + "\n")
    return out
