"""Coverage masks: nearest-cell regridding on the sphere, coverage files, generated patterns."""

import numpy as np
import pytest
import xarray

from pconv_jax.errors import UserError
from pconv_jax.masks import coverage, sphere, stations

LAT = np.linspace(-80.0, 80.0, 9)
LON = np.arange(0.0, 360.0, 20.0)


def test_regrid_nearest_wraps_longitude_and_keeps_the_pole_region():
    # Source: 3 latitudes x 4 longitudes (0, 90, 180, 270), value = column index.
    src_lat = np.array([-60.0, 0.0, 60.0])
    src_lon = np.array([0.0, 90.0, 180.0, 270.0])
    src = np.tile(np.arange(4), (3, 1))
    # Target 350 E is 10 deg from source 0 E across the dateline, 80 deg from 270 E.
    result = coverage.regrid_nearest(src, src_lat, src_lon, np.array([0.0]), np.array([350.0]))
    assert result.tolist() == [[0]]
    # Near a pole the nearest cell is not the nearest longitude: the expected one is the source
    # of largest dot product with the target (a brute-force search, independent of the k-d tree).
    target = sphere.unit_vectors(89.0, 130.0)
    sources = sphere.grid_vectors(src_lat, src_lon)
    expected = int(np.argmax(sources @ target))
    got = coverage.regrid_nearest(np.arange(12).reshape(3, 4), src_lat, src_lon, [89.0], [130.0])
    assert got.tolist() == [[expected]]


def _write(path, values, lat, lon):
    dims = ("time", "lat", "lon")
    data = xarray.Dataset({"tas": (dims, values)}, coords={"lat": lat, "lon": lon})
    data.to_netcdf(path)


def test_read_coverage_from_nan_pattern_and_from_01_mask(tmp_path):
    lat, lon = np.array([-45.0, 45.0]), np.array([90.0, 270.0])
    field = np.array([[[1.5, np.nan], [np.nan, -0.5]], [[np.nan, np.nan], [2.0, np.nan]]])
    _write(tmp_path / "nan.nc", field, lat, lon)
    patterns = coverage.read_coverage(tmp_path / "nan.nc", lat, lon)
    assert list(patterns) == ["nan@0", "nan@1"]
    np.testing.assert_array_equal(patterns["nan@0"], [[1, 0], [0, 1]])
    np.testing.assert_array_equal(patterns["nan@1"], [[0, 0], [1, 0]])
    _write(tmp_path / "mask.nc", np.array([[[1.0, 0.0], [0.0, 0.0]]]), lat, lon)
    assert coverage.read_coverage(tmp_path / "mask.nc", lat, lon)["mask"].tolist() == [
        [1, 0],
        [0, 0],
    ]
    _write(tmp_path / "bad.nc", np.array([[[1.0, 0.5], [0.0, 0.0]]]), lat, lon)
    with pytest.raises(UserError, match="0/1 or NaN"):
        coverage.read_coverage(tmp_path / "bad.nc", lat, lon)


def test_station_coverage_reaches_its_fraction_with_disks_of_the_radius():
    mask = stations.station_coverage(LAT, LON, 0.4, seed=3, radius_km=2000.0)
    assert mask.mean() >= 0.4
    assert np.array_equal(mask, stations.station_coverage(LAT, LON, 0.4, seed=3, radius_km=2000.0))
    assert not np.array_equal(mask, stations.station_coverage(LAT, LON, 0.4, seed=4))
    # A disk of radius 2000 km holds several cells of this 20-degree grid, so every observed cell
    # has another observed one within the disk's diameter: clusters, not scattered cells.
    points = sphere.grid_vectors(LAT, LON)[mask.reshape(-1) == 1]
    distance_km = np.arccos(np.clip(points @ points.T, -1, 1)) * sphere.EARTH_RADIUS_KM
    np.fill_diagonal(distance_km, np.inf)
    assert (distance_km.min(axis=1) <= 2 * 2000.0).all()


def test_random_cells_observes_the_rounded_count():
    mask = stations.random_cells(LAT, LON, 0.25, seed=1)
    assert mask.sum() == round(0.25 * mask.size)
    with pytest.raises(UserError, match="fraction"):
        stations.random_cells(LAT, LON, 1.0)
