"""Official-style partial convolution in PyTorch (NCHW), as NVIDIA's `PartialConv2d` computes it.

The mask is convolved with an all-ones kernel of shape (C_out, C_in, k, k) (multi-channel masks),
which is what makes the official layer cost a second full convolution.
"""

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """Multi-channel partial convolution returning (output, updated_mask), both NCHW."""

    def __init__(self, *args, eps: float = 1e-8, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps
        self.register_buffer(
            "mask_kernel",
            torch.ones(self.out_channels, self.in_channels, *self.kernel_size),
            persistent=False,
        )
        self.window_size = float(self.in_channels * self.kernel_size[0] * self.kernel_size[1])

    def forward(self, x, mask):
        if mask.shape[1] == 1:
            mask = mask.expand(-1, x.shape[1], -1, -1)
        with torch.no_grad():
            valid = F.conv2d(mask, self.mask_kernel, None, self.stride, self.padding)
            updated = torch.clamp(valid, 0, 1)
            ratio = self.window_size / (valid + self.eps) * updated
        raw = super().forward(x * mask)
        if self.bias is None:
            return raw * ratio, updated
        b = self.bias.view(1, -1, 1, 1)
        return ((raw - b) * ratio + b) * updated, updated
