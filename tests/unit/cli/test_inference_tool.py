"""`pconv inpaint` as a tool, on real photos (Kodak, ImageNet) and NVIDIA masks: one mask over a
folder, alpha and colour masks, mask operations, outpainting, formats, metadata, 16-bit."""

import io
import pathlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms
from scipy import ndimage

from pconv_jax import cli
from pconv_jax.images import read_holes, read_image, read_photo
from pconv_jax.inference import edit, output
from pconv_jax.inference.inpainter import Inpainter
from pconv_jax.inference.mask_ops import MaskOps

from conftest import shared_path


def _inpaint(run, *args):
    command = ["inpaint", "--checkpoint", str(run), "--no-progress", "--no-compile-cache"]
    return cli.main([*command, *map(str, args)])


def _nvidia_hole(index: int, size_hw) -> np.ndarray:
    """An NVIDIA test mask (bool, True = hole) squeezed to `size_hw` (nearest); from the 500th
    file on (sorted by name), whose holes cover about 14-28% of the mask."""
    path = sorted(shared_path("data", "nvidia_test_masks").glob("*.png"))[500 + index]
    hole = read_holes(path).astype(np.uint8)
    hole = cv2.resize(hole, size_hw[::-1], interpolation=cv2.INTER_NEAREST) > 0
    assert hole.shape == tuple(size_hw) and 0.02 < hole.mean() < 0.5
    return hole


def _kodak(name="01.png", crop=(160, 224)) -> np.ndarray:
    return read_image(shared_path("data", "kodak", name))[: crop[0], : crop[1]]


def _save_mask(path, hole):
    Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)).save(path)


def _nearest(hole, size_hw):
    """Nearest resize by index arithmetic (row i takes source row floor(i * h / H))."""
    (h, w), (height, width) = hole.shape, size_hw
    return hole[(np.arange(height) * h) // height][:, (np.arange(width) * w) // width]


def test_one_mask_over_a_folder_of_differently_sized_photos(run_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    imagenet = shared_path("data", "imagenet_sample")
    sources = {
        "kodak01.png": shared_path("data", "kodak", "01.png"),  # 768x512 (WxH)
        "hen.jpg": imagenet / "n01514859_hen.JPEG",  # 500x333
        "chickadee.jpg": imagenet / "n01592084_chickadee.JPEG",  # 500x334
        "kodak04.png": shared_path("data", "kodak", "04.png"),  # 512x768: other aspect
    }
    for name, source in sources.items():
        (folder / name).write_bytes(source.read_bytes())
    (folder / "readme.txt").write_text("not an image")
    hole = _nvidia_hole(3, (256, 384))  # 3:2 like the landscape photos
    _save_mask(tmp_path / "mask.png", hole)
    out = tmp_path / "out"
    assert _inpaint(run_dir, "--images", folder, "--mask", tmp_path / "mask.png", "-o", out) == 1
    captured = capsys.readouterr()
    assert "wrote 3 images" in captured.out and "filled 3" in captured.out
    assert "skipped 2" in captured.out
    assert "kodak04.png: mask" in captured.err and "different aspect ratios" in captured.err
    assert "readme.txt: not an image file" in captured.err
    for name in ("kodak01.png", "hen.jpg", "chickadee.jpg"):
        photo = read_image(folder / name)
        result = read_image(out / f"{pathlib.Path(name).stem}.png")
        expected = _nearest(hole, photo.shape[:2])
        assert result.shape == photo.shape
        np.testing.assert_array_equal(result[~expected], photo[~expected])
        assert (result[expected] != photo[expected]).any(-1).mean() > 0.5


def test_alpha_and_colour_masks_equal_the_same_hole_given_as_a_file(run_dir, tmp_path):
    photo = _kodak()
    hole = _nvidia_hole(10, photo.shape[:2])
    _save_mask(tmp_path / "mask.png", hole)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    rgba = np.dstack([photo, np.where(hole, 0, 255).astype(np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    scribble = photo.copy()
    scribble[hole] = (1, 254, 3)
    assert not ((photo == (1, 254, 3)).all(-1)).any()  # the colour is not in the photo
    Image.fromarray(scribble).save(tmp_path / "scribble.png")

    runs = {
        "file": (tmp_path / "photo.png", tmp_path / "mask.png"),
        "alpha": (tmp_path / "alpha.png", "--mask-from-alpha"),
        "colour": (tmp_path / "scribble.png", "--mask-color", "1,254,3"),
    }
    results = {}
    for name, args in runs.items():
        # Not {name}.png: alpha.png is an input, and the output must not replace it.
        assert _inpaint(run_dir, *args, "-o", tmp_path / f"{name}_filled.png") == 0
        results[name] = read_image(tmp_path / f"{name}_filled.png")
    np.testing.assert_array_equal(results["file"][~hole], photo[~hole])
    np.testing.assert_array_equal(results["alpha"], results["file"])
    np.testing.assert_array_equal(results["colour"], results["file"])


def test_dilate_and_feather_blend_exactly_as_documented(run_dir, tmp_path):
    photo = _kodak("03.png")
    hole = _nvidia_hole(20, photo.shape[:2])
    Image.fromarray(photo).save(tmp_path / "photo.png")
    _save_mask(tmp_path / "mask.png", hole)
    out = tmp_path / "out.png"
    args = (tmp_path / "photo.png", tmp_path / "mask.png", "-o", out)
    assert _inpaint(run_dir, *args, "--dilate", 3, "--feather", 5) == 0
    result = read_image(out)

    # Independently: scipy's Euclidean distances; the network sees the hole grown by 3 + 5.
    grown = ndimage.distance_transform_edt(~hole) <= 3
    distance = ndimage.distance_transform_edt(~grown)
    net_hole = distance <= 5
    fill = Inpainter.load(run_dir)(photo, ~net_hole).astype(np.float64)
    weight = np.clip((6 - distance) / 6, 0, 1)[..., None] * net_hole[..., None]
    expected = np.round(weight * fill + (1 - weight) * photo)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result[~net_hole], photo[~net_hole])  # exact outside the band
    np.testing.assert_array_equal(result[grown], fill[grown].astype(np.uint8))
    band = net_hole & ~grown
    assert (result[band] != photo[band]).any() and (result[band] != fill[band]).any()


def test_extend_outpaints_with_old_pixels_bit_exact(run_dir, tmp_path):
    source = shared_path("data", "imagenet_sample", "n01514859_hen.JPEG")
    photo = read_image(source)  # 333x500 (HxW)
    out = tmp_path / "wide.png"
    assert _inpaint(run_dir, source, "--extend", "20,8,10%,0", "-o", out) == 0
    result = read_image(out)
    assert result.shape == (333 + 8, 20 + 500 + 50, 3)
    np.testing.assert_array_equal(result[8:, 20:520], photo)
    border = np.ones(result.shape[:2], bool)
    border[8:, 20:520] = False
    assert result[border].std() > 1  # filled, not a constant padding

    # The same through the Python API, with a hole too: the hole inside, the border outside.
    hole = np.zeros(photo.shape[:2], bool)
    hole[100:140, 200:260] = True
    inpainter = Inpainter.load(run_dir)
    api = edit.inpaint(inpainter, photo, hole, extend="0,0,0,16")
    assert api.shape == (349, 500, 3)
    np.testing.assert_array_equal(api[:333][~hole], photo[~hole])


def _photo_with_metadata(tmp_path) -> tuple[pathlib.Path, np.ndarray, bytes]:
    """A JPEG of a Kodak crop stored sideways (EXIF orientation 6), with an ICC profile, a
    camera make and 300 dpi; returns (path, upright pixels as decoded, ICC bytes)."""
    upright = _kodak("05.png", (128, 192))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    stored = Image.fromarray(np.rot90(upright, k=1))  # orientation 6 turns it back clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "pconv test camera"
    path = tmp_path / "camera.jpg"
    stored.save(path, quality=98, exif=exif.tobytes(), icc_profile=icc, dpi=(300, 300))
    return path, read_image(path), icc


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_formats_keep_exif_icc_and_dpi(run_dir, tmp_path, suffix):
    path, upright, icc = _photo_with_metadata(tmp_path)
    assert upright.shape == (128, 192, 3)
    hole = np.zeros(upright.shape[:2], bool)
    hole[40:80, 60:120] = True
    _save_mask(tmp_path / "mask.png", hole)
    out = tmp_path / f"out{suffix}"
    assert _inpaint(run_dir, path, tmp_path / "mask.png", "-o", out, "--quality", 90) == 0
    with Image.open(out) as written:
        assert written.format == output.FORMATS[suffix]
        assert written.size == (192, 128)  # upright
        assert written.info.get("icc_profile") == icc
        assert written.getexif()[0x010F] == "pconv test camera"
        assert written.getexif().get(0x0112, 1) == 1
        if suffix != ".webp":  # WebP has no resolution field
            assert tuple(round(v) for v in written.info["dpi"]) == (300, 300)
        pixels = np.asarray(written.convert("RGB"))
    if suffix == ".png":
        np.testing.assert_array_equal(pixels[~hole], upright[~hole])
    else:
        error = pixels[~hole].astype(float) - upright[~hole]
        assert 10 * np.log10(255**2 / np.mean(error**2)) > 30  # lossy at quality 90


def test_sixteen_bit_png_stays_sixteen_bit_with_known_pixels_exact(run_dir, tmp_path):
    rng = np.random.default_rng(0)
    photo = _kodak("07.png", (96, 128)).astype(np.uint16) * 257 + rng.integers(0, 200, (96, 128, 3))
    photo = photo.astype(np.uint16)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    ok, png = cv2.imencode(".png", photo[..., ::-1])
    (tmp_path / "deep.png").write_bytes(
        output.png_with_metadata(png.tobytes(), icc=icc, dpi=(72, 72))
    )
    hole = np.zeros((96, 128), bool)
    hole[30:60, 40:90] = True
    _save_mask(tmp_path / "mask.png", hole)
    out = tmp_path / "out.png"
    assert _inpaint(run_dir, tmp_path / "deep.png", tmp_path / "mask.png", "-o", out) == 0
    result = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert result.dtype == np.uint16 and result.shape == photo.shape
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    assert (result[hole] % 257 != 0).any()  # the fill uses all 16 bits, not 8-bit values * 257
    with Image.open(out) as written:
        assert written.info["icc_profile"] == icc
        assert tuple(round(v) for v in written.info["dpi"]) == (72, 72)
    # The 8-bit rendering of the same file follows the 8-bit rule of images.to_rgb.
    np.testing.assert_array_equal(read_photo(out).rgb, (result.astype(np.uint32) * 255 // 65535))


def test_sixteen_bit_orientation_follows_pillows_rule(tmp_path):
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    shallow = (deep.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    ok, png = cv2.imencode(".png", deep[..., ::-1])
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = output.png_with_metadata(png.tobytes(), exif=exif.tobytes())
        (tmp_path / "d.png").write_bytes(data)
        Image.fromarray(shallow).save(tmp_path / "s.png", exif=exif.tobytes())
        photo = read_photo(tmp_path / "d.png")
        expected = read_image(tmp_path / "s.png")  # Pillow's exif_transpose on 8-bit pixels
        np.testing.assert_array_equal(photo.rgb, expected, err_msg=str(orientation))
        with Image.open(io.BytesIO(data)) as image:
            assert image.getexif()[0x0112] == orientation


def test_concat_and_errors(run_dir, tmp_path, capsys):
    photo = _kodak("11.png", (96, 128))
    hole = _nvidia_hole(30, (96, 128))
    Image.fromarray(photo).save(tmp_path / "p.png")
    _save_mask(tmp_path / "m.png", hole)
    assert _inpaint(run_dir, tmp_path / "p.png", tmp_path / "m.png", "-o", tmp_path / "r.png") == 0
    args = (tmp_path / "p.png", "--mask", tmp_path / "m.png", "-o", tmp_path / "c.png", "--concat")
    assert _inpaint(run_dir, *args) == 0
    panels, result = read_image(tmp_path / "c.png"), read_image(tmp_path / "r.png")
    assert panels.shape == (96, 3 * 128 + 8, 3)
    np.testing.assert_array_equal(panels[:, :128], photo)
    np.testing.assert_array_equal(panels[:, -128:], result)
    tinted = np.round(0.5 * photo[hole] + 0.5 * np.array([255, 0, 255])).astype(np.uint8)
    np.testing.assert_array_equal(panels[:, 132:260][hole], tinted)
    np.testing.assert_array_equal(panels[:, 132:260][~hole], photo[~hole])

    capsys.readouterr()
    assert _inpaint(run_dir, tmp_path / "p.png", tmp_path / "m.png", "-o", tmp_path / "r.gif") == 2
    assert "output must end in .png, .jpg, .jpeg, .webp" in capsys.readouterr().err
    _save_mask(tmp_path / "wide.png", np.zeros((50, 128), bool))
    assert (
        _inpaint(run_dir, tmp_path / "p.png", tmp_path / "wide.png", "-o", tmp_path / "x.png") == 2
    )
    assert "different aspect ratios" in capsys.readouterr().err
    assert _inpaint(run_dir, tmp_path / "p.png", "--mask-from-alpha", "-o", tmp_path / "x.png") == 2
    assert "has no alpha channel" in capsys.readouterr().err
    assert _inpaint(run_dir, tmp_path / "p.png", "-o", tmp_path / "x.png") == 2
    assert "give a mask, --mask-from-alpha, --mask-color or --extend" in capsys.readouterr().err
    args = (tmp_path / "p.png", tmp_path / "m.png", "--invert", "--dilate", 200, "-o", "x.png")
    assert _inpaint(run_dir, *args) == 2
    assert "no known pixel" in capsys.readouterr().err


def test_python_api_wrapper_matches_the_cli_order(run_dir):
    photo = _kodak("12.png", (96, 128))
    hole = _nvidia_hole(40, (96, 128))
    inpainter = Inpainter.load(run_dir)
    ops = MaskOps(invert=False, dilate=2, erode=1, feather=0)
    result = edit.inpaint(inpainter, photo, hole, ops=ops)
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)  # the disk of radius 1
    grown = ndimage.distance_transform_edt(~hole) <= 2
    closed = ndimage.binary_erosion(grown, cross, border_value=1)
    np.testing.assert_array_equal(result[~closed], photo[~closed])
    np.testing.assert_array_equal(result, inpainter(photo, ~closed))
