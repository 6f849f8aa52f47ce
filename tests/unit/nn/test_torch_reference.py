"""The PyTorch U-Net of tests/torch_ref computes the same function as pconv_jax.PConvUNet.

This is what makes the layer benchmark's PyTorch column a like-for-like comparison: same
architecture (kernel-weight totals of the appendix table), same outputs for the same weights.
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pconv_jax.nn.model import PConvUNet
from pconv_jax.nn.model import count_kernel_weights as count_flax_kernel_weights

import tolerances
from torch_ref.unet import (
    PConvUNetTorch,
    count_kernel_weights,
    load_flax_variables,
)

# Appendix table totals: sum of k*k*C_in*C_out over PConv1..PConv16 (L=8) or without PConv8 and
# its decoder twin (L=7).
KERNEL_WEIGHTS = {7: 25_770_961, 8: 32_848_849}


@pytest.mark.parametrize("num_layers", [7, 8])
def test_same_kernel_weight_count_as_flax(num_layers):
    size = 2**num_layers
    image = jnp.zeros((1, size, size, 3))
    mask = jnp.ones((1, size, size, 1))
    shapes = jax.eval_shape(PConvUNet(num_layers=num_layers).init, jax.random.key(0), image, mask)
    assert count_flax_kernel_weights(shapes["params"]) == KERNEL_WEIGHTS[num_layers]
    # Building the torch model allocates its weights (and the mask kernels) but runs nothing.
    assert count_kernel_weights(PConvUNetTorch(num_layers)) == KERNEL_WEIGHTS[num_layers]


def _random_hole_mask(rng, n, size, channels):
    """Binary mask with rectangular holes, one touching the border."""
    mask = np.ones((n, size, size, channels), np.float32)
    mask[:, 3:14, 5:20] = 0
    mask[:, 20:, 25:] = 0
    mask *= (rng.random((n, size, size, channels)) > 0.1).astype(np.float32)
    return mask


def _perturbed_variables(variables, rng):
    """Makes BN scale/bias and running statistics non-trivial, so eval mode tests them."""

    def perturb(path, leaf):
        name = path[-1].key
        if name == "scale":
            return jnp.asarray(rng.uniform(0.5, 1.5, leaf.shape), jnp.float32)
        if name == "bias":
            return jnp.asarray(rng.normal(0.0, 0.1, leaf.shape), jnp.float32)
        if name == "mean":
            return jnp.asarray(rng.normal(0.0, 0.5, leaf.shape), jnp.float32)
        if name == "var":
            return jnp.asarray(rng.uniform(0.5, 2.0, leaf.shape), jnp.float32)
        return leaf

    return jax.tree_util.tree_map_with_path(perturb, variables)


def _to_torch(x):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x), (0, 3, 1, 2))))


# max |torch - flax| / max |flax| allowed, derived from the float32 rounding of two evaluations
# (XLA and PyTorch add in other orders; tests/tolerances.py, relative to the output's scale):
# - eval mode: one sum of every convolution's reduction length of the depth-4 U-Net
#   (unet_reductions(4): 19950 terms): 1.0e-4;
# - train mode adds BN's batch statistics, a mean and a variance over the N*H*W values each BN
#   layer sees (2 images of 32x32: enc2..4 at 8, 4, 2 pixels a side, dec2..4 at 16, 8, 4):
#   2 * 840 terms more: 1.05e-4;
# - a kernel's gradient: the forward pass, the backward pass through the same reductions from
#   the top down, then the kernel gradient's own sum over N*H*W positions (at most 2*32*32 at
#   dec1): 1.5e-4, relative to the layer's largest gradient.
# Measured on this project's CPU: <= 1.1e-6 (eval), 1.4e-6 (train), 2.1e-6 (gradients); a wrong
# layer, statistic or transpose is off by order 1.
_SIDE = 32
_BN_COUNTS = [2 * (_SIDE // 2**i) ** 2 for i in (2, 3, 4)] + [
    2 * (_SIDE // 2**i) ** 2 for i in (1, 2, 3)
]
EVAL_RTOL = tolerances.network_atol(tolerances.unet_reductions(4), 1.0)
TRAIN_RTOL = tolerances.network_atol(tolerances.unet_reductions(4) + 2 * _BN_COUNTS, 1.0)
GRAD_RTOL = tolerances.network_atol(
    2 * (tolerances.unet_reductions(4) + 2 * _BN_COUNTS) + [2 * _SIDE * _SIDE], 1.0
)


def _relative_error(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    image = rng.random((2, 32, 32, 3), dtype=np.float32)
    flax_model = PConvUNet(num_layers=4)
    variables = jax.jit(flax_model.init)(
        jax.random.key(1), image, np.ones((2, 32, 32, 1), np.float32)
    )
    variables = _perturbed_variables(variables, rng)
    torch_model = PConvUNetTorch(num_layers=4)
    load_flax_variables(torch_model, variables)
    return flax_model, variables, torch_model, image


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_eval_output_matches_flax(models, mask_channels):
    flax_model, variables, torch_model, image = models
    mask = _random_hole_mask(np.random.default_rng(mask_channels), 2, 32, mask_channels)
    expected = np.asarray(jax.jit(flax_model.apply)(variables, image, mask))  # eval mode
    torch_model.eval()
    with torch.no_grad():
        got = torch_model(_to_torch(image), _to_torch(mask)).numpy().transpose(0, 2, 3, 1)
    assert np.abs(expected).max() > 0.1  # a real signal, not two zero outputs
    assert _relative_error(got, expected) < EVAL_RTOL


def test_train_mode_output_and_grads_match_flax(models):
    """Batch-statistics BN and the gradient of a scalar loss: the PyTorch training step agrees."""
    flax_model, variables, torch_model, image = models
    torch_model = copy.deepcopy(torch_model)  # train mode updates the running statistics
    mask = _random_hole_mask(np.random.default_rng(2), 2, 32, 1)

    def loss(params):
        out, _ = flax_model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            image,
            mask,
            train=True,
            mutable=["batch_stats"],
        )
        return jnp.mean(out**2), out

    # Jitted: eager, the forward and backward passes run op by op (2 min under load).
    (_, expected), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    torch_model.train()
    torch_model.zero_grad()
    got = torch_model(_to_torch(image), _to_torch(mask))
    torch.mean(got**2).backward()
    assert (
        _relative_error(got.detach().numpy().transpose(0, 2, 3, 1), np.asarray(expected))
        < TRAIN_RTOL
    )
    for name in ["enc1", "enc3", "dec2", "dec1"]:
        flax_grad = np.transpose(np.asarray(grads[name]["conv"]["kernel"]), (3, 2, 0, 1))
        torch_grad = getattr(torch_model, name).conv.weight.grad.numpy()
        assert _relative_error(torch_grad, flax_grad) < GRAD_RTOL, name


def test_load_rejects_mismatched_depth(models):
    _, variables, _, _ = models
    with pytest.raises(ValueError, match="module mismatch"):
        load_flax_variables(PConvUNetTorch(num_layers=5), variables)
