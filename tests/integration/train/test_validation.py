"""Validation during training (pconv_jax.train.validation): metrics per bucket in metrics.jsonl, the
best step recorded and kept, `pconv export --best`, and agreement with `pconv evaluate`."""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from pconv_jax import cli
from pconv_jax.masks.protocol import HOLE_RATIO_BUCKETS

TINY = str(pathlib.Path(__file__).resolve().parents[3] / "experiments" / "configs" / "tiny.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 6-step tiny run validated every 2 steps on 3 images x 2 generated masks."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(5):
        pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    workdir = tmp_path_factory.mktemp("run")
    sets = [f"data.dir={folder}", "train.eval_every=2", "train.eval_num_images=3"]
    sets += ["train.eval_masks_per_image=2", f"train.eval_images={folder}"]
    args = ["train", "--config", TINY, "--workdir", str(workdir)]
    assert cli.main(args + [a for s in sets for a in ("--set", s)]) == 0
    return workdir, folder


def _val_lines(workdir):
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "val/lpips" in x]


@pytest.mark.slow
def test_validation_metrics_best_step_and_export(trained, tmp_path):
    workdir, folder = trained
    val = _val_lines(workdir)
    assert [x["step"] for x in val] == [2, 4, 6]
    for line in val:
        for name in ("l1", "psnr", "ssim", "lpips"):
            buckets = [k for k in line if k.startswith(f"val/{name}/bucket")]
            assert buckets and all(0 <= int(k[-1]) < len(HOLE_RATIO_BUCKETS) for k in buckets)
    best = json.loads((workdir / "best.json").read_text())
    want = min(val, key=lambda x: x["val/lpips"])
    assert (best["step"], best["metric"]) == (want["step"], "lpips")
    assert best["value"] == want["val/lpips"]
    # `pconv export --best` exports exactly the weights of that step's checkpoint.
    out = tmp_path / "best.npz"
    assert cli.main(["export", "--checkpoint", str(workdir), "--best", str(out)]) == 0
    assert cli.main(["export", "--checkpoint", str(workdir), "--step", str(best["step"]),
                     str(tmp_path / "same.npz")]) == 0  # fmt: skip
    got, same = np.load(out), np.load(tmp_path / "same.npz")
    assert json.loads(str(got["__meta__"]))["step"] == best["step"]
    keys = [k for k in got.files if k != "__meta__"]
    assert keys and all(np.array_equal(got[k], same[k]) for k in keys)
    # The validation numbers equal `pconv evaluate` on the same images, masks and pairing.
    step = val[1]["step"]
    result = tmp_path / "eval"
    assert cli.main([
        "evaluate", "--method", "pconv", "--checkpoint", str(workdir), "--step", str(step),
        "--images", str(folder), "--masks", str(workdir / "validation_masks"), "--size", "32",
        "--limit", "3", "--masks-per-image", "2", "--seed", "0", "--out", str(result),
    ]) == 0  # fmt: skip
    table = json.loads((result / "table.json").read_text())["metrics"]
    for name in ("l1", "psnr", "ssim", "lpips"):
        assert val[1][f"val/{name}"] == pytest.approx(table[name]["values"]["all"], rel=1e-4)


def test_export_best_needs_a_validated_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert cli.main(["export", "--checkpoint", str(tmp_path), "--best", str(tmp_path / "x")]) == 2
    assert "trained without validation" in capsys.readouterr().err
