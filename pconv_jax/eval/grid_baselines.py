"""Classical infilling of gridded anomalies, the baselines of Kadow et al. 2020 and HadCRUT.

Every method has the signature `fill(anomaly_thw, mask_hw, lat, lon) -> anomaly_thw`: anomaly
[T, H, W] (values on missing cells are ignored), mask [H, W] (1 = observed, 0 = missing, one
coverage for all T steps), lat [H] and lon [W] cell centres in degrees. The result keeps every
observed cell bit-identical and fills the missing ones from the observed cells of the same step:

- climatology: anomaly 0 (the field's climatology itself).
- zonal: the mean of the observed cells of the same latitude row (equal areas within a row);
  0 in a row with none.
- nearest: the nearest observed cell on the sphere (scipy cKDTree on unit vectors).
- linear: barycentric interpolation on the spherical Delaunay triangulation (`grid_linear`).
- kriging: simple kriging of the departures from each step's area-weighted mean of the observed
  cells (so a constant field stays constant, as ordinary kriging guarantees), with
  scikit-learn's GaussianProcessRegressor on unit vectors: a Matern(nu=1.5) covariance in
  chord distance plus a nugget (WhiteKernel). Hyperparameters are fitted once per coverage by
  maximum marginal likelihood over all T steps jointly (multi-output), on at most
  KRIGING_FIT_CELLS observed cells drawn at random (seeded); the prediction then conditions on
  at most KRIGING_CELLS observed cells, the ones nearest to the gaps, so one Cholesky factor
  serves all T steps. Chosen over PyKrige's OrdinaryKriging (geographic coordinates), which
  fits a variogram and solves its system again for every time step.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import spatial
from sklearn import gaussian_process
from sklearn.gaussian_process import kernels

from pconv_jax.eval import grid_linear
from pconv_jax.masks import sphere
from pconv_jax.metrics import grid_scores

KRIGING_FIT_CELLS = 800  # observed cells for the hyperparameter fit (O(n^3) per optimiser step)
KRIGING_CELLS = 4000  # observed cells the prediction conditions on (one O(n^3) factorisation)
KRIGING_SEED = 0


def _split(anomaly_thw: np.ndarray, mask_hw: np.ndarray):
    if anomaly_thw.ndim != 3 or mask_hw.shape != anomaly_thw.shape[1:]:
        raise ValueError(f"expected anomaly [T, H, W] and mask [H, W], got {anomaly_thw.shape}, "
                         f"{mask_hw.shape}")  # fmt: skip
    observed = mask_hw.reshape(-1) != 0
    if not observed.any():
        raise ValueError("the mask has no observed cell to fill from")
    flat_tn = anomaly_thw.reshape(anomaly_thw.shape[0], -1)
    return observed, flat_tn


def _assemble(anomaly_thw, observed, filled_tm) -> np.ndarray:
    """anomaly with its missing cells (row-major order) replaced by filled_tm [T, M]."""
    result = anomaly_thw.reshape(anomaly_thw.shape[0], -1).copy()
    result[:, ~observed] = filled_tm
    return result.reshape(anomaly_thw.shape)


def climatology(anomaly_thw, mask_hw, lat, lon) -> np.ndarray:
    """Missing cells get anomaly 0."""
    observed, _ = _split(anomaly_thw, mask_hw)
    return _assemble(anomaly_thw, observed, 0.0)


def zonal(anomaly_thw, mask_hw, lat, lon) -> np.ndarray:
    """Missing cells get the mean of the observed cells of their latitude row (0 if none)."""
    _split(anomaly_thw, mask_hw)
    observed_hw = mask_hw != 0
    counts_h = observed_hw.sum(axis=1)
    sums_th = np.where(observed_hw, anomaly_thw, 0).sum(axis=2)
    means_th = np.divide(sums_th, counts_h, out=np.zeros_like(sums_th), where=counts_h > 0)
    return np.where(observed_hw, anomaly_thw, means_th[:, :, None]).astype(anomaly_thw.dtype)


def nearest(anomaly_thw, mask_hw, lat, lon) -> np.ndarray:
    """Missing cells get the value of the observed cell nearest on the sphere."""
    observed, flat_tn = _split(anomaly_thw, mask_hw)
    points = sphere.grid_vectors(lat, lon)
    _, index = spatial.cKDTree(points[observed]).query(points[~observed])
    return _assemble(anomaly_thw, observed, flat_tn[:, observed][:, index])


def linear(anomaly_thw, mask_hw, lat, lon) -> np.ndarray:
    """Missing cells get the barycentric interpolation on the spherical Delaunay triangulation."""
    observed, flat_tn = _split(anomaly_thw, mask_hw)
    points = sphere.grid_vectors(lat, lon)
    indices, weights = grid_linear.interpolation_weights(points[observed], points[~observed])
    values_tm3 = flat_tn[:, observed][:, indices]
    return _assemble(anomaly_thw, observed, np.einsum("tmk,mk->tm", values_tm3, weights))


def kriging_kernel() -> kernels.Kernel:
    """The prior covariance before fitting: variance x Matern(nu=1.5, length in chord units of
    the unit sphere; 0.1 is about 640 km) + nugget (variance in the field's units squared)."""
    return kernels.ConstantKernel(1.0, (1e-4, 1e2)) * kernels.Matern(
        length_scale=0.1, length_scale_bounds=(1e-3, 2.0), nu=1.5
    ) + kernels.WhiteKernel(0.01, (1e-6, 1e1))


def _nearest_to_gaps(points, observed, limit: int) -> np.ndarray:
    """Indices (into the observed cells) of at most `limit` observed cells closest to a gap."""
    observed_points = points[observed]
    if len(observed_points) <= limit:
        return np.arange(len(observed_points))
    distance, _ = spatial.cKDTree(points[~observed]).query(observed_points)
    return np.sort(np.argsort(distance, kind="stable")[:limit])


def kriging(anomaly_thw, mask_hw, lat, lon) -> np.ndarray:
    """Missing cells get the Gaussian-process posterior mean (see the module docstring)."""
    observed, flat_tn = _split(anomaly_thw, mask_hw)
    points = sphere.grid_vectors(lat, lon)
    weights_n = grid_scores.area_weights(lat, len(lon)).reshape(-1)[observed]
    values_nt = flat_tn[:, observed].T.astype(np.float64)
    mean_t = weights_n @ values_nt / weights_n.sum()
    values_nt = values_nt - mean_t
    rng = np.random.default_rng(KRIGING_SEED)
    count = min(KRIGING_FIT_CELLS, len(values_nt))
    fit_cells = np.sort(rng.choice(len(values_nt), size=count, replace=False))
    fitted = gaussian_process.GaussianProcessRegressor(kriging_kernel(), random_state=KRIGING_SEED)
    fitted.fit(points[observed][fit_cells], values_nt[fit_cells])
    logging.getLogger(__name__).info("kriging: fitted covariance %s", fitted.kernel_)
    conditioning = _nearest_to_gaps(points, observed, KRIGING_CELLS)
    predictor = gaussian_process.GaussianProcessRegressor(fitted.kernel_, optimizer=None)
    predictor.fit(points[observed][conditioning], values_nt[conditioning])
    filled_mt = predictor.predict(points[~observed]).reshape(int((~observed).sum()), -1)
    filled_tm = filled_mt.T + mean_t[:, None]
    return _assemble(anomaly_thw, observed, filled_tm.astype(anomaly_thw.dtype))


BASELINES = {
    "climatology": climatology,
    "zonal": zonal,
    "nearest": nearest,
    "linear": linear,
    "kriging": kriging,
}
