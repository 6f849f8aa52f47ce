"""Infilling gridded data: a trained gridded model applied to arrays or to NetCDF/Zarr files.

The model (`pconv train` on grids, or `pconv convert --from crai`) maps values in physical units
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

import dataclasses
import os
import pathlib

import numpy as np

from pconv_jax.config import ModelConfig
from pconv_jax.errors import UserError
from pconv_jax.inference.jax_forward import JaxForward
from pconv_jax.store import trained


@dataclasses.dataclass(frozen=True)
class InfillReport:
    """What `Infiller.infill_file` did.

    Attributes:
      output: the file written.
      names: the infilled variables.
      num_steps: time steps infilled.
      infilled_cells: cells filled by the network, per variable.
      empty_steps: per variable, the time indices that had no observed cell.
    """

    output: pathlib.Path
    names: tuple[str, ...]
    num_steps: int
    infilled_cells: dict[str, int]
    empty_steps: dict[str, list[int]]


def check_grid(model: ModelConfig, channels: int, grid_shape: tuple[int, int]) -> None:
    """UserError unless a model built from `model` takes `channels` variables on `grid_shape`."""
    if channels != model.in_channels:
        raise UserError(
            f"the model takes {model.in_channels} input channel(s) (variables); got {channels}"
        )
    if model.out_channels > model.in_channels:
        raise UserError(
            f"the model outputs {model.out_channels} channels from {model.in_channels}: infilling "
            "needs each output channel to fill an input variable"
        )
    multiple = 2**model.num_layers
    height, width = grid_shape
    if model.input_sizes == "multiple" and (height % multiple or width % multiple):
        raise UserError(
            f"the {height}x{width} grid does not divide by 2**num_layers = {multiple}: this model "
            f"(num_layers={model.num_layers}, input_sizes='multiple') cannot take it"
        )


class Infiller:
    """A gridded model ready to infill [N, H, W, C] arrays or whole files.

    Attributes:
      config: the model's `ModelConfig` (in_channels, out_channels, ...).
      forward: the jitted forward pass over the local devices (`JaxForward`).
      source: where the model was read from.
    """

    def __init__(self, config: ModelConfig, forward: JaxForward, source: str = ""):
        self.config = config
        self.forward = forward
        self.source = source

    @classmethod
    def load(cls, path: str | os.PathLike, devices=None) -> Infiller:
        """The model of a `pconv export`/`pconv convert` .npz or a `pconv train` run directory,
        run on `devices` (default: every local device, the batch split over them)."""
        model = trained.load(path)
        forward = JaxForward(model.model, model.variables, devices)
        return cls(model.config.model, forward, model.source)

    def __call__(
        self, values_NxHxWxC: np.ndarray, mask_NxHxWxC: np.ndarray | None = None
    ) -> np.ndarray:
        """Infills the gaps of `values`.

        Args:
          values_NxHxWxC: physical values, NaN where missing (any float dtype).
          mask_NxHxWxC: optional, 1 = observed, 0 = fill; a cell is observed only where it is 1
            and the value is finite. Default: observed where finite.
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
        if mask_NxHxWxC is not None:
            mask = np.asarray(mask_NxHxWxC)
            if mask.shape != values.shape:
                raise UserError(f"mask shape {mask.shape} differs from the values' {values.shape}")
            observed &= mask > 0.5
        output = self._network(values, observed)
        out = self.config.out_channels
        return np.where(observed[..., :out], values[..., :out], output.astype(values.dtype))

    def _network(self, values: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """The raw output, float32 [N,H,W,out_channels]: batches padded to the device count."""
        n = values.shape[0]
        unit = self.forward.batch_unit
        padded = -(-n // unit) * unit
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
        from pconv_jax.inference import grid_files

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
