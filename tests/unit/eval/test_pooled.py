"""The pooled rows of the evaluation table (eval/pooled.py): FID, U-IDS and P-IDS per hole-ratio
bucket from the stored Inception features, n/a below the minimum number of pairs."""

import numpy as np
import pytest

from pconv_jax.eval import grouping, pooled
from pconv_jax.metrics import fid, ids, inception

pytest.importorskip("sklearn")


def test_pooled_rows_report_ids_only_from_the_minimum(tmp_path, monkeypatch):
    """13 pairs with 4-d features (minimum 8): bucket 0 (10 pairs) and "all" get U-/P-IDS,
    bucket 1 (3 pairs) n/a; the values are ids.ids of those pairs' stored features."""
    monkeypatch.setattr(inception, "FEATURE_DIM", 4)
    rng = np.random.default_rng(3)
    rows = []
    for i in range(13):
        np.save(tmp_path / f"{i:06d}.npy", rng.normal(size=(2, 4)) + [[1.0], [0.0]])
        rows.append({"pair": i, "bucket": 0 if i < 10 else 1, "border": i % 2 == 0})
    table_rows, notes = pooled.pooled_rows(rows, tmp_path, {}, grouping.PAPER)
    by_key = {r.key: r.values for r in table_rows}
    features = np.stack([np.load(tmp_path / f"{i:06d}.npy") for i in range(13)])
    u0, p0 = ids.ids(features[:10, 1], features[:10, 0])
    assert by_key["u_ids"]["0"] == pytest.approx(100 * u0)
    assert by_key["p_ids"]["0"] == pytest.approx(100 * p0)
    assert by_key["u_ids"]["1"] is None and by_key["p_ids"]["2"] is None
    assert by_key["u_ids"]["all"] == pytest.approx(100 * ids.ids(features[:, 1], features[:, 0])[0])
    assert by_key["fid"]["1"] == fid.fid_from_features(features[10:, 1], features[10:, 0], "svd")
    assert any("n/a below 8 pairs" in note for note in notes)
