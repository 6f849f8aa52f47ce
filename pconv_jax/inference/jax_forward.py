"""The JAX forward pass behind an `Inpainter`: a PConvUNet jitted over a 1-D mesh of local devices.

A forward backend is what `Inpainter` calls on a padded batch; it has `num_layers` (the U-Net
depth, so sides must be multiples of 2**num_layers), `batch_unit` (a batch is a multiple of
it), `num_compilations` (distinct shapes traced so far) and `__call__(image, mask) -> output`.
`onnx_runtime.OnnxForward` is the other one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax.nn.model import PConvUNet
from pconv_jax.parallel import sharding


class JaxForward:
    """`model.apply(variables, image, mask)` in float32, the batch split over the devices."""

    def __init__(self, model: PConvUNet, variables: dict, devices=None):
        """Places the variables on every device and prepares the jitted forward pass.

        Args:
          model: a PConvUNet (`nn.model.build_model(cfg.model)`).
          variables: {'params', 'batch_stats'} of that model.
          devices: devices to run on (default `jax.local_devices()`).
        """
        self.model = model
        self.num_layers = model.num_layers
        self.mesh = sharding.make_mesh(jax.local_devices() if devices is None else devices)
        self.batch_unit = self.mesh.size
        replicated = sharding.replicated(self.mesh)
        self.variables = jax.device_put(variables, replicated)
        batched = sharding.batch_sharded(self.mesh)
        self._forward = jax.jit(
            self._traced, in_shardings=(replicated, batched, batched), out_shardings=batched
        )
        self.num_compilations = 0  # distinct (batch, height, width) shapes traced so far

    def _traced(self, variables, image, mask):
        self.num_compilations += 1  # Python side effect: runs once per new traced shape
        return jnp.asarray(self.model.apply(variables, image, mask), jnp.float32)

    def __call__(self, image_BxHxWx3: np.ndarray, mask_BxHxWx1: np.ndarray) -> np.ndarray:
        """The raw network output, float32 [B,H,W,3] (any range; B a multiple of batch_unit).

        Args:
          image_BxHxWx3: float32 in [0, 1], zero in the holes.
          mask_BxHxWx1: float32, 1 = known, 0 = hole.
        """
        batched = sharding.batch_sharded(self.mesh)
        image, mask = jax.device_put(image_BxHxWx3, batched), jax.device_put(mask_BxHxWx1, batched)
        return np.asarray(self._forward(self.variables, image, mask))
