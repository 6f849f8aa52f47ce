"""A `pconv export` .npz runs in a fresh process that cannot import orbax, optax or tfds."""

import pathlib
import subprocess
import sys
import textwrap

import pytest

from pconv_jax import cli


@pytest.mark.slow
def test_export_loads_without_orbax_optax_or_tfds(run_dir, tmp_path):
    out = tmp_path / "tiny.npz"
    assert cli.main(["export", "--checkpoint", str(run_dir), str(out)]) == 0
    script = textwrap.dedent(f"""
        import sys
        for name in ("orbax", "orbax.checkpoint", "optax", "tensorflow_datasets", "tensorflow"):
            sys.modules[name] = None  # any import of these now fails
        import numpy as np
        try:
            import optax
        except ImportError:
            pass
        else:
            raise AssertionError("the import block does not work")
        from pconv_jax import Inpainter
        inpainter = Inpainter.load({str(out)!r})
        known = np.ones((20, 30), bool)
        known[5:9, 4:20] = False
        out = inpainter(np.full((20, 30, 3), 100, np.uint8), known)
        assert out.shape == (20, 30, 3) and (out[known] == 100).all()
        print("ok")
    """)
    repo = pathlib.Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
