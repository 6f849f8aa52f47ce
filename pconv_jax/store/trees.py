"""Comparing pytrees by key path: what a checkpoint or export holds against what a model expects."""

from __future__ import annotations

import jax
import numpy as np

from pconv_jax.errors import UserError


def path_str(path) -> str:
    """'a/b/0/mu' for a key path (dict keys, attributes and sequence indices alike)."""
    return jax.tree_util.keystr(path, simple=True, separator="/")


def leaves_by_path(tree) -> dict:
    """{'a/b/0/mu': leaf} of a pytree."""
    return {path_str(p): v for p, v in jax.tree_util.tree_leaves_with_path(tree)}


class TreeMismatch(UserError):
    """A saved tree differs from the model's (a config mismatch, not damage)."""


def check_same_tree(saved, target, item: str) -> None:
    """Raises ValueError naming the first key whose presence or shape (and, for arrays on both
    sides, dtype) differs between `saved` and the `target` the model expects."""
    saved_leaves = leaves_by_path(saved)
    target_leaves = leaves_by_path(target)
    for key in sorted(target_leaves):
        if key not in saved_leaves:
            raise TreeMismatch(f"{item} lacks {key} that the model expects")
    for key in sorted(saved_leaves):
        if key not in target_leaves:
            raise TreeMismatch(f"{item} holds {key} that the model does not have")
        saved_shape = tuple(getattr(saved_leaves[key], "shape", ()) or ())
        target_shape = tuple(np.shape(target_leaves[key]))
        if saved_shape != target_shape:
            raise TreeMismatch(
                f"{item} {key} has shape {saved_shape}, the model expects {target_shape}"
            )
        saved_dtype = getattr(saved_leaves[key], "dtype", None)
        if isinstance(saved_leaves[key], np.ndarray) and saved_dtype != target_leaves[key].dtype:
            raise TreeMismatch(
                f"{item} {key} has dtype {saved_dtype}, the model expects "
                f"{target_leaves[key].dtype}"
            )
