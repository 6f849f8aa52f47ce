"""`pconv convert` is exact: a converted checkpoint inpaints as the source project's own code does.

Without the real files: tests/torch_ref/{mmagic_2020,naoto0804}.py re-implement each source's
model and inference path (written from reading its code); random weights and random BN running
statistics are saved in exactly the real file's structure (top-level dict, key names, shapes,
dtypes, `meta` / `n_iter` / `optimizer` entries, a legacy non-zip pickle, naoto0804's Adam state
tagged for CUDA); the file is converted with the `pconv convert` command and a Kodak photo with
an NVIDIA test mask (white = hole) is inpainted with `pconv inpaint`, through JAX and through
`pconv export --format onnx`, and through `pconv serve`'s `inpaint` API handler. Expected
values: the source's own inference on the same pixels (independent computation); allowed
difference: 2/255 in the holes (float32 summation order and the sources' own rounding), none
outside.

The commands are those of docs/pretrained.md. Real depth (7 levels, 256x256 and 256x384).
"""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from pconv_jax import Inpainter, cli
from pconv_jax.serve.handlers import App
from pconv_jax.store import trained
from pconv_jax.store.converters import convert

from conftest import shared_path
from helpers.torch_sources import write_source_file
from torch_ref import mmagic_2020, naoto0804

SHAPES = ((256, 256), (256, 384))  # (H, W): square, and non-square (both divisible by 2**7)
MASK = "05000.png"  # NVIDIA test mask 5000: 20-30 % holes, no-border half


REFERENCE = {"mmagic": mmagic_2020.inpaint, "naoto0804": naoto0804.inpaint}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """{(H, W): (photo path, mask path, rgb uint8, holes bool)} cut from Kodak 01 and mask 5000."""
    folder = tmp_path_factory.mktemp("photos")
    rgb_full = np.asarray(Image.open(shared_path("data", "kodak", "01.png")).convert("RGB"))
    holes_full = np.asarray(Image.open(shared_path("data", "nvidia_test_masks", MASK))) > 127
    out = {}
    for h, w in SHAPES:
        rgb, holes = rgb_full[:h, :w], holes_full[:h, :w]
        photo, mask = folder / f"photo_{h}x{w}.png", folder / f"mask_{h}x{w}.png"
        Image.fromarray(rgb).save(photo)
        Image.fromarray(np.where(holes, 255, 0).astype(np.uint8)).save(mask)
        out[(h, w)] = (photo, mask, rgb, holes)
    return out


def assert_matches_source(ours: np.ndarray, source: np.ndarray, holes: np.ndarray) -> None:
    assert ours.shape == source.shape and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours[~holes], source[~holes])
    diff = np.abs(ours.astype(int) - source.astype(int))[holes]
    assert diff.max() <= 2, f"hole pixels differ by up to {diff.max()}/255"
    # The comparison is not vacuous: most hole values lie strictly inside the pixel range.
    inside = (source[holes] > 0) & (source[holes] < 255)
    assert inside.mean() > 0.3 and source[holes].std() > 20


@pytest.mark.parametrize("source", ["mmagic", "naoto0804"])
def test_convert_inpaint_serve_and_onnx_match_the_source(source, photos, tmp_path, capsys):
    src = tmp_path / {"mmagic": "pconv_mmagic.pth", "naoto0804": "1000000.pth"}[source]
    model = write_source_file(source, src, num_layers=7)
    out = tmp_path / "places_pconv.npz"
    assert cli.main(["convert", "--from", source, str(src), str(out)]) == 0
    onnx_path = tmp_path / "places_pconv.onnx"
    assert cli.main(["export", "--format", "onnx", "--checkpoint", str(out), str(onnx_path)]) == 0
    for checkpoint in (out, onnx_path):
        for h, w in SHAPES:
            photo, mask, rgb, holes = photos[(h, w)]
            filled = tmp_path / f"filled_{checkpoint.suffix[1:]}_{h}x{w}.png"
            args = ["inpaint", "--checkpoint", str(checkpoint), str(photo), str(mask)]
            assert cli.main([*args, "-o", str(filled)]) == 0
            ours = np.asarray(Image.open(filled).convert("RGB"))
            assert_matches_source(ours, REFERENCE[source](model, rgb, holes), holes)
    # `pconv serve`'s `inpaint` API (its request handler, without the web server)
    photo, mask, rgb, holes = photos[SHAPES[0]]
    app = App(Inpainter.load(out), out_dir=tmp_path / "served")
    served = np.asarray(Image.open(app.inpaint_files(str(photo), str(mask))).convert("RGB"))
    assert_matches_source(served, REFERENCE[source](model, rgb, holes), holes)
    capsys.readouterr()


@pytest.mark.parametrize("source", ["mmagic", "naoto0804"])
def test_model_card_inside_and_beside(source, tmp_path):
    src = tmp_path / "weights.pth"
    write_source_file(source, src, num_layers=4)
    done = convert.convert(source, src, tmp_path / "model.npz")
    with np.load(done.path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
    card = meta["card"]
    assert card["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert card["source_file"] == "weights.pth"
    assert card["licence"].startswith({"mmagic": "Apache-2.0", "naoto0804": "MIT"}[source])
    # iterations: what the file says (mmagic meta.iter, naoto0804 n_iter), also the export's step
    assert card["iterations"] == meta["step"] == {"mmagic": 500000, "naoto0804": 1000000}[source]
    # Counted by hand at depth 4: 8 convs (kernels, biases in enc1/dec1 or dec1 only), 6 BN
    # layers (scale, bias, mean, var); left out: 8 mask kernels + 6 BN counters; mmagic also
    # holds its perceptual loss's VGG16 (7 convs x 2 + mean + std).
    expected = {"mmagic": (8 + 2 + 6 * 4, 14, 16), "naoto0804": (8 + 1 + 6 * 4, 14, 0)}[source]
    counts = card["tensors"]
    assert (counts["mapped"], counts["checked_and_left_out"], counts["ignored_by_prefix"]) == (
        expected
    )
    assert len(trained.load_export(done.path).variables["batch_stats"]) == 6
    assert card["conversion_command"] == f"pconv convert --from {source} weights.pth OUT.npz"
    text = done.card_path.read_text()
    assert done.card_path.name == "model.md" and card["source_sha256"] in text


def test_published_name_with_a_wrong_checksum_warns(tmp_path):
    """openmmlab names a published file after the first 8 hex digits of its SHA-256; a random
    file under the Places name cannot match, and the card says so."""
    src = tmp_path / "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth"
    write_source_file("mmagic", src, num_layers=4)
    with pytest.warns(convert.ChecksumWarning, match="1ffed0e8"):
        done = convert.convert("mmagic", src, tmp_path / "places_pconv.npz")
    card = done.card
    assert card["sha256_matches_file_name"] is False
    assert card["training_data"] == "Places365-Challenge"
    assert card["published_numbers"]["psnr"] == 22.762
