"""Orbax checkpoints of a run: `model` (params, batch_stats) and `train` (optimizer state, step).

Layout: `workdir/config.json` and `workdir/checkpoints/<step>/{model,train}`. Saves are
asynchronous and atomic (orbax writes to a temporary directory and renames it when complete), so
a run killed mid-save restarts from the last complete checkpoint. Restoring is strict: the
checkpoint's tree must match the expected structure and shapes exactly, or a ValueError names
the first offending key. Arrays are restored onto the caller's shardings, so a run can resume
on a different number of devices than it saved from.
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from pconv_jax import config as config_lib
from pconv_jax.errors import UserError
from pconv_jax.store import checksums
from pconv_jax.store.trees import TreeMismatch, check_same_tree

log = logging.getLogger("pconv_jax.store.checkpoint")


class NoIntactCheckpoint(UserError):
    """A run directory holds checkpoints and none of them can be restored."""


def checkpoint_dir(workdir: str | pathlib.Path) -> pathlib.Path:
    return pathlib.Path(workdir).resolve() / "checkpoints"


class Checkpoints:
    """A run's checkpoint manager: keeps the last `keep_last` and every `keep_every`-th step."""

    def __init__(self, workdir, keep_last: int = 3, keep_every: int = 0, read_only: bool = False):
        policies = [ocp.checkpoint_managers.LatestN(n=max(keep_last, 1))]
        if keep_every > 0:
            policies.append(ocp.checkpoint_managers.EveryNSteps(interval_steps=keep_every))
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            create=not read_only,
            read_only=read_only,
            enable_async_checkpointing=not read_only,
        )
        directory = checkpoint_dir(workdir)
        self.directory = directory
        self._read_only = read_only
        if read_only and not directory.is_dir():
            raise FileNotFoundError(f"no checkpoints in {workdir} (expected {directory})")
        # Registered items: without them a manager that has not saved in this process (a resume,
        # or a read-only reader) reports no metadata for the items and cannot restore.
        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        for name in ("model", "train"):
            registry.add(name, ocp.args.StandardSave)
            registry.add(name, ocp.args.StandardRestore)
        self._manager = ocp.CheckpointManager(directory, options=options, handler_registry=registry)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, model_vars: dict, train_vars: dict) -> None:
        """Starts an asynchronous save; `wait()` blocks until it is on disk."""
        self.wait()  # the previous save is committed: hash it
        self._manager.save(
            int(step),
            args=ocp.args.Composite(
                model=ocp.args.StandardSave(model_vars), train=ocp.args.StandardSave(train_vars)
            ),
            force=True,
        )

    def restore(self, step: int, model_target: Any, train_target: Any | None = None):
        """Restores `model` (and `train` if a target is given) onto the targets' shardings.

        Targets are pytrees of `jax.ShapeDtypeStruct` (or arrays). Returns (model, train|None).
        """
        metadata = self._manager.item_metadata(step)
        items = {"model": model_target}
        if train_target is not None:
            items["train"] = train_target
        for name, target in items.items():
            if metadata[name] is None:
                raise UserError(f"checkpoint step {step} has no '{name}' item")
            check_same_tree(metadata[name], target, f"checkpoint item '{name}'")
        args = {k: ocp.args.StandardRestore(_abstract(v)) for k, v in items.items()}
        restored = self._manager.restore(step, args=ocp.args.Composite(**args))
        return restored["model"], restored["train"] if train_target is not None else None

    def wait(self) -> None:
        self._manager.wait_until_finished()
        if not self._read_only and jax.process_index() == 0:
            checksums.write_missing(self.directory, self._manager.all_steps())

    def close(self) -> None:
        self.wait()
        self._manager.close()


def _reason(error: BaseException) -> str:
    """The innermost cause's first line: TensorStore's own message says which file and why,
    the wrappers around it print the whole array spec."""
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


def restore_newest_intact(ckpts: Checkpoints, model_target, train_target=None, agree=None):
    """Restores the newest checkpoint that reads back whole, newest first.

    A checkpoint whose files are missing, truncated or overwritten (any read error other than a
    tree mismatch) is reported with a warning naming its step and the reason, and the next older
    one is tried. `agree(failed) -> bool` makes the processes of a multi-process run take the
    same decision (distributed.any_process). Returns (step, model, train) or None when the run
    has no checkpoint; raises NoIntactCheckpoint when it has some and none restores, so that a
    run never starts from scratch over existing checkpoints.
    """
    agree = agree or bool
    damaged = []
    for step in sorted(ckpts.all_steps(), reverse=True):
        error = checksums.verify(ckpts.directory, step)
        if error is None:
            try:
                model, train = ckpts.restore(step, model_target, train_target)
            except TreeMismatch:
                raise
            except Exception as e:  # orbax/TensorStore raise many kinds for damaged files
                error = _reason(e)
        if agree(error is not None):
            reason = error if error is not None else "unreadable on another process"
            log.warning("checkpoint step %d is damaged or unreadable: %s", step, reason)
            damaged.append(f"step {step}: {reason}")
            continue
        if damaged:
            log.warning(
                "resuming from step %d, the newest intact checkpoint (skipped damaged: %s)",
                step,
                "; ".join(damaged),
            )
        return step, model, train
    if damaged:
        raise NoIntactCheckpoint(
            f"none of the checkpoints in {ckpts.directory} can be restored ("
            + "; ".join(damaged)
            + "); not training from scratch over them: repair or move that folder away"
        )
    return None


def _abstract(tree):
    def one(x):
        sharding = getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree_util.tree_map(one, tree)


def read_config(workdir) -> config_lib.Config:
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{workdir} is not a pconv_jax run directory (no config.json)")
    return config_lib.from_dict(json.loads(path.read_text(encoding="utf-8")))


def write_config(workdir, cfg: config_lib.Config) -> None:
    path = pathlib.Path(workdir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_lib.to_json(cfg), encoding="utf-8")
