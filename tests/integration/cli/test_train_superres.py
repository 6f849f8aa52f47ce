"""Super-resolution end to end in-process: `pconv train` on SR canvases (the tiny config, 2 steps),
then `pconv upscale` with the trained run. Upscaling on its own:
tests/unit/inference/test_upscale.py."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from pconv_jax import cli
from pconv_jax.store import checkpoint

TINY = pathlib.Path(__file__).resolve().parents[3] / "experiments" / "configs" / "tiny.py"


def _photo(height, width, seed=0):
    """A smooth colour pattern with noise, uint8 [height, width, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([(xx * 5 + yy * (c + 2)) % 256 for c in range(3)], -1)
    return np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def _upscale(*args):
    return cli.main(["upscale", *map(str, args)])


@pytest.mark.slow
def test_pconv_train_superres_then_upscale(tmp_path, capsys):
    """The real path: `pconv train` on SR canvases (tiny config, 2 steps), then `pconv upscale`."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(3):
        Image.fromarray(_photo(40, 44, seed=seed)).save(photos / f"{seed}.png")
    workdir = tmp_path / "run"
    train_args = ["--workdir", str(workdir), "--set", f"data.dir={photos}"]
    train_args += ["--set", "data.task=superres", "--set", "train.num_steps=2"]
    assert cli.main(["train", "--config", str(TINY), *train_args]) == 0
    cfg = checkpoint.read_config(workdir)
    assert cfg.data.task == "superres" and cfg.data.sr_factors == (2, 4)
    low = _photo(13, 10, seed=9)
    Image.fromarray(low).save(tmp_path / "low.png")
    out = tmp_path / "high.png"
    assert _upscale("--checkpoint", workdir, "--factor", 2, tmp_path / "low.png", "-o", out) == 0
    assert "13x10 -> 26x20 (x2, step 2)" in capsys.readouterr().out
    high = np.asarray(Image.open(out))
    np.testing.assert_array_equal(high[1::2, 1::2], low)
