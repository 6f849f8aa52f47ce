"""Loading any trained model, and writing the self-contained export.

`load(path)` reads a `pconv train` run directory (any checkpoint step) or a `pconv export` .npz
into one `TrainedModel` (config, module, variables, step); `write_export` writes the .npz.

Export file layout (plain numpy arrays, readable with `np.load(path, allow_pickle=False)`):
  `params/enc1/conv/kernel`, ..., `batch_stats/dec2/bn/var`: float32 arrays, one per variable
  (`flax.traverse_util.flatten_dict(variables, sep="/")`);
  `__config__`: the run's config as a JSON string (the `config.json` of the run directory);
  `__meta__`: JSON {"format": "pconv_jax.inpainter", "version": 1, "step": ..., "source": ...},
  plus "card" (the model card: origin, licence, data, numbers) for `pconv convert` outputs.
Loading an export needs numpy, jax, flax and pconv_jax's config and nn modules, not orbax (only
run directories need `pconv_jax.store.checkpoint`), optax or tensorflow-datasets. (A TensorFlow
SavedModel via jax2tf is not offered: jax2tf imports TensorFlow, which this project does not
depend on.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import zipfile
from typing import Literal

import jax
import numpy as np
from flax import traverse_util

from pconv_jax import atomic
from pconv_jax.config import Config, from_dict, to_json
from pconv_jax.errors import UserError
from pconv_jax.nn.model import PConvUNet, abstract_variables, build_model
from pconv_jax.store import named
from pconv_jax.store.trees import check_same_tree

FORMAT = "pconv_jax.inpainter"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A trained model ready for inference.

    Attributes:
      config: the run's `Config`.
      model: the `PConvUNet` it describes (compute dtype as asked when loading).
      variables: {'params', 'batch_stats'}: jax arrays on the default device (run directory) or
        numpy float32 arrays (export).
      step: the training step of the weights.
      source: the run directory or export file it was read from.
      card: the export's model card (`__meta__["card"]`: where the weights come from, and for
        gridded models `grid`, what they were trained on); {} for run directories.
    """

    config: Config
    model: PConvUNet
    variables: dict
    step: int
    source: str
    card: dict = dataclasses.field(default_factory=dict)


ModelKind = Literal["run", "npz", "onnx"]


def model_kind(path: str | os.PathLike) -> ModelKind:
    """The one rule for what a model path holds: a folder is a `pconv train` run directory, a
    file an export, `.onnx` by its suffix and `.npz` otherwise (its reader then checks it).
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no run directory or export at {path}")
    if path.is_dir():
        return "run"
    return "onnx" if path.suffix.lower() == ".onnx" else "npz"


def export_path(path: str | os.PathLike, kind: Literal["npz", "onnx"]) -> pathlib.Path:
    """`path` as the output of an export of `kind`; UserError unless its suffix is `.<kind>`."""
    path = pathlib.Path(path)
    if path.suffix.lower() != f".{kind}":
        raise UserError(f"the export is a .{kind} file; got output path {path}")
    return path


def load(path: str | os.PathLike, step: int | None = None, dtype=None) -> TrainedModel:
    """The JAX model of a run directory (checkpoint `step`, default the latest) or an .npz export.

    Args:
      path: `pconv train --workdir` folder, or a `pconv export` / `pconv convert` .npz, or the
        name of a model shipped in the package (store/named.py, e.g. "ccsm-t42").
      step: checkpoint step; only for run directories.
      dtype: compute dtype of the returned module (None = float32).
    """
    path = named.resolve(path)
    kind = model_kind(path)
    if kind == "onnx":
        raise UserError(
            f"{path} is an ONNX export: it holds a graph, not JAX variables; run it with "
            "Inpainter.load or pconv inpaint --checkpoint"
        )
    if kind == "npz":
        if step is not None:
            raise UserError("a step applies to a run directory, not to an exported .npz")
        return load_export(path, dtype)
    return load_run(path, step, dtype)


def load_run(workdir: str | os.PathLike, step: int | None = None, dtype=None) -> TrainedModel:
    """Reads config.json and one checkpoint (default the latest) of a training run directory."""
    # Imported here: orbax is a training dependency; exports load without it (deployment).
    from pconv_jax.store import checkpoint

    cfg = checkpoint.read_config(workdir)
    model = build_model(cfg.model, dtype)
    ckpts = checkpoint.Checkpoints(workdir, read_only=True)
    try:
        steps = ckpts.all_steps()
        if not steps:
            raise FileNotFoundError(f"{workdir} holds no complete checkpoint")
        step = max(steps) if step is None else step
        if step not in steps:
            raise FileNotFoundError(f"{workdir} has no checkpoint at step {step}: {steps}")
        # local: in a multi-process run (pconv evaluate) jax.devices()[0] may be another process's
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        target = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
            abstract_variables(model),
        )
        variables, _ = ckpts.restore(step, target)
    finally:
        ckpts.close()
    return TrainedModel(cfg, model, variables, int(step), str(workdir))


def load_export(path: str | os.PathLike, dtype=None) -> TrainedModel:
    """Reads a `pconv export` file and checks it against the model its config describes."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export file not found: {path}")
    _check_not_foreign(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
    except ValueError as e:  # numpy's advice (allow_pickle=True) would run the file's code
        if "allow_pickle" not in str(e):
            raise UserError(f"cannot read {path} as a pconv_jax export (.npz): {e}") from e
        raise UserError(
            f"{path} holds pickled Python objects, which a pconv_jax export never does; "
            f"refused (not a pconv_jax export){MAKE_AN_EXPORT}"
        ) from e
    except Exception as e:  # zipfile.BadZipFile, OSError: all mean "not readable"
        raise UserError(f"cannot read {path} as a pconv_jax export (.npz): {e}") from e
    if "__meta__" not in flat or "__config__" not in flat:
        raise UserError(
            f"{path} is an .npz but not a pconv_jax export (no __meta__/__config__){MAKE_AN_EXPORT}"
        )
    meta = json.loads(str(flat.pop("__meta__")))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise UserError(
            f"{path}: unsupported export format {meta.get('format')} v{meta.get('version')} "
            f"(this version reads {FORMAT} v{VERSION})"
        )
    cfg = from_dict(json.loads(str(flat.pop("__config__"))))
    model = build_model(cfg.model, dtype)
    variables = traverse_util.unflatten_dict(flat, sep="/")
    check_same_tree(variables, abstract_variables(model), str(path))
    return TrainedModel(cfg, model, variables, int(meta["step"]), str(path), meta.get("card", {}))


MAKE_AN_EXPORT = (
    ": `pconv export` makes one from a training run, `pconv convert` from a PyTorch checkpoint"
)


def _check_not_foreign(path: pathlib.Path) -> None:
    """UserError with the way forward for a PyTorch checkpoint or a file that is no zip archive
    (an export is an .npz, which is a zip archive)."""
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a pickle (its first opcode PROTO is 0x80) or, since torch 1.6, a zip
    # archive holding <name>/data.pkl.
    is_torch = head[:1] == b"\x80"
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                is_torch = any(n.rsplit("/", 1)[-1] == "data.pkl" for n in archive.namelist())
        except zipfile.BadZipFile as e:
            raise UserError(f"cannot read {path} as a pconv_jax export (.npz): {e}") from e
    elif not is_torch:
        raise UserError(f"{path} is not a pconv_jax export (an .npz file){MAKE_AN_EXPORT}")
    if is_torch:
        raise UserError(
            f"{path} is a PyTorch checkpoint, not a pconv_jax export: convert it first with "
            f"`pconv convert --from mmagic|naoto0804 {path} OUT.npz` (docs/pretrained.md)"
        )


def write_export(
    trained: TrainedModel, out_path: str | os.PathLike, card: dict | None = None
) -> pathlib.Path:
    """Writes `trained` as an inference .npz (its folder is created; written atomically).

    `card`, a JSON-able dict describing where the weights come from, goes into `__meta__`.
    """
    out_path = export_path(out_path, "npz")
    variables = {k: trained.variables[k] for k in ("params", "batch_stats")}
    flat = traverse_util.flatten_dict(variables, sep="/")
    arrays: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in flat.items()}
    meta = {"format": FORMAT, "version": VERSION, "step": trained.step, "source": trained.source}
    if card is not None:
        meta["card"] = card
    arrays["__config__"] = np.array(to_json(trained.config))
    arrays["__meta__"] = np.array(json.dumps(meta))
    with atomic.replacing(out_path) as temporary:
        # allow_pickle given (its default): numpy's stub would match **arrays against it
        np.savez(temporary, allow_pickle=True, **arrays)
    return out_path
