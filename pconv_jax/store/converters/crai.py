"""The key map of CRAI's checkpoints (FREVA-CLINT/climatereconstructionAI, Kadow et al. 2020).

Facts from CRAI's code (commit e4454e0):
- utils/io.py `save_ckpt`: {'labels': [label, ...], 'train_stats': {'mean', 'std'} or absent,
  label: {'n_iter', 'model': state dict, 'optimizer'}, ...}; `load_model` takes the last label by
  default and strips a `module.` prefix (DataParallel). Older files hold {'n_iter', 'model',
  'optimizer'} at the top (`load_ckpt` wraps them as one label).
- model/net.py `CRAINet`: `encoder.{i}` (stride 2, ReLU, no bias) and `decoder.{i}` (stride 1,
  LeakyReLU() = slope 0.01; the last with a bias and neither BN nor activation), each holding
  `partial_conv.input_conv` (the weights), `partial_conv.mask_conv` (ones) and, where the
  layer has BN, `partial_conv.bn`. decoder.{i} is our dec{L-i}; it upsamples to the skip's size
  (`input_sizes="any"`). model/partial_conv_module.py divides by the window's mask sum only
  (`ratio="mask_sum"`).
- Widths, kernels, BN on the first layer, channels in and out are in the tensors; what is not
  (`--global-padding`, `--masked-bn`, `--normalize-data` statistics, `--min-bounds`/
  `--max-bounds`) comes from the converter's flags named as CRAI names them.
- LSTM/GRU (`recurrent_conv`), attention (`attention_module`) and channel fusion (an encoder
  layer taking more channels than the one before gives) are refused: pconv_jax has no such layers.
"""

from __future__ import annotations

import math
import re

from pconv_jax.errors import UserError
from pconv_jax.store.converters.torch_file import Entry, conv_bn_entries

NAME = "crai"
PROJECT = "FREVA-CLINT/climatereconstructionAI (CRAI)"
LICENCE = "BSD-3-Clause (the repository's LICENSE, which covers the files it ships)"
MIN_DEPTH = 1
IGNORED_PREFIXES: tuple[str, ...] = ()
KNOWN_FILES = {
    "20crtasgn72.pth": {
        "training_data": "20th Century Reanalysis near-surface temperature (CRAI's demo model)",
        "resolution": 72,
        "iterations": "1,000,000",
        "published_numbers": None,
        "url": "https://github.com/FREVA-CLINT/climatereconstructionAI/tree/master/data",
    },
    "minimum-1.inp.pth": {
        "training_data": "20cr-1ens.nc with the HadCRUT4 mask (CRAI's test suite, 10 iterations)",
        "resolution": 72,
        "iterations": "10",
        "published_numbers": None,
        "url": "https://github.com/FREVA-CLINT/climatereconstructionAI/tree/master/tests/ref",
    },
}
_UNSUPPORTED = {
    "recurrent_conv": "LSTM/GRU layers (--lstm-steps/--gru-steps)",
    "attention_module": "an attention module (--attention)",
}
_WEIGHT = re.compile(r"(encoder|decoder)\.(\d+)\.partial_conv\.input_conv\.weight")


def state_dict_of(checkpoint: dict, what: str, label: str | None = None):
    """(the model's state dict of `label` (default the last), its n_iter); UserError otherwise."""
    if "labels" not in checkpoint:
        if "model" in checkpoint and "n_iter" in checkpoint:  # load_ckpt's older format
            checkpoint = {
                "labels": [str(checkpoint["n_iter"])],
                str(checkpoint["n_iter"]): checkpoint,
            }
        else:
            raise UserError(
                f"{what} is not a CRAI checkpoint: no 'labels' entry (top-level keys "
                f"{sorted(map(str, checkpoint))[:6]})"
            )
    labels = [str(x) for x in checkpoint["labels"]]
    chosen = labels[-1] if label is None else str(label)
    if chosen not in labels or not isinstance(checkpoint.get(chosen), dict):
        raise UserError(f"{what}: no model labelled {chosen!r}; its labels are {labels}")
    entry = checkpoint[chosen]
    state = entry.get("model")
    if not isinstance(state, dict):
        raise UserError(f"{what}: label {chosen!r} holds no 'model' state dict")
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    if "encoder.0.partial_conv.input_conv.weight" not in state:
        raise UserError(
            f"{what} holds no CRAINet (no 'encoder.0.partial_conv.input_conv.weight') under "
            f"label {chosen!r}"
        )
    for key in state:
        for part, meaning in _UNSUPPORTED.items():
            if part in key:
                raise UserError(
                    f"{what}: {meaning} cannot be expressed by pconv_jax (tensor {key!r})"
                )
    step = entry.get("n_iter")
    return state, step if isinstance(step, int) else None


def train_stats(checkpoint: dict) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) that CRAI's `save_ckpt` stored as 'train_stats', or None."""
    stats = checkpoint.get("train_stats")
    if isinstance(stats, dict) and "mean" in stats and "std" in stats:
        return tuple(map(float, stats["mean"])), tuple(map(float, stats["std"]))
    return None


def depth(state: dict) -> int:
    found = [_WEIGHT.fullmatch(k) for k in state]
    return sum(1 for m in found if m and m.group(1) == "encoder")


def _weights(state: dict, part: str, count: int, what: str) -> list:
    shapes = []
    for i in range(count):
        key = f"{part}.{i}.partial_conv.input_conv.weight"
        if key not in state:
            raise UserError(f"{what}: missing tensor {key!r}")
        shape = tuple(state[key].shape)
        if len(shape) != 4 or shape[2] != shape[3] or shape[2] % 2 == 0:
            raise UserError(f"{what}: {key!r} has shape {shape}; square odd kernels are expected")
        shapes.append(shape)
    return shapes


def model_options(
    state: dict,
    what: str,
    global_padding: bool = False,
    masked_bn: bool = False,
    channel_mean: tuple[float, ...] = (),
    channel_std: tuple[float, ...] = (),
    min_bounds: tuple[float, ...] = (),
    max_bounds: tuple[float, ...] = (),
) -> dict:
    """`ModelConfig` fields reproducing the CRAINet in `state` (its architecture read from the
    tensors) with CRAI's flags; UserError naming the tensor for what pconv_jax cannot express."""
    levels = depth(state)
    encoder = _weights(state, "encoder", levels, what)
    decoder = _weights(state, "decoder", levels, what)
    extra = [k for k in state if (m := _WEIGHT.fullmatch(k)) and int(m.group(2)) >= levels]
    if extra:
        raise UserError(f"{what}: {len(decoder)} + more decoder layers than encoder ({extra[0]!r})")
    widths = [s[0] for s in encoder]
    for i in range(1, levels):
        if encoder[i][1] != widths[i - 1]:
            key = f"encoder.{i}.partial_conv.input_conv.weight"
            raise UserError(
                f"{what}: {key!r} takes {encoder[i][1]} channels but the layer before gives "
                f"{widths[i - 1]} (channel fusion): cannot be expressed by pconv_jax"
            )
    width, cap = widths[0], max(widths)
    if widths != [min(width * 2**i, cap) for i in range(levels)]:
        raise UserError(
            f"{what}: encoder widths {widths} do not double from {width} up to a cap, the only "
            f"progression pconv_jax expresses"
        )
    if any(s[2] != 3 for s in decoder):
        raise UserError(f"{what}: decoder kernels {[s[2] for s in decoder]}; 3x3 is expected")
    out_channels, in_channels = decoder[-1][0], encoder[0][1]
    options = dict(
        num_layers=levels,
        in_channels=in_channels,
        out_channels=out_channels,
        width=width,
        max_width=cap,
        encoder_kernels=tuple(s[2] for s in encoder),
        first_bn="encoder.0.partial_conv.bn.weight" in state,
        hole_fill=(),
        ratio="mask_sum",
        conv_bias="last_only",
        io_range="unit",
        input_sizes="any",
        leaky_slope=0.01,
        padding="global" if global_padding else "zeros",
        masked_bn=masked_bn,
        channel_mean=tuple(channel_mean),
        channel_std=tuple(channel_std),
    )
    options.update(_bounds(min_bounds, max_bounds, out_channels, what))
    return options


def _bounds(min_bounds, max_bounds, channels: int, what: str) -> dict:
    """CRAI's --min-bounds/--max-bounds: one value for every output channel, or one each."""
    lists = []
    for flag, values in (("--min-bounds", min_bounds), ("--max-bounds", max_bounds)):
        values = tuple(float(v) for v in values) or ((-math.inf,) if "min" in flag else (math.inf,))
        if len(values) == 1:
            values = values * channels
        if len(values) != channels:
            raise UserError(f"{flag} needs 1 or {channels} values (out channels), got {values}")
        lists.append(values)
    low, high = lists
    if all(lo == -math.inf and hi == math.inf for lo, hi in zip(low, high)):
        return {}
    return {"output_min": low, "output_max": high}


def torch_name(levels: int):
    """(our layer "enc1"/"dec3", suffix "conv.weight") -> CRAI's key."""

    def name(layer: str, suffix: str) -> str:
        index = int(layer[3:])
        part = f"encoder.{index - 1}" if layer.startswith("enc") else f"decoder.{levels - index}"
        tail = {"conv.weight": "input_conv.weight", "conv.bias": "input_conv.bias"}
        return f"{part}.partial_conv.{tail.get(suffix, suffix)}"

    return name


def entries(abstract_flat: dict) -> dict[str, Entry]:
    """The state-dict keys of a CRAINet of our model's depth and sizes."""
    levels = sum(1 for path in abstract_flat if re.fullmatch(r"params/enc\d+/conv/kernel", path))
    return conv_bn_entries(abstract_flat, torch_name(levels), "mask_conv.weight")
