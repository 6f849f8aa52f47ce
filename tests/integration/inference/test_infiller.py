"""inference.infiller and `pconv infill`: gaps filled by the network, observed cells bit for bit,
the file's metadata kept, bad input refused with nothing written, the sharded path equal."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import xarray

from pconv_jax import cli
from pconv_jax import config as config_lib
from pconv_jax.data import grids
from pconv_jax.errors import UserError
from pconv_jax.inference.infiller import Infiller
from pconv_jax.nn.model import build_model
from pconv_jax.store import trained

from tolerances import EPS32, network_atol

HEIGHT, WIDTH = 6, 10  # not multiples of 2**num_layers: the model takes any size


def _export(folder: pathlib.Path) -> pathlib.Path:
    """A tiny random gridded model (2 channels in, 1 out, global padding, normalisation)."""
    model_cfg = config_lib.ModelConfig(
        num_layers=2,
        in_channels=2,
        out_channels=1,
        width=4,
        max_width=8,
        padding="global",
        input_sizes="any",
        first_bn=True,
        channel_mean=(280.0, 0.5),
        channel_std=(10.0, 0.25),
    )
    cfg = dataclasses.replace(config_lib.Config(), model=model_cfg)
    model = build_model(model_cfg)
    sample = np.zeros((1, HEIGHT, WIDTH, 2), np.float32)
    variables = jax.jit(model.init)(jax.random.key(0), sample, np.ones_like(sample))
    path = folder / "grid_model.npz"
    trained.write_export(trained.TrainedModel(cfg, model, dict(variables), 0, "test"), path)
    return path


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("model"))


def _fields(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """tas (K) and a second variable, [T, H, W] float32, ~60 % of the cells NaN."""
    rng = np.random.default_rng(seed)
    tas = (280 + 10 * rng.normal(size=(steps, HEIGHT, WIDTH))).astype(np.float32)
    other = rng.random((steps, HEIGHT, WIDTH)).astype(np.float32)
    tas[rng.random(tas.shape) < 0.6] = np.nan
    other[rng.random(other.shape) < 0.3] = np.nan
    return tas, other


def _atol(expected: np.ndarray) -> float:
    """|Infiller - model.apply| allowed (tests/tolerances.py): the tiny U-Net's reductions
    (enc1 7x7x2, enc2 5x5x4, dec2 3x3x(8+4), dec1 3x3x(4+2)) in normalised units, whose scale is
    bounded by max|x - 280| / 10, times std 10 back to kelvin, plus the two roundings (x * 10,
    then + 280) of each of the two evaluations, eps/2 of the result's size each."""
    normalised = float(np.max(np.abs(expected - 280.0))) / 10.0
    scale = float(np.max(np.abs(expected)))
    return network_atol([98, 100, 108, 54], normalised) * 10.0 + 2 * EPS32 * scale


def _expected(export_path, tas, other, cover=None):
    """Independent of the Infiller: model.apply on the gaps set to 0, composited by hand."""
    model = trained.load(export_path)
    values = np.stack([tas, other], -1)
    observed = np.isfinite(values)
    if cover is not None:  # a steady mask for both channels, [H, W] bool
        observed &= cover[..., None]
    inputs = np.where(observed, values, 0).astype(np.float32)
    apply = jax.jit(model.model.apply)
    output = np.asarray(apply(model.variables, inputs, observed.astype(np.float32)))
    return np.where(observed[..., 0], tas, output[..., 0])


def test_arrays_are_infilled_and_observed_values_kept(export):
    tas, other = _fields(3)
    infiller = Infiller.load(export)
    result = infiller(np.stack([tas, other], -1))
    assert result.shape == (3, HEIGHT, WIDTH, 1) and result.dtype == np.float32
    observed = np.isfinite(tas)
    np.testing.assert_array_equal(result[..., 0][observed], tas[observed])  # bit for bit
    assert np.isfinite(result).all()
    _assert_close(result[..., 0], _expected(export, tas, other))
    with pytest.raises(UserError, match="takes 2 input channel"):
        infiller(tas[..., None])


def _assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=_atol(expected))


def _write(path, tas, other, dims=("time", "lat", "lon")):
    steps = tas.shape[0]
    order = [("time", "lat", "lon").index(d) for d in dims]
    dataset = xarray.Dataset(
        {
            "tas": (dims, tas.transpose(order), {"units": "K", "long_name": "temperature"}),
            "sic": (dims, other.transpose(order), {"units": "1"}),
        },
        coords={
            "time": ("time", np.arange(steps) * 31.0, {"units": "days since 1870-01-01"}),
            "lat": ("lat", np.linspace(-75, 75, HEIGHT, dtype=np.float32)),
            "lon": ("lon", np.arange(WIDTH, dtype=np.float32) * 36),
        },
        attrs={"history": "synthetic", "institution": "tests"},
    )
    for name in ("tas", "sic"):
        dataset[name].encoding = {"_FillValue": np.float32(1e20), "dtype": "float32"}
    dataset.to_netcdf(path)


def test_cli_infills_every_step_and_keeps_the_file_metadata(export, tmp_path):
    tas, other = _fields(5, seed=1)
    tas[3] = np.nan  # a step without any observation: filled and recorded
    source = tmp_path / "obs.nc"
    _write(source, tas, other, dims=("lat", "time", "lon"))
    out = tmp_path / "filled.nc"
    argv = ["infill", str(source), "--checkpoint", str(export), "-o", str(out), "--no-progress"]
    assert cli.main([*argv, "--var", "tas,sic", "--batch-size", "2", "--write-mask"]) == 0
    result = xarray.open_dataset(out, decode_times=False)
    given = xarray.open_dataset(source, decode_times=False)
    assert result["tas"].dims == ("lat", "time", "lon")
    filled = result["tas"].transpose("time", "lat", "lon").values
    observed = np.isfinite(tas)
    np.testing.assert_array_equal(filled[observed], tas[observed])
    _assert_close(filled, _expected(export, tas, other))
    attrs = dict(result["tas"].attrs)
    np.testing.assert_array_equal(attrs.pop("steps_without_observation"), 3)  # the empty step
    assert attrs == given["tas"].attrs
    assert result["tas"].encoding["_FillValue"] == np.float32(1e20)
    assert result["tas"].encoding["dtype"] == np.float32
    assert list(result["tas_mask"].transpose("time", "lat", "lon").values.ravel()) == list(
        observed.astype(np.int8).ravel()
    )
    xarray.testing.assert_identical(result["sic"], given["sic"])  # not an output channel: copied
    for name in ("time", "lat", "lon"):
        xarray.testing.assert_identical(result[name], given[name])
    assert result.attrs["history"].endswith("\nsynthetic")
    assert "pconv infill" in result.attrs["history"].splitlines()[0]
    assert result.attrs["institution"] == "tests"


def test_a_step_without_observation_is_recorded(export, tmp_path):
    tas, other = _fields(3, seed=2)
    tas[1] = np.nan
    _write(tmp_path / "obs.nc", tas, other)
    report = Infiller.load(export).infill_file(
        tmp_path / "obs.nc", tmp_path / "out.nc", ["tas", "sic"], progress=False
    )
    assert report.empty_steps == {"tas": [1]}
    assert report.infilled_cells == {"tas": int(np.isnan(tas).sum())}
    with xarray.open_dataset(tmp_path / "out.nc") as result:
        np.testing.assert_array_equal(result["tas"].attrs["steps_without_observation"], [1])


def test_a_mask_file_hides_observations(export, tmp_path):
    tas, other = _fields(2, seed=3)
    _write(tmp_path / "obs.nc", tas, other)
    cover = np.zeros((1, HEIGHT, WIDTH), np.float32)
    cover[0, :, : WIDTH // 2] = 1  # a steady mask: only the western half counts as observed
    xarray.Dataset({"cover": (("time", "lat", "lon"), cover)}).to_netcdf(tmp_path / "m.nc")
    out = tmp_path / "out.nc"
    argv = ["infill", str(tmp_path / "obs.nc"), "--checkpoint", str(export), "-o", str(out)]
    assert cli.main([*argv, "--var", "tas", "--var", "sic", "--mask", str(tmp_path / "m.nc")]) == 0
    with xarray.open_dataset(out) as result:
        filled = result["tas"].values
    # the mask file's only variable applies to both channels
    expected = _expected(export, tas, other, cover=cover[0].astype(bool))
    _assert_close(filled, expected)
    kept = np.isfinite(tas) & cover[0].astype(bool)
    np.testing.assert_array_equal(filled[kept], tas[kept])


def _fails(capsys, argv, pattern):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and pattern in err, err


def test_bad_input_is_one_line_exit_2_and_nothing_written(export, tmp_path, capsys):
    tas, other = _fields(2, seed=4)
    source = tmp_path / "obs.nc"
    _write(source, tas, other)
    out = tmp_path / "out.nc"
    base = ["infill", str(source), "--checkpoint", str(export), "-o", str(out), "--no-progress"]
    _fails(capsys, [*base, "--var", "tas,pr"], "no variable 'pr' in")
    _fails(capsys, [*base, "--var", "tas"], "takes 2 input channel(s) (variables); got 1")
    xarray.Dataset({"m": (("time", "lat", "lon"), np.ones((1, HEIGHT + 1, WIDTH)))}).to_netcdf(
        tmp_path / "mask.nc"
    )
    _fails(capsys, [*base, "--var", "tas,sic", "--mask", str(tmp_path / "mask.nc")], "7x10 grid")
    text = tmp_path / "text.nc"
    text.write_text("hello\n")
    _fails(capsys, ["infill", str(text), *base[2:], "--var", "tas,sic"], "not a NetCDF or Zarr")
    empty = tmp_path / "empty.nc"
    _write(empty, np.full_like(tas, np.nan), other)
    _fails(capsys, ["infill", str(empty), *base[2:], "--var", "tas,sic"], "no observed value")
    _fails(capsys, [*base[:4], "-o", str(source), "--var", "tas,sic"], "is the input file")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "empty.nc",
        "mask.nc",
        "obs.nc",
        "text.nc",
    ]


def test_two_devices_give_the_unsharded_result(export, tmp_path):
    tas, other = _fields(3, seed=5)
    source = tmp_path / "obs.nc"
    _write(source, tas, other)
    script = (
        "import sys, jax; from pconv_jax.inference.infiller import Infiller\n"
        "assert jax.device_count() == 2\n"
        "Infiller.load(sys.argv[1]).infill_file(sys.argv[2], sys.argv[3], ['tas', 'sic'],"
        " batch_size=1, progress=False)\n"
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path.cwd()), env.get("PYTHONPATH", "")])
    subprocess.run(
        [sys.executable, "-c", script, str(export), str(source), str(tmp_path / "two.nc")],
        env=env,
        check=True,
    )
    with xarray.open_dataset(tmp_path / "two.nc") as result:
        filled = result["tas"].values
    # slices of 2 steps (batch 1 rounded up to the 2 devices), each split over the devices,
    # against the unjitted apply on one device (conftest's 4 fake devices are the other case)
    _assert_close(filled, _expected(export, tas, other))
    assert np.isfinite(filled).all()


def test_a_grid_too_narrow_for_the_global_padding_is_refused_as_the_model_would(export):
    infiller = Infiller.load(export)
    loaded = trained.load(export)
    # kernels 7, 5 (num_layers 2): enc1 wraps 3 columns of the full width, enc2 2 of ceil(W/2)
    narrow = np.ones((1, 4, 2, 2), np.float32)  # enc1 would wrap 3 columns of 2
    with pytest.raises(UserError, match="too narrow for the model's depth: level 1 is 2 cells"):
        infiller(narrow)
    with pytest.raises(ValueError, match="wraps 3 columns"):  # the model itself agrees
        loaded.model.apply(loaded.variables, narrow, np.ones_like(narrow))
    just_wide = np.full((1, 4, 3, 2), 0.5, np.float32)  # 3 >= 3, then ceil(3/2) = 2 >= 2
    just_wide[0, 0, 0, 0] = np.nan
    assert np.isfinite(infiller(just_wide)).all()


def test_a_zarr_store_in_slices_of_uneven_length_compiles_once(export, tmp_path):
    tas, other = _fields(5, seed=6)
    _write(tmp_path / "obs.nc", tas, other)
    with xarray.open_dataset(tmp_path / "obs.nc") as dataset:
        dataset.load().to_zarr(tmp_path / "obs.zarr")
    infiller = Infiller.load(export, devices=jax.devices()[:1])  # the one-device path
    report = infiller.infill_file(
        tmp_path / "obs.zarr", tmp_path / "out.nc", ["tas", "sic"], batch_size=2, progress=False
    )
    assert report.num_steps == 5  # slices of 2, 2 and 1 steps, the last padded to 2
    assert infiller.forward.num_compilations == 1
    with xarray.open_dataset(tmp_path / "out.nc") as result:
        _assert_close(result["tas"].values, _expected(export, tas, other))
    # the array API takes one mask for all channels too ([N,H,W,1])
    everywhere = np.ones((5, HEIGHT, WIDTH, 1), np.float32)
    np.testing.assert_array_equal(
        infiller(np.stack([tas, other], -1), everywhere, batch_size=2),
        infiller(np.stack([tas, other], -1), batch_size=2),
    )


def test_time_is_read_in_slices_and_the_input_can_be_replaced(export, tmp_path, monkeypatch):
    tas, other = _fields(7, seed=7)
    source = tmp_path / "obs.nc"
    _write(source, tas, other)
    slices = []
    original = grids.read_values

    def recording(dataset, layout, start, stop):
        values = original(dataset, layout, start, stop)
        slices.append(values.shape[0])
        return values

    monkeypatch.setattr(grids, "read_values", recording)
    argv = ["infill", str(source), "--checkpoint", str(export), "-o", str(source)]
    assert cli.main([*argv, "--var", "tas,sic", "--batch-size", "4", "--overwrite"]) == 0
    # never more than --batch-size steps in memory (4: a multiple of conftest's 4 fake devices)
    assert slices == [4, 3]
    with xarray.open_dataset(source) as result:  # the input, replaced by its infilled version
        _assert_close(result["tas"].values, _expected(export, tas, other))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.nc"]  # no temporary left
