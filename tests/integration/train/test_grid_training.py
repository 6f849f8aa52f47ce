"""`pconv train` on gridded fields (data.source=grids) end to end on tiny files: training with
the gridded validation, resuming after a stop bit for bit, the export that carries its grid, and
`pconv infill` with it.

Data: three "members" of random fields (280 K + noise) on a 16 x 32 global grid, a coverage file
on a coarser grid. The expected values are the run's own (an uninterrupted run against a stopped
and resumed one) and the file's (observed cells unchanged).
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import xarray

from pconv_jax import cli
from pconv_jax.store import checkpoint, trained

LAT = np.linspace(-84.375, 84.375, 16)
LON = np.arange(32) * 11.25


def write_member(path, seed):
    values = 280 + np.random.default_rng(seed).normal(size=(5, len(LAT), len(LON)))
    coords = {"time": np.arange(5, dtype=np.float64), "lat": LAT, "lon": LON}
    data = xarray.DataArray(values.astype(np.float32), coords, ("time", "lat", "lon"))
    xarray.Dataset({"T": data.assign_attrs(units="K")}).to_netcdf(path)
    return str(path)


@pytest.fixture
def settings(tmp_path):
    members = [write_member(tmp_path / f"m{i}.nc", i) for i in range(3)]
    coarse = np.where(np.random.default_rng(9).random((2, 8, 16)) < 0.4, 1.0, np.nan)
    coords = {"time": [0.0, 1.0], "lat": np.linspace(-78.75, 78.75, 8), "lon": np.arange(16) * 22.5}
    xarray.Dataset({"tas": (("time", "lat", "lon"), coarse)}, coords).to_netcdf(tmp_path / "c.nc")
    return [
        "--set", "model.num_layers=3", "--set", "model.in_channels=1",
        "--set", "model.out_channels=1", "--set", "model.width=4", "--set", "model.max_width=8",
        "--set", "model.padding=global", "--set", "model.input_sizes=any",
        "--set", "loss.perceptual=0", "--set", "loss.style=0",
        "--set", "data.source=grids", "--set", f"data.grid_files={members[0]},{members[1]}",
        "--set", "data.grid_var=T", "--set", f"data.grid_eval_files={members[2]}",
        "--set", f"data.grid_coverage_files={tmp_path / 'c.nc'}",
        "--set", "data.grid_station_patterns=3", "--set", "data.num_workers=0",
        "--set", "train.batch_size_per_device=1", "--set", "train.eval_every=2",
        "--set", "train.eval_best_metric=rmse", "--set", "train.log_every=1",
        "--set", "train.ckpt_every=2", "--set", "train.sample_every=2",
    ]  # fmt: skip


def test_gridded_training_resumes_exports_its_grid_and_infills(settings, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert (
        cli.main(["train", "--workdir", str(straight), *settings, "--set", "train.num_steps=4"])
        == 0
    )
    assert (
        cli.main(["train", "--workdir", str(resumed), *settings, "--set", "train.num_steps=2"]) == 0
    )
    assert (
        cli.main(["train", "--workdir", str(resumed), *settings, "--set", "train.num_steps=4"]) == 0
    )
    one = trained.load_run(straight).variables
    two = trained.load_run(resumed).variables
    for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(two), strict=True):
        np.testing.assert_array_equal(a, b)
    best = json.loads((straight / checkpoint.BEST_FILE).read_text())
    assert best["metric"] == "rmse" and best["step"] in (2, 4)
    metrics = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert any("val/rmse" in m for m in metrics)
    assert (straight / "samples" / "0000004.png").is_file()

    export = tmp_path / "grid.npz"
    assert cli.main(["export", "--checkpoint", str(straight), "--best", str(export)]) == 0
    card = trained.load_export(export).card["grid"]
    assert card["variables"] == ["T"] and len(card["lat"]) == len(LAT)

    gappy = xarray.open_dataset(tmp_path / "m2.nc").load()
    anomaly = gappy["T"] - gappy["T"].mean("time")
    anomaly[:, ::3, ::2] = np.nan
    gappy.assign(T=anomaly).to_netcdf(tmp_path / "gappy.nc")
    out = tmp_path / "filled.nc"
    argv = ["infill", str(tmp_path / "gappy.nc"), "--checkpoint", str(export), "-o", str(out)]
    assert cli.main([*argv, "--no-progress"]) == 0
    filled = xarray.open_dataset(out)["T"].values
    observed = np.isfinite(anomaly.values)
    np.testing.assert_array_equal(filled[observed], anomaly.values[observed])
    assert np.isfinite(filled).all()
