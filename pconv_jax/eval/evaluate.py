"""`pconv evaluate`: the paper's Table 1 protocol (or LaMa's) for a trained model, a classical
baseline, or a folder of fills written by any tool.

Protocol (paper Sec. 4.1; eval/plan.py for LaMa's): every image is paired with test masks
WITHOUT replacement, deterministically from the seed (`pair_masks`); masks are nearest-resized
to the evaluation size; the method fills the holes (a model sees only the known pixels: the
input is `truth * mask`); metrics (l1, PSNR, SSIM, LPIPS) are computed on the composite
`truth * mask + clip(output, 0, 1) * (1 - mask)` at that size, per pair, then averaged per
column of the grouping (eval/grouping.py: the paper's hole-ratio bucket x N/B, or LaMa's 10
area bins); FID, IS, U-IDS and P-IDS, which need many images, per pooled column (eval/pooled.py).
`score_predictions` scores the fills of pairs exported with `plan.export` the same way.

Several processes (`pconv evaluate --coordinator ...`, README: Training on several hosts) split
the pending pairs by index (pair i goes to process i mod P), each on its own devices, appending to
results.process<p>.jsonl; process 0 then merges them into results.jsonl and writes the one table,
the same as one process writes (each pair's metrics depend only on that pair).

Files in `out_dir`: settings.json (the arguments that fix the results; a rerun must match),
results.jsonl (one line per finished pair, appended as computed, so a rerun resumes),
table.md / table.csv / table.json, examples_bucket{b}.png (input with holes in white, output,
composite, truth), examples/ (the outputs shown there) and, with FID weights, fid/ (per-pair
Inception features of composite and truth).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import pathlib

import jax

from pconv_jax import atomic
from pconv_jax.errors import UserError
from pconv_jax.eval import pooled, runners, tables
from pconv_jax.eval.grouping import PAPER, Grouping, get_grouping
from pconv_jax.eval.plan import (
    KNOWN,
    METHODS,
    MODEL_METHODS,
    from_export,
    from_sources,
    pair_name,
    resolved_path,
)
from pconv_jax.eval.results import RESULTS, check_settings, merge_parts, read_all_results
from pconv_jax.masks.protocol import Pair
from pconv_jax.metrics import lpips
from pconv_jax.parallel import distributed

EXAMPLES_PER_CELL = 2  # pairs of each column shown in a pooled column's PNG grid


def _grouping(name: str | None, protocol: str) -> Grouping:
    """--grouping, by default the protocol's own; the paper's needs the paper's mask set."""
    grouping = get_grouping(name or ("paper" if protocol == "paper" else "lama"))
    if grouping is PAPER and protocol != "paper":
        raise UserError(
            f"--grouping paper needs the paper's bucketed test masks; --protocol {protocol} "
            "generates LaMa's masks: use --grouping lama"
        )
    return grouping


@dataclasses.dataclass(frozen=True)
class Scoring:
    """How pairs are scored: the options `evaluate` and `score_predictions` share.

    Attributes:
      batch_size: pairs per step (None: 4 per device; models: a multiple of the devices).
      fid_weights: FID Inception weights (.npz or .pt): adds FID, U-IDS/P-IDS (enough pairs)
        and IS (with a classifier head) per pooled column.
      num_workers: threads loading pairs and running baselines (None: CPU count, max 8).
      grouping: table columns, "paper" or "lama" (None: the protocol's).
      lpips_net: "alex" (the paper-era default) or "vgg" (LaMa's).
    """

    batch_size: int | None = None
    fid_weights: str | None = None
    num_workers: int | None = None
    grouping: str | None = None
    lpips_net: str = "alex"

    def with_defaults(self) -> Scoring:
        """Checked, with batch_size and num_workers filled in for this machine."""
        if self.lpips_net not in lpips.NETS:
            raise UserError(
                f"unknown LPIPS net {self.lpips_net!r}; expected one of {tuple(lpips.NETS)}"
            )
        return dataclasses.replace(
            self,
            batch_size=self.batch_size or 4 * len(jax.local_devices()),
            num_workers=self.num_workers or min(8, os.cpu_count() or 1),
        )


DEFAULT_SCORING = Scoring()


def evaluate(
    method: str,
    images: str,
    mask_dir: str | None,
    out_dir: str,
    *,
    protocol: str = "paper",
    size: int = 256,
    seed: int = 0,
    checkpoint: str | None = None,
    step: int | None = None,
    split: str | None = None,
    limit: int | None = None,
    masks_per_image: int = 1,
    scoring: Scoring = DEFAULT_SCORING,
) -> tables.Table:
    """Evaluates `method` on (image, mask) pairs and writes the results into `out_dir`.

    Args:
      method: "pconv" or "conv" (needs `checkpoint`, a `pconv train` run directory whose
        config matches), or a classical baseline "patchmatch", "telea", "ns".
      images: a folder, "skimage" or "tfds:NAME" (then `split`, default "validation").
      mask_dir: protocol "paper": a test-mask set (NVIDIA's or `pconv make-test-masks`);
        None for the LaMa protocols (generated masks).
      out_dir: results folder; rerunning with the same arguments resumes.
      protocol: "paper", "lama-thin", "lama-medium" or "lama-thick" (eval/plan.py).
      size: evaluation side in px (images: short side resized, centre crop; masks: nearest).
      seed: of the image-mask pairing (paper) or of the generated masks (LaMa).
      step: checkpoint step (default: the latest).
      limit: use only the first `limit` images.
      masks_per_image: distinct masks per image (more pairs per cell from few images).
      scoring: batch size, workers, FID weights, grouping and LPIPS net (`Scoring`).

    Returns:
      The Table also written as table.md / table.csv / table.json.
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; expected one of {METHODS}")
    if method not in MODEL_METHODS and checkpoint is not None:
        raise UserError(f"--checkpoint is for the pconv and conv methods, not {method}")
    columns = _grouping(scoring.grouping, protocol)
    scoring = scoring.with_defaults()
    batch_size, lpips_net = scoring.batch_size, scoring.lpips_net
    assert batch_size is not None and scoring.num_workers is not None  # with_defaults
    pool = concurrent.futures.ThreadPoolExecutor(scoring.num_workers)
    try:
        if method in MODEL_METHODS:
            runner = runners.model_runner(method, checkpoint, step, size, batch_size, lpips_net)
            run_batch, step, description = runner
        else:
            run_batch, description = runners.baseline_runner(method, batch_size, pool, lpips_net)
        plan = from_sources(
            images, mask_dir, protocol=protocol, size=size, seed=seed, split=split,
            limit=limit, masks_per_image=masks_per_image, num_workers=scoring.num_workers,
        )  # fmt: skip
        settings = {
            "method": method,
            **plan.settings,
            "checkpoint": resolved_path(checkpoint),
            "checkpoint_step": step,
            "fid_weights": resolved_path(scoring.fid_weights),
            "grouping": columns.name,
            "lpips_net": lpips_net,
            "known": "composited",
        }
        job = (plan, settings, columns, run_batch, description)
        return run(job, pathlib.Path(out_dir), batch_size, scoring.fid_weights, pool)
    finally:
        pool.shutdown(cancel_futures=True)


def score_predictions(
    pairs_dir: str,
    predictions: str,
    out_dir: str,
    *,
    name: str | None = None,
    known: str = "composited",
    scoring: Scoring = DEFAULT_SCORING,
) -> tables.Table:
    """Scores a folder of fills `predictions`/NAME.png of the pairs exported to `pairs_dir`
    (`pconv evaluate --export-pairs`) into the same tables as `evaluate`.

    Args:
      name: the method's name in tables and reports (default: the folder's name).
      known: "composited" (metrics on truth * mask + fill * (1 - mask), as `evaluate`) or
        "raw" (on the fill as written, known pixels as the tool left them).
      scoring: as `evaluate`.
    """
    if known not in KNOWN:
        raise UserError(f"unknown --known {known!r}; expected one of {KNOWN}")
    plan = from_export(pairs_dir)
    columns = _grouping(scoring.grouping, plan.settings["protocol"])
    names = [pair_name(p) for p in plan.pairs]
    runners.check_predictions(pathlib.Path(predictions), names, plan.settings["size"])
    scoring = scoring.with_defaults()
    batch_size, lpips_net = scoring.batch_size, scoring.lpips_net
    assert batch_size is not None and scoring.num_workers is not None  # with_defaults
    pool = concurrent.futures.ThreadPoolExecutor(scoring.num_workers)
    try:
        composite = known == "composited"
        run_batch, description = runners.predictions_runner(
            predictions, batch_size, pool, lpips_net, composite
        )
        settings = {
            "method": name or pathlib.Path(predictions).resolve().name,
            **plan.settings,
            "pairs_dir": resolved_path(pairs_dir),
            "predictions": resolved_path(predictions),
            "fid_weights": resolved_path(scoring.fid_weights),
            "grouping": columns.name,
            "lpips_net": lpips_net,
            "known": known,
        }
        job = (plan, settings, columns, run_batch, description)
        return run(job, pathlib.Path(out_dir), batch_size, scoring.fid_weights, pool)
    finally:
        pool.shutdown(cancel_futures=True)


def run(job, out: pathlib.Path, batch_size: int, fid_weights, pool) -> tables.Table:
    """Runs the pending pairs of `job` = (plan, settings, grouping, run_batch, description),
    appending to results.jsonl (split by process), then writes the tables (process 0)."""
    plan, settings, columns, run_batch, description = job
    process, processes = jax.process_index(), jax.process_count()
    if process == 0:  # first: it creates the folder and settings.json, the others check
        check_settings(out, settings)
    distributed.barrier("evaluate settings")
    if process > 0:
        check_settings(out, settings)
    fid_params = runners.load_fid_params(fid_weights)
    done = read_all_results(out, plan.pairs, plan.names)
    distributed.barrier("evaluate read")  # before anyone appends to a part file
    examples = example_pairs(plan.pairs, columns)
    shown = {p.index for chosen in examples.values() for p in chosen}
    pending = [p for p in plan.pairs if p.index not in done and p.index % processes == process]
    progress = runners.Progress(len(plan.pairs), len(done))
    mine = RESULTS if processes == 1 else f"results.process{process}.jsonl"
    with open(out / mine, "a", encoding="utf-8") as results:
        for chunk, truth, mask in runners.prefetched_batches(pending, batch_size, plan.load, pool):
            output, composite, metrics = run_batch(chunk, truth, mask)
            runners.save_extras(out, chunk, output, composite, truth, shown, fid_params, batch_size)
            for j, pair in enumerate(chunk):
                done[pair.index] = row = _row(plan, pair, mask[j], metrics, j)
                results.write(json.dumps(row) + "\n")
            results.flush()
            progress.update(len(chunk))
    timing = progress.summary()
    distributed.barrier("evaluate pairs")
    done = read_all_results(out, plan.pairs, plan.names)
    distributed.barrier("evaluate merge")  # everyone has read the part files
    if process == 0:
        merge_parts(out, plan.pairs, done)
    rows = [done[p.index] for p in plan.pairs]
    table = _table(rows, settings, columns, description, out, fid_params)
    if process == 0:
        timing["processes"], timing["devices"] = processes, jax.device_count()
        _write_tables(out, table, settings, timing)
        runners.write_example_grids(out, examples, plan.load, columns)
    return table


def _row(plan, pair: Pair, mask, metrics: dict, j: int) -> dict:
    return {
        "pair": pair.index,
        "image": plan.names[pair.image_index],
        "mask": pair.mask.name,
        "bucket": pair.mask.bucket,  # None for LaMa's masks (no paper bucket)
        "border": pair.mask.border,
        "hole_ratio": float(1.0 - mask.mean()),  # at the evaluation size
        **{k: runners.finite_or_none(v[j]) for k, v in metrics.items()},
    }


def _table(rows, settings, columns, description, out, fid_params) -> tables.Table:
    notes = [f"method: {description}", *tables.protocol_notes(settings), columns.note]
    bucket_rows = ()
    if fid_params is None:
        notes.append("FID / IS / U-IDS / P-IDS: not computed (no --fid-weights)")
    else:
        bucket_rows, fid_notes = pooled.pooled_rows(rows, out / "fid", fid_params, columns)
        notes += fid_notes
    return tables.build_table(
        rows, (), notes, bucket_rows, grouping=columns, lpips_net=settings["lpips_net"]
    )


def _write_tables(out: pathlib.Path, table, settings: dict, timing: dict) -> None:
    summary = {"settings": settings, **tables.to_json(table), "timing": timing}
    atomic.write_text(out / "table.md", tables.to_markdown(table))
    atomic.write_text(out / "table.csv", tables.to_csv(table))
    atomic.write_text(out / "table.json", json.dumps(summary, indent=2) + "\n")


def _mask_row(pair: Pair) -> dict:
    return {
        "bucket": pair.mask.bucket,
        "border": pair.mask.border,
        "hole_ratio": pair.mask.hole_ratio,
    }


def example_pairs(pairs: list[Pair], grouping: Grouping = PAPER) -> dict[str, list[Pair]]:
    """pooled column -> the first EXAMPLES_PER_CELL pairs of each of its columns (paper: of its
    N cell, then of its B cell), judged by the mask set's bucket, border and hole ratio."""
    by_column: dict[str, list[Pair]] = {}
    for p in pairs:
        chosen = by_column.setdefault(grouping.column_of(_mask_row(p)), [])
        if len(chosen) < EXAMPLES_PER_CELL:
            chosen.append(p)
    shown: dict[str, list[Pair]] = {}
    for column in grouping.columns[:-1]:
        for p in by_column.get(column, []):
            shown.setdefault(grouping.pooled_of(_mask_row(p)), []).append(p)
    return shown
