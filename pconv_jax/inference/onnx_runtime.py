"""Running an ONNX export (`pconv export --format onnx`) with onnxruntime, no JAX in the loop.

`OnnxInpainter` is an `Inpainter` whose forward pass is an onnxruntime session: the same shape
buckets (padding = hole), the same strategies and the same compositing, so known pixels come
back exactly. onnxruntime is an optional dependency (`pip install pconv_jax[onnx]`).
"""

from __future__ import annotations

import pathlib

import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.inference.inpainter import Inpainter, _check_strategy


class OnnxInpainter(Inpainter):
    """Fills holes with an exported .onnx PConvUNet (see `Inpainter` for the call interface)."""

    def __init__(
        self,
        path: str | pathlib.Path,
        *,
        bucket_step: int | None = None,
        batch_size: int | None = None,
        train_size: int | None = None,
        strategy: str = "full",
        providers: list[str] | None = None,
    ):
        """Opens the file and checks that it is a pconv_jax export.

        Args:
          path: the .onnx file.
          bucket_step, batch_size, strategy: as for `Inpainter` (batch_size default 1).
          train_size: training resolution (default: the one in the export's config).
          providers: onnxruntime execution providers (default: CPU).
        """
        try:
            import onnx
            import onnxruntime
        except ImportError as e:
            raise ImportError(
                f"running an .onnx export needs onnx and onnxruntime ({e}); "
                f"install them with: pip install 'pconv_jax[onnx]'"
            ) from e
        from pconv_jax.store.onnx_export import read_metadata

        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # DecodeError and friends: all mean "not an ONNX model"
            raise UserError(f"cannot read {path} as an ONNX model: {e}") from e
        self.cfg, self.meta = read_metadata(proto)
        self.path = path
        self.multiple = 2**self.cfg.model.num_layers
        self.bucket_step = bucket_step or max(self.multiple, 64)
        if self.bucket_step % self.multiple:
            raise UserError(
                f"bucket_step={self.bucket_step} is not a multiple of 2**num_layers={self.multiple}"
            )
        self.batch_unit = 1
        self.batch_size = batch_size or 1
        self.train_size = train_size or self.cfg.data.image_size
        self.strategy = _check_strategy(strategy, self.train_size)
        self.session = onnxruntime.InferenceSession(
            proto.SerializeToString(), providers=providers or ["CPUExecutionProvider"]
        )
        self.shapes_seen: set[tuple[int, ...]] = set()

    @property
    def num_compilations(self) -> int:
        """Distinct input shapes run so far (onnxruntime plans each new shape once)."""
        return len(self.shapes_seen)

    def _apply(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.shapes_seen.add(image.shape)
        (output,) = self.session.run(["output"], {"image": image, "mask": mask})
        return output
