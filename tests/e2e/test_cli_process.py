"""`python -m pconv_jax` in a fresh process runs the same parser as `pconv` (tests/unit/cli)."""

import subprocess
import sys


def test_python_dash_m_runs_the_same_parser():
    done = subprocess.run(
        [sys.executable, "-m", "pconv_jax", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("train", "inpaint", "export", "evaluate", "upscale", "make-test-masks"):
        assert command in done.stdout


def test_bad_paths_end_in_one_line_and_exit_2_in_a_real_process(tmp_path):
    """Issue 29, items 10 and 11, as a user meets them: an output equal to its input, and a
    --workdir that is a file. stderr holds exactly one line and no traceback; nothing changes."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"the user's photo")  # refused before it is read
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    for argv, expected in [
        (
            ["inpaint", "--checkpoint", str(tmp_path), str(photo), "--mask", str(photo)]
            + ["-o", str(photo)],
            f"pconv inpaint: error: the output {photo} is the input {photo}",
        ),
        (
            ["train", "--workdir", str(notes)],
            f"pconv train: error: --workdir {notes} is a file, not a run directory",
        ),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "pconv_jax", *argv], capture_output=True, text=True
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and expected in done.stderr
    assert photo.read_bytes() == b"the user's photo" and notes.read_text() == "my notes"
