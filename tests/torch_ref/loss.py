"""The paper's VGG16 feature extractor and loss (Eq. 3-7) in PyTorch, NCHW, for cross-checks.

Written independently of pconv_jax.nn.losses / pconv_jax.nn.vgg: the VGG is torchvision's
`vgg16().features[:17]` rebuilt from nn layers and loaded from a torchvision-layout state dict;
the hole-border region P is a 3×3 ones-convolution of the hole (> 0), as in the fix posted in
naoto0804/pytorch-inpainting-with-partial-conv#27. Images in [0,1], mask 1 = valid.
"""

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's vgg16 `features` up to pool3: ints are conv output channels, "M" a 2x2 max pool.
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")


class VGG16Pool3(nn.Module):
    """torchvision's vgg16().features[:17]; forward returns [pool1, pool2, pool3] (NCHW)."""

    def __init__(self, state_dict: dict):
        super().__init__()
        layers, channels = [], 3
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)
        # Keep features.0 ... features.16 (drop deeper convs and the classifier); strict load.
        wanted = {
            k: v
            for k, v in state_dict.items()
            if k.startswith("features.") and int(k.split(".")[1]) < len(layers)
        }
        self.load_state_dict(wanted)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, images):
        x = (images - self.mean) / self.std
        pools = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                pools.append(x)
        return pools


def gram(f):
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def hole_border_region(mask):
    """P = 1 where a 3x3 window around the pixel (zero-padded) contains a hole pixel."""
    hole = 1.0 - mask
    k = mask.shape[1]
    ones = torch.ones(k, 1, 3, 3, dtype=mask.dtype)
    return (F.conv2d(hole, ones, padding=1, groups=k) > 0).to(mask.dtype)


def tv(comp, mask):
    p = hole_border_region(mask)
    pair_h = p[:, :, :, 1:] * p[:, :, :, :-1]
    pair_v = p[:, :, 1:, :] * p[:, :, :-1, :]
    dh = (comp[:, :, :, 1:] - comp[:, :, :, :-1]).abs() * pair_h
    dv = (comp[:, :, 1:, :] - comp[:, :, :-1, :]).abs() * pair_v
    return (dh.sum() + dv.sum()) / comp.numel()


def paper_loss(output, target, mask, vgg, weights=(1.0, 6.0, 0.05, 120.0, 0.1)):
    """Returns a dict of the terms and 'total'. output/target [N,3,H,W], mask [N,1|3,H,W]."""
    w_valid, w_hole, w_perc, w_style, w_tv = weights
    mask = mask.expand_as(output)
    comp = mask * target + (1 - mask) * output
    with torch.no_grad():
        feats_gt = vgg(target)
    n = output.shape[0]
    feats = vgg(torch.cat([output, comp], dim=0))
    feats_out = [f[:n] for f in feats]
    feats_comp = [f[n:] for f in feats]
    terms = {
        "valid": F.l1_loss(mask * output, mask * target),
        "hole": F.l1_loss((1 - mask) * output, (1 - mask) * target),
        "perceptual": sum(
            F.l1_loss(o, g) + F.l1_loss(c, g) for o, c, g in zip(feats_out, feats_comp, feats_gt)
        ),
        "style_out": sum(F.l1_loss(gram(o), gram(g)) for o, g in zip(feats_out, feats_gt)),
        "style_comp": sum(F.l1_loss(gram(c), gram(g)) for c, g in zip(feats_comp, feats_gt)),
        "tv": tv(comp, mask),
    }
    terms["total"] = (
        w_valid * terms["valid"]
        + w_hole * terms["hole"]
        + w_perc * terms["perceptual"]
        + w_style * (terms["style_out"] + terms["style_comp"])
        + w_tv * terms["tv"]
    )
    return terms
