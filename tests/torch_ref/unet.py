"""The paper's PConv U-Net in PyTorch (NCHW), built from the official-style `PartialConv2d`.

Same shape as `pconv_jax.PConvUNet` (appendix table): encoder enc1 7x7/64 (bias, no BN), enc2
5x5/128, enc3 5x5/256, enc4..encL 3x3/512, all stride 2, BN + ReLU; decoder decL..dec1: nearest x2
upsampling of features AND mask, concatenation with the matching encoder output (upsampled tensor
first, then the skip; features and masks separately), 3x3/1 partial conv + BN + LeakyReLU(0.2);
dec1 concatenates with the input image and mask and maps to 3 channels with a bias.

Masks are multi-channel, as in the official inpainting usage (`multi_channel=True`): every mask has
as many channels as the features it belongs to, and the mask sum is a full convolution with an
all-ones (C_out, C_in, k, k) kernel. Module names (`enc{i}.conv`, `enc{i}.bn`, `dec{i}...`) mirror
the Flax module paths, so `load_flax_variables` can copy a pconv_jax model's weights in.

Usable for training: `model.train()` uses batch statistics; the mask path runs without gradients.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .pconv import PartialConv2d


def encoder_spec(num_layers: int) -> list[tuple[int, int]]:
    """(kernel_size, out_channels) of enc1..encL, as in the appendix table."""
    if num_layers < 4:
        raise ValueError(f"num_layers must be at least 4 (the paper uses 7 or 8), got {num_layers}")
    return [(7, 64), (5, 128), (5, 256)] + [(3, 512)] * (num_layers - 3)


class PConvBlock(nn.Module):
    """Partial conv, optional BatchNorm, activation; returns (features, mask), both NCHW."""

    def __init__(self, in_ch, out_ch, kernel_size, stride, batch_norm, activation):
        super().__init__()
        self.conv = PartialConv2d(
            in_ch, out_ch, kernel_size, stride, padding=(kernel_size - 1) // 2, bias=not batch_norm
        )
        # Flax BatchNorm(momentum=0.9, epsilon=1e-5) = torch's momentum 0.1, eps 1e-5, except
        # that torch updates the running variance with the unbiased batch variance (n/(n-1)
        # times Flax's); tests/integration/nn/test_unet_torch_full.py maps the two.
        self.bn = nn.BatchNorm2d(out_ch, eps=1e-5, momentum=0.1) if batch_norm else None
        self.activation = activation

    def forward(self, x, mask):
        y, new_mask = self.conv(x, mask)
        if self.bn is not None:
            y = self.bn(y)
        if self.activation == "relu":
            y = F.relu(y)
        elif self.activation == "leaky_relu":
            y = F.leaky_relu(y, 0.2)
        return y, new_mask


class PConvUNetTorch(nn.Module):
    """PConv U-Net with `num_layers` encoder layers (8 for 512x512 inputs, 7 for 256x256)."""

    def __init__(self, num_layers: int = 7):
        super().__init__()
        self.num_layers = num_layers
        spec = encoder_spec(num_layers)
        in_ch = 3
        channels = [3]  # channels of skip i-1 (index 0: the input image)
        for i, (k, out_ch) in enumerate(spec, start=1):
            block = PConvBlock(in_ch, out_ch, k, 2, i > 1, "relu")
            self.add_module(f"enc{i}", block)
            channels.append(out_ch)
            in_ch = out_ch
        for i in range(num_layers, 0, -1):
            skip_ch = channels[i - 1]
            last = i == 1
            out_ch = 3 if last else skip_ch
            act = "none" if last else "leaky_relu"
            self.add_module(f"dec{i}", PConvBlock(in_ch + skip_ch, out_ch, 3, 1, not last, act))
            in_ch = out_ch

    def forward(self, image, mask):
        """Inpaints `image` [N,3,H,W] in [0,1] where `mask` is 0.

        `mask` is [N,1,H,W] or [N,3,H,W], 1 = known. Returns the raw output [N,3,H,W]; H and W
        must be divisible by 2**num_layers.
        """
        multiple = 2**self.num_layers
        if image.shape[2] % multiple or image.shape[3] % multiple:
            raise ValueError(f"H and W must be divisible by {multiple}, got {tuple(image.shape)}")
        mask = mask.expand(-1, 3, -1, -1) if mask.shape[1] == 1 else mask
        skips = [(image, mask)]
        h, m = image, mask
        for i in range(1, self.num_layers + 1):
            h, m = getattr(self, f"enc{i}")(h, m)
            skips.append((h, m))
        for i in range(self.num_layers, 0, -1):
            skip_h, skip_m = skips[i - 1]
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip_h], dim=1)
            m = torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), skip_m], dim=1)
            h, m = getattr(self, f"dec{i}")(h, m)
        return h


def count_kernel_weights(model: nn.Module) -> int:
    """Number of convolution-kernel weights (no biases, no BN), the appendix table's total."""
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith("conv.weight"))


def load_flax_variables(model: PConvUNetTorch, variables) -> None:
    """Copies a pconv_jax `PConvUNet`'s `params` and `batch_stats` into `model`, in place.

    Kernels go HWIO -> OIHW; BN `scale`/`bias`/`mean`/`var` map to `weight`/`bias`/`running_mean`/
    `running_var`. Raises ValueError when a module or a shape does not match.
    """
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    state = {}
    for name, block in params.items():
        state[f"{name}.conv.weight"] = np.transpose(
            np.asarray(block["conv"]["kernel"]), (3, 2, 0, 1)
        )
        if "bias" in block["conv"]:
            state[f"{name}.conv.bias"] = np.asarray(block["conv"]["bias"])
        if "bn" in block:
            state[f"{name}.bn.weight"] = np.asarray(block["bn"]["scale"])
            state[f"{name}.bn.bias"] = np.asarray(block["bn"]["bias"])
            state[f"{name}.bn.running_mean"] = np.asarray(stats[name]["bn"]["mean"])
            state[f"{name}.bn.running_var"] = np.asarray(stats[name]["bn"]["var"])
    target = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if set(state) != set(target):
        raise ValueError(
            f"module mismatch: only in flax {sorted(set(state) - set(target))}, "
            f"only in torch {sorted(set(target) - set(state))}"
        )
    with torch.no_grad():
        for key, value in state.items():
            if tuple(value.shape) != tuple(target[key].shape):
                raise ValueError(
                    f"{key}: flax shape {tuple(value.shape)} != torch {tuple(target[key].shape)}"
                )
            target[key].copy_(torch.from_numpy(np.array(value, dtype=np.float32)))
