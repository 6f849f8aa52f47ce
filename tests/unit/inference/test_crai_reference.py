"""CRAI's own evaluation test, run with our converter and Infiller: `minimum-1.inp.pth` infilling
`tas_hadcrut_187709_189308.nc` (the arguments of CRAI's tests/in/evaluation/minimum-1.inp: no
normalisation, no mask file, the default architecture) must reproduce CRAI's reference output
`minimum-1_infilled.nc`: observed cells bit for bit, infilled cells within the float32 bound of
two evaluations of the same network (tests/tolerances.py)."""

from __future__ import annotations

from pconv_jax import cli
from pconv_jax.inference.infiller import Infiller

from conftest import shared_path
from crai_reference import CRAI, compare_with_reference, conv_reductions


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
