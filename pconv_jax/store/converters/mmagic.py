"""The key map of mmagic's (mmediting 2020) PConv checkpoints.

Facts from the mmediting code of June 2020 (open-mmlab/mmagic at e7b1c120, 2020-06-29; file and
line numbers of that commit, listed in docs/pretrained.md):
- The file is mmcv's checkpoint: {'meta': dict, 'state_dict': the whole inpaintor's state dict,
  'optimizer': ...} (tools/publish_model.py:19-20 deletes 'optimizer' before publishing).
- The inpaintor holds the U-Net as `generator` (models/inpaintors/one_stage.py:77) and the
  perceptual loss's VGG16 as `loss_percep.vgg` (one_stage.py:91, losses/perceptual_loss.py:10,48,
  52-58): those `loss_percep.*` tensors are left out by rule.
- `generator.encoder.enc{i}` / `generator.decoder.dec{i}` are mmcv ConvModules holding
  `conv` (PartialConv2d, multi_channel: a `weight_mask_updater` buffer of ones shaped like the
  weight, common/partial_conv.py:34-37) and, where norm_cfg is set, `bn`; the bias is mmcv's
  'auto': only where there is no norm (enc1, dec1). Same layer sizes as ours.
- The network works in BGR (mmcv loads BGR, Normalize to_rgb=False) in [-1, 1] ((p - 127.5) /
  127.5): `io_range="symmetric"`; the BGR order is folded into the weights here (an exact
  permutation: enc1's input channels, dec1's image input channels and its output channels).
"""

from __future__ import annotations

import re

import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.store.converters.torch_file import (
    Entry,
    conv_bn_entries,
    model_entry,
    oihw_to_hwio,
)

NAME = "mmagic"
PROJECT = "open-mmlab/mmagic (mmediting, model code of June 2020)"
LICENCE = "Apache-2.0 (the code; no separate licence is stated for the weights)"
MODEL_OPTIONS = dict(io_range="symmetric", ratio="official", conv_bias="without_bn")
IGNORED_PREFIXES = ("loss_percep.",)
TOP_LEVEL = ("meta", "state_dict", "optimizer")
_BASE = "https://download.openmmlab.com/mmediting/inpainting/pconv/"
KNOWN_FILES = {
    "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth": {
        "training_data": "Places365-Challenge",
        "resolution": 256,
        "iterations": "500k (stage 2, encoder BN frozen, lr 5e-5; after stage 1)",
        "published_numbers": {
            "test_set": "Places365-val",
            "l1_error": 8.776,
            "psnr": 22.762,
            "ssim": 0.801,
        },
        "url": _BASE + "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
    },
    "pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth": {
        "training_data": "CelebA-HQ",
        "resolution": 256,
        "iterations": "500k (README; the stage-2 config says total_iters=300002)",
        "published_numbers": {
            "test_set": "CelebA-val",
            "l1_error": 5.99,
            "psnr": 25.404,
            "ssim": 0.853,
        },
        "url": _BASE + "pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth",
    },
}


FIRST_KERNEL = "generator.encoder.enc1.conv.weight"


def recognises(checkpoint: dict) -> bool:
    """Whether `checkpoint` holds an mmagic PConv generator (its first kernel, where mmagic
    keeps it)."""
    state = checkpoint.get("state_dict")
    return isinstance(state, dict) and FIRST_KERNEL in state


def state_dict_of(checkpoint: dict, what: str) -> tuple[dict, int | None]:
    """(the state dict, the training iteration from meta or None); UserError for other files."""
    state = model_entry(
        checkpoint, what, project="an mmagic", entry="state_dict", top_level=TOP_LEVEL
    )
    if not recognises(checkpoint):
        raise UserError(
            f"{what} holds no mmagic PConv generator (no {FIRST_KERNEL!r}): another mmagic model?"
        )
    meta = checkpoint.get("meta")
    step = meta.get("iter") if isinstance(meta, dict) else None
    return state, step if isinstance(step, int) else None


def depth(state: dict) -> int:
    found = [re.fullmatch(r"generator\.encoder\.enc(\d+)\.conv\.weight", k) for k in state]
    return max(int(m.group(1)) for m in found if m)


def _torch_name(layer: str, suffix: str) -> str:
    part = "encoder" if layer.startswith("enc") else "decoder"
    return f"generator.{part}.{layer}.{suffix}"


def _bgr_in(a):  # HWIO kernel whose input channels are an image in BGR order
    return a[:, :, ::-1, :]


def entries(abstract_flat: dict) -> dict[str, Entry]:
    """The state-dict keys of a generator of our depth, with the BGR -> RGB permutation."""
    table = conv_bn_entries(abstract_flat, _torch_name, "conv.weight_mask_updater")
    first, last = "generator.encoder.enc1.conv.weight", "generator.decoder.dec1.conv.weight"
    table[first] = _with(table[first], lambda a: _bgr_in(oihw_to_hwio(a)))

    def dec1_kernel(a):
        hwio = oihw_to_hwio(a)
        # input: [upsampled dec2 output, image (BGR)]; output channels BGR
        hwio = np.concatenate([hwio[:, :, :-3, :], _bgr_in(hwio[:, :, -3:, :])], axis=2)
        return hwio[..., ::-1]

    table[last] = _with(table[last], dec1_kernel)
    bias = "generator.decoder.dec1.conv.bias"
    table[bias] = _with(table[bias], lambda a: a[::-1])
    return table


def _with(entry: Entry, transform) -> Entry:
    return Entry(entry.shape, entry.target, transform, entry.all_ones, entry.optional)
