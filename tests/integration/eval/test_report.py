"""`pconv report`: tables side by side, plots, deterministic figure grids, training curves."""

import json

import numpy as np
import pytest
from PIL import Image

from pconv_jax import cli
from pconv_jax.eval import report
from pconv_jax.masks import benchmark_sets


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    """telea and ns on 6 scikit-image photos x 2 masks of a generated 12-mask set, 32 px."""
    root = tmp_path_factory.mktemp("report")
    benchmark_sets.make_test_mask_set(root / "masks", size=64, per_bucket=1, seed=0)
    folders = []
    for method in ("telea", "ns"):
        out = root / method
        assert cli.main([
            "evaluate", "--method", method, "--images", "skimage", "--masks",
            str(root / "masks"), "--size", "32", "--limit", "6", "--masks-per-image", "2",
            "--out", str(out),
        ]) == 0  # fmt: skip
        folders.append(out)
    run = root / "run"
    run.mkdir()
    lines = [{"step": s, "train/total": 2.0 / s, "train/hole": 1.0 / s} for s in (10, 20, 30)]
    lines += [{"step": 30, "val/l1": 3.0, "val/psnr": 20.0, "val/ssim": 0.7, "val/lpips": 0.3}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root, folders, run


def test_report_page_plots_and_grids(evaluations, tmp_path):
    root, folders, run = evaluations
    out = tmp_path / "rep"
    assert cli.main(["report", *map(str, folders), str(run), "-o", str(out)]) == 0
    page = (out / "report.md").read_text()
    for folder in folders:  # each method's LPIPS row is its table.json, formatted
        values = json.loads((folder / "table.json").read_text())["metrics"]["lpips"]["values"]
        assert (
            f"| {folder.name} | " + " | ".join(f"{values[c]:.3f}" for c in ("0N", "0B", "1N"))
            in page
        )
    rows = [json.loads(x) for x in (folders[0] / "results.jsonl").read_text().splitlines()]
    x, y = report.bucket_curves(rows, "psnr")  # the plotted points, recomputed here
    buckets = sorted({r["bucket"] for r in rows})
    assert len(x) == len(buckets)
    first = [r for r in rows if r["bucket"] == buckets[0]]
    assert y[0] == pytest.approx(np.mean([r["psnr"] for r in first]))
    assert x[0] == pytest.approx(np.mean([r["hole_ratio"] for r in first]))
    grids = sorted(p.name for p in out.glob("grid_bucket*.png"))
    assert grids == [f"grid_bucket{b}.png" for b in buckets]
    for name in [*grids, "metrics_vs_hole_ratio.png", "run_losses.png", "run_validation.png"]:
        assert f"![]({name})" in page and Image.open(out / name).size[0] > 300
    # Grids pick the first saved pair of each cell: two rows (N and B) per bucket here.
    picked = report.grid_pairs(report.classify(folders)[0])
    assert all(len(v) == 2 and v[0]["border"] is False for v in picked.values())
    # Deterministic: a second report has the same bytes.
    again = tmp_path / "again"
    assert cli.main(["report", *map(str, folders), str(run), "-o", str(again)]) == 0
    for path in out.iterdir():
        assert path.read_bytes() == (again / path.name).read_bytes(), path.name


def test_report_rejects_other_folders_and_skips_grids_of_other_pairs(evaluations, tmp_path):
    root, folders, _ = evaluations
    assert cli.main(["report", str(root / "masks"), "-o", str(tmp_path / "x")]) == 2
    other = tmp_path / "other"
    assert cli.main([
        "evaluate", "--method", "telea", "--images", "skimage", "--masks", str(root / "masks"),
        "--size", "32", "--limit", "6", "--masks-per-image", "2", "--seed", "1",
        "--out", str(other),
    ]) == 0  # fmt: skip
    out = tmp_path / "rep"
    assert cli.main(["report", str(folders[0]), str(other), "-o", str(out)]) == 0
    page = (out / "report.md").read_text()
    assert "No grids: the evaluations differ in seed." in page
    assert "| telea (telea) |" in page and "| telea (other) |" in page
