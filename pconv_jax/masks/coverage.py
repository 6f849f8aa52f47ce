"""Observational coverage masks from NetCDF files, regridded to a model grid by the nearest cell
on the sphere.

A coverage file holds one pattern per time step on any latitude-longitude grid (for example
HadCRUT4's 72 x 72 grid, lat -88.75..88.75 by 2.5, lon 2.5..357.5 by 5 degrees): either a 0/1
mask (1 = observed, CRAI's `hadcrut_missmask_1.nc`) or a field with NaN where nothing was
observed (`tas_hadcrut_187709_189308.nc`). Each target cell takes the value of the source cell
whose centre is nearest on the sphere (k-d tree on unit vectors, so longitude wraps and
distances near the poles are true distances). Masks are float32 [H, W], 1 = observed, 0 = missing.
"""

from __future__ import annotations

import pathlib

import numpy as np
import xarray
from scipy import spatial

from pconv_jax.errors import UserError
from pconv_jax.masks import sphere, stations

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")


def regrid_nearest(
    mask_hw: np.ndarray,
    src_lat: np.ndarray,
    src_lon: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
) -> np.ndarray:
    """Nearest-cell regridding on the sphere.

    Args:
      mask_hw: [h, w] values on the source grid (any dtype).
      src_lat, src_lon: [h], [w] source cell centres in degrees.
      lat, lon: [H], [W] target cell centres in degrees.

    Returns:
      [H, W], the source value of the nearest source cell centre for each target cell.
    """
    tree = spatial.cKDTree(sphere.grid_vectors(src_lat, src_lon))
    _, nearest = tree.query(sphere.grid_vectors(lat, lon))
    return np.asarray(mask_hw).reshape(-1)[nearest].reshape(len(lat), len(lon))


def _coordinate(dataset: xarray.Dataset, names: tuple[str, ...], path: pathlib.Path) -> np.ndarray:
    for name in names:
        if name in dataset.coords or name in dataset.variables:
            return np.asarray(dataset[name].values, dtype=np.float64)
    raise UserError(f"{path}: no coordinate named {' or '.join(names)}")


def _variable(dataset: xarray.Dataset, var: str | None, path: pathlib.Path) -> xarray.DataArray:
    if var is not None:
        if var not in dataset.data_vars:
            raise UserError(
                f"{path}: no variable {var!r} (has {sorted(map(str, dataset.data_vars))})"
            )
        return dataset[var]
    gridded = [n for n in dataset.data_vars if {"lat", "lon"} <= set(dataset[n].dims)]
    gridded = gridded or [n for n in dataset.data_vars if dataset[n].ndim >= 2]
    if len(gridded) != 1:
        raise UserError(f"{path}: name the coverage variable as FILE.nc:VAR (has {gridded})")
    return dataset[gridded[0]]


def _time_labels(array: xarray.DataArray, stem: str) -> list[str]:
    if "time" not in array.dims or array.sizes["time"] == 1:
        return [stem]
    values = array["time"].values
    if np.issubdtype(values.dtype, np.datetime64):
        return [f"{stem}@{np.datetime_as_string(v, unit='M')}" for v in values]
    return [f"{stem}@{i}" for i in range(len(values))]


def read_coverage(
    path: str | pathlib.Path, lat: np.ndarray, lon: np.ndarray, var: str | None = None
) -> dict[str, np.ndarray]:
    """Every time step of a coverage file as a mask on the target grid.

    Args:
      path: NetCDF file with a variable [time, lat, lon] or [lat, lon]: values in {0, 1}
        (1 = observed) or a field with NaN where missing (then finite = observed).
      lat, lon: target cell centres [H], [W] in degrees.
      var: the variable (default: the file's only gridded one).

    Returns:
      {name: float32 [H, W] mask, 1 = observed}, named after the file (and `@YYYY-MM` per time
      step when the file holds several).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"coverage file not found: {path}")
    with xarray.open_dataset(path) as dataset:
        array = _variable(dataset, var, path)
        src_lat = _coordinate(dataset, LAT_NAMES, path)
        src_lon = _coordinate(dataset, LON_NAMES, path)
        values = np.asarray(array.values, dtype=np.float64).reshape(-1, len(src_lat), len(src_lon))
        names = _time_labels(array, path.stem)
    if np.isnan(values).any():
        observed = np.isfinite(values)
    elif np.isin(values, (0.0, 1.0)).all():
        observed = values == 1.0
    else:
        raise UserError(f"{path}: coverage must be 0/1 or NaN where missing, got other values")
    return {
        name: regrid_nearest(pattern, src_lat, src_lon, lat, lon).astype(np.float32)
        for name, pattern in zip(names, observed, strict=True)
    }


GENERATED = {"stations": stations.station_coverage, "random": stations.random_cells}


def from_specs(
    specs: list[str] | tuple[str, ...], lat: np.ndarray, lon: np.ndarray, seed: int = 0
) -> dict[str, np.ndarray]:
    """{name: float32 mask [H, W]} for coverage specs: "stations:F" and "random:F" (F = observed
    fraction, generated from `seed` by `masks.stations`; named by the spec) and "FILE.nc" or
    "FILE.nc:VAR" (each time step a pattern, see `read_coverage`). `pconv evaluate --coverage`
    and training's `data.grid_coverage_files` both take these, so the same spec and seed give
    the same pattern in both."""
    patterns: dict[str, np.ndarray] = {}
    for spec in specs:
        kind, _, value = spec.partition(":")
        if kind in GENERATED:
            try:
                fraction = float(value)
            except ValueError:
                message = f"coverage {spec}: expected {kind}:FRACTION, e.g. {kind}:0.3"
                raise UserError(message) from None
            patterns[spec] = GENERATED[kind](lat, lon, fraction, seed=seed).astype(np.float32)
        else:
            path, _, var = spec.partition(".nc:")
            path = path if path.endswith(".nc") or not var else path + ".nc"
            patterns.update(read_coverage(path, lat, lon, var or None))
    return patterns
