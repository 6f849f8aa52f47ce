"""Training-step benchmark: pconv_jax's jitted train step vs a PyTorch step of the same network.

CPU mode (default, one process, alternating runs): images/s of one full training step (U-Net
forward + backward, the paper's loss with three VGG16 passes, Adam update) at 256x256 (7-layer
U-Net, batch 2) and 512x512 (8-layer U-Net, batch 1):
  - pconv_jax: `train_step.train_step` under jit on a 1-D mesh of the local devices, float32;
  - PyTorch (eager, CPU): tests/torch_ref's U-Net of the official-style layer (mask
    convolved with an all-ones (C_out, C_in, k, k) kernel, multi-channel masks) and the paper's
    loss with the same VGG16 weights, Adam.
Target: ours >= 2x faster.

GPU mode (--gpu, for a lent GPU; no PyTorch): images/s at 512 (8 layers) and 256 (7 layers) for
float32 and bfloat16 compute, and the achieved fraction of the GPU's peak FLOP/s, counting the
step's FLOPs with XLA's cost analysis (U-Net forward+backward plus the VGG passes).

    python experiments/bench_train.py                 # CPU table, ~5 minutes on 2 cores
    python experiments/bench_train.py --gpu           # on a GPU machine
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import platform
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from pconv_jax import config
from pconv_jax.nn import vgg
from pconv_jax.nn.model import build_model  # noqa: E402
from pconv_jax.parallel import sharding
from pconv_jax.train import step as train_step

# Dense peak FLOP/s of an H100 SXM (NVIDIA datasheet): bf16 tensor cores and tf32 tensor cores
# (XLA runs float32 convolutions as tf32 on Hopper at the default precision).
H100_PEAK = {"bfloat16": 989.4e12, "float32": 494.7e12}


def synthetic_batch(n: int, side: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    image = rng.uniform(size=(n, side, side, 3)).astype(np.float32)
    mask = np.ones((n, side, side, 1), np.float32)
    for i in range(n):
        y, x = rng.integers(0, side // 2, size=2)
        mask[i, y : y + side // 3, x : x + side // 4] = 0.0
    return {"image": image, "mask": mask}


def jax_step(num_layers: int, side: int, batch: int, dtype: str, devices=None):
    """Returns (run() -> None that does one step, the compiled step)."""
    cfg = config.Config(
        model=config.ModelConfig(num_layers=num_layers),
        data=config.DataConfig(image_size=side),
        train=config.TrainConfig(compute_dtype=dtype),
    )
    mesh = sharding.make_mesh(devices)
    repl, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    compute = train_step.compute_dtype(cfg)
    model = build_model(cfg.model, compute)
    params = jax.eval_shape(lambda: train_step.init_variables(model, side, 0))["params"]
    tx = train_step.make_optimizer(cfg, params)
    state = jax.jit(
        functools.partial(train_step.create_train_state, model, tx, side, 0), out_shardings=repl
    )()
    vgg_params = jax.device_put(vgg.load_vgg16_params(""), repl)
    step = jax.jit(
        functools.partial(
            train_step.train_step,
            model=model,
            cfg=cfg,
        ),
        in_shardings=(repl, split, repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )
    data = sharding.shard_batch(synthetic_batch(batch, side), mesh)
    compiled = step.lower(state, data, vgg_params).compile()
    holder = {"state": state}

    def run():
        holder["state"], metrics = compiled(holder["state"], data, vgg_params)
        jax.block_until_ready(metrics)

    return run, compiled


def step_flops(num_layers: int, side: int) -> float:
    """FLOPs of one float32 train step on one image, from XLA's cost analysis on the CPU backend.

    The GPU backend's cost analysis does not count convolutions run by cuDNN, so the count is
    always taken from the CPU compilation of the same step (all ops, multiply-add = 2 FLOPs).
    """
    _, compiled = jax_step(num_layers, side, 1, "float32", devices=jax.devices("cpu")[:1])
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list | tuple) else analysis
    return float(analysis["flops"])


def torch_step(num_layers: int, side: int, batch: int):
    import torch

    from tests.torch_ref.loss import VGG16Pool3, paper_loss
    from tests.torch_ref.unet import PConvUNetTorch

    torch.manual_seed(0)
    weights = vgg.load_vgg16_params("")
    names = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3"]
    state_dict = {}
    for name, index in zip(names, (0, 2, 5, 7, 10, 12, 14)):
        kernel = np.asarray(weights[name]["kernel"]).transpose(3, 2, 0, 1)
        state_dict[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        state_dict[f"features.{index}.bias"] = torch.from_numpy(np.asarray(weights[name]["bias"]))
    vgg_net = VGG16Pool3(state_dict)
    net = PConvUNetTorch(num_layers).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4)
    data = synthetic_batch(batch, side)
    image = torch.from_numpy(data["image"]).permute(0, 3, 1, 2).contiguous()
    mask = torch.from_numpy(data["mask"]).permute(0, 3, 1, 2).contiguous()

    def run():
        optimizer.zero_grad(set_to_none=True)
        output = net(image * mask, mask)
        paper_loss(output, image, mask, vgg_net)["total"].backward()
        optimizer.step()

    return run


def timed(run, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cpu_table(repeats: int) -> None:
    import torch

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {threads} cores, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    rows = []
    for num_layers, side, batch in ((7, 256, 2), (8, 512, 1)):
        ours, _ = jax_step(num_layers, side, batch, "float32")
        theirs = torch_step(num_layers, side, batch)
        t_jax = timed(ours, repeats)
        t_torch = timed(theirs, repeats)
        rows.append((side, num_layers, batch, batch / t_jax, batch / t_torch, t_torch / t_jax))
        print(f"  {side}: jax {t_jax:.2f} s/step, torch {t_torch:.2f} s/step", flush=True)
    print("\n| size | layers | batch | pconv_jax img/s | PyTorch img/s | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for side, layers, batch, ours, theirs, ratio in rows:
        print(f"| {side} | {layers} | {batch} | {ours:.3f} | {theirs:.3f} | {ratio:.2f}x |")


def gpu_table(repeats: int, batches: list[int]) -> None:
    device = jax.devices()[0]
    print(f"device: {device.device_kind} x{jax.device_count()}, jax {jax.__version__}")
    print("\n| size | layers | dtype | batch | step ms | img/s | GFLOP/img | TFLOP/s | of peak |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for num_layers, side in ((8, 512), (7, 256)):
        flops_per_image = step_flops(num_layers, side)
        for dtype in ("bfloat16", "float32"):
            for batch in batches:
                n = batch * jax.device_count()
                try:
                    run, _ = jax_step(num_layers, side, n, dtype)
                    seconds = timed(run, repeats)
                except Exception as e:  # out of memory at the largest batch: report, go on
                    print(
                        f"| {side} | {num_layers} | {dtype} | {n} | failed: "
                        f"{type(e).__name__} | | | | |",
                        flush=True,
                    )
                    continue
                rate = flops_per_image * n / seconds
                peak = H100_PEAK[dtype] * jax.device_count()
                per_image = flops_per_image / 1e9
                print(
                    f"| {side} | {num_layers} | {dtype} | {n} | {seconds * 1e3:.1f} | "
                    f"{n / seconds:.0f} | {per_image:.0f} | {rate / 1e12:.0f} | "
                    f"{rate / peak:.0%} |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpu", action="store_true", help="GPU table (no PyTorch)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[16, 32],
        help="--gpu: per-device batch sizes to try",
    )
    args = parser.parse_args()
    if args.gpu:
        gpu_table(args.repeats or 10, args.batches)
    else:
        cpu_table(args.repeats or 3)


if __name__ == "__main__":
    main()
