"""`pconv serve` as a server: the `inpaint` API through gradio_client, and a real browser.
The request handlers in-process: tests/unit/cli/test_serve_app.py."""

import dataclasses
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

from pconv_jax.images import save_png

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pconv_jax/serve_examples/kodak03.jpg"


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

    photo = np.asarray(Image.open(EXAMPLE).convert("RGB"))[:120, :160]
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
    """`condition(browser)` once truthy; a timeout fails naming `what`, with screenshot and log."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, seconds).until(condition)
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

    photo = np.asarray(Image.open(ROOT / "pconv_jax/serve_examples/kodak23.jpg").convert("RGB"))
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
        zoom = browser.find_element(By.CSS_SELECTOR, "#editor .zoom-number")
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
