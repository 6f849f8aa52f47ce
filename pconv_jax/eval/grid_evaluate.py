"""Scoring gridded infilling: complete fields, coverage patterns, baselines (or a model), tables.

The protocol: the truth is a complete field [T, H, W] (NetCDF, one variable on a lat-lon grid).
It is turned into anomalies against a climatology per cell: the time mean of each cell over
the truth file itself (default; the baselines then know the long-term
mean of the missing cells, as HadCRUT's anomalies do) or over another file (`climatology`, e.g.
the training members). Each coverage pattern (one [H, W] mask, the same for all T steps) hides
its missing cells in every step, each method fills them from the observed cells of the same
step, and `grid_scores.score` compares the fill with the truth over the missing cells. A fill
is scored in anomalies; adding the climatology back changes no score.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Mapping

import numpy as np
import xarray

from pconv_jax.errors import UserError
from pconv_jax.eval import grid_baselines, grid_report
from pconv_jax.masks import coverage
from pconv_jax.metrics import grid_scores

# fill(anomaly [T, H, W], mask [H, W], lat [H], lon [W]) -> anomaly [T, H, W]
Fill = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# infill(values [N, H, W, 1], mask [N, H, W, 1]) -> values [N, H, W, 1], in the file's units: the
# contract of `pconv_jax.inference.infiller.Infiller.__call__` (1 = observed).
Infill = Callable[[np.ndarray, np.ndarray], np.ndarray]


def model_fill(infill: Infill, climatology_hw: np.ndarray) -> Fill:
    """A Fill from a model that infills values in the file's units (what `pconv infill` does to
    a file): it gets anomaly + climatology, and its output minus the climatology is scored.
    A model that infills anomalies (CRAI's 20crtasgn72) takes `climatology_hw` = 0."""

    def fill(anomaly_thw, mask_hw, lat, lon):
        values = (anomaly_thw + climatology_hw)[..., None]
        mask = np.broadcast_to(mask_hw[None, :, :, None], values.shape).astype(np.float32)
        return np.asarray(infill(values, mask), np.float64)[..., 0] - climatology_hw

    return fill


def _years(dataset: xarray.Dataset, count: int) -> np.ndarray:
    """The time axis as decimal years [T] where the file's calendar decodes, else 0..T-1."""
    try:
        coder = xarray.coders.CFDatetimeCoder(use_cftime=True)
        times = xarray.decode_cf(dataset[["time"]], decode_times=coder)["time"].values
        return np.array([t.year + (t.dayofyr - 1) / 365.25 for t in times], np.float64)
    except (KeyError, ValueError, TypeError, AttributeError):
        return np.arange(count, dtype=np.float64)


def read_field(path: str | pathlib.Path, var: str) -> tuple:
    """(values [T, H, W] float64, lat [H], lon [W], years [T]) of variable `var` in a NetCDF
    file; the field must be complete (no NaN) so every masked cell has a truth."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"grid file not found: {path}")
    with xarray.open_dataset(path, decode_times=False) as dataset:
        if var not in dataset.data_vars:
            raise UserError(
                f"{path}: no variable {var!r} (has {sorted(map(str, dataset.data_vars))})"
            )
        array = dataset[var]
        if array.dims[-2:] != ("lat", "lon") or array.ndim not in (2, 3):
            raise UserError(f"{path}: {var} must be [time,] lat, lon; got {array.dims}")
        values = np.asarray(array.values, np.float64).reshape(-1, array.shape[-2], array.shape[-1])
        lat = np.asarray(dataset["lat"].values, np.float64)
        lon = np.asarray(dataset["lon"].values, np.float64)
        years = _years(dataset, len(values))
    if not np.isfinite(values).all():
        raise UserError(f"{path}: {var} has missing values; the truth must be complete")
    return values, lat, lon, years


def climatology_of(path, var: str, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The time mean per cell, [H, W], of `var` in `path`, which must share the truth's grid."""
    values, other_lat, other_lon, _ = read_field(path, var)
    if not (np.allclose(other_lat, lat) and np.allclose(other_lon, lon)):
        raise UserError(f"{path}: the climatology's grid differs from the truth's")
    return values.mean(axis=0)


def fraction_observed(mask_hw: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """(fraction of cells, fraction of the sphere's area) observed."""
    weights = grid_scores.area_weights(lat, mask_hw.shape[1])
    return float(mask_hw.mean()), float((weights * mask_hw).sum() / weights.sum())


def evaluate_grid(
    truth_path,
    var: str,
    coverage_specs: list[str],
    out,
    methods: dict[str, Fill] | None = None,
    models: Mapping[str, Infill] | None = None,
    model_anomalies: bool = False,
    climatology_path=None,
    seed: int = 0,
    limit: int | None = None,
) -> list[dict]:
    """Scores every method at every coverage and writes tables and figures to `out` (new).

    Args:
      truth_path, var: the complete fields.
      coverage_specs: see `masks.coverage.from_specs`.
      out: a folder that holds no earlier results.
      methods: {name: fill of anomalies} (default: every baseline; {} for none).
      models: {name: infill of values in the file's units}, e.g. an `Infiller` (`model_fill`).
      model_anomalies: the models infill anomalies instead (they get and return anomalies).
      climatology_path: anomalies against this file's time mean (default: the truth's own).
      seed: seed of the generated coverage patterns.
      limit: score only the first `limit` time steps.

    Returns:
      One row per (coverage, method): names, observed fractions, seconds, and the SCORES.
    """
    out = pathlib.Path(out)
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    values, lat, lon, years = read_field(truth_path, var)
    if climatology_path is None:
        mean_hw = values.mean(axis=0)
    else:
        mean_hw = climatology_of(climatology_path, var, lat, lon)
    anomaly = (values - mean_hw)[:limit]
    patterns = coverage.from_specs(coverage_specs, lat, lon, seed)
    methods = dict(grid_baselines.BASELINES if methods is None else methods)
    offset_hw = np.zeros_like(mean_hw) if model_anomalies else mean_hw
    methods |= {name: model_fill(infill, offset_hw) for name, infill in (models or {}).items()}
    if not methods:
        raise UserError("nothing to evaluate: give a baseline or a model")
    for name, mask in patterns.items():
        if mask.all() or not mask.any():
            raise UserError(f"coverage {name} observes {'every' if mask.any() else 'no'} cell")
    grid_report.check_new(out)  # after every check of the input: no empty folder on an error
    rows = []
    for name, mask in patterns.items():
        fills = {}
        cells, area = fraction_observed(mask, lat)
        for method, fill in methods.items():
            start = time.perf_counter()
            filled = fill(anomaly, mask, lat, lon)
            seconds = time.perf_counter() - start
            row = dict(coverage=name, observed_cells=cells, observed_area=area, method=method)
            rows.append(row | grid_scores.score(anomaly, filled, mask, lat) | {"seconds": seconds})
            fills[method] = filled
        grid_report.write_figures(out, name, anomaly, mask, lat, lon, years[:limit], fills)
    settings = dict(
        truth=str(truth_path), var=var, time_steps=int(anomaly.shape[0]), coverage=coverage_specs,
        climatology=str(climatology_path) if climatology_path else "the truth's own time mean",
        seed=seed, methods=list(methods),
        model_input="anomalies" if model_anomalies else "values in the file's units",
    )  # fmt: skip
    grid_report.write_tables(out, rows, settings)
    return rows
