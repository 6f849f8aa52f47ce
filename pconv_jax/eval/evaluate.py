"""`pconv evaluate`: the paper's Table 1 protocol for a trained model or a classical baseline.

Protocol (paper Sec. 4.1): every image is paired with test masks WITHOUT replacement,
deterministically from the seed (`pair_masks`); masks are nearest-resized to the evaluation
size; the method fills the holes (a model sees only the known pixels: the input is
`truth * mask`); metrics (l1, PSNR, SSIM, LPIPS) are computed on the composite
`truth * mask + clip(output, 0, 1) * (1 - mask)` at that size, per pair, then averaged per
hole-ratio bucket x N/B (tables.py); FID and IS, which need many images, per hole-ratio bucket
with N and B pooled.

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
import json
import os
import pathlib

import jax

from pconv_jax.data import eval_set
from pconv_jax.errors import UserError
from pconv_jax.eval import runners as eval_run
from pconv_jax.eval import tables as eval_table
from pconv_jax.images import read_mask
from pconv_jax.masks import protocol as masks
from pconv_jax.masks.protocol import CELLS, Pair, pair_masks
from pconv_jax.parallel import distributed

MODEL_METHODS = ("pconv", "conv")
METHODS = MODEL_METHODS + ("patchmatch", "telea", "ns")
EXAMPLES_PER_CELL = 2  # pairs of each N/B cell shown in a bucket's PNG grid
RESULTS, SETTINGS = "results.jsonl", "settings.json"


def check_settings(out_dir: pathlib.Path, settings: dict) -> None:
    """Writes settings.json, or checks that an earlier run in `out_dir` used the same ones."""
    path = out_dir / SETTINGS
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
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
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_results(path: pathlib.Path, pairs: list[Pair], image_names) -> dict[int, dict]:
    """Finished rows of results.jsonl by pair index, each checked against the plan.

    A last line cut off by an interruption is dropped (and truncated from the file).
    """
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    if complete != text:
        path.write_text(complete, encoding="utf-8")
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


def evaluate(
    method: str,
    images: str,
    mask_dir: str,
    out_dir: str,
    *,
    size: int = 256,
    seed: int = 0,
    checkpoint: str | None = None,
    step: int | None = None,
    split: str | None = None,
    limit: int | None = None,
    masks_per_image: int = 1,
    batch_size: int | None = None,
    fid_weights: str | None = None,
    num_workers: int | None = None,
) -> eval_table.Table:
    """Evaluates `method` on (image, mask) pairs and writes the results into `out_dir`.

    Args:
      method: "pconv" or "conv" (needs `checkpoint`, a `pconv train` run directory whose
        config matches), or a classical baseline "patchmatch", "telea", "ns".
      images: a folder, "skimage" or "tfds:NAME" (then `split`, default "validation").
      mask_dir: a test-mask set: NVIDIA's test masks or a `pconv make-test-masks` folder.
      out_dir: results folder; rerunning with the same arguments resumes.
      size: evaluation side in px (images: short side resized, centre crop; masks: nearest).
      seed: of the image-mask pairing.
      step: checkpoint step (default: the latest).
      limit: use only the first `limit` images.
      masks_per_image: distinct masks per image (more pairs per cell from few images).
      batch_size: pairs per step (default 4 per device; models: a multiple of the devices).
      fid_weights: FID Inception weights (.npz or .pt): adds FID (and IS with a classifier
        head) per column.
      num_workers: threads loading pairs and running baselines (default: CPU count, max 8).

    Returns:
      The Table also written as table.md / table.csv / table.json.
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; expected one of {METHODS}")
    if size < 11 or (limit is not None and limit < 1):
        raise UserError(f"need size >= 11 (SSIM's window) and limit >= 1, got {size}, {limit}")
    if method not in MODEL_METHODS and checkpoint is not None:
        raise UserError(f"--checkpoint is for the pconv and conv methods, not {method}")
    out = pathlib.Path(out_dir)
    batch_size = batch_size or 4 * len(jax.local_devices())
    pool = concurrent.futures.ThreadPoolExecutor(num_workers or min(8, os.cpu_count() or 1))
    try:
        if method in MODEL_METHODS:
            runner = eval_run.model_runner(method, checkpoint, step, size, batch_size)
            run_batch, step, description = runner
        else:
            run_batch, description = eval_run.baseline_runner(method, batch_size, pool)
        records = masks.load_mask_set(mask_dir)
        source = eval_set.eval_images(images, size, split=split, limit=limit)
        names = [source.name(i) for i in range(len(source))]
        pairs = pair_masks(len(names), records, seed, masks_per_image)
        resolve = lambda path: path and str(pathlib.Path(path).resolve())
        is_tfds, is_folder = images.startswith("tfds:"), images != "skimage"
        settings = {  # what fixes the results (batch size and workers do not)
            "method": method,
            "images": resolve(images) if is_folder and not is_tfds else images,
            "split": (split or "validation") if is_tfds else None,
            "limit": limit,
            "num_images": len(names),
            "masks": resolve(mask_dir),
            "num_masks": len(records),
            "size": size,
            "seed": seed,
            "masks_per_image": masks_per_image,
            "checkpoint": resolve(checkpoint),
            "checkpoint_step": step,
            "fid_weights": resolve(fid_weights),
        }
        process, processes = jax.process_index(), jax.process_count()
        if process == 0:  # first: it creates the folder and settings.json, the others check
            check_settings(out, settings)
        distributed.barrier("evaluate settings")
        if process > 0:
            check_settings(out, settings)
        fid_params = eval_run.load_fid_params(fid_weights)
        done = _read_all_results(out, pairs, names)
        distributed.barrier("evaluate read")  # before anyone appends to a part file

        def load(pair: Pair):
            return source.load(pair.image_index), read_mask(pair.mask.path, size)

        examples = {p.index for shown in example_pairs(pairs).values() for p in shown}
        pending = [p for p in pairs if p.index not in done and p.index % processes == process]
        progress = eval_run.Progress(len(pairs), len(done))
        mine = RESULTS if processes == 1 else f"results.process{process}.jsonl"
        with open(out / mine, "a", encoding="utf-8") as results:
            for chunk, truth, mask in eval_run.prefetched_batches(pending, batch_size, load, pool):
                output, composite, metrics = run_batch(truth, mask)
                eval_run.save_extras(
                    out, chunk, output, composite, truth, examples, fid_params, batch_size
                )
                for j, pair in enumerate(chunk):
                    done[pair.index] = row = {
                        "pair": pair.index,
                        "image": names[pair.image_index],
                        "mask": pair.mask.name,
                        "bucket": pair.mask.bucket,
                        "border": pair.mask.border,
                        "hole_ratio": float(1.0 - mask[j].mean()),  # at the evaluation size
                        **{k: eval_run.finite_or_none(v[j]) for k, v in metrics.items()},
                    }
                    results.write(json.dumps(row) + "\n")
                results.flush()
                progress.update(len(chunk))
        timing = progress.summary()
        distributed.barrier("evaluate pairs")
        done = _read_all_results(out, pairs, names)
        distributed.barrier("evaluate merge")  # everyone has read the part files
        if process == 0:
            _merge_parts(out, pairs, done)
    finally:
        pool.shutdown(cancel_futures=True)
    notes = [f"method: {description}", *eval_table.protocol_notes(settings)]
    bucket_rows = ()
    if fid_params is None:
        notes.append("FID / IS: not computed (no --fid-weights)")
    else:
        bucket_rows, fid_notes = eval_run.fid_rows(pairs, out / "fid", fid_params)
        notes += fid_notes
    table = eval_table.build_table([done[p.index] for p in pairs], (), notes, bucket_rows)
    timing["processes"], timing["devices"] = processes, jax.device_count()
    summary = {"settings": settings, **eval_table.to_json(table), "timing": timing}
    if process > 0:
        return table
    (out / "table.md").write_text(eval_table.to_markdown(table), encoding="utf-8")
    (out / "table.csv").write_text(eval_table.to_csv(table), encoding="utf-8")
    (out / "table.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    eval_run.write_example_grids(out, example_pairs(pairs), load)
    return table


def _read_all_results(out: pathlib.Path, pairs: list[Pair], names) -> dict[int, dict]:
    """Finished pairs of results.jsonl and of the per-process part files."""
    done = read_results(out / RESULTS, pairs, names)
    for part in sorted(out.glob("results.process*.jsonl")):
        done.update(read_results(part, pairs, names))
    return done


def _merge_parts(out: pathlib.Path, pairs: list[Pair], done: dict[int, dict]) -> None:
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


def example_pairs(pairs: list[Pair]) -> dict[int, list[Pair]]:
    """bucket -> the first EXAMPLES_PER_CELL pairs of its N cell, then of its B cell."""
    shown: dict[int, list[Pair]] = {}
    for cell in CELLS:
        chosen = [p for p in pairs if p.mask.label == cell][:EXAMPLES_PER_CELL]
        shown.setdefault(int(cell[:-1]), []).extend(chosen)
    return {b: ps for b, ps in shown.items() if ps}
