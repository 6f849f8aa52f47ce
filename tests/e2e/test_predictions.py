"""`pconv evaluate --export-pairs` and `--pairs/--predictions`: any tool's fills, scored into the
same tables as `--method`."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from pconv_jax import cli
from pconv_jax.data import eval_set
from pconv_jax.eval import baselines
from pconv_jax.masks import benchmark_sets, lama
from pconv_jax.metrics import lpips

# An independent filler: reads the exported files with OpenCV alone and writes Telea's fills
# (cv2.inpaint, radius 3, the mask's white pixels as the hole). No pconv_jax import. It blacks
# out the hole first: a tool is given the image WITH the hole, and cv2.inpaint does read the
# hole's pixels (measured: 5 of these 12 fills change when it sees the truth there).
TELEA_SCRIPT = textwrap.dedent(
    """
    import json, pathlib, sys
    import cv2
    pairs, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir()
    for name in json.loads((pairs / "pairs.json").read_text())["pairs"]:
        bgr = cv2.imread(str(pairs / "images" / f"{name}.png"), cv2.IMREAD_COLOR)
        hole = (cv2.imread(str(pairs / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127)
        bgr[hole] = 0
        filled = cv2.inpaint(bgr, hole.astype("uint8") * 255, 3, cv2.INPAINT_TELEA)
        cv2.imwrite(str(out / f"{name}.png"), filled)
    """
)


def _evaluate(*args):
    return cli.main(["evaluate", *map(str, args)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Telea through --method and through an exported folder filled by TELEA_SCRIPT."""
    pytest.importorskip("cv2")
    root = tmp_path_factory.mktemp("pred")
    benchmark_sets.make_test_mask_set(root / "masks", size=64, per_bucket=1, seed=0)
    source = ["--images", "skimage", "--masks", root / "masks", "--size", 48, "--limit", 4]
    source += ["--masks-per-image", 3, "--seed", 2]
    assert _evaluate("--method", "telea", *source, "--out", root / "telea") == 0
    assert _evaluate(*source, "--export-pairs", root / "pairs") == 0
    script = root / "fill.py"
    script.write_text(TELEA_SCRIPT)
    subprocess.run([sys.executable, script, root / "pairs", root / "fills"], check=True)
    return root


def test_exported_pairs_are_the_evaluated_pairs(exported):
    listed = json.loads((exported / "pairs" / "pairs.json").read_text())
    settings = json.loads((exported / "telea" / "settings.json").read_text())
    for key in ("protocol", "images", "masks", "size", "seed", "masks_per_image", "num_images"):
        assert listed["settings"][key] == settings[key], key
    rows = [json.loads(x) for x in (exported / "telea" / "results.jsonl").read_text().splitlines()]
    assert sorted(listed["pairs"]) == [f"{r['pair']:06d}" for r in rows]
    for r in rows:
        entry = listed["pairs"][f"{r['pair']:06d}"]
        assert (entry["image"], entry["mask"], entry["bucket"]) == (
            r["image"],
            r["mask"],
            r["bucket"],
        )
        mask = np.asarray(Image.open(exported / "pairs" / "masks" / f"{r['pair']:06d}.png"))
        assert mask.shape == (48, 48) and set(np.unique(mask)) <= {0, 255}
        assert (mask == 255).mean() == pytest.approx(r["hole_ratio"], abs=1e-6)  # white = hole
        image = Image.open(exported / "pairs" / "images" / f"{r['pair']:06d}.png")
        assert image.size == (48, 48) and image.mode == "RGB"


def test_fills_of_another_tool_give_the_numbers_of_the_method(exported, tmp_path):
    out = tmp_path / "scored"
    pairs = ["--pairs", exported / "pairs"]
    assert _evaluate(*pairs, "--predictions", exported / "fills", "--out", out) == 0
    ours = json.loads((exported / "telea" / "table.json").read_text())
    theirs = json.loads((out / "table.json").read_text())
    assert theirs["metrics"] == ours["metrics"]  # exactly: same pairs, same fills, same code
    assert theirs["pairs"] == ours["pairs"]
    assert theirs["settings"]["method"] == "fills" and theirs["settings"]["known"] == "composited"
    assert any("'composited'" in note for note in theirs["notes"])
    # Raw: the fills as written. Telea keeps known pixels: equal up to float rounding (the raw
    # path divides the fill by 255 in numpy, the composite takes known pixels from the truth).
    raw = tmp_path / "raw"
    args = [*pairs, "--predictions", exported / "fills", "--known", "raw", "--name", "telea-raw"]
    assert _evaluate(*args, "--out", raw) == 0
    raw_table = json.loads((raw / "table.json").read_text())
    for column, value in ours["metrics"]["l1"]["values"].items():
        assert raw_table["metrics"]["l1"]["values"][column] == pytest.approx(value, rel=1e-5)
    assert any("'raw'" in note for note in raw_table["notes"])
    # A fill that changes a known pixel: raw sees it, composited does not.
    changed = tmp_path / "changed"
    shutil.copytree(exported / "fills", changed)
    with Image.open(changed / "000000.png") as im:
        pixels = np.asarray(im).copy()
    known = np.asarray(Image.open(exported / "pairs" / "masks" / "000000.png")) == 0
    pixels[known] = 255 - pixels[known]
    Image.fromarray(pixels).save(changed / "000000.png")
    for known_mode, same in (("composited", True), ("raw", False)):
        target = tmp_path / f"changed_{known_mode}"
        args = [*pairs, "--predictions", changed, "--known", known_mode, "--out", target]
        assert _evaluate(*args) == 0
        first = json.loads((target / "results.jsonl").read_text().splitlines()[0])
        reference = json.loads((exported / "telea" / "results.jsonl").read_text().splitlines()[0])
        assert (first["l1"] == reference["l1"]) is same


def test_missing_extra_and_wrongly_sized_fills_are_named(exported, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(exported / "fills", bad)
    (bad / "000003.png").unlink()
    (bad / "000011.png").unlink()
    Image.new("RGB", (48, 48)).save(bad / "extra.png")
    Image.new("RGB", (40, 48)).save(bad / "000005.png")
    pairs = ["--pairs", exported / "pairs", "--out", tmp_path / "x"]
    assert _evaluate(*pairs, "--predictions", bad) == 2
    err = capsys.readouterr().err
    assert "2 missing (000003.png, 000011.png)" in err
    assert "1 extra (extra.png)" in err
    assert "1 not 48x48 (000005.png is 40x48)" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
    # Flags of other modes are refused, and the mode's own are required.
    assert _evaluate(*pairs, "--predictions", bad, "--method", "telea") == 2
    assert "does not take --method" in capsys.readouterr().err
    assert _evaluate("--pairs", exported / "pairs", "--out", tmp_path / "y") == 2
    assert "needs --predictions" in capsys.readouterr().err
    source = ["--images", "skimage", "--masks", exported / "masks"]
    assert _evaluate(*source, "--export-pairs", exported / "pairs") == 2
    assert "not empty" in capsys.readouterr().err


def test_lama_protocol_with_vgg_lpips_and_its_area_bins(tmp_path, capsys):
    args = ["--method", "telea", "--images", "skimage", "--protocol", "lama-thick"]
    args += ["--size", 256, "--limit", 3, "--lpips-net", "vgg", "--seed", 4]
    assert _evaluate(*args, "--out", tmp_path / "thick") == 0
    summary = json.loads((tmp_path / "thick" / "table.json").read_text())
    assert summary["grouping"] == "lama" and summary["columns"][0] == "0-10%"
    assert summary["metrics"]["lpips"]["title"].startswith("LPIPS (VGG)")
    notes = " ".join(summary["notes"])
    assert "protocol: lama-thick; sample: 3 pairs" in notes and "mask seed 4" in notes
    assert "VGG16-lin" in notes
    rows = [json.loads(x) for x in (tmp_path / "thick" / "results.jsonl").read_text().splitlines()]
    for row in rows:  # the generated mask, LaMa's bin, and the VGG distance recomputed
        holes = lama.lama_holes(4, row["pair"], "thick", 256)
        assert row["hole_ratio"] == pytest.approx(holes.mean(), abs=1e-6)
        assert row["bucket"] is None and row["mask"] == f"lama-thick-{row['pair']:06d}"
        column = lama.area_bin_title(lama.area_bin(row["hole_ratio"]))
        assert summary["pairs"][column] >= 1
    truth = eval_set.eval_images("skimage", 256).load(0)
    mask = (~lama.lama_holes(4, 0, "thick", 256))[..., None].astype(np.float32)
    filled = baselines.get_baseline("telea")(truth * mask.astype(np.uint8), mask)
    composite = (truth * mask + filled * (1 - mask)) / np.float32(255)
    want = lpips.lpips(composite[None].astype(np.float32), truth[None] / np.float32(255), "vgg")
    assert rows[0]["lpips"] == pytest.approx(float(want[0]), rel=1e-4)
    # Sizes without a LaMa preset, masks or the paper's grouping with generated masks: errors.
    assert _evaluate(*args[:-6], "--size", 128, "--out", tmp_path / "x") == 2
    assert "(256, 512) px" in capsys.readouterr().err
    assert _evaluate(*args, "--grouping", "paper", "--out", tmp_path / "x") == 2
    assert "--grouping paper needs the paper's bucketed test masks" in capsys.readouterr().err
    assert _evaluate(*args, "--masks", tmp_path, "--out", tmp_path / "x") == 2
    assert "not allowed with the generated LaMa masks" in capsys.readouterr().err


def test_report_puts_scored_fills_beside_methods_in_either_grouping(exported, tmp_path, capsys):
    pairs = ["--pairs", exported / "pairs", "--predictions", exported / "fills"]
    assert _evaluate(*pairs, "--name", "telea-script", "--out", tmp_path / "scored") == 0
    out = tmp_path / "rep"
    folders = [exported / "telea", tmp_path / "scored"]
    assert cli.main(["report", *map(str, folders), "-o", str(out)]) == 0
    page = (out / "report.md").read_text()
    assert "| telea |" in page and "| telea-script |" in page
    grids = sorted(p.name for p in out.glob("grid_bucket*.png"))
    assert grids and all(f"![]({g})" in page for g in grids)
    # LaMa's bins over the same pairs: grids per area bin; mixing groupings is an error.
    assert _evaluate(*pairs, "--grouping", "lama", "--out", tmp_path / "lama") == 0
    assert cli.main(["report", str(tmp_path / "lama"), "-o", str(tmp_path / "rep2")]) == 0
    assert list((tmp_path / "rep2").glob("grid_area*.png"))
    assert "Per LaMa area bin" in (tmp_path / "rep2" / "report.md").read_text()
    mixed = [str(tmp_path / "lama"), str(tmp_path / "scored")]
    assert cli.main(["report", *mixed, "-o", str(tmp_path / "rep3")]) == 2
    assert "different groupings" in capsys.readouterr().err
