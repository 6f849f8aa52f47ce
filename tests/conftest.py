"""Test setup: 4 fake CPU devices, strict rank promotion, helpers for ../shared data."""

import os
import pathlib

# Must happen before JAX initialises its backends.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> pathlib.Path:
    """Path under ../shared, or skip the test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture(scope="session")
def vgg_params():
    """The shipped ImageNet VGG16 (conv1_1..conv3_3), loaded once per test process."""
    from pconv_jax import vgg

    return vgg.load_vgg16_params()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny trained-looking inpainting run directory (tests/tiny_run.py), one per test module."""
    from tiny_run import make_tiny_run

    workdir = tmp_path_factory.mktemp("run")
    make_tiny_run(workdir)
    return workdir
