"""Reading a PyTorch checkpoint safely, and checking a state dict against a key map.

A `.pth` file is a pickle. It is read with `torch.load(..., weights_only=True)`, whose unpickler
builds only tensors, dicts, lists, numbers and strings and refuses anything that would run code;
storages tagged for a CUDA device are mapped to the CPU. torch is an optional dependency
(`pip install 'pconv_jax[convert]'`), imported only here, inside `read_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import re
from collections.abc import Callable

import numpy as np

from pconv_jax.errors import UserError


def read_checkpoint(path: str | pathlib.Path) -> dict:
    """The top-level dict of a `.pth` file; UserError (one line) for anything else."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        # Imported here: torch is needed only to read .pth files (the `convert` extra).
        import torch
    except ImportError as e:
        raise UserError(
            f"reading a .pth file needs PyTorch ({e}); install it with: "
            f"pip install 'pconv_jax[convert]' (a CPU wheel is enough)"
        ) from e
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a pickle of protocol 2 (starts with the PROTO opcode 0x80) or, since
    # torch 1.6, a zip archive.
    if not (head[:1] == b"\x80" or head == b"PK\x03\x04"):
        raise UserError(f"{path} is not a PyTorch checkpoint (neither a pickle nor a zip archive)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError...: all mean "not readable"
        text = " ".join(str(e).split())
        needs_code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if needs_code:
            raise UserError(
                f"{path} is a pickle that needs code to load ({needs_code.group(1)}); refused: "
                f"only tensors, dicts and numbers are read, no code from a file is run"
            ) from e
        unsafe = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
        if unsafe:
            raise UserError(
                f"{path} holds pickle content the weights-only reader does not accept "
                f"({unsafe.group(1)[:80]}); refused: no code from a file is run"
            ) from e
        raise UserError(f"{path} is not a readable PyTorch checkpoint: {text[:160]}") from e
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


def model_entry(
    checkpoint: dict, what: str, *, project: str, entry: str, top_level: tuple[str, ...]
) -> dict:
    """`checkpoint[entry]`, the state dict of a `project` checkpoint (e.g. "an mmagic") after
    checking its top level: UserError when the entry is missing or other entries are present."""
    if entry not in checkpoint:
        raise UserError(
            f"{what} is not {project} checkpoint: no '{entry}' entry (top-level keys "
            f"{sorted(map(str, checkpoint))[:6]})"
        )
    extra = sorted(str(k) for k in checkpoint if k not in top_level)
    if extra:
        raise UserError(f"{what}: unexpected top-level entries {extra} in {project} checkpoint")
    return checkpoint[entry]


def sha256(path: str | pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Entry:
    """One source tensor: where it goes (`target` "" = checked, then left out) and how."""

    shape: tuple[int, ...]
    target: str = ""  # our flat variable path, e.g. "params/enc1/conv/kernel"
    transform: Callable[[np.ndarray], np.ndarray] = lambda a: a
    all_ones: bool = False  # a fixed mask-sum kernel: must hold ones only
    optional: bool = False  # may be absent (BN num_batches_tracked: torch >= 0.4.1 writes it)


def oihw_to_hwio(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (2, 3, 1, 0))


def map_state_dict(
    state: dict, entries: dict[str, Entry], ignored_prefixes: tuple[str, ...], what: str
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Checks `state` against `entries` and returns ({our path: float32 array}, counts).

    Every key must be an entry or start with an ignored prefix; every non-optional entry must be
    present with its exact shape and a floating dtype (integer for num_batches_tracked).
    Raises UserError naming the first offending key; nothing is returned on any mismatch.
    """
    for key in state:
        if key not in entries and not key.startswith(ignored_prefixes):
            raise UserError(f"{what}: unexpected tensor {key!r}")
    for key, entry in entries.items():
        if key not in state and not entry.optional:
            raise UserError(f"{what}: missing tensor {key!r}")
    flat, counts = {}, {"mapped": 0, "checked_and_left_out": 0, "ignored_by_prefix": 0}
    for key, value in state.items():
        if key not in entries:
            counts["ignored_by_prefix"] += 1
            continue
        entry = entries[key]
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise UserError(f"{what}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != entry.shape:
            raise UserError(
                f"{what}: {key!r} has shape {tuple(value.shape)}, expected {entry.shape}"
            )
        if not entry.target:
            if entry.all_ones and not bool((value == 1).all()):
                raise UserError(f"{what}: {key!r} should be a mask-sum kernel of ones; it is not")
            counts["checked_and_left_out"] += 1
            continue
        if not value.dtype.is_floating_point:
            raise UserError(f"{what}: {key!r} has dtype {value.dtype}, expected a float tensor")
        array = value.detach().float().numpy()
        flat[entry.target] = np.ascontiguousarray(entry.transform(array), np.float32)
        counts["mapped"] += 1
    return flat, counts


def conv_bn_entries(
    abstract_flat: dict, torch_name: Callable[[str, str], str], mask_kernel_key: str
) -> dict[str, Entry]:
    """Entries of a PConv U-Net whose layers map one to one to ours.

    Args:
      abstract_flat: {"params/enc1/conv/kernel": ShapeDtypeStruct, ...} of our model.
      torch_name: (our layer "enc1", suffix "conv.weight") -> the source's key.
      mask_kernel_key: the suffix of the all-ones mask-sum kernel ("conv.weight_mask_updater").
    """
    entries: dict[str, Entry] = {}
    for path, leaf in abstract_flat.items():
        collection, layer, module, name = path.split("/")
        shape = tuple(leaf.shape)
        if module == "conv" and name == "kernel":
            oihw = (shape[3], shape[2], shape[0], shape[1])
            entries[torch_name(layer, "conv.weight")] = Entry(oihw, path, oihw_to_hwio)
            entries[torch_name(layer, mask_kernel_key)] = Entry(oihw, all_ones=True)
            continue
        suffix = {
            ("params", "conv", "bias"): "conv.bias",
            ("params", "bn", "scale"): "bn.weight",
            ("params", "bn", "bias"): "bn.bias",
            ("batch_stats", "bn", "mean"): "bn.running_mean",
            ("batch_stats", "bn", "var"): "bn.running_var",
        }[(collection, module, name)]
        entries[torch_name(layer, suffix)] = Entry(shape, path)
        if suffix == "bn.running_mean":
            entries[torch_name(layer, "bn.num_batches_tracked")] = Entry((), optional=True)
    return entries
