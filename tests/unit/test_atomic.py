"""`pconv_jax.atomic`: a file is replaced whole or left as it was, and writers go through it."""

import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from pconv_jax import atomic, images


def test_write_text_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "table.md"  # the folder is created
    atomic.write_text(path, "old\n")
    atomic.write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.md"]


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "export.npz"
    path.write_bytes(b"the good file")
    with pytest.raises(KeyboardInterrupt):
        with atomic.replacing(path) as temporary:
            temporary.write_bytes(b"half a fi")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"the good file"
    assert [p.name for p in tmp_path.iterdir()] == ["export.npz"]


def test_the_temporary_keeps_the_suffix_and_usual_permissions(tmp_path):
    path = tmp_path / "photo.jpg"
    with atomic.replacing(path) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".jpg"
        temporary.write_bytes(b"x")
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")  # what the user's umask gives any new file
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_save_png_interrupted_mid_file_keeps_the_previous_png(tmp_path, monkeypatch):
    """A writer routed through `atomic`: Pillow dying half-way leaves the old picture."""
    path = tmp_path / "result.png"
    images.save_png(np.zeros((4, 4, 3), np.uint8), path)
    before = path.read_bytes()

    def dies_half_way(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG\r\n")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", dies_half_way)
    with pytest.raises(OSError, match="No space"):
        images.save_png(np.full((4, 4, 3), 255, np.uint8), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]


def test_a_torn_last_line_is_cut_before_appending_again(tmp_path):
    log = tmp_path / "results.jsonl"
    log.write_text('{"pair": 0}\n{"pair": 1, "l1"')  # killed mid-append
    assert atomic.cut_torn_line(log) == '{"pair": 0}\n'
    assert log.read_text() == '{"pair": 0}\n'
    assert atomic.cut_torn_line(tmp_path / "absent.jsonl") == ""
    assert atomic.complete_lines('{"a": 1}\n\n{"b": 2}\n{"c"') == ['{"a": 1}', '{"b": 2}']


def test_metric_writer_resuming_after_a_kill_writes_parseable_lines(tmp_path):
    """A run killed mid-line, then resumed: the next line must not be glued to the half line."""
    from pconv_jax.train import writers

    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "loss": 1.5}\n{"step": 20, "lo')
    writer = writers.MetricWriter(tmp_path)
    writer.write_scalars(20, {"loss": 1.25})
    writer.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 10, "loss": 1.5},
        {"step": 20, "loss": 1.25},
    ]
