"""Writing an infilled NetCDF file step by step, keeping what the input file says about its data.

The output is the input dataset with the infilled variables replaced: every other variable,
coordinate and attribute is written by xarray as read (times undecoded, so bit for bit), plus a
`history` line. The infilled variables (and the optional masks beside them) are then created with
netCDF4 and filled one slice of time steps at a time, each slice encoded by xarray's own CF
encoder (`xarray.conventions.encode_cf_variable`) with the input variable's encoding: its dtype,
`_FillValue`/`missing_value`, `scale_factor`/`add_offset`, compression and chunking; its
attributes (units, long_name, ...) and dimension order are the input's. Nothing is held whole.

The file is written under a temporary name beside the output and renamed when complete.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from pconv_jax.data.grids import GridLayout

# netCDF4 createVariable's storage options that xarray keeps in a variable's encoding
_STORAGE_KEYS = ("zlib", "complevel", "shuffle", "fletcher32", "contiguous", "chunksizes")
MASK_SUFFIX = "_mask"


def temporary_path(path: pathlib.Path) -> pathlib.Path:
    """A name beside `path` for the file being written (same folder: the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


class GridWriter:
    """The output file under construction: `write(start, infilled, mask)` per slice, then
    `finish(attributes)`, which closes the file (the caller renames it)."""

    def __init__(self, dataset, layout: GridLayout, path: pathlib.Path, history: str, masks: bool):
        """Writes everything but the infilled variables, then creates those.

        Args:
          dataset: the input `xarray.Dataset` (read lazily, times undecoded).
          layout: the infilled variables and their dimensions.
          path: where to write (the temporary name).
          history: the line added on top of the input's `history` attribute.
          masks: also create `<name>_mask` (int8, 1 = observed, 0 = infilled) beside each.
        """
        import netCDF4

        self.layout = layout
        self.templates = {name: dataset[name].variable for name in layout.names}
        skeleton = dataset.drop_vars(list(layout.names))
        skeleton.attrs = dict(dataset.attrs)
        old = dataset.attrs.get("history", "")
        skeleton.attrs["history"] = history + ("\n" + old if old else "")
        for variable in skeleton.variables.values():
            # xarray would add _FillValue = NaN to float variables that had none: keep them as read
            if "_FillValue" not in variable.encoding and variable.dtype.kind == "f":
                variable.encoding["_FillValue"] = None
        skeleton.to_netcdf(path, format="NETCDF4", engine="netcdf4")
        self.file = netCDF4.Dataset(path, "a")
        unlimited = set(dataset.encoding.get("unlimited_dims", ()))
        for dim in layout.dims:
            if dim not in self.file.dimensions:
                size = None if dim in unlimited else dataset.sizes[dim]
                self.file.createDimension(dim, size)
        self.variables = {name: self._create(name) for name in layout.names}
        self.masks = {name: self._create_mask(name) for name in layout.names} if masks else {}

    def _encode(self, name: str, values_in_layout: np.ndarray):
        """The slice as xarray would write it: in the variable's dimension order, encoded."""
        from xarray import Variable, conventions

        template = self.templates[name]
        order = (self.layout.sample_dim,) if self.layout.sample_dim else ()
        if not self.layout.sample_dim:
            values_in_layout = values_in_layout[0]
        variable = Variable(order + self.layout.grid_dims, values_in_layout)
        variable = Variable(
            template.dims,
            variable.transpose(*template.dims).values,
            dict(template.attrs),
            dict(template.encoding),
        )
        return conventions.encode_cf_variable(variable, name=name)

    def _create(self, name: str):
        template = self.templates[name]
        first = self._encode(name, np.zeros((1, *self.layout.grid_shape), template.dtype))
        storage = {k: template.encoding[k] for k in _STORAGE_KEYS if k in template.encoding}
        if storage.get("contiguous"):
            storage.pop("chunksizes", None)
        attrs = dict(first.attrs)
        fill = attrs.pop("_FillValue", None)
        variable = self.file.createVariable(
            name,
            first.dtype,
            template.dims,
            fill_value=fill if fill is not None else False,
            **storage,
        )
        variable.setncatts(attrs)
        variable.set_auto_maskandscale(False)  # slices arrive encoded
        return variable

    def _create_mask(self, name: str):
        variable = self.file.createVariable(
            name + MASK_SUFFIX, "i1", self.templates[name].dims, fill_value=False, zlib=True
        )
        variable.setncatts(
            {
                "long_name": f"cells of {name} that were observed",
                "flag_values": np.array([0, 1], np.int8),
                "flag_meanings": "infilled observed",
            }
        )
        return variable

    def _region(self, name: str, start: int, stop: int) -> tuple[slice, ...]:
        dims = self.templates[name].dims
        return tuple(
            slice(start, stop) if d == self.layout.sample_dim else slice(None) for d in dims
        )

    def write(self, start: int, infilled_NxHxWxC: np.ndarray, mask_NxHxWxC: np.ndarray) -> None:
        """Samples `start:start+N` of every infilled variable (and mask), in physical units."""
        stop = start + infilled_NxHxWxC.shape[0]
        for c, name in enumerate(self.layout.names):
            region = self._region(name, start, stop)
            self.variables[name][region] = self._encode(name, infilled_NxHxWxC[..., c]).values
            if self.masks:
                mask = mask_NxHxWxC[..., c].astype(np.int8)
                order = ((self.layout.sample_dim,) if self.layout.sample_dim else ()) + (
                    self.layout.grid_dims
                )
                mask = mask if self.layout.sample_dim else mask[0]
                dims = self.templates[name].dims
                self.masks[name][region] = np.transpose(mask, [order.index(d) for d in dims])

    def finish(self, attributes: dict[str, dict]) -> None:
        """Adds `attributes` ({variable: {name: value}}) and closes the file."""
        for name, extra in attributes.items():
            self.variables[name].setncatts(extra)
        self.file.close()

    def abandon(self) -> None:
        if self.file.isopen():
            self.file.close()
