"""Training and `pconv inpaint` decode every file kind identically (issue 11's done-when test).

Each file is fed through the training source (`data.sources.folder_source(...).load`) and
through the reader `pconv inpaint` uses (`images.read_image`); both must equal an expected array
computed here independently of pconv_jax (numpy formulas, or Pillow's own conversion where the
format is lossy).
"""

import io

import numpy as np
import pytest
from PIL import Image

from pconv_jax import images
from pconv_jax.data import sources
from pconv_jax.inference import fill
from pconv_jax.masks import augment as mask_augment


def _gradient(height, width):
    yy, xx = np.mgrid[:height, :width]
    return np.stack([xx * 7 % 256, yy * 5 % 256, (xx + yy) * 3 % 256], -1).astype(np.uint8)


def _exif_rotated_jpeg(path, rgb):
    """A JPEG holding `rgb` rotated by 90 degrees plus EXIF orientation 8 (display: rotate back)."""
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, k=-1)))
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CW to display": undoes the -90 above
    stored.save(path, quality=100, subsampling=0, exif=exif)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{file name: expected uint8 RGB [H, W, 3]} written into one folder."""
    root = tmp_path_factory.mktemp("kinds")
    expected = {}

    rgb = _gradient(12, 20)
    Image.fromarray(rgb).save(root / "rgb8.png")
    expected["rgb8.png"] = rgb

    grey16 = (np.arange(12 * 20).reshape(12, 20) * 271).astype(np.uint16)
    Image.fromarray(grey16).save(root / "grey16.png")
    expected["grey16.png"] = np.repeat((grey16.astype(np.int64) * 255 // 65535)[..., None], 3, -1)

    rgba = np.concatenate([rgb, np.full((12, 20, 1), 64, np.uint8)], -1)
    rgba[:, :10, 3] = 255
    Image.fromarray(rgba).save(root / "rgba.png")
    alpha = rgba[..., 3:].astype(np.int64)  # alpha over white, rounded: (c*a + 255*(255-a)) / 255
    expected["rgba.png"] = ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)

    grey = rgb[..., 1]
    Image.fromarray(grey).save(root / "grey.png")
    expected["grey.png"] = np.repeat(grey[..., None], 3, -1)

    # CMYK JPEG: lossy, so the expectation is Pillow's own decode + CMYK->RGB conversion.
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(root / "cmyk.jpg", quality=100)
    with Image.open(root / "cmyk.jpg") as im:
        assert im.mode == "CMYK"
        expected["cmyk.jpg"] = np.asarray(im.convert("RGB"))

    _exif_rotated_jpeg(root / "exif.jpg", rgb)
    with Image.open(root / "exif.jpg") as im:  # stored sideways: 20 high, 12 wide
        assert im.size == (12, 20)
        expected["exif.jpg"] = np.rot90(np.asarray(im.convert("RGB")), k=1)
    return root, expected


def test_training_source_and_inpaint_reader_decode_identically(files):
    root, expected = files
    source = sources.folder_source(root)
    assert sorted(source.name(i) for i in range(len(source))) == sorted(
        name.split(".")[0] for name in expected
    )
    for index in range(len(source)):
        path = source.files[index]
        trained = source.load(index)
        inferred = images.read_image(path)
        assert trained.dtype == inferred.dtype == np.uint8, path.name
        np.testing.assert_array_equal(trained, inferred, err_msg=path.name)
        np.testing.assert_array_equal(trained, expected[path.name], err_msg=path.name)


def test_exif_rotation_is_applied_not_just_kept(files):
    root, expected = files
    decoded = images.read_image(root / "exif.jpg")
    assert decoded.shape == (12, 20, 3)  # displayed orientation, not the stored 20x12
    # Lossy but close to the original gradient (a wrong rotation would be far off).
    assert np.abs(decoded.astype(int) - _gradient(12, 20)).mean() < 3


def test_masks_read_identically_for_training_and_inference(tmp_path):
    holes = np.zeros((16, 16), bool)
    holes[3:9, 4:12] = True
    # 16-bit, RGBA (opaque) and 8-bit grey files of the same holes, white = hole.
    Image.fromarray(np.where(holes, 50000, 1000).astype(np.uint16)).save(tmp_path / "a.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = np.where(holes, 255, 0)[..., None]
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "b.png")
    Image.fromarray(np.where(holes, 200, 30).astype(np.uint8)).save(tmp_path / "c.png")
    augmenter = mask_augment.RawMaskAugmenter(tmp_path, 16, threshold=0.5, dilation=(0, 0))
    for path in sorted(tmp_path.iterdir()):
        train_holes = images.read_holes(path, None, augmenter.threshold, augmenter.hole_is_white)
        hole = fill.read_hole(path, (16, 16))
        np.testing.assert_array_equal(train_holes, holes, err_msg=path.name)
        np.testing.assert_array_equal(hole, holes, err_msg=path.name)
        np.testing.assert_array_equal(images.read_mask(path)[..., 0], (~holes).astype(np.float32))


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="image file not found"):
        images.read_image(tmp_path / "absent.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(ValueError, match="cannot read image .*bad.jpg"):
        images.read_image(tmp_path / "bad.jpg")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(buffer, format="PNG")
    (tmp_path / "ok.png").write_bytes(buffer.getvalue())
    assert images.read_image(tmp_path / "ok.png").shape == (2, 2, 3)
