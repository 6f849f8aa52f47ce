"""Real `pconv` processes on 127.0.0.1: 2 processes x 2 CPU devices against 1 x 4.

Both layouts have the same 4-device mesh and the same global batches (the pipeline makes each
process's rows of one global stream). The 1-process reference also starts JAX's distributed
runtime (`--num-processes 1`), so its collectives are gloo's, as between processes: then the two
layouts compute the same bits, and parameters are compared bitwise. (Without the runtime, XLA's
in-process all-reduce adds the devices' gradients in another order; Adam's first, sign-like
updates turn those last-bit differences into parameter differences up to ~2 x lr per step:
README, Training on several hosts.) Killed, preempted and resumed runs agree bitwise too.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import chex
import jax
import numpy as np
import pytest
from PIL import Image

from pconv_jax.masks import benchmark_sets
from pconv_jax.store import trained

from tiny_run import make_tiny_run

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = str(ROOT / "experiments" / "configs" / "tiny.py")
STEPS = ["train.num_steps=6", "train.ckpt_every=2", "train.log_every=2", "train.sample_every=3"]
PREEMPTED = 75

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.png")
    return root, images


def _launch(workdir, images, processes: int, devices: int, cache) -> list[subprocess.Popen]:
    """`pconv train` on the tiny config in `processes` processes of `devices` CPU devices."""
    args = ["train", "--config", TINY, "--workdir", str(workdir), "--set", f"data.dir={images}"]
    args += [a for s in STEPS for a in ("--set", s)]
    return _start(args, processes, devices, cache, runtime=True)


def _start(pconv_args, processes, devices, cache, runtime=False) -> list[subprocess.Popen]:
    """`processes` processes; with `runtime` (or several) JAX's distributed runtime."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_COMPILATION_CACHE_DIR"] = str(cache)  # later launches skip most compilation
    args = [sys.executable, "-m", "pconv_jax", *map(str, pconv_args)]
    port = _free_port()
    procs = []
    for i in range(processes):
        launch = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes)]
        launch += ["--process-id", str(i)]
        # Output to a file: a pipe read only at the end would stall a process that fills it.
        log = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(
            args + (launch if processes > 1 or runtime else []),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc.log = log
        procs.append(proc)
    return procs


def _output(proc) -> str:
    proc.log.seek(0)
    return proc.log.read()


def _finish(procs, timeout=900) -> list[tuple[int, str]]:
    return [(p.wait(timeout), _output(p)) for p in procs]


def _run(workdir, images, processes, devices, cache) -> list[str]:
    results = _finish(_launch(workdir, images, processes, devices, cache))
    for code, out in results:
        assert code == 0, out[-3000:]
    return [out for _, out in results]


def _tail(proc) -> str:
    return _output(proc)[-4000:]


def _finished_steps(workdir) -> list[int]:
    folder = pathlib.Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit())


def _wait_for_checkpoint(workdir, procs, step: int) -> None:
    deadline = time.time() + 900
    while not [s for s in _finished_steps(workdir) if s >= step] and time.time() < deadline:
        ended = [p for p in procs if p.poll() is not None]
        assert not ended, f"a process ended early ({ended[0].returncode}): " + _tail(ended[0])
        time.sleep(0.05)


@pytest.fixture(scope="module")
def runs(setup):
    root, images = setup
    cache = root / "jax_cache"
    one, two = root / "one_x4", root / "two_x2"
    logs = {"one": _run(one, images, 1, 4, cache), "two": _run(two, images, 2, 2, cache)}
    return one, two, logs


def _model(workdir, step=None):
    """Params and BN statistics of a checkpoint (the newest), restored in this one process."""
    return jax.device_get(trained.load_run(workdir, step).variables)


def test_two_processes_train_like_one(runs):
    one, two, logs = runs
    assert "process 0 of 2" in logs["two"][0] and "process 1 of 2" in logs["two"][1]
    assert "2 local devices [0, 1], 4 global devices" in logs["two"][0]
    assert _finished_steps(one) == _finished_steps(two) == [2, 4, 6]
    # Every checkpoint, restored in this 1-process, 4-device test process, bitwise equal.
    for step in (2, 4, 6):
        chex.assert_trees_all_equal(_model(two, step), _model(one, step))
    # One metrics file (process 0 wrote it), the same losses. The gradient norm is summed from
    # partial sums whose order across devices can differ in the last bit (seen: 1e-7 relative).
    rows = [json.loads(line) for line in (two / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in ref] == [2, 4, 6]
    for row, expected in zip(rows, ref):
        assert row.keys() == expected.keys()
        for key in row.keys() - {"train/images_per_sec", "train/grad_norm"}:
            assert row[key] == expected[key], key
        assert row["train/grad_norm"] == pytest.approx(expected["train/grad_norm"], rel=1e-6)
    # The sample grids: the first rows of the global batch, gathered from both processes.
    assert sorted(p.name for p in (two / "samples").glob("*.png")) == ["0000003.png", "0000006.png"]
    for name in ("0000003.png", "0000006.png"):
        a = np.asarray(Image.open(two / "samples" / name))
        assert a.tobytes() == np.asarray(Image.open(one / "samples" / name)).tobytes()


def test_sigterm_to_one_process_stops_both_with_a_checkpoint_and_resumes_bitwise(runs, setup):
    _, two, _ = runs
    root, images = setup
    workdir = root / "preempted"
    procs = _launch(workdir, images, 2, 2, root / "jax_cache")
    _wait_for_checkpoint(workdir, procs, 2)
    procs[1].send_signal(signal.SIGTERM)  # the other process hears of it through the agreement
    results = _finish(procs)
    assert [code for code, _ in results] == [PREEMPTED, PREEMPTED], results[0][1][-2000:]
    stopped = max(_finished_steps(workdir))
    assert stopped < 6, "the run finished before the signal: make it longer"
    assert f"checkpointed step {stopped}" in results[0][1]
    assert not (workdir / "train.lock").exists()
    outs = _run(workdir, images, 2, 2, root / "jax_cache")
    assert f"from its checkpoint at step {stopped}" in outs[0]
    chex.assert_trees_all_equal(_model(workdir), _model(two))


def test_both_processes_killed_then_restarted_end_bitwise_equal(runs, setup):
    _, two, _ = runs
    root, images = setup
    workdir = root / "killed"
    procs = _launch(workdir, images, 2, 2, root / "jax_cache")
    _wait_for_checkpoint(workdir, procs, 2)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    _finish(procs)
    assert max(_finished_steps(workdir)) < 6, "the run finished before the kill: make it longer"
    assert (workdir / "train.lock").exists()  # left behind by the killed process 0
    outs = _run(workdir, images, 2, 2, root / "jax_cache")
    assert "taking over the stale lock of pid" in outs[0]
    chex.assert_trees_all_equal(_model(workdir), _model(two))


def test_evaluate_in_two_processes_writes_the_one_process_table(setup, tmp_path):
    root, _ = setup
    run = tmp_path / "run"
    make_tiny_run(run)
    masks = tmp_path / "masks"
    benchmark_sets.make_test_mask_set(masks, size=64, per_bucket=2, seed=0)
    outs = {}
    for processes, devices in ((1, 4), (2, 2)):
        out = tmp_path / f"eval_{processes}x{devices}"
        args = ["evaluate", "--method", "pconv", "--checkpoint", run, "--images", "skimage"]
        args += ["--masks", masks, "--limit", 6, "--size", 32, "--out", out]
        for code, log in _finish(_start(args, processes, devices, root / "jax_cache")):
            assert code == 0, log[-3000:]
        outs[processes] = out
    one, two = outs[1], outs[2]
    assert (two / "table.md").read_text() == (one / "table.md").read_text()
    assert (two / "table.csv").read_text() == (one / "table.csv").read_text()
    rows = sorted(
        (two / "results.jsonl").read_text().splitlines(), key=lambda r: json.loads(r)["pair"]
    )
    assert rows == (one / "results.jsonl").read_text().splitlines()
    assert not list(two.glob("results.process*.jsonl"))  # merged into results.jsonl
    timing = json.loads((two / "table.json").read_text())["timing"]
    assert (timing["processes"], timing["devices"]) == (2, 4)


SKEWED = """
import sys, time
from pconv_jax.parallel import distributed
port, index = sys.argv[1], int(sys.argv[2])
distributed.initialize(distributed.Launch(f"127.0.0.1:{port}", 2, index))
if index == 1:
    time.sleep(40)  # a slow compile: more than the 30 s gloo gives a first collective
start = time.time()
distributed.wait_for_all("skewed start")
waited = time.time() - start
print("agreed", distributed.any_process(index == 1), "waited", round(waited), flush=True)
"""


def test_wait_for_all_outlasts_the_30_s_that_gloo_gives_a_first_collective(tmp_path):
    """Process 1 arrives 40 s late; a collective barrier (sync_global_devices) here fails with
    "Gloo context initialization failed: ... GetKeyValue() timed out ... 30s" (seen on jax
    0.10.2); the coordination-service barrier waits, and the gloo collective after it works."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    port = _free_port()
    procs = []
    for index in range(2):
        log = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(
            [sys.executable, "-c", SKEWED, str(port), str(index)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc.log = log
        procs.append(proc)
    try:
        results = _finish(procs, timeout=240)  # without the barrier, both hang after the error
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for code, out in results:
        assert code == 0, out[-3000:]
    waited = [int(out.split("waited")[-1].split()[0]) for _, out in results]
    assert "agreed True" in results[0][1] and "agreed True" in results[1][1]
    assert waited[0] >= 35 and waited[1] <= waited[0] - 30, waited  # process 0 did the waiting
