"""The REST API in-process (FastAPI's TestClient): results equal the fill flow's, and every error
is JSON {"error": ...} naming what the client sent, never a server path or a Python object."""

import io

import numpy as np
import pytest
from PIL import Image

from pconv_jax.inference import fill
from pconv_jax.inference.inpainter import Inpainter

fastapi = pytest.importorskip("fastapi")  # comes with Gradio: pip install 'pconv_jax[serve]'

from fastapi.testclient import TestClient  # noqa: E402

from pconv_jax.serve import rest  # noqa: E402
from pconv_jax.serve.handlers import App  # noqa: E402


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served(run_dir, tmp_path_factory):
    app = App(Inpainter.load(run_dir), max_side=64, out_dir=tmp_path_factory.mktemp("o"))
    api = fastapi.FastAPI()
    rest.add_routes(api, app)
    return app, TestClient(api)


def _photo_and_mask():
    yy, xx = np.mgrid[:24, :40]
    photo = np.stack([(xx * 5 + yy * (c + 2)) % 256 for c in range(3)], -1).astype(np.uint8)
    hole = np.zeros((24, 40), bool)
    hole[6:14, 10:25] = True
    return photo, hole


def test_result_is_the_fill_flows(served):
    app, client = served
    photo, hole = _photo_and_mask()
    files = {"image": ("p.png", _png(photo)), "mask": ("m.png", _png(np.uint8(hole) * 255))}
    response = client.post("/api/v1/inpaint", files=files)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    expected = fill.fill(app.inpainter, photo, hole=hole).result
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), expected)
    jpeg = client.post("/api/v1/inpaint", files=files, data={"format": "jpeg"})
    assert jpeg.headers["content-type"] == "image/jpeg"


def test_uploads_that_are_not_images_are_named_by_their_file_name(served):
    """Issue 29, item 15: the message showed the server's temporary path (and Pillow's buffer)."""
    _, client = served
    photo, hole = _photo_and_mask()
    text = b"these are notes, not an image"
    cases = [
        ({"image": ("notes.png", text), "mask": ("m.png", _png(np.uint8(hole) * 255))}, "image"),
        ({"image": ("p.png", _png(photo)), "mask": ("notes.png", text)}, "mask file"),
    ]
    for files, what in cases:
        response = client.post("/api/v1/inpaint", files=files)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error == f"cannot read {what} notes.png: not an image file (or a format Pillow " + (
            "cannot decode)"
        )


def test_every_api_error_says_error_not_detail(served):
    """Issue 29, item 15: GET /api/v1/inpaint answered FastAPI's {"detail": ...}."""
    _, client = served
    wrong_method = client.get("/api/v1/inpaint")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json() == {"error": "GET is not allowed on /api/v1/inpaint; use POST"}
    unknown = client.get("/api/v1/inpaint2")
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("no /api/v1/inpaint2 here; the API has /api/v1/")
    big = client.post(
        "/api/v1/inpaint",
        files={"image": ("b.png", _png(np.zeros((8, 65, 3), np.uint8)))},
        data={"extend": "1,1,1,1"},
    )
    assert big.status_code == 413
    assert big.json() == {
        "error": "image b.png is 65x8 px; at most 64 px on the long side are accepted "
        "(--max-side; memory grows with the pixel count)"
    }
    assert client.get("/api/v1/health").json()["status"] == "ok"
