"""Infilling gridded data: a trained gridded model applied to arrays or to NetCDF/Zarr files.

The model (a `pconv convert --from crai` export, or any model whose `ModelConfig` sets
`in_channels`/`out_channels` for the variables) maps values in physical units
and a mask (1 = observed) to a full field, normalising inside itself (`ModelConfig.channel_mean`,
`channel_std`). The `Infiller` feeds it the observed values (gaps set to 0, which the partial
convolutions ignore) and composites, as CRAI's evaluation does (`mask * image + (1 - mask) *
output`, utils/evaluation.py), but by selection, so observed cells are returned bit for bit:
infilled = where(observed, value, output).

Channels: input channel c is the c-th variable; output channel j (out_channels <= in_channels)
infills input channel j and is written back to that variable.

A time step with no observed cell in a channel is still infilled (the network's field for an
empty input: biases and bounds only, no information from data) and recorded: the file path adds
the attribute `steps_without_observation` (their indices along `time`) to that variable, and
`InfillReport.empty_steps` lists them.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from pconv_jax.config import ModelConfig
from pconv_jax.errors import UserError
from pconv_jax.inference import grid_files
from pconv_jax.inference.grid_files import InfillReport, check_grid, check_trained_values
from pconv_jax.inference.jax_forward import JaxForward
from pconv_jax.store import trained


class Infiller:
    """A gridded model ready to infill [N, H, W, C] arrays or whole files.

    Attributes:
      config: the model's `ModelConfig` (in_channels, out_channels, ...).
      forward: the jitted forward pass over the local devices (`JaxForward`).
      source: where the model was read from.
      trained_on: the grid a model trained with pconv_jax was trained on (its export card's
        `grid`: variables, lat, lon, units, anomaly_std; see grid_files.check_trained_grid), or
        None (converted models, run directories): then any grid the network takes is accepted.
    """

    def __init__(
        self,
        config: ModelConfig,
        forward: JaxForward,
        source: str = "",
        trained_on: dict | None = None,
    ):
        self.config = config
        self.forward = forward
        self.source = source
        self.trained_on = trained_on

    @classmethod
    def load(cls, path: str | os.PathLike, devices=None) -> Infiller:
        """The model of a `pconv export`/`pconv convert` .npz, a `pconv train` run directory or
        a model shipped in the package by name ("ccsm-t42", store/named.py), run on `devices`
        (default: every local device, the batch split over them)."""
        model = trained.load(path)
        forward = JaxForward(model.model, model.variables, devices)
        return cls(model.config.model, forward, model.source, model.card.get("grid"))

    def __call__(
        self,
        values_NxHxWxC: np.ndarray,
        mask_NxHxWxC: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Infills the gaps of `values`.

        Args:
          values_NxHxWxC: physical values, NaN where missing (any float dtype).
          mask_NxHxWxC: optional, [N,H,W,C] or [N,H,W,1] (all channels), 1 = observed, 0 = fill;
            a cell is observed only where it is 1 and the value is finite. Default: observed
            where finite.
          batch_size: pad the batch to this many samples (>= N, a multiple of the device count),
            so that slices of different lengths share one compilation; default: N rounded up
            to a multiple of the device count.
        Returns:
          [N, H, W, out_channels] in the dtype of `values`: the input values bit for bit where
          observed, the network's output elsewhere.
        """
        values = np.asarray(values_NxHxWxC)
        if values.ndim != 4:
            raise UserError(f"values must be [N,H,W,C], got shape {values.shape}")
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(np.float64)
        check_grid(self.config, values.shape[-1], values.shape[1:3])
        observed = np.isfinite(values)
        if self.trained_on is not None:
            check_trained_values(self.trained_on, values, observed, values.shape[1:3])
        if mask_NxHxWxC is not None:
            mask = np.asarray(mask_NxHxWxC)
            if mask.shape not in (values.shape, values.shape[:3] + (1,)):
                raise UserError(
                    f"mask shape {mask.shape} fits neither the values' {values.shape} nor "
                    f"{values.shape[:3] + (1,)}"
                )
            observed &= mask > 0.5
        output = self._network(values, observed, batch_size or values.shape[0])
        out = self.config.out_channels
        return np.where(observed[..., :out], values[..., :out], output.astype(values.dtype))

    def _network(self, values: np.ndarray, observed: np.ndarray, batch: int) -> np.ndarray:
        """The raw output, float32 [N,H,W,out_channels]: the batch padded to `batch` samples
        rounded up to a multiple of the device count."""
        n = values.shape[0]
        unit = self.forward.batch_unit
        padded = -(-max(n, batch) // unit) * unit
        index = np.minimum(np.arange(padded), n - 1)  # repeat the last sample as padding
        inputs = np.where(observed, values, 0.0).astype(np.float32)[index]
        mask = observed.astype(np.float32)[index]
        return self.forward(inputs, mask)[:n]

    def infill_file(
        self,
        source: str | os.PathLike,
        output: str | os.PathLike,
        names: tuple[str, ...] | list[str] = (),
        *,
        mask_file: str | os.PathLike | None = None,
        batch_size: int = 8,
        write_mask: bool = False,
        overwrite: bool = False,
        progress: bool = True,
        history: str = "",
    ) -> InfillReport:
        """Infills variables `names` (default: the file's one gridded variable) of a NetCDF/Zarr
        file into a NetCDF file, `batch_size` time steps at a time (see
        `inference.grid_files.infill_file`)."""
        if not names and self.trained_on is not None:
            names = tuple(self.trained_on["variables"])  # the variables it was trained on
        return grid_files.infill_file(
            self,
            pathlib.Path(source),
            pathlib.Path(output),
            tuple(names),
            mask_file=mask_file,
            batch_size=batch_size,
            write_mask=write_mask,
            overwrite=overwrite,
            progress=progress,
            history=history or f"pconv infill --checkpoint {self.source}",
        )
