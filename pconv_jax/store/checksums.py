"""SHA-256 manifests of finished checkpoints: `workdir/checksums/<step>.json`.

TensorStore notices a truncated, missing or overwritten array file, but a few flipped bits in
a compressed chunk can decode into wrong numbers without an error. Each finished checkpoint's
files are hashed once (by process 0, after orbax committed it) and checked before a resume
restores it; a checkpoint without a manifest (written before this existed, or by a run killed
between commit and hashing) is checked by reading it back only.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

from pconv_jax import atomic

MANIFESTS = "checksums"


def _hash(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(checkpoints: pathlib.Path, step: int) -> pathlib.Path:
    """Where the manifest of checkpoint `step` under the folder `checkpoints` lives."""
    return checkpoints.parent / MANIFESTS / f"{step}.json"


def write_missing(checkpoints: pathlib.Path, steps) -> None:
    """Hashes the finished `steps` under `checkpoints` that have no manifest yet, and removes
    the manifests of steps that are gone (pruned by the keep policy)."""
    steps = set(int(s) for s in steps)
    folder = checkpoints.parent / MANIFESTS
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        if old.stem.isdigit() and int(old.stem) not in steps:
            old.unlink(missing_ok=True)
    for step in sorted(steps):
        target = manifest_path(checkpoints, step)
        if target.exists():
            continue
        root = checkpoints / str(step)
        files = {str(p.relative_to(root)): _hash(p) for p in sorted(root.rglob("*")) if p.is_file()}
        atomic.write_text(target, json.dumps(files, indent=1, sort_keys=True))


def verify(checkpoints: pathlib.Path, step: int) -> str | None:
    """None when checkpoint `step` matches its manifest (or has none), else what differs."""
    target = manifest_path(checkpoints, step)
    if not target.is_file():
        return None
    expected = json.loads(target.read_text(encoding="utf-8"))
    root = checkpoints / str(step)
    for name, digest in sorted(expected.items()):
        path = root / name
        if not path.is_file():
            return f"{name} is missing"
        if _hash(path) != digest:
            return f"{name} does not match its SHA-256 in {target}"
    return None
