"""A self-contained inference artefact: one .npz with the variables and the run's config.

Layout of the file (plain numpy arrays, readable with `np.load(path, allow_pickle=False)`):
  `params/enc1/conv/kernel`, ..., `batch_stats/dec2/bn/var`: float32 arrays, one per variable;
  `__config__`: the run's config as a JSON string (the `config.json` of the run directory);
  `__meta__`: JSON {"format": "pconv_jax.inpainter", "version": 1, "step": ..., "source": ...}.

Loading needs numpy, jax, flax and pconv_jax's config/model/layers modules, not orbax, optax,
tensorflow-datasets or the training code. (A TensorFlow SavedModel via jax2tf is not offered:
jax2tf imports TensorFlow, which this project does not depend on.)
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax import config as config_lib
from pconv_jax.model import build_model

FORMAT = "pconv_jax.inpainter"
VERSION = 1


def _leaves_by_key(tree: dict) -> dict:
    return {
        "/".join(str(entry.key) for entry in path): leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def flatten_variables(variables: dict) -> dict[str, np.ndarray]:
    """{'params': {'enc1': {'conv': {'kernel': a}}}} -> {'params/enc1/conv/kernel': a}."""
    return {key: np.asarray(leaf) for key, leaf in _leaves_by_key(variables).items()}


def unflatten_variables(flat: dict[str, np.ndarray]) -> dict:
    """Inverse of `flatten_variables`."""
    tree: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def export_npz(workdir: str | pathlib.Path, out_path: str | pathlib.Path, step: int | None = None):
    """Writes the checkpoint of a training run as an inference .npz.

    Args:
      workdir: training run directory (config.json + checkpoints/).
      out_path: the .npz file to write (its folder is created; written atomically).
      step: checkpoint step (default: the latest).
    Returns:
      (path written, step exported).
    """
    from pconv_jax import checkpoint
    from pconv_jax.pretrained import load_trained_model

    out_path = pathlib.Path(out_path)
    if out_path.suffix != ".npz":
        raise ValueError(f"the export is a .npz file; got output path {out_path}")
    if step is None:
        step = checkpoint.latest_step(workdir)
    cfg, _, variables = load_trained_model(workdir, step=step)
    arrays = flatten_variables({k: variables[k] for k in ("params", "batch_stats")})
    meta = {"format": FORMAT, "version": VERSION, "step": int(step), "source": str(workdir)}
    arrays["__config__"] = np.array(config_lib.to_json(cfg))
    arrays["__meta__"] = np.array(json.dumps(meta))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, out_path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return out_path, int(step)


def load_export(path: str | pathlib.Path, dtype=None):
    """Reads a `pconv export` file and checks it against the model its config describes.

    Args:
      path: the .npz written by `export_npz`.
      dtype: compute dtype of the returned module (None = float32).
    Returns:
      (Config, PConvUNet, {'params', 'batch_stats'} of numpy float32 arrays).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError: all mean "not readable"
        raise ValueError(f"cannot read {path} as a pconv_jax export (.npz): {e}") from e
    if "__meta__" not in flat or "__config__" not in flat:
        raise ValueError(f"{path} is an .npz but not a pconv_jax export (no __meta__/__config__)")
    meta = json.loads(str(flat.pop("__meta__")))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(
            f"{path}: unsupported export format {meta.get('format')} v{meta.get('version')} "
            f"(this version reads {FORMAT} v{VERSION})"
        )
    cfg = config_lib.from_dict(json.loads(str(flat.pop("__config__"))))
    model = build_model(cfg.model, dtype)
    side = 2**cfg.model.num_layers
    expected = _leaves_by_key(
        jax.eval_shape(
            lambda: model.init(
                jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.ones((1, side, side, 1))
            )
        )
    )
    for key in sorted(set(expected) | set(flat)):
        if key not in flat:
            raise ValueError(f"{path} lacks {key}, which the model expects")
        if key not in expected:
            raise ValueError(f"{path} holds {key}, which the model does not have")
        if flat[key].shape != expected[key].shape or flat[key].dtype != expected[key].dtype:
            raise ValueError(
                f"{path}: {key} is {flat[key].dtype}{list(flat[key].shape)}, the model expects "
                f"{expected[key].dtype}{list(expected[key].shape)}"
            )
    return cfg, model, unflatten_variables(flat)
