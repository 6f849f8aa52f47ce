"""CRAI's two trained models infilling the HadCRUT4 file through our converter and Infiller.

`minimum-1.inp.pth` with the arguments of CRAI's evaluation test (minimum-1.inp: no
normalisation, no mask file, the default architecture) must reproduce CRAI's own reference
output `minimum-1_infilled.nc`; the demo model `20crtasgn72.pth` (no published output) must give
CRAI's composite of its forward re-written in PyTorch. Observed cells bit for bit, infilled
cells within the float32 bound of two evaluations of the same network (tests/tolerances.py)."""

from __future__ import annotations

import numpy as np
import torch
import xarray

from pconv_jax import cli
from pconv_jax.inference.infiller import Infiller

from conftest import shared_path
from crai_reference import CRAI, compare_with_reference, conv_reductions
from tolerances import network_atol
from torch_ref import crai


def test_minimum_1_reproduces_crai_reference_output(tmp_path):
    checkpoint = shared_path(*CRAI, "minimum-1.inp.pth")
    given = shared_path(*CRAI, "tas_hadcrut_187709_189308.nc")
    reference = shared_path(*CRAI, "minimum-1_infilled.nc")
    export = tmp_path / "minimum-1.npz"
    assert cli.main(["convert", "--from", "crai", str(checkpoint), str(export)]) == 0
    out = tmp_path / "minimum-1_infilled.nc"
    report = Infiller.load(export).infill_file(given, out, ["tas"], progress=False)
    assert report.num_steps == 2 and report.empty_steps == {"tas": []}
    compare_with_reference(out, given, reference, conv_reductions(export))


def test_demo_model_infills_the_file_as_crai_forward_does(tmp_path):
    """CRAI's demo (20crtasgn72.pth, --n-filters 18 --global-padding) has no published output:
    expected = CRAI's composite `mask * image + (1 - mask) * output` (utils/evaluation.py) of
    its forward re-written in PyTorch (tests/torch_ref/crai.py), an independent computation."""
    checkpoint = shared_path(*CRAI, "20crtasgn72.pth")
    given = shared_path(*CRAI, "tas_hadcrut_187709_189308.nc")
    export = tmp_path / "demo.npz"
    assert (
        cli.main(["convert", "--from", "crai", str(checkpoint), str(export), "--global-padding"])
        == 0
    )
    out = tmp_path / "demo_infilled.nc"
    Infiller.load(export).infill_file(given, out, ["tas"], progress=False)
    with xarray.open_dataset(given) as source, xarray.open_dataset(out) as result:
        image = source["tas"].values[:, None]  # [time, 1, lat, lon] as CRAI's loader gives
        ours = result["tas"].values[:, None]
    mask = np.isfinite(image).astype(np.float32)
    image = np.nan_to_num(image)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = crai.from_checkpoint(ckpt, crai.orig_layers(18, 3), global_padding=True)
    with torch.no_grad():
        output = model(torch.from_numpy(image * mask), torch.from_numpy(mask)).numpy()
    theirs = mask * image + (1 - mask) * output
    observed = mask.astype(bool)
    np.testing.assert_array_equal(ours[observed], theirs[observed])  # bit for bit
    atol = network_atol(conv_reductions(export), float(np.abs(theirs[~observed]).max()))
    difference = float(np.abs(ours[~observed] - theirs[~observed]).max())
    assert difference <= atol, (difference, atol)
    print(f"20crtasgn72: max |ours - CRAI forward| = {difference:.3g} K (bound {atol:.3g})")
