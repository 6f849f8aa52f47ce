"""Fine-tuning from any model: `train.init_from` takes an export .npz (from `pconv export` or
`pconv convert`), the learning-rate schedule, and `train.freeze_encoder`.

The commands are those of docs/pretrained.md ("Fine-tuning on your own photos"), on the tiny
config (32x32 crops) with a converted mmagic checkpoint of depth 4 (random weights, see
test_convert.py) instead of the real one.
"""

import json
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from pconv_jax import Inpainter, cli, config
from pconv_jax.errors import UserError
from pconv_jax.nn.model import abstract_variables, build_model
from pconv_jax.store import trained
from pconv_jax.train import step as train_step

from helpers.torch_sources import write_source_file

ROOT = pathlib.Path(__file__).resolve().parents[3]
TINY = str(ROOT / "experiments" / "configs" / "tiny.py")


def _cfg(**train):
    cfg = config.load(TINY)
    return config.override(cfg, [f"train.{k}={v}" for k, v in train.items()])


def test_schedules_by_hand():
    """Values worked out by hand: linear warm-up 0 -> lr over 4 updates, then the decay."""
    warm = dict(learning_rate=1e-3, warmup_steps=4, num_steps=14)
    at = train_step.learning_rate_at
    constant = _cfg(**warm)
    assert [at(constant, c) for c in (0, 2, 4, 13)] == pytest.approx(
        [0, 5e-4, 1e-3, 1e-3],
        rel=1e-6,  # float32 schedules
    )
    cosine = _cfg(**warm, lr_schedule="cosine")  # 10 decay steps: 1e-3 * (1 + cos(pi t/10)) / 2
    assert [at(cosine, c) for c in (4, 9, 14)] == pytest.approx([1e-3, 5e-4, 0], abs=1e-9)
    step = _cfg(**warm, lr_schedule="step", lr_decay_steps=5, lr_decay_rate=0.5)
    assert [at(step, c) for c in (4, 8, 9, 14)] == pytest.approx(
        [1e-3, 1e-3, 5e-4, 2.5e-4], rel=1e-6
    )
    # the paper's default stays a float: the Adam state has no schedule counter (old checkpoints
    # restore unchanged)
    assert train_step.learning_rate_schedule(_cfg(learning_rate=2e-4)) == 2e-4
    with pytest.raises(UserError, match="lr_decay_steps"):
        train_step.learning_rate_schedule(_cfg(lr_schedule="step"))
    with pytest.raises(UserError, match="lr_schedule must be one of"):
        config.override(config.load(TINY), ["train.lr_schedule=linear"])


def test_freeze_encoder_labels_every_encoder_parameter():
    params = abstract_variables(build_model(config.ModelConfig(num_layers=4)))["params"]
    labels = train_step.param_labels(params, False, freeze_encoder=True)
    for path, label in jax.tree_util.tree_leaves_with_path(labels):
        assert label == ("frozen" if path[0].key.startswith("enc") else "trainable"), path


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("converted")
    src = folder / "mmagic.pth"
    write_source_file("mmagic", src, 4)
    out = folder / "places_pconv.npz"
    assert cli.main(["convert", "--from", "mmagic", str(src), str(out)]) == 0
    return out


def _train(workdir, image_dir, *overrides):
    args = ["train", "--config", TINY, "--workdir", str(workdir), "--set", f"data.dir={image_dir}"]
    return cli.main(args + [a for o in overrides for a in ("--set", o)])


def _metrics(workdir):
    lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# docs/pretrained.md "Fine-tuning on your own photos", flag for flag (my_photos/ and
# places_pconv.npz replaced by the test's folder and converted file) ...
DOCS_FINETUNE = [
    "data.source=folder",
    "data.dir={photos}",
    "data.image_size=256",
    "model.io_range=symmetric",
    "model.ratio=official",
    "model.conv_bias=without_bn",
    "train.init_from={export}",
    "train.learning_rate=5e-5",
    "train.warmup_steps=100",
    "train.lr_schedule=cosine",
    "train.freeze_encoder=true",
    "train.num_steps=2000",
]
# ... then shrunk to a test: a depth-4 model (the converted file's), 32x32 crops, 12 steps, a
# larger rate (random weights), a checkpoint and a log line every step, no final validation.
SHRINK = [
    "model.num_layers=4",
    "data.image_size=32",
    "data.num_workers=1",
    "train.batch_size_per_device=1",
    "train.learning_rate=1e-3",
    "train.warmup_steps=2",
    "train.num_steps=12",
    "train.ckpt_every=1",
    "train.keep_last=20",
    "train.log_every=1",
    "train.sample_every=1000",
    "train.eval_at_end=false",
]


def test_a_converted_model_fine_tunes(converted, wave_image_dir, tmp_path):
    """Update 0 has learning rate 0 (warm-up), so the first checkpoint's parameters are the
    export's, bit for bit; then the loss falls, the schedule is logged, the encoder (frozen)
    does not move, and the result exports to ONNX, which fills as JAX does."""
    run = tmp_path / "finetune"
    docs = [o.format(photos=wave_image_dir, export=converted) for o in DOCS_FINETUNE]
    args = ["train", "--workdir", str(run), *[a for o in docs + SHRINK for a in ("--set", o)]]
    assert cli.main(args) == 0
    start = trained.load_export(converted).variables
    first = trained.load(run, step=1).variables
    last = trained.load(run).variables
    for path, value in jax.tree_util.tree_leaves_with_path(start["params"]):
        got = first["params"]
        for key in path:
            got = got[key.key]
        np.testing.assert_array_equal(np.asarray(got), value, err_msg=str(path))
    jax.tree_util.tree_map(
        np.testing.assert_array_equal,
        start["params"]["enc2"],
        jax.device_get(last["params"]["enc2"]),
    )
    assert not np.array_equal(
        start["params"]["dec1"]["conv"]["kernel"],
        np.asarray(last["params"]["dec1"]["conv"]["kernel"]),
    )
    metrics = _metrics(run)
    lrs = [m["train/learning_rate"] for m in metrics]
    assert lrs[:3] == pytest.approx([0.0, 5e-4, 1e-3])  # updates 0, 1 (warm-up), 2
    assert lrs[-1] < lrs[2]  # cosine decay
    totals = [m["train/total"] for m in metrics]
    assert np.mean(totals[-3:]) < np.mean(totals[:3]), totals

    out_npz, out_onnx = tmp_path / "mine.npz", tmp_path / "mine.onnx"
    assert cli.main(["export", "--checkpoint", str(run), str(out_npz)]) == 0
    assert (
        cli.main(["export", "--format", "onnx", "--checkpoint", str(out_npz), str(out_onnx)]) == 0
    )
    image = np.asarray(Image.open(sorted(wave_image_dir.glob("*.png"))[0]).convert("RGB"))
    known = np.ones(image.shape[:2], bool)
    known[10:30, 20:40] = False
    by_jax = Inpainter.load(out_npz)(image, known)
    by_onnx = Inpainter.load(out_onnx)(image, known)
    np.testing.assert_array_equal(by_onnx[known], image[known])
    assert np.abs(by_onnx.astype(int) - by_jax.astype(int)).max() <= 1


def test_init_from_an_export_of_another_model_names_the_overrides(
    converted, wave_image_dir, tmp_path, capsys
):
    status = _train(tmp_path / "run", wave_image_dir, f"train.init_from={converted}")
    err = capsys.readouterr().err
    assert status == 2
    assert "--set model.io_range=symmetric" in err and "model.ratio" not in err
