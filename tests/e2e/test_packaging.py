"""The wheel a user installs holds every data file the package reads at run time."""

import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_wheel_holds_the_package_data(tmp_path):
    """A non-editable build (what `pip install pconv_jax` gives), not the source tree: a file
    that package_data misses is absent here although every in-tree test can read it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("pconv_jax-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data_files = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "pconv_jax").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert data_files, "the package ships data files (VGG weights, example photos)"
    missing = sorted(data_files - names)
    assert not missing, f"package_data misses {missing}"
    assert {n for n in names if n.endswith(".py")} >= {
        str(p.relative_to(ROOT)) for p in (ROOT / "pconv_jax").rglob("*.py")
    }
