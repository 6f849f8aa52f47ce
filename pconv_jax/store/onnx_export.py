"""ONNX export of a trained PConvUNet: the Flax model's own forward pass, converted by jax2onnx.

One definition of the network: `nn.model.PConvUNet.apply` in inference mode (BN running
statistics) is traced with symbolic batch, height and width and converted primitive by primitive
(`jax2onnx.to_onnx`), so every model option (io_range, ratio, conv_bias, the Conv baseline's
hole fill, and whatever nn/ adds) reaches the graph without being written a second time.

The graph (opset 17), NHWC as in JAX, C = model.in_channels (3 for photos), C' = out_channels:
  inputs  `image` float32 [N,H,W,C], RGB in [0,1] or gridded values (holes ignored, NaN included);
          `mask`  float32 [N,H,W,1], 1 = known, 0 = hole;
  output  `output` float32 [N,H,W,C'], the raw network output (not clipped, not composited).
H and W are symbolic multiples of 2**num_layers (dims named like "128*h"; the Inpainter pads to
buckets that are), or one fixed grid size for a model with input_sizes="any" (`input_specs`).
The file's metadata holds the run's config (JSON), so it is a self-contained inference artefact
like the .npz export.

jax2onnx is installed with `pip install --no-deps` (requirements-test-nodeps.txt): its metadata
pins orbax-checkpoint < 0.11.37, which this project (0.12.8) does not meet, but it never imports
orbax; what it does import is in the `onnx` extra.
"""

from __future__ import annotations

import json
import logging

from pconv_jax import atomic, config
from pconv_jax.errors import UserError
from pconv_jax.nn.model import build_model
from pconv_jax.store import trained

FORMAT = "pconv_jax.inpainter.onnx"
VERSION = 1
OPSET = 17
INPUT_NAMES = ("image", "mask")
OUTPUT_NAME = "output"


def input_specs(cfg: config.Config, size_hw: tuple[int, int] | None = None):
    """jax2onnx shapes of `image` [N,H,W,C] and `mask` [N,H,W,1] (C = model.in_channels).

    N is symbolic. H and W are symbolic multiples of 2**L for `input_sizes="multiple"` (the
    decoder's upsampling is then an exact x2 repeat); with `input_sizes="any"` the nearest
    upsampling's indices depend on the sizes themselves, so the graph is for one grid, `size_hw`.
    """
    height: int | str
    width: int | str
    if size_hw is not None:
        height, width = size_hw
    elif cfg.model.input_sizes == "any":
        raise UserError(
            "a model with input_sizes='any' exports for one grid size: give its height and width"
        )
    else:
        multiple = 2**cfg.model.num_layers
        height, width = f"{multiple}*h", f"{multiple}*w"
    return [("N", height, width, cfg.model.in_channels), ("N", height, width, 1)]


def build_onnx(
    cfg: config.Config,
    variables: dict,
    *,
    step: int | None = None,
    size_hw: tuple[int, int] | None = None,
):
    """The ONNX ModelProto of a PConvUNet (see the module docstring for its interface).

    Args:
      cfg: the run's config (its `model` section describes the network).
      variables: {'params', 'batch_stats'} of that model (numpy or JAX arrays); they become the
        graph's initializers.
      step: the checkpoint step, recorded in the metadata.
      size_hw: a fixed (H, W) instead of symbolic sides (required for input_sizes="any").
    """
    import jax

    try:  # optional dependencies: only the export needs them
        import onnx
        from jax2onnx import to_onnx
    except ImportError as e:
        raise UserError(
            f"an ONNX export needs onnx and jax2onnx ({e}); install them with: pip install "
            f"'pconv_jax[onnx]' && pip install --no-deps jax2onnx==0.17.1"
        ) from e

    model = build_model(cfg.model)
    variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}

    def forward(image, mask):
        return model.apply(variables, image, mask, train=False)

    # onnx_ir warns once per shape tensor it leaves untyped; the checker below validates the graph.
    serde_log = logging.getLogger("onnx_ir.serde")
    level = serde_log.level
    serde_log.setLevel(logging.ERROR)
    # jax2onnx's flax Conv plugin adds the bias [F] to [N,H,W,F] by rank promotion, which a
    # caller's jax_numpy_rank_promotion="raise" (the tests') would refuse inside the library.
    try:
        with jax.numpy_rank_promotion("allow"):
            proto = to_onnx(
                forward,
                input_specs(cfg, size_hw),
                model_name="pconv_unet",
                opset=OPSET,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
            )
    finally:
        serde_log.setLevel(level)
    meta = {"format": FORMAT, "version": VERSION, "step": step}
    for key, value in (("pconv_meta", json.dumps(meta)), ("pconv_config", config.to_json(cfg))):
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(proto)
    return proto


def export_onnx(workdir, out_path, step: int | None = None, size_hw: tuple[int, int] | None = None):
    """Writes a training run's checkpoint (or a .npz export) as an .onnx file (atomically);
    `size_hw` as for `build_onnx`.

    Returns:
      (path written, step exported or None when the source was an .npz without one).
    """
    import onnx

    out_path = trained.export_path(out_path, "onnx")
    source = trained.load(workdir, step)
    model = build_onnx(source.config, source.variables, step=source.step, size_hw=size_hw)
    with atomic.replacing(out_path) as temporary:
        onnx.save_model(model, str(temporary))
    return out_path, source.step


def read_metadata(model_proto) -> tuple[config.Config, dict]:
    """(config, meta) stored in an exported ONNX model; UserError if it is not one."""
    props = {p.key: p.value for p in model_proto.metadata_props}
    if "pconv_meta" not in props or "pconv_config" not in props:
        raise UserError("this ONNX file is not a pconv_jax export (no pconv_meta metadata)")
    meta = json.loads(props["pconv_meta"])
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise UserError(
            f"unsupported ONNX export {meta.get('format')} v{meta.get('version')} "
            f"(this version reads {FORMAT} v{VERSION})"
        )
    return config.from_dict(json.loads(props["pconv_config"])), meta
