"""Config files, command-line overrides and their errors."""

import pathlib

import pytest

from pconv_jax import cli, config

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "configs"


def test_overrides_are_typed():
    cfg = config.override(
        config.default(),
        [
            "train.learning_rate=5e-5",
            "train.num_steps=7",
            "train.freeze_encoder_bn_stats=true",
            "data.dir=/tmp/x",
            "model.hole_fill=0.1,0.2,0.3",
            "data.mask_dilation=(3, 5)",
            "data.sr_factors=2,3,8",
            "train.eval_at_end=FALSE",
        ],
    )
    assert cfg.data.mask_dilation == (3, 5) and cfg.data.sr_factors == (2, 3, 8)
    assert cfg.train.eval_at_end is False and config.default().train.eval_at_end is True
    assert cfg.train.learning_rate == 5e-5 and cfg.train.num_steps == 7
    assert cfg.train.freeze_encoder_bn_stats is True
    assert cfg.data.dir == "/tmp/x"
    assert cfg.model.hole_fill == (0.1, 0.2, 0.3)
    assert config.default().train.learning_rate == 2e-4  # frozen: the default is untouched
    # An empty tuple (the Conv baseline keeps the input in its holes); the last assignment wins.
    cfg = config.override(cfg, ["model.hole_fill=()", "train.num_steps=3", "train.num_steps=4"])
    assert cfg.model.hole_fill == () and cfg.train.num_steps == 4


@pytest.mark.parametrize(
    "assignment, match",
    [
        ("train.lerning_rate=1", "unknown config key 'train.lerning_rate'"),
        ("nosuch.x=1", "unknown config key 'nosuch.x'"),
        ("train.num_steps=1.5", "train.num_steps expects an int, got '1.5'"),
        ("train.learning_rate=fast", "expects a float"),
        ("train.freeze_encoder_bn_stats=maybe", "expects a bool"),
        ("train=3", "is a section"),
        ("train.num_steps.x=3", r"unknown config key 'train.num_steps.x' \('num_steps' has no"),
        ("data.mask_dilation=3", r"data.mask_dilation expects .*tuple\[int, int\], got '3'"),
        ("data.sr_factors=2,x", r"data.sr_factors expects .*tuple\[int, \.\.\.\]"),
        ("train.num_steps", "not of the form key=value"),
        ("data.masks=folders", "data.masks must be one of 'generate', 'folder'; got 'folders'"),
        ("data.source=Folder", "data.source must be one of 'skimage', 'folder', 'tfds'"),
        ("train.compute_dtype=fp16", "train.compute_dtype must be one of 'float32', 'bfloat16'"),
    ],
)
def test_bad_overrides_name_the_key(assignment, match, capfd):
    with pytest.raises(ValueError, match=match):  # after a good one: the bad one is named
        config.override(config.default(), ["train.num_steps=5", assignment])
    assert capfd.readouterr() == ("", "")  # the one-line error is the caller's to print


def test_json_round_trip_and_unknown_keys():
    cfg = config.override(config.default(), ["data.sr_factors=2,4,8"])
    data = config.to_dict(cfg)
    assert config.from_dict(data) == cfg
    data["train"]["old_field"] = 1
    with pytest.raises(ValueError, match="train.old_field"):
        config.from_dict(data)
    del data["train"]["old_field"]
    data["data"]["task"] = "super-res"
    with pytest.raises(ValueError, match="data.task must be one of 'inpaint', 'superres'"):
        config.from_dict(data)


def test_choices_are_checked_at_load_before_anything_is_written(tmp_path):
    bad = tmp_path / "typo.py"
    bad.write_text(
        "import dataclasses\n"
        "from pconv_jax import config\n"
        "def get_config():\n"
        "    cfg = config.default()\n"
        "    data = dataclasses.replace(cfg.data, masks='generated')\n"
        "    return dataclasses.replace(cfg, data=data)\n"
    )
    with pytest.raises(ValueError, match="data.masks must be one of 'generate', 'folder'"):
        config.load(str(bad))
    # The CLI: one line, exit 2, and no run directory created.
    workdir = tmp_path / "run"
    argv = ["train", "--workdir", str(workdir), "--set", "data.masks=folders"]
    assert cli.main(argv) == 2
    assert not workdir.exists()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.py")), ids=lambda p: p.stem)
def test_every_experiment_config_loads(path):
    cfg = config.load(str(path))
    assert isinstance(cfg, config.Config)
    assert cfg.name == path.stem
    assert cfg.data.image_size % 2**cfg.model.num_layers == 0


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        config.load(str(tmp_path / "missing.py"))
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(ValueError, match="no get_config"):
        config.load(str(bad))
