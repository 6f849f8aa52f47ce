"""A gridded model trained with pconv_jax knows what it was trained on (its export card's
`grid`): `pconv infill` takes its variable by default and refuses, with one line, another
variable, another grid, or values that are not the anomalies it infills. Shipped models load by
name (store/named.py)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
import xarray

from pconv_jax import cli, config
from pconv_jax.errors import UserError
from pconv_jax.inference.infiller import Infiller
from pconv_jax.nn.model import build_model
from pconv_jax.store import named, trained

LAT = np.linspace(-75.0, 75.0, 6)
LON = np.arange(10) * 36.0


def card_grid(**change):
    grid = {"variables": ["TREFHT"], "lat": list(LAT), "lon": list(LON), "units": "K"}
    return grid | {"anomaly_std": 0.8} | change


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    model_cfg = config.ModelConfig(
        num_layers=2, in_channels=1, out_channels=1, width=4, max_width=8, padding="global",
        input_sizes="any",
    )  # fmt: skip
    cfg = dataclasses.replace(config.Config(), model=model_cfg)
    model = build_model(model_cfg)
    sample = np.zeros((1, len(LAT), len(LON), 1), np.float32)
    variables = jax.jit(model.init)(jax.random.key(0), sample, np.ones_like(sample))
    path = tmp_path_factory.mktemp("model") / "trained.npz"
    model_with_card = trained.TrainedModel(cfg, model, dict(variables), 7, "test")
    return trained.write_export(model_with_card, path, {"grid": card_grid()})


def write_file(path, values, var="TREFHT", lat=LAT, lon=LON):
    coords = {"time": np.arange(len(values), dtype=np.float64), "lat": lat, "lon": lon}
    xarray.Dataset({var: (("time", "lat", "lon"), values)}, coords).to_netcdf(path)
    return path


def anomalies(steps=3, seed=0):
    values = np.random.default_rng(seed).normal(scale=0.8, size=(steps, len(LAT), len(LON)))
    values[:, ::2, ::3] = np.nan
    return values.astype(np.float32)


def test_the_trained_variable_is_taken_by_default_and_the_card_is_loaded(export, tmp_path):
    infiller = Infiller.load(export)
    assert infiller.trained_on["variables"] == ["TREFHT"]
    source = write_file(tmp_path / "in.nc", anomalies())
    report = infiller.infill_file(source, tmp_path / "out.nc", progress=False)
    assert report.names == ("TREFHT",)
    out = xarray.open_dataset(tmp_path / "out.nc")["TREFHT"].values
    assert np.isfinite(out).all()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: write_file(p, anomalies(), var="tas"), "trained on TREFHT, not tas"),
        (lambda p: write_file(p, anomalies(), lat=LAT + 1.0), "regrid it first"),
        (lambda p: write_file(p, anomalies() + 287.0), "subtract a climatology"),
    ],
)
def test_another_variable_grid_or_absolute_values_are_one_line_errors(
    export, tmp_path, capsys, make, message
):
    source = make(tmp_path / "in.nc")
    names = ["--var", "tas"] if "tas" in message else []
    argv = ["infill", str(source), "--checkpoint", str(export), "-o", str(tmp_path / "o.nc")]
    assert cli.main(argv + names + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.nc").exists()


def test_arrays_of_another_grid_shape_are_refused(export):
    with pytest.raises(UserError, match="trained on a 6x10 grid"):
        Infiller.load(export)(np.zeros((1, 6, 12, 1), np.float32))


def test_shipped_models_resolve_by_name_and_a_local_path_wins(tmp_path, monkeypatch):
    assert named.resolve("ccsm-t42") == named.PRETRAINED_DIR / "ccsm-t42.npz"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ccsm-t42").mkdir()  # a run directory of that name, here
    assert named.resolve("ccsm-t42") == tmp_path.joinpath("ccsm-t42").relative_to(tmp_path)
    assert named.resolve("other.npz").name == "other.npz"
