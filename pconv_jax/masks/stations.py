"""Generated coverage patterns on the sphere, seeded, with a target observed fraction.

`station_coverage` imitates a station network: stations at points drawn uniformly over the
sphere's area each observe every cell whose centre lies within `radius_km` on the sphere (a
station's 5-degree box in HadCRUT4 spans about 550 km), and stations are added one at a time until
the fraction of observed cells reaches the target. The gaps are therefore large, contiguous and
spread over the globe, the hard case for interpolation. `random_cells` observes a uniformly drawn
set of cells, scattered single-cell gaps, the easy case. Masks are float32 [H, W], 1 = observed;
the fraction counts cells (as HadCRUT4's "23 % observed" does on its equal-angle grid).
"""

from __future__ import annotations

import numpy as np
from scipy import spatial

from pconv_jax.errors import UserError
from pconv_jax.masks import sphere

STATION_RADIUS_KM = 600.0


def _check_fraction(observed_fraction: float) -> None:
    if not 0.0 < observed_fraction < 1.0:
        raise UserError(f"observed fraction must lie in (0, 1), got {observed_fraction}")


def station_coverage(
    lat: np.ndarray,
    lon: np.ndarray,
    observed_fraction: float,
    seed: int = 0,
    radius_km: float = STATION_RADIUS_KM,
) -> np.ndarray:
    """Coverage grown from random station points until `observed_fraction` of cells is observed.

    Args:
      lat, lon: cell centres [H], [W] in degrees.
      observed_fraction: target fraction of observed cells, in (0, 1); the result reaches it
        (it overshoots by at most the cells of the last station).
      seed: the result is a pure function of (grid, fraction, seed, radius).
      radius_km: a station observes the cells within this great-circle distance.

    Returns:
      float32 [H, W], 1 = observed.
    """
    _check_fraction(observed_fraction)
    tree = spatial.cKDTree(sphere.grid_vectors(lat, lon))
    chord = sphere.chord_for_distance(radius_km)
    rng = np.random.default_rng(seed)
    observed = np.zeros(len(lat) * len(lon), dtype=bool)
    target = int(np.ceil(observed_fraction * observed.size))
    while observed.sum() < target:
        # Uniform over the sphere's area: sin(latitude) is uniform on [-1, 1].
        station_lat = np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, size=1)))
        station_lon = rng.uniform(0.0, 360.0, size=1)
        station = sphere.unit_vectors(station_lat, station_lon)[0]
        observed[tree.query_ball_point(station, chord)] = True
        # A radius smaller than the cell spacing can miss every centre: take the nearest cell.
        observed[tree.query(station)[1]] = True
    return observed.reshape(len(lat), len(lon)).astype(np.float32)


def random_cells(
    lat: np.ndarray, lon: np.ndarray, observed_fraction: float, seed: int = 0
) -> np.ndarray:
    """round(observed_fraction * H * W) cells drawn uniformly without replacement are observed.

    Returns:
      float32 [H, W], 1 = observed; a pure function of (grid shape, fraction, seed).
    """
    _check_fraction(observed_fraction)
    rng = np.random.default_rng(seed)
    observed = np.zeros(len(lat) * len(lon), dtype=np.float32)
    count = int(round(observed_fraction * observed.size))
    observed[rng.choice(observed.size, size=count, replace=False)] = 1.0
    return observed.reshape(len(lat), len(lon))
