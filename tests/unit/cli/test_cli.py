"""The `pconv` command's error contract: user errors exit 2 on one line, bugs keep a traceback."""

import pytest

from pconv_jax import cli
from pconv_jax.cli import runs


def test_bad_config_choice_is_one_line_exit_2(capsys):
    assert cli.main(["info", "--set", "data.masks=folders"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pconv info: error: data.masks must be one of 'generate', 'folder'; got 'folders'"
    )


def test_missing_file_is_exit_2(tmp_path, capsys):
    argv = ["inpaint", "--checkpoint", str(tmp_path / "nowhere.npz"), "a.png", "m.png", "-o", "o"]
    assert cli.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_library_bug_keeps_its_traceback(monkeypatch):
    def broken(args):
        raise ValueError("internal invariant violated")  # not a UserError: a bug

    monkeypatch.setattr(runs, "cmd_info", broken)
    with pytest.raises(ValueError, match="internal invariant"):
        cli.main(["info"])
