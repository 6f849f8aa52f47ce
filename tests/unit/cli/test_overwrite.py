"""An output path equal to an input is refused (one line, exit 2, the input untouched) unless
--overwrite is given: `pconv inpaint`, `upscale`, `export`, `convert`, `port-*`, `evaluate`,
`report` and `make-test-masks` (issue 29, item 10)."""

import numpy as np
import pytest
from PIL import Image

from pconv_jax import cli


def _photo_and_mask(folder, stem="photo"):
    """A 40x48 photo PNG and its mask PNG (white = hole, a band in the middle)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photo, mask = folder / f"{stem}.png", folder / f"{stem}_mask.png"
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(photo)
    holes = np.zeros((40, 48), np.uint8)
    holes[15:25, 10:38] = 255
    Image.fromarray(holes).save(mask)
    return photo, mask


def _refused(capsys, argv, *untouched):
    before = [p.read_bytes() for p in untouched]
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "writing would replace it" in err and "--overwrite" in err and "\n" not in err
    assert [p.read_bytes() for p in untouched] == before


@pytest.mark.parametrize("target", ["photo", "mask"])
def test_inpaint_output_equal_to_an_input_is_refused(run_dir, tmp_path, capsys, target):
    photo, mask = _photo_and_mask(tmp_path)
    out = {"photo": photo, "mask": mask}[target]
    _refused(capsys, ["inpaint", "--checkpoint", run_dir, photo, mask, "-o", out], photo, mask)
    # The same file under another spelling is the same file.
    spelled = tmp_path / "." / out.name
    _refused(capsys, ["inpaint", "--checkpoint", run_dir, photo, "--mask", mask, "-o", spelled])


def test_inpaint_overwrite_flag_replaces_the_photo(run_dir, tmp_path, capsys):
    photo, mask = _photo_and_mask(tmp_path)
    before = np.asarray(Image.open(photo))
    argv = ["inpaint", "--checkpoint", run_dir, photo, mask, "-o", photo, "--overwrite"]
    assert cli.main([str(a) for a in argv]) == 0
    after = np.asarray(Image.open(photo))
    known = np.asarray(Image.open(mask)) == 0
    np.testing.assert_array_equal(after[known], before[known])
    assert not np.array_equal(after[~known], before[~known])  # the hole was filled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "photo_mask.png"]


def test_inpaint_folder_output_equal_to_images_or_masks_folder_is_refused(
    run_dir, tmp_path, capsys
):
    images, masks = tmp_path / "images", tmp_path / "masks"
    photo, mask = _photo_and_mask(images)
    masks.mkdir()
    mask = mask.rename(masks / "photo.png")  # paired with photo.png by name
    for out in (images, masks):
        argv = ["inpaint", "--checkpoint", run_dir, "--images", images, "--masks", masks]
        _refused(capsys, argv + ["-o", out], photo, mask)


def test_other_commands_refuse_an_output_equal_to_an_input(tmp_path, capsys):
    """Refused before reading anything, so the inputs need not be valid files."""
    weights = tmp_path / "vgg16.npz"
    weights.write_bytes(b"not read")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not read")
    cases = [
        ["upscale", "--checkpoint", tmp_path, "--factor", "2", folder / "a.png", "-o"],
        ["convert", "--from", "naoto0804", weights],
        ["port-vgg16", weights],
        ["port-fid-inception", weights],
    ]
    for argv in cases:
        target = folder / "a.png" if argv[0] == "upscale" else weights
        _refused(capsys, argv + [target], weights, folder / "a.png")
    for argv in (
        ["export", "--checkpoint", weights, weights],  # an export re-exported onto itself
        ["evaluate", "--method", "telea", "--images", folder, "--out", folder],
        ["evaluate", "--images", folder, "--export-pairs", folder],
        ["report", tmp_path, folder, "-o", folder],
        ["make-test-masks", "--from", folder, folder],
    ):
        _refused(capsys, argv, weights, folder / "a.png")
