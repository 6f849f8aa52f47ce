"""Inference cost of the two large-image strategies, and what shape buckets save in compilations.

    python experiments/bench_inpaint.py [--num-layers 7] [--train-size 256] [--repeats 3]

The paper's 7-level U-Net (random He-initialised weights: only cost is measured, not quality)
on ../shared Kodak photos (768x512 and 512x768) with an NVIDIA test mask resized to each photo
(synthetic photo and mask when ../shared is absent). Rows: strategy full vs downscale, first
call (compile + run) and steady-state seconds per image; then the number of compilations for 24
crops of random sizes (200 px to the full photo) and the mean padding overhead.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax.inference.inpainter import Inpainter, bucket_side
from pconv_jax.nn.model import PConvUNet

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared/data"


def random_variables(model: PConvUNet, seed: int = 0) -> dict:
    """He-normal kernels and mild BN statistics drawn with numpy (fast on CPU)."""
    side = 2**model.num_layers
    shapes = jax.eval_shape(
        lambda: model.init(
            jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.ones((1, side, side, 1))
        )
    )
    rng = np.random.default_rng(seed)

    def draw(path, x):
        name = path[-1].key
        if name == "kernel":
            return rng.normal(0, np.sqrt(2 / np.prod(x.shape[:-1])), x.shape).astype(np.float32)
        if name in ("var", "scale"):
            return np.ones(x.shape, np.float32)
        return np.zeros(x.shape, np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def photos_and_masks() -> list[tuple[np.ndarray, np.ndarray]]:
    from PIL import Image

    kodak, masks = SHARED / "kodak", SHARED / "nvidia_test_masks"
    if not kodak.is_dir() or not masks.is_dir():
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (512, 768, 3), np.uint8)
        known = np.ones((512, 768), bool)
        known[100:300, 200:500] = False
        return [(image, known)]
    mask = Image.open(masks / "04000.png").convert("L")  # bucket (0.2, 0.3], white = hole
    pairs = []
    for name in ("01.png", "04.png"):  # 768x512 and 512x768
        image = np.asarray(Image.open(kodak / name).convert("RGB"))
        resized = np.asarray(mask.resize(image.shape[1::-1], Image.Resampling.NEAREST))
        pairs.append((image, resized < 128))
    return pairs


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-layers", type=int, default=7)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = PConvUNet(num_layers=args.num_layers)
    variables = random_variables(model)
    pairs = photos_and_masks()
    print(f"devices: {jax.devices()}; photos: {[p[0].shape[:2] for p in pairs]}")
    print(f"{'strategy':<10} {'first call s':>13} {'s / image':>10}")
    for strategy in ("full", "downscale"):
        inpainter = Inpainter.from_model(
            model, variables, train_size=args.train_size, strategy=strategy
        )
        first = sum(timed(inpainter, *p) for p in pairs) / len(pairs)
        steady = [timed(inpainter, *p) for _ in range(args.repeats) for p in pairs]
        print(f"{strategy:<10} {first:>13.2f} {np.median(steady):>10.2f}")

    rng = np.random.default_rng(1)
    crops = []
    for i in range(24):
        image, known = pairs[i % len(pairs)]
        h, w = rng.integers(200, image.shape[0] + 1), rng.integers(200, image.shape[1] + 1)
        crops.append((image[:h, :w], known[:h, :w]))
    inpainter = Inpainter.from_model(model, variables)
    for image, known in crops:
        inpainter(image, known)
    step = inpainter.bucket_step
    padded = [bucket_side(i.shape[0], step) * bucket_side(i.shape[1], step) for i, _ in crops]
    ratio = np.mean([p / np.prod(i.shape[:2]) for p, (i, _) in zip(padded, crops)])
    sizes = len({i.shape[:2] for i, _ in crops})
    print(
        f"\n{sizes} image sizes -> {inpainter.num_compilations} compilations (bucket_step {step})"
    )
    print(f"mean padded / image pixels: {ratio:.2f}")


if __name__ == "__main__":
    main()
