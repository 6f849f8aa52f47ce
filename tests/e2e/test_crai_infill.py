"""CRAI's evaluation test through the real command line: `pconv convert --from crai` then
`pconv infill` in fresh processes reproduce CRAI's `minimum-1_infilled.nc` (the bound of
tests/integration/inference/test_crai_reference.py)."""

from __future__ import annotations

import subprocess
import sys

from conftest import shared_path
from crai_reference import CRAI, compare_with_reference, conv_reductions


def _pconv(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pconv_jax", *map(str, args)], capture_output=True, text=True
    )


def test_convert_then_infill_reproduces_crai(tmp_path):
    checkpoint = shared_path(*CRAI, "minimum-1.inp.pth")
    given = shared_path(*CRAI, "tas_hadcrut_187709_189308.nc")
    reference = shared_path(*CRAI, "minimum-1_infilled.nc")
    export = tmp_path / "minimum-1.npz"
    done = _pconv("convert", "--from", "crai", checkpoint, export)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "minimum-1_infilled.nc"
    done = _pconv("infill", given, "--checkpoint", export, "-o", out, "--var", "tas")
    assert done.returncode == 0, done.stderr
    assert "2 time steps" in done.stdout
    compare_with_reference(out, given, reference, conv_reductions(export))
    again = _pconv("infill", given, "--checkpoint", export, "-o", out)  # exists: refused
    assert again.returncode == 2 and "exists" in again.stderr
