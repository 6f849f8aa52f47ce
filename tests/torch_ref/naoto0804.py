"""naoto0804/pytorch-inpainting-with-partial-conv's PConvUNet re-written from reading its code.

For the converter's exactness tests: modules are named so that `state_dict()` yields the keys of
its checkpoints, and `inpaint` follows its own inference path. Sources (at 8d64e7e): net.py
(`PartialConv`: input_conv + a fixed all-ones mask_conv, output (conv(x*m) - b)/sum(M) + b where
sum(M) > 0, else 0; `PCBActiv`; `PConvUNet`: enc_1 7x7 no BN no bias, dec_1 with bias, upsampled
tensor first in the concatenation), util/io.py (`save_ckpt`: {'n_iter', 'model', 'optimizer'}),
train.py/test.py (Resize, ToTensor, Normalize(ImageNet)), places2.py (input = gt * mask, mask 1 =
valid, an RGB image), evaluation.py (composite mask*image + (1-mask)*output, unnormalize,
save_image).
"""

from __future__ import annotations

import collections
import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class PartialConv(nn.Module):
    def __init__(self, cin, cout, k, stride, padding, bias):
        super().__init__()
        self.input_conv = nn.Conv2d(cin, cout, k, stride, padding, bias=bias)
        self.mask_conv = nn.Conv2d(cin, cout, k, stride, padding, bias=False)
        nn.init.constant_(self.mask_conv.weight, 1.0)
        self.mask_conv.weight.requires_grad_(False)

    def forward(self, x, mask):
        out = self.input_conv(x * mask)
        if self.input_conv.bias is not None:
            bias = self.input_conv.bias.view(1, -1, 1, 1).expand_as(out)
        else:
            bias = torch.zeros_like(out)
        with torch.no_grad():
            count = self.mask_conv(mask)
        holes = count == 0
        count = count.masked_fill(holes, 1.0)
        out = ((out - bias) / count + bias).masked_fill(holes, 0.0)
        return out, torch.ones_like(out).masked_fill(holes, 0.0)


class PCBActiv(nn.Module):
    def __init__(self, cin, cout, k, stride, bn=True, act="relu", bias=False):
        super().__init__()
        self.conv = PartialConv(cin, cout, k, stride, (k - 1) // 2, bias)
        if bn:
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


class PConvUNet(nn.Module):
    def __init__(self, layer_size: int = 7):
        super().__init__()
        self.layer_size = layer_size
        self.enc_1 = PCBActiv(3, 64, 7, 2, bn=False)
        self.enc_2 = PCBActiv(64, 128, 5, 2)
        self.enc_3 = PCBActiv(128, 256, 5, 2)
        self.enc_4 = PCBActiv(256, 512, 3, 2)
        for i in range(5, layer_size + 1):
            self.add_module(f"enc_{i}", PCBActiv(512, 512, 3, 2))
        for i in range(5, layer_size + 1):
            self.add_module(f"dec_{i}", PCBActiv(1024, 512, 3, 1, act="leaky"))
        self.dec_4 = PCBActiv(512 + 256, 256, 3, 1, act="leaky")
        self.dec_3 = PCBActiv(256 + 128, 128, 3, 1, act="leaky")
        self.dec_2 = PCBActiv(128 + 64, 64, 3, 1, act="leaky")
        self.dec_1 = PCBActiv(64 + 3, 3, 3, 1, bn=False, act=None, bias=True)

    def forward(self, x, mask):
        feats, masks = [x], [mask]
        for i in range(1, self.layer_size + 1):
            x, mask = getattr(self, f"enc_{i}")(x, mask)
            feats.append(x)
            masks.append(mask)
        h, m = feats[-1], masks[-1]
        for i in range(self.layer_size, 0, -1):
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), feats[i - 1]], 1)
            m = torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), masks[i - 1]], 1)
            h, m = getattr(self, f"dec_{i}")(h, m)
        return h, m


@contextlib.contextmanager
def cuda_tagged(tensors):
    """Legacy torch.save writes these tensors' storages as 'cuda:0' (as a GPU run saves its Adam
    state), without a GPU: the storage location tag is all that the file records."""
    import torch.serialization as serialization

    pointers = {t.untyped_storage().data_ptr() for t in tensors}
    original = serialization.location_tag

    def tag(storage):
        return "cuda:0" if storage.data_ptr() in pointers else original(storage)

    serialization.location_tag = tag
    try:
        yield
    finally:
        serialization.location_tag = original


def make_checkpoint(layer_size: int, seed: int = 0, last_std: float = 0.02):
    """(a random PConvUNet in eval mode, the dict util/io.py's save_ckpt writes, the tensors of
    its optimizer entry, which a GPU run tags for CUDA)."""
    from torch_ref.mmagic_2020 import randomize

    model = PConvUNet(layer_size)
    randomize(model, seed, last_std, window_scaled=True)
    model.eval()
    state = collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    params = [p for p in model.parameters() if p.requires_grad]
    # Adam's state dict as torch 0.4 wrote it: integer param ids, an int 'step'.
    ids = list(range(140_000_000, 140_000_000 + len(params)))
    adam_state = {
        i: {"step": 1_000_000, "exp_avg": torch.randn(p.shape), "exp_avg_sq": torch.rand(p.shape)}
        for i, p in zip(ids, params)
    }
    group = {"lr": 5e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False}
    optimizer = {"state": adam_state, "param_groups": [{**group, "params": ids}]}
    checkpoint = {"n_iter": 1_000_000, "model": state, "optimizer": optimizer}
    cuda = [t for s in adam_state.values() for t in (s["exp_avg"], s["exp_avg_sq"])]
    return model, checkpoint, cuda


def inpaint(model: PConvUNet, rgb: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Its inference of one image: uint8 RGB [H,W,3], bool holes [H,W] -> uint8 RGB."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    gt = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(255)  # ToTensor
    gt = gt.sub(mean).div(std)  # Normalize
    mask = torch.from_numpy(np.broadcast_to(~holes, (3, *holes.shape)).astype(np.float32))
    image = gt * mask  # places2.py: gt_img * mask
    with torch.no_grad():
        output, _ = model(image[None], mask[None])
    comp = mask * image + (1 - mask) * output[0]
    comp = comp * std + mean  # unnormalize
    out = comp.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)  # save_image
    return out.permute(1, 2, 0).numpy()
