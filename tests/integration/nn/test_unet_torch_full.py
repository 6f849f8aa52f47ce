"""The full-depth U-Net (7 levels at 256x256, 8 at 512x512, batch 2) against the independent
PyTorch reference (tests/torch_ref/unet.py): eval-mode output, train-mode output, and the BN
running statistics after a few train-mode updates, with each framework's conventions mapped:

  momentum   Flax  ra <- m * ra + (1 - m) * batch      (m = ModelConfig.bn_momentum = 0.9)
             torch ra <- (1 - p) * ra + p * batch      (p = BatchNorm2d.momentum = 0.1 = 1 - m)
  variance   Flax updates running var with the biased batch variance (divide by n), torch with
             the unbiased one (divide by n - 1), n = N*H*W of that layer; both normalise the
             batch itself with the biased one. So after K updates from the same start r0:
             torch_var_K - p'^K r0 = n/(n-1) * (flax_var_K - p'^K r0), p' = 1 - p = m.

Forward passes only (no gradients; test_torch_reference.py compares gradients at depth 4).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pconv_jax.nn.model import PConvUNet

import tolerances
from torch_ref.unet import PConvUNetTorch, load_flax_variables

FLAX_MOMENTUM = 0.9  # PConvUNet.bn_momentum default = ModelConfig.bn_momentum
TORCH_MOMENTUM = 1.0 - FLAX_MOMENTUM
UPDATES = 3


def output_rtol(num_layers: int) -> float:
    """max |flax - torch| / max |flax| allowed: the float32 rounding of two evaluations of the
    whole U-Net (tests/tolerances.py: one sum of every layer's reduction length, relative to the
    output scale), 1.8e-4 at 7 levels and 2.0e-4 at 8. Measured on this project's CPU: <= 1.4e-6
    (L7, 256) and <= 9e-7 (L8, 512); a wrong layer or statistic is off by order 1."""
    return tolerances.network_atol(tolerances.unet_reductions(num_layers), 1.0)


def _variables(num_layers: int, side: int, seed: int) -> dict:
    """He-normal kernels and non-trivial BN scale/bias/statistics, drawn with numpy (model.init
    spends most of a minute on CPU drawing the 512-channel kernels)."""
    model = PConvUNet(num_layers=num_layers)
    shapes = jax.eval_shape(
        model.init, jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.ones((1, side, side, 1))
    )
    rng = np.random.default_rng(seed)

    def draw(path, x):
        name = path[-1].key
        if name == "kernel":
            return rng.normal(0.0, np.sqrt(2.0 / np.prod(x.shape[:-1])), x.shape)
        if name == "scale":
            return rng.uniform(0.5, 1.5, x.shape)
        if name == "mean":
            return rng.normal(0.0, 0.5, x.shape)
        if name == "var":
            return rng.uniform(0.5, 2.0, x.shape)
        return rng.normal(0.0, 0.1, x.shape)  # biases

    return jax.tree_util.tree_map_with_path(lambda p, x: draw(p, x).astype(np.float32), shapes)


def _inputs(side: int, seed: int):
    rng = np.random.default_rng(seed)
    image = rng.random((2, side, side, 3), dtype=np.float32)
    mask = np.ones((2, side, side, 1), np.float32)
    for i in range(2):
        for _ in range(6):
            y, x = rng.integers(0, side - side // 5, size=2)
            h, w = rng.integers(side // 20, side // 5, size=2)
            mask[i, y : y + h, x : x + w] = 0.0
    mask[:, -side // 8 :, : side // 3] = 0.0  # a hole touching the border
    return image, mask


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x), (0, 3, 1, 2))))


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _relative_error(got, expected):
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


def _bn_count(num_layers: int, side: int) -> dict:
    """n = N*H*W seen by each BN layer: encoder i at side/2^i, decoder i at side/2^(i-1)."""
    counts = {f"enc{i}": 2 * (side // 2**i) ** 2 for i in range(2, num_layers + 1)}
    counts.update({f"dec{i}": 2 * (side // 2 ** (i - 1)) ** 2 for i in range(2, num_layers + 1)})
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("num_layers,side", [(7, 256), (8, 512)], ids=["L7-256", "L8-512"])
def test_full_depth_unet_matches_torch_with_bn_updates(num_layers, side):
    t0 = time.time()
    flax_model = PConvUNet(num_layers=num_layers, bn_momentum=FLAX_MOMENTUM)
    variables = _variables(num_layers, side, seed=num_layers)
    torch_model = PConvUNetTorch(num_layers)
    load_flax_variables(torch_model, variables)
    bns = [m for m in torch_model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 2 * (num_layers - 1)
    assert all(m.momentum == pytest.approx(TORCH_MOMENTUM) and m.eps == 1e-5 for m in bns)

    # Eval mode: running statistics.
    image, mask = _inputs(side, seed=0)
    expected = np.asarray(jax.jit(flax_model.apply)(variables, image, mask))
    torch_model.eval()
    with torch.no_grad():
        got = _nhwc(torch_model(_nchw(image), _nchw(mask)))
    eval_err = _relative_error(got, expected)
    assert np.abs(expected).max() > 0.1, "a real signal, not two zero outputs"
    assert eval_err < output_rtol(num_layers)

    # Train mode: batch statistics, and UPDATES running-average updates in each framework.
    train_apply = jax.jit(
        lambda v, x, m: flax_model.apply(v, x, m, train=True, mutable=["batch_stats"])
    )
    torch_model.train()
    flax_vars, train_errs = variables, []
    for k in range(UPDATES):
        image, mask = _inputs(side, seed=k + 1)
        out, updates = train_apply(flax_vars, image, mask)
        flax_vars = {"params": variables["params"], "batch_stats": updates["batch_stats"]}
        with torch.no_grad():
            got = _nhwc(torch_model(_nchw(image), _nchw(mask)))
        train_errs.append(_relative_error(got, np.asarray(out)))
    assert max(train_errs) < output_rtol(num_layers), train_errs

    decay = FLAX_MOMENTUM**UPDATES
    naive_var_gap = 0.0
    for name, n in _bn_count(num_layers, side).items():
        start = variables["batch_stats"][name]["bn"]
        flax_stats = jax.device_get(flax_vars["batch_stats"][name]["bn"])
        bn = getattr(torch_model, name).bn
        assert int(bn.num_batches_tracked) == UPDATES
        # Means: the same update once the momenta are mapped.
        np.testing.assert_allclose(
            bn.running_mean.numpy(), flax_stats["mean"], rtol=1e-4, atol=1e-5, err_msg=name
        )
        # Variances: torch's accumulated part is n/(n-1) times Flax's.
        flax_part = flax_stats["var"] - decay * start["var"]
        torch_part = bn.running_var.numpy() - decay * start["var"]
        np.testing.assert_allclose(
            torch_part, flax_part * n / (n - 1), rtol=1e-4, atol=1e-6, err_msg=name
        )
        naive_var_gap = max(
            naive_var_gap, _relative_error(bn.running_var.numpy(), flax_stats["var"])
        )
    # The correction matters: at the deepest layer n = 8, torch's share is 8/7 of Flax's.
    assert naive_var_gap > 1e-2
    print(
        f"L{num_layers} {side}px: eval rel err {eval_err:.1e}, train {max(train_errs):.1e}, "
        f"naive running-var gap {naive_var_gap:.2e}, {time.time() - t0:.0f} s"
    )
