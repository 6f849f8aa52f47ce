"""Super-resolution inference (paper Sec. 5.2): `upscale`, the bicubic baseline, `pconv upscale`
and the evaluation table (pconv_jax/eval/superres.py), on tiny random-weight checkpoints made
here."""

import dataclasses
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pconv_jax import Inpainter, cli
from pconv_jax.eval import baselines
from pconv_jax.eval import superres as sr_eval
from pconv_jax.inference import superres
from pconv_jax.store import checkpoint

import tolerances
from tiny_run import make_tiny_run

TINY = pathlib.Path(__file__).resolve().parents[3] / "experiments" / "configs" / "tiny.py"


def _make_sr_run(workdir, sr_factors=(2, 4)):
    """The tiny random-weight run of tiny_run.py, relabelled as trained for super-resolution."""
    cfg = make_tiny_run(workdir)
    data = dataclasses.replace(cfg.data, task="superres", sr_factors=sr_factors)
    checkpoint.write_config(workdir, dataclasses.replace(cfg, data=data))
    return workdir


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    return _make_sr_run(tmp_path_factory.mktemp("sr_run"))


@pytest.fixture(scope="module")
def upscaler(sr_run):
    inpainter, cfg, step = superres.load_upscaler(sr_run)
    assert cfg.data.task == "superres" and step == 7 and inpainter.strategy == "full"
    return inpainter


def _photo(height, width, seed=0):
    """A smooth colour pattern with noise, uint8 [height, width, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([(xx * 5 + yy * (c + 2)) % 256 for c in range(3)], -1)
    return np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def test_upscale_odd_sizes_return_the_low_res_pixels_exactly(upscaler):
    low = _photo(37, 29)
    high = superres.upscale(upscaler, low, 4)
    assert high.shape == (148, 116, 3) and high.dtype == np.uint8
    np.testing.assert_array_equal(high[2::4, 2::4], low)  # paper offset K//2 = 2
    others = np.ones((148, 116), bool)
    others[2::4, 2::4] = False
    assert len(np.unique(high[others])) > 20  # the holes were filled, not left at 0

    low_float = _photo(29, 37, seed=1).astype(np.float32) / 255.0
    high_float = superres.upscale(upscaler, low_float, 2)
    assert high_float.shape == (58, 74, 3) and high_float.dtype == np.float32
    np.testing.assert_array_equal(high_float[1::2, 1::2], low_float)
    assert high_float.min() >= 0.0 and high_float.max() <= 1.0

    both = superres.upscale(upscaler, [low, _photo(5, 3)], 4)
    assert [b.shape for b in both] == [(148, 116, 3), (20, 12, 3)]
    np.testing.assert_array_equal(both[0], high)  # batching does not change the result
    np.testing.assert_array_equal(both[1][2::4, 2::4], _photo(5, 3))


def test_upscale_is_the_network_on_the_hole_padded_canvas(upscaler):
    """Independent computation: canvas and bucket padding built by hand, model.apply directly."""
    low = _photo(37, 29, seed=2).astype(np.float32) / 255.0
    # Bucket step max(2**4, 64) = 64: 148 -> 192 rows, 116 -> 128 columns; padding is hole.
    canvas = np.zeros((1, 192, 128, 3), np.float32)
    mask = np.zeros((1, 192, 128, 1), np.float32)
    for i in range(37):
        for j in range(29):
            canvas[0, 4 * i + 2, 4 * j + 2] = low[i, j]
            mask[0, 4 * i + 2, 4 * j + 2] = 1.0
    variables = jax.device_get(upscaler.forward.variables)  # single-device copies of the weights
    expected = np.asarray(
        # Jitted on one device (eager runs op by op): another program than the sharded one.
        jax.jit(upscaler.forward.model.apply)(variables, jnp.asarray(canvas), jnp.asarray(mask))
    )
    scale = float(np.abs(expected).max())
    expected = np.clip(expected[0, :148, :116], 0.0, 1.0)

    raw = superres.upscale(upscaler, low, 4, keep_low_res=False)
    # Sharded jit vs single-device apply, two XLA programs: tolerances.network_atol over the
    # U-Net's reductions at the output's largest magnitude (was 2e-5, seen exceeded on a CPU).
    atol = tolerances.network_atol(tolerances.unet_reductions(4), scale)
    np.testing.assert_allclose(raw, expected, rtol=0, atol=atol)
    kept = superres.upscale(upscaler, low, 4)
    np.testing.assert_array_equal(kept[2::4, 2::4], low)
    assert np.abs(raw[2::4, 2::4] - low).max() > 0.05  # the network's own prediction there
    kept_elsewhere = kept.copy()
    kept_elsewhere[2::4, 2::4] = raw[2::4, 2::4]
    np.testing.assert_array_equal(kept_elsewhere, raw)  # only the low-res positions differ
    with pytest.raises(ValueError, match="composite=False needs strategy='full'"):
        Inpainter(upscaler.forward, train_size=32)(
            np.zeros((8, 8, 3), np.float32),
            np.ones((8, 8)),
            strategy="downscale",
            composite=False,
        )


def test_upscale_rejects_bad_input(upscaler):
    with pytest.raises(ValueError, match="integer >= 2, got 1"):
        superres.upscale(upscaler, _photo(4, 4), 1)
    with pytest.raises(ValueError, match=r"expected \[h, w, 3\] RGB, got shape \(4, 4\)"):
        superres.upscale(upscaler, np.zeros((4, 4), np.uint8), 2)
    with pytest.raises(ValueError, match="expected uint8 or float, got int32"):
        superres.upscale(upscaler, np.zeros((4, 4, 3), np.int32), 2)
    with pytest.raises(ValueError, match=r"in \[0,1\]"):
        superres.upscale(upscaler, np.full((4, 4, 3), 2.0, np.float32), 2)


def test_bicubic_baseline_is_keys_a_half_at_pixel_centres():
    """Keys' a = -0.5 cubic reproduces quadratics exactly; with the pixel-centre convention the
    high-res column x samples the low-res coordinate u = (x + 0.5) / K - 0.5."""
    width, factor = 16, 4
    j = np.arange(width, dtype=np.float64)
    quadratic = lambda u: 0.2 + 0.01 * u + 0.002 * u**2
    low = np.broadcast_to(quadratic(j)[None, :, None], (3, width, 3)).astype(np.float32)
    high = baselines.bicubic_upscale(low, factor)
    assert high.shape == (12, 64, 3) and high.dtype == np.float32
    u = (np.arange(factor * width) + 0.5) / factor - 0.5
    interior = (u >= 1) & (u <= width - 3)  # all four taps inside the image
    np.testing.assert_allclose(high[1, interior, 0], quadratic(u[interior]), atol=2e-6)
    # A -0.75 kernel (OpenCV's) or another alignment would miss by far more than the tolerance.
    shifted = quadratic(u[interior] + 0.5 / factor)
    assert np.abs(high[1, interior, 0] - shifted).max() > 1e-3

    constant = np.full((5, 7, 3), 77, np.uint8)
    np.testing.assert_array_equal(baselines.bicubic_upscale(constant, 3), np.full((15, 21, 3), 77))


def test_check_trained_for(sr_run, run_dir):
    sr_cfg, inpaint_cfg = checkpoint.read_config(sr_run), checkpoint.read_config(run_dir)
    superres.check_trained_for(sr_cfg, 4)
    with pytest.warns(superres.UntrainedFactorWarning, match=r"factor 3 .*\(2, 4\)"):
        superres.check_trained_for(sr_cfg, 3)
    with pytest.raises(ValueError, match="data.task='inpaint', not 'superres'"):
        superres.check_trained_for(inpaint_cfg, 4)
    superres.check_trained_for(inpaint_cfg, 4, force=True)


def _upscale(*args):
    return cli.main(["upscale", *map(str, args)])


def test_cli_upscale_run_dir_and_export_agree(sr_run, upscaler, tmp_path, capsys):
    low = _photo(37, 29, seed=3)
    Image.fromarray(low).save(tmp_path / "low.png")
    out = tmp_path / "out" / "high.png"
    assert _upscale("--checkpoint", sr_run, "--factor", 4, tmp_path / "low.png", "-o", out) == 0
    assert "37x29 -> 148x116 (x4, step 7)" in capsys.readouterr().out
    high = np.asarray(Image.open(out))
    np.testing.assert_array_equal(high, superres.upscale(upscaler, low, 4))
    np.testing.assert_array_equal(high[2::4, 2::4], low)

    export = tmp_path / "sr.npz"
    assert cli.main(["export", "--checkpoint", str(sr_run), str(export)]) == 0
    out_npz = tmp_path / "from_export.png"
    assert _upscale("--checkpoint", export, "--factor", 4, tmp_path / "low.png", "-o", out_npz) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out_npz)), high)

    out_raw = tmp_path / "raw.png"
    args = ("--checkpoint", sr_run, "--factor", 4, tmp_path / "low.png", "-o", out_raw)
    assert _upscale(*args, "--network-output") == 0
    raw = np.asarray(Image.open(out_raw))
    np.testing.assert_array_equal(raw, superres.upscale(upscaler, low, 4, keep_low_res=False))
    assert (raw[2::4, 2::4] != low).any()


def test_cli_upscale_errors_and_warnings(sr_run, run_dir, tmp_path, capsys):
    low_path = tmp_path / "low.png"
    Image.fromarray(_photo(9, 11)).save(low_path)
    out = tmp_path / "o.png"
    assert _upscale("--checkpoint", run_dir, "--factor", 4, low_path, "-o", out) == 2
    err = capsys.readouterr().err
    assert "trained for data.task='inpaint', not 'superres'" in err and "--force" in err
    assert not out.exists()
    assert _upscale("--checkpoint", run_dir, "--factor", 4, low_path, "-o", out, "--force") == 0
    assert "running a 'inpaint' model (--force)" in capsys.readouterr().err
    assert np.asarray(Image.open(out)).shape == (36, 44, 3)

    out3 = tmp_path / "x3.png"
    assert _upscale("--checkpoint", sr_run, "--factor", 3, low_path, "-o", out3) == 0
    assert "warning: factor 3 is not one the model was trained on" in capsys.readouterr().err
    high = np.asarray(Image.open(out3))
    assert high.shape == (27, 33, 3)
    np.testing.assert_array_equal(high[1::3, 1::3], _photo(9, 11))

    assert _upscale("--checkpoint", sr_run, "--factor", 1, low_path, "-o", out) == 2
    assert "--factor must be an integer >= 2, got 1" in capsys.readouterr().err
    assert _upscale("--checkpoint", sr_run, "--factor", 2, low_path, "-o", tmp_path / "o.jpg") == 2
    assert "must be a .png" in capsys.readouterr().err
    missing = tmp_path / "missing.png"
    assert _upscale("--checkpoint", sr_run, "--factor", 2, missing, "-o", out) == 2
    assert "image file not found" in capsys.readouterr().err


def _skimage_scores(output_uint8, target_uint8):
    psnr = peak_signal_noise_ratio(target_uint8, output_uint8, data_range=255)
    ssim = structural_similarity(
        target_uint8 / 255.0,
        output_uint8 / 255.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )
    return psnr, ssim


def test_eval_superres_table_matches_an_independent_computation(upscaler, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {"a.png": _photo(40, 48, seed=4), "b.png": _photo(52, 36, seed=5)}
    for name, photo in photos.items():
        Image.fromarray(photo).save(folder / name)
    Image.fromarray(_photo(20, 60)).save(folder / "small.png")  # shorter than the crop
    upscale = functools.partial(superres.upscale, upscaler, keep_low_res=False)
    model = dict(upscale=upscale, model_note="PConv: the tiny run", trained_factors=(2,))
    text = sr_eval.sr_table(folder, (2, 4), 32, **model)
    assert "2 images from" in text and "Skipped (short side < 32): small.png." in text
    assert "PConv: the tiny run; device " in text

    crops = {"a.png": photos["a.png"][4:36, 8:40], "b.png": photos["b.png"][10:42, 2:34]}
    expected = {}
    for factor in (2, 4):
        for crop in crops.values():
            cells = crop.astype(np.float64).reshape(32 // factor, factor, -1, factor, 3)
            low = np.round(cells.mean((1, 3))).astype(np.uint8)
            bicubic = np.asarray(Image.fromarray(low).resize((32, 32), Image.Resampling.BICUBIC))
            kept = superres.upscale(upscaler, low, factor)
            raw = superres.upscale(upscaler, low, factor, keep_low_res=False)
            for row, output in zip(sr_eval.ROWS, (bicubic, kept, raw)):
                expected.setdefault(row, {}).setdefault(factor, []).append(
                    _skimage_scores(output, crop)
                )
    lines = text.splitlines()
    header = "| method | x2 PSNR (dB) | x2 SSIM | x4 (untrained) PSNR (dB) | x4 (untrained) SSIM |"
    assert lines[lines.index(header) + 1] == "|---|---|---|---|---|"
    for row in sr_eval.ROWS:
        (line,) = [x for x in lines if x.startswith(f"| {row} |")]
        cells = [float(c) for c in line.strip("|").split("|")[1:]]
        want = []
        for factor in (2, 4):
            want += list(np.mean(expected[row][factor], axis=0))
        # Printed to 2 (PSNR) and 4 (SSIM) decimals: half a last digit (0.005, 5e-5) plus float32
        # against skimage's float64, an MSE over 32*32*3 values: tolerances.sum_atol(3072, 1)
        # = 4e-5 relative, 2e-4 dB; SSIM's float32 error is below 1e-6 (test_metrics.py).
        np.testing.assert_allclose(cells[0::2], want[0::2], atol=0.006)
        np.testing.assert_allclose(cells[1::2], want[1::2], atol=6e-5)
    assert expected[sr_eval.ROWS[1]] != expected[sr_eval.ROWS[2]]

    with pytest.raises(ValueError, match=r"factors \[4\] must be >= 2 and divide the crop side 30"):
        sr_eval.sr_table(folder, (2, 4), 30, **model)
