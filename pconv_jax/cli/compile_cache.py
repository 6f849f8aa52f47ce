"""The persistent JAX compilation cache of the `pconv` commands that run a model.

A new `pconv inpaint` process otherwise compiles the U-Net again for every shape bucket (tens of
seconds on a CPU, experiments/README.md "Compilation cache"); with the cache on, XLA's compiled
programs are written to disk and a later process with the same model, shapes, JAX version and
machine loads them instead. On by default in the user's cache directory
($XDG_CACHE_HOME/pconv_jax/jax_cache, else ~/.cache/pconv_jax/jax_cache); `--no-compile-cache`
turns it off, and so does PCONV_COMPILE_CACHE=off (the test suite sets it; a path there
moves the cache). JAX keys entries by program, backend and versions, so a stale entry is never used.
"""

from __future__ import annotations

import os
import pathlib

import jax


def default_dir() -> pathlib.Path | None:
    """$PCONV_COMPILE_CACHE if set ('off' or '0': no cache), else
    $XDG_CACHE_HOME/pconv_jax/jax_cache, else ~/.cache/pconv_jax/jax_cache."""
    override = os.environ.get("PCONV_COMPILE_CACHE")
    if override:
        return None if override.lower() in ("off", "0") else pathlib.Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "pconv_jax" / "jax_cache"


def enable(directory: str | os.PathLike | None) -> None:
    """Turns the persistent cache on in `directory` (created), or leaves it off when None.

    Must run before the process compiles anything: JAX decides once, at its first compilation,
    whether the cache is used.
    """
    if directory is None:
        return
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # Cache every program: the default (1 s) skips the small ones, whose compilations still add
    # up over the several programs of one forward pass.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
