"""`pconv evaluate`: pairing, bucket/border assignment, baselines and a model through the CLI,
resume, and the exact Table-1 layout."""

import collections
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax import cli, config, images
from pconv_jax.data import eval_set
from pconv_jax.eval import baselines
from pconv_jax.eval import tables as eval_table
from pconv_jax.masks import protocol as masks
from pconv_jax.masks import test_sets as mask_set
from pconv_jax.metrics import lpips
from pconv_jax.nn.model import build_model
from pconv_jax.store import checkpoint, trained

from conftest import shared_path

NVIDIA = ("data", "nvidia_test_masks")


def _records(per_cell=5, short_cell=None):
    """Fake MaskRecords: `per_cell` per cell (`short_cell` gets 1), names unique."""
    records = []
    for n, cell in enumerate(masks.CELLS):
        count = 1 if cell == short_cell else per_cell
        for j in range(count):
            bucket, border = int(cell[:-1]), cell[-1] == "B"
            records.append(
                masks.MaskRecord(f"/m/{n}_{j}.png", f"{n:02d}_{j}", bucket, border, 0, 0)
            )
    return records


def test_pairing_is_deterministic_without_replacement_and_stratified():
    records = _records()
    pairs = masks.pair_masks(24, records, seed=3)
    assert [p.index for p in pairs] == list(range(24))
    assert [p.image_index for p in pairs] == list(range(24))
    assert len({p.mask.name for p in pairs}) == 24  # no mask used twice
    assert collections.Counter(p.mask.label for p in pairs) == {c: 2 for c in masks.CELLS}
    # A pure function of (count, records, seed): same result from a shuffled record list.
    shuffled = [records[i] for i in np.random.default_rng(0).permutation(len(records))]
    assert masks.pair_masks(24, shuffled, seed=3) == pairs
    other = masks.pair_masks(24, records, seed=4)
    assert [p.mask.name for p in other] != [p.mask.name for p in pairs]
    # Image order is unrelated to the round-robin cell order.
    assert [p.mask.label for p in pairs[:12]] != list(masks.CELLS)


def test_pairing_with_several_masks_per_image_and_uneven_cells():
    records = _records(per_cell=5)
    pairs = masks.pair_masks(20, records, seed=0, masks_per_image=3)
    assert len(pairs) == 60 and len({p.mask.name for p in pairs}) == 60  # all masks, once each
    for image in range(20):
        mine = [p for p in pairs if p.image_index == image]
        assert [p.index for p in mine] == [3 * image + k for k in range(3)]
        assert len({p.mask.name for p in mine}) == 3
    # 21 pairs over 12 cells: 2 for the first 9 cells of the round robin, 1 for the last 3.
    counts = collections.Counter(p.mask.label for p in masks.pair_masks(7, records, 0, 3))
    assert [counts[c] for c in masks.CELLS] == [2] * 9 + [1] * 3
    # An exhausted cell is skipped, the others fill in.
    uneven = masks.pair_masks(30, _records(per_cell=3, short_cell="2B"), seed=1)
    uneven_counts = collections.Counter(p.mask.label for p in uneven)
    assert uneven_counts["2B"] == 1 and sum(uneven_counts.values()) == 30
    with pytest.raises(ValueError, match="need 61 distinct masks; the mask set has 60"):
        masks.pair_masks(61, records, seed=0)
    with pytest.raises(ValueError, match="20 images x 4 masks per image need 80"):
        masks.pair_masks(20, records, seed=0, masks_per_image=4)


def test_table_layout_exact():
    rows = [
        {"bucket": 0, "border": False, "l1": 1.0, "psnr": 30.0, "ssim": 0.9, "hole_l1": 10.0},
        {"bucket": 0, "border": False, "l1": 2.0, "psnr": 20.0, "ssim": 0.8, "hole_l1": None},
        {"bucket": 5, "border": True, "l1": 6.0, "psnr": 15.0, "ssim": 0.5, "hole_l1": 12.5},
    ]
    for row, value in zip(rows, (0.1, 0.2, 0.4)):
        row["lpips"] = value
    table = eval_table.build_table(rows, notes=["a note"])
    na = " | ".join(["n/a"] * 10)
    expected_md = (
        "| metric | (0.01,0.1] N | (0.01,0.1] B | (0.1,0.2] N | (0.1,0.2] B | (0.2,0.3] N | "
        "(0.2,0.3] B | (0.3,0.4] N | (0.3,0.4] B | (0.4,0.5] N | (0.4,0.5] B | (0.5,0.6] N | "
        "(0.5,0.6] B | all |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| l1 (%) | 1.50 | {na} | 6.00 | 3.00 |\n"
        f"| PSNR (dB) | 25.00 | {na} | 15.00 | 21.67 |\n"
        f"| SSIM | 0.850 | {na} | 0.500 | 0.733 |\n"
        f"| hole-only l1 (%), not the paper's | 10.00 | {na} | 12.50 | 11.25 |\n"
        f"| LPIPS (AlexNet), lower is better | 0.150 | {na} | 0.400 | 0.233 |\n"
        "| pairs | 2 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 1 | 3 |\n"
        "\n- a note\n"
    )
    assert eval_table.to_markdown(table) == expected_md
    empty = "," * 10
    assert eval_table.to_csv(table) == (
        "metric,0N,0B,1N,1B,2N,2B,3N,3B,4N,4B,5N,5B,all\n"
        f"l1,1.5{empty},6.0,3.0\n"
        f"psnr,25.0{empty},15.0,21.666666666666668\n"
        f"ssim,0.8500000000000001{empty},0.5,0.7333333333333334\n"
        f"hole_l1,10.0{empty},12.5,11.25\n"
        f"lpips,0.15000000000000002{empty},0.4,0.23333333333333336\n"
        "pairs,2,0,0,0,0,0,0,0,0,0,0,1,3\n"
    )
    as_json = eval_table.to_json(table)
    assert as_json["pairs"]["0N"] == 2 and as_json["metrics"]["l1"]["values"]["1N"] is None
    assert as_json["column_titles"]["3B"] == "(0.3,0.4] B" and as_json["buckets"] is None
    with pytest.raises(ValueError, match="bucket 6"):
        eval_table.build_table([dict(rows[0], bucket=6)])
    # Rows written before LPIPS existed: left out of its mean, not an error.
    old = eval_table.build_table([{k: v for k, v in r.items() if k != "lpips"} for r in rows])
    assert old.rows[-1].values["all"] is None


def test_pooled_bucket_table_layout_exact():
    rows = [
        {"bucket": 0, "border": False, "l1": 1.0, "psnr": 30.0, "ssim": 0.9, "hole_l1": 1.0},
        {"bucket": 0, "border": True, "l1": 2.0, "psnr": 20.0, "ssim": 0.8, "hole_l1": 2.0},
        {"bucket": 2, "border": True, "l1": 6.0, "psnr": 15.0, "ssim": 0.5, "hole_l1": 3.0},
    ]
    fid = {"0": 12.5, "1": None, "2": None, "3": None, "4": None, "5": None, "all": 40.0}
    fid_row = eval_table.TableRow("fid", "FID", "{:.2f}", fid)
    table = eval_table.build_table(rows, bucket_rows=[fid_row])
    md = eval_table.to_markdown(table)
    assert md.endswith(
        "\nPer hole-ratio bucket, N and B pooled:\n\n"
        "| metric | (0.01,0.1] | (0.1,0.2] | (0.2,0.3] | (0.3,0.4] | (0.4,0.5] | (0.5,0.6] "
        "| all |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        "| FID | 12.50 | n/a | n/a | n/a | n/a | n/a | 40.00 |\n"
        "| pairs | 2 | 0 | 1 | 0 | 0 | 0 | 3 |\n"
    )
    assert eval_table.to_csv(table).endswith(
        "\n\nmetric,0,1,2,3,4,5,all\nfid,12.5,,,,,,40.0\npairs,2,0,1,0,0,0,3\n"
    )
    pooled = eval_table.to_json(table)["buckets"]
    assert pooled["pairs"]["0"] == 2 and pooled["metrics"]["fid"]["values"]["all"] == 40.0


@pytest.fixture(scope="module")
def manifest_masks(tmp_path_factory):
    """A make-test-masks set: 64x64, 2 masks per cell (24), with manifest.csv."""
    out = tmp_path_factory.mktemp("masks") / "set"
    mask_set.make_test_mask_set(out, size=64, per_bucket=2, seed=0)
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
            mine = [r[key] for r in rows if eval_table.cell_of(r) == cell]
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
    from pconv_jax.metrics import fid

    shapes = jax.eval_shape(
        fid.InceptionV3FID().init, jax.random.key(0), jnp.zeros((1, 299, 299, 3))
    )["params"]
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: rng.normal(0, 0.05, s.shape).astype(np.float32), shapes)
    params = jax.tree_util.tree_map_with_path(  # BN variances must be positive
        lambda path, x: np.ones_like(x) if path[-1].key == "var" else x, params
    )
    fid.save_fid_inception(params, tmp_path / "no_head.npz")
    params["output"] = {
        "kernel": rng.normal(0, 1e-3, (fid.FEATURE_DIM, fid.NUM_CLASSES)).astype(np.float32),
        "bias": np.zeros(fid.NUM_CLASSES, np.float32),
    }
    fid.save_fid_inception(params, tmp_path / "head.npz")
    base = ["--method", "telea", "--images", "skimage", "--masks", manifest_masks, "--size", 32]
    base += ["--limit", 3, "--masks-per-image", 8]
    assert _run(*base, "--fid-weights", tmp_path / "head.npz", "--out", tmp_path / "a") == 0
    pooled = json.loads((tmp_path / "a" / "table.json").read_text())["buckets"]
    fids, scores = pooled["metrics"]["fid"]["values"], pooled["metrics"]["is"]["values"]
    assert pooled["pairs"] == {**{str(b): 4 for b in range(6)}, "all": 24}
    assert all(np.isfinite(fids[c]) and np.isfinite(scores[c]) for c in eval_table.BUCKET_COLUMNS)
    # The "all" column recomputed from the stored per-pair features.
    features = np.stack([np.load(tmp_path / "a" / "fid" / f"{i:06d}.npy") for i in range(24)])
    assert fids["all"] == fid.fid_from_features(features[:, 1], features[:, 0], method="svd")
    logits = fid.inception_logits(fid.load_fid_inception(tmp_path / "head.npz"), features[:, 0])
    assert scores["all"] == fid.inception_score(logits, splits=1)[0]
    bucket = [r["pair"] for r in _rows(tmp_path / "a") if r["bucket"] == 0]  # N and B pooled
    assert len(bucket) == 4
    assert fids["0"] == fid.fid_from_features(features[bucket, 1], features[bucket, 0], "svd")
    assert _run(*base, "--fid-weights", tmp_path / "no_head.npz", "--out", tmp_path / "b") == 0
    md = (tmp_path / "b" / "table.md").read_text()
    assert "| IS | " + " | ".join(["n/a"] * 7) + " |" in md
    assert "IS: n/a, the FID weights have no classifier head" in md
