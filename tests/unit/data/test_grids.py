"""pconv_jax.data.grids: NetCDF/Zarr variables as [N, H, W, C] samples, masks, statistics."""

from __future__ import annotations

import numpy as np
import pytest
import xarray

from pconv_jax.data import grid_masks, grids
from pconv_jax.errors import UserError


def _dataset(values_TxHxW: np.ndarray, name: str = "tas", **extra) -> xarray.Dataset:
    t, h, w = values_TxHxW.shape
    coords = {
        "time": ("time", np.arange(t, dtype=np.float64), {"units": "days since 1850-01-01"}),
        "lat": ("lat", np.linspace(-60, 60, h, dtype=np.float32)),
        "lon": ("lon", np.arange(w, dtype=np.float32) * 5),
    }
    return xarray.Dataset({name: (("time", "lat", "lon"), values_TxHxW), **extra}, coords=coords)


def test_values_follow_the_grid_order_whatever_the_stored_dimension_order(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (time, lat, lon)
    dataset = _dataset(values)
    dataset["pr"] = dataset["tas"].transpose("lat", "time", "lon") * 10
    path = tmp_path / "two.nc"
    dataset.to_netcdf(path)
    opened = grids.open_grid(path)
    layout = grids.select_grid(opened, ["tas"])
    assert (layout.grid_dims, layout.num_samples, layout.grid_shape) == (("lat", "lon"), 2, (3, 4))
    read = grids.read_values(opened, layout, 1, 2)
    # hand: sample 1, channel 0 is values[1] as stored (lat, lon)
    np.testing.assert_array_equal(read[..., 0], values[1:2])
    layout_pr = grids.select_grid(opened, ["pr"])
    assert layout_pr.dims == ("lat", "time", "lon") and layout_pr.grid_dims == ("lat", "lon")
    np.testing.assert_array_equal(grids.read_values(opened, layout_pr, 0, 2)[..., 0], values * 10)


def test_fill_and_missing_values_become_gaps_and_packed_values_are_decoded(tmp_path):
    values = np.array([[[1.5, -2.0], [0.25, 7.0]]], np.float64)
    dataset = _dataset(values)
    dataset["tas"].encoding = {"dtype": "int16", "scale_factor": 0.25, "_FillValue": -999}
    dataset["tas"][0, 0, 1] = np.nan  # written as the fill value -999
    path = tmp_path / "packed.nc"
    dataset.to_netcdf(path)
    opened = grids.open_grid(path)
    read = grids.read_values(opened, grids.select_grid(opened), 0, 1)[0, ..., 0]
    np.testing.assert_array_equal(read, [[1.5, np.nan], [0.25, 7.0]])  # 1.5 = 6 * 0.25, exact
    np.testing.assert_array_equal(grids.observed_mask(read), [[1, 0], [1, 1]])
    # missing_value (no _FillValue): the netCDF4 library's raw value -> NaN by xarray
    raw = _dataset(np.array([[[3.0, 1e20]]], np.float32))
    raw["tas"].attrs["missing_value"] = np.float32(1e20)
    raw.to_netcdf(tmp_path / "missing.nc")
    again = grids.open_grid(tmp_path / "missing.nc")
    np.testing.assert_array_equal(
        grids.read_values(again, grids.select_grid(again), 0, 1).ravel(), [3.0, np.nan]
    )


def test_bad_files_and_names_are_one_line_user_errors(tmp_path):
    text = tmp_path / "notes.nc"
    text.write_text("not a netcdf file\n")
    with pytest.raises(UserError, match="not a NetCDF or Zarr file"):
        grids.open_grid(text)
    with pytest.raises(FileNotFoundError):
        grids.open_grid(tmp_path / "absent.nc")
    dataset = _dataset(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(UserError, match=r"no variable 'pr' in x.nc; it holds: tas"):
        grids.select_grid(dataset, ["pr"], "x.nc")
    dataset["orog"] = (("lat",), np.zeros(2, np.float32))
    with pytest.raises(UserError, match="exactly two"):
        grids.select_grid(dataset, ["orog"])
    assert grids.select_grid(dataset).names == ("tas",)  # the one gridded variable
    dataset["pr"] = dataset["tas"] + 1
    with pytest.raises(UserError, match=r"2 gridded variables \(tas, pr\): name the ones"):
        grids.select_grid(dataset)
    dataset["wide"] = (("time", "lat", "lon2"), np.zeros((1, 2, 3), np.float32))
    with pytest.raises(UserError, match="'tas' .* and 'wide' .* differ in dimensions"):
        grids.select_grid(dataset, ["tas", "wide"])


def test_a_zarr_store_reads_like_netcdf(tmp_path):
    values = np.random.default_rng(0).normal(size=(3, 2, 5)).astype(np.float32)
    _dataset(values).to_zarr(tmp_path / "g.zarr")
    opened = grids.open_grid(tmp_path / "g.zarr")
    np.testing.assert_array_equal(
        grids.read_values(opened, grids.select_grid(opened), 0, 3)[..., 0], values
    )


def test_channel_statistics_by_hand():
    values = np.array([1.0, 2.0, np.nan, 3.0], np.float32).reshape(1, 2, 2, 1)
    mean, std = grids.channel_statistics(values)
    # hand: mean (1 + 2 + 3) / 3 = 2; variance ((-1)^2 + 0 + 1^2) / 3 = 2/3 (ddof 0, as np.nanstd)
    np.testing.assert_allclose(mean, [2.0], rtol=1e-7)
    np.testing.assert_allclose(std, [np.sqrt(2 / 3)], rtol=1e-6)
    with pytest.raises(UserError, match="channel 0: no observed value"):
        grids.channel_statistics(np.full((2, 2, 2, 1), np.nan, np.float32))


def test_streamed_statistics_equal_the_whole_array_ones(tmp_path):
    rng = np.random.default_rng(1)
    tas = (rng.normal(size=(7, 4, 6)) * 3 + 280).astype(np.float32)
    tas[rng.random(tas.shape) < 0.4] = np.nan
    tas[2] = np.nan  # a step with no observation at all
    dataset = _dataset(tas)
    dataset["pr"] = (("time", "lat", "lon"), (rng.random((7, 4, 6)) * 1e-4).astype(np.float32))
    dataset.to_netcdf(tmp_path / "s.nc")
    mean, std = grids.file_channel_statistics(tmp_path / "s.nc", ["pr", "tas"], chunk_steps=3)
    # independent computation: numpy over the whole arrays in float64
    for c, array in enumerate([dataset["pr"].values, tas]):
        whole = array.astype(np.float64)
        np.testing.assert_allclose(mean[c], np.nanmean(whole), rtol=1e-12)
        np.testing.assert_allclose(std[c], np.nanstd(whole), rtol=1e-10)
    dataset["tas"][:] = np.nan
    dataset.to_netcdf(tmp_path / "empty.nc")
    with pytest.raises(UserError, match="tas: no observed value"):
        grids.file_channel_statistics(tmp_path / "empty.nc", ["tas"])


def test_mask_files_per_step_or_steady_and_their_shape_checks(tmp_path):
    values = np.ones((3, 2, 4), np.float32)
    data = grids.select_grid(_dataset(values))
    per_step = (np.arange(3 * 2 * 4).reshape(3, 2, 4) % 2).astype(np.float32)
    per_step[1, 0, 0] = np.nan  # NaN in a mask counts as 0 (missing)
    _dataset(per_step, name="cover").to_netcdf(tmp_path / "steps.nc")  # its only variable
    opened = grid_masks.open_mask_file(tmp_path / "steps.nc", data)
    expected = np.nan_to_num(per_step)[1:3, ..., None]
    np.testing.assert_array_equal(opened.steps(1, 3), expected)
    opened.close()
    land = _dataset(per_step[:1])  # one step: a steady mask, same for every data step
    land.to_netcdf(tmp_path / "land.nc")
    steady = grid_masks.open_mask_file(tmp_path / "land.nc", data)
    np.testing.assert_array_equal(steady.steps(0, 3), np.repeat(per_step[:1, ..., None], 3, 0))
    steady.close()
    _dataset(np.ones((3, 4, 2), np.float32)).to_netcdf(tmp_path / "wide.nc")
    with pytest.raises(UserError, match="4x2 grid .* the data's is 2x4"):
        grid_masks.open_mask_file(tmp_path / "wide.nc", data)
    _dataset(np.ones((2, 2, 4), np.float32)).to_netcdf(tmp_path / "two.nc")
    with pytest.raises(UserError, match="2 time steps; the data has 3"):
        grid_masks.open_mask_file(tmp_path / "two.nc", data)
    _dataset(np.full((1, 2, 4), 0.5, np.float32)).to_netcdf(tmp_path / "half.nc")
    half = grid_masks.open_mask_file(tmp_path / "half.nc", data)
    with pytest.raises(UserError, match="other than 0 and 1"):
        half.steps(0, 1)
    half.close()
