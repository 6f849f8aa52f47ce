"""`pconv serve` as a process: it stops on SIGTERM or Ctrl-C with clients connected, and a busy
port is a one-line error before any banner."""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from pconv_jax.images import save_png

ROOT = pathlib.Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 10  # issue 29, item 16: exit within 10 s of SIGTERM or Ctrl-C


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run_dir, log_path: pathlib.Path) -> tuple[subprocess.Popen, str]:
    """A `python -m pconv_jax serve` on the tiny run, answering at the returned URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("XLA_FLAGS", None)
    command = [sys.executable, "-m", "pconv_jax", "serve", "--checkpoint", str(run_dir)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"pconv serve did not start: {log_path.read_text()[-3000:]}")
            time.sleep(1)


def _call_gradio(url: str, tmp_path: pathlib.Path):
    """One `inpaint` call through gradio_client; the client stays open (its event stream too)."""
    from gradio_client import Client, handle_file

    photo = np.full((48, 64, 3), 120, np.uint8)
    hole = np.zeros((48, 64), np.uint8)
    hole[10:30, 20:40] = 255
    save_png(photo, tmp_path / "photo.png")
    save_png(hole, tmp_path / "mask.png")
    client = Client(url, verbose=False)
    assert client.predict(
        handle_file(str(tmp_path / "photo.png")),
        handle_file(str(tmp_path / "mask.png")),
        api_name="/inpaint",
    )
    return client


def _call_rest(url: str, tmp_path: pathlib.Path):
    """One REST request on a keep-alive connection that stays open."""
    import httpx

    photo = np.full((48, 64, 3), 120, np.uint8)
    hole = np.zeros((48, 64), np.uint8)
    hole[10:30, 20:40] = 255
    save_png(photo, tmp_path / "photo.png")
    save_png(hole, tmp_path / "mask.png")
    client = httpx.Client(timeout=120)
    files = {"image": (tmp_path / "photo.png").read_bytes()}
    files["mask"] = (tmp_path / "mask.png").read_bytes()
    response = client.post(f"{url}api/v1/inpaint", files=files)
    assert response.status_code == 200, response.text
    return client


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "call"), [(signal.SIGTERM, _call_gradio), (signal.SIGINT, _call_rest)]
)
def test_server_stops_on_sigterm_or_ctrl_c_with_a_client_connected(run_dir, tmp_path, stop, call):
    proc, url = _start(run_dir, tmp_path / "server.log")
    try:
        client = call(url, tmp_path)
        proc.send_signal(stop)
        sent = time.monotonic()
        try:
            proc.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"pconv serve still running {STOP_WITHIN_S} s after {stop.name}: "
                + (tmp_path / "server.log").read_text()[-2000:]
            )
        assert time.monotonic() - sent < STOP_WITHIN_S
        assert "Traceback" not in (tmp_path / "server.log").read_text()
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_busy_port_is_one_line_error_before_any_banner(run_dir, capsys):
    from pconv_jax import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        status = cli.main(["serve", "--checkpoint", str(run_dir), "--port", str(port)])
    captured = capsys.readouterr()
    assert status == 2
    assert f"cannot listen on 127.0.0.1:{port}" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "http://" not in captured.out  # no "running on" banner
