"""`pconv serve`: request handlers, the `inpaint` API through gradio_client, a real browser."""

import dataclasses
import functools
import io
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from pconv_jax.eval.baselines import opencv_inpaint
from pconv_jax.images import save_png
from pconv_jax.inference.inpainter import Inpainter
from pconv_jax.serve.handlers import NO_HOLE_NOTE, App, painted_hole
from pconv_jax.serve.page import build_app

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pconv_jax/serve/examples/kodak03.jpg"


@pytest.fixture(scope="module")
def app(run_dir, tmp_path_factory):
    telea = functools.partial(opencv_inpaint, method="telea")  # as `pconv serve` gives it
    out_dir = tmp_path_factory.mktemp("o")
    return App(Inpainter.load(run_dir), max_side=300, out_dir=out_dir, telea=telea)


def _photo():
    return np.asarray(Image.open(EXAMPLE).convert("RGB"))[:120, :160]


def test_page_handler_fills_painted_hole_and_keeps_known_pixels(app):
    photo = _photo()
    layer = np.zeros((*photo.shape[:2], 4), np.uint8)
    layer[40:70, 50:100] = (255, 0, 255, 255)  # a brush stroke
    layer[60:70, 90:100, 3] = 0  # partly erased again
    (before, after), png, telea, note, mask_png, _ = app.inpaint_page(
        {"background": photo, "layers": [layer], "composite": None}, None, "full", True
    )
    np.testing.assert_array_equal(np.asarray(Image.open(mask_png)) == 255, layer[..., 3] > 0)
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
    (_, after), *_ = app.inpaint_page({"background": photo, "layers": []}, mask, "full", False)
    changed = (after != photo).any(-1)
    assert changed[20:40, 20:40].any() and not changed[60:, :].any()


def test_no_hole_returns_the_image_with_a_note_and_size_limit(app, tmp_path):
    photo = _photo()
    (_, after), _, _, note, _, _ = app.inpaint_page(
        {"background": photo, "layers": []}, None, "full", 0
    )
    np.testing.assert_array_equal(after, photo)
    assert note == NO_HOLE_NOTE
    big = np.zeros((100, 301, 3), np.uint8)
    with pytest.raises(ValueError, match=r"301x100 px; at most 300 px on the long side"):
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Server:
    url: str
    log: pathlib.Path  # the server's stdout and stderr

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    """A real `pconv serve` (python -m pconv_jax serve) on the tiny checkpoint.

    Its output goes to a file (a pipe nobody reads would stall the server once full); tests quote
    the file's tail when they fail.
    """
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("XLA_FLAGS", None)
    command = [sys.executable, "-m", "pconv_jax", "serve", "--checkpoint", str(run_dir)]
    served = Server(f"http://127.0.0.1:{port}/", tmp_path_factory.mktemp("serve") / "server.log")
    with open(served.log, "w") as log:
        proc = subprocess.Popen(
            [*command, "--port", str(port), "--max-side", "1024"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(served.url, timeout=5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"pconv serve did not start: {served.log_tail()}")
            time.sleep(1)
    yield served
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
    client = Client(server.url, verbose=False)
    path = client.predict(
        handle_file(str(tmp_path / "photo.png")),
        handle_file(str(tmp_path / "mask.png")),
        api_name="/inpaint",
    )
    result = np.asarray(Image.open(path).convert("RGB"))
    assert result.shape == photo.shape
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    assert (result[hole] != photo[hole]).any()

    # Concurrent users: three jobs at once are queued and all answered, identically.
    jobs = [
        client.submit(
            handle_file(str(tmp_path / "photo.png")),
            handle_file(str(tmp_path / "mask.png")),
            api_name="/inpaint",
        )
        for _ in range(3)
    ]
    for job in jobs:
        np.testing.assert_array_equal(np.asarray(Image.open(job.result(timeout=120))), result)

    # Too large: a clear message, and the server keeps serving.
    save_png(np.zeros((10, 1025, 3), np.uint8), tmp_path / "wide.png")
    save_png(np.zeros((10, 1025), np.uint8), tmp_path / "wide_mask.png")
    with pytest.raises(Exception, match="at most 1024 px on the long side"):
        client.predict(
            handle_file(str(tmp_path / "wide.png")),
            handle_file(str(tmp_path / "wide_mask.png")),
            api_name="/inpaint",
        )
    assert client.predict(
        handle_file(str(tmp_path / "photo.png")),
        handle_file(str(tmp_path / "mask.png")),
        api_name="/inpaint",
    )


def _chromium():
    """A headless Chromium driven by Debian's chromedriver; fails in CI when they are absent."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        message = "Chromium and chromedriver are needed: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1150",
        f"--user-data-dir={tempfile.mkdtemp(prefix='pconv_chromium_')}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


def _wait_for(browser, server, what: str, condition, seconds: float = 180):
    """`condition(browser)` once truthy; a timeout fails naming `what`, with screenshot and log.

    An element the page re-renders between finding it and reading it (Gradio replaces the file
    links when a result arrives) raises StaleElementReferenceException: that poll is retried.
    """
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        wait = WebDriverWait(browser, seconds, ignored_exceptions=(StaleElementReferenceException,))
        return wait.until(condition)
    except TimeoutException:
        shot = server.log.with_name(f"timeout-{time.monotonic_ns()}.png")
        browser.save_screenshot(str(shot))
        pytest.fail(f"no {what} after {seconds} s (page: {shot}); server log: {server.log_tail()}")


def _result_link_or_error(browser, server):
    """The result file's link once the page shows it; fails at once if the page shows an error."""
    from selenium.webdriver.common.by import By

    links = browser.find_elements(By.CSS_SELECTOR, "#result-file a[href]")
    if links:
        return links[0]
    toasts = [t.text for t in browser.find_elements(By.CSS_SELECTOR, ".toast-body") if t.text]
    if toasts:
        pytest.fail(f"the page shows an error: {toasts}; server log: {server.log_tail()}")
    return None


@pytest.mark.slow
def test_browser_paint_a_stroke_and_inpaint(server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    photo = np.asarray(Image.open(ROOT / "pconv_jax/serve/examples/kodak23.jpg").convert("RGB"))
    save_png(photo, tmp_path / "photo.png")
    height, width = photo.shape[:2]
    browser = _chromium()
    try:
        browser.get(server.url)
        upload = _wait_for(
            browser,
            server,
            "upload input on the page",
            lambda b: b.find_element(By.CSS_SELECTOR, "#editor input[type=file]"),
        )
        zoom = _wait_for(  # rendered a moment after the upload input on a loaded machine
            browser,
            server,
            "the editor's zoom",
            lambda b: b.find_element(By.CSS_SELECTOR, "#editor .zoom-number"),
        )
        empty_zoom = zoom.text  # the empty canvas's zoom, e.g. "36%"
        upload.send_keys(str(tmp_path / "photo.png"))
        # Once the photo is on the canvas the editor zooms to fit it (e.g. "113%"), brush active;
        # the brush button is there from the start, so it says nothing about the upload.
        _wait_for(
            browser, server, "photo on the canvas", lambda b: zoom.text not in ("", empty_zoom)
        )
        time.sleep(1)
        canvas = next(
            c for c in browser.find_elements(By.CSS_SELECTOR, "#editor canvas") if c.is_displayed()
        )
        stroke = ActionChains(browser).move_to_element_with_offset(canvas, -60, 0).click_and_hold()
        for dx, dy in ((30, 4), (30, -4), (30, 4), (30, -4)):
            stroke = stroke.move_by_offset(dx, dy)
        stroke.release().perform()
        browser.find_element(By.CSS_SELECTOR, "#use-telea input[type=checkbox]").click()
        browser.find_element(By.ID, "inpaint-button").click()
        link = _wait_for(
            browser, server, "result file link", lambda b: _result_link_or_error(b, server)
        )
        with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as response:
            result = np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB"))
        _wait_for(
            browser, server, "Telea image", lambda b: b.find_element(By.CSS_SELECTOR, "#telea img")
        )
        time.sleep(1)
        shot = os.environ.get("PCONV_SCREENSHOT") or str(tmp_path / "page.png")
        browser.save_screenshot(shot)
    finally:
        browser.quit()
    assert result.shape == photo.shape
    changed = (result != photo).any(-1)
    # The stroke runs 120 CSS px through the canvas centre, where the editor centres the photo
    # (at this window size it shows the 384x256 photo at 113%); with the brush's width it lies
    # within this band around the photo's centre, and covers the band's middle.
    band = np.zeros_like(changed)
    band[height // 2 - 50 : height // 2 + 50, width // 2 - 130 : width // 2 + 130] = True
    np.testing.assert_array_equal(result[~band], photo[~band])  # outside: bit for bit
    assert changed[height // 2 - 3 : height // 2 + 3, width // 2 - 40 : width // 2 + 40].all()
    assert 0.01 < changed.mean() < 0.3


# --- The REST API (/api/v1), through the same real server process -------------------------


def _photo_and_mask_files(tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """photo.png (a 120x160 Kodak crop) and mask.png (white = hole) in `tmp_path`."""
    photo = _photo()
    hole = np.zeros(photo.shape[:2], bool)
    hole[30:60, 40:90] = True
    save_png(photo, tmp_path / "photo.png")
    save_png(np.where(hole, 255, 0).astype(np.uint8), tmp_path / "mask.png")
    return photo, hole


def _post(server, files: dict, data: dict | None = None, timeout: float = 120):
    import httpx

    return httpx.post(f"{server.url}api/v1/inpaint", files=files, data=data, timeout=timeout)


def _png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


@pytest.mark.slow
def test_rest_curl_line_from_the_docs_works_as_written(server, tmp_path):
    photo, hole = _photo_and_mask_files(tmp_path)
    port = server.url.rstrip("/").rsplit(":", 1)[1]
    docs = (ROOT / "docs/inference-tool.md").read_text()
    line = next(t for t in docs.splitlines() if t.startswith("curl -F image=@photo.png"))
    assert line == (
        "curl -F image=@photo.png -F mask=@mask.png http://127.0.0.1:7860/api/v1/inpaint -o out.png"
    )
    line = line.replace(":7860/", f":{port}/")  # the test server's port
    if shutil.which("curl"):
        done = subprocess.run(line.split(), cwd=tmp_path, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        result = np.asarray(Image.open(tmp_path / "out.png"))
    else:  # the same multipart request
        with open(tmp_path / "photo.png", "rb") as image, open(tmp_path / "mask.png", "rb") as m:
            result = _png(_post(server, {"image": image, "mask": m}))
    assert result.shape == photo.shape
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    assert (result[hole] != photo[hole]).any(-1).mean() > 0.5


@pytest.mark.slow
def test_rest_mask_operations_alpha_extend_and_formats(server, tmp_path):
    photo, hole = _photo_and_mask_files(tmp_path)
    image, mask = (tmp_path / "photo.png").read_bytes(), (tmp_path / "mask.png").read_bytes()
    plain = _png(_post(server, {"image": image, "mask": mask}))
    # The hole as transparency instead of a mask file: the same result.
    rgba = io.BytesIO()
    Image.fromarray(np.dstack([photo, np.where(hole, 0, 255).astype(np.uint8)])).save(rgba, "PNG")
    alpha = _png(_post(server, {"image": rgba.getvalue()}, {"mask_from_alpha": "true"}))
    np.testing.assert_array_equal(alpha, plain)
    # Grow by 3 px and extend 16 px to the right: the new size; pixels farther than 3 px from
    # the hole (by the disk rule, computed here with scipy) are the photo's, bit for bit.
    from scipy import ndimage

    data = {"dilate": "3", "extend": "0,0,16,0"}
    grown = _png(_post(server, {"image": image, "mask": mask}, data))
    assert grown.shape == (120, 176, 3)
    far = ndimage.distance_transform_edt(~hole) > 3
    np.testing.assert_array_equal(grown[:, :160][far], photo[far])
    assert (grown[:, 160:] != 0).any()
    jpeg = _post(server, {"image": image, "mask": mask}, {"format": "jpg", "quality": "80"})
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"


@pytest.mark.slow
def test_rest_bad_input_answers_4xx_json_with_the_cli_messages(server, tmp_path):
    _photo_and_mask_files(tmp_path)
    image, mask = (tmp_path / "photo.png").read_bytes(), (tmp_path / "mask.png").read_bytes()
    wide = io.BytesIO()
    Image.fromarray(np.zeros((10, 80), np.uint8)).save(wide, "PNG")
    big = io.BytesIO()
    Image.fromarray(np.zeros((10, 1025, 3), np.uint8)).save(big, "PNG")
    full = io.BytesIO()
    Image.fromarray(np.full((120, 160), 255, np.uint8)).save(full, "PNG")
    cases = [  # (files, form, status, message fragment)
        ({"mask": mask}, {}, 422, "image: Field required"),
        ({"image": b"\x89PNG\r\n\x1a\nbroken", "mask": mask}, {}, 400, "cannot read image"),
        ({"image": image, "mask": wide.getvalue()}, {}, 400, "different aspect ratios"),
        ({"image": image}, {}, 400, "no hole: send a mask file"),
        ({"image": image}, {"extend": "1,2,3"}, 400, "extend takes LEFT,TOP,RIGHT,BOTTOM"),
        ({"image": image, "mask": mask}, {"dilate": "abc"}, 422, "dilate"),
        ({"image": image, "mask": mask}, {"dilate": "-2"}, 400, "dilate must be a whole"),
        ({"image": image, "mask": mask}, {"strategy": "tiles"}, 400, "strategy must be one of"),
        ({"image": image, "mask": mask}, {"model": "other"}, 400, "no model 'other'"),
        ({"image": image, "mask": full.getvalue()}, {}, 400, "no known pixel"),
        ({"image": image}, {"mask_color": "300,0,0"}, 400, "R,G,B with values 0..255"),
        ({"image": big.getvalue()}, {"extend": "1,1,1,1"}, 413, "at most 1024 px"),
        ({"image": image}, {"extend": "0,0,900,0"}, 413, "the extended image is 1060x120"),
    ]
    for files, form, status, fragment in cases:
        response = _post(server, files, form)
        assert response.status_code == status, (form, response.text)
        assert fragment in response.json()["error"], (form, response.text)
    # Named by the upload's file name, not a server path; with the page mounted at /, a wrong
    # method or path under /api/v1 still answers {"error": ...} (issue 29, item 15).
    import httpx

    response = _post(server, {"image": ("notes.png", b"text, not an image"), "mask": mask})
    assert response.json() == {
        "error": "cannot read image notes.png: not an image file (or a format Pillow cannot decode)"
    }
    wrong = httpx.get(f"{server.url}api/v1/inpaint", timeout=30)
    assert (wrong.status_code, wrong.json()) == (
        405,
        {"error": "GET is not allowed on /api/v1/inpaint; use POST"},
    )
    assert "error" in httpx.get(f"{server.url}api/v1/nothing", timeout=30).json()
    assert _png(_post(server, {"image": image, "mask": mask})).shape == (120, 160, 3)  # still up


@pytest.mark.slow
def test_rest_concurrent_requests_health_models_and_schema(server, tmp_path):
    import concurrent.futures

    import httpx

    _photo_and_mask_files(tmp_path)
    image, mask = (tmp_path / "photo.png").read_bytes(), (tmp_path / "mask.png").read_bytes()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_post, server, {"image": image, "mask": mask}) for _ in range(4)]
        results = [_png(f.result()) for f in futures]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])  # queued, one at a time, all answered
    health = httpx.get(f"{server.url}api/v1/health", timeout=30).json()
    assert health == {"status": "ok", "waiting": 0, "max_queue": 16}
    models = httpx.get(f"{server.url}api/v1/models", timeout=30).json()
    assert [m["name"] for m in models["models"]] == [models["default"]]
    assert models["models"][0]["loaded"] is True
    schema = httpx.get(f"{server.url}openapi.json", timeout=30).json()
    form = schema["paths"]["/api/v1/inpaint"]["post"]["requestBody"]["content"]
    fields = next(iter(schema["components"]["schemas"].values()))["properties"]
    assert "multipart/form-data" in form and {"image", "mask", "dilate", "extend"} <= set(fields)
    docs = httpx.get(f"{server.url}docs", timeout=30)
    assert docs.status_code == 200 and "swagger-ui" in docs.text.lower()


def test_queue_refuses_beyond_its_waiting_room():
    import threading

    from pconv_jax.serve.rest import Busy, Queue

    queue = Queue(max_waiting=2)
    release, started = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return "done"

    first = threading.Thread(target=queue.run, args=(slow,))
    first.start()
    started.wait(10)
    second = threading.Thread(target=queue.run, args=(lambda: None,))
    second.start()
    deadline = time.monotonic() + 10
    while queue.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.waiting == 2  # one running, one waiting for the lock
    with pytest.raises(Busy, match="2 requests waiting"):
        queue.run(lambda: None)
    release.set()
    first.join(10)
    second.join(10)
    assert queue.waiting == 0 and queue.run(lambda: 7) == 7


def _link(browser, selector: str, old: str | None = None):
    """The href of the first link under `selector` once it exists and differs from `old`."""
    from selenium.webdriver.common.by import By

    links = browser.find_elements(By.CSS_SELECTOR, f"{selector} a[href]")
    href = links[0].get_attribute("href") if links else None
    return href if href and href != old else None


def _download(href: str) -> np.ndarray:
    with urllib.request.urlopen(href, timeout=30) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())))


@pytest.mark.slow
def test_browser_grow_a_stroke_download_the_mask_continue_and_undo(server, tmp_path):
    from scipy import ndimage
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    photo = np.asarray(Image.open(ROOT / "pconv_jax/serve/examples/kodak23.jpg").convert("RGB"))
    save_png(photo, tmp_path / "photo.png")
    browser = _chromium()

    def inpaint_and_wait(old_result):
        browser.find_element(By.ID, "inpaint-button").click()
        _wait_for(browser, server, "a new result", lambda b: _result_link_or_error(b, server))
        return _wait_for(
            browser, server, "a new result", lambda b: _link(b, "#result-file", old_result)
        )

    try:
        browser.get(server.url)
        upload = _wait_for(
            browser,
            server,
            "upload input",
            lambda b: b.find_element(By.CSS_SELECTOR, "#editor input[type=file]"),
        )
        zoom = _wait_for(
            browser,
            server,
            "the editor's zoom",
            lambda b: b.find_element(By.CSS_SELECTOR, "#editor .zoom-number"),
        )
        empty_zoom = zoom.text
        upload.send_keys(str(tmp_path / "photo.png"))
        _wait_for(
            browser, server, "photo on the canvas", lambda b: zoom.text not in ("", empty_zoom)
        )
        time.sleep(1)
        canvas = next(
            c for c in browser.find_elements(By.CSS_SELECTOR, "#editor canvas") if c.is_displayed()
        )
        stroke = ActionChains(browser).move_to_element_with_offset(canvas, -40, 10).click_and_hold()
        stroke.move_by_offset(80, -10).release().perform()
        first = inpaint_and_wait(None)
        mask_plain = (
            _download(_wait_for(browser, server, "mask link", lambda b: _link(b, "#mask-file")))
            > 127
        )

        # Grow by 6 px: the downloaded mask is the painted one dilated by a disk of radius 6.
        grow = browser.find_element(By.CSS_SELECTOR, "#grow input[type=number]")
        grow.send_keys(Keys.CONTROL, "a")
        grow.send_keys("6", Keys.TAB)
        time.sleep(1)
        old_mask = _link(browser, "#mask-file")
        second = inpaint_and_wait(first)
        mask_grown = (
            _download(
                _wait_for(browser, server, "new mask", lambda b: _link(b, "#mask-file", old_mask))
            )
            > 127
        )
        yy, xx = np.mgrid[-6:7, -6:7]
        np.testing.assert_array_equal(
            mask_grown, ndimage.binary_dilation(mask_plain, yy**2 + xx**2 <= 36)
        )
        grown_result = _download(second)[..., :3]
        np.testing.assert_array_equal(grown_result[~mask_grown], photo[~mask_grown])
        assert (grown_result[mask_grown] != photo[mask_grown]).any()
        browser.set_window_size(1400, 1500)  # the whole page, for docs/assets/serve_page.png
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(1)
        browser.save_screenshot(os.environ.get("PCONV_SCREENSHOT") or str(tmp_path / "page.png"))

        # Continue on the result: with nothing painted, Inpaint returns the result unchanged.
        browser.find_element(By.ID, "continue").click()
        time.sleep(2)
        third = inpaint_and_wait(second)
        np.testing.assert_array_equal(_download(third)[..., :3], grown_result)
        # Undo: the original photo is back in the editor.
        browser.find_element(By.ID, "undo").click()
        time.sleep(2)
        fourth = inpaint_and_wait(third)
        np.testing.assert_array_equal(_download(fourth)[..., :3], photo)
    finally:
        browser.quit()


def test_models_folder_gives_a_picker_and_unknown_names_are_refused(run_dir, tmp_path, capsys):
    from pconv_jax import cli
    from pconv_jax.errors import UserError
    from pconv_jax.serve.handlers import find_models

    folder = tmp_path / "models"
    for name in ("b_model", "a_model"):
        assert cli.main(["export", "--checkpoint", str(run_dir), str(folder / f"{name}.npz")]) == 0
    (folder / "notes.txt").write_text("not a model")
    models = find_models(None, folder)
    assert list(models) == ["a_model", "b_model"]
    assert list(find_models(run_dir, folder)) == [run_dir.name, "a_model", "b_model"]
    app = App(models=models, out_dir=tmp_path / "o")
    assert app.default_model == "a_model"
    assert [m["loaded"] for m in app.describe_models()] == [False, False]
    photo = _photo()
    layer = np.zeros((*photo.shape[:2], 4), np.uint8)
    layer[40:70, 50:100, 3] = 255
    editor = {"background": photo, "layers": [layer]}
    (_, by_a), *_ = app.inpaint_page(editor, None, "full", False, model="a_model")
    (_, by_b), *_ = app.inpaint_page(editor, None, "full", False, model="b_model")
    np.testing.assert_array_equal(by_a, by_b)  # the same weights exported twice
    assert [m["loaded"] for m in app.describe_models()] == [True, True]
    with pytest.raises(UserError, match="no model 'c' on this server; it has a_model, b_model"):
        app.inpainter_for("c")
    with pytest.raises(UserError, match="no .npz/.onnx export or run directory"):
        find_models(None, tmp_path / "o")
    capsys.readouterr()
    assert cli.main(["serve"]) == 2
    assert "give --checkpoint PATH or --models DIR" in capsys.readouterr().err
