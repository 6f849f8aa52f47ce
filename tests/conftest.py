"""Test setup: 4 fake CPU devices, strict rank promotion, one compilation cache per machine,
helpers for ../shared data. Tiers: tests/unit (the fast tier: in-process, no training run
longer than a few steps, XLA's optimisations off), tests/integration (in-process training runs,
evaluation, reports, full-depth cross-checks), tests/e2e (other processes: `pconv`
subprocesses, grain workers, the server and a browser, multi-process runs)."""

import os
import pathlib

# Must happen before JAX initialises its backends.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# `pconv inpaint` run in-process must not fill the user's JAX compilation cache.
os.environ.setdefault("PCONV_COMPILE_CACHE", "off")

# One persistent compilation cache per machine, kept between test runs: pytest-xdist's workers
# and every process a test starts (`pconv` subprocesses, grain workers, servers) inherit these
# variables, so a program that several of them compile (the tiny U-Net's train step, VGG
# features, metrics) is compiled once, and a rerun compiles only what changed. The cache key
# covers the program, the JAX and XLA versions, the devices and the compile options (the unit
# tier's unoptimised programs are other entries), so a hit runs the same executable a fresh
# compilation would give. Least recently used entries go beyond 2 GiB. Set
# JAX_COMPILATION_CACHE_DIR to put it elsewhere.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    str(
        pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
        / "pconv_jax"
        / "tests-jax-cache"
    ),
)
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 1024**3))  # bytes
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # cache every program
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")  # of any size

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

UNIT_TIER = pathlib.Path(__file__).resolve().parent / "unit"
_NO_OPTIMISATIONS = "jax_disable_most_optimizations"


# The fast tier runs with XLA's optimisations off. A unit test checks what a program computes on
# tiny inputs, not how fast it runs, so its cost is XLA's compilation; backend optimisation level
# 0 with LLVM's expensive passes off roughly halves the CPU time of these many small compilations
# (the README's U-Net example in test_docs.py: 18 -> 10 CPU-s). The flag is set around each unit
# test's setup (session fixtures it creates included), call and teardown, and restored after, so
# an integration or e2e test that the same xdist worker runs next compiles optimised programs.
# The flag is part of the persistent cache's key (the compile options): the two kinds of
# executable never mix there. (A hook here, not a tests/unit/conftest.py: a second module named
# conftest would shadow this one's `shared_path` for the tests that import it.)
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _unit_tier_unoptimised(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _unit_tier_unoptimised(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    return (yield from _unit_tier_unoptimised(item))


def _unit_tier_unoptimised(item):
    """Runs the wrapped hook (the `yield`) with XLA's optimisations off for a test under
    tests/unit, unchanged for any other, and restores the flag after."""
    before = jax.config.read(_NO_OPTIMISATIONS)
    jax.config.update(_NO_OPTIMISATIONS, before or UNIT_TIER in item.path.parents)
    try:
        return (yield)
    finally:
        jax.config.update(_NO_OPTIMISATIONS, before)


# PCONV_SHARED overrides the location (a git worktree elsewhere has no ../shared beside it).
SHARED = pathlib.Path(
    os.environ.get("PCONV_SHARED", pathlib.Path(__file__).resolve().parents[1].parent / "shared")
)


def shared_path(*parts: str) -> pathlib.Path:
    """Path under ../shared, or skip the test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture(scope="session")
def vgg_params():
    """The shipped ImageNet VGG16 (conv1_1..conv3_3), loaded once per test process."""
    from pconv_jax.nn import vgg

    return vgg.load_vgg16_params()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """A tiny trained-looking inpainting run directory (tests/tiny_run.py), made once per test
    process and only read by the tests (nine modules use it)."""
    from tiny_run import make_tiny_run

    workdir = tmp_path_factory.mktemp("run")
    make_tiny_run(workdir)
    return workdir


def write_wave_images(folder: pathlib.Path, count: int = 6) -> pathlib.Path:
    """`count` 64x48 RGB PNGs of coloured waves plus noise (a tiny training folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    for i in range(count):
        waves = np.stack([np.sin(xx / 5 + i), np.cos(yy / 7 - i), np.sin((xx + yy) / 9)], -1)
        pixels = waves * 100 + 128 + rng.normal(0, 10, (48, 64, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="session")
def wave_image_dir(tmp_path_factory):
    """A folder of six small wave photos for training runs (tests/conftest.py)."""
    return write_wave_images(tmp_path_factory.mktemp("wave_images"))
