"""`pconv train --workdir` on something that cannot be a run directory: one line naming the
path, exit 2, before anything is built or written (issue 29, item 11)."""

import errno
import os

from pconv_jax import cli


def _train(workdir) -> list[str]:
    return ["train", "--workdir", str(workdir), "--set", "train.num_steps=1"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_workdir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "run.txt"
    path.write_text("my notes")
    assert cli.main(_train(path)) == 2
    assert (
        _one_line(capsys) == f"pconv train: error: --workdir {path} is a file, not a run directory"
    )
    assert path.read_text() == "my notes"


def test_workdir_under_a_file(tmp_path, capsys):
    path = tmp_path / "run.txt"
    path.write_text("my notes")
    assert cli.main(_train(path / "run")) == 2
    err = _one_line(capsys)
    assert f"--workdir {path / 'run'} cannot be used as a run directory" in err
    assert "Not a directory" in err


def test_read_only_workdir(tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "shared_run"
    workdir.mkdir()
    workdir.chmod(0o555)
    if os.access(workdir, os.W_OK):  # root ignores the mode: the kernel's answer for others
        plain_open = os.open

        def refused(path, *args, **kwargs):
            if str(path).startswith(str(workdir)):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return plain_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", refused)
    try:
        assert cli.main(_train(workdir)) == 2
    finally:
        workdir.chmod(0o755)
    err = _one_line(capsys)
    assert err == (
        f"pconv train: error: --workdir {workdir} cannot be used as a run directory: "
        "Permission denied"
    )
