"""mmediting's (mmagic, June 2020) PConv inpaintor re-written in PyTorch from reading its code.

Written for the converter's exactness tests: the modules are named so that `state_dict()` yields
exactly the keys of mmediting's checkpoints, and `inpaint` follows its own inference path.
Sources (open-mmlab/mmagic at e7b1c120): mmedit/models/common/partial_conv.py (the layer),
common/mask_conv_module.py + mmcv ConvModule (conv, `bn`, bias only without norm),
backbones/encoder_decoders/{encoders/pconv_encoder,decoders/pconv_decoder,pconv_encoder_decoder}.py
(the U-Net), inpaintors/pconv_inpaintor.py `forward_test` (mask 1 = hole, the generator gets
1 - mask on 3 channels, composite), one_stage.py (`generator`, `loss_percep`),
losses/perceptual_loss.py (`vgg.vgg_layers`, `vgg.mean`, `vgg.std`), apis/inpainting_inference.py
and datasets/pipelines (BGR load, Normalize 127.5/127.5 to_rgb=False, mask > 0 = hole,
GetMaskedImage = img * (1 - mask)), core/misc.py `tensor2img` (clamp to [-1, 1], to [0, 1],
channels swapped, x255, round) and demo/inpainting_demo.py (swapped back, written as BGR).
"""

from __future__ import annotations

import collections

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """multi_channel=True: a (C_out, C_in, k, k) buffer of ones sums the mask; eps 1e-8."""

    def __init__(self, *args, eps: float = 1e-8, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.register_buffer("weight_mask_updater", torch.ones(shape))
        self.numel = int(np.prod(shape[1:]))

    def forward(self, x, mask):
        with torch.no_grad():
            count = F.conv2d(mask, self.weight_mask_updater, None, self.stride, self.padding)
            ratio = self.numel / (count + self.eps)
            updated = torch.clamp(count, 0, 1)
            ratio = ratio * updated
        raw = super().forward(x * mask)
        if self.bias is None:
            return raw * ratio, updated
        b = self.bias.view(1, self.out_channels, 1, 1)
        return ((raw - b) * ratio + b) * updated, updated


class MaskConvModule(nn.Module):
    """conv -> bn (if norm) -> activation; bias only without norm (mmcv's bias='auto')."""

    def __init__(self, cin, cout, k, stride, norm: bool, act: str | None):
        super().__init__()
        self.conv = PartialConv2d(cin, cout, k, stride, (k - 1) // 2, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x, mask):
        x, mask = self.conv(x, mask)
        if hasattr(self, "bn"):
            x = self.bn(x)
        if self.act == "relu":
            x = F.relu(x)
        elif self.act == "leaky":
            x = F.leaky_relu(x, 0.2)
        return x, mask


class Encoder(nn.Module):
    def __init__(self, num_layers: int):
        super().__init__()
        self.num_layers = num_layers
        self.enc1 = MaskConvModule(3, 64, 7, 2, False, "relu")
        self.enc2 = MaskConvModule(64, 128, 5, 2, True, "relu")
        self.enc3 = MaskConvModule(128, 256, 5, 2, True, "relu")
        self.enc4 = MaskConvModule(256, 512, 3, 2, True, "relu")
        for i in range(5, num_layers + 1):
            self.add_module(f"enc{i}", MaskConvModule(512, 512, 3, 2, True, "relu"))

    def forward(self, x, mask):
        feats, masks = [x], [mask]
        for i in range(1, self.num_layers + 1):
            x, mask = getattr(self, f"enc{i}")(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks


class Decoder(nn.Module):
    def __init__(self, num_layers: int):
        super().__init__()
        self.num_layers = num_layers
        for i in range(5, num_layers + 1):
            self.add_module(f"dec{i}", MaskConvModule(1024, 512, 3, 1, True, "leaky"))
        self.dec4 = MaskConvModule(512 + 256, 256, 3, 1, True, "leaky")
        self.dec3 = MaskConvModule(256 + 128, 128, 3, 1, True, "leaky")
        self.dec2 = MaskConvModule(128 + 64, 64, 3, 1, True, "leaky")
        self.dec1 = MaskConvModule(64 + 3, 3, 3, 1, False, None)

    def forward(self, feats, masks):
        h, m = feats[-1], masks[-1]
        for i in range(self.num_layers, 0, -1):
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), feats[i - 1]], 1)
            m = torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), masks[i - 1]], 1)
            h, m = getattr(self, f"dec{i}")(h, m)
        return h, m


class Generator(nn.Module):
    """PConvEncoderDecoder."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.encoder = Encoder(num_layers)
        self.decoder = Decoder(num_layers)

    def forward(self, x, mask):
        return self.decoder(*self.encoder(x, mask))


class PerceptualVGG(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M"):
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=True)]
                cin = item
        self.vgg_layers = nn.Sequential(*layers)  # vgg16.features[:17]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))


class PerceptualLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.vgg = PerceptualVGG()


class PConvInpaintor(nn.Module):
    """The module whose state_dict() is a checkpoint's 'state_dict'."""

    def __init__(self, num_layers: int = 7):
        super().__init__()
        self.generator = Generator(num_layers)
        self.loss_percep = PerceptualLoss()


def randomize(model: nn.Module, seed: int, last_std: float, window_scaled=False) -> None:
    """He-normal kernels, random biases and BN affine/running statistics; dec1 kernels drawn
    with `last_std` so that outputs mostly fall inside the pixel range. `window_scaled`: kernels
    C_in*k*k times larger, for layers that divide by the mask sum only (naoto0804's)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name.endswith("weight_mask_updater") or name.endswith("mask_conv.weight"):
                continue
            if name.endswith("num_batches_tracked"):
                p.fill_(123456)
            elif p.ndim == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                std = last_std if ".dec1." in name or name.startswith("dec_1.") else None
                scale = fan_in if window_scaled else 1.0
                p.normal_(0.0, scale * (std or (2.0 / fan_in) ** 0.5), generator=gen)
            elif name.endswith("running_var"):
                p.uniform_(0.5, 2.0, generator=gen)
            elif name.endswith("running_mean"):
                p.normal_(0.0, 0.5, generator=gen)
            elif name.endswith("bn.weight"):
                p.uniform_(0.5, 1.5, generator=gen)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1, generator=gen)


def make_checkpoint(num_layers: int, seed: int = 0, last_std: float = 0.02, optimizer=False):
    """(a random PConvInpaintor in eval mode, the dict mmediting's checkpoint holds).

    Structure of a published mmediting checkpoint (mmcv's save_checkpoint, publish_model.py):
    {'meta': {...}, 'state_dict': OrderedDict}, optionally 'optimizer': {'generator': ...}.
    """
    model = PConvInpaintor(num_layers)
    randomize(model, seed, last_std)
    model.eval()
    state = collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    meta = {
        "mmedit_version": "0.1.0",
        "config": "model = dict(type='PConvInpaintor', ...)",
        "epoch": 1,
        "iter": 500000,
        "mmcv_version": "0.5.9",
        "time": "Fri Jun 19 10:00:00 2020",
    }
    checkpoint = {"meta": meta, "state_dict": state}
    if optimizer:
        adam = torch.optim.Adam(model.generator.parameters(), lr=5e-5)
        checkpoint["optimizer"] = {"generator": adam.state_dict()}
    return model, checkpoint


def inpaint(model: PConvInpaintor, rgb: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """mmediting's inference of one image: uint8 RGB [H,W,3], bool holes [H,W] -> uint8 RGB."""
    bgr = rgb[..., ::-1].astype(np.float32)
    img = (bgr - np.float32(127.5)) * np.float32(1.0 / 127.5)  # mmcv.imnormalize
    mask = holes.astype(np.float32)[..., None]  # LoadMask: mask > 0 -> 1 (hole)
    masked = img * (1.0 - mask)  # GetMaskedImage
    masked_t = torch.from_numpy(np.ascontiguousarray(masked.transpose(2, 0, 1)))[None]
    mask_t = torch.from_numpy(np.ascontiguousarray(mask.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        mask_input = 1.0 - mask_t.expand_as(masked_t)
        fake_res, _ = model.generator(masked_t, mask_input)
        fake_img = fake_res * mask_t + masked_t * (1.0 - mask_t)
    out = ((fake_img[0].clamp(-1, 1) + 1) / 2).numpy()  # tensor2img, min_max=(-1, 1)
    out = np.transpose(out[[2, 1, 0]], (1, 2, 0))  # BGR -> RGB (the demo swaps back to write)
    return (out * 255.0).round().astype(np.uint8)
