"""`pconv train` end to end: kill and resume bitwise, stage 2 from stage 1, non-finite stops."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2

from pconv_jax import cli, config
from pconv_jax.data import pipeline as data
from pconv_jax.store import checkpoint, trained

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = str(ROOT / "experiments" / "configs" / "tiny.py")


@pytest.fixture(scope="module")
def image_dir(wave_image_dir):
    return wave_image_dir  # tests/conftest.py: six small wave photos


def _train_command(workdir, image_dir, *overrides):
    """`python -m pconv_jax train ...` on the tiny config and `image_dir`."""
    return [sys.executable, "-m", "pconv_jax", *_train_args(workdir, image_dir, *overrides)]


def _train_args(workdir, image_dir, *overrides):
    return [
        "train",
        "--config",
        TINY,
        "--workdir",
        str(workdir),
        "--set",
        f"data.dir={image_dir}",
        *[a for o in overrides for a in ("--set", o)],
    ]


def _env():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _finished_steps(workdir) -> list[int]:
    folder = pathlib.Path(workdir) / "checkpoints"
    return (
        sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit()) if folder.exists() else []
    )


@pytest.mark.slow
def test_killed_run_restarts_and_ends_bitwise_equal(tmp_path, image_dir):
    steps = ["train.num_steps=40", "train.ckpt_every=3", "train.sample_every=1000"]
    reference = tmp_path / "uninterrupted"
    subprocess.run(
        _train_command(reference, image_dir, *steps), env=_env(), check=True, capture_output=True
    )

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_command(killed, image_dir, *steps),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not [s for s in _finished_steps(killed) if s >= 6] and time.time() < deadline:
        time.sleep(0.05)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert still_running, "the run finished before it could be killed: make it longer"
    at_kill = _finished_steps(killed)
    assert at_kill and max(at_kill) < 40

    rerun = subprocess.run(
        _train_command(killed, image_dir, *steps), env=_env(), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming" in rerun.stderr
    expected = trained.load(reference).variables
    got = trained.load(killed).variables
    chex.assert_trees_all_equal(jax.device_get(got), jax.device_get(expected))


def test_stage2_starts_from_stage1_and_freezes_encoder_bn(tmp_path, image_dir):
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    base = ["--config", TINY, "--set", f"data.dir={image_dir}", "--set", "train.num_steps=2"]
    assert cli.main(["train", "--workdir", str(stage1), *base]) == 0
    assert (
        cli.main(
            [
                "train",
                "--workdir",
                str(stage2),
                *base,
                "--set",
                f"train.init_from={stage1}",
                "--set",
                "train.learning_rate=5e-5",
                "--set",
                "train.freeze_encoder_bn_stats=true",
                "--set",
                "train.freeze_encoder_bn_params=true",
            ]
        )
        == 0
    )
    before = trained.load(stage1).variables
    loaded = trained.load(stage2)
    cfg2, after = loaded.config, loaded.variables
    assert cfg2.train.init_from == str(stage1) and (stage2 / "config.json").exists()
    for name in before["batch_stats"]:
        for collection in ("batch_stats", "params"):
            same = jax.tree_util.tree_all(
                jax.tree_util.tree_map(
                    np.array_equal, before[collection][name]["bn"], after[collection][name]["bn"]
                )
            )
            assert same == name.startswith("enc"), (collection, name)
    assert not np.array_equal(
        before["params"]["enc1"]["conv"]["kernel"], after["params"]["enc1"]["conv"]["kernel"]
    )


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_checkpoint(
    tmp_path, image_dir, monkeypatch, capsys
):
    real = data.train_batches

    class Poisoned:
        """The real pipeline, with a NaN ground-truth pixel in the batch of step 3."""

        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)
            self.step = kwargs.get("start_step", 0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.inner.close()

        def __next__(self):
            batch = next(self.inner)
            if self.step == 3:
                batch["image"][0, 0, 0, 0] = np.nan
            self.step += 1
            return batch

    monkeypatch.setattr(data, "train_batches", Poisoned)
    workdir = tmp_path / "run"
    code = cli.main(_train_args(workdir, image_dir, "train.num_steps=6"))
    assert code == 3
    assert "non-finite loss at step 4" in capsys.readouterr().err
    assert _finished_steps(workdir) == [2]
    kept = trained.load(workdir).variables
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(kept))


@pytest.mark.slow
def test_one_real_device_trains_with_a_global_batch_of_one(tmp_path, image_dir):
    """No fake devices (the suite's 4 hide it): one CPU device x 1 image is a global batch of 1,
    which once crashed in grain before the first step."""
    env = {k: v for k, v in _env().items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    workdir = tmp_path / "batch1"
    overrides = ["train.batch_size_per_device=1", "train.num_steps=2"]
    run = subprocess.run(
        _train_command(workdir, image_dir, *overrides), env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert checkpoint.read_config(workdir).train.batch_size_per_device == 1
    assert _finished_steps(workdir) == [2]
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if "train/total" in m] == [2]
    # The sample grid at the last step has one row per example of the global batch (1) of the
    # 4 panels, 32x32 each with 2 px borders: so the run had one device, not the suite's 4.
    (sample,) = (workdir / "samples").glob("*.png")
    assert np.asarray(Image.open(sample)).shape == (1 * 34 + 2, 4 * 34 + 2, 3)


def test_bad_overrides_are_errors(tmp_path, capsys):
    assert cli.main(["train", "--workdir", str(tmp_path), "--set", "train.lr=1"]) == 2
    assert "unknown config key 'train.lr'" in capsys.readouterr().err
    assert cli.main(["train", "--workdir", str(tmp_path), "--set", "train.num_steps=x"]) == 2
    assert "expects an int" in capsys.readouterr().err


@pytest.mark.slow
def test_the_embedded_default_runs(tmp_path):
    """The README's first command, shortened to two steps of one image per device; checks the
    values it writes, not only that the files exist."""
    workdir = tmp_path / "demo"
    overrides = ["train.num_steps=2", "train.batch_size_per_device=1"]
    assert (
        cli.main(
            ["train", "--workdir", str(workdir), *[a for o in overrides for a in ("--set", o)]]
        )
        == 0
    )
    cfg = checkpoint.read_config(workdir)
    assert cfg == config.override(config.default(), overrides)
    assert (cfg.model.num_layers, cfg.data.image_size, cfg.data.source) == (7, 128, "skimage")
    assert _finished_steps(workdir) == [2]
    variables = trained.load_run(workdir).variables
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(variables))

    # metrics.jsonl: one line at the last step; the total is Eq. 7 of the logged terms with the
    # paper's weights (1, 6, 0.05, 120, 0.1), recomputed here by hand.
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert "val/lpips" in lines[-1] and lines[-1]["step"] == 2  # the demo validates at its end
    train_lines = [line for line in lines if "train/total" in line]
    assert [m["step"] for m in train_lines] == [2]
    m = train_lines[0]
    terms = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv")
    assert all(np.isfinite(m[f"train/{t}"]) and m[f"train/{t}"] > 0 for t in terms)
    eq7 = (
        m["train/valid"]
        + 6 * m["train/hole"]
        + 0.05 * m["train/perceptual"]
        + 120 * (m["train/style_out"] + m["train/style_comp"])
        + 0.1 * m["train/tv"]
    )
    assert m["train/total"] == pytest.approx(eq7, rel=1e-5)
    assert m["train/learning_rate"] == 2e-4 and m["train/grad_norm"] > 0
    assert m["train/images_per_sec"] > 0  # one timed step: the first includes compilation

    # TensorBoard holds the same scalars as the JSON lines.
    (events,) = (workdir / "tensorboard").glob("events.out.tfevents.*")
    logged = {}
    for record in RawEventFileLoader(str(events)).Load():
        event = event_pb2.Event.FromString(record)
        for value in event.summary.value:
            logged[(event.step, value.tag)] = value.simple_value
    for key, value in m.items():
        if key != "step":
            assert logged[(2, key)] == pytest.approx(value, rel=1e-6), key

    # Sample grids at steps 2 (the end; sample_every=25): 4 rows (global batch) x 4 panels
    # (input with white holes, output, composite, truth) of 128x128 with 2 px borders.
    (sample,) = (workdir / "samples").glob("*.png")
    assert sample.name == "0000002.png"
    grid = np.asarray(Image.open(sample))
    assert grid.shape == (4 * 130 + 2, 4 * 130 + 2, 3)
    truth, composite = grid[2:130, 392:520], grid[2:130, 262:390]
    assert truth.std() > 10, "the truth panel shows a photo"
    assert np.mean(composite == truth) > 0.3, "the composite keeps the known pixels"
