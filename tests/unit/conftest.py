"""The fast tier: every test here runs with XLA's optimisations off.

A unit test checks what a program computes on tiny inputs, not how fast it runs, so its cost is
XLA's compilation; `jax_disable_most_optimizations` (backend optimisation level 0, LLVM's
expensive passes off) roughly halves the CPU time of these many small compilations (the README's
U-Net example in test_docs.py: 18 -> 10 CPU-s). The flag is set around each test's setup, call
and teardown (session fixtures a test creates included) and restored after, so an integration or
e2e test that the same xdist worker runs next compiles optimised programs. The flag is in the
persistent cache's key (the compile options), so the two kinds of executable never mix there.
"""

import jax
import pytest

_FLAG = "jax_disable_most_optimizations"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _unoptimised())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _unoptimised())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    return (yield from _unoptimised())


def _unoptimised():
    """Runs the wrapped hook (the generator's `yield`) with the flag on, then restores it."""
    before = jax.config.read(_FLAG)
    jax.config.update(_FLAG, True)
    try:
        return (yield)
    finally:
        jax.config.update(_FLAG, before)
