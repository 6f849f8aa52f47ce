"""Packs the shared photos and test masks into a compact folder that travels to a lent GPU machine.

    python experiments/pack_gpu_data.py ../shared .gpu_data

Writes (all under the ignored folder OUT):
  imagenet_train/  the ImageNet sample minus the held-out images, short side resized to 272 px,
                   JPEG quality 85 (the training pipeline crops 256 px from it)
  imagenet_eval/   the held-out images (every 8th file by sorted name: 100 of 800), untouched
  kodak512/        the 24 Kodak photos, centre-cropped to 512x512, PNG (lossless)
  nvidia_test_masks/  the 3000 NVIDIA test masks, untouched
The split is the same function locally (`heldout_split`), so CPU baselines score the same images.
"""

import pathlib
import shutil
import sys

from PIL import Image


def heldout_split(names: list[str]) -> tuple[list[str], list[str]]:
    """(train, eval): every 8th name (sorted) is held out for evaluation."""
    names = sorted(names)
    return [n for i, n in enumerate(names) if i % 8], names[::8]


def main(shared: str, out: str) -> None:
    shared, out = pathlib.Path(shared), pathlib.Path(out)
    photos = sorted(p.name for p in (shared / "data" / "imagenet_sample").iterdir())
    train, held = heldout_split(photos)
    for sub in ("imagenet_train", "imagenet_eval", "kodak512"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for name in train:
        image = Image.open(shared / "data" / "imagenet_sample" / name).convert("RGB")
        scale = 272 / min(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        image.resize(size, Image.BICUBIC).save(
            out / "imagenet_train" / (pathlib.Path(name).stem + ".jpg"), quality=85
        )
    for name in held:
        shutil.copy(shared / "data" / "imagenet_sample" / name, out / "imagenet_eval" / name)
    for path in sorted((shared / "data" / "kodak").glob("*.png")):
        image = Image.open(path).convert("RGB")
        left, top = (image.width - 512) // 2, (image.height - 512) // 2
        image.crop((left, top, left + 512, top + 512)).save(out / "kodak512" / path.name)
    masks = out / "nvidia_test_masks"
    if not masks.exists():
        shutil.copytree(shared / "data" / "nvidia_test_masks", masks)
    print(f"{len(train)} train, {len(held)} held-out ImageNet photos; Kodak and masks in {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
