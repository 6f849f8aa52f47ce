"""`pconv evaluate` runs: bucket/border assignment, baselines and a model through the CLI, resume,
FID and IS rows. Pairing: tests/unit/masks/test_pairing.py; the Table-1 layout:
tests/unit/eval/test_tables.py."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax import cli, config, images
from pconv_jax.data import eval_set
from pconv_jax.eval import baselines, grouping
from pconv_jax.masks import benchmark_sets
from pconv_jax.masks import protocol as masks
from pconv_jax.metrics import lpips
from pconv_jax.nn.model import build_model
from pconv_jax.store import checkpoint, trained

from conftest import shared_path

NVIDIA = ("data", "nvidia_test_masks")


@pytest.fixture(scope="module")
def manifest_masks(tmp_path_factory):
    """A make-test-masks set: 64x64, 2 masks per cell (24), with manifest.csv."""
    out = tmp_path_factory.mktemp("masks") / "set"
    benchmark_sets.make_test_mask_set(out, size=64, per_bucket=2, seed=0)
    return out


def _run(*args):
    return cli.main(["evaluate", *map(str, args)])


def _rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _check_rows_against_masks(rows, records_by_name, size):
    for row in rows:
        record = records_by_name[row["mask"]]
        assert (row["bucket"], row["border"]) == (record.bucket, record.border)
        lo, hi = masks.HOLE_RATIO_BUCKETS[row["bucket"]]
        ratio = 1.0 - images.read_mask(record.path, size).mean()  # nearest-resized, as evaluated
        assert row["hole_ratio"] == pytest.approx(ratio, abs=1e-6)
        assert lo - 0.01 < ratio <= hi + 0.01, row


def test_bucket_and_border_from_a_manifest_set(tmp_path, manifest_masks):
    out = tmp_path / "telea"
    assert _run(
        "--method", "telea", "--images", "skimage", "--masks", manifest_masks,
        "--size", 32, "--limit", 6, "--masks-per-image", 4, "--out", out,
    ) == 0  # fmt: skip
    rows = _rows(out)
    assert len(rows) == 24 and len({r["mask"] for r in rows}) == 24  # every mask once
    records = {r.name: r for r in masks.load_mask_set(manifest_masks)}
    _check_rows_against_masks(rows, records, 32)
    summary = json.loads((out / "table.json").read_text())
    assert summary["pairs"] == {**{c: 2 for c in masks.CELLS}, "all": 24}


def test_bucket_and_border_of_nvidia_masks(tmp_path):
    folder = shared_path(*NVIDIA)
    subset = tmp_path / "nvidia"
    subset.mkdir()
    for block in range(12):  # two masks of each half-block: 00000, 00001, 01000, 01001, ...
        for j in range(2):
            name = f"{block * 1000 + j:05d}.png"
            shutil.copy(folder / name, subset / name)
    images = shared_path("data", "kodak")
    out = tmp_path / "ns"
    assert _run(
        "--method", "ns", "--images", images, "--masks", subset, "--size", 64, "--out", out
    ) == 0  # fmt: skip
    rows = _rows(out)
    assert len(rows) == 24
    for row in rows:  # NVIDIA's layout: bucket = index // 2000, B = second half of each block
        index = int(row["mask"])
        assert (row["bucket"], row["border"]) == (index // 2000, index % 2000 >= 1000)
    _check_rows_against_masks(rows, {r.name: r for r in masks.load_mask_set(subset)}, 64)


@pytest.mark.parametrize("method", ["patchmatch", "telea", "ns"])
def test_each_baseline_fills_a_tiny_set(tmp_path, manifest_masks, method):
    pytest.importorskip("patchmatch" if method == "patchmatch" else "cv2")
    out = tmp_path / method
    assert _run(
        "--method", method, "--images", "skimage", "--masks", manifest_masks, "--size", 32,
        "--limit", 4, "--seed", 1, "--out", out, "--batch-size", 3,
    ) == 0  # fmt: skip
    rows = _rows(out)
    assert [r["pair"] for r in rows] == [0, 1, 2, 3]
    # Each metric recomputed independently for one pair (numpy, from the files).
    pair = masks.pair_masks(4, masks.load_mask_set(manifest_masks), seed=1)[2]
    truth = eval_set.eval_images("skimage", 32).load(pair.image_index)
    mask = images.read_mask(pair.mask.path, 32)
    filled = baselines.get_baseline(method)(truth * mask.astype(np.uint8), mask)
    composite = (truth * mask + filled * (1 - mask)) / 255.0
    err = np.abs(composite - truth / 255.0)
    assert rows[2]["mask"] == pair.mask.name
    assert rows[2]["l1"] == pytest.approx(100 * err.mean(), rel=1e-4)
    hole = (1 - mask[..., 0]).astype(bool)
    assert rows[2]["hole_l1"] == pytest.approx(100 * err[hole].mean(), rel=1e-4)
    assert rows[2]["psnr"] == pytest.approx(-10 * np.log10((err**2).mean()), rel=1e-4)
    want = lpips.lpips(composite[None].astype(np.float32), truth[None] / np.float32(255.0))
    assert rows[2]["lpips"] == pytest.approx(float(want[0]), rel=1e-4)
    _check_table_is_mean_of_rows(out, rows)
    assert sorted(p.name for p in out.glob("examples_bucket*.png")) == [
        f"examples_bucket{b}.png" for b in range(6) if any(r["bucket"] == b for r in rows)
    ]


def _check_table_is_mean_of_rows(out, rows):
    summary = json.loads((out / "table.json").read_text())
    for key in ("l1", "psnr", "ssim", "hole_l1", "lpips"):
        values = summary["metrics"][key]["values"]
        assert values["all"] == pytest.approx(np.mean([r[key] for r in rows]), rel=1e-12)
        for cell in masks.CELLS:
            mine = [r[key] for r in rows if grouping.PAPER.column_of(r) == cell]
            assert values[cell] == (pytest.approx(np.mean(mine), rel=1e-12) if mine else None)
    md = (out / "table.md").read_text()
    assert "| l1 (%) | " in md and "FID / IS / U-IDS / P-IDS: not computed" in md


def _tiny_run(workdir, partial: bool):
    """A `pconv train`-style run directory: config.json + one checkpoint of a 4-layer model."""
    cfg = config.Config(model=config.ModelConfig(num_layers=4, partial=partial))
    checkpoint.write_config(workdir, cfg)
    model = build_model(cfg.model)
    init = jax.jit(model.init)  # jitted: eager init of the U-Net takes seconds
    variables = init(jax.random.key(1), jnp.zeros((1, 16, 16, 3)), jnp.ones((1, 16, 16, 1)))
    ckpts = checkpoint.Checkpoints(workdir)
    ckpts.save(7, dict(variables), {"step": jnp.int32(7)})
    ckpts.close()
    return workdir


def test_pconv_model_on_all_devices_and_config_checks(tmp_path, manifest_masks, capsys):
    run = _tiny_run(tmp_path / "run", partial=True)
    out = tmp_path / "pconv"
    args = ("--images", "skimage", "--masks", manifest_masks, "--limit", 6, "--out")
    assert _run("--method", "pconv", "--checkpoint", run, "--size", 32, *args, out) == 0
    rows = _rows(out)
    assert len(rows) == 6  # 6 pairs on 4 devices, batch 16: one padded batch
    settings = json.loads((out / "settings.json").read_text())
    assert settings["checkpoint_step"] == 7 and settings["method"] == "pconv"
    # Recomputed with the model outside the evaluation: input truth * mask, clip, composite.
    loaded = trained.load(run)
    model, variables = loaded.model, loaded.variables
    pairs = masks.pair_masks(6, masks.load_mask_set(manifest_masks), seed=0)
    source = eval_set.eval_images("skimage", 32)
    truth = np.stack([source.load(p.image_index) for p in pairs]) / np.float32(255)
    mask = np.stack([images.read_mask(p.mask.path, 32) for p in pairs])
    output = np.clip(np.asarray(jax.jit(model.apply)(variables, truth * mask, mask)), 0, 1)
    composite = truth * mask + output * (1 - mask)
    l1 = 100 * np.abs(composite - truth).mean(axis=(1, 2, 3))
    np.testing.assert_allclose([r["l1"] for r in rows], l1, rtol=1e-4)
    _check_table_is_mean_of_rows(out, rows)
    # The method must match the checkpoint's model, the size its depth.
    assert _run("--method", "conv", "--checkpoint", run, "--size", 32, *args, tmp_path / "x") == 2
    assert "holds a PConv model (model.partial=True)" in capsys.readouterr().err
    assert _run("--method", "pconv", "--checkpoint", run, "--size", 40, *args, tmp_path / "x") == 2
    assert "not divisible by 2**num_layers = 16" in capsys.readouterr().err
    assert _run("--method", "pconv", "--size", 32, *args, tmp_path / "x") == 2
    assert "needs --checkpoint" in capsys.readouterr().err
    conv_run = _tiny_run(tmp_path / "conv_run", partial=False)
    assert (
        _run("--method", "conv", "--checkpoint", conv_run, "--size", 32, *args, out.parent / "c")
        == 0
    )
    assert len(_rows(out.parent / "c")) == 6
    assert "Conv baseline U-Net, 4 layers" in (out.parent / "c" / "table.md").read_text()


def test_resume_skips_finished_pairs_and_other_arguments_are_an_error(
    tmp_path, manifest_masks, monkeypatch, capsys
):
    out = tmp_path / "telea"
    args = ["--method", "telea", "--images", "skimage", "--masks", manifest_masks, "--size", 32]
    args += ["--limit", 5, "--batch-size", 2, "--out", out]
    assert _run(*args) == 0
    first = _rows(out)
    # An interruption: two finished pairs and half a line survive.
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:2]) + lines[2][:20])
    calls = []
    real = baselines.get_baseline

    def counting(name):
        fill = real(name)
        return lambda image, mask: calls.append(1) or fill(image, mask)

    monkeypatch.setattr(baselines, "get_baseline", counting)
    assert _run(*args) == 0
    assert len(calls) == 3  # only the unfinished pairs were filled
    assert _rows(out) == first  # deterministic: the same values again
    calls.clear()
    assert _run(*args) == 0 and not calls  # all finished: nothing recomputed
    assert _run(*args[:-2], "--seed", 5, "--out", out) == 2
    assert "seed: 0 then, 5 now" in capsys.readouterr().err
    assert _run(*[a if a != 32 else 64 for a in args]) == 2
    assert "size: 32 then, 64 now" in capsys.readouterr().err
    # Not enough masks for the requested pairs: a clear error before anything is written.
    assert _run(*args[:-1], tmp_path / "y", "--masks-per-image", 5) == 2
    assert "need 25 distinct masks; the mask set has 24" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


@pytest.mark.slow
def test_fid_and_is_rows(tmp_path, manifest_masks):
    from pconv_jax.metrics import fid, inception

    shapes = jax.eval_shape(
        inception.InceptionV3FID().init, jax.random.key(0), jnp.zeros((1, 299, 299, 3))
    )["params"]
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: rng.normal(0, 0.05, s.shape).astype(np.float32), shapes)
    params = jax.tree_util.tree_map_with_path(  # BN variances must be positive
        lambda path, x: np.ones_like(x) if path[-1].key == "var" else x, params
    )
    inception.save_fid_inception(params, tmp_path / "no_head.npz")
    params["output"] = {
        "kernel": rng.normal(0, 1e-3, (inception.FEATURE_DIM, inception.NUM_CLASSES)).astype(
            np.float32
        ),
        "bias": np.zeros(inception.NUM_CLASSES, np.float32),
    }
    inception.save_fid_inception(params, tmp_path / "head.npz")
    base = ["--method", "telea", "--images", "skimage", "--masks", manifest_masks, "--size", 32]
    base += ["--limit", 3, "--masks-per-image", 8]
    assert _run(*base, "--fid-weights", tmp_path / "head.npz", "--out", tmp_path / "a") == 0
    pooled = json.loads((tmp_path / "a" / "table.json").read_text())["buckets"]
    fids, scores = pooled["metrics"]["fid"]["values"], pooled["metrics"]["is"]["values"]
    assert pooled["pairs"] == {**{str(b): 4 for b in range(6)}, "all": 24}
    assert all(np.isfinite(fids[c]) and np.isfinite(scores[c]) for c in grouping.PAPER.pooled)
    # The "all" column recomputed from the stored per-pair features.
    features = np.stack([np.load(tmp_path / "a" / "fid" / f"{i:06d}.npy") for i in range(24)])
    assert fids["all"] == fid.fid_from_features(features[:, 1], features[:, 0], method="svd")
    logits = fid.inception_logits(
        inception.load_fid_inception(tmp_path / "head.npz"), features[:, 0]
    )
    assert scores["all"] == fid.inception_score(logits, splits=1)[0]
    bucket = [r["pair"] for r in _rows(tmp_path / "a") if r["bucket"] == 0]  # N and B pooled
    assert len(bucket) == 4
    assert fids["0"] == fid.fid_from_features(features[bucket, 1], features[bucket, 0], "svd")
    assert _run(*base, "--fid-weights", tmp_path / "no_head.npz", "--out", tmp_path / "b") == 0
    md = (tmp_path / "b" / "table.md").read_text()
    assert "| IS | " + " | ".join(["n/a"] * 7) + " |" in md
    assert "IS: n/a, the FID weights have no classifier head" in md
