"""Layer benchmark: PConvUNet with partial vs plain convolutions, and vs the official-style PyTorch.

CPU mode (default), all in one process so the ratios compare like with like:
  (a) pconv_jax.PConvUNet(partial=True) vs the same code with ordinary convolutions
      (partial=False, the paper's Conv baseline); target: partial / plain <= 1.15;
  (b) pconv_jax vs the PyTorch U-Net of tests/torch_ref (official-style layer: the mask is
      convolved with an all-ones (C_out, C_in, k, k) kernel, multi-channel masks), run eagerly;
      target: ours >= 2x faster forward.
for 256x256 (batch 2, num_layers=7) and 512x512 (batch 1, num_layers=8). "forward" is inference
(BN running statistics); "fwd+bwd" is the gradient of mean(output**2) w.r.t. the parameters in
training mode (batch statistics), as in a training step. JAX functions are jitted; every
timing is the median of --repeats calls after a compile and a warm-up call.

GPU mode (--gpu, meant for a lent GPU): 512x512 inference latency at batch 1 and throughput at
batch 32 for float32 and bfloat16 compute (parameters stay float32); no PyTorch.

Commands (from the repository root):
  python experiments/bench_layers.py                 # CPU table, ~6 minutes on 2 cores
  python experiments/bench_layers.py --gpu           # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

# Running as a script puts experiments/ first on sys.path; the repository root is needed for
# `tests.torch_ref` (and for pconv_jax when it is not installed).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from pconv_jax.nn.model import PConvUNet  # noqa: E402  (pconv_jax.nn.model never imports tfds)

# size -> (batch, num_layers) of the CPU comparison, as the issue fixes them.
CPU_CONFIGS = {256: (2, 7), 512: (1, 8)}
NUM_LAYERS = {256: 7, 512: 8}


def make_inputs(batch: int, size: int, seed: int = 0):
    """Random image [N,S,S,3] in [0,1] and a binary mask [N,S,S,1] with ~25% irregular holes."""
    rng = np.random.default_rng(seed)
    image = rng.random((batch, size, size, 3), dtype=np.float32)
    mask = np.ones((batch, size, size, 1), np.float32)
    for n in range(batch):
        for _ in range(6):  # rectangles of random size, some touching the border
            h, w = rng.integers(size // 16, size // 4, 2)
            y, x = rng.integers(0, size - h), rng.integers(0, size - w)
            mask[n, y : y + h, x : x + w] = 0
    mask *= (rng.random(mask.shape) > 0.05).astype(np.float32)  # scattered 1-pixel holes
    return image, mask


def interleaved_median_ms(fns: dict, repeats: int) -> dict:
    """{name: (median wall ms, median process-CPU ms)} of each fn(), after a compile + warm-up.

    The timed calls go round-robin over `fns`, so load from other processes on a shared machine
    falls on every contender alike instead of on whichever ran during a busy spell. The CPU time
    (all threads of this process) is what the call cost in work; unlike wall time it barely moves
    when other processes compete for the cores.
    """
    for fn in fns.values():
        fn()
        fn()
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return {
        name: (1000.0 * statistics.median(wall[name]), 1000.0 * statistics.median(cpu[name]))
        for name in fns
    }


def jax_step_fns(model: PConvUNet, image, mask) -> dict:
    """{"forward": f, "fwd+bwd": g}: blocking, jitted calls on fixed inputs.

    forward is inference (BN running statistics); fwd+bwd is the parameter gradient of
    mean(output**2) in training mode. Image and mask are jit arguments, never constants, so XLA
    cannot fold the mask path away.
    """
    image, mask = jnp.asarray(image), jnp.asarray(mask)
    variables = jax.jit(model.init)(jax.random.key(0), image, mask)
    params, batch_stats = variables["params"], variables["batch_stats"]

    @jax.jit
    def forward(variables, image, mask):
        return model.apply(variables, image, mask, train=False)

    def loss(params, batch_stats, image, mask):
        out, _ = model.apply(
            {"params": params, "batch_stats": batch_stats},
            image,
            mask,
            train=True,
            mutable=["batch_stats"],
        )
        return jnp.mean(jnp.square(out.astype(jnp.float32)))

    grad = jax.jit(jax.grad(loss))
    return {
        "forward": lambda: jax.block_until_ready(forward(variables, image, mask)),
        "fwd+bwd": lambda: jax.block_until_ready(grad(params, batch_stats, image, mask)),
    }


def torch_step_fns(num_layers: int, image, mask) -> dict:
    """The same two passes for the official-style PyTorch U-Net, run eagerly on the CPU."""
    import torch

    from tests.torch_ref.unet import PConvUNetTorch

    torch.manual_seed(0)
    model = PConvUNetTorch(num_layers)
    image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2)))
    mask_t = torch.from_numpy(np.ascontiguousarray(mask.transpose(0, 3, 1, 2)))

    def forward():
        model.eval()
        with torch.inference_mode():
            model(image_t, mask_t)

    def forward_backward():
        model.train()
        model.zero_grad(set_to_none=True)
        torch.mean(model(image_t, mask_t) ** 2).backward()

    return {"forward": forward, "fwd+bwd": forward_backward}


def cpu_benchmark(sizes, repeats: int) -> None:
    import torch

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    print(f"machine: {cpu_model()}, {threads} cores; jax {jax.__version__} on {jax.devices()[0]}")
    print(f"torch {torch.__version__} eager, torch.get_num_threads() = {torch.get_num_threads()}")
    print(f"repeats: {repeats} (median after compile + warm-up), load average {load()}")
    rows = []
    for size in sizes:
        batch, num_layers = CPU_CONFIGS[size]
        image, mask = make_inputs(batch, size)
        label = f"{size}x{size} b{batch} L{num_layers}"
        print(f"[{label}] compiling and timing ...", flush=True)
        fns = {}
        for kind, step_fns in [
            ("partial", jax_step_fns(PConvUNet(num_layers, partial=True), image, mask)),
            ("plain", jax_step_fns(PConvUNet(num_layers, partial=False), image, mask)),
            ("torch", torch_step_fns(num_layers, image, mask)),
        ]:
            fns.update({(kind, name): fn for name, fn in step_fns.items()})
        ms = interleaved_median_ms(fns, repeats)
        rows += [(label, name, ms) for name in ("forward", "fwd+bwd")]

    header = (
        "| config | pass | JAX partial ms | JAX plain ms | partial/plain | PyTorch ms | speed-up |"
    )
    for title, clock in [("wall-clock time", 0), ("process CPU time, all threads", 1)]:
        print(f"\nmedian {title}:\n{header}\n|---|---|---:|---:|---:|---:|---:|")
        for label, name, ms in rows:
            p, c, t = (ms[kind, name][clock] for kind in ("partial", "plain", "torch"))
            print(
                f"| {label} | {name} | {p:.0f} | {c:.0f} | {p / c:.2f}x | {t:.0f} | {t / p:.2f}x |"
            )
    print(f"\nload average at the end: {load()}")
    print("targets: partial/plain <= 1.15x; speed-up (PyTorch ms / JAX partial ms) >= 2x forward")


def gpu_benchmark(sizes, repeats: int, throughput_batch: int) -> None:
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    if jax.default_backend() == "cpu":
        print("warning: no accelerator found; these are CPU numbers")
    print(f"repeats: {repeats} (median after compile + warm-up); parameters float32")
    # float32 convolutions run at XLA's default precision unless this says "highest".
    print(f"jax_default_matmul_precision = {jax.config.jax_default_matmul_precision}\n")
    print("| input | compute dtype | latency b1 ms | batch | batch ms | throughput img/s |")
    print("|---|---|---:|---:|---:|---:|")
    for size in sizes:
        for dtype in (jnp.float32, jnp.bfloat16):
            model = PConvUNet(NUM_LAYERS[size], partial=True, dtype=dtype)
            one = jax_step_fns(model, *make_inputs(1, size))["forward"]
            many = jax_step_fns(model, *make_inputs(throughput_batch, size))["forward"]
            latency = interleaved_median_ms({"one": one}, repeats)["one"][0]
            ms = interleaved_median_ms({"many": many}, repeats)["many"][0]
            print(
                f"| {size}x{size} | {jnp.dtype(dtype).name} | {latency:.1f} | "
                f"{throughput_batch} | {ms:.1f} | {1000.0 * throughput_batch / ms:.0f} |",
                flush=True,
            )


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", choices=sorted(CPU_CONFIGS), default=None)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--gpu", action="store_true", help="latency/throughput on the accelerator")
    parser.add_argument(
        "--throughput-batch", type=int, default=32, help="batch of --gpu throughput"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.throughput_batch < 1:
        parser.error(f"--repeats and --throughput-batch must be >= 1, got {args}")
    if args.gpu:
        gpu_benchmark(args.sizes or [512], args.repeats, args.throughput_batch)
    else:
        cpu_benchmark(args.sizes or [256, 512], args.repeats)


if __name__ == "__main__":
    main()
