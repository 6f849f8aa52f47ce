"""inference.grid_output: an infilled variable written slice by slice keeps its encoding,
attributes, dimension order and coordinates; everything else is copied as read."""

from __future__ import annotations

import netCDF4
import numpy as np
import xarray

from pconv_jax.data import grids
from pconv_jax.inference.grid_output import GridWriter


def _packed_input(path):
    """(lat, time, lon) variable packed as int16 with scale_factor and _FillValue, plus a
    second variable without time and a time coordinate with units (left undecoded)."""
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=(3, 5, 4)) * 40) * 0.05  # multiples of 0.05: exact packing
    values[0, 1, 2] = np.nan
    dataset = xarray.Dataset(
        {
            "tas": (("lat", "time", "lon"), values, {"units": "K", "long_name": "temperature"}),
            "orog": (("lat", "lon"), rng.random((3, 4)).astype(np.float32)),
        },
        coords={
            "time": ("time", np.arange(5.0) * 30.5, {"units": "days since 1850-01-01"}),
            "lat": ("lat", np.array([-30.0, 0.0, 30.0], np.float32), {"units": "degrees_north"}),
            "lon": ("lon", np.arange(4, dtype=np.float32) * 90),
        },
        attrs={"history": "made by the test", "title": "packed"},
    )
    dataset["tas"].encoding = {
        "dtype": "int16",
        "scale_factor": 0.05,
        "_FillValue": np.int16(-32767),
        "zlib": True,
        "complevel": 4,
    }
    dataset.to_netcdf(path, unlimited_dims=["time"])
    return values


def test_slices_are_written_with_the_input_encoding_and_order(tmp_path):
    values = _packed_input(tmp_path / "in.nc")
    dataset = grids.open_grid(tmp_path / "in.nc")
    layout = grids.select_grid(dataset, ["tas"])
    assert layout.grid_dims == ("lat", "lon") and layout.dims == ("lat", "time", "lon")
    writer = GridWriter(dataset, layout, tmp_path / "out.nc", "now: pconv infill", masks=True)
    # fill in two slices, in the network layout [N, lat, lon, C]; the gap gets 1.25
    filled = np.nan_to_num(np.transpose(values, (1, 0, 2)), nan=1.25)[..., None]
    mask = np.isfinite(np.transpose(values, (1, 0, 2)))[..., None]
    writer.write(0, filled[:2], mask[:2])
    writer.write(2, filled[2:], mask[2:])
    writer.finish({"tas": {"steps_without_observation": np.array([3], np.int32)}})
    dataset.close()

    raw_in = netCDF4.Dataset(tmp_path / "in.nc")
    raw_out = netCDF4.Dataset(tmp_path / "out.nc")
    for raw in (raw_in, raw_out):
        raw.set_auto_maskandscale(False)
    tas_in, tas_out = raw_in["tas"], raw_out["tas"]
    assert tas_out.dimensions == ("lat", "time", "lon") and tas_out.dtype == np.int16
    assert tas_out.filters()["zlib"] and tas_out.filters()["complevel"] == 4
    for attribute in ("units", "long_name", "scale_factor", "_FillValue"):
        assert tas_out.getncattr(attribute) == tas_in.getncattr(attribute)
    packed_in, packed_out = tas_in[:], tas_out[:]
    gap = packed_in == -32767
    # observed cells: the same int16 on disk; the gap: 1.25 / 0.05 = 25
    np.testing.assert_array_equal(packed_out[~gap], packed_in[~gap])
    assert gap.sum() == 1 and packed_out[gap][0] == 25
    np.testing.assert_array_equal(tas_out.getncattr("steps_without_observation"), [3])
    np.testing.assert_array_equal(raw_out["tas_mask"][:], (~gap).astype(np.int8))
    for name in ("time", "lat", "lon", "orog"):
        np.testing.assert_array_equal(raw_out[name][:], raw_in[name][:])
        assert raw_out[name].ncattrs() == raw_in[name].ncattrs(), name
    assert raw_out.dimensions["time"].isunlimited()
    assert raw_out.history == "now: pconv infill\nmade by the test"
    assert raw_out.title == "packed"
    raw_in.close()
    raw_out.close()
