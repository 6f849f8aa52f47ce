"""The files of an evaluation folder: settings.json (what fixes the results; a rerun must
match), results.jsonl (one line per finished pair, appended as computed, so a rerun resumes)
and, with several processes, results.process<p>.jsonl part files merged at the end."""

from __future__ import annotations

import json
import pathlib

from pconv_jax import atomic
from pconv_jax.errors import UserError
from pconv_jax.masks.protocol import Pair

RESULTS, SETTINGS = "results.jsonl", "settings.json"
# Settings added after results were first written: an older settings.json had these.
OLD_DEFAULTS = {
    "protocol": "paper",
    "grouping": "paper",
    "lpips_net": "alex",
    "known": "composited",
}


def check_settings(out_dir: pathlib.Path, settings: dict) -> None:
    """Writes settings.json, or checks that an earlier run in `out_dir` used the same ones."""
    path = out_dir / SETTINGS
    if path.is_file():
        old = OLD_DEFAULTS | json.loads(path.read_text(encoding="utf-8"))
        diff = [
            f"{k}: {old.get(k)!r} then, {settings.get(k)!r} now"
            for k in sorted(set(old) | set(settings))
            if old.get(k) != settings.get(k)
        ]
        if diff:
            raise UserError(
                f"{out_dir} holds an evaluation with other arguments ({'; '.join(diff)}); "
                "use another --out, or the same arguments to resume"
            )
    elif (out_dir / RESULTS).exists():
        raise UserError(f"{out_dir} has {RESULTS} but no {SETTINGS}: not resumable")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def read_results(path: pathlib.Path, pairs: list[Pair], image_names) -> dict[int, dict]:
    """Finished rows of results.jsonl by pair index, each checked against the plan.

    A last line cut off by an interruption is dropped (and truncated from the file).
    """
    complete = atomic.cut_torn_line(path)
    done = {}
    for line in complete.splitlines():
        row = json.loads(line)
        index = row["pair"]
        pair = pairs[index] if 0 <= index < len(pairs) else None
        if pair is None or (row["image"], row["mask"]) != (
            image_names[pair.image_index],
            pair.mask.name,
        ):
            raise UserError(
                f"{path}: finished pair {index} ({row['image']}, {row['mask']}) is not in this "
                "evaluation's plan: the images or masks changed since; use another --out"
            )
        done[index] = row
    return done


def read_all_results(out: pathlib.Path, pairs: list[Pair], names) -> dict[int, dict]:
    """Finished pairs of results.jsonl and of the per-process part files."""
    done = read_results(out / RESULTS, pairs, names)
    for part in sorted(out.glob("results.process*.jsonl")):
        done.update(read_results(part, pairs, names))
    return done


def merge_parts(out: pathlib.Path, pairs: list[Pair], done: dict[int, dict]) -> None:
    """Appends the part files' pairs to results.jsonl (in pair order), then removes them."""
    parts = sorted(out.glob("results.process*.jsonl"))
    if not parts:
        return
    merged = set()
    if (out / RESULTS).is_file():
        with open(out / RESULTS, encoding="utf-8") as results:
            merged = {json.loads(line)["pair"] for line in results}
    with open(out / RESULTS, "a", encoding="utf-8") as results:
        for pair in pairs:
            if pair.index in done and pair.index not in merged:
                results.write(json.dumps(done[pair.index]) + "\n")
    for part in parts:
        part.unlink()
