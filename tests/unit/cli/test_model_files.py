"""Model files that are not what a command expects get one line that says what they are and
what to do (issue 29, item 12): a PyTorch checkpoint given as --checkpoint points to `pconv
convert`; numpy's `allow_pickle` advice (which would run a file's code) is never shown;
`pconv convert` names the other source only for that source's files; `pconv export x.onnx`
takes its format from the suffix."""

import pickle

import numpy as np
import onnx
import pytest
import torch

from pconv_jax import cli


def _error(capsys, argv) -> str:
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "allow_pickle" not in err, err
    return err


def _inpaint_with(checkpoint) -> list:
    return ["inpaint", "--checkpoint", checkpoint, "a.png", "m.png", "-o", "out.png"]


@pytest.mark.parametrize("how", ["zip", "legacy_pickle"])
def test_a_pytorch_checkpoint_points_to_pconv_convert(tmp_path, capsys, how):
    path = tmp_path / "model.pth"
    state = {"model": {"enc_1.conv.input_conv.weight": torch.zeros(2, 3, 7, 7)}, "n_iter": 5}
    torch.save(state, path, _use_new_zipfile_serialization=how == "zip")
    err = _error(capsys, _inpaint_with(path))
    assert f"{path} is a PyTorch checkpoint, not a pconv_jax export" in err
    assert f"pconv convert --from mmagic|naoto0804 {path} OUT.npz" in err


def test_files_that_are_no_export_never_show_numpy_advice(tmp_path, capsys):
    random_bytes = tmp_path / "weights.npz"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    err = _error(capsys, _inpaint_with(random_bytes))
    assert "is not a pconv_jax export (an .npz file)" in err and "pconv export" in err

    objects = tmp_path / "objects.npz"  # an .npz with a pickled object array inside
    np.savez(objects, table=np.array([{"a": 1}], dtype=object))
    err = _error(capsys, _inpaint_with(objects))
    assert "holds pickled Python objects" in err and "refused" in err

    a_pickle = tmp_path / "model.bin"
    a_pickle.write_bytes(pickle.dumps({"weights": [1.0]}, protocol=4))
    assert "is a PyTorch checkpoint" in _error(capsys, _inpaint_with(a_pickle))

    plain = tmp_path / "arrays.npz"
    np.savez(plain, x=np.zeros(3))
    err = _error(capsys, _inpaint_with(plain))
    assert "is an .npz but not a pconv_jax export" in err
    assert "`pconv export` makes one from a training run" in err and "`pconv convert`" in err


def test_convert_names_the_other_source_only_for_its_files(tmp_path, capsys):
    """A generic checkpoint with the other source's top-level key is not called that source's."""
    lightning_like = tmp_path / "classifier.pth"
    torch.save({"state_dict": {"backbone.weight": torch.zeros(3)}}, lightning_like)
    err = _error(capsys, ["convert", "--from", "naoto0804", lightning_like, tmp_path / "o.npz"])
    assert "mmagic" not in err and "not a naoto0804 checkpoint: no 'model' entry" in err

    trainer_like = tmp_path / "trainer.pth"
    torch.save({"model": {"fc.weight": torch.zeros(3)}, "n_iter": 3}, trainer_like)
    err = _error(capsys, ["convert", "--from", "mmagic", trainer_like, tmp_path / "o.npz"])
    assert "naoto0804" not in err and "not an mmagic checkpoint" in err
    assert not (tmp_path / "o.npz").exists()


def test_export_takes_the_format_from_the_suffix(run_dir, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert cli.main(["export", "--checkpoint", str(run_dir), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    graph = onnx.load(str(out)).graph  # an ONNX model, not an .npz under an .onnx name
    assert [i.name for i in graph.input] and graph.node
    err = _error(capsys, ["export", "--checkpoint", run_dir, tmp_path / "model.bin"])
    assert "the export is a .npz file or an .onnx file (the suffix picks the format)" in err
    err = _error(capsys, ["export", "--checkpoint", run_dir, "--format", "npz", out])
    assert "the export is a .npz file; got output path" in err
