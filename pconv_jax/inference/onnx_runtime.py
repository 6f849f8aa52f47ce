"""The onnxruntime forward pass behind an `Inpainter`: an .onnx export, no JAX in the loop.

`OnnxForward` is a forward backend like `jax_forward.JaxForward` (see there), so an `Inpainter`
over it has the same shape buckets (padding = hole), strategies and compositing: known pixels come
back exactly. onnxruntime is an optional dependency (`pip install pconv_jax[onnx]`).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.store.onnx_export import read_metadata


class OnnxForward:
    """An exported .onnx PConvUNet run by onnxruntime, one image per pass by default."""

    batch_unit = 1

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None):
        """Opens the file and checks that it is a pconv_jax export.

        Args:
          path: the .onnx file.
          providers: onnxruntime execution providers (default: CPU).
        """
        try:  # optional dependencies: only this backend needs them
            import onnx
            import onnxruntime
        except ImportError as e:
            raise UserError(
                f"running an .onnx export needs onnx and onnxruntime ({e}); "
                f"install them with: pip install 'pconv_jax[onnx]'"
            ) from e
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # DecodeError and friends: all mean "not an ONNX model"
            raise UserError(f"cannot read {path} as an ONNX model: {e}") from e
        self.config, self.meta = read_metadata(proto)
        self.path = path
        self.num_layers = self.config.model.num_layers
        self.session = onnxruntime.InferenceSession(
            proto.SerializeToString(), providers=providers or ["CPUExecutionProvider"]
        )
        self.shapes_seen: set[tuple[int, ...]] = set()

    @property
    def num_compilations(self) -> int:
        """Distinct input shapes run so far (onnxruntime plans each new shape once)."""
        return len(self.shapes_seen)

    def __call__(self, image_BxHxWx3: np.ndarray, mask_BxHxWx1: np.ndarray) -> np.ndarray:
        """The raw network output, float32 [B,H,W,3]; inputs as for `JaxForward`."""
        self.shapes_seen.add(image_BxHxWx3.shape)
        (output,) = self.session.run(["output"], {"image": image_BxHxWx3, "mask": mask_BxHxWx1})
        return output
