"""`inference.fill`: one photo + hole -> result for paths, bytes and arrays; the size limit
(`--max-side`) and the messages `pconv inpaint` shows for files that are not images."""

import io

import numpy as np
import pytest
from PIL import Image

from pconv_jax import cli
from pconv_jax.errors import UserError
from pconv_jax.inference import edit, fill
from pconv_jax.inference.inpainter import Inpainter


class NoNetwork:
    """An inpainter that fails the test when called: the no-hole shortcut must not call one."""

    batch_size = 1

    def __call__(self, *args, **kwargs):
        raise AssertionError("the network ran for an image without hole")


def _photo_and_hole(height=24, width=40):
    yy, xx = np.mgrid[:height, :width]
    photo = np.stack([(xx * 5 + yy * (c + 2)) % 256 for c in range(3)], -1).astype(np.uint8)
    hole = np.zeros((height, width), bool)
    hole[6:14, 10:25] = True
    return photo, hole


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_paths_bytes_and_arrays_give_the_same_result(run_dir, tmp_path):
    photo, hole = _photo_and_hole()
    mask = np.where(hole, 255, 0).astype(np.uint8)
    (tmp_path / "p.png").write_bytes(_png(photo))
    (tmp_path / "m.png").write_bytes(_png(mask))
    inpainter = Inpainter.load(run_dir)
    by_path = fill.fill(inpainter, tmp_path / "p.png", fill.MaskSource(file=tmp_path / "m.png"))
    by_bytes = fill.fill(inpainter, _png(photo), fill.MaskSource(file=_png(mask)))
    by_array = fill.fill(inpainter, photo, hole=hole)
    by_grey = fill.fill(inpainter, photo, fill.MaskSource(file=mask))
    for done in (by_bytes, by_array, by_grey):
        np.testing.assert_array_equal(done.result, by_path.result)
    # The same as Inpainter itself, which takes the known mask: converted once, in Edit.
    np.testing.assert_array_equal(by_path.result, inpainter(photo, ~hole))
    np.testing.assert_array_equal(by_path.result[~hole], photo[~hole])
    assert by_path.had_hole


def test_edit_inpaint_has_the_no_hole_shortcut_and_the_known_pixel_check():
    photo, hole = _photo_and_hole()
    unchanged = edit.inpaint(NoNetwork(), photo, np.zeros_like(hole))
    np.testing.assert_array_equal(unchanged, photo)
    assert unchanged is not photo
    done = fill.fill(NoNetwork(), photo, hole=np.zeros_like(hole))
    assert not done.had_hole
    with pytest.raises(UserError, match="no known pixel left"):
        edit.inpaint(NoNetwork(), photo, np.ones_like(hole))
    with pytest.raises(UserError, match="no known pixel left"):
        edit.inpaint(NoNetwork(), photo, hole, ops=edit.MaskOps(dilate=40))


def test_size_limit_before_and_after_extend():
    photo, hole = _photo_and_hole(24, 40)
    with pytest.raises(edit.TooLarge, match=r"the image is 40x24 px; at most 39 px on the long"):
        fill.load(photo, hole=hole, max_side=39)
    with pytest.raises(edit.TooLarge, match=r"image big\.png is 40x24 px; at most 30 px"):
        fill.load(_png(photo), hole=hole, max_side=30, name="big.png")  # from the header
    with pytest.raises(edit.TooLarge, match=r"the extended image is 45x24 px; at most 44 px"):
        fill.load(photo, hole=hole, extend="0,0,5,0", max_side=44)
    assert fill.load(photo, hole=hole, max_side=40)[1].image.shape == (24, 40, 3)


def test_inpaint_refuses_a_photo_beyond_the_default_max_side(run_dir, tmp_path, capsys):
    """Issue 29, item 14: `pconv inpaint` had no limit (6000x4000 took 12.2 GB); now the server's
    default, one flag for both commands."""
    parser = cli.build_parser()
    inpaint = parser.parse_args(["inpaint", "--checkpoint", "x", "a.png", "-o", "o.png"])
    assert inpaint.max_side == parser.parse_args(["serve"]).max_side == edit.MAX_SIDE_PX == 4096
    wide = tmp_path / "wide.png"
    Image.new("RGB", (4097, 8)).save(wide)
    mask = tmp_path / "mask.png"
    Image.new("L", (4097, 8), 255).save(mask)
    args = ["inpaint", "--checkpoint", str(run_dir), "--no-progress"]
    assert cli.main([*args, str(wide), str(mask), "-o", str(tmp_path / "o.png")]) == 2
    assert "is 4097x8 px; at most 4096 px on the long side" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_inpaint_max_side_message_and_flag(run_dir, tmp_path, capsys):
    photo, hole = _photo_and_hole(24, 40)
    (tmp_path / "p.png").write_bytes(_png(photo))
    (tmp_path / "m.png").write_bytes(_png(np.where(hole, 255, 0).astype(np.uint8)))
    args = ["inpaint", "--checkpoint", str(run_dir), "--no-progress", str(tmp_path / "p.png")]
    out = str(tmp_path / "o.png")
    assert cli.main([*args, str(tmp_path / "m.png"), "-o", out, "--max-side", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after orbax's log lines
    assert err == (
        f"pconv inpaint: error: image {tmp_path / 'p.png'} is 40x24 px; at most 32 px on the long "
        "side are accepted (--max-side; memory grows with the pixel count)"
    )


def test_a_text_file_named_png_is_named_not_a_buffer(run_dir, tmp_path, capsys):
    """Issue 29, item 15: Pillow's "<_io.BytesIO object at 0x...>" must not reach the user."""
    photo, hole = _photo_and_hole()
    (tmp_path / "notes.png").write_text("not an image at all")
    (tmp_path / "p.png").write_bytes(_png(photo))
    (tmp_path / "m.png").write_bytes(_png(np.where(hole, 255, 0).astype(np.uint8)))
    args = ["inpaint", "--checkpoint", str(run_dir), "--no-progress", "-o", str(tmp_path / "o.png")]
    assert cli.main([*args, str(tmp_path / "notes.png"), str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert f"cannot read image {tmp_path / 'notes.png'}: not an image file" in err
    assert cli.main([*args, str(tmp_path / "p.png"), str(tmp_path / "notes.png")]) == 2
    err += capsys.readouterr().err
    assert f"cannot read mask file {tmp_path / 'notes.png'}: not an image file" in err
    assert "BytesIO" not in err and "<_io" not in err
    with pytest.raises(UserError, match="cannot read image upload.png: not an image file"):
        fill.load(b"text", name="upload.png", hole=hole)
