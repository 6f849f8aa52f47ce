"""The key map of naoto0804/pytorch-inpainting-with-partial-conv checkpoints (`1000000.pth`).

Facts from naoto0804/pytorch-inpainting-with-partial-conv at 8d64e7e (file and line numbers of
that commit, listed in docs/pretrained.md):
- The file is util/io.py's `save_ckpt`: {'n_iter': int, 'model': state dict, 'optimizer': Adam's
  state dict} (util/io.py:13-20); the optimizer entry is not read.
- `enc_{i}` / `dec_{i}` (net.py:131-146) hold `conv.input_conv` (the weights) and `conv.mask_conv`
  (a fixed kernel of ones shaped like the weight, net.py:59-63) and, except enc_1 and dec_1,
  `bn` (BatchNorm2d, eps 1e-5, momentum 0.1: the defaults). Only dec_1 has a bias
  (net.py:97-98,145-146): `conv_bias="last_only"`.
- Its partial conv divides by the window's mask sum only (net.py:82-88): `ratio="mask_sum"`,
  kernels kept at their trained scale.
- Images are ImageNet-normalised RGB (train.py:73-75, opt.py:1-2): `io_range="imagenet"`.
"""

from __future__ import annotations

import re

from pconv_jax.errors import UserError
from pconv_jax.store.converters.torch_file import Entry, conv_bn_entries, model_entry

NAME = "naoto0804"
PROJECT = "naoto0804/pytorch-inpainting-with-partial-conv"
LICENCE = "MIT (the repository's LICENSE; the release states nothing else for the weights)"
MODEL_OPTIONS = dict(io_range="imagenet", ratio="mask_sum", conv_bias="last_only")
IGNORED_PREFIXES: tuple[str, ...] = ()
TOP_LEVEL = ("n_iter", "model", "optimizer")
KNOWN_FILES = {
    "1000000.pth": {
        "training_data": "Places2 (Places365-Challenge 'data_large', ~8M images)",
        "resolution": 256,
        "iterations": "1,000,000 (README: 500k training + 500k fine-tuning with encoder BN "
        "frozen; batch 16)",
        "published_numbers": None,
        "url": "https://github.com/naoto0804/pytorch-inpainting-with-partial-conv/releases/tag/"
        "v0.0.0",
    },
}


FIRST_KERNEL = "enc_1.conv.input_conv.weight"


def recognises(checkpoint: dict) -> bool:
    """Whether `checkpoint` holds a naoto0804 PConvUNet (its first kernel under 'model')."""
    state = checkpoint.get("model")
    return isinstance(state, dict) and FIRST_KERNEL in state


def state_dict_of(checkpoint: dict, what: str) -> tuple[dict, int | None]:
    """(the model's state dict, n_iter); UserError for other files."""
    state = model_entry(checkpoint, what, project="a naoto0804", entry="model", top_level=TOP_LEVEL)
    if not recognises(checkpoint):
        raise UserError(f"{what} holds no naoto0804 PConvUNet (no {FIRST_KERNEL!r})")
    step = checkpoint.get("n_iter")
    return state, step if isinstance(step, int) else None


def depth(state: dict) -> int:
    found = [re.fullmatch(r"enc_(\d+)\.conv\.input_conv\.weight", k) for k in state]
    return max(int(m.group(1)) for m in found if m)


_SUFFIX = {"conv.weight": "conv.input_conv.weight", "conv.bias": "conv.input_conv.bias"}


def _torch_name(layer: str, suffix: str) -> str:
    return f"{layer[:3]}_{layer[3:]}.{_SUFFIX.get(suffix, suffix)}"


def entries(abstract_flat: dict) -> dict[str, Entry]:
    return conv_bn_entries(abstract_flat, _torch_name, "conv.mask_conv.weight")
