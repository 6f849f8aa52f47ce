"""Loading the forward pass of any trained model: a run directory, an .npz or an .onnx export.

The one dispatch of inference: `store.trained.model_kind` says what the path holds, and this
module builds the matching backend (`jax_forward.JaxForward` or `onnx_runtime.OnnxForward`)
together with what the `Inpainter` needs to know about the model.
"""

from __future__ import annotations

import dataclasses
import os

from pconv_jax.config import Config
from pconv_jax.errors import UserError
from pconv_jax.inference.jax_forward import JaxForward
from pconv_jax.inference.onnx_runtime import OnnxForward
from pconv_jax.store import trained


@dataclasses.dataclass(frozen=True)
class LoadedForward:
    """A forward backend and the model facts around it.

    Attributes:
      forward: `JaxForward` or `OnnxForward`.
      config: the model's training `Config` (data.image_size is the training resolution).
      step: the training step of the weights (None when an .onnx export does not say).
      source: the path it was read from.
    """

    forward: JaxForward | OnnxForward
    config: Config
    step: int | None
    source: str


def load_forward(
    path: str | os.PathLike,
    step: int | None = None,
    dtype=None,
    *,
    devices=None,
    providers: list[str] | None = None,
) -> LoadedForward:
    """The forward pass of a run directory (checkpoint `step`, default the latest), a `pconv
    export`/`pconv convert` .npz, or an .onnx export (run by onnxruntime, no JAX).

    Args:
      path: the run directory or export file.
      step: checkpoint step, run directories only.
      dtype: JAX compute dtype (None = float32); not for .onnx, which runs in float32.
      devices: JAX devices to run on (default all local ones); not for .onnx.
      providers: onnxruntime execution providers (default CPU); .onnx only.
    """
    if trained.model_kind(path) == "onnx":
        for name, value in (("a step", step), ("dtype", dtype), ("devices", devices)):
            if value is not None:
                raise UserError(f"{name} applies to JAX models, not to the .onnx export {path}")
        onnx = OnnxForward(path, providers)
        return LoadedForward(onnx, onnx.config, onnx.meta.get("step"), str(path))
    if providers is not None:
        raise UserError(f"providers apply to .onnx exports, not to {path}")
    model = trained.load(path, step, dtype)
    forward = JaxForward(model.model, model.variables, devices)
    return LoadedForward(forward, model.config, model.step, model.source)
