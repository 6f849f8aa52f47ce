"""`pconv serve`'s request handlers in-process (the server and browser: tests/e2e/test_serve.py)."""

import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

from pconv_jax.cli.serve import NO_HOLE_NOTE, App, build_app, painted_hole
from pconv_jax.inference.inpainter import Inpainter

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "pconv_jax/serve_examples/kodak03.jpg"


@pytest.fixture(scope="module")
def app(run_dir, tmp_path_factory):
    return App(
        Inpainter.from_checkpoint(run_dir), max_side=300, out_dir=tmp_path_factory.mktemp("o")
    )


def _photo():
    return np.asarray(Image.open(EXAMPLE).convert("RGB"))[:120, :160]


def test_page_handler_fills_painted_hole_and_keeps_known_pixels(app):
    photo = _photo()
    layer = np.zeros((*photo.shape[:2], 4), np.uint8)
    layer[40:70, 50:100] = (255, 0, 255, 255)  # a brush stroke
    layer[60:70, 90:100, 3] = 0  # partly erased again
    (before, after), png, telea, note = app.inpaint_page(
        {"background": photo, "layers": [layer], "composite": None}, None, "full", True
    )
    hole = layer[..., 3] > 0
    result = np.asarray(Image.open(png))
    np.testing.assert_array_equal(before, photo)
    np.testing.assert_array_equal(result, after)
    np.testing.assert_array_equal(result[~hole], photo[~hole])  # exact, through the PNG
    assert (result[hole] != photo[hole]).any()
    np.testing.assert_array_equal(telea[~hole], photo[~hole])
    assert f"{int(hole.sum())} hole pixels" in note
    compiled = app.inpainter.num_compilations
    app.inpaint_page({"background": photo, "layers": [layer[::-1]]}, None, "full", False)
    assert app.inpainter.num_compilations == compiled  # same size: same bucket, no new trace


def test_uploaded_mask_joins_the_painted_hole(app, tmp_path):
    photo = _photo()
    mask = np.zeros((60, 80), np.uint8)  # half size, same aspect: resized (nearest)
    mask[10:20, 10:20] = 255  # white = hole
    (_, after), _, _, _ = app.inpaint_page({"background": photo, "layers": []}, mask, "full", False)
    changed = (after != photo).any(-1)
    assert changed[20:40, 20:40].any() and not changed[60:, :].any()


def test_no_hole_returns_the_image_with_a_note_and_size_limit(app, tmp_path):
    photo = _photo()
    (_, after), _, _, note = app.inpaint_page({"background": photo, "layers": []}, None, "full", 0)
    np.testing.assert_array_equal(after, photo)
    assert note == NO_HOLE_NOTE
    big = np.zeros((100, 301, 3), np.uint8)
    with pytest.raises(ValueError, match=r"301x100 px; this server accepts at most 300 px"):
        app.inpaint_page({"background": big, "layers": []}, None, "full", False)
    with pytest.raises(ValueError, match="upload a photo"):
        painted_hole({"background": None, "layers": []})


def test_blocks_declare_the_inpaint_api(app):
    blocks = build_app(app)
    names = [d.api_name for d in blocks.fns.values()]
    assert "inpaint" in names


def test_serve_without_gradio_says_how_to_install(monkeypatch, capsys, run_dir):
    from pconv_jax import cli

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert cli.main(["serve", "--checkpoint", str(run_dir)]) == 2
    assert "pip install 'pconv_jax[serve]'" in capsys.readouterr().err
