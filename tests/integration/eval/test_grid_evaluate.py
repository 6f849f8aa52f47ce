"""`pconv evaluate --grid`: tables and figures from NetCDF fields, and its one-line refusals."""

import json

import numpy as np
import pytest
import xarray

from pconv_jax import cli
from pconv_jax.masks import stations
from pconv_jax.metrics import grid_scores

from conftest import shared_path

LAT = np.linspace(-78.75, 78.75, 8)
LON = np.arange(0.0, 360.0, 22.5)


def _run(*args) -> int:
    return cli.main(["evaluate", *map(str, args)])


@pytest.fixture()
def truth(tmp_path):
    """A complete TREFHT [4, 8, 16] in K and a HadCRUT-like 0/1 coverage on a coarser grid."""
    rng = np.random.default_rng(0)
    values = 280 + rng.normal(size=(4, len(LAT), len(LON)))
    dims = ("time", "lat", "lon")
    coords = {"time": np.arange(4.0), "lat": LAT, "lon": LON}
    xarray.Dataset({"TREFHT": (dims, values)}, coords=coords).to_netcdf(tmp_path / "truth.nc")
    coarse = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    coarse_coords = {"lat": [-45.0, 45.0], "lon": [90.0, 270.0]}
    xarray.Dataset({"tas": (dims, coarse)}, coords=coarse_coords).to_netcdf(tmp_path / "cov.nc")
    return tmp_path / "truth.nc", values


def test_grid_evaluation_writes_tables_and_figures(truth, tmp_path, capsys):
    path, values = truth
    out = tmp_path / "out"
    args = ["--grid", path, "--var", "TREFHT", "--coverage", "random:0.5", "--coverage"]
    args += [tmp_path / "cov.nc", "--method", "climatology", "--method", "nearest", "--out", out]
    assert _run(*args) == 0
    assert "| nearest |" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"table.md", "table.csv", "table.json", "error_map_random_0.5.png"} <= names
    assert {"global_mean_cov.png", "error_map_cov.png", "global_mean_random_0.5.png"} <= names
    rows = json.loads((out / "table.json").read_text())["rows"]
    assert [(r["coverage"], r["method"]) for r in rows] == [
        ("random:0.5", "climatology"),
        ("random:0.5", "nearest"),
        ("cov", "climatology"),
        ("cov", "nearest"),
    ]
    # Independent check: the climatology fills anomaly 0, so its RMSE is the area-weighted RMS
    # of the anomaly (against each cell's own time mean) over the missing cells.
    mask = stations.random_cells(LAT, LON, 0.5, seed=0)
    anomaly = values - values.mean(axis=0)
    weights = np.broadcast_to(grid_scores.area_weights(LAT, len(LON)), anomaly.shape)
    hole = np.broadcast_to(mask == 0, anomaly.shape)
    expected = np.sqrt(np.sum(weights[hole] * anomaly[hole] ** 2) / np.sum(weights[hole]))
    assert rows[0]["rmse"] == pytest.approx(expected)
    assert rows[0]["pattern_correlation"] is None  # a constant fill has no pattern (NaN -> null)
    # The coarse file's two observed quadrants cover half the cells.
    assert rows[2]["observed_cells"] == pytest.approx(0.5)
    # Nothing the user has is overwritten.
    assert _run(*args) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--coverage", "random:0.5", "--images", "skimage"], "does not take --images"),
        (["--coverage", "random:0.5", "--method", "telea"], "unknown --method telea"),
        (["--coverage", "stations:lots"], "expected stations:FRACTION"),
        (["--coverage", "random:0.5", "--method", "pconv"], "needs --checkpoint"),
        (["--coverage", "missing.nc"], "coverage file not found"),
        ([], "needs --coverage"),
        (["--coverage", "random:0.5", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_bad_grid_input_is_one_line(truth, tmp_path, capsys, extra, message):
    args = ["--grid", truth[0], "--var", "TREFHT", "--out", tmp_path / "o", *extra]
    assert _run(*args) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "o").exists()  # nothing written on bad input


def test_grid_flags_without_grid_and_a_wrong_variable_are_refused(truth, tmp_path, capsys):
    assert _run("--var", "TREFHT", "--coverage", "random:0.5", "--out", tmp_path / "o") == 2
    assert "needs --grid" in capsys.readouterr().err
    args = ["--grid", truth[0], "--var", "TS", "--coverage", "random:0.5", "--out", tmp_path / "o"]
    assert _run(*args) == 2
    assert "no variable 'TS'" in capsys.readouterr().err


def test_image_evaluation_takes_one_image_method(capsys):
    assert _run("--method", "telea", "--method", "ns", "--images", "skimage", "--out", "x") == 2
    assert "takes one --method" in capsys.readouterr().err
    assert _run("--method", "kriging", "--images", "skimage", "--out", "x") == 2


def test_hadcrut4_1877_coverage_on_the_t42_grid(tmp_path):
    """The real HadCRUT4 pattern regridded to the CCSM T42 grid observes 23 % of the cells."""
    from pconv_jax.masks import coverage

    member = shared_path("data", "climate", "ccsm_trefht", "TREFHT.B06.67.atm.1890-1999ANN.nc")
    missmask = shared_path("data", "climate", "crai", "hadcrut_missmask_1.nc")
    with xarray.open_dataset(member) as data:
        lat, lon = data["lat"].values, data["lon"].values
    mask = coverage.read_coverage(missmask, lat, lon)["hadcrut_missmask_1"]
    assert mask.shape == (64, 128)
    # Source: 23.4 % of HadCRUT4's 72 x 72 cells; nearest-cell regridding keeps it near that.
    assert 0.21 < mask.mean() < 0.25


def test_the_cli_names_every_grid_baseline():
    from pconv_jax.cli import grid_evaluation
    from pconv_jax.eval import grid_baselines

    assert grid_evaluation.METHODS == tuple(grid_baselines.BASELINES)


def test_a_model_gets_values_in_the_files_units_and_is_scored_in_anomalies(truth, tmp_path):
    """A stand-in model that answers truth + 1 K on every cell: the scores must see an error of
    exactly +1 K (the climatology is added for the model and taken away again)."""
    from pconv_jax.eval import grid_evaluate

    path, values = truth
    seen = []

    def plus_one(values_nhw1, mask_nhw1):
        seen.append((values_nhw1.copy(), mask_nhw1.copy()))
        return values_nhw1 + 1.0

    rows = grid_evaluate.evaluate_grid(
        path, "TREFHT", ["random:0.5"], tmp_path / "o", methods={}, models={"plus": plus_one}
    )
    ((given, mask),) = seen
    np.testing.assert_allclose(given[..., 0], values)  # the file's values, in K
    assert mask.shape == values.shape + (1,) and set(np.unique(mask)) == {0.0, 1.0}
    assert rows[0]["method"] == "plus"
    assert rows[0]["rmse"] == pytest.approx(1.0) and rows[0]["bias"] == pytest.approx(1.0)
    assert rows[0]["global_mean_rmse"] == pytest.approx(0.5, rel=0.2)  # ~half the area missing


def test_checkpoint_scores_a_gridded_model_as_the_pconv_row(truth, tmp_path):
    import dataclasses

    import jax

    from pconv_jax import config as config_lib
    from pconv_jax.nn.model import build_model
    from pconv_jax.store import trained

    model_cfg = config_lib.ModelConfig(
        num_layers=2, in_channels=1, out_channels=1, width=4, max_width=8, padding="global",
        input_sizes="any", channel_mean=(280.0,), channel_std=(1.0,),
    )  # fmt: skip
    model = build_model(model_cfg)
    sample = np.zeros((1, len(LAT), len(LON), 1), np.float32)
    variables = jax.jit(model.init)(jax.random.key(0), sample, np.ones_like(sample))
    cfg = dataclasses.replace(config_lib.Config(), model=model_cfg)
    export = tmp_path / "model.npz"
    trained.write_export(trained.TrainedModel(cfg, model, dict(variables), 0, "test"), export)
    path, values = truth
    args = ["--grid", path, "--var", "TREFHT", "--coverage", "random:0.5", "--checkpoint", export]
    assert _run(*args, "--method", "pconv", "--out", tmp_path / "o") == 0
    (row,) = json.loads((tmp_path / "o" / "table.json").read_text())["rows"]
    assert row["method"] == "pconv"
    # Independent: the network applied by hand to the observed values (gaps 0), scored in numpy.
    observed = np.broadcast_to(stations.random_cells(LAT, LON, 0.5, seed=0)[None, :, :, None],
                               values.shape + (1,)).astype(np.float32)  # fmt: skip
    inputs = np.where(observed == 1, values[..., None], 0).astype(np.float32)
    output = np.asarray(jax.jit(model.apply)(variables, inputs, observed))[..., 0]
    hole = observed[..., 0] == 0
    weights = np.broadcast_to(grid_scores.area_weights(LAT, len(LON)), values.shape)[hole]
    expected = np.sqrt(np.sum(weights * (output - values)[hole] ** 2) / np.sum(weights))
    assert row["rmse"] == pytest.approx(expected, rel=1e-4)


def test_a_model_of_anomalies_gets_anomalies(truth, tmp_path):
    from pconv_jax.eval import grid_evaluate

    path, values = truth
    seen = []

    def same(values_nhw1, mask_nhw1):
        seen.append(values_nhw1.copy())
        return values_nhw1 - 0.5

    rows = grid_evaluate.evaluate_grid(
        path, "TREFHT", ["random:0.5"], tmp_path / "o", methods={}, models={"m": same},
        model_anomalies=True,
    )  # fmt: skip
    np.testing.assert_allclose(seen[0][..., 0], values - values.mean(axis=0), atol=1e-12)
    assert rows[0]["bias"] == pytest.approx(-0.5)
