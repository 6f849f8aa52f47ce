"""data/grid_train.py: anomaly fields under coverage masks, a pure function of (config, seed,
position), and the card an export of a gridded run carries.

Expected values: numpy on the arrays written to the files (anomaly = field - its time mean per
cell), and the stream's definition in the module docstring (epoch permutation, mask draw).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray

from pconv_jax.config import DataConfig
from pconv_jax.data import grid_train, pipeline
from pconv_jax.errors import UserError

LAT = np.linspace(-80.0, 80.0, 8)
LON = np.arange(16) * 22.5 + 5.0  # off the coarse grid's midpoints: no nearest-cell ties


def write_member(path, seed: int, steps: int = 6, var: str = "TREFHT"):
    values = 280 + np.random.default_rng(seed).normal(size=(steps, len(LAT), len(LON)))
    coords = {"time": np.arange(steps, dtype=np.float64), "lat": LAT, "lon": LON}
    data = xarray.DataArray(values.astype(np.float32), coords, ("time", "lat", "lon"))
    data.attrs["units"] = "K"
    xarray.Dataset({var: data}).to_netcdf(path)
    return values


def write_coverage(path, patterns):
    """NaN where missing, on a coarser 4 x 8 grid (nearest-cell regridding doubles each cell)."""
    lat, lon = np.linspace(-67.5, 67.5, 4), np.arange(8) * 45.0
    values = np.where(np.asarray(patterns, bool), 1.0, np.nan)
    coords = {"time": np.arange(len(patterns), dtype=np.float64), "lat": lat, "lon": lon}
    xarray.Dataset({"tas": (("time", "lat", "lon"), values)}, coords).to_netcdf(path)


@pytest.fixture
def files(tmp_path):
    members = [tmp_path / f"m{i}.nc" for i in range(2)]
    truth = [write_member(path, seed) for seed, path in enumerate(members)]
    coverage = tmp_path / "coverage.nc"
    first = np.zeros((4, 8)) + np.arange(8)[None] % 2  # every other coarse column observed
    write_coverage(coverage, [first, first, 1 - first])  # the second repeats the first
    cfg = DataConfig(
        source="grids",
        grid_files=tuple(map(str, members)),
        grid_var="TREFHT",
        grid_coverage_files=(str(coverage),),
        grid_station_patterns=4,
        grid_station_fraction=(0.2, 0.6),
        num_workers=0,
    )
    return cfg, truth


def test_fields_are_anomalies_of_each_file_against_its_own_time_mean(files):
    cfg, truth = files
    fields = grid_train.read_anomalies(cfg.grid_files, cfg.grid_var)
    expected = np.concatenate([t - t.mean(axis=0) for t in truth])[..., None]
    np.testing.assert_allclose(fields.values, expected, atol=1e-4)
    np.testing.assert_array_equal(fields.lat, LAT)


def test_identical_coverage_patterns_are_kept_once_with_metric_safe_names(files):
    cfg, _ = files
    patterns = grid_train.coverage_patterns(cfg, LAT, LON)
    assert len(patterns) == 2  # time steps 0 and 1 are the same pattern
    assert all(name.replace("_", "").replace("-", "").isalnum() for name in patterns)
    first = next(iter(patterns.values()))
    # nearest cell along the row (coarse centres every 45 degrees, wrapping): column
    # round(lon / 45) mod 8; odd coarse columns are observed
    coarse_column = np.round(LON / 45.0).astype(int) % 8
    np.testing.assert_array_equal(first[0], coarse_column % 2)


def test_generated_coverage_specs_are_the_evaluations_patterns(files):
    """`stations:0.5` in data.grid_coverage_files is the network `pconv evaluate --coverage
    stations:0.5 --seed S` scores (masks.stations with seed data.grid_coverage_seed = S)."""
    from pconv_jax.masks import stations

    cfg, _ = files
    generated = dataclasses.replace(
        cfg, grid_coverage_files=("stations:0.5",), grid_coverage_seed=4
    )
    patterns = grid_train.coverage_patterns(generated, LAT, LON)
    assert list(patterns) == ["stations_0.5"]
    expected = stations.station_coverage(LAT, LON, 0.5, seed=4)
    np.testing.assert_array_equal(patterns["stations_0.5"], expected)
    with pytest.raises(UserError, match="expected stations:FRACTION"):
        grid_train.coverage_patterns(
            dataclasses.replace(cfg, grid_coverage_files=("stations:many",)), LAT, LON
        )


def test_the_stream_is_a_pure_function_of_seed_and_position(files):
    cfg, _ = files
    maker = grid_train.make_example_maker(cfg, seed=3, local_batch=2, global_batch=4, first_row=2)
    again = grid_train.make_example_maker(cfg, seed=3, local_batch=4, global_batch=4, first_row=0)
    # local index 5 of the first (rows 2-3 of each step) is step 2, row 3: position 11
    np.testing.assert_array_equal(maker(5)["image"], again.make(11)["image"])
    np.testing.assert_array_equal(maker(5)["mask"], again.make(11)["mask"])
    # one epoch (12 fields) visits every field once
    seen = {again.make(p)["image"].tobytes() for p in range(12)}
    assert len(seen) == 12
    batch = grid_train.stack_examples([again.make(p) for p in range(3)])
    assert batch["image"].shape == (3, 8, 16, 1) and batch["mask"].shape == (3, 8, 16, 1)


def test_station_share_one_draws_station_patterns_only(files):
    cfg, _ = files
    maker = grid_train.make_example_maker(
        dataclasses.replace(cfg, grid_station_share=1.0), 0, 1, 1, 0
    )
    stations = {p.tobytes() for p in maker.stations}
    assert all(maker.make(p)["mask"][..., 0].tobytes() in stations for p in range(20))


def test_mixed_fields_are_unit_circle_combinations_of_two_training_fields(files):
    """With grid_mix_share=1 every sample is cos(t) a + sin(t) b, a the field the unmixed
    stream gives at that position and b a training field: solved back by least squares over
    the 12 fields, a and at most one other field have non-zero coefficients whose squares sum to
    1 (b = a: one coefficient cos t + sin t, at most sqrt(2) in size). The masks are the
    unmixed stream's."""
    cfg, _ = files
    plain = grid_train.make_example_maker(cfg, 1, 1, 1, 0)
    mixed = grid_train.make_example_maker(dataclasses.replace(cfg, grid_mix_share=1.0), 1, 1, 1, 0)
    basis = plain.fields.reshape(len(plain.fields), -1).T.astype(np.float64)  # [cells, 12]
    pairs = 0
    for position in range(30):
        sample, unmixed = mixed.make(position), plain.make(position)
        np.testing.assert_array_equal(sample["mask"], unmixed["mask"])
        assert sample["image"].dtype == np.float32
        (a,) = np.flatnonzero((basis == unmixed["image"].reshape(-1, 1)).all(axis=0))
        coef, *_ = np.linalg.lstsq(basis, sample["image"].reshape(-1), rcond=None)
        used = np.flatnonzero(np.abs(coef) > 1e-4)
        assert a in used and len(used) <= 2
        if len(used) == 2:
            pairs += 1
            assert np.sum(coef[used] ** 2) == pytest.approx(1.0, abs=1e-4)
        else:
            assert abs(coef[a]) <= np.sqrt(2) + 1e-4
    assert pairs >= 20  # b = a has probability 1/12 per sample
    np.testing.assert_array_equal(mixed.make(7)["image"], mixed.make(7)["image"])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(grid_files=()), "data.grid_files"),
        (dict(grid_station_share=1.5), "grid_station_share"),
        (dict(grid_mix_share=-0.1), "grid_mix_share"),
        (dict(grid_station_fraction=(0.6, 0.2)), "grid_station_fraction"),
        (dict(grid_coverage_files=(), grid_station_share=0.5), "grid_coverage_files"),
        (dict(task="superres"), "data.task must be inpaint"),
    ],
)
def test_bad_grid_settings_are_one_line_errors(files, change, message):
    cfg, _ = files
    with pytest.raises(UserError, match=message):
        pipeline.validate(dataclasses.replace(cfg, **change))


def test_incomplete_fields_are_refused(tmp_path):
    path = tmp_path / "gappy.nc"
    values = write_member(path, 0)
    values[0, 0, 0] = np.nan
    xarray.Dataset(
        {"TREFHT": (("time", "lat", "lon"), values)},
        {"time": np.arange(6.0), "lat": LAT, "lon": LON},
    ).to_netcdf(tmp_path / "gappy2.nc")
    with pytest.raises(UserError, match="missing values"):
        grid_train.read_anomalies([str(tmp_path / "gappy2.nc")], "TREFHT")


def test_the_export_card_names_the_variable_grid_units_and_anomaly_spread(files):
    cfg, truth = files
    card = grid_train.grid_card(cfg)
    assert card["variables"] == ["TREFHT"] and card["units"] == "K"
    np.testing.assert_allclose(card["lat"], LAT)
    anomalies = np.concatenate([t - t.mean(axis=0) for t in truth])
    assert card["anomaly_std"] == pytest.approx(float(np.std(anomalies)), rel=1e-4)
