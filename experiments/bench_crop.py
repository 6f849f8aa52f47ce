"""Time and peak memory of strategies full, downscale and crop on 12-megapixel-class photos.

    python experiments/bench_crop.py [--num-layers 7] [--train-size 256]

Two Kodak photos (01, 23; 768x512) upscaled x4 (bicubic) to 3072x2048, each with two hole
patterns: "small", 8 ellipses of 40-120 px (removing blemishes and small objects), and "large",
the NVIDIA test mask 04000 (20-30% hole, strokes 100+ px wide at this size) resized to the photo.
The paper's 7-level U-Net with random He-initialised weights (cost only, not quality).

Each strategy runs in its own subprocess so that its peak resident memory (ru_maxrss) is its
own: one warm-up call on the first image (compilations), then every image once. Reported: the
median process CPU time and wall time per image, and the peak RSS of the process, minus the RSS
after loading the model and photos (the strategy's own peak). Synthetic photos when ../shared is
absent.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import time

import cv2
import jax
import numpy as np
from bench_inpaint import random_variables
from PIL import Image

from pconv_jax.inference.inpainter import Inpainter
from pconv_jax.nn.model import PConvUNet

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared/data"
STRATEGIES = ("full", "downscale", "crop")


def cases(scale: int = 4) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 [H,W,3], known bool [H,W]) for each photo and hole pattern."""
    kodak, masks = SHARED / "kodak", SHARED / "nvidia_test_masks"
    if kodak.is_dir():
        photos = [Image.open(kodak / f"{i:02d}.png").convert("RGB") for i in (1, 23)]
    else:
        rng = np.random.default_rng(0)
        photos = [Image.fromarray(rng.integers(0, 256, (512, 768, 3), np.uint8))] * 2
    out = []
    for index, photo in enumerate(photos):
        big = photo.resize((photo.width * scale, photo.height * scale), Image.Resampling.BICUBIC)
        image = np.asarray(big)
        height, width = image.shape[:2]
        hole = np.zeros((height, width), np.uint8)
        rng = np.random.default_rng(index)
        for _ in range(8):
            centre = (int(rng.integers(200, width - 200)), int(rng.integers(200, height - 200)))
            axes = (int(rng.integers(20, 61)), int(rng.integers(20, 61)))
            cv2.ellipse(hole, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        out.append((f"kodak{index}_small", image, hole == 0))
        if masks.is_dir():
            mask = Image.open(masks / "04000.png").convert("L")
            white = np.asarray(mask.resize((width, height), Image.Resampling.NEAREST)) > 127
        else:
            white = np.zeros((height, width), bool)
            white[height // 4 : height // 2, width // 4 : width // 2] = True
        out.append((f"kodak{index}_large", image, ~white))
    return out


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(strategy: str, num_layers: int, train_size: int) -> dict:
    """In a fresh process: warm up, then time every case; peak RSS of this process."""
    model = PConvUNet(num_layers=num_layers)
    variables = random_variables(model)
    inpainter = Inpainter.from_model(model, variables, train_size=train_size, batch_size=4)
    data = cases()
    jax.block_until_ready(variables)
    base = rss_mib()
    inpainter(data[0][1], data[0][2], strategy=strategy)  # compile
    times = {}
    for name, image, known in data:
        wall, cpu = time.perf_counter(), time.process_time()
        inpainter(image, known, strategy=strategy)
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    return {
        "strategy": strategy,
        "cpu_s": statistics.median(t[1] for t in times.values()),
        "wall_s": statistics.median(t[0] for t in times.values()),
        "per_case_cpu_s": {k: round(v[1], 2) for k, v in times.items()},
        "peak_rss_mib": rss_mib(),
        "base_rss_mib": base,
        "compilations": inpainter.num_compilations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-layers", type=int, default=7)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--only", choices=STRATEGIES, help=argparse.SUPPRESS)  # subprocess
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args.num_layers, args.train_size)))
        return
    rows = []
    for strategy in STRATEGIES:
        command = [sys.executable, __file__, "--only", strategy]
        command += ["--num-layers", str(args.num_layers), "--train-size", str(args.train_size)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"3072x2048, num_layers={args.num_layers}, train_size={args.train_size}, CPU")
    print("| strategy | CPU s / image (median) | wall s / image | peak RSS over base (MiB) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        extra = r["peak_rss_mib"] - r["base_rss_mib"]
        print(f"| {r['strategy']} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {extra:.0f} |")
    print("per case CPU s:", {r["strategy"]: r["per_case_cpu_s"] for r in rows})


if __name__ == "__main__":
    main()
