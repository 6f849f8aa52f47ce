"""Latency of one 512x512 image, JAX (jit, XLA CPU) vs onnxruntime (CPU), in one run.

    python experiments/bench_onnx.py [--num-layers 8] [--repeats 5]

The paper's 512x512 U-Net (num_layers=8) with random He-initialised weights (only cost is
measured), exported with `onnx_export.build_onnx`. Both runtimes get the same float32 input
(a Kodak photo crop with an NVIDIA mask when ../shared is present, noise otherwise). Reports
the median wall time and median process CPU time per call after one warm-up call, and the max
abs difference of the outputs. On a shared machine the CPU time is the more stable number.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import time

import jax
import numpy as np
from bench_inpaint import random_variables

from pconv_jax import config
from pconv_jax.nn.model import build_model
from pconv_jax.store.onnx_export import build_onnx

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared/data"


def inputs(side: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    photo, hole = SHARED / "kodak/01.png", SHARED / "nvidia_test_masks/04000.png"
    if photo.is_file() and hole.is_file():
        image = np.asarray(Image.open(photo).convert("RGB"), np.float32)[:side, :side] / 255
        white = np.asarray(Image.open(hole).convert("L").resize((side, side))) > 127
    else:
        rng = np.random.default_rng(0)
        image = rng.uniform(size=(side, side, 3)).astype(np.float32)
        white = np.zeros((side, side), bool)
        white[side // 4 : side // 2, side // 4 : side // 2] = True
    return image[None], (~white).astype(np.float32)[None, ..., None]


def timed(fn, repeats: int) -> tuple[float, float, np.ndarray]:
    out = fn()  # warm-up (compilation for JAX, session planning for onnxruntime)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import onnxruntime

    cfg = config.Config(model=config.ModelConfig(num_layers=args.num_layers))
    model = build_model(cfg.model)
    variables = jax.tree_util.tree_map(np.asarray, random_variables(model))
    image, mask = inputs(args.side)
    forward = jax.jit(model.apply)
    jax_wall, jax_cpu, jax_out = timed(
        lambda: np.asarray(forward(variables, image, mask)), args.repeats
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "model.onnx"
        import onnx

        onnx.save_model(build_onnx(cfg, variables), str(path))
        size_mb = path.stat().st_size / 2**20
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_wall, ort_cpu, ort_out = timed(
        lambda: session.run(["output"], {"image": image, "mask": mask})[0], args.repeats
    )
    diff = float(np.abs(ort_out - jax_out).max())
    print(f"{args.side}x{args.side} batch 1, num_layers={args.num_layers}, ONNX {size_mb:.0f} MiB")
    scale = float(np.abs(jax_out).max())
    print(
        f"jax {jax.__version__}, onnxruntime {onnxruntime.__version__}; max |diff| {diff:.2e} "
        f"for outputs up to {scale:.3g} in magnitude"
    )
    print("| runtime | wall ms (median) | CPU ms (median) |")
    print("|---|---:|---:|")
    print(f"| JAX (jit, XLA CPU) | {jax_wall * 1e3:.0f} | {jax_cpu * 1e3:.0f} |")
    print(f"| onnxruntime (CPU) | {ort_wall * 1e3:.0f} | {ort_cpu * 1e3:.0f} |")


if __name__ == "__main__":
    main()
