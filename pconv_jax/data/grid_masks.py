"""Masks of gridded data from a mask file: one mask per time step, or one steady mask.

A mask file is a NetCDF/Zarr file whose variable holds 1 where a cell counts as observed and 0
where it is to be filled (NaN or a fill value counts as 0), as CRAI's `--mask-names` files do
(e.g. HadCRUT4's coverage `hadcrut_missmask_1.nc`, variable `tas`). For each data channel the
variable of the same name is used, or the file's only variable for every channel. It is either
per step (its `time` as long as the data's) or steady (no `time`, or one step: a land-sea mask),
and its grid has the data's size in the same dimension order.

A cell is observed when the mask file says 1 **and** the data holds a value there: the file can
hide observations (to score the infilling against them) but cannot invent any.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from pconv_jax.data import grids
from pconv_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class MaskFile:
    """An opened mask file matched to a data layout; `steps(start, stop)` reads it."""

    dataset: object  # xarray.Dataset
    variables: tuple[str, ...]  # the mask variable of each data channel
    layout: grids.GridLayout  # the mask variables' own layout
    steady: bool  # one mask for every step
    source: str

    def steps(self, start: int, stop: int) -> np.ndarray:
        """Masks of data samples `start:stop`: float32 [stop - start, H, W, C], 1 = observed."""
        first, last = (0, 1) if self.steady else (start, stop)
        layout = dataclasses.replace(self.layout, names=self.variables)
        raw = grids.read_values(self.dataset, layout, first, last)
        values = np.nan_to_num(raw, nan=0.0)
        if not np.isin(values, (0.0, 1.0)).all():
            odd = np.unique(values[~np.isin(values, (0.0, 1.0))])[:3]
            raise UserError(
                f"mask file {self.source} holds values other than 0 and 1 (e.g. {odd.tolist()})"
            )
        if self.steady:
            values = np.broadcast_to(values, (stop - start, *values.shape[1:]))
        return values.astype(np.float32)

    def close(self) -> None:
        self.dataset.close()  # type: ignore[attr-defined]


def open_mask_file(path: str | os.PathLike, data: grids.GridLayout) -> MaskFile:
    """The mask file at `path`, checked against the data's layout.

    Raises:
      UserError: no usable variable, a grid of another size or dimension order, or a number of
        time steps that is neither the data's nor one.
    """
    dataset = grids.open_grid(path)
    source = str(path)
    present = [str(name) for name in dataset.data_vars]
    if all(name in present for name in data.names):
        variables = data.names
    elif len(present) == 1:
        variables = (present[0],) * data.num_channels
    else:
        dataset.close()
        raise UserError(
            f"mask file {source} holds {', '.join(present) or 'no variables'}: it needs the data's "
            f"variables ({', '.join(data.names)}) or exactly one"
        )
    layout = grids.select_grid(dataset, tuple(dict.fromkeys(variables)), f"mask file {source}")
    if layout.grid_shape != data.grid_shape:
        dataset.close()
        raise UserError(
            f"mask file {source} has a {layout.grid_shape[0]}x{layout.grid_shape[1]} grid "
            f"({', '.join(layout.grid_dims)}); the data's is "
            f"{data.grid_shape[0]}x{data.grid_shape[1]} ({', '.join(data.grid_dims)})"
        )
    if layout.grid_dims != data.grid_dims and set(layout.grid_dims) == set(data.grid_dims):
        dataset.close()
        raise UserError(
            f"mask file {source} stores its grid as {layout.grid_dims}, the data as "
            f"{data.grid_dims}: transpose one of them"
        )
    steady = layout.num_samples == 1
    if not steady and layout.num_samples != data.num_samples:
        dataset.close()
        raise UserError(
            f"mask file {source} has {layout.num_samples} time steps; the data has "
            f"{data.num_samples} (give one mask per step, or one steady mask)"
        )
    return MaskFile(dataset, variables, layout, steady, source)
