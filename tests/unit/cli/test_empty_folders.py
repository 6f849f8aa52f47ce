"""`pconv inpaint` folder mode with nothing to do is an error (exit 2, one line naming the
folder), not "wrote 0 images" (issue 29, item 13)."""

import numpy as np
import pytest
from PIL import Image

from pconv_jax import cli


@pytest.fixture
def folders(tmp_path):
    """bare/ (nothing), empty/ (no image), images/a.png, masks/a.png (white = hole) and
    other_masks/b.png."""
    for name in ("bare", "empty", "images", "masks", "other_masks"):
        (tmp_path / name).mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "images" / "a.png")
    holes = np.zeros((32, 32), np.uint8)
    holes[8:16, 8:16] = 255
    Image.fromarray(holes).save(tmp_path / "masks" / "a.png")
    Image.fromarray(holes).save(tmp_path / "other_masks" / "b.png")
    (tmp_path / "empty" / "notes.txt").write_text("not an image")  # no image files, not empty
    return tmp_path


@pytest.mark.parametrize(
    "images,masks,expected",
    [
        ("empty", "masks", "no image files in {empty}"),
        ("images", "empty", "no mask files in {empty}"),
        ("empty", "empty", "no image files in {empty}"),
        ("bare", "bare", "no image files in {bare}"),
        (
            "images",
            "other_masks",
            "none of the 1 images in {images} has a mask of the same name (without suffix) "
            "among the 1 in {other_masks}",
        ),
    ],
)
def test_nothing_to_inpaint_is_exit_2(run_dir, folders, capsys, images, masks, expected):
    out = folders / "out"
    argv = ["inpaint", "--checkpoint", run_dir, "--images", folders / images]
    argv += ["--masks", folders / masks, "-o", out, "--no-progress"]
    assert cli.main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    names = {n: folders / n for n in ("bare", "empty", "images", "other_masks")}
    # The last line: loading a run directory may log orbax's warnings above it.
    assert captured.err.splitlines()[-1] == "pconv inpaint: error: " + expected.format(**names)
    assert "wrote" not in captured.out and not out.exists()


def test_an_empty_images_folder_with_one_mask_is_exit_2(run_dir, folders, capsys):
    argv = ["inpaint", "--checkpoint", run_dir, "--images", folders / "empty"]
    argv += ["--mask", folders / "masks" / "a.png", "-o", folders / "out"]
    assert cli.main([str(a) for a in argv]) == 2
    assert capsys.readouterr().err.strip().endswith(f"no image files in {folders / 'empty'}")
