"""`pconv convert` refuses bad input with one line and exit status 2, and writes nothing.

Each case starts from a valid random checkpoint in the source's real structure (depth 4, see
tests/integration/store/test_convert.py) and breaks one thing: a missing, extra or mis-shaped
tensor, a mask kernel that is not all ones, the other source's file, files that are not
checkpoints, and a pickle that needs code to load (whose code must not run).
"""

import pickle

import numpy as np
import pytest
import torch

from pconv_jax import cli

from helpers.torch_sources import write_source_file


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    paths = {}
    for source in ("mmagic", "naoto0804"):
        paths[source] = folder / f"{source}.pth"
        write_source_file(source, paths[source], num_layers=4)
    return paths


def _convert(source, src, out, capsys):
    status = cli.main(["convert", "--from", source, str(src), str(out)])
    err = capsys.readouterr().err.strip()
    return status, err


def _broken(checkpoints, source, tmp_path, edit):
    """A copy of `source`'s checkpoint with `edit(state_dict)` applied, saved the same way."""
    checkpoint = torch.load(checkpoints[source], map_location="cpu", weights_only=True)
    edit(checkpoint["state_dict" if source == "mmagic" else "model"])
    path = tmp_path / "broken.pth"
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    return path


CASES = [
    ("mmagic", "missing", "generator.decoder.dec3.bn.running_var"),
    ("mmagic", "extra", "generator.decoder.dec3.bn.extra"),
    ("mmagic", "shape", "generator.encoder.enc2.conv.weight"),
    ("mmagic", "not_ones", "generator.encoder.enc3.conv.weight_mask_updater"),
    ("naoto0804", "missing", "dec_1.conv.input_conv.bias"),
    ("naoto0804", "extra", "enc_1.conv.input_conv.bias"),
    ("naoto0804", "shape", "enc_4.bn.running_mean"),
    ("naoto0804", "not_ones", "enc_2.conv.mask_conv.weight"),
]


@pytest.mark.parametrize("source,problem,key", CASES)
def test_tensor_problems_name_the_key(checkpoints, tmp_path, capsys, source, problem, key):
    def edit(state):
        if problem == "missing":
            del state[key]
        elif problem == "extra":
            state[key] = torch.zeros(3)
        elif problem == "shape":
            state[key] = state[key][:1].clone()
        else:
            state[key] = state[key].clone() * 2

    out = tmp_path / "out.npz"
    status, err = _convert(source, _broken(checkpoints, source, tmp_path, edit), out, capsys)
    assert status == 2 and len(err.splitlines()) == 1 and key in err, err
    word = {"missing": "missing", "extra": "unexpected", "shape": "shape", "not_ones": "ones"}
    assert word[problem] in err
    assert not out.exists() and not out.with_suffix(".md").exists()


def test_the_unbroken_files_convert(checkpoints, tmp_path, capsys):
    for source, src in checkpoints.items():
        assert _convert(source, src, tmp_path / f"{source}.npz", capsys)[0] == 0


@pytest.mark.parametrize("source,other", [("mmagic", "naoto0804"), ("naoto0804", "mmagic")])
def test_the_other_sources_file(checkpoints, tmp_path, capsys, source, other):
    status, err = _convert(source, checkpoints[other], tmp_path / "out.npz", capsys)
    assert status == 2 and len(err.splitlines()) == 1 and f"--from {other}" in err, err


def test_files_that_are_not_checkpoints(checkpoints, tmp_path, capsys):
    png = tmp_path / "photo.pth"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    npz = tmp_path / "arrays.pth"
    np.savez(open(npz, "wb"), a=np.zeros(3))
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    plain = tmp_path / "plain_dict.pth"
    torch.save({"weights": torch.zeros(3)}, plain)
    for path, words in [
        (png, "not a PyTorch checkpoint (neither a pickle nor a zip archive)"),
        (npz, "not a readable PyTorch checkpoint"),
        (tensor, "holds a Tensor, not a checkpoint dict"),
        (plain, "not an mmagic checkpoint"),
        (tmp_path / "absent.pth", "not found"),
    ]:
        status, err = _convert("mmagic", path, tmp_path / "out.npz", capsys)
        assert status == 2 and len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "out.npz").exists()


class _Marker:
    """Unpickling this runs code: it creates the file named in its state."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("how", ["torch_zip", "pickle_protocol_2", "pickle_protocol_5"])
def test_a_pickle_that_needs_code_is_refused_unrun(tmp_path, capsys, how):
    """Unpickling would create `marker` (a call to open); the file is refused before that."""
    marker = tmp_path / "code_ran"
    src = tmp_path / "evil.pth"
    if how == "torch_zip":
        torch.save({"state_dict": {"x": _Marker(marker)}}, src)
    else:
        src.write_bytes(pickle.dumps({"state_dict": _Marker(marker)}, protocol=int(how[-1])))
    status, err = _convert("mmagic", src, tmp_path / "out.npz", capsys)
    assert status == 2 and len(err.splitlines()) == 1 and "refused" in err, err
    if how != "pickle_protocol_5":  # protocol 5 stops at an opcode before the call is reached
        assert "needs code" in err and "open" in err, err
    assert not marker.exists()


def test_the_zip_format_converts_to_the_same_arrays(checkpoints, tmp_path, capsys):
    """Files re-saved by a newer torch (zip format) convert too, to identical arrays."""
    zipped = tmp_path / "zipped.pth"
    torch.save(torch.load(checkpoints["mmagic"], weights_only=True), zipped)
    assert _convert("mmagic", checkpoints["mmagic"], tmp_path / "a.npz", capsys)[0] == 0
    assert _convert("mmagic", zipped, tmp_path / "b.npz", capsys)[0] == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        for key in a.files:
            if not key.startswith("__"):
                np.testing.assert_array_equal(a[key], b[key])
