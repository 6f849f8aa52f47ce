"""Benchmark: the paper's loss, forward + backward (gradient w.r.t. the output), JAX vs PyTorch.

Both sides compute the same thing on CPU: VGG16 to pool3 with the shipped ImageNet weights on the
ground truth (no gradient) and on output + composite in one batched call, the six terms of Eq. 3-7
and the gradient of L_total w.r.t. the network output. JAX is jitted (compile time reported
apart); PyTorch runs eagerly (tests/torch_ref/loss.py). The two alternate, --reps times each;
the table shows the best time of each (the least disturbed by other load on the machine), their
ratio, and the ratio of the medians. "rel diff" compares the loss values and the gradients
(relative L2 norm of the difference; L1 terms on features that are equal up to rounding, e.g. the
composite's far from the hole, have sign-ambiguous subgradients, so the gradients differ slightly).

    python experiments/bench_loss.py                        # 256 and 512, batch 1 and 2
    python experiments/bench_loss.py --sizes 256 --batches 1 --reps 3
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import jax
import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from pconv_jax.config import LossConfig  # noqa: E402
from pconv_jax.nn import losses, vgg
from tests.torch_ref import loss as torch_loss  # noqa: E402


def make_inputs(size: int, batch: int):
    rng = np.random.default_rng(0)
    target = rng.random((batch, size, size, 3), dtype=np.float32)
    output = np.clip(target + rng.normal(0, 0.2, target.shape), 0, 1).astype(np.float32)
    mask = np.ones((batch, size, size, 1), np.float32)
    q = size // 4
    mask[:, q : 3 * q, q : 2 * q] = 0.0  # a 12.5% rectangle hole plus a stroke
    mask[:, size // 8 : size // 8 + 6, : size - q] = 0.0
    return output, target, mask


def make_jax_step(params, output, target, mask):
    def total(out, tgt, msk, p):
        features_fn = vgg.make_vgg_features_fn(p)
        return losses.inpainting_loss(out, tgt, msk, features_fn, LossConfig())[0]

    step = jax.jit(jax.value_and_grad(total))
    args = [jax.device_put(a) for a in (output, target, mask)] + [jax.device_put(params)]
    return lambda: jax.block_until_ready(step(*args))


def make_torch_step(net, output, target, mask):
    t_out, t_tgt, t_msk = (
        torch.from_numpy(a.transpose(0, 3, 1, 2).copy()) for a in (output, target, mask)
    )

    def step():
        out = t_out.clone().requires_grad_(True)
        loss = torch_loss.paper_loss(out, t_tgt, t_msk, net)["total"]
        loss.backward()
        return loss.item(), out.grad.numpy().transpose(0, 2, 3, 1)

    return step


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    params = vgg.load_vgg16_params()
    state = {}
    for name, _, _, index in vgg.VGG16_CONVS:
        state[f"features.{index}.weight"] = torch.from_numpy(
            params[name]["kernel"].transpose(3, 2, 0, 1).copy()
        )
        state[f"features.{index}.bias"] = torch.from_numpy(params[name]["bias"])
    net = torch_loss.VGG16Pool3(state)
    print(
        f"jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__}, "
        f"{os.cpu_count()} CPU cores, best of {args.reps}"
    )
    header = (
        f"{'size':>5} {'batch':>5} | {'jax ms':>8} {'torch ms':>9} {'jax/torch':>9} "
        f"{'(median)':>8} | {'compile s':>9} | {'rel diff loss':>13} {'grad':>8}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        for batch in args.batches:
            output, target, mask = make_inputs(size, batch)
            jax_step = make_jax_step(params, output, target, mask)
            torch_step = make_torch_step(net, output, target, mask)
            compile_s, (j_value, j_grad) = timed(jax_step)
            _, (t_value, t_grad) = timed(torch_step)  # warm-up (oneDNN primitive creation)
            j_times, t_times = [], []
            for _ in range(args.reps):  # interleaved, so that load from elsewhere hits both
                j_times.append(timed(jax_step)[0])
                t_times.append(timed(torch_step)[0])
            j_s, t_s = min(j_times), min(t_times)
            median_ratio = np.median(j_times) / np.median(t_times)
            loss_diff = abs(j_value - t_value) / abs(t_value)
            grad_diff = np.linalg.norm(j_grad - t_grad) / np.linalg.norm(t_grad)
            print(
                f"{size:>5} {batch:>5} | {j_s * 1e3:>8.0f} {t_s * 1e3:>9.0f} {j_s / t_s:>9.2f} "
                f"{median_ratio:>8.2f} | "
                f"{compile_s:>9.1f} | {loss_diff:>13.1e} {grad_diff:>8.1e}"
            )


if __name__ == "__main__":
    main()
