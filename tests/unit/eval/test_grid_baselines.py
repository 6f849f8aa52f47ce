"""Classical infilling of gridded anomalies: each baseline is exact where it should be."""

import numpy as np
import pytest

from pconv_jax.eval import grid_baselines
from pconv_jax.masks import sphere

LAT = np.linspace(-85.0, 85.0, 18)  # 10-degree cells
LON = np.arange(0.0, 360.0, 10.0)
RNG = np.random.default_rng(0)
MASK = (RNG.random((len(LAT), len(LON))) < 0.5).astype(np.float32)
CHECKERBOARD = (np.add.outer(np.arange(len(LAT)), np.arange(len(LON))) % 2).astype(np.float32)


def _linear_field(gradient, offset=0.0, steps=2):
    """f(x) = gradient . x + offset at the cell centres, [steps, H, W] (step t scaled by t + 1)."""
    values = sphere.grid_vectors(LAT, LON) @ np.asarray(gradient) + offset
    return np.stack([(t + 1) * values.reshape(len(LAT), len(LON)) for t in range(steps)])


@pytest.mark.parametrize("method", sorted(grid_baselines.BASELINES))
def test_observed_cells_are_unchanged(method):
    field = _linear_field([0.3, -0.2, 0.8]) + 0.1 * RNG.normal(size=(2, len(LAT), len(LON)))
    filled = grid_baselines.BASELINES[method](field, MASK, LAT, LON)
    assert filled.shape == field.shape and np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[:, MASK == 1], field[:, MASK == 1])


@pytest.mark.parametrize("method", ["zonal", "nearest", "linear", "kriging"])
def test_a_constant_field_stays_constant(method):
    field = np.full((2, len(LAT), len(LON)), 2.5)
    filled = grid_baselines.BASELINES[method](np.where(MASK == 1, field, -99.0), MASK, LAT, LON)
    np.testing.assert_allclose(filled, field, rtol=1e-9)


def test_climatology_fills_zero():
    field = RNG.normal(size=(1, len(LAT), len(LON)))
    filled = grid_baselines.climatology(field, MASK, LAT, LON)
    assert (filled[:, MASK == 0] == 0).all()


def test_zonal_mean_of_each_row_and_zero_for_an_empty_row():
    lat, lon = np.array([-30.0, 30.0]), np.array([0.0, 120.0, 240.0])
    field = np.array([[[1.0, 3.0, 100.0], [7.0, 8.0, 9.0]]])
    mask = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    filled = grid_baselines.zonal(field, mask, lat, lon)
    np.testing.assert_array_equal(filled, [[[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]]])


def test_nearest_picks_the_true_nearest_across_the_dateline():
    lat, lon = np.array([0.0]), np.arange(0.0, 360.0, 10.0)
    field = np.zeros((1, 1, len(lon)))
    mask = np.zeros((1, len(lon)))
    for where, value in ((350.0, 5.0), (30.0, -3.0)):
        mask[0, lon == where] = 1
        field[0, 0, lon == where] = value
    filled = grid_baselines.nearest(field, mask, lat, lon)[0, 0]
    # 0 and 340 E are 10 deg from 350 E (across the dateline for 0 E), 30 and 40 deg from 30 E.
    assert filled[lon == 0.0] == 5.0 and filled[lon == 340.0] == 5.0
    assert filled[lon == 50.0] == -3.0 and filled[lon == 20.0] == -3.0
    # (10 E is 20 deg from both: a tie, which the contract leaves open.)


def test_linear_reproduces_a_field_linear_in_3d_up_to_the_facet_sag():
    gradient = np.array([1.0, 2.0, -1.0])  # |gradient| = sqrt(6)
    field = _linear_field(gradient, offset=0.5)
    filled = grid_baselines.linear(field, CHECKERBOARD, LAT, LON)
    # On the checkerboard every point of the sphere lies within 10 deg (a latitude step) plus
    # half a cell diagonal (<= 7.1 deg) of an observed cell, so no empty Delaunay circumcircle is
    # wider than 17.1 deg; a facet then lies at least cos(17.1 deg) from the origin and the
    # barycentric value misses f by at most |gradient| (1 - cos 17.1 deg) per unit of scale.
    bound = np.sqrt(6.0) * (1 - np.cos(np.deg2rad(17.1)))
    error = np.abs(filled - field).max(axis=(1, 2))
    assert (error <= bound * np.array([1, 2])).all(), (error, bound)
    # The bound is tight enough to fail a method that is not linear: the nearest cell misses.
    nearest_error = np.abs(grid_baselines.nearest(field, CHECKERBOARD, LAT, LON) - field).max()
    assert nearest_error > 2 * bound


def test_kriging_beats_the_climatology_on_a_smooth_field():
    field = _linear_field([0.3, -0.2, 0.8])
    kriged = grid_baselines.kriging(field, MASK, LAT, LON)
    error = lambda fill: np.sqrt(np.mean((fill - field)[:, MASK == 0] ** 2))
    assert error(kriged) < error(grid_baselines.climatology(field, MASK, LAT, LON)) / 10


def test_linear_falls_back_to_nearest_outside_every_facet():
    # Observed cells in the northern hemisphere only: the origin lies outside their hull.
    mask = np.zeros((len(LAT), len(LON)), np.float32)
    mask[LAT > 20] = 1
    field = RNG.normal(size=(1, len(LAT), len(LON)))
    filled = grid_baselines.linear(field, mask, LAT, LON)
    assert np.isfinite(filled).all()
    low, high = field[:, mask == 1].min(), field[:, mask == 1].max()
    assert (filled >= low - 1e-9).all() and (filled <= high + 1e-9).all()  # convex weights
