"""Scores of gridded infilling over the missing cells, weighted by area (Kadow et al. 2020).

Every score compares a prediction with the complete truth on a latitude-longitude grid with
cell weights w = cos(latitude). Fields are [T, H, W] (T time steps), masks [H, W] or [T, H, W]
with 1 = observed and 0 = missing; the missing cells are those the method had to fill. Units are
those of the field (K for temperature).

- rmse: sqrt(sum_missing w (p - t)^2 / sum_missing w), pooled over all time steps.
- bias: sum_missing w (p - t) / sum_missing w, pooled likewise (positive = too warm).
- pattern_correlation: per time step, the centred area-weighted correlation of p and t over the
  missing cells (each centred by its own weighted mean there), averaged over time steps; NaN
  where a prediction has no spatial variance there (the climatology's constant 0).
- global-mean series: per time step the area-weighted mean over ALL cells of the infilled field
  (truth on observed cells, prediction on missing ones) against the truth's global mean;
  `global_mean_rmse` is the RMSE of the two series over time and `global_mean_correlation` their
  Pearson correlation over time (Kadow et al.'s headline).
"""

from __future__ import annotations

import numpy as np

SCORES = (
    "rmse",
    "bias",
    "pattern_correlation",
    "global_mean_rmse",
    "global_mean_correlation",
)


def _check(truth: np.ndarray, prediction: np.ndarray, mask: np.ndarray, lat: np.ndarray):
    if truth.ndim != 3 or prediction.shape != truth.shape:
        raise ValueError(f"expected truth and prediction [T, H, W], got {truth.shape}, "
                         f"{prediction.shape}")  # fmt: skip
    if mask.shape not in (truth.shape, truth.shape[1:]):
        raise ValueError(f"expected a mask [H, W] or [T, H, W], got {mask.shape}")
    if lat.shape != truth.shape[1:2]:
        raise ValueError(f"expected {truth.shape[1]} latitudes, got {lat.shape}")
    missing = np.broadcast_to(np.asarray(mask) == 0, truth.shape)
    if not missing.any():
        raise ValueError("the mask has no missing cell to score")
    return missing, np.broadcast_to(area_weights(lat, truth.shape[2]), truth.shape)


def area_weights(lat_deg: np.ndarray, width: int) -> np.ndarray:
    """cos(latitude) per cell, [H, width] float64: the relative area of cells of equal angular
    size (the weighting of Kadow et al. 2020 and of the HadCRUT global means)."""
    weights_h = np.cos(np.deg2rad(np.asarray(lat_deg, dtype=np.float64)))
    return np.repeat(weights_h[:, None], width, axis=1)


def global_means(field: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Area-weighted mean over all cells of each time step, [T] float64, for a field [T, H, W]."""
    weights = area_weights(lat, field.shape[2])
    return np.einsum("thw,hw->t", np.asarray(field, np.float64), weights) / weights.sum()


def composite(truth: np.ndarray, prediction: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The infilled field: truth on observed cells (mask 1), prediction on missing ones."""
    return np.where(np.asarray(mask) == 0, prediction, truth)


def _weighted_correlation(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    a = a - np.sum(w * a) / np.sum(w)
    b = b - np.sum(w * b) / np.sum(w)
    denominator = np.sqrt(np.sum(w * a * a) * np.sum(w * b * b))
    return float(np.sum(w * a * b) / denominator) if denominator > 0 else float("nan")


def score(
    truth: np.ndarray, prediction: np.ndarray, mask: np.ndarray, lat: np.ndarray
) -> dict[str, float]:
    """All SCORES (see the module docstring) of one prediction.

    Args:
      truth, prediction: [T, H, W] fields (any float dtype; computed in float64).
      mask: [H, W] or [T, H, W], 1 = observed, 0 = missing (scored).
      lat: [H] cell-centre latitudes in degrees.

    Returns:
      {score name: value}; correlations are NaN where a series or pattern is constant.
    """
    truth = np.asarray(truth, np.float64)
    prediction = np.asarray(prediction, np.float64)
    missing, weights = _check(truth, prediction, mask, lat)
    error = (prediction - truth)[missing]
    w = weights[missing]
    patterns = [
        _weighted_correlation(prediction[t][hole], truth[t][hole], weights[t][hole])
        for t, hole in enumerate(missing)
        if hole.any()
    ]
    truth_series = global_means(truth, lat)
    infilled_series = global_means(composite(truth, prediction, mask), lat)
    series_error = infilled_series - truth_series
    with np.errstate(invalid="ignore", divide="ignore"):
        series_correlation = (
            float(np.corrcoef(infilled_series, truth_series)[0, 1])
            if truth.shape[0] > 1 and infilled_series.std() > 0 and truth_series.std() > 0
            else float("nan")
        )
    return {
        "rmse": float(np.sqrt(np.sum(w * error**2) / np.sum(w))),
        "bias": float(np.sum(w * error) / np.sum(w)),
        "pattern_correlation": float(np.mean(patterns)),
        "global_mean_rmse": float(np.sqrt(np.mean(series_error**2))),
        "global_mean_correlation": series_correlation,
    }
