"""VGG16 up to pool3, the fixed feature extractor Ψ of the perceptual and style losses (Eq. 4-6).

Layers conv1_1 … conv3_3 (3×3, stride 1, zero padding 1, ReLU) with 2×2/2 max pooling after
conv1_2, conv2_2 and conv3_3, i.e. torchvision's `vgg16().features[:17]`; the outputs are pool1,
pool2 and pool3. Input: RGB in [0, 1], normalised inside with the ImageNet mean and std that
torchvision's weights expect (the author's FAQ warns that skipping this changes the loss scale).

Weights: the ImageNet VGG16 shipped in `pconv_jax/nn/weights/` (checked against its SHA256 on load),
a torchvision state-dict file (`.pth`, read with torch, which only this path needs), or an `.npz`
written by `save_vgg16_npz` / `pconv port-vgg16`. The weights are constants: `make_vgg_features_fn`
closes over them behind `stop_gradient`, so they are never differentiated or optimised.
"""

from __future__ import annotations

import hashlib
import pathlib
import zipfile
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax import atomic
from pconv_jax.config import IMAGENET_MEAN, IMAGENET_STD
from pconv_jax.errors import UserError

# (name, input channels, output channels, index in torchvision's `vgg16().features`).
VGG16_CONVS = (
    ("conv1_1", 3, 64, 0),
    ("conv1_2", 64, 64, 2),
    ("conv2_1", 64, 128, 5),
    ("conv2_2", 128, 128, 7),
    ("conv3_1", 128, 256, 10),
    ("conv3_2", 256, 256, 12),
    ("conv3_3", 256, 256, 14),
)
POOL_AFTER = ("conv1_2", "conv2_2", "conv3_3")  # 2x2/2 max pooling -> pool1, pool2, pool3

SHIPPED_WEIGHTS = (
    pathlib.Path(__file__).parent / "weights" / "vgg16_imagenet_conv1_1-conv3_3_hwio.npz"
)
SHIPPED_SHA256 = "85594ab2ae9403de8d5ce81d5edb8cdb242b6fa10ca492e3bde2c8fc5d905d2a"

Params = dict[str, dict[str, Any]]


def max_pool_2x2(x_NxHxWxC: jax.Array) -> jax.Array:
    """2×2/2 max pooling, [N,H,W,C] -> [N,H//2,W//2,C] (a last odd row/column is dropped).

    Written as a reshape + max rather than `nn.max_pool`: the forward values are the same, but
    the gradient becomes elementwise instead of XLA's select-and-scatter, ~3× slower on CPU (README,
    loss benchmark). Ties within a window (zeros after ReLU, flat image regions) share the gradient
    equally where torch gives it all to one element; both are valid subgradients of max.
    """
    n, h, w, c = x_NxHxWxC.shape
    x = x_NxHxWxC[:, : h // 2 * 2, : w // 2 * 2]
    return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class VGG16Features(nn.Module):
    """VGG16 feature extractor returning [pool1, pool2, pool3].

    Attributes:
      dtype: compute dtype of the convolutions (None = float32; bfloat16 allowed). The
        normalisation is done in float32 and parameters are stored in float32.
    """

    dtype: Any = None

    @nn.compact
    def __call__(self, images):
        """Args: images [N,H,W,3] float RGB in [0,1].

        Returns: [pool1 [N,H/2,W/2,64], pool2 [N,H/4,W/4,128], pool3 [N,H/8,W/8,256]] in the
        compute dtype (sizes rounded down at each pooling, as torch's MaxPool2d does).
        """
        if images.ndim != 4 or images.shape[-1] != 3:
            raise UserError(f"VGG16Features expects [N,H,W,3] RGB images, got {images.shape}")
        mean = jnp.asarray(IMAGENET_MEAN, jnp.float32).reshape(1, 1, 1, 3)
        std = jnp.asarray(IMAGENET_STD, jnp.float32).reshape(1, 1, 1, 3)
        x = (images.astype(jnp.float32) - mean) / std
        dtype = self.dtype or jnp.float32
        x = x.astype(dtype)
        pools = []
        for name, _, out_channels, _ in VGG16_CONVS:
            conv = nn.Conv(out_channels, (3, 3), padding=((1, 1), (1, 1)), dtype=dtype, name=name)
            x = nn.relu(conv(x))
            if name in POOL_AFTER:
                x = max_pool_2x2(x)
                pools.append(x)
        return pools


def make_vgg_features_fn(vgg_params: Params, dtype=None) -> Callable[[jax.Array], list]:
    """Returns `features_fn(images [N,H,W,3] in [0,1]) -> [pool1, pool2, pool3]` (jittable).

    The parameters pass through `stop_gradient`, so no gradient ever reaches them even when the
    closure is differentiated; keep them out of the trainable tree and the optimizer state.
    `vgg_params` may be concrete arrays or tracers (e.g. an argument of a jitted train step).
    """
    model = VGG16Features(dtype=dtype)

    def features_fn(images):
        frozen = jax.lax.stop_gradient(vgg_params)
        return model.apply({"params": frozen}, images)

    return features_fn


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _weights_format(path: pathlib.Path) -> str:
    """'npz' or 'torch', from the file's contents (both can be zip archives)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch"
    else:
        with open(path, "rb") as f:
            head = f.read(2)
        if len(head) == 2 and head[0] == 0x80:  # a pickle: torch's legacy (pre-1.6) format
            return "torch"
    raise UserError(f"{path} is neither an .npz of VGG16 weights nor a torch state-dict file")


def _checked(arrays: dict[str, np.ndarray], source: str) -> Params:
    """Validates the 14 arrays named 'conv1_1/kernel' … 'conv3_3/bias' (HWIO) into a param tree."""
    params = {}
    for name, cin, cout, _ in VGG16_CONVS:
        layer = {}
        for kind, shape in (("kernel", (3, 3, cin, cout)), ("bias", (cout,))):
            key = f"{name}/{kind}"
            if key not in arrays:
                raise UserError(f"{source}: missing VGG16 weight {key!r} of shape {shape}")
            value = np.asarray(arrays[key])
            if value.shape != shape:
                raise UserError(f"{source}: {key!r} has shape {value.shape}, expected {shape}")
            if not np.issubdtype(value.dtype, np.floating) or not np.all(np.isfinite(value)):
                raise UserError(f"{source}: {key!r} must hold finite floats ({value.dtype})")
            layer[kind] = value.astype(np.float32)
        params[name] = layer
    return params


def load_torchvision_vgg16(path: str) -> Params:
    """Reads a torchvision `vgg16` state dict (`features.{0,2,5,7,10,12,14}.{weight,bias}`, OIHW).

    Other keys (the classifier) are ignored. Needs torch, imported only here.

    Returns: the Flax params of `VGG16Features` (HWIO kernels, float32 numpy arrays).
    """
    try:
        import torch
    except ImportError:
        raise ImportError(
            "reading a torchvision .pth file needs torch (only for this): `pip install torch`, "
            "or convert it once on a machine with torch: `pconv port-vgg16 SRC.pth DST.npz`, "
            "then use the .npz"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"could not read {path} as a torch state dict: {e}") from e
    if not isinstance(state, dict):
        raise UserError(f"{path} holds a {type(state).__name__}, not a state dict")
    arrays = {}
    for name, cin, cout, index in VGG16_CONVS:
        for kind, torch_kind in (("kernel", "weight"), ("bias", "bias")):
            key = f"features.{index}.{torch_kind}"
            if key not in state:
                sample = ", ".join(list(state)[:6])
                raise UserError(f"{path}: missing torchvision key {key!r} (found: {sample}, …)")
            if not isinstance(state[key], torch.Tensor):
                raise UserError(f"{path}: {key!r} is a {type(state[key]).__name__}, not a tensor")
            value = state[key].detach().to(torch.float32).numpy()
            if kind == "kernel":
                if value.shape != (cout, cin, 3, 3):
                    raise UserError(
                        f"{path}: {key!r} has shape {value.shape}, expected {(cout, cin, 3, 3)}"
                    )
                value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
            arrays[f"{name}/{kind}"] = value
    return _checked(arrays, path)


def load_vgg16_params(path: str = "") -> Params:
    """Loads VGG16 params for `VGG16Features`: {'conv1_1': {'kernel', 'bias'}, …}.

    Args:
      path: "" for the shipped ImageNet weights (SHA256-verified), else an `.npz` (keys
        'conv1_1/kernel' … HWIO) or a torchvision `.pth`; the format is read from the contents.
    Returns: a dict of float32 numpy arrays; use as `VGG16Features().apply({'params': p}, x)`.
    """
    file = pathlib.Path(path) if path else SHIPPED_WEIGHTS
    if not file.is_file():
        raise FileNotFoundError(f"VGG16 weights file not found: {file}")
    if not path:
        digest = _sha256(file)
        if digest != SHIPPED_SHA256:
            raise UserError(
                f"shipped VGG16 weights {file} are corrupted: SHA256 {digest}, expected "
                f"{SHIPPED_SHA256}; reinstall pconv_jax"
            )
    if _weights_format(file) == "torch":
        return load_torchvision_vgg16(str(file))
    with np.load(file, allow_pickle=False) as data:
        return _checked({k: data[k] for k in data.files}, str(file))


def save_vgg16_npz(params: Params, path: str) -> None:
    """Writes the seven convs to `path` exactly (keys 'conv1_1/kernel' … HWIO, float32)."""
    arrays = {
        f"{name}/{kind}": np.asarray(params.get(name, {}).get(kind))
        for name, *_ in VGG16_CONVS
        for kind in ("kernel", "bias")
        if kind in params.get(name, {})
    }
    checked = _checked(arrays, "params to save")
    flat = {f"{name}/{kind}": v for name, layer in checked.items() for kind, v in layer.items()}
    # A file object: np.savez would append ".npz" to other names.
    with atomic.replacing(path) as temporary, open(temporary, "wb") as f:
        np.savez(f, **flat)
