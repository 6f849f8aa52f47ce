"""Wall time of `pconv inpaint` on one 512x512 photo: first and second process, cache off and on.

    python experiments/bench_compile_cache.py [--num-layers 7] [--repeats 1]

Writes an .npz export of the paper's U-Net (random He-initialised weights: only time is measured)
and a 512x512 crop of Kodak 01 with an NVIDIA test mask (synthetic ones when ../shared is
absent), then runs `python -m pconv_jax inpaint` as separate processes, as a user would:
  - cache off (`--no-compile-cache`): two processes, each compiles;
  - cache on, in a fresh folder: the first process compiles and writes the cache, the second
    loads the compiled program from it.
Prints a table of wall seconds (the whole process: Python start, imports, model load, compile,
run, writing the PNG), the XLA compile seconds and persistent-cache hits the process logged
(JAX's debug log), and checks that all outputs are identical.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from pconv_jax import config
from pconv_jax.nn.model import build_model
from pconv_jax.store import trained

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_inpaint import random_variables  # noqa: E402  (a sibling benchmark's helper)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared/data"


def write_inputs(folder: pathlib.Path, num_layers: int) -> tuple[pathlib.Path, ...]:
    cfg = config.Config(
        name="bench", model=config.ModelConfig(num_layers=num_layers), data=config.DataConfig()
    )
    model = build_model(cfg.model)
    export = trained.TrainedModel(cfg, model, random_variables(model), 0, "bench")
    trained.write_export(export, folder / "model.npz")
    kodak, masks = SHARED / "kodak/01.png", SHARED / "nvidia_test_masks/04000.png"
    if kodak.is_file() and masks.is_file():
        photo = np.asarray(Image.open(kodak).convert("RGB"))[:512, :512]
        mask = np.asarray(Image.open(masks).convert("L"))
    else:
        photo = np.random.default_rng(0).integers(0, 256, (512, 512, 3), np.uint8)
        mask = np.zeros((512, 512), np.uint8)
        mask[150:300, 200:350] = 255
    Image.fromarray(photo).save(folder / "photo.png")
    Image.fromarray(mask).save(folder / "mask.png")
    return folder / "model.npz", folder / "photo.png", folder / "mask.png"


def run_once(model, photo, mask, out, cache_args, env) -> tuple[float, float, int]:
    """(wall seconds of the process, XLA compile seconds it logged, persistent-cache hits)."""
    command = [sys.executable, "-m", "pconv_jax", "inpaint", "--checkpoint", str(model)]
    command += [str(photo), str(mask), "-o", str(out), "--no-progress", *cache_args]
    # JAX's debug log names each compilation with its time, and each cache hit.
    env = {**env, "JAX_DEBUG_LOG_MODULES": "jax._src.compiler"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"pconv inpaint failed:\n{done.stderr[-3000:]}")
    compiled = sum(float(s) for s in re.findall(r"to compile \((\d+\.\d+)s\)", done.stderr))
    hits = done.stderr.lower().count("persistent compilation cache hit")
    return seconds, compiled, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-layers", type=int, default=7, help="U-Net depth (paper: 7)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the four runs")
    args = parser.parse_args()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="bench_compile_cache_"))
    model, photo, mask = write_inputs(folder, args.num_layers)
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
    env.pop("PCONV_COMPILE_CACHE", None)
    rows, outputs = {}, []
    for round_ in range(args.repeats):
        cache = folder / f"cache{round_}"
        plans = {
            "cache off": ["--no-compile-cache"],
            "cache on": [],
        }
        for name, cache_args in plans.items():
            run_env = {**env, "PCONV_COMPILE_CACHE": str(cache)} if not cache_args else env
            for call in ("first", "second"):
                out = folder / f"out_{name.replace(' ', '_')}_{call}_{round_}.png"
                measured = run_once(model, photo, mask, out, cache_args, run_env)
                rows.setdefault((name, call), []).append(measured)
                outputs.append(np.asarray(Image.open(out)))
    identical = all(np.array_equal(o, outputs[0]) for o in outputs)
    print(f"pconv inpaint, one 512x512 photo, {args.num_layers}-level U-Net, CPU")
    print(f"{'run':<22}{'wall s (median)':>16}{'compile s':>11}{'cache hits':>11}   wall s, all")
    for (name, call), measured in rows.items():
        wall, compiled, hits = (np.asarray(column) for column in zip(*measured))
        listed = ", ".join(f"{t:.1f}" for t in wall)
        print(
            f"{name + ', ' + call:<22}{np.median(wall):>16.1f}{np.median(compiled):>11.1f}"
            f"{int(np.median(hits)):>11}   {listed}"
        )
    cache_size = sum(p.stat().st_size for p in folder.glob("cache*/**/*") if p.is_file())
    print(f"outputs identical: {identical}; cache size {cache_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
