"""`pconv serve`: request handlers, the `inpaint` API through gradio_client, a real browser."""

import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from pconv_jax.inpaint import Inpainter
from pconv_jax.serve import NO_HOLE_NOTE, App, build_app, painted_hole
from pconv_jax.writers import save_png

ROOT = pathlib.Path(__file__).resolve().parents[1]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(run_dir):
    """A real `pconv serve` (python -m pconv_jax serve) on the tiny checkpoint."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("XLA_FLAGS", None)
    command = [sys.executable, "-m", "pconv_jax", "serve", "--checkpoint", str(run_dir)]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--max-side", "1024"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"pconv serve did not start: {proc.communicate()[0][-3000:]}")
            time.sleep(1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_inpaint_endpoint_with_gradio_client(server, tmp_path):
    from gradio_client import Client, handle_file

    photo = _photo()
    hole = np.zeros(photo.shape[:2], bool)
    hole[30:60, 40:90] = True
    save_png(photo, tmp_path / "photo.png")
    save_png(np.where(hole, 255, 0).astype(np.uint8), tmp_path / "mask.png")
    client = Client(server, verbose=False)
    path = client.predict(
        handle_file(str(tmp_path / "photo.png")),
        handle_file(str(tmp_path / "mask.png")),
        api_name="/inpaint",
    )
    result = np.asarray(Image.open(path).convert("RGB"))
    assert result.shape == photo.shape
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    assert (result[hole] != photo[hole]).any()
