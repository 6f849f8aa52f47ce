"""`pconv convert --from SOURCE SRC.pth OUT.npz`: another project's PConv U-Net as our export.

Reads the `.pth` (torch_file.read_checkpoint: weights only, nothing executed), checks every
tensor against the source's key map (mmagic.py, naoto0804.py: a missing, extra or mis-shaped
tensor is an error naming its key; nothing is written then), builds the `ModelConfig` that
reproduces the source's network, and writes our export (store/trained.write_export) with a model
card inside (`__meta__["card"]`) and beside it (OUT.md).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import warnings

from flax import traverse_util

import pconv_jax
from pconv_jax import config as config_lib
from pconv_jax.errors import UserError
from pconv_jax.nn.model import abstract_variables, build_model
from pconv_jax.store import trained
from pconv_jax.store.converters import crai, mmagic, naoto0804
from pconv_jax.store.converters.torch_file import map_state_dict, read_checkpoint, sha256
from pconv_jax.store.trees import check_same_tree

SOURCES = {mmagic.NAME: mmagic, naoto0804.NAME: naoto0804, crai.NAME: crai}


class ChecksumWarning(UserWarning):
    """A published file name carries a SHA-256 prefix the file does not match."""


@dataclasses.dataclass(frozen=True)
class Converted:
    path: pathlib.Path
    card_path: pathlib.Path
    card: dict


def convert(
    source: str,
    src: str | pathlib.Path,
    out: str | pathlib.Path,
    flags: dict | None = None,
    command: str = "",
) -> Converted:
    """Converts `src` (a `source` checkpoint) to the export `out` (.npz) and `out`.md.

    `flags`: what the tensors cannot show, for sources whose module reads them
    (crai.model_options: global_padding, masked_bn, channel_mean/std, min/max_bounds; `label`
    picks the saved model; `normalize_data` without channel_mean takes the file's train_stats).
    `command`: the command line recorded in the model card.

    Raises:
      UserError: an unknown source, an unreadable or foreign file, a tensor missing, unexpected
        or of the wrong shape (one line naming it); nothing is written then.
    """
    if source not in SOURCES:
        raise UserError(f"--from must be one of {sorted(SOURCES)}, got {source!r}")
    module, src, out = SOURCES[source], pathlib.Path(src), pathlib.Path(out)
    if out.suffix != ".npz":
        raise UserError(f"the converted model is a .npz file; got output path {out}")
    flags = dict(flags or {})
    checkpoint = read_checkpoint(src)
    if hasattr(module, "model_options"):
        state, step = module.state_dict_of(checkpoint, str(src), flags.pop("label", None))
        if flags.pop("normalize_data", False) and not flags.get("channel_mean"):
            stats = module.train_stats(checkpoint)
            if stats is None:
                raise UserError(
                    f"{src} stores no 'train_stats': --normalize-data needs --stats-from FILE.nc"
                )
            flags["channel_mean"], flags["channel_std"] = stats
        options = module.model_options(state, str(src), **flags)
    elif flags:
        raise UserError(f"--from {source} takes none of the options {sorted(flags)}")
    else:
        state, step = module.state_dict_of(checkpoint, str(src))
        options = dict(num_layers=module.depth(state), **module.MODEL_OPTIONS)
    num_layers = options["num_layers"]
    if num_layers < getattr(module, "MIN_DEPTH", 4):
        raise UserError(f"{src}: a U-Net of depth {num_layers}; at least 4 levels are expected")
    info = module.KNOWN_FILES.get(src.name, {})
    cfg = config_lib.validate(
        config_lib.Config(
            name=f"{source}_{src.stem}",
            model=config_lib.ModelConfig(**options),
            data=config_lib.DataConfig(image_size=info.get("resolution", 256)),
        )
    )
    model = build_model(cfg.model)
    abstract = abstract_variables(model)
    flat, counts = map_state_dict(
        state,
        module.entries(traverse_util.flatten_dict(abstract, sep="/")),
        module.IGNORED_PREFIXES,
        str(src),
    )
    variables = traverse_util.unflatten_dict(flat, sep="/")
    check_same_tree(variables, abstract, str(src))
    card = _card(module, src, cfg, step, counts, info)
    if command:
        card["conversion_command"] = command
    model_out = trained.TrainedModel(cfg, model, variables, step or 0, f"{source}:{src.name}")
    path = trained.write_export(model_out, out, card=card)
    card_path = out.with_suffix(".md")
    card_path.write_text(card_markdown(card), encoding="utf-8")
    return Converted(path, card_path, card)


def _card(module, src: pathlib.Path, cfg, step, counts: dict, info: dict) -> dict:
    digest = sha256(src)
    card = {
        "source_project": module.PROJECT,
        "source_file": src.name,
        "source_sha256": digest,
        "licence": module.LICENCE,
        "training_data": info.get("training_data", "unknown (not one of the published files)"),
        "resolution": info.get("resolution", "unknown"),
        "iterations": step if step is not None else info.get("iterations", "unknown"),
        "published_iterations": info.get("iterations"),
        "published_numbers": info.get("published_numbers"),
        "url": info.get("url"),
        "model_options": dataclasses.asdict(cfg.model),
        "tensors": counts,
        "conversion_command": f"pconv convert --from {module.NAME} {src.name} OUT.npz",
        "pconv_jax_version": pconv_jax.__version__,
    }
    prefix = src.stem.rsplit("-", 1)[-1] if "-" in src.stem else ""
    if len(prefix) == 8 and all(c in "0123456789abcdef" for c in prefix):
        # openmmlab's publish_model.py names a file after the first 8 hex digits of its SHA-256.
        card["sha256_matches_file_name"] = digest.startswith(prefix)
        if not digest.startswith(prefix):
            warnings.warn(
                f"{src.name}: SHA-256 {digest[:8]}... does not match the {prefix} in its name "
                f"(a different or damaged download?)",
                ChecksumWarning,
                stacklevel=2,
            )
    return card


def card_markdown(card: dict) -> str:
    """The model card as a short Markdown page (OUT.md beside OUT.npz)."""
    lines = [f"# Model card: {card['source_file']} converted by pconv_jax", ""]
    for key, value in card.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        lines.append(f"- **{key.replace('_', ' ')}**: {shown}")
    lines += [
        "",
        "Weights trained by the source project, not by pconv_jax; pconv_jax neither ships nor "
        "downloads them. Check the source's licence before redistributing.",
        "",
    ]
    return "\n".join(lines)
