"""`python -m pconv_jax` in a fresh process runs the same parser as `pconv` (tests/unit/cli)."""

import subprocess
import sys


def test_python_dash_m_runs_the_same_parser():
    done = subprocess.run(
        [sys.executable, "-m", "pconv_jax", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("train", "inpaint", "export", "evaluate", "upscale", "make-test-masks"):
        assert command in done.stdout
