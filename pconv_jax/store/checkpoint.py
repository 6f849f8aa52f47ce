"""Orbax checkpoints of a run: `model` (params, batch_stats) and `train` (optimizer state, step).

Layout: `workdir/config.json` and `workdir/checkpoints/<step>/{model,train}`. Saves are
asynchronous and atomic (orbax writes to a temporary directory and renames it when complete), so
a run killed mid-save restarts from the last complete checkpoint. A resume that finds the newest
checkpoints damaged moves them to `workdir/damaged_checkpoints/<step>-<UTC time>/` (see
`restore_newest_intact`). Restoring is strict: the
checkpoint's tree must match the expected structure and shapes exactly, or a ValueError names
the first offending key. Arrays are restored onto the caller's shardings, so a run can resume
on a different number of devices than it saved from.
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from pconv_jax import atomic, config
from pconv_jax.errors import UserError
from pconv_jax.store import checksums
from pconv_jax.store.trees import TreeMismatch, check_same_tree

log = logging.getLogger("pconv_jax.store.checkpoint")

DAMAGED = "damaged_checkpoints"  # beside `checkpoints/`: where damaged steps are set aside
# Validation's best step (train/validation.py): its metrics in workdir/best.json, its checkpoint
# in workdir/best/<step>/.
BEST_FILE, BEST_DIR = "best.json", "best"


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

    @property
    def read_only(self) -> bool:
        return self._read_only

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

    def set_aside(self, step: int, reason: str) -> pathlib.Path:
        """Moves checkpoint `step` out of the manager's folder; returns where it went.

        The step's files go, unchanged, to `workdir/damaged_checkpoints/<step>-<UTC time>/
        checkpoint/`, its manifest (if any) to `checksums.json` beside them, and `reason` to
        `reason.txt`. The folder is moved first: a run killed in between leaves a manifest of a
        step that is gone, which the next save removes (checksums.write_missing). One process
        (process 0) moves; every process then calls `reload()`.
        """
        if self._read_only:
            raise ValueError(f"read-only checkpoints of {self.directory} cannot be moved")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.directory.parent / DAMAGED / f"{step}-{stamp}"
        for n in range(1, 1000):
            if not aside.exists():
                break
            aside = aside.with_name(f"{step}-{stamp}-{n}")
        aside.mkdir(parents=True)
        (self.directory / str(step)).rename(aside / "checkpoint")
        manifest = checksums.manifest_path(self.directory, step)
        if manifest.is_file():
            manifest.rename(aside / "checksums.json")
        atomic.write_text(aside / "reason.txt", reason + "\n")
        return aside

    def reload(self) -> None:
        """Re-reads which steps exist (orbax caches them; a step moved away must be forgotten,
        or saving that step again raises orbax's StepAlreadyExistsError)."""
        self._manager.reload()

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
    one is tried. When an older one restores and `ckpts` is writable, the damaged newer steps are
    set aside (`Checkpoints.set_aside`, logged) so that training can save those steps again; a
    read-only reader moves nothing. `agree(failed) -> bool` makes the processes of a
    multi-process run take the same decisions (distributed.any_process). Returns (step, model,
    train) or None when the run has no checkpoint; raises NoIntactCheckpoint when it has some and
    none restores (nothing is moved then), so that a run never starts from scratch over
    existing checkpoints.
    """
    agree = agree or bool
    damaged: dict[int, str] = {}
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
            damaged[step] = reason
            continue
        if damaged:
            log.warning(
                "resuming from step %d, the newest intact checkpoint (skipped damaged: %s)",
                step,
                "; ".join(f"step {s}: {r}" for s, r in damaged.items()),
            )
            if not ckpts.read_only:
                _set_aside(ckpts, damaged, agree)
        return step, model, train
    if damaged:
        raise NoIntactCheckpoint(
            f"none of the checkpoints in {ckpts.directory} can be restored ("
            + "; ".join(f"step {s}: {r}" for s, r in damaged.items())
            + "); not training from scratch over them: repair or move that folder away"
        )
    return None


def _set_aside(ckpts: Checkpoints, damaged: dict[int, str], agree) -> None:
    """Process 0 moves the `damaged` steps away; then every process forgets them.

    The agreement is also the barrier: no process re-reads the folder before process 0 moved.
    """
    error = None
    if jax.process_index() == 0:
        try:
            for step, reason in damaged.items():
                aside = ckpts.set_aside(step, reason)
                log.warning("set aside damaged checkpoint step %d as %s", step, aside)
        except OSError as e:
            error = e
    if agree(error is not None):
        raise UserError(
            f"could not move the damaged checkpoints {sorted(damaged)} out of {ckpts.directory} "
            f"({error or 'see the log of process 0'}); move them away by hand"
        )
    ckpts.reload()


def _abstract(tree):
    def one(x):
        sharding = getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree_util.tree_map(one, tree)


def read_config(workdir) -> config.Config:
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{workdir} is not a pconv_jax run directory (no config.json)")
    return config.from_dict(json.loads(path.read_text(encoding="utf-8")))


def write_config(workdir, cfg: config.Config) -> None:
    atomic.write_text(pathlib.Path(workdir) / "config.json", config.to_json(cfg))


def read_best(workdir: pathlib.Path) -> dict | None:
    """The run's best.json ({"step", the metric values}), or None without validation."""
    path = workdir / BEST_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def best_checkpoint(workdir) -> tuple[pathlib.Path, int]:
    """(the run directory holding the best checkpoint, its step) of a run with validation.

    Raises:
      FileNotFoundError: the run has no best.json (validation was off) or no best/ checkpoint.
    """
    workdir = pathlib.Path(workdir)
    best = read_best(workdir)
    if best is None:
        raise FileNotFoundError(
            f"{workdir} has no {BEST_FILE}: it was trained without validation "
            "(train.eval_every / train.eval_at_end)"
        )
    best_dir = workdir / BEST_DIR
    steps = Checkpoints(best_dir, read_only=True)
    try:
        held = steps.all_steps()
    finally:
        steps.close()
    if best["step"] not in held:
        raise FileNotFoundError(f"{best_dir} lacks the checkpoint of best step {best['step']}")
    return best_dir, int(best["step"])
