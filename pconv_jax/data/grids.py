"""Gridded data (NetCDF, Zarr) as network samples: time steps x grid x variables (channels).

A sample is one step of the sample dimension (`time`) of one or more variables; each variable is
one channel. A variable holds the sample dimension (or none: one field) and exactly two more, the
grid, kept in the order the file stores them (CF files: lat, lon). Values come back in the
network's layout [N, H, W, C] (H, W: the two grid dimensions in stored order), decoded by xarray
(`_FillValue`/`missing_value` become NaN, `scale_factor`/`add_offset` applied) and in the
variables' decoded dtype, so observed values can be written back bit for bit. Missing = NaN.

Nothing is read whole: `read_values` reads one slice of time steps, and `file_channel_statistics`
streams. xarray (and netCDF4/h5netcdf or zarr under it) is the extra `pconv_jax[grids]`,
imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from pconv_jax.errors import UserError

SAMPLE_DIM = "time"  # CRAI's and CF's sample dimension


def open_grid(path: str | os.PathLike):
    """An `xarray.Dataset` read lazily from a NetCDF file or a Zarr store (a folder or `*.zarr`).

    Times are left undecoded (`decode_times=False`): the time coordinate is carried through as the
    numbers and `units`/`calendar` attributes the file holds, whatever its calendar. Values are
    decoded (`mask_and_scale`): fill values become NaN.

    Raises:
      FileNotFoundError: nothing at `path`.
      UserError: xarray cannot read it as NetCDF or Zarr.
    """
    import xarray

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no NetCDF or Zarr file at {path}")
    try:
        if path.is_dir() or path.suffix.lower() == ".zarr":
            return xarray.open_zarr(path, chunks=None, decode_times=False)
        # cache=False: each slice is read once; xarray's cache would keep what was read
        return xarray.open_dataset(path, chunks=None, decode_times=False, cache=False)
    except (ValueError, OSError, TypeError, KeyError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path} is not a NetCDF or Zarr file xarray can read ({reason})") from e


@dataclasses.dataclass(frozen=True)
class GridLayout:
    """Which variables are the channels and how their dimensions map onto [N, H, W, C].

    Attributes:
      names: the variables, one channel each, in channel order.
      dims: the variables' own dimension order (the same for all of them).
      sample_dim: the sample dimension (`time`), or None when the variables hold one field.
      grid_dims: the two grid dimensions, (H, W) in stored order, e.g. ("lat", "lon").
      num_samples: length of the sample dimension (1 without one).
      grid_shape: (H, W) in cells.
    """

    names: tuple[str, ...]
    dims: tuple[str, ...]
    sample_dim: str | None
    grid_dims: tuple[str, str]
    num_samples: int
    grid_shape: tuple[int, int]

    @property
    def num_channels(self) -> int:
        return len(self.names)


def _data_variables(dataset) -> list[str]:
    return [str(name) for name in dataset.data_vars]


def select_grid(
    dataset, names: tuple[str, ...] | list[str] = (), source: str = "the dataset"
) -> GridLayout:
    """The layout of `names` (default: the one data variable with a grid) in `dataset`.

    Raises:
      UserError: a name the dataset lacks (the message lists what it holds), no name given where
        several variables could be meant, a variable that is not [time,] y, x, or variables whose
        dimensions or sizes differ.
    """
    present = _data_variables(dataset)
    if not names:
        gridded = [n for n in present if len(set(dataset[n].dims) - {SAMPLE_DIM}) == 2]
        if len(gridded) != 1:
            raise UserError(
                f"{source} holds {len(gridded)} gridded variables ({', '.join(gridded) or 'none'}):"
                " name the ones to use (--var)"
            )
        names = gridded
    names = tuple(names)
    missing = [n for n in names if n not in present]
    if missing:
        raise UserError(
            f"no variable {', '.join(map(repr, missing))} in {source}; it holds: "
            f"{', '.join(present) or 'no data variables'}"
        )
    first = dataset[names[0]]
    dims = tuple(str(d) for d in first.dims)
    grid_dims = tuple(d for d in dims if d != SAMPLE_DIM)
    if len(grid_dims) != 2:
        raise UserError(
            f"variable {names[0]!r} of {source} has dimensions {dims}: a grid needs exactly two "
            f"besides {SAMPLE_DIM!r}"
        )
    for name in names[1:]:
        other = dataset[name]
        if tuple(other.dims) != dims or other.shape != first.shape:
            raise UserError(
                f"variables {names[0]!r} {dict(first.sizes)} and {name!r} {dict(other.sizes)} of "
                f"{source} differ in dimensions: channels need the same grid and time steps"
            )
    sample_dim = SAMPLE_DIM if SAMPLE_DIM in dims else None
    return GridLayout(
        names=names,
        dims=dims,
        sample_dim=sample_dim,
        grid_dims=(grid_dims[0], grid_dims[1]),
        num_samples=int(first.sizes[SAMPLE_DIM]) if sample_dim else 1,
        grid_shape=(int(first.sizes[grid_dims[0]]), int(first.sizes[grid_dims[1]])),
    )


def _steps(array, layout: GridLayout, start: int, stop: int) -> np.ndarray:
    """[stop - start, H, W] of one variable (a DataArray laid out as `layout`)."""
    if layout.sample_dim is None:
        return np.asarray(array.transpose(*layout.grid_dims).values)[None]
    part = array.isel({layout.sample_dim: slice(start, stop)})
    return np.asarray(part.transpose(layout.sample_dim, *layout.grid_dims).values)


def read_values(dataset, layout: GridLayout, start: int, stop: int) -> np.ndarray:
    """Samples `start:stop` as [N, H, W, C], NaN where missing, in the variables' decoded dtype
    (float32 or float64; integer variables become float64 so NaN can mark gaps)."""
    channels = [_steps(dataset[name], layout, start, stop) for name in layout.names]
    values = np.stack(channels, axis=-1)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    return values


def observed_mask(values_NxHxWxC: np.ndarray) -> np.ndarray:
    """1.0 where a value is observed (finite), 0.0 where it is missing (NaN), float32."""
    return np.isfinite(values_NxHxWxC).astype(np.float32)


def channel_statistics(values_NxHxWxC: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every observed (non-NaN) cell and step, as
    CRAI's normaliser computes them (`np.nanmean`/`np.nanstd`, ddof 0, in the array's dtype).

    Returns:
      (mean [C], std [C]) as float64 arrays holding the values numpy computed.
    Raises:
      UserError: a channel with no observed value.
    """
    values = np.asarray(values_NxHxWxC)
    _check_observed(np.isfinite(values).sum(axis=tuple(range(values.ndim - 1))))
    channels = [values[..., c] for c in range(values.shape[-1])]
    mean = np.array([np.nanmean(channel) for channel in channels], np.float64)
    std = np.array([np.nanstd(channel) for channel in channels], np.float64)
    return mean, std


def _check_observed(counts_C: np.ndarray, names: tuple[str, ...] = ()) -> None:
    empty = [names[c] if names else f"channel {c}" for c in np.flatnonzero(counts_C == 0)]
    if empty:
        raise UserError(f"{', '.join(map(str, empty))}: no observed value (all NaN or fill values)")


def file_channel_statistics(
    path: str | os.PathLike, names: tuple[str, ...] | list[str] = (), chunk_steps: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """`channel_statistics` of variables `names` of a NetCDF/Zarr file, streamed `chunk_steps`
    time steps at a time (Chan et al.'s pairwise merge of counts, means and squared deviations,
    in float64). It differs from numpy's float32 `nanmean`/`nanstd` over the whole array by that
    computation's float32 rounding only.

    Returns:
      (mean [C], std [C]) float64, channels in the order of `names`.
    """
    if chunk_steps < 1:
        raise UserError(f"chunk_steps must be >= 1, got {chunk_steps}")
    dataset = open_grid(path)
    layout = select_grid(dataset, names, str(path))
    count = np.zeros(layout.num_channels)
    mean = np.zeros(layout.num_channels)
    squares = np.zeros(layout.num_channels)  # sum of squared deviations from `mean`
    with dataset:
        for start in range(0, layout.num_samples, chunk_steps):
            values = read_values(dataset, layout, start, start + chunk_steps).astype(np.float64)
            values = values.reshape(-1, layout.num_channels)
            n = np.isfinite(values).sum(axis=0)
            seen = n > 0
            chunk_mean = np.where(seen, np.nansum(values, axis=0) / np.maximum(n, 1), 0.0)
            chunk_squares = np.nansum((values - chunk_mean) ** 2, axis=0)
            total = count + n
            delta = chunk_mean - mean
            weight = np.divide(n, total, out=np.zeros_like(mean), where=total > 0)
            mean = mean + delta * weight
            squares = squares + chunk_squares + delta**2 * count * weight
            count = total
    _check_observed(count, layout.names)
    return mean, np.sqrt(squares / count)
