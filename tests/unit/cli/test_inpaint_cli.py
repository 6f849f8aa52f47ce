"""`pconv inpaint` and `pconv export` end to end on a tiny checkpoint; mask and image files."""

import numpy as np
import pytest
from PIL import Image

from pconv_jax import Inpainter, cli
from pconv_jax.images import read_image
from pconv_jax.inference.files import pair_by_stem
from pconv_jax.inference.fill import read_hole
from pconv_jax.store import trained


def _write_pair(folder, stem, height, width, seed=0, mask_folder=None):
    """An RGB photo-like PNG and a white-hole 0/255 mask PNG (`<stem>_mask.png`, or `<stem>.png`
    in `mask_folder`); returns (image path, mask path, known bool [H,W])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    image = np.stack([(xx * 3 + yy * (c + 1)) % 256 for c in range(3)], -1).astype(np.uint8)
    image = np.clip(image.astype(int) + rng.integers(-9, 10, image.shape), 0, 255).astype(np.uint8)
    known = np.ones((height, width), bool)
    known[height // 3 : height // 2, width // 4 : 3 * width // 4] = False
    mask = np.where(known, 0, 255).astype(np.uint8)
    image_path = folder / f"{stem}.png"
    mask_path = mask_folder / f"{stem}.png" if mask_folder else folder / f"{stem}_mask.png"
    for path in (image_path, mask_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(image_path)
    Image.fromarray(mask).save(mask_path)
    return image_path, mask_path, known


def _inpaint(run, *args):
    return cli.main(["inpaint", "--checkpoint", str(run), "--no-progress", *map(str, args)])


def test_cli_odd_size_keeps_known_pixels_and_polarity_flag_agrees(run_dir, tmp_path):
    image_path, mask_path, known = _write_pair(tmp_path, "photo", 301, 257)
    out_white = tmp_path / "white.png"
    assert _inpaint(run_dir, image_path, mask_path, "-o", out_white) == 0
    result = np.asarray(Image.open(out_white))
    original = np.asarray(Image.open(image_path))
    assert result.shape == (301, 257, 3)
    np.testing.assert_array_equal(result[known], original[known])
    assert (result[~known] != original[~known]).any()

    # The same holes drawn black on white, read with --hole-color black: the same output file.
    inverted = tmp_path / "inverted.png"
    Image.fromarray(255 - np.asarray(Image.open(mask_path))).save(inverted)
    out_black = tmp_path / "black.png"
    args = (image_path, inverted, "-o", out_black, "--hole-color", "black")
    assert _inpaint(run_dir, *args) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out_black)), result)


def test_cli_errors_exit_2_with_a_message(run_dir, tmp_path, capsys):
    image_path, mask_path, _ = _write_pair(tmp_path, "a", 40, 48)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert _inpaint(run_dir, corrupt, mask_path, "-o", tmp_path / "o.png") == 2
    assert "cannot read image" in capsys.readouterr().err
    assert _inpaint(run_dir, image_path, mask_path, "-o", tmp_path / "o.tga") == 2
    assert "output must end in .png, .jpg" in capsys.readouterr().err
    other_aspect = tmp_path / "wide_mask.png"
    Image.fromarray(np.zeros((40, 80), np.uint8)).save(other_aspect)
    assert _inpaint(run_dir, image_path, other_aspect, "-o", tmp_path / "o.png") == 2
    assert "different aspect ratios" in capsys.readouterr().err
    all_hole = tmp_path / "all_hole.png"
    Image.fromarray(np.full((40, 48), 255, np.uint8)).save(all_hole)
    assert _inpaint(run_dir, image_path, all_hole, "-o", tmp_path / "o.png") == 2
    assert "no known pixel" in capsys.readouterr().err
    assert _inpaint(run_dir, image_path, "-o", tmp_path / "o.png") == 2
    assert "give a mask, --mask-from-alpha, --mask-color or --extend" in capsys.readouterr().err
    assert _inpaint(tmp_path / "nowhere", image_path, mask_path, "-o", tmp_path / "o.png") == 2


def test_cli_folder_mode_skips_and_reports_bad_files(run_dir, tmp_path, capsys):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    knowns = {}
    for i, (h, w) in enumerate([(40, 48), (33, 57), (64, 20)]):
        knowns[f"img{i}"] = _write_pair(images, f"img{i}", h, w, seed=i, mask_folder=masks)[2]
    # A mask at twice the image size (same aspect): resized with nearest neighbour, noted.
    Image.fromarray(np.asarray(Image.open(masks / "img0.png")).repeat(2, 0).repeat(2, 1)).save(
        masks / "img0.png"
    )
    # No hole: written unchanged. A text file, a corrupt PNG, an image without mask.
    _write_pair(images, "nohole", 20, 20, mask_folder=masks)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(masks / "nohole.png")
    (images / "notes.txt").write_text("not an image")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (masks / "broken.png").write_bytes((masks / "img1.png").read_bytes())
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "lonely.png")

    status = cli.main(
        ["inpaint", "--checkpoint", str(run_dir), "--images", str(images), "--masks", str(masks)]
        + ["-o", str(out), "--batch-size", "8"]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "img0.png",
        "img1.png",
        "img2.png",
        "nohole.png",
    ]
    assert "wrote 4 images" in captured.out and "skipped 3" in captured.out
    assert "notes.txt: not an image file" in captured.err
    assert "broken.png: cannot read image" in captured.err
    assert "lonely.png: no mask with this name" in captured.err
    assert "resized with nearest neighbour" in captured.err
    for stem, known in knowns.items():
        result = np.asarray(Image.open(out / f"{stem}.png"))
        np.testing.assert_array_equal(result[known], read_image(images / f"{stem}.png")[known])
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "nohole.png")), read_image(images / "nohole.png")
    )


def test_read_mask_threshold_polarity_and_nearest_resize(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(np.array([[0, 100, 127, 128, 255]], np.uint8)).save(path)
    # White (hole) = value > 0.5 * 255 = 127.5.
    assert read_hole(path, (1, 5)).tolist() == [[False, False, False, True, True]]
    assert read_hole(path, (1, 5), hole_is_white=False).tolist() == [
        [True, True, True, False, False]
    ]
    assert read_hole(path, (1, 5), threshold=0.0).tolist() == [[False, True, True, True, True]]
    wide = tmp_path / "w.png"
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(wide)
    with pytest.warns(UserWarning, match="nearest neighbour"):
        resized = read_hole(wide, (4, 4))
    expected = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], bool)
    np.testing.assert_array_equal(resized, expected)
    sixteen = tmp_path / "16.png"
    Image.fromarray(np.array([[0, 40000]], np.uint16)).save(sixteen)
    assert read_hole(sixteen, (1, 2)).tolist() == [[False, True]]  # 40000 > 32767.5
    with pytest.raises(ValueError, match="threshold must lie in"):
        read_hole(path, (1, 5), threshold=1.0)


def test_pair_by_stem(tmp_path):
    for name in ("a.png", "b.jpg", "b.png", "c.png", "x.txt"):
        (tmp_path / "i").mkdir(exist_ok=True)
        (tmp_path / "i" / name).write_bytes(b"")
    for name in ("a.png", "c.bmp", "d.png"):
        (tmp_path / "m").mkdir(exist_ok=True)
        (tmp_path / "m" / name).write_bytes(b"")
    pairs, skipped = pair_by_stem(tmp_path / "i", tmp_path / "m")
    assert [(s, i.name, m.name) for s, i, m in pairs] == [
        ("a", "a.png", "a.png"),
        ("c", "c.png", "c.bmp"),
    ]
    reasons = {p.name: r for p, r in skipped}
    assert reasons == {
        "x.txt": "not an image file",
        "b.jpg": "several files named b.*; cannot pair",
        "b.png": "several files named b.*; cannot pair",
        "d.png": "no image with this name",
    }


def test_export_round_trip_gives_identical_outputs(run_dir, tmp_path, capsys):
    out = tmp_path / "export" / "tiny.npz"
    assert cli.main(["export", "--checkpoint", str(run_dir), str(out)]) == 0
    assert "step 7" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as data:
        assert "params/enc1/conv/kernel" in data.files and "batch_stats/dec2/bn/var" in data.files
    cfg = trained.load_export(out).config
    assert cfg.model.num_layers == 4 and cfg.data.image_size == 32

    image_path, mask_path, _ = _write_pair(tmp_path, "p", 45, 70)
    image, known = read_image(image_path), ~read_hole(mask_path, (45, 70))
    from_run = Inpainter.load(run_dir)(image, known)
    from_npz = Inpainter.load(out)(image, known)
    np.testing.assert_array_equal(from_npz, from_run)
    assert _inpaint(out, image_path, mask_path, "-o", tmp_path / "o.png") == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), from_run)

    with np.load(out) as data:
        tampered = {k: data[k] for k in data.files if k != "params/dec1/conv/bias"}
    np.savez(tmp_path / "bad.npz", **tampered)
    with pytest.raises(ValueError, match="lacks params/dec1/conv/bias"):
        trained.load_export(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a pconv_jax export"):
        trained.load_export(tmp_path / "other.npz")
    assert cli.main(["export", "--checkpoint", str(run_dir), str(tmp_path / "x.bin")]) == 2
    assert "the export is a .npz file" in capsys.readouterr().err
