"""The gridded model shipped in the package (`ccsm-t42`) through the real command line, as a
fresh install uses it: `pconv infill IN.nc --model ccsm-t42 -o OUT.nc` in a new process fills the
held-out member's gaps under HadCRUT4's 1877 coverage with the skill its model card states, keeps
every observed cell bit for bit, and refuses a grid it was not trained on in one line;
`Infiller.load("ccsm-t42")` is the same model in Python.

Expected RMSE: the evaluation in experiments/results/ccsm_t42_2026-12-08/ (`pconv evaluate
--grid`, another code path: it reads the truth and the coverage itself and runs the model in
process), recomputed here by hand with cos-latitude weights from the file `pconv infill` writes.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray

from pconv_jax.inference.infiller import Infiller
from pconv_jax.masks import coverage
from pconv_jax.store import named

from conftest import shared_path

MEMBER = ("data", "climate", "ccsm_trefht", "TREFHT.B06.67.atm.1890-1999ANN.nc")
COVERAGE = ("data", "climate", "crai", "hadcrut_missmask_1.nc")
# experiments/results/ccsm_t42_2026-12-08/table.md, row "HadCRUT4 1877-09", column pconv
CARD_RMSE_1877 = 0.41369
KRIGING_RMSE_1877 = 0.44822  # the same table: the best classical baseline


def _pconv(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pconv_jax", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def gappy_anomalies(tmp_path_factory):
    """(path of a NetCDF file of member 67's anomalies with NaN outside the 1877 coverage,
    the complete anomalies [T, H, W] in K, the coverage [H, W], lat [H])."""
    with xarray.open_dataset(shared_path(*MEMBER)) as member:
        member = member.load()
    anomaly = member["TREFHT"] - member["TREFHT"].mean("time")
    lat, lon = member["lat"].values, member["lon"].values
    (pattern,) = coverage.read_coverage(shared_path(*COVERAGE), lat, lon).values()
    gappy = anomaly.where(pattern.astype(bool))
    gappy.attrs = {"units": "K", "long_name": "2 m temperature anomaly"}
    path = tmp_path_factory.mktemp("shipped") / "trefht_anomaly_1877_coverage.nc"
    xarray.Dataset({"TREFHT": gappy}).to_netcdf(path)
    return path, anomaly.values, pattern, lat


def test_infill_with_the_shipped_model_matches_its_card(gappy_anomalies, tmp_path):
    source, truth, pattern, lat = gappy_anomalies
    out = tmp_path / "filled.nc"
    done = _pconv("infill", source, "--model", "ccsm-t42", "-o", out, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "110 time steps" in done.stdout
    with xarray.open_dataset(out) as filled, xarray.open_dataset(source) as given:
        values, given_values = filled["TREFHT"].values, given["TREFHT"].values
        assert "pconv infill" in filled.attrs["history"]
    observed = np.broadcast_to(pattern.astype(bool), values.shape)
    assert np.array_equal(values[observed], given_values[observed])  # kept bit for bit
    assert np.isfinite(values).all()
    weights = np.broadcast_to(np.cos(np.deg2rad(lat))[None, :, None], values.shape)
    gaps = ~observed
    error = values[gaps] - truth[gaps]
    rmse = float(np.sqrt(np.sum(weights[gaps] * error**2) / np.sum(weights[gaps])))
    assert rmse == pytest.approx(CARD_RMSE_1877, abs=5e-4)
    assert rmse < KRIGING_RMSE_1877
    # The same model in Python, by name: same values on the first steps.
    direct = Infiller.load("ccsm-t42")(given_values[:4, ..., None])  # NaN = fill
    assert np.allclose(direct[..., 0][gaps[:4]], values[:4][gaps[:4]], atol=1e-4)


def test_a_grid_the_model_was_not_trained_on_is_one_line(gappy_anomalies, tmp_path):
    source, *_ = gappy_anomalies
    coarse = tmp_path / "coarse.nc"
    with xarray.open_dataset(source) as given:
        given.isel(lat=slice(0, None, 2), lon=slice(0, None, 2)).to_netcdf(coarse)
    done = _pconv("infill", coarse, "--model", "ccsm-t42", "-o", tmp_path / "x.nc")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "trained on" in done.stderr
    assert not (tmp_path / "x.nc").exists()


def test_the_shipped_files_are_in_the_package():
    assert named.PRETRAINED_DIR.joinpath("ccsm-t42.npz").is_file()
    assert named.PRETRAINED_DIR.joinpath("ccsm-t42.md").is_file()
