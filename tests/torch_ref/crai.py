"""CRAI's CRAINet (FREVA-CLINT/climatereconstructionAI) re-written from reading its code.

For the converter's exactness tests: modules are named so that `state_dict()` yields the keys of
its checkpoints (`encoder.{i}.partial_conv.{input_conv,mask_conv,bn}`, `decoder.{i}...`), and
`forward` follows CRAI's for one time step without LSTM/GRU/attention/channel fusion. Sources:
model/net.py (`CRAINet`: encoder blocks stride 2 with ReLU and no bias; decoder blocks stride 1
with LeakyReLU() (slope 0.01), the last one with a bias and neither BN nor activation; then
`constrain_bounds`), model/encoder_decoder.py (`DecoderBlock`: nn.Upsample(skip size, nearest) of
features and mask, concatenated [upsampled, skip]), model/partial_conv_module.py (`PConvBlock`:
pad features and mask by k//2 (`F.pad` zeros, or `bound_pad`: zeros in latitude, then circular
in longitude), conv with padding 0, (out - b)/mask_sum + b where mask_sum > 0 else 0, new mask
1[mask_sum > 0], BN (masked or not), activation), model/conv_configs.py (default: widths
conv_factor / 2**(L-1-i), kernels 7, 5.., 3, BN on the first layer unless --disable-first-bn;
"orig" (--n-filters n): n, 2n, 4n, 8n, 8n.., kernels 7, 5, 5, 3.., no BN on the first layer),
utils/masked_batchnorm.py (mean = sum(x)/K unmasked, var = sum(((x - mean)·m)²)/K),
model/bounds_scaler.py (`constrain_bounds`, copied in behaviour including the upper-only case).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def bound_pad(x, p):
    x = F.pad(x, (0, 0, p[2], 0), "constant", 0.0)
    x = F.pad(x, (0, 0, 0, p[3]), "constant", 0.0)
    return F.pad(x, (p[0], p[1], 0, 0), mode="circular")


class MaskedBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x, mask):
        if not self.training:
            return super().forward(x)
        dims = (0, 2, 3)
        count = mask.sum(dims)
        mean = x.sum(dims) / count
        var = (((x - mean[None, :, None, None]) * mask) ** 2).sum(dims) / count
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        out = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps)
        return out * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class PConvBlock(nn.Module):
    def __init__(self, cin, cout, k, stride, bias, activation, bn, global_padding, masked_bn):
        super().__init__()
        self.padding = (k // 2,) * 4
        self.pad = bound_pad if global_padding else F.pad
        self.input_conv = nn.Conv2d(cin, cout, k, stride, 0, bias=bias)
        self.mask_conv = nn.Conv2d(cin, cout, k, stride, 0, bias=False)
        nn.init.constant_(self.mask_conv.weight, 1.0)
        self.mask_conv.weight.requires_grad_(False)
        self.activation = activation
        self.masked_bn = masked_bn
        if bn:
            self.bn = MaskedBatchNorm2d(cout) if masked_bn else nn.BatchNorm2d(cout)

    def forward(self, x, mask):
        pad_x, pad_m = self.pad(x, self.padding), self.pad(mask, self.padding)
        out = self.input_conv(pad_x * pad_m)
        if self.input_conv.bias is not None:
            bias = self.input_conv.bias.view(1, -1, 1, 1).expand_as(out)
        else:
            bias = torch.zeros_like(out)
        with torch.no_grad():
            mask_sum = self.mask_conv(pad_m)
        holes = mask_sum == 0
        mask_sum = mask_sum.masked_fill_(holes, 1.0)
        out = ((out - bias) / mask_sum + bias).masked_fill_(holes, 0.0)
        new_mask = torch.ones_like(out).masked_fill_(holes, 0.0)
        if hasattr(self, "bn"):
            out = self.bn(out, new_mask) if self.masked_bn else self.bn(out)
        if self.activation is not None:
            out = self.activation(out)
        return out, new_mask


class Block(nn.Module):  # EncoderBlock / DecoderBlock: only `partial_conv` carries weights
    def __init__(self, **kwargs):
        super().__init__()
        self.partial_conv = PConvBlock(**kwargs)


def default_layers(conv_factor, enc_dec_layers, pool_layers, first_bn=True):
    """(kernel, out channels, bn) of the encoder, CRAI's init_enc_conv_configs."""
    layers = []
    for i in range(enc_dec_layers):
        k = 7 if i == 0 else (5 if i < enc_dec_layers - 1 else 3)
        layers.append((k, conv_factor // 2 ** (enc_dec_layers - i - 1), i > 0 or first_bn))
    return layers + [(3, conv_factor, True)] * pool_layers


def orig_layers(n_filters, enc_dec_layers):
    """(kernel, out channels, bn) of the encoder, CRAI's init_enc_conv_configs_orig."""
    layers = [(7, n_filters, False), (5, 2 * n_filters, True), (5, 4 * n_filters, True)]
    layers += [(3, 8 * n_filters, True)] * (enc_dec_layers - 3)
    return layers


class CRAINet(nn.Module):
    def __init__(self, layers, in_channels=1, out_channels=1, global_padding=False,
                 masked_bn=False, bounds=None):  # fmt: skip
        super().__init__()
        common = dict(global_padding=global_padding, masked_bn=masked_bn)
        encoder, cin = [], in_channels
        for k, cout, bn in layers:
            encoder.append(Block(cin=cin, cout=cout, k=k, stride=2, bias=False,
                                 activation=nn.ReLU(), bn=bn, **common))  # fmt: skip
            cin = cout
        self.encoder = nn.ModuleList(encoder)
        skips = [in_channels] + [c for _, c, _ in layers[:-1]]
        decoder, below = [], layers[-1][1]
        for i, skip in enumerate(reversed(skips)):
            last = i == len(layers) - 1
            cout = out_channels if last else skip
            decoder.append(Block(cin=below + skip, cout=cout, k=3, stride=1, bias=last,
                                 activation=None if last else nn.LeakyReLU(), bn=not last,
                                 **common))  # fmt: skip
            below = cout
        self.decoder = nn.ModuleList(decoder)
        self.bounds = bounds  # [out_channels, 2] (min, max) in the network's units, or None

    def forward(self, x, mask):
        hs, ms = [x], [mask]
        for block in self.encoder:
            h, m = block.partial_conv(hs[-1], ms[-1])
            hs.append(h)
            ms.append(m)
        h, m = hs[-1], ms[-1]
        for i, block in enumerate(self.decoder):
            skip_h, skip_m = hs[-2 - i], ms[-2 - i]
            up = nn.Upsample(skip_h.size()[-2:], mode="nearest")
            h = torch.cat([up(h), skip_h], 1)
            m = torch.cat([up(m), skip_m], 1)
            h, m = block.partial_conv(h, m)
        return constrain_bounds(h, self.bounds)


def constrain_bounds(h, bounds):
    """model/bounds_scaler.py's behaviour, bounds [C, 2] float64 numpy (or None)."""
    if bounds is None:
        return h
    h = h.clone()
    for i in range(len(bounds)):
        n_inf = np.isinf(bounds[i]).sum()
        if n_inf == 2:
            continue
        if n_inf == 0:
            lo, hi = bounds[i]
            h[:, i] = torch.sigmoid(h[:, i]) * (hi - lo) + lo
        elif bounds[i, 0] == np.inf:  # never true for a lower bound of -inf (CRAI's code)
            h[:, i] = -torch.exp(-h[:, i]) + bounds[i, 1]
        else:
            h[:, i] = torch.exp(h[:, i]) + bounds[i, 0]
    return h


def randomize(model: nn.Module, seed: int) -> None:
    """He-scaled random weights and non-trivial BN statistics (mask kernels stay ones)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if "mask_conv" in name or "num_batches" in name:
                continue
            if name.endswith("input_conv.weight"):
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2 / fan_in) ** 0.5)
            elif name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            else:
                tensor.copy_(0.2 * torch.randn(tensor.shape, generator=generator))


def checkpoint(model: nn.Module, n_iter: int = 10) -> dict:
    """The dict CRAI's utils/io.py `save_ckpt` writes for one label."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    label = str(n_iter)
    optimizer = {"state": {}, "param_groups": [{"lr": 2e-4, "params": []}]}
    return {
        "labels": [label],
        "train_stats": None,
        label: {"n_iter": n_iter, "model": state, "optimizer": optimizer},
    }


def from_checkpoint(ckpt: dict, layers, label=None, **kwargs) -> CRAINet:
    """A CRAINet of `layers` loaded from a checkpoint dict (its last label by default), in eval
    mode."""
    label = ckpt["labels"][-1] if label is None else label
    state = ckpt[label]["model"]
    in_channels = state["encoder.0.partial_conv.input_conv.weight"].shape[1]
    last = f"decoder.{len(layers) - 1}.partial_conv.input_conv.weight"
    model = CRAINet(layers, in_channels, state[last].shape[0], **kwargs)
    model.load_state_dict(state)
    return model.eval()
