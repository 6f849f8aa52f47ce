"""`pconv convert --from crai` is exact: a converted CRAI model computes what CRAI's forward does.

Expected values: tests/torch_ref/crai.py, CRAI's forward re-written in PyTorch from its code,
loading the same checkpoint (independent computation). Allowed difference: the float32 bound of
tests/tolerances.py for the network's reductions (module docstring there), relative to the
largest output. Real files: CRAI's two trained models on the HadCRUT4 file's two real months
(72x72, ~73 % NaN; mask = not NaN, NaN -> 0 for torch, left NaN for ours). Random weights: the
default and the n_filters architectures on an odd grid (9x13: every level's size is odd), with
global padding, masked BN (training), normalisation statistics and bounds.
"""

import functools
import math

import jax
import numpy as np
import pytest
import torch

from pconv_jax import cli
from pconv_jax.errors import UserError
from pconv_jax.store import trained
from pconv_jax.store.converters import convert

from conftest import shared_path
from tolerances import network_atol
from torch_ref import crai

DEMO = "20crtasgn72.pth"  # demo_args.txt: --n-filters 18 --global-padding
MINIMUM = "minimum-1.inp.pth"  # default architecture (conv_factor 72), zeros padding


def reductions(layers, in_channels: int, out_channels: int) -> list[int]:
    """k·k·C_in of every convolution of a CRAINet with encoder `layers` (kernel, width, bn)."""
    widths = [in_channels] + [w for _, w, _ in layers]
    encoder = [k * k * c for (k, _, _), c in zip(layers, widths)]
    decoder, below = [], widths[-1]
    for skip in reversed(widths[:-1]):
        decoder.append(9 * (below + skip))
        below = skip
    return encoder + decoder


def torch_forward(model, values_nhwc, mask_nhwc):
    x = torch.from_numpy(np.nan_to_num(values_nhwc).transpose(0, 3, 1, 2).copy())
    mask_nhwc = np.broadcast_to(mask_nhwc, values_nhwc.shape)  # CRAI masks every channel
    m = torch.from_numpy(mask_nhwc.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        return model(x * m, m).numpy().transpose(0, 2, 3, 1)


def assert_close(ours, theirs, layers, c_in, c_out):
    atol = network_atol(reductions(layers, c_in, c_out), float(np.abs(theirs).max()))
    diff = float(np.abs(ours - theirs).max())
    assert diff <= atol, f"max |JAX - torch| = {diff:.3g} > bound {atol:.3g}"
    return diff, atol


def hadcrut():
    import xarray

    with xarray.open_dataset(
        shared_path("data", "climate", "crai", "tas_hadcrut_187709_189308.nc")
    ) as ds:
        values = ds["tas"].values.astype(np.float32)[..., None]  # [time, lat, lon, 1]
    return values, np.isfinite(values).astype(np.float32)


@pytest.mark.parametrize(
    "name, layers, flags",
    [
        (DEMO, crai.orig_layers(18, 3), ["--global-padding"]),
        (MINIMUM, crai.default_layers(72, 3, 0), []),
    ],
)
def test_real_crai_models_equal_crai_forward_on_hadcrut(tmp_path, capsys, name, layers, flags):
    src = shared_path("data", "climate", "crai", name)
    out = tmp_path / "model.npz"
    assert cli.main(["convert", "--from", "crai", *flags, str(src), str(out)]) == 0
    assert "pconv infill" in capsys.readouterr().out
    values, mask = hadcrut()
    assert 0.5 < 1 - mask.mean() < 0.9  # real coverage: most cells missing
    loaded = trained.load_export(out)
    ours = np.asarray(jax.jit(loaded.model.apply)(loaded.variables, values, mask))
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    reference = crai.from_checkpoint(ckpt, layers, global_padding=bool(flags))
    theirs = torch_forward(reference, values, mask)
    diff, atol = assert_close(ours, theirs, layers, 1, 1)
    scale = float(np.abs(theirs).max())
    print(f"{name}: max |JAX - CRAI| = {diff:.3g} K (bound {atol:.3g}, max |output| {scale:.3g})")


def _write(tmp_path, model, stats=None):
    ckpt = crai.checkpoint(model)
    if stats is not None:
        ckpt["train_stats"] = {"mean": list(stats[0]), "std": list(stats[1])}
    path = tmp_path / "crai.pth"
    torch.save(ckpt, path)
    return path


ARCHITECTURES = {
    "default": crai.default_layers(16, 3, 1),  # 4, 8, 16 then a pooling layer of 16
    "n_filters": crai.orig_layers(4, 5),  # 4, 8, 16, 32, 32
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("global_padding", [False, True])
def test_random_crai_models_equal_crai_forward_on_an_odd_grid(tmp_path, arch, global_padding):
    layers = ARCHITECTURES[arch]
    reference = crai.CRAINet(layers, 2, 2, global_padding=global_padding).eval()
    crai.randomize(reference, seed=len(layers) + global_padding)
    out = tmp_path / "model.npz"
    flags = {"global_padding": global_padding}
    convert.convert("crai", _write(tmp_path, reference), out, flags)
    rng = np.random.default_rng(7)
    values = rng.normal(size=(2, 9, 13, 2)).astype(np.float32)
    mask = (rng.random((2, 9, 13, 2)) > 0.5).astype(np.float32)  # per-variable masks
    loaded = trained.load_export(out)
    assert loaded.config.model.input_sizes == "any"
    ours = np.asarray(
        jax.jit(loaded.model.apply)(loaded.variables, np.where(mask > 0, values, np.nan), mask)
    )
    diff, atol = assert_close(ours, torch_forward(reference, values, mask), layers, 2, 2)
    print(f"{arch} global_padding={global_padding}: max diff {diff:.3g} (bound {atol:.3g})")


def test_normalisation_and_bounds_equal_crai(tmp_path):
    """--normalize-data with the checkpoint's train_stats and --min/--max-bounds: CRAI normalises
    the input, bounds the output in normalised units (bnd_normalization) and renormalises."""
    layers = crai.default_layers(8, 3, 0)
    mean, std = (280.0, 1010.0), (12.0, 8.0)
    low, high = (220.0, 980.0), (320.0, math.inf)
    n_low = [(lo - m) / s for lo, m, s in zip(low, mean, std)]
    n_high = [(hi - m) / s for hi, m, s in zip(high, mean, std)]
    bounds = np.stack([n_low, n_high], axis=1)
    reference = crai.CRAINet(layers, 2, 2, bounds=bounds).eval()
    crai.randomize(reference, seed=3)
    out = tmp_path / "model.npz"
    flags = {"normalize_data": True, "min_bounds": low, "max_bounds": high}
    convert.convert("crai", _write(tmp_path, reference, (mean, std)), out, flags)
    rng = np.random.default_rng(8)
    values = (rng.normal(size=(2, 9, 13, 2)) * std + mean).astype(np.float32)
    mask = (rng.random((2, 9, 13, 1)) > 0.3).astype(np.float32)
    loaded = trained.load_export(out)
    ours = np.asarray(jax.jit(loaded.model.apply)(loaded.variables, values, mask))
    m32, s32 = np.float32(mean), np.float32(std)
    normalised = ((values - m32) / s32).astype(np.float32)
    theirs = torch_forward(reference, normalised, mask) * s32 + m32
    assert np.all(ours[..., 0] >= 220.0 - 1e-3) and np.all(ours[..., 0] <= 320.0 + 1e-3)
    assert np.all(ours[..., 1] >= 980.0 - 1e-3)
    # The bound is relative to the physical output's scale (the renormalisation's rounding).
    diff, atol = assert_close(ours, theirs, layers, 2, 2)
    print(f"statistics and bounds: max diff {diff:.3g} (bound {atol:.3g})")


def test_masked_bn_training_step_equals_crai(tmp_path):
    """--masked-bn: in training mode (batch statistics over observed cells), the output and the
    updated running statistics equal CRAI's MaskedBatchNorm2d."""
    layers = crai.default_layers(8, 3, 0)
    reference = crai.CRAINet(layers, 1, 1, masked_bn=True)
    crai.randomize(reference, seed=4)
    out = tmp_path / "model.npz"
    convert.convert("crai", _write(tmp_path, reference), out, {"masked_bn": True})
    rng = np.random.default_rng(9)
    values = rng.normal(size=(3, 9, 13, 1)).astype(np.float32)
    mask = (rng.random((3, 9, 13, 1)) > 0.4).astype(np.float32)
    loaded = trained.load_export(out)
    train_apply = functools.partial(loaded.model.apply, train=True, mutable=["batch_stats"])
    ours, updated = jax.jit(train_apply)(loaded.variables, values, mask)
    theirs = torch_forward(reference.train(), values, mask)
    diff, atol = assert_close(np.asarray(ours), theirs, layers, 1, 1)
    print(f"masked BN training: max diff {diff:.3g} (bound {atol:.3g})")
    ran = reference.state_dict()["encoder.1.partial_conv.bn.running_var"].numpy()
    np.testing.assert_allclose(updated["batch_stats"]["enc2"]["bn"]["var"], ran, rtol=1e-4)


def _refusal(tmp_path, state_edit):
    reference = crai.CRAINet(crai.default_layers(8, 3, 0), 1, 1)
    ckpt = crai.checkpoint(reference)
    state_edit(ckpt["10"]["model"])
    path = tmp_path / "bad.pth"
    torch.save(ckpt, path)
    with pytest.raises(UserError) as error:
        convert.convert("crai", path, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
    return str(error.value)


def test_refuses_what_pconv_jax_cannot_express(tmp_path):
    lstm = _refusal(
        tmp_path, lambda s: s.update({"encoder.0.recurrent_conv.lstm_conv.weight": torch.zeros(3)})
    )
    assert "LSTM/GRU" in lstm and "encoder.0.recurrent_conv.lstm_conv.weight" in lstm
    attention = _refusal(
        tmp_path, lambda s: s.update({"attention_module.0.x.weight": torch.zeros(3)})
    )
    assert "attention" in attention and "attention_module.0.x.weight" in attention

    def fuse(state):  # channel fusion: encoder.1 takes 3 more channels than encoder.0 gives
        key = "encoder.1.partial_conv.input_conv.weight"
        state[key] = torch.zeros(8, 7, 5, 5)

    assert "channel fusion" in _refusal(tmp_path, fuse)


def test_flag_and_label_errors(tmp_path, capsys):
    reference = crai.CRAINet(crai.default_layers(8, 3, 0), 1, 1)
    path = _write(tmp_path, reference)
    with pytest.raises(UserError, match="no model labelled '7'; its labels are \\['10'\\]"):
        convert.convert("crai", path, tmp_path / "out.npz", {"label": "7"})
    with pytest.raises(UserError, match="stores no 'train_stats'"):
        convert.convert("crai", path, tmp_path / "out.npz", {"normalize_data": True})
    with pytest.raises(UserError, match="--min-bounds needs 1 or 1 values"):
        convert.convert("crai", path, tmp_path / "out.npz", {"min_bounds": (0.0, 1.0)})
    args = [
        "convert",
        "--from",
        "naoto0804",
        "--global-padding",
        str(path),
        str(tmp_path / "o.npz"),
    ]
    assert cli.main(args) == 2
    assert "--global-padding only apply to --from crai" in capsys.readouterr().err
    assert not list(tmp_path.glob("o*"))


def test_model_card_records_flags(tmp_path):
    reference = crai.CRAINet(crai.default_layers(8, 3, 0), 1, 1)
    path = _write(tmp_path, reference)
    out = tmp_path / "m.npz"
    assert (
        cli.main(
            [
                "convert",
                "--from",
                "crai",
                "--global-padding",
                "--max-bounds",
                "330",
                str(path),
                str(out),
            ]
        )
        == 0
    )
    text = out.with_suffix(".md").read_text()
    assert "pconv convert --from crai --global-padding --max-bounds 330 crai.pth OUT.npz" in text
    options = trained.load_export(out).config.model
    assert options.padding == "global" and options.output_max == (330.0,)
    assert options.output_min == (-math.inf,) and options.leaky_slope == 0.01
