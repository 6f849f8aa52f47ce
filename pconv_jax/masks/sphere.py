"""Geometry of latitude-longitude grids on the unit sphere: cell centres as 3-D unit vectors.

Distances between cells are taken on the sphere, so longitude wraps (0 and 359 degrees are
neighbours) and the poles are single points. A chord |u - v| between unit vectors is monotone in
the great-circle angle theta (chord = 2 sin(theta / 2)), so a k-d tree on unit vectors finds
the nearest cell on the sphere exactly.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0  # mean Earth radius (IUGG)


def unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Points on the unit sphere, [..., 3] float64 (x, y, z), for equal-shape lat/lon arrays in
    degrees (lat -90..90, any longitude)."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def grid_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Cell centres of the grid lat [H] x lon [W] (degrees) as unit vectors [H * W, 3], row-major
    (the order of `field.reshape(-1)` for a field [H, W])."""
    lat_hw, lon_hw = np.meshgrid(lat_deg, lon_deg, indexing="ij")
    return unit_vectors(lat_hw, lon_hw).reshape(-1, 3)


def chord_for_distance(distance_km: float) -> float:
    """The straight-line distance between unit vectors whose great-circle distance on the Earth
    is `distance_km` (for k-d tree radius queries)."""
    return float(2.0 * np.sin(distance_km / EARTH_RADIUS_KM / 2.0))
